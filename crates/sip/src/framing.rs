//! Stream framing for TCP/TLS: partial reads, several messages per read, CRLF keep-alives,
//! Content-Length.

use crate::ScanError;
use crate::header::Header;
use crate::lex::find_byte;
use crate::message::{Limits, walk};

/// Cuts a byte stream into whole messages.
///
/// Feed it what the socket returned with [`Framer::push`], then call [`Framer::next_message`]
/// until it returns `Ok(None)`. Line endings between messages (RFC 5626 keep-alives) are skipped
/// and counted. A message without Content-Length is taken to have an empty body (RFC 3261 §18.3
/// makes the field mandatory on streams). After an error the stream cannot be resynchronised:
/// every later call returns the same error and the connection should be closed. Error offsets
/// count from the start of the message being framed.
pub struct Framer {
    limits: Limits,
    buf: Vec<u8>,
    /// Start of the unconsumed data in `buf`.
    start: usize,
    /// Next line start to examine while looking for the end of the header section.
    scan_pos: usize,
    /// Total length of the current message once its header section is complete.
    need: Option<usize>,
    failed: Option<ScanError>,
    empty_lines: usize,
    scratch: Vec<Header>,
}

impl std::fmt::Debug for Framer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Buffered bytes may hold key material; only sizes are shown.
        f.debug_struct("Framer")
            .field("buffered", &self.buffered())
            .field("need", &self.need)
            .field("failed", &self.failed)
            .finish()
    }
}

impl Framer {
    /// A framer applying `limits` to every message.
    pub fn new(limits: Limits) -> Self {
        Framer {
            limits,
            buf: Vec::new(),
            start: 0,
            scan_pos: 0,
            need: None,
            failed: None,
            empty_lines: 0,
            scratch: Vec::new(),
        }
    }

    /// Append bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.scan_pos -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes pushed but not yet returned as a message.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Empty lines (keep-alive CRLFs) skipped since the last call; a peer's double-CRLF ping
    /// counts as two and deserves a single-CRLF pong (RFC 5626 §4.4.1).
    pub fn take_empty_lines(&mut self) -> usize {
        std::mem::take(&mut self.empty_lines)
    }

    fn fail(&mut self, e: ScanError) -> Result<Option<Vec<u8>>, ScanError> {
        self.failed = Some(e);
        Err(e)
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, ScanError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let limits = self.limits;
        if self.need.is_none() {
            while self.start < self.buf.len() && matches!(self.buf[self.start], b'\r' | b'\n') {
                if self.buf[self.start] == b'\n' {
                    self.empty_lines += 1;
                }
                self.start += 1;
            }
            self.scan_pos = self.scan_pos.max(self.start);
            loop {
                let Some(nl) = find_byte(b'\n', &self.buf[self.scan_pos..]) else {
                    if self.buf.len() - self.scan_pos > limits.max_line {
                        return self.fail(ScanError::LineTooLong {
                            offset: self.scan_pos - self.start,
                        });
                    }
                    if self.buffered() > limits.max_message {
                        return self.fail(ScanError::TooLarge {
                            offset: limits.max_message,
                        });
                    }
                    return Ok(None);
                };
                let line_start = self.scan_pos;
                let nl = line_start + nl;
                self.scan_pos = nl + 1;
                let end = if nl > line_start && self.buf[nl - 1] == b'\r' {
                    nl - 1
                } else {
                    nl
                };
                if end - line_start > limits.max_line {
                    return self.fail(ScanError::LineTooLong {
                        offset: line_start - self.start,
                    });
                }
                let head_len = self.scan_pos - self.start;
                if head_len > limits.max_message {
                    return self.fail(ScanError::TooLarge {
                        offset: limits.max_message,
                    });
                }
                if end == line_start && line_start > self.start {
                    let head = &self.buf[self.start..self.scan_pos];
                    let h = match walk(head, &limits, &mut self.scratch) {
                        Ok(h) => h,
                        Err(e) => return self.fail(e),
                    };
                    if let Err(e) = std::str::from_utf8(&head[..h.head_end]) {
                        return self.fail(ScanError::InvalidUtf8 {
                            offset: e.valid_up_to(),
                        });
                    }
                    let total = head_len.saturating_add(h.content_length.unwrap_or(0));
                    if total > limits.max_message {
                        return self.fail(ScanError::TooLarge {
                            offset: limits.max_message,
                        });
                    }
                    self.need = Some(total);
                    break;
                }
            }
        }
        let Some(total) = self.need else {
            return Ok(None);
        };
        if self.buffered() < total {
            return Ok(None);
        }
        let msg = self.buf[self.start..self.start + total].to_vec();
        self.start += total;
        self.scan_pos = self.start;
        self.need = None;
        Ok(Some(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 3\r\n\r\nabc";
    const B: &[u8] = b"SIP/2.0 200 OK\r\nl:0\r\n\r\n";

    fn drain(f: &mut Framer) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(m) = f.next_message().unwrap() {
            out.push(m);
        }
        out
    }

    #[test]
    fn several_in_one_read_with_keepalives() {
        let mut f = Framer::new(Limits::DEFAULT);
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(A);
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(B);
        f.push(&stream);
        assert_eq!(drain(&mut f), vec![A.to_vec(), B.to_vec()]);
        assert_eq!(f.take_empty_lines(), 3);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn byte_by_byte() {
        let mut f = Framer::new(Limits::DEFAULT);
        let mut got = Vec::new();
        for b in A.iter().chain(B).chain(A) {
            f.push(&[*b]);
            got.extend(drain(&mut f));
        }
        assert_eq!(got, vec![A.to_vec(), B.to_vec(), A.to_vec()]);
    }

    #[test]
    fn zero_length_body_then_trailing_message() {
        let mut f = Framer::new(Limits::DEFAULT);
        f.push(b"SIP/2.0 100 Trying\r\nContent-Length: 0\r\n\r\nOPTIONS sip:x SIP/2.0\r\n");
        assert_eq!(
            f.next_message().unwrap().unwrap(),
            b"SIP/2.0 100 Trying\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(f.next_message().unwrap(), None);
        f.push(b"\r\n");
        assert_eq!(
            f.next_message().unwrap().unwrap(),
            b"OPTIONS sip:x SIP/2.0\r\n\r\n"
        );
    }

    #[test]
    fn errors_stick_and_limits_hold() {
        let mut f = Framer::new(Limits {
            max_message: 64,
            max_headers: 4,
            max_line: 32,
        });
        f.push(&[b'x'; 40]);
        let e = f.next_message().unwrap_err();
        assert_eq!(e, ScanError::LineTooLong { offset: 0 });
        assert_eq!(f.next_message().unwrap_err(), e);

        let mut f = Framer::new(Limits {
            max_message: 64,
            max_headers: 4,
            max_line: 32,
        });
        f.push(b"OPTIONS sip:a SIP/2.0\r\nl: 1000\r\n\r\n");
        assert_eq!(
            f.next_message().unwrap_err(),
            ScanError::TooLarge { offset: 64 }
        );

        let mut f = Framer::new(Limits::DEFAULT);
        f.push(b"NOT SIP\r\n\r\n");
        assert!(matches!(
            f.next_message(),
            Err(ScanError::BadStartLine { .. })
        ));
    }
}
