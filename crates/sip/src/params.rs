//! `;name[=value]` parameter lists as found after Via sent-by and name-addr values.

use std::ops::Range;

use crate::lex::{is_lws, quoted, skip_lws, token_end};

/// One `;name[=value]` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// The name as written.
    pub name: &'a str,
    /// `None` for a flag parameter; for a quoted value, the text between the quotes (escapes kept).
    pub value: Option<&'a str>,
    /// Whether the value was a quoted string.
    pub quoted: bool,
}

/// Iterator over the parameters in a `;a=1;b;c="x"` string (leading text before the first `;`
/// is skipped). Lenient about white space; malformed items are skipped, never a panic.
#[derive(Debug, Clone)]
pub struct Params<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Params<'a> {
    /// Parameters of `s`, starting at its first `;`.
    pub fn new(s: &'a str) -> Params<'a> {
        let pos = s.find(';').unwrap_or(s.len());
        Params { s, pos }
    }

    /// The first parameter named `name` (case-insensitive, exact): `Some(None)` for a flag.
    pub fn find(self, name: &str) -> Option<Option<&'a str>> {
        let mut it = self;
        it.find_map(|p| p.name.eq_ignore_ascii_case(name).then_some(p.value))
    }

    fn get(&self, r: Range<usize>) -> &'a str {
        self.s.get(r).unwrap_or("")
    }
}

impl<'a> Iterator for Params<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        let b = self.s.as_bytes();
        loop {
            // Expect ';' (possibly with white space around it).
            let p = skip_lws(b, self.pos);
            if p >= b.len() {
                self.pos = b.len();
                return None;
            }
            if b[p] != b';' {
                // Junk between parameters: resynchronise at the next ';'.
                self.pos = next_semicolon(b, p);
                if self.pos >= b.len() {
                    return None;
                }
                continue;
            }
            let n = skip_lws(b, p + 1);
            let n_end = token_end(b, n);
            if n_end == n {
                self.pos = next_semicolon(b, n);
                continue;
            }
            let name = self.get(n..n_end);
            let e = skip_lws(b, n_end);
            if e < b.len() && b[e] == b'=' {
                let v = skip_lws(b, e + 1);
                if v < b.len() && b[v] == b'"' {
                    let (content, after) = quoted(b, v);
                    self.pos = after;
                    return Some(Param {
                        name,
                        value: Some(self.get(content)),
                        quoted: true,
                    });
                }
                let mut v_end = v;
                while v_end < b.len() && !is_lws(b[v_end]) && !matches!(b[v_end], b';' | b',') {
                    v_end += 1;
                }
                self.pos = v_end;
                return Some(Param {
                    name,
                    value: Some(self.get(v..v_end)),
                    quoted: false,
                });
            }
            self.pos = n_end;
            return Some(Param {
                name,
                value: None,
                quoted: false,
            });
        }
    }
}

fn next_semicolon(b: &[u8], mut p: usize) -> usize {
    while p < b.len() {
        match b[p] {
            b'"' => p = quoted(b, p).1,
            b';' => return p,
            _ => p += 1,
        }
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flags_values_and_quotes() {
        let ps: Vec<Param<'_>> =
            Params::new("SIP/2.0/UDP h ; branch = z9 ;rport; x=\"a;b\\\"c\";;=junk;lr").collect();
        let names: Vec<&str> = ps.iter().map(|p| p.name).collect();
        assert_eq!(names, ["branch", "rport", "x", "lr"]);
        assert_eq!(ps[0].value, Some("z9"));
        assert_eq!(ps[1].value, None);
        assert_eq!(ps[2].value, Some("a;b\\\"c"));
        assert!(ps[2].quoted);
        assert_eq!(Params::new(";A=1").find("a"), Some(Some("1")));
        assert_eq!(Params::new(";ab=1").find("a"), None);
    }
}
