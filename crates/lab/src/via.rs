//! Via handling for the lab's proxies: read the top Via, push our own, pop ours, find where a
//! response goes next (RFC 3261 §18.2.2, with `received`/`rport` as RFC 3581 asks).

use std::net::{IpAddr, SocketAddr};

use ikt_sip::{HeaderName, Message};

/// One Via value's routing facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViaValue {
    /// sent-by host.
    pub host: String,
    /// sent-by port.
    pub port: Option<u16>,
    /// `branch` parameter.
    pub branch: Option<String>,
    /// `received` parameter.
    pub received: Option<String>,
    /// `rport` parameter value, if it has one.
    pub rport: Option<u16>,
}

impl ViaValue {
    /// Parses `SIP/2.0/UDP host:port;params`.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.split(';');
        let head = parts.next()?.trim();
        let (_proto, sent_by) = head.rsplit_once(|c: char| c.is_ascii_whitespace())?;
        let (host, port) = split_host_port(sent_by.trim())?;
        let mut v = ViaValue {
            host,
            port,
            branch: None,
            received: None,
            rport: None,
        };
        for p in parts {
            let (name, val) = p
                .split_once('=')
                .map_or((p.trim(), None), |(n, v)| (n.trim(), Some(v.trim())));
            match (name.to_ascii_lowercase().as_str(), val) {
                ("branch", Some(b)) => v.branch = Some(b.to_string()),
                ("received", Some(r)) => v.received = Some(r.to_string()),
                ("rport", Some(r)) => v.rport = r.parse().ok(),
                _ => {}
            }
        }
        Some(v)
    }

    /// Where a response for this Via goes: `received`/`rport` when present, else sent-by.
    pub fn response_target(&self) -> Option<SocketAddr> {
        let host = self.received.as_deref().unwrap_or(&self.host);
        let ip: IpAddr = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?;
        Some(SocketAddr::new(
            ip,
            self.rport.or(self.port).unwrap_or(5060),
        ))
    }
}

/// Splits `host[:port]` (IPv6 in brackets).
pub fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None => None,
        };
        return Some((host.to_string(), port));
    }
    match text.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), Some(p.parse().ok()?))),
        None => Some((text.to_string(), None)),
    }
}

/// Every Via value in order, with the byte range of the value text within the message.
pub fn values(msg: &Message<'_>) -> Vec<(std::ops::Range<usize>, usize)> {
    let mut out = Vec::new();
    for (index, h) in msg.headers().iter().enumerate() {
        if h.name != HeaderName::Via {
            continue;
        }
        let text = msg.value(h);
        let mut start = 0;
        for piece in text.split(',') {
            let lead = piece.len() - piece.trim_start().len();
            let s = h.value_range.start + start + lead;
            out.push((s..s + piece.trim().len(), index));
            start += piece.len() + 1;
        }
    }
    out
}

/// The top Via, parsed.
pub fn top(msg: &Message<'_>) -> Option<ViaValue> {
    let (range, _) = values(msg).into_iter().next()?;
    ViaValue::parse(std::str::from_utf8(&msg.bytes()[range]).ok()?)
}

/// The second Via (where a response goes after we pop ours).
pub fn second(msg: &Message<'_>) -> Option<ViaValue> {
    let (range, _) = values(msg).into_iter().nth(1)?;
    ViaValue::parse(std::str::from_utf8(&msg.bytes()[range]).ok()?)
}

/// The message with a new first header `Via: value`.
pub fn push(msg: &Message<'_>, value: &str) -> Vec<u8> {
    let bytes = msg.bytes();
    let at = msg
        .headers()
        .first()
        .map_or(msg.head_end(), |h| h.line.start);
    let mut out = Vec::with_capacity(bytes.len() + value.len() + 8);
    out.extend_from_slice(&bytes[..at]);
    out.extend_from_slice(b"Via: ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&bytes[at..]);
    out
}

/// The message without its top Via value (the whole header line when it held only that value).
pub fn pop(msg: &Message<'_>) -> Vec<u8> {
    let bytes = msg.bytes();
    let all = values(msg);
    let Some((range, index)) = all.first().cloned() else {
        return bytes.to_vec();
    };
    let h = &msg.headers()[index];
    let cut = if all.get(1).is_some_and(|(_, i)| *i == index) {
        // Several values in this header: remove the first value, its comma and following space.
        let next_start = all[1].0.start;
        range.start..next_start
    } else {
        h.line.clone()
    };
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..cut.start]);
    out.extend_from_slice(&bytes[cut.end..]);
    out
}

/// A fresh RFC 3261 branch.
pub fn new_branch() -> String {
    let mut b = [0u8; 8];
    // A failing random source only weakens branch uniqueness; fall back to time-based bits.
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = (t as u64).to_be_bytes();
    }
    format!("z9hG4bK{}", crate::hex::encode(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_target() {
        let v = ViaValue::parse(
            "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKx;rport=4000;received=127.0.0.2",
        )
        .unwrap();
        assert_eq!(v.branch.as_deref(), Some("z9hG4bKx"));
        assert_eq!(v.response_target(), Some("127.0.0.2:4000".parse().unwrap()));
        let v = ViaValue::parse("SIP/2.0/UDP [::1]:5070;rport").unwrap();
        assert_eq!(v.response_target(), Some("[::1]:5070".parse().unwrap()));
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(text in ".{0,120}") {
            let _ = ViaValue::parse(&text).map(|v| v.response_target());
            let _ = split_host_port(&text);
            let _ = crate::compose::uri_addr(&text);
            let _ = crate::compose::uri_of(&text);
            let _ = crate::compose::param_of_name_addr(&text, "tag");
        }
    }

    #[test]
    fn push_then_pop_restores_bytes() {
        let raw = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKa, SIP/2.0/UDP 127.0.0.1:2;branch=z9hG4bKb\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n";
        let m = ikt_sip::scan(raw).unwrap();
        assert_eq!(top(&m).unwrap().port, Some(1));
        assert_eq!(second(&m).unwrap().port, Some(2));
        let pushed = push(&m, "SIP/2.0/UDP 127.0.0.1:3;branch=z9hG4bKc");
        let m2 = ikt_sip::scan(&pushed).unwrap();
        assert_eq!(top(&m2).unwrap().port, Some(3));
        assert_eq!(pop(&m2), raw.to_vec());
        let popped = pop(&m);
        assert_eq!(
            popped,
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:2;branch=z9hG4bKb\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n".to_vec()
        );
    }
}
