//! Digest challenge and credential parameters (RFC 2617 / RFC 3310 auth-params), parsed leniently
//! and rewritten with the other parameters kept verbatim.
//!
//! The lab parses these itself rather than through the agents' code path so that a bug in one
//! parser is not masked by the same bug in the other.

use std::ops::Range;

/// One auth-param: name and unquoted value, and where the whole `name=value` sits in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Name as written.
    pub name: String,
    /// Value with quotes removed and `\x` escapes resolved.
    pub value: String,
    /// Whether the value was a quoted string.
    pub quoted: bool,
    /// Byte range of `name=value` within the parsed text.
    pub range: Range<usize>,
}

/// A parsed `Digest ...` challenge or credentials value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// The scheme token (`Digest`).
    pub scheme: String,
    /// The parameters in order.
    pub params: Vec<Param>,
}

impl Digest {
    /// The first parameter with this name (case-insensitive, exact: `ck` never matches `ckx`).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_str())
    }
}

/// Parses `scheme param=value, param="value", ...`. `None` when the text is not of that shape.
pub fn parse(text: &str) -> Option<Digest> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    let start = i;
    while i < b.len() && !b[i].is_ascii_whitespace() {
        i += 1;
    }
    let scheme = text.get(start..i)?.to_string();
    if scheme.is_empty() || scheme.contains('=') {
        return None;
    }
    let mut params = Vec::new();
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let name_start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let name = text[name_start..i].to_string();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if name.is_empty() || i >= b.len() || b[i] != b'=' {
            return None;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let (value, quoted) = if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut v = Vec::new();
            loop {
                match b.get(i)? {
                    b'"' => {
                        i += 1;
                        break;
                    }
                    b'\\' => {
                        v.push(*b.get(i + 1)?);
                        i += 2;
                    }
                    c => {
                        v.push(*c);
                        i += 1;
                    }
                }
            }
            (String::from_utf8(v).ok()?, true)
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            (text[vs..i].to_string(), false)
        };
        params.push(Param {
            name,
            value,
            quoted,
            range: name_start..i,
        });
        if params.len() > 64 {
            return None;
        }
    }
    Some(Digest { scheme, params })
}

/// Rewrites `text` without the named parameters (exact, case-insensitive names); every other
/// parameter keeps its exact text and order, joined by `", "`.
pub fn without(text: &str, parsed: &Digest, names: &[&str]) -> String {
    let kept: Vec<&str> = parsed
        .params
        .iter()
        .filter(|p| !names.iter().any(|n| p.name.eq_ignore_ascii_case(n)))
        .map(|p| &text[p.range.clone()])
        .collect();
    format!("{} {}", parsed.scheme, kept.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KAMAILIO: &str = r#"Digest realm="ims.example.org", nonce="wA1gMQPc7lLER4EZSUIC6Dn5bNmAD68XXfWzGAfiWLA=", algorithm=AKAv1-MD5, ck="58c433ff7a7082acd424220f2b67c556", ik="21a8c1f929702adb3e738488b9f5c5da", qop="auth,auth-int""#;

    #[test]
    fn parses_kamailio_form_and_strips_keys() {
        let d = parse(KAMAILIO).unwrap();
        assert_eq!(d.scheme, "Digest");
        assert_eq!(d.param("CK"), Some("58c433ff7a7082acd424220f2b67c556"));
        assert_eq!(d.param("qop"), Some("auth,auth-int"));
        assert_eq!(d.param("algorithm"), Some("AKAv1-MD5"));
        let stripped = without(KAMAILIO, &d, &["ck", "ik"]);
        assert_eq!(
            stripped,
            r#"Digest realm="ims.example.org", nonce="wA1gMQPc7lLER4EZSUIC6Dn5bNmAD68XXfWzGAfiWLA=", algorithm=AKAv1-MD5, qop="auth,auth-int""#
        );
    }

    #[test]
    fn exact_names_and_lenient_spacing() {
        let d = parse("Digest  ckx=\"1\" ,ck = \"2\",  username=\"a\\\"b\"").unwrap();
        assert_eq!(d.param("ck"), Some("2"));
        assert_eq!(d.param("username"), Some("a\"b"));
        assert!(parse("Digest realm=\"open").is_none());
        assert!(parse("Digest =x").is_none());
    }

    proptest! {
        #[test]
        fn never_panics(text in ".{0,200}") {
            if let Some(d) = parse(&text) {
                let _ = without(&text, &d, &["ck"]);
            }
        }
    }
}
