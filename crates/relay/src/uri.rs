//! Just enough of a SIP URI (RFC 3261 §19.1) to route on: host, port, `transport` and `lr`.

use crate::config::Transport;

/// The routing-relevant parts of a `sip:`/`sips:` URI, borrowed from the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SipUri<'a> {
    /// Host as written (IPv6 without brackets).
    pub host: &'a str,
    /// Explicit port, if any.
    pub port: Option<u16>,
    /// The `transport` URI parameter, if it names UDP or TCP.
    pub transport: Option<Transport>,
    /// Whether the URI carries `lr` (loose routing).
    pub lr: bool,
    /// `sips:` scheme.
    pub secure: bool,
}

impl SipUri<'_> {
    /// The port, defaulting per scheme (5060, or 5061 for `sips:`).
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(if self.secure { 5061 } else { 5060 })
    }
}

/// Parses a URI or a name-addr (`"x" <sip:...>;p`); returns `None` for other schemes or garbage.
pub fn parse(text: &str) -> Option<SipUri<'_>> {
    let text = text.trim();
    let uri = match text.find('<') {
        Some(open) => {
            let rest = &text[open + 1..];
            &rest[..rest.find('>')?]
        }
        None => text,
    };
    let colon = uri.find(':')?;
    let scheme = &uri[..colon];
    let secure = if scheme.eq_ignore_ascii_case("sip") {
        false
    } else if scheme.eq_ignore_ascii_case("sips") {
        true
    } else {
        return None;
    };
    let rest = &uri[colon + 1..];
    // Headers (`?...`) never influence routing.
    let rest = rest.split('?').next().unwrap_or(rest);
    let hostport_and_params = match rest.rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    let (hostport, params) = match hostport_and_params.find(';') {
        Some(semi) => (
            &hostport_and_params[..semi],
            &hostport_and_params[semi + 1..],
        ),
        None => (hostport_and_params, ""),
    };
    let (host, port_text) = if let Some(v6) = hostport.strip_prefix('[') {
        let close = v6.find(']')?;
        let after = &v6[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return None,
        };
        (&v6[..close], port)
    } else {
        match hostport.rfind(':') {
            Some(c) => (&hostport[..c], Some(&hostport[c + 1..])),
            None => (hostport, None),
        }
    };
    if host.is_empty() || host.bytes().any(|b| b.is_ascii_whitespace()) {
        return None;
    }
    let port = match port_text {
        Some(p) => Some(p.trim().parse::<u16>().ok()?),
        None => None,
    };
    let mut transport = None;
    let mut lr = false;
    for p in params.split(';') {
        let (name, value) = match p.find('=') {
            Some(eq) => (p[..eq].trim(), Some(p[eq + 1..].trim())),
            None => (p.trim(), None),
        };
        if name.eq_ignore_ascii_case("lr") {
            lr = true;
        } else if name.eq_ignore_ascii_case("transport") {
            transport = value.and_then(Transport::from_token);
        }
    }
    Some(SipUri {
        host,
        port,
        transport,
        lr,
        secure,
    })
}

/// Splits a comma-separated header value (Route, Record-Route, Path) into its elements,
/// respecting `<...>` and quoted strings; yields byte ranges relative to `value`.
pub fn split_values(value: &str) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let bytes = value.as_bytes();
    let mut pos = 0;
    std::iter::from_fn(move || {
        while pos < bytes.len() && (bytes[pos].is_ascii_whitespace() || bytes[pos] == b',') {
            pos += 1;
        }
        if pos >= bytes.len() {
            return None;
        }
        let start = pos;
        let mut in_angle = false;
        let mut in_quote = false;
        while pos < bytes.len() {
            match bytes[pos] {
                b'\\' if in_quote => pos += 1,
                b'"' => in_quote = !in_quote,
                b'<' if !in_quote => in_angle = true,
                b'>' if !in_quote => in_angle = false,
                b',' if !in_quote && !in_angle => break,
                _ => {}
            }
            pos += 1;
        }
        let mut end = pos.min(bytes.len());
        while end > start && bytes[end - 1].is_ascii_whitespace() {
            end -= 1;
        }
        Some(start..end)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_route_forms() {
        let u = parse("<sip:10.0.0.1:5070;lr;transport=TCP>").unwrap();
        assert_eq!(
            (u.host, u.port, u.transport, u.lr),
            ("10.0.0.1", Some(5070), Some(Transport::Tcp), true)
        );
        let u = parse("\"P\" <sips:pcscf@[::1]:5071;lr>;x=y").unwrap();
        assert_eq!((u.host, u.port, u.secure), ("::1", Some(5071), true));
        let u = parse("sip:bob@example.com").unwrap();
        assert_eq!((u.host, u.port, u.lr), ("example.com", None, false));
        assert_eq!(u.port_or_default(), 5060);
        assert!(parse("tel:+123").is_none());
        assert!(parse("<sip:host:99999>").is_none());
        assert!(parse("<sip:").is_none());
    }

    #[test]
    fn splits_values_outside_brackets_and_quotes() {
        let v = r#"<sip:a;lr>, "x,y" <sip:b>,<sip:c,d>"#;
        let parts: Vec<&str> = split_values(v).map(|r| &v[r]).collect();
        assert_eq!(parts, vec!["<sip:a;lr>", "\"x,y\" <sip:b>", "<sip:c,d>"]);
        assert_eq!(split_values("  ").count(), 0);
    }
}
