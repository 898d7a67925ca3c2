//! Building the lab's own SIP messages (requests it originates, responses it generates).

use ikt_sip::{HeaderName, Message};

/// A SIP message under construction: start line, headers, then a body with its Content-Length.
#[derive(Debug, Clone)]
pub struct Builder {
    head: String,
}

impl Builder {
    /// A request line.
    pub fn request(method: &str, uri: &str) -> Self {
        Self {
            head: format!("{method} {uri} SIP/2.0\r\n"),
        }
    }

    /// A status line.
    pub fn response(code: u16, reason: &str) -> Self {
        Self {
            head: format!("SIP/2.0 {code} {reason}\r\n"),
        }
    }

    /// A response to `req` with its Via, From, To (with `to_tag` added when the request had
    /// none), Call-ID and CSeq copied.
    pub fn reply(req: &Message<'_>, code: u16, reason: &str, to_tag: &str) -> Self {
        let mut b = Self::response(code, reason);
        for h in req.headers() {
            match h.name {
                HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                    b = b.header(h.name.as_str().unwrap_or("X"), req.value(h));
                }
                HeaderName::To => {
                    let v = req.value(h);
                    if has_tag(v) {
                        b = b.header("To", v);
                    } else {
                        b = b.header("To", &format!("{v};tag={to_tag}"));
                    }
                }
                _ => {}
            }
        }
        b
    }

    /// Appends a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.head.push_str(name);
        self.head.push_str(": ");
        self.head.push_str(value);
        self.head.push_str("\r\n");
        self
    }

    /// Finishes with a body (Content-Length set).
    pub fn body(self, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
        let mut head = self.head;
        if let Some(ct) = content_type {
            head.push_str("Content-Type: ");
            head.push_str(ct);
            head.push_str("\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        out
    }

    /// Finishes without a body.
    pub fn finish(self) -> Vec<u8> {
        self.body(None, b"")
    }
}

/// Whether a From/To value carries a `tag` parameter (outside the angle brackets).
pub fn has_tag(value: &str) -> bool {
    param_of_name_addr(value, "tag").is_some()
}

/// A header parameter of a name-addr value (after `>` when brackets are used), e.g. `tag`,
/// `expires`.
pub fn param_of_name_addr<'v>(value: &'v str, name: &str) -> Option<&'v str> {
    let params = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value.split_once(';').map_or("", |(_, p)| p),
    };
    params.split(';').find_map(|p| {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// The URI of a name-addr (`"x" <sip:a@b>;tag=1` -> `sip:a@b`) or addr-spec.
pub fn uri_of(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(s), Some(e)) if e > s => &value[s + 1..e],
        _ => value.split(';').next().unwrap_or(value).trim(),
    }
}

/// A fresh tag or Call-ID component.
pub fn token() -> String {
    let mut b = [0u8; 6];
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b.copy_from_slice(&(t as u64).to_be_bytes()[2..]);
    }
    crate::hex::encode(&b)
}

/// The socket address of a `sip:user@ip:port;params` URI whose host is an IP literal.
pub fn uri_addr(uri: &str) -> Option<std::net::SocketAddr> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))?;
    let rest = rest.split(';').next()?;
    let rest = rest.split('?').next()?;
    let hostport = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let (host, port) = crate::via::split_host_port(hostport)?;
    let ip: std::net::IpAddr = host.parse().ok()?;
    Some(std::net::SocketAddr::new(ip, port.unwrap_or(5060)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_addr_helpers() {
        assert_eq!(uri_of("\"A\" <sip:a@b;lr>;tag=1"), "sip:a@b;lr");
        assert_eq!(
            param_of_name_addr("<sip:a@b;x=1>;expires=60", "expires"),
            Some("60")
        );
        assert_eq!(param_of_name_addr("<sip:a@b;tag=1>", "tag"), None);
        assert!(has_tag("sip:a@b;tag=9"));
        assert_eq!(
            uri_addr("sip:alice@127.0.0.1:5070;transport=udp"),
            Some("127.0.0.1:5070".parse().unwrap())
        );
        assert_eq!(uri_addr("sip:ims.example.org"), None);
    }
}
