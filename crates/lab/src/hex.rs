//! Lowercase hex encoding and strict fixed-length decoding.

/// Why a hex string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// The text did not have the expected number of hex digits.
    #[error("expected {expected} hex digits, got {got}")]
    Length {
        /// Digits required.
        expected: usize,
        /// Digits given.
        got: usize,
    },
    /// A character that is not a hex digit, at this position.
    #[error("non-hex character at position {0}")]
    NotHex(usize),
}

/// Lowercase hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes exactly `out.len() * 2` hex digits (either case) into `out`.
pub fn decode_into(text: &str, out: &mut [u8]) -> Result<(), HexError> {
    let bytes = text.as_bytes();
    if bytes.len() != out.len() * 2 {
        return Err(HexError::Length {
            expected: out.len() * 2,
            got: text.chars().count(),
        });
    }
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = nibble(pair[0]).ok_or(HexError::NotHex(2 * i))?;
        let lo = nibble(pair[1]).ok_or(HexError::NotHex(2 * i + 1))?;
        out[i] = (hi << 4) | lo;
    }
    Ok(())
}

/// Decodes exactly `N` bytes of hex into an array (for non-secret values such as RAND or SQN).
pub fn decode_array<const N: usize>(text: &str) -> Result<[u8; N], HexError> {
    let mut out = [0u8; N];
    decode_into(text, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            decode_array::<2>("abc"),
            Err(HexError::Length {
                expected: 4,
                got: 3
            })
        );
        assert_eq!(decode_array::<2>("abzz"), Err(HexError::NotHex(2)));
        assert_eq!(decode_array::<2>("ABcd"), Ok([0xab, 0xcd]));
    }

    proptest! {
        #[test]
        fn roundtrip(bytes in proptest::array::uniform16(any::<u8>())) {
            prop_assert_eq!(decode_array::<16>(&encode(&bytes)), Ok(bytes));
        }

        #[test]
        fn never_panics(text in ".{0,40}") {
            let _ = decode_array::<16>(&text);
        }
    }
}
