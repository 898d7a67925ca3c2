//! name-addr / addr-spec values: From, To, Contact, Route, Record-Route, Path, Service-Route,
//! P-Associated-URI.

use std::ops::Range;

use crate::header::HeaderName;
use crate::lex::{self, comma_items, quoted, sub, trim};
use crate::message::Message;
use crate::params::Params;

/// One `[display-name] <uri> ;params` or `uri ;params` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Display name as written (quotes kept), if any.
    pub display_name: Option<&'a str>,
    /// The URI (without angle brackets); `*` for a wildcard Contact.
    pub uri: &'a str,
    /// The `tag` header parameter.
    pub tag: Option<&'a str>,
    /// Header parameters after the URI (starting at the first `;`, empty if none).
    pub params: &'a str,
    /// This value only, within the message.
    pub range: Range<usize>,
    /// Index of the header (in [`Message::headers`]) that holds this value.
    pub header_index: usize,
}

impl<'a> NameAddr<'a> {
    fn parse(text: &'a str, range: Range<usize>, header_index: usize) -> NameAddr<'a> {
        let b = text.as_bytes();
        // The first '<' outside a quoted string starts a name-addr.
        let mut p = 0;
        let mut lt = None;
        while p < b.len() {
            match b[p] {
                b'"' => {
                    p = quoted(b, p).1;
                    continue;
                }
                b'<' => {
                    lt = Some(p);
                    break;
                }
                b';' => break,
                _ => p += 1,
            }
        }
        let (display_name, uri, rest_at) = match lt {
            Some(lt) => {
                let d = trim(b, 0, lt);
                let display = (!d.is_empty()).then(|| sub(text, d));
                let gt = b[lt..].iter().position(|&c| c == b'>').map(|g| lt + g);
                match gt {
                    Some(gt) => (display, sub(text, lt + 1..gt), gt + 1),
                    None => (display, sub(text, lt + 1..b.len()), b.len()),
                }
            }
            None => {
                let semi = text.find(';').unwrap_or(text.len());
                (None, sub(text, trim(b, 0, semi)), semi)
            }
        };
        let params = text.get(rest_at..).unwrap_or("");
        let params = params.find(';').map_or("", |s| &params[s..]);
        let tag = Params::new(params).find("tag").flatten();
        NameAddr {
            display_name,
            uri,
            tag,
            params,
            range,
            header_index,
        }
    }

    /// A header parameter by exact, case-insensitive name; `Some(None)` for a flag.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        Params::new(self.params).find(name)
    }

    /// The header parameters in order.
    pub fn param_iter(&self) -> Params<'a> {
        Params::new(self.params)
    }

    /// The `expires` parameter (Contact), saturating like the Expires header.
    pub fn expires(&self) -> Option<u32> {
        lex::parse_delta(self.param("expires").flatten()?)
    }
}

impl<'a> Message<'a> {
    /// Every value of the headers with this name, comma-split, in order. For From/To (which
    /// never hold lists) use [`Message::from`] / [`Message::to`].
    pub fn name_addrs(&self, name: HeaderName) -> Vec<NameAddr<'a>> {
        let mut out = Vec::new();
        for (i, h) in self.headers().iter().enumerate() {
            if h.name != name {
                continue;
            }
            let value = self.value(h);
            let base = h.value_range.start;
            for r in comma_items(value.as_bytes()) {
                out.push(NameAddr::parse(
                    sub(value, r.clone()),
                    base + r.start..base + r.end,
                    i,
                ));
            }
        }
        out
    }

    fn single_addr(&self, name: HeaderName) -> Option<NameAddr<'a>> {
        let (i, h) = self
            .headers()
            .iter()
            .enumerate()
            .find(|(_, h)| h.name == name)?;
        let value = self.value(h);
        let r = trim(value.as_bytes(), 0, value.len());
        let base = h.value_range.start;
        Some(NameAddr::parse(
            sub(value, r.clone()),
            base + r.start..base + r.end,
            i,
        ))
    }

    /// The From value.
    pub fn from(&self) -> Option<NameAddr<'a>> {
        self.single_addr(HeaderName::From)
    }

    /// The To value.
    pub fn to(&self) -> Option<NameAddr<'a>> {
        self.single_addr(HeaderName::To)
    }

    /// Contact values (a `*` wildcard has `uri == "*"`).
    pub fn contacts(&self) -> Vec<NameAddr<'a>> {
        self.name_addrs(HeaderName::Contact)
    }

    /// Route values.
    pub fn route(&self) -> Vec<NameAddr<'a>> {
        self.name_addrs(HeaderName::Route)
    }

    /// Record-Route values.
    pub fn record_route(&self) -> Vec<NameAddr<'a>> {
        self.name_addrs(HeaderName::RecordRoute)
    }

    /// Path values (RFC 3327).
    pub fn path(&self) -> Vec<NameAddr<'a>> {
        self.name_addrs(HeaderName::Path)
    }

    /// Service-Route values (RFC 3608).
    pub fn service_route(&self) -> Vec<NameAddr<'a>> {
        self.name_addrs(HeaderName::ServiceRoute)
    }

    /// P-Associated-URI values (RFC 7315).
    pub fn p_associated_uris(&self) -> Vec<NameAddr<'a>> {
        self.name_addrs(HeaderName::PAssociatedUri)
    }
}

#[cfg(test)]
mod tests {
    use crate::scan;

    #[test]
    fn addresses() {
        let raw = b"SIP/2.0 200 OK\r\n\
From: \"Bob, <the> Builder\" <sip:bob@b.example;transport=tcp>;tag=1928\r\n\
To: sip:alice@a.example;tag=xyz\r\n\
Contact: <sip:alice@10.0.0.1:5060>;expires=600;+sip.instance=\"<urn:uuid:1>\", <sip:alice@10.0.0.2>;EXPIRES=99999999999\r\n\
Path: <sip:term@pcscf.a.example;lr>\r\n\
Path: <sip:other@icscf.a.example;lr>, <sip:x@y;lr>\r\n\
Service-Route: <sip:orig@scscf.a.example;lr>\r\n\
P-Associated-URI: <sip:alice@a.example>, <tel:+15551234>\r\n\
Contact: *\r\n\
\r\n";
        let m = scan(raw).unwrap();
        let f = m.from().unwrap();
        assert_eq!(f.display_name, Some("\"Bob, <the> Builder\""));
        assert_eq!(f.uri, "sip:bob@b.example;transport=tcp");
        assert_eq!(f.tag, Some("1928"));
        let t = m.to().unwrap();
        assert_eq!(t.uri, "sip:alice@a.example");
        assert_eq!(t.tag, Some("xyz"));
        let c = m.contacts();
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].expires(), Some(600));
        assert_eq!(c[0].param("+sip.instance"), Some(Some("<urn:uuid:1>")));
        assert_eq!(c[1].expires(), Some(u32::MAX));
        assert_eq!(c[2].uri, "*");
        let p = m.path();
        assert_eq!(p.len(), 3);
        assert_eq!(p[1].uri, "sip:other@icscf.a.example;lr");
        assert_eq!(p[2].header_index, 4);
        assert_eq!(&raw[p[2].range.clone()], b"<sip:x@y;lr>");
        assert_eq!(m.service_route()[0].uri, "sip:orig@scscf.a.example;lr");
        assert_eq!(m.p_associated_uris()[1].uri, "tel:+15551234");
        assert!(m.route().is_empty());
        assert!(m.record_route().is_empty());
    }
}
