//! Via values: sent-protocol, sent-by and parameters, split across commas and headers.

use std::ops::Range;

use crate::header::HeaderName;
use crate::lex::{comma_items, is_lws, skip_lws, sub, token_end};
use crate::message::Message;
use crate::params::Params;

/// One Via value (a header may hold several, comma-separated).
///
/// A value that does not parse keeps its range but has an empty host and transport
/// (see [`Via::is_well_formed`]); routing code should treat it as unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via<'a> {
    /// This value only (from `SIP/2.0/...` to the end of its last parameter), within the message.
    pub range: Range<usize>,
    /// Index of the header (in [`Message::headers`]) that holds this value.
    pub header_index: usize,
    text: &'a str,
    transport: &'a str,
    host: &'a str,
    port: Option<u16>,
    sent_by: &'a str,
    params_at: usize,
}

impl<'a> Via<'a> {
    fn parse(text: &'a str, range: Range<usize>, header_index: usize) -> Via<'a> {
        let b = text.as_bytes();
        let mut via = Via {
            range,
            header_index,
            text,
            transport: "",
            host: "",
            port: None,
            sent_by: "",
            params_at: text.find(';').unwrap_or(text.len()),
        };
        // sent-protocol = name LWS? "/" LWS? version LWS? "/" LWS? transport
        let mut p = 0;
        let mut parts = [0..0, 0..0, 0..0];
        for (i, part) in parts.iter_mut().enumerate() {
            if i > 0 {
                p = skip_lws(b, p);
                if p >= b.len() || b[p] != b'/' {
                    return via;
                }
                p = skip_lws(b, p + 1);
            }
            let end = token_end(b, p);
            if end == p {
                return via;
            }
            *part = p..end;
            p = end;
        }
        let h = skip_lws(b, p);
        if h == p || h >= b.len() {
            return via;
        }
        let host_end = if b[h] == b'[' {
            match b[h..].iter().position(|&c| c == b']') {
                Some(close) => h + close + 1,
                None => return via,
            }
        } else {
            let mut e = h;
            while e < b.len() && !is_lws(b[e]) && !matches!(b[e], b':' | b';' | b',') {
                e += 1;
            }
            e
        };
        if host_end == h {
            return via;
        }
        let mut sent_by_end = host_end;
        let mut port = None;
        let c = skip_lws(b, host_end);
        if c < b.len() && b[c] == b':' {
            let d = skip_lws(b, c + 1);
            let mut d_end = d;
            while d_end < b.len() && b[d_end].is_ascii_digit() {
                d_end += 1;
            }
            match sub(text, d..d_end).parse::<u16>() {
                Ok(n) => port = Some(n),
                Err(_) => return via,
            }
            sent_by_end = d_end;
        }
        via.transport = sub(text, parts[2].clone());
        via.host = sub(text, h..host_end);
        via.port = port;
        via.sent_by = sub(text, h..sent_by_end);
        via.params_at = sent_by_end;
        via
    }

    /// Whether protocol and sent-by parsed.
    pub fn is_well_formed(&self) -> bool {
        !self.host.is_empty()
    }

    /// The whole value text.
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// Transport as written (`UDP`, `TCP`, `TLS`, ...).
    pub fn transport(&self) -> &'a str {
        self.transport
    }

    /// Sent-by host (IPv6 references keep their brackets).
    pub fn host(&self) -> &'a str {
        self.host
    }

    /// Sent-by port, if written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Sent-by as written (`host[:port]`).
    pub fn sent_by(&self) -> &'a str {
        self.sent_by
    }

    /// The parameters in order.
    pub fn params(&self) -> Params<'a> {
        Params::new(self.text.get(self.params_at..).unwrap_or(""))
    }

    /// A parameter by exact, case-insensitive name; `Some(None)` for a flag parameter.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.params().find(name)
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.param("branch").flatten()
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&'a str> {
        self.param("received").flatten()
    }

    /// The `rport` parameter: `Some(None)` when present without a (numeric) value.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.param("rport").map(|v| v.and_then(|v| v.parse().ok()))
    }
}

impl<'a> Message<'a> {
    /// Every Via value in order (comma-split, across headers).
    pub fn vias(&self) -> Vec<Via<'a>> {
        let mut out = Vec::new();
        for (i, h) in self.headers().iter().enumerate() {
            if h.name == HeaderName::Via {
                self.push_vias(i, &mut out);
            }
        }
        out
    }

    /// The first Via value.
    pub fn top_via(&self) -> Option<Via<'a>> {
        let (i, h) = self
            .headers()
            .iter()
            .enumerate()
            .find(|(_, h)| h.name == HeaderName::Via)?;
        let value = self.value(h);
        let base = h.value_range.start;
        let r = comma_items(value.as_bytes()).next()?;
        Some(Via::parse(
            sub(value, r.clone()),
            base + r.start..base + r.end,
            i,
        ))
    }

    /// The Via values of header `index` only.
    pub fn vias_in(&self, index: usize) -> Vec<Via<'a>> {
        let mut out = Vec::new();
        self.push_vias(index, &mut out);
        out
    }

    fn push_vias(&self, index: usize, out: &mut Vec<Via<'a>>) {
        let Some(h) = self.headers().get(index) else {
            return;
        };
        let value = self.value(h);
        let base = h.value_range.start;
        for r in comma_items(value.as_bytes()) {
            let text = sub(value, r.clone());
            out.push(Via::parse(text, base + r.start..base + r.end, index));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::scan;

    #[test]
    fn vias_across_headers_and_commas() {
        let raw = b"SIP/2.0 200 OK\r\n\
Via: SIP / 2.0 / UDP  10.0.0.1:5060 ;branch=z9hG4bK1;rport=5061;received=192.0.2.1\r\n\
v: SIP/2.0/TCP host.example;branch=z9hG4bK2 , SIP/2.0/TLS [2001:db8::1]:5071;branch=z9hG4bK3;ikt=pcscf-1\r\n\
Via: garbage\r\n\
\r\n";
        let m = scan(raw).unwrap();
        let v = m.vias();
        assert_eq!(v.len(), 4);
        assert_eq!(v[0].transport(), "UDP");
        assert_eq!(v[0].host(), "10.0.0.1");
        assert_eq!(v[0].port(), Some(5060));
        assert_eq!(v[0].branch(), Some("z9hG4bK1"));
        assert_eq!(v[0].rport(), Some(Some(5061)));
        assert_eq!(v[0].received(), Some("192.0.2.1"));
        assert_eq!(v[1].host(), "host.example");
        assert_eq!(v[1].port(), None);
        assert_eq!(v[1].rport(), None);
        assert_eq!(v[1].header_index, 1);
        assert_eq!(
            &raw[v[1].range.clone()],
            b"SIP/2.0/TCP host.example;branch=z9hG4bK2"
        );
        assert_eq!(v[2].host(), "[2001:db8::1]");
        assert_eq!(v[2].port(), Some(5071));
        assert_eq!(v[2].sent_by(), "[2001:db8::1]:5071");
        assert_eq!(v[2].param("ikt"), Some(Some("pcscf-1")));
        assert_eq!(v[2].param("IKT"), Some(Some("pcscf-1")));
        assert_eq!(v[2].param("ik"), None);
        assert!(!v[3].is_well_formed());
        assert_eq!(m.top_via().unwrap(), v[0]);
        assert_eq!(m.vias_in(1).len(), 2);
        assert_eq!(m.vias_in(99).len(), 0);
    }

    #[test]
    fn rport_flag() {
        let m =
            scan(b"OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h:1;rport;branch=b\r\n\r\n").unwrap();
        assert_eq!(m.top_via().unwrap().rport(), Some(None));
    }
}
