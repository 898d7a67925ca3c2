//! SIP/SIPS/TEL URIs split into their parts (borrowed, nothing decoded).

use crate::params::Params;

/// A URI as written: `scheme:[user[:password]@]host[:port][;params][?headers]`.
///
/// For schemes other than `sip`/`sips` (e.g. `tel:+1555;phone-context=x`) the part before the
/// first `;` is the `user` and `host` is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uri<'a> {
    /// `sip`, `sips`, `tel`, ... as written.
    pub scheme: &'a str,
    /// The user part (with any `:password` and user parameters), if any.
    pub user: Option<&'a str>,
    /// Host (IPv6 references keep their brackets); empty for non-SIP schemes.
    pub host: &'a str,
    /// Port, if written.
    pub port: Option<u16>,
    /// URI parameters starting at the first `;` (empty if none).
    pub params: &'a str,
    /// Headers after `?` (without it; empty if none).
    pub headers: &'a str,
}

impl<'a> Uri<'a> {
    /// Parse a URI (surrounding `<>` and white space are accepted); `None` if it has no scheme,
    /// or a SIP URI has no host or a bad port.
    pub fn parse(s: &'a str) -> Option<Uri<'a>> {
        let s = s.trim().trim_start_matches('<').trim_end_matches('>');
        let colon = s.find(':')?;
        let scheme = &s[..colon];
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        {
            return None;
        }
        let rest = &s[colon + 1..];
        let (rest, headers) = match rest.find('?') {
            Some(q)
                if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") =>
            {
                (&rest[..q], &rest[q + 1..])
            }
            _ => (rest, ""),
        };
        if !(scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")) {
            let semi = rest.find(';').unwrap_or(rest.len());
            return Some(Uri {
                scheme,
                user: Some(&rest[..semi]),
                host: "",
                port: None,
                params: &rest[semi..],
                headers,
            });
        }
        let (user, hostport_params) = match rest.find('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let b = hostport_params.as_bytes();
        let host_end = if b.first() == Some(&b'[') {
            hostport_params.find(']')? + 1
        } else {
            hostport_params
                .find([':', ';'])
                .unwrap_or(hostport_params.len())
        };
        let host = &hostport_params[..host_end];
        if host.is_empty() {
            return None;
        }
        let after = &hostport_params[host_end..];
        let (port, params) = match after.strip_prefix(':') {
            Some(p) => {
                let end = p.find(';').unwrap_or(p.len());
                (Some(p[..end].parse::<u16>().ok()?), &p[end..])
            }
            None => (None, after),
        };
        if !params.is_empty() && !params.starts_with(';') {
            return None;
        }
        Some(Uri {
            scheme,
            user,
            host,
            port,
            params,
            headers,
        })
    }

    /// A URI parameter by exact, case-insensitive name; `Some(None)` for a flag such as `lr`.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        Params::new(self.params).find(name)
    }

    /// The `transport` parameter.
    pub fn transport(&self) -> Option<&'a str> {
        self.param("transport").flatten()
    }

    /// Whether the `lr` (loose routing) flag is present.
    pub fn is_loose_route(&self) -> bool {
        self.param("lr").is_some()
    }

    /// Whether the scheme is `sips`.
    pub fn is_sips(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("sips")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uris() {
        let u = Uri::parse("sip:alice:pw@[2001:db8::1]:5061;transport=TCP;lr?Subject=x").unwrap();
        assert_eq!(u.scheme, "sip");
        assert_eq!(u.user, Some("alice:pw"));
        assert_eq!(u.host, "[2001:db8::1]");
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.transport(), Some("TCP"));
        assert!(u.is_loose_route());
        assert_eq!(u.headers, "Subject=x");
        let u = Uri::parse(" <sips:pcscf.ims.example;lr> ").unwrap();
        assert!(u.is_sips());
        assert_eq!((u.user, u.host, u.port), (None, "pcscf.ims.example", None));
        assert_eq!(Uri::parse("sip:h:99999"), None);
        assert_eq!(Uri::parse("sip:;x"), None);
        assert_eq!(Uri::parse("nocolon"), None);
        assert_eq!(Uri::parse("sip:[::1"), None);
    }

    #[test]
    fn other_schemes() {
        let u = Uri::parse("tel:+15551234;phone-context=ims.example").unwrap();
        assert_eq!(u.scheme, "tel");
        assert_eq!(u.user, Some("+15551234"));
        assert_eq!(u.host, "");
        assert_eq!(u.param("phone-context"), Some(Some("ims.example")));
    }
}
