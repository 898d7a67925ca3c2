//! Errors: a small `Copy` scan error for the hot path and the crate-wide [`Error`].

/// Why a message could not be scanned. Small and `Copy`; each variant carries the byte offset
/// (into the input given to [`crate::scan`] or, for the [`crate::Framer`], into the current message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// No start line: the input is empty or only line endings.
    #[error("empty message at byte {offset}")]
    Empty {
        /// Where the input ended.
        offset: usize,
    },
    /// The message is larger than `Limits::max_message`.
    #[error("message exceeds the size limit at byte {offset}")]
    TooLarge {
        /// First byte past the limit.
        offset: usize,
    },
    /// A physical line is longer than `Limits::max_line`.
    #[error("line too long at byte {offset}")]
    LineTooLong {
        /// Start of the offending line.
        offset: usize,
    },
    /// More header fields than `Limits::max_headers`.
    #[error("too many headers at byte {offset}")]
    TooManyHeaders {
        /// Start of the first header over the limit.
        offset: usize,
    },
    /// The start line is neither a request line nor a status line.
    #[error("malformed start line at byte {offset}")]
    BadStartLine {
        /// Where the start line stopped making sense.
        offset: usize,
    },
    /// A header line without a token name followed by a colon.
    #[error("malformed header at byte {offset}")]
    BadHeader {
        /// Start of the header line.
        offset: usize,
    },
    /// A continuation line (starting with white space) before any header.
    #[error("folded line without a header at byte {offset}")]
    FoldWithoutHeader {
        /// Start of the continuation line.
        offset: usize,
    },
    /// The start line or headers are not UTF-8.
    #[error("invalid UTF-8 at byte {offset}")]
    InvalidUtf8 {
        /// First invalid byte.
        offset: usize,
    },
    /// The header section does not end with an empty line.
    #[error("header section not terminated at byte {offset}")]
    Incomplete {
        /// Where the input ended.
        offset: usize,
    },
    /// Content-Length is not a number, or several disagree.
    #[error("bad Content-Length at byte {offset}")]
    BadContentLength {
        /// Start of the offending header line.
        offset: usize,
    },
    /// Fewer body bytes than Content-Length announces.
    #[error("body shorter than Content-Length at byte {offset}")]
    BodyTruncated {
        /// Where the input ended.
        offset: usize,
    },
}

impl ScanError {
    /// The byte offset the error points at.
    pub fn offset(&self) -> usize {
        match *self {
            ScanError::Empty { offset }
            | ScanError::TooLarge { offset }
            | ScanError::LineTooLong { offset }
            | ScanError::TooManyHeaders { offset }
            | ScanError::BadStartLine { offset }
            | ScanError::BadHeader { offset }
            | ScanError::FoldWithoutHeader { offset }
            | ScanError::InvalidUtf8 { offset }
            | ScanError::Incomplete { offset }
            | ScanError::BadContentLength { offset }
            | ScanError::BodyTruncated { offset } => offset,
        }
    }

    /// The same error with its offset moved by `by` bytes (saturating).
    pub(crate) fn shifted(self, by: usize) -> ScanError {
        let o = |offset: usize| offset.saturating_add(by);
        match self {
            ScanError::Empty { offset } => ScanError::Empty { offset: o(offset) },
            ScanError::TooLarge { offset } => ScanError::TooLarge { offset: o(offset) },
            ScanError::LineTooLong { offset } => ScanError::LineTooLong { offset: o(offset) },
            ScanError::TooManyHeaders { offset } => ScanError::TooManyHeaders { offset: o(offset) },
            ScanError::BadStartLine { offset } => ScanError::BadStartLine { offset: o(offset) },
            ScanError::BadHeader { offset } => ScanError::BadHeader { offset: o(offset) },
            ScanError::FoldWithoutHeader { offset } => {
                ScanError::FoldWithoutHeader { offset: o(offset) }
            }
            ScanError::InvalidUtf8 { offset } => ScanError::InvalidUtf8 { offset: o(offset) },
            ScanError::Incomplete { offset } => ScanError::Incomplete { offset: o(offset) },
            ScanError::BadContentLength { offset } => {
                ScanError::BadContentLength { offset: o(offset) }
            }
            ScanError::BodyTruncated { offset } => ScanError::BodyTruncated { offset: o(offset) },
        }
    }
}

/// Errors of the editing and challenge helpers. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The message could not be scanned.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// No challenge with this index in the message.
    #[error("no challenge with index {index}")]
    NoSuchChallenge {
        /// The index asked for.
        index: usize,
    },
    /// The challenge can be read more than one way (params without commas, control characters
    /// or an unterminated quoted string), so it is not edited.
    #[error("challenge {index} is malformed")]
    MalformedChallenge {
        /// The challenge's index (or its header's, from an editor step).
        index: usize,
    },
    /// The challenge lacks a parameter the canonical form needs.
    #[error("challenge has no {name} parameter")]
    MissingParam {
        /// The parameter name.
        name: &'static str,
    },
    /// A key is not 32 hexadecimal digits (the value itself is never reported).
    #[error("key is not 32 hexadecimal digits")]
    InvalidKeyHex,
    /// A value to be written would break the header (quote, backslash, CR/LF or non-token).
    #[error("value cannot be written into {what}")]
    InvalidValue {
        /// What the value was meant for.
        what: &'static str,
    },
}
