//! The scanner: start line, header byte ranges and body of one message, nothing copied.

use std::ops::Range;

use crate::ScanError;
use crate::header::{Header, HeaderName};
use crate::lex::{self, find_byte, is_token, sub};

/// Limits applied to untrusted input before anything is allocated for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message (start line, headers and body) in bytes.
    pub max_message: usize,
    /// Most header fields (a folded field counts once).
    pub max_headers: usize,
    /// Longest physical line in bytes, without its line ending.
    pub max_line: usize,
}

impl Limits {
    /// 65535-byte messages, 256 headers, 8192-byte lines.
    pub const DEFAULT: Limits = Limits {
        max_message: 65535,
        max_headers: 256,
        max_line: 8192,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// The first line of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// `METHOD request-uri SIP/2.0`.
    Request {
        /// The method token as written.
        method: &'a str,
        /// The Request-URI as written.
        uri: &'a str,
    },
    /// `SIP/2.0 code reason`.
    Response {
        /// The status code (100..=699).
        code: u16,
        /// The reason phrase as written (may be empty).
        reason: &'a str,
    },
}

/// Start line as ranges, produced by the head walker.
#[derive(Debug, Clone)]
pub(crate) enum StartRanges {
    Request {
        method: Range<usize>,
        uri: Range<usize>,
        version: Range<usize>,
    },
    Response {
        version: Range<usize>,
        code: u16,
        reason: Range<usize>,
    },
}

/// What the head walker learns about a header section.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) start: StartRanges,
    /// Start of the empty line that ends the headers.
    pub(crate) head_end: usize,
    /// First body byte (after the empty line).
    pub(crate) body_start: usize,
    pub(crate) content_length: Option<usize>,
}

/// Line content end and the start of the next line, for the line starting at `pos`.
fn line_at(buf: &[u8], pos: usize) -> Option<(usize, usize)> {
    let rest = buf.get(pos..)?;
    let nl = pos + find_byte(b'\n', rest)?;
    let end = if nl > pos && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    Some((end, nl + 1))
}

fn next_line(buf: &[u8], pos: usize, limits: &Limits) -> Result<(usize, usize), ScanError> {
    match line_at(buf, pos) {
        Some((end, _)) if end - pos > limits.max_line => {
            Err(ScanError::LineTooLong { offset: pos })
        }
        Some(l) => Ok(l),
        None if buf.len() - pos > limits.max_line => Err(ScanError::LineTooLong { offset: pos }),
        None => Err(ScanError::Incomplete { offset: buf.len() }),
    }
}

fn parse_start(line: &[u8]) -> Result<StartRanges, ScanError> {
    let bad = |offset: usize| ScanError::BadStartLine { offset };
    let sp = |from: usize| {
        let mut p = from;
        while p < line.len() && line[p] == b' ' {
            p += 1;
        }
        p
    };
    let word_end = |from: usize| {
        let mut p = from;
        while p < line.len() && !matches!(line[p], b' ' | b'\t') {
            p += 1;
        }
        p
    };
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        let v_end = word_end(0);
        let c = sp(v_end);
        if c == v_end {
            return Err(bad(v_end));
        }
        let digits = line.get(c..c + 3).ok_or(bad(c))?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad(c));
        }
        let code = digits
            .iter()
            .fold(0u16, |a, d| a * 10 + u16::from(d - b'0'));
        if !(100..=699).contains(&code) {
            return Err(bad(c));
        }
        let after = c + 3;
        if after < line.len() && line[after] != b' ' {
            return Err(bad(after));
        }
        let r = sp(after).min(line.len());
        Ok(StartRanges::Response {
            version: 0..v_end,
            code,
            reason: r..line.len(),
        })
    } else {
        let m_end = lex::token_end(line, 0);
        if m_end == 0 || m_end >= line.len() || line[m_end] != b' ' {
            return Err(bad(m_end));
        }
        let u = sp(m_end);
        let u_end = word_end(u);
        if u_end == u {
            return Err(bad(u));
        }
        let v = sp(u_end);
        if v == u_end {
            return Err(bad(u_end));
        }
        let v_end = word_end(v);
        if v_end != line.len() || v_end - v < 4 || !line[v..v + 4].eq_ignore_ascii_case(b"SIP/") {
            return Err(bad(v));
        }
        Ok(StartRanges::Request {
            method: 0..m_end,
            uri: u..u_end,
            version: v..v_end,
        })
    }
}

/// Walk the start line and header section of `buf` (which starts at the start line), filling
/// `headers`. Shared by [`scan_with`] and the framer so both apply the same rules and limits.
/// UTF-8 is checked by the callers (once, where the text is needed).
pub(crate) fn walk(
    buf: &[u8],
    limits: &Limits,
    headers: &mut Vec<Header>,
) -> Result<Head, ScanError> {
    headers.clear();
    let (sl_end, mut pos) = next_line(buf, 0, limits)?;
    let start = parse_start(&buf[..sl_end])?;
    loop {
        let (end, next) = next_line(buf, pos, limits)?;
        if end == pos {
            let content_length = content_length(buf, headers)?;
            return Ok(Head {
                start,
                head_end: pos,
                body_start: next,
                content_length,
            });
        }
        let first = buf[pos];
        if first == b' ' || first == b'\t' {
            let Some(h) = headers.last_mut() else {
                return Err(ScanError::FoldWithoutHeader { offset: pos });
            };
            let content = lex::trim(buf, pos, end);
            if !content.is_empty() {
                if h.value_range.is_empty() {
                    h.value_range = content;
                } else {
                    h.value_range.end = content.end;
                }
            }
            h.line.end = next;
            pos = next;
            continue;
        }
        if headers.len() >= limits.max_headers {
            return Err(ScanError::TooManyHeaders { offset: pos });
        }
        let name_end = lex::token_end(&buf[..end], pos);
        let mut colon = name_end;
        while colon < end && matches!(buf[colon], b' ' | b'\t') {
            colon += 1;
        }
        if name_end == pos || colon >= end || buf[colon] != b':' {
            return Err(ScanError::BadHeader { offset: pos });
        }
        let value = lex::trim(buf, colon + 1, end);
        let value_range = if value.is_empty() { end..end } else { value };
        let name = HeaderName::parse(&buf[pos..name_end]);
        headers.push(Header {
            name,
            line: pos..next,
            name_range: pos..name_end,
            value_range,
        });
        pos = next;
    }
}

/// The Content-Length of the header section; several fields must agree. Evaluated once the
/// section is complete because the field may be folded.
fn content_length(buf: &[u8], headers: &[Header]) -> Result<Option<usize>, ScanError> {
    let mut found: Option<usize> = None;
    for h in headers
        .iter()
        .filter(|h| h.name == HeaderName::ContentLength)
    {
        let text = std::str::from_utf8(buf.get(h.value_range.clone()).unwrap_or(b"")).ok();
        let n = text
            .and_then(lex::parse_u64)
            .and_then(|v| usize::try_from(v).ok())
            .ok_or(ScanError::BadContentLength {
                offset: h.line.start,
            })?;
        if found.is_some_and(|f| f != n) {
            return Err(ScanError::BadContentLength {
                offset: h.line.start,
            });
        }
        found = Some(n);
    }
    Ok(found)
}

/// A scanned message borrowing its bytes (nothing copied).
///
/// All ranges (headers, Vias, challenges, ...) index into [`Message::bytes`].
#[derive(Clone)]
pub struct Message<'a> {
    buf: &'a [u8],
    head: &'a str,
    start: StartRanges,
    headers: Vec<Header>,
    head_end: usize,
    body_start: usize,
    content_length: Option<usize>,
    consumed: usize,
}

impl std::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values may carry key material (ck/ik), so only the shape is shown.
        f.debug_struct("Message")
            .field("start_line", &self.start_line())
            .field("headers", &self.headers.len())
            .field("len", &self.buf.len())
            .finish()
    }
}

/// Scan one message with the default [`Limits`].
pub fn scan(buf: &[u8]) -> Result<Message<'_>, ScanError> {
    scan_with(buf, &Limits::DEFAULT)
}

/// Scan one message.
///
/// Line endings before the start line are skipped (RFC 3261 §7.5). With Content-Length the
/// message ends after that many body bytes (anything after it is not part of the message, see
/// [`Message::consumed`]); without it the body runs to the end of `buf` (datagram semantics).
/// Bare LF line endings are accepted as well as CRLF.
pub fn scan_with<'a>(input: &'a [u8], limits: &Limits) -> Result<Message<'a>, ScanError> {
    let skip = input
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(input.len());
    if skip == input.len() {
        return Err(ScanError::Empty {
            offset: input.len(),
        });
    }
    if input.len() - skip > limits.max_message {
        return Err(ScanError::TooLarge {
            offset: skip + limits.max_message,
        });
    }
    let buf = &input[skip..];
    // One allocation sized for a typical IMS REGISTER/401 (15-25 headers).
    let mut headers = Vec::with_capacity(32);
    let head = walk(buf, limits, &mut headers).map_err(|e| e.shifted(skip))?;
    let end = match head.content_length {
        Some(cl) => {
            let end = head.body_start.saturating_add(cl);
            if end > buf.len() {
                return Err(ScanError::BodyTruncated {
                    offset: skip + buf.len(),
                });
            }
            end
        }
        None => buf.len(),
    };
    let buf = &buf[..end];
    // The header section must be text: checking once here lets every accessor hand out `&str`
    // slices without further validation.
    let head_text =
        std::str::from_utf8(&buf[..head.head_end]).map_err(|e| ScanError::InvalidUtf8 {
            offset: skip + e.valid_up_to(),
        })?;
    Ok(Message {
        buf,
        head: head_text,
        start: head.start,
        headers,
        head_end: head.head_end,
        body_start: head.body_start,
        content_length: head.content_length,
        consumed: skip + end,
    })
}

/// `Call-ID`-style single values and `CSeq`: `CSeq { num, method }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// Sequence number.
    pub num: u32,
    /// Method as written.
    pub method: &'a str,
}

impl<'a> Message<'a> {
    /// The message bytes (leading line endings and bytes after Content-Length excluded).
    pub fn bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// How many input bytes this message used, including skipped leading line endings.
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// The start line.
    pub fn start_line(&self) -> StartLine<'a> {
        match &self.start {
            StartRanges::Request { method, uri, .. } => StartLine::Request {
                method: sub(self.head, method.clone()),
                uri: sub(self.head, uri.clone()),
            },
            StartRanges::Response { code, reason, .. } => StartLine::Response {
                code: *code,
                reason: sub(self.head, reason.clone()),
            },
        }
    }

    /// The SIP version as written (`SIP/2.0`).
    pub fn version(&self) -> &'a str {
        match &self.start {
            StartRanges::Request { version, .. } | StartRanges::Response { version, .. } => {
                sub(self.head, version.clone())
            }
        }
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartRanges::Request { .. })
    }

    /// The request method (`None` for responses).
    pub fn method(&self) -> Option<&'a str> {
        match self.start_line() {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI (`None` for responses).
    pub fn request_uri(&self) -> Option<&'a str> {
        match self.start_line() {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI's byte range (for rewriting it with the editor).
    pub fn request_uri_range(&self) -> Option<Range<usize>> {
        match &self.start {
            StartRanges::Request { uri, .. } => Some(uri.clone()),
            StartRanges::Response { .. } => None,
        }
    }

    /// The response status code (`None` for requests).
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartRanges::Response { code, .. } => Some(code),
            StartRanges::Request { .. } => None,
        }
    }

    /// The response reason phrase (`None` for requests).
    pub fn reason(&self) -> Option<&'a str> {
        match self.start_line() {
            StartLine::Response { reason, .. } => Some(reason),
            StartLine::Request { .. } => None,
        }
    }

    /// All header fields in order.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The first header with this canonical name.
    pub fn header(&self, name: HeaderName) -> Option<&Header> {
        self.headers.iter().find(|h| h.name == name)
    }

    /// Every header with this canonical name, in order.
    pub fn headers_named(&self, name: HeaderName) -> impl Iterator<Item = &Header> + '_ {
        self.headers.iter().filter(move |h| h.name == name)
    }

    /// Every header whose name matches `name` (case-insensitive; compact forms of known names
    /// match too, so `"v"` finds `Via`). Useful for headers without a [`HeaderName`] variant.
    pub fn headers_by_name<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Header> + 's {
        let canon = HeaderName::parse(name.as_bytes());
        self.headers.iter().filter(move |h| match canon {
            HeaderName::Other => {
                h.name == HeaderName::Other && self.name(h).eq_ignore_ascii_case(name)
            }
            c => h.name == c,
        })
    }

    /// The raw value text of `h` (white space trimmed, folding kept as-is).
    pub fn value(&self, h: &Header) -> &'a str {
        sub(self.head, h.value_range.clone())
    }

    /// The header name of `h` as written.
    pub fn name(&self, h: &Header) -> &'a str {
        sub(self.head, h.name_range.clone())
    }

    /// The value of the first header with this name.
    pub fn value_of(&self, name: HeaderName) -> Option<&'a str> {
        self.header(name).map(|h| self.value(h))
    }

    /// Call-ID.
    pub fn call_id(&self) -> Option<&'a str> {
        self.value_of(HeaderName::CallId)
    }

    /// CSeq number and method.
    pub fn cseq(&self) -> Option<CSeq<'a>> {
        let v = self.value_of(HeaderName::CSeq)?;
        let v = v.trim_matches(|c: char| c.is_ascii_whitespace());
        let split = v.find(|c: char| c.is_ascii_whitespace())?;
        let num = lex::parse_u32(&v[..split])?;
        let method = v[split..].trim_matches(|c: char| c.is_ascii_whitespace());
        if method.is_empty() || !method.bytes().all(is_token) {
            return None;
        }
        Some(CSeq { num, method })
    }

    /// Max-Forwards.
    pub fn max_forwards(&self) -> Option<u32> {
        self.value_of(HeaderName::MaxForwards)
            .and_then(lex::parse_u32)
    }

    /// The Expires header (delta-seconds; values above `u32::MAX` saturate as RFC 3261 asks).
    pub fn expires(&self) -> Option<u32> {
        lex::parse_delta(self.value_of(HeaderName::Expires)?)
    }

    /// Content-Length as announced (`None` when absent).
    pub fn content_length(&self) -> Option<usize> {
        self.content_length
    }

    /// The body.
    pub fn body(&self) -> &'a [u8] {
        self.buf.get(self.body_start..).unwrap_or(b"")
    }

    /// Offset of the first body byte.
    pub fn body_start(&self) -> usize {
        self.body_start
    }

    /// Offset of the empty line that ends the header section (where a new last header goes).
    pub fn head_end(&self) -> usize {
        self.head_end
    }

    /// The header section (start line and headers, without the empty line) as text.
    pub fn head_text(&self) -> &'a str {
        self.head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REG: &[u8] = b"REGISTER sip:ims.example.net SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport\r\n\
v: SIP/2.0/TCP 10.0.0.2 ;branch=z9hG4bK2, SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bK3\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@ims.example.net>;tag=abc\r\n\
t: \"Alice\" <sip:alice@ims.example.net>\r\n\
i: call-1@host\r\n\
CSeq: 7 REGISTER\r\n\
Subject: folded\r\n  over two lines\r\n\
Expires: 600000\r\n\
l: 4\r\n\
\r\n\
body";

    #[test]
    fn scans_request() {
        let m = scan(REG).unwrap();
        assert_eq!(
            m.start_line(),
            StartLine::Request {
                method: "REGISTER",
                uri: "sip:ims.example.net"
            }
        );
        assert!(m.is_request());
        assert_eq!(m.method(), Some("REGISTER"));
        assert_eq!(m.version(), "SIP/2.0");
        assert_eq!(m.status(), None);
        assert_eq!(m.headers().len(), 10);
        assert_eq!(m.call_id(), Some("call-1@host"));
        assert_eq!(
            m.cseq(),
            Some(CSeq {
                num: 7,
                method: "REGISTER"
            })
        );
        assert_eq!(m.max_forwards(), Some(70));
        assert_eq!(m.expires(), Some(600000));
        assert_eq!(m.body(), b"body");
        assert_eq!(m.content_length(), Some(4));
        let subj = m.header(HeaderName::Subject).unwrap();
        assert_eq!(m.value(subj), "folded\r\n  over two lines");
        assert_eq!(
            &REG[subj.line.clone()],
            b"Subject: folded\r\n  over two lines\r\n"
        );
        assert_eq!(m.headers_named(HeaderName::Via).count(), 2);
        assert_eq!(m.headers_by_name("v").count(), 2);
        assert_eq!(m.headers_by_name("SUBJECT").count(), 1);
        assert_eq!(m.name(m.header(HeaderName::To).unwrap()), "t");
    }

    #[test]
    fn scans_response() {
        let m =
            scan(b"SIP/2.0 401 Unauthorized\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(m.status(), Some(401));
        assert_eq!(m.reason(), Some("Unauthorized"));
        assert_eq!(
            m.start_line(),
            StartLine::Response {
                code: 401,
                reason: "Unauthorized"
            }
        );
        assert!(m.body().is_empty());
        let m = scan(b"SIP/2.0 200\r\n\r\n").unwrap();
        assert_eq!(m.reason(), Some(""));
    }

    #[test]
    fn leading_crlf_and_trailing_bytes() {
        let input = b"\r\n\r\nOPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\n\r\nJUNK";
        let m = scan(input).unwrap();
        assert!(m.bytes().starts_with(b"OPTIONS"));
        assert!(m.bytes().ends_with(b"\r\n\r\n"));
        assert_eq!(m.consumed(), input.len() - 4);
    }

    #[test]
    fn lf_only_and_no_content_length() {
        let m = scan(b"OPTIONS sip:a SIP/2.0\nVia: SIP/2.0/UDP h\n\nxyz").unwrap();
        assert_eq!(m.headers().len(), 1);
        assert_eq!(m.body(), b"xyz");
    }

    #[test]
    fn empty_value_and_folded_later() {
        let m = scan(b"OPTIONS sip:a SIP/2.0\r\nX-A:\r\nX-B:\r\n  later\r\n\r\n").unwrap();
        assert_eq!(m.value(&m.headers()[0]), "");
        assert_eq!(m.value(&m.headers()[1]), "later");
    }

    #[test]
    fn errors_carry_offsets() {
        assert_eq!(scan(b"").unwrap_err(), ScanError::Empty { offset: 0 });
        assert_eq!(
            scan(b"\r\n\r\n").unwrap_err(),
            ScanError::Empty { offset: 4 }
        );
        let e = scan(b"OPTIONS sip:a SIP/2.0\r\nbad header\r\n\r\n").unwrap_err();
        assert_eq!(e, ScanError::BadHeader { offset: 23 });
        let e = scan(b"OPTIONS sip:a SIP/2.0\r\n cont\r\n\r\n").unwrap_err();
        assert_eq!(e, ScanError::FoldWithoutHeader { offset: 23 });
        let e = scan(b"OPTIONS sip:a SIP/2.0\r\nA: b\r\n").unwrap_err();
        assert_eq!(e, ScanError::Incomplete { offset: 29 });
        let e = scan(b"\r\nOPTIONS sip:a SIP/2.0\r\nl: 9\r\n\r\nab").unwrap_err();
        assert_eq!(e, ScanError::BodyTruncated { offset: 35 });
        let e = scan(b"OPTIONS sip:a SIP/2.0\r\nl: x\r\n\r\n").unwrap_err();
        assert_eq!(e, ScanError::BadContentLength { offset: 23 });
        let e = scan(b"OPTIONS sip:a SIP/2.0\r\nl: 1\r\nl: 2\r\n\r\nab").unwrap_err();
        assert_eq!(e, ScanError::BadContentLength { offset: 29 });
        let e = scan(b"GARBAGE\r\n\r\n").unwrap_err();
        assert!(matches!(e, ScanError::BadStartLine { .. }));
        let e = scan(b"SIP/2.0 99 x\r\n\r\n").unwrap_err();
        assert!(matches!(e, ScanError::BadStartLine { offset: 8 }));
        let e = scan(b"OPTIONS sip:a SIP/2.0\r\nA: \xff\r\n\r\n").unwrap_err();
        assert_eq!(e, ScanError::InvalidUtf8 { offset: 26 });
    }

    #[test]
    fn limits() {
        let lim = Limits {
            max_message: 40,
            max_headers: 2,
            max_line: 30,
        };
        let e = scan_with(
            b"OPTIONS sip:a SIP/2.0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
            &lim,
        )
        .unwrap_err();
        assert_eq!(e, ScanError::TooLarge { offset: 40 });
        let lim = Limits {
            max_message: 4000,
            max_headers: 2,
            max_line: 30,
        };
        let e = scan_with(
            b"OPTIONS sip:a SIP/2.0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
            &lim,
        )
        .unwrap_err();
        assert_eq!(e, ScanError::TooManyHeaders { offset: 35 });
        let long = format!("OPTIONS sip:a SIP/2.0\r\nA: {}\r\n\r\n", "x".repeat(40));
        let e = scan_with(long.as_bytes(), &lim).unwrap_err();
        assert_eq!(e, ScanError::LineTooLong { offset: 23 });
        let unterminated = format!("OPTIONS sip:a SIP/2.0\r\nA: {}", "x".repeat(40));
        let e = scan_with(unterminated.as_bytes(), &lim).unwrap_err();
        assert_eq!(e, ScanError::LineTooLong { offset: 23 });
    }
}
