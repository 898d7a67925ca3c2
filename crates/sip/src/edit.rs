//! Splicing editor: byte ranges in, splices out.
//!
//! Untouched bytes are copied verbatim, so an unedited message leaves byte-identical and an
//! edited one changes only what was spliced (plus Content-Length when the body length changes).

use std::ops::Range;

use crate::header::{Header, HeaderName};
use crate::lex::comma_items;
use crate::message::Message;

#[derive(Debug, Clone)]
struct Splice {
    start: usize,
    end: usize,
    data: Range<usize>,
}

/// Collects splices against one message; [`Editor::finish`] writes the result.
///
/// Splices at the same position apply in the order they were added. Overlapping splices are
/// clipped to what is left after the earlier one; ranges past the end are clamped. A splice that
/// starts in the header section and reaches into the body is clipped at the body start.
pub struct Editor<'m, 'a> {
    msg: &'m Message<'a>,
    splices: Vec<Splice>,
    arena: Vec<u8>,
}

impl std::fmt::Debug for Editor<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The inserted bytes may hold key material, so only sizes are shown.
        f.debug_struct("Editor")
            .field("message_len", &self.msg.bytes().len())
            .field("splices", &self.splices.len())
            .field("inserted_bytes", &self.arena.len())
            .finish()
    }
}

impl<'a> Message<'a> {
    /// Start editing this message.
    pub fn edit(&self) -> Editor<'_, 'a> {
        Editor {
            msg: self,
            splices: Vec::new(),
            arena: Vec::new(),
        }
    }
}

impl<'m, 'a> Editor<'m, 'a> {
    /// The message being edited.
    pub fn message(&self) -> &'m Message<'a> {
        self.msg
    }

    fn push(&mut self, range: Range<usize>, parts: &[&[u8]]) -> &mut Self {
        let len = self.msg.bytes().len();
        let start = range.start.min(len);
        let end = range.end.clamp(start, len);
        let from = self.arena.len();
        for p in parts {
            self.arena.extend_from_slice(p);
        }
        self.splices.push(Splice {
            start,
            end,
            data: from..self.arena.len(),
        });
        self
    }

    /// Replace `range` with whatever `write` appends to the buffer; on error nothing is spliced.
    pub(crate) fn replace_with<E>(
        &mut self,
        range: Range<usize>,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let from = self.arena.len();
        if let Err(e) = write(&mut self.arena) {
            self.arena.truncate(from);
            return Err(e);
        }
        let to = self.arena.len();
        let len = self.msg.bytes().len();
        let start = range.start.min(len);
        let end = range.end.clamp(start, len);
        self.splices.push(Splice {
            start,
            end,
            data: from..to,
        });
        Ok(())
    }

    /// Remove the bytes in `range`.
    pub fn remove(&mut self, range: Range<usize>) -> &mut Self {
        self.push(range, &[])
    }

    /// Insert `bytes` at offset `at`.
    pub fn insert(&mut self, at: usize, bytes: &[u8]) -> &mut Self {
        self.push(at..at, &[bytes])
    }

    /// Replace the bytes in `range` with `bytes`.
    pub fn replace(&mut self, range: Range<usize>, bytes: &[u8]) -> &mut Self {
        self.push(range, &[bytes])
    }

    /// Remove a whole header field (with its folding and line ending).
    pub fn remove_header(&mut self, h: &Header) -> &mut Self {
        self.remove(h.line.clone())
    }

    /// Insert a new `name: value` field before `h` (written as given: the caller supplies valid
    /// header text without CR/LF).
    pub fn insert_header_before(&mut self, h: &Header, name: &str, value: &[u8]) -> &mut Self {
        self.push(
            h.line.start..h.line.start,
            &[name.as_bytes(), b": ", value, b"\r\n"],
        )
    }

    /// Append a new `name: value` field after the last header (written as given, like
    /// [`Editor::insert_header_before`]).
    pub fn append_header(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let at = self.msg.head_end();
        self.push(at..at, &[name.as_bytes(), b": ", value, b"\r\n"])
    }

    /// Replace the value of `h` (its name and line ending stay).
    pub fn set_header_value(&mut self, h: &Header, value: &[u8]) -> &mut Self {
        self.replace(h.value_range.clone(), value)
    }

    /// Add `Via: <value>` as the topmost header line (a proxy's own Via).
    pub fn prepend_via(&mut self, via_value: &[u8]) -> &mut Self {
        let at = self
            .msg
            .headers()
            .first()
            .map_or(self.msg.head_end(), |h| h.line.start);
        self.push(at..at, &[b"Via: ", via_value, b"\r\n"])
    }

    /// Remove the first Via value: the whole line if it was alone in its header, otherwise the
    /// value and the comma and white space after it. No-op without a Via.
    pub fn remove_top_via(&mut self) -> &mut Self {
        match self.msg.top_via() {
            Some(top) => self.remove_value(top.header_index, top.range),
            None => self,
        }
    }

    /// Remove one value of a comma-separated header (a [`crate::Via`] or [`crate::NameAddr`]
    /// as the accessors return it: header index and range) with one adjacent comma; the whole
    /// line if it was the only value. No-op when `range` is not a value of that header.
    pub fn remove_value(&mut self, header_index: usize, range: Range<usize>) -> &mut Self {
        let Some(h) = self.msg.headers().get(header_index) else {
            return self;
        };
        let base = h.value_range.start;
        let items: Vec<Range<usize>> = comma_items(self.msg.value(h).as_bytes())
            .map(|r| base + r.start..base + r.end)
            .collect();
        let Some(pos) = items.iter().position(|r| *r == range) else {
            return self;
        };
        match (
            pos.checked_sub(1).and_then(|p| items.get(p)),
            items.get(pos + 1),
        ) {
            (_, Some(next)) => self.remove(range.start..next.start),
            (Some(prev), None) => self.remove(prev.end..range.end),
            (None, None) => self.remove(h.line.clone()),
        }
    }

    /// Set Max-Forwards to `n` (the field is added after the Vias if missing).
    pub fn set_max_forwards(&mut self, n: u32) -> &mut Self {
        let mut buf = itoa_buf();
        let digits = fmt_u64(&mut buf, u64::from(n));
        match self.msg.header(HeaderName::MaxForwards) {
            Some(h) => {
                let r = h.value_range.clone();
                self.push(r, &[digits])
            }
            None => {
                let at = self
                    .msg
                    .headers()
                    .iter()
                    .rev()
                    .find(|h| h.name == HeaderName::Via)
                    .map_or(self.msg.head_end(), |h| h.line.end);
                self.push(at..at, &[b"Max-Forwards: ", digits, b"\r\n"])
            }
        }
    }

    /// Write the edited message. Content-Length fields are rewritten when the body length changed
    /// (unless an edit touched that field itself); without a Content-Length field none is added.
    pub fn finish(self) -> Vec<u8> {
        let Editor {
            msg,
            mut splices,
            mut arena,
        } = self;
        let src = msg.bytes();
        if splices.is_empty() {
            return src.to_vec();
        }
        let body_start = msg.body_start().min(src.len());
        for s in &mut splices {
            if s.start < body_start && s.end > body_start {
                s.end = body_start;
            }
        }
        splices.sort_by_key(|s| s.start);
        // Clip overlaps first so the body arithmetic and the output agree.
        let mut cursor = 0;
        let (mut body_added, mut body_removed) = (0usize, 0usize);
        for s in &mut splices {
            if s.start < cursor {
                s.start = cursor;
                s.end = s.end.max(cursor);
            }
            cursor = s.end;
            if s.start >= body_start {
                body_added += s.data.len();
                body_removed += s.end - s.start;
            }
        }
        if body_added != body_removed {
            let old_body = src.len() - body_start;
            let new_body = (old_body + body_added).saturating_sub(body_removed) as u64;
            let mut buf = itoa_buf();
            let digits = fmt_u64(&mut buf, new_body);
            let mut fixes = Vec::new();
            for h in msg
                .headers()
                .iter()
                .filter(|h| h.name == HeaderName::ContentLength)
            {
                let touched = splices.iter().any(|s| {
                    (s.start < h.line.end && s.end > h.line.start)
                        || (s.start == s.end && s.start > h.line.start && s.start < h.line.end)
                });
                if !touched {
                    let from = arena.len();
                    arena.extend_from_slice(digits);
                    fixes.push(Splice {
                        start: h.value_range.start,
                        end: h.value_range.end,
                        data: from..arena.len(),
                    });
                }
            }
            if !fixes.is_empty() {
                splices.extend(fixes);
                splices.sort_by_key(|s| s.start);
            }
        }
        let grow: usize = splices.iter().map(|s| s.data.len()).sum();
        let mut out = Vec::with_capacity(src.len() + grow);
        let mut cursor = 0;
        for s in &splices {
            let start = s.start.max(cursor);
            let end = s.end.max(start);
            out.extend_from_slice(src.get(cursor..start).unwrap_or(b""));
            out.extend_from_slice(arena.get(s.data.clone()).unwrap_or(b""));
            cursor = end;
        }
        out.extend_from_slice(src.get(cursor..).unwrap_or(b""));
        // Inserted bytes may be key material (restored ck/ik): clear them before the buffer is
        // freed; `black_box` keeps the stores from being optimised away.
        arena.fill(0);
        std::hint::black_box(&arena);
        out
    }
}

fn itoa_buf() -> [u8; 20] {
    [0u8; 20]
}

/// Decimal digits of `n` without allocating.
fn fmt_u64(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// A copy of the message with a new topmost `Via: <via_value>` line.
pub fn prepend_via(msg: &Message<'_>, via_value: &[u8]) -> Vec<u8> {
    let mut e = msg.edit();
    e.prepend_via(via_value);
    e.finish()
}

/// A copy of the message without its first Via value (the whole line if it was alone).
pub fn remove_top_via(msg: &Message<'_>) -> Vec<u8> {
    let mut e = msg.edit();
    e.remove_top_via();
    e.finish()
}

/// A copy of the message with Max-Forwards set to `n`.
pub fn set_max_forwards(msg: &Message<'_>, n: u32) -> Vec<u8> {
    let mut e = msg.edit();
    e.set_max_forwards(n);
    e.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan;

    const MSG: &[u8] = b"INVITE sip:b@x SIP/2.0\r\n\
Via: SIP/2.0/UDP a:5060;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2\r\n\
Via: SIP/2.0/UDP c;branch=z9hG4bK3\r\n\
Max-Forwards: 70\r\n\
Content-Length: 5\r\n\
\r\n\
hello";

    #[test]
    fn no_edit_is_identity() {
        let m = scan(MSG).unwrap();
        assert_eq!(m.edit().finish(), MSG);
    }

    #[test]
    fn via_helpers() {
        let m = scan(MSG).unwrap();
        let out = prepend_via(&m, b"SIP/2.0/UDP me;branch=z9hG4bKme");
        assert!(out.starts_with(
            b"INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP me;branch=z9hG4bKme\r\nVia: SIP/2.0/UDP a"
        ));
        let back = scan(&out).unwrap();
        assert_eq!(remove_top_via(&back), MSG);

        let once = remove_top_via(&m);
        let m1 = scan(&once).unwrap();
        assert_eq!(m1.value(&m1.headers()[0]), "SIP/2.0/UDP b;branch=z9hG4bK2");
        let twice = remove_top_via(&m1);
        let m2 = scan(&twice).unwrap();
        assert_eq!(m2.vias().len(), 1);
        assert_eq!(m2.top_via().unwrap().branch(), Some("z9hG4bK3"));
        let m3 = scan(b"OPTIONS sip:a SIP/2.0\r\n\r\n").unwrap();
        assert_eq!(remove_top_via(&m3), m3.bytes());
    }

    #[test]
    fn remove_any_list_value() {
        let raw = b"OPTIONS sip:a SIP/2.0\r\nRoute: <sip:a;lr>, <sip:b;lr> ,<sip:c;lr>\r\nRoute: <sip:d;lr>\r\n\r\n";
        let m = scan(raw).unwrap();
        let r = m.route();
        let cases: [(usize, &[u8]); 4] = [
            (0, b"Route: <sip:b;lr> ,<sip:c;lr>\r\nRoute: <sip:d;lr>\r\n"),
            (1, b"Route: <sip:a;lr>, <sip:c;lr>\r\nRoute: <sip:d;lr>\r\n"),
            (2, b"Route: <sip:a;lr>, <sip:b;lr>\r\nRoute: <sip:d;lr>\r\n"),
            (3, b"Route: <sip:a;lr>, <sip:b;lr> ,<sip:c;lr>\r\n"),
        ];
        for (i, want) in cases {
            let mut e = m.edit();
            e.remove_value(r[i].header_index, r[i].range.clone());
            let out = e.finish();
            assert_eq!(&out[23..out.len() - 2], want, "value {i}");
        }
        let mut e = m.edit();
        e.remove_value(1, 0..3).remove_value(99, 0..1);
        assert_eq!(e.finish(), raw);
    }

    #[test]
    fn max_forwards() {
        let m = scan(MSG).unwrap();
        let out = set_max_forwards(&m, 69);
        assert_eq!(scan(&out).unwrap().max_forwards(), Some(69));
        assert_eq!(out.len(), MSG.len());
        let m =
            scan(b"OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP a\r\nTo: <sip:a>\r\n\r\n").unwrap();
        let out = set_max_forwards(&m, 0);
        assert_eq!(
            out,
            b"OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP a\r\nMax-Forwards: 0\r\nTo: <sip:a>\r\n\r\n"
        );
    }

    #[test]
    fn body_edits_fix_content_length() {
        let m = scan(MSG).unwrap();
        let mut e = m.edit();
        e.insert(m.bytes().len(), b" world!");
        let out = e.finish();
        assert!(out.ends_with(b"Content-Length: 12\r\n\r\nhello world!"));
        let m2 = scan(&out).unwrap();
        assert_eq!(m2.body(), b"hello world!");

        let mut e = m.edit();
        e.remove(m.body_start()..m.body_start() + 5);
        let out = e.finish();
        assert!(out.ends_with(b"Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn header_edits_and_overlaps() {
        let m = scan(MSG).unwrap();
        let mf = m.header(HeaderName::MaxForwards).unwrap().clone();
        let cl = m.header(HeaderName::ContentLength).unwrap().clone();
        let mut e = m.edit();
        e.insert_header_before(&cl, "X-New", b"1")
            .remove_header(&mf)
            .append_header("X-Last", b"2")
            .remove(0..10_000)
            .replace(std::ops::Range { start: 5, end: 2 }, b"")
            .insert(usize::MAX, b"");
        // Overlapping/odd ranges must not panic; the result is whatever clipping yields.
        let _ = e.finish();

        let mut e = m.edit();
        e.insert_header_before(&cl, "X-New", b"1")
            .remove_header(&mf)
            .append_header("X-Last", b"2");
        let out = e.finish();
        let m2 = scan(&out).unwrap();
        assert_eq!(m2.max_forwards(), None);
        let names: Vec<&str> = m2.headers().iter().map(|h| m2.name(h)).collect();
        assert_eq!(names, ["Via", "Via", "X-New", "Content-Length", "X-Last"]);
        assert_eq!(m2.body(), b"hello");
    }

    #[test]
    fn digits() {
        let mut b = itoa_buf();
        assert_eq!(fmt_u64(&mut b, 0), b"0");
        let mut b = itoa_buf();
        assert_eq!(fmt_u64(&mut b, u64::MAX), b"18446744073709551615");
    }
}
