//! Byte-level lexing shared by the scanner and the value parsers.
//!
//! Every function here takes a slice and a position and returns a position no larger than the
//! slice length, so callers can index without bounds panics as long as they use `get`.

use std::ops::Range;

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Position of the first `needle` in `hay`, eight bytes per step.
///
/// SIP lines are short, but bodies and long Via/Route lines are not; a word-at-a-time search keeps
/// the scanner's cost per byte low without `unsafe` or an extra dependency.
#[inline]
pub(crate) fn find_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    let rep = LO.wrapping_mul(u64::from(needle));
    let chunks = hay.chunks_exact(8);
    let tail = chunks.remainder();
    for (i, chunk) in chunks.enumerate() {
        if let Ok(arr) = <[u8; 8]>::try_from(chunk) {
            let w = u64::from_le_bytes(arr) ^ rep;
            // Classic "has zero byte": the lowest set bit is exact, higher ones may be false.
            let t = w.wrapping_sub(LO) & !w & HI;
            if t != 0 {
                return Some(i * 8 + (t.trailing_zeros() / 8) as usize);
            }
        }
    }
    let base = hay.len() - tail.len();
    tail.iter().position(|&b| b == needle).map(|p| base + p)
}

/// RFC 3261 `token` characters as a lookup table: the scanner tests every name byte.
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = matches!(b,
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
            | b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~');
        i += 1;
    }
    t
};

/// RFC 3261 `token` characters.
#[inline]
pub(crate) fn is_token(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// Linear white space, including the CR/LF of a folded line.
#[inline]
pub(crate) fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// First position at or after `p` that is not linear white space.
#[inline]
pub(crate) fn skip_lws(b: &[u8], mut p: usize) -> usize {
    while p < b.len() && is_lws(b[p]) {
        p += 1;
    }
    p.min(b.len())
}

/// End of the token starting at `p` (equal to `p` when there is none).
#[inline]
pub(crate) fn token_end(b: &[u8], mut p: usize) -> usize {
    while p < b.len() && is_token(b[p]) {
        p += 1;
    }
    p.min(b.len())
}

/// A quoted string starting at `p` (where `b[p] == b'"'`): returns the content range (escapes
/// kept) and the position after the closing quote. An unterminated string runs to the end.
pub(crate) fn quoted(b: &[u8], p: usize) -> (Range<usize>, usize) {
    let start = (p + 1).min(b.len());
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return (start..i, i + 1),
            _ => i += 1,
        }
    }
    (start..b.len(), b.len())
}

/// Bytes that matter when splitting a list: everything else is skipped in a tight loop.
static LIST_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b',' as usize] = true;
    t
};

/// Next top-level comma at or after `p` (outside quoted strings and `<...>`), or the length.
pub(crate) fn next_comma(b: &[u8], mut p: usize) -> usize {
    let mut angle = false;
    while p < b.len() {
        while p < b.len() && !LIST_SPECIAL[usize::from(b[p])] {
            p += 1;
        }
        if p >= b.len() {
            break;
        }
        match b[p] {
            b'"' => {
                p = quoted(b, p).1;
                continue;
            }
            b'<' => angle = true,
            b'>' => angle = false,
            b',' if !angle => return p,
            _ => {}
        }
        p += 1;
    }
    b.len()
}

/// `start..end` with linear white space trimmed from both sides.
#[inline]
pub(crate) fn trim(b: &[u8], mut start: usize, mut end: usize) -> Range<usize> {
    end = end.min(b.len());
    while start < end && is_lws(b[start]) {
        start += 1;
    }
    while end > start && is_lws(b[end - 1]) {
        end -= 1;
    }
    start..end
}

/// Non-empty, trimmed items of a comma-separated list (quotes and `<...>` respected).
pub(crate) fn comma_items(b: &[u8]) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut p = 0;
    std::iter::from_fn(move || {
        while p < b.len() {
            let end = next_comma(b, p);
            let item = trim(b, p, end);
            p = end + 1;
            if !item.is_empty() {
                return Some(item);
            }
        }
        None
    })
}

/// A decimal number made only of digits (after trimming); `None` on overflow or junk.
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim_matches(|c: char| c.is_ascii() && is_lws(c as u8));
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `parse_u64` narrowed to `u32`.
pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    parse_u64(s).and_then(|v| u32::try_from(v).ok())
}

/// RFC 3261 delta-seconds: digits only; values above `u32::MAX` saturate instead of failing.
pub(crate) fn parse_delta(s: &str) -> Option<u32> {
    let t = s.trim_matches(|c: char| c.is_ascii() && is_lws(c as u8));
    if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(t.parse::<u32>().unwrap_or(u32::MAX))
}

/// A sub-slice of `s` by byte range, empty when the range is not valid for `s`.
pub(crate) fn sub(s: &str, r: Range<usize>) -> &str {
    s.get(r).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_byte_agrees_with_position() {
        let hay: Vec<u8> = (0u8..=255).cycle().take(700).collect();
        for needle in [0u8, 1, 7, 8, 9, 128, 255, b'\n'] {
            for start in 0..20 {
                let h = &hay[start..];
                assert_eq!(find_byte(needle, h), h.iter().position(|&b| b == needle));
            }
        }
        assert_eq!(find_byte(b'x', b""), None);
        assert_eq!(find_byte(b'x', b"abcdefghijklmnopx"), Some(16));
        // A byte just above the needle must not fool the zero-byte trick.
        assert_eq!(
            find_byte(b'\n', b"\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\n"),
            Some(8)
        );
    }

    #[test]
    fn commas_respect_quotes_and_angles() {
        let s = br#"a, "x,y" <sip:a,b>;p=1 ,, b "#;
        let items: Vec<&[u8]> = comma_items(s).map(|r| &s[r]).collect();
        assert_eq!(
            items,
            vec![&b"a"[..], &br#""x,y" <sip:a,b>;p=1"#[..], &b"b"[..]]
        );
    }

    #[test]
    fn quoted_handles_escapes_and_unterminated() {
        let s = br#""a\"b" rest"#;
        let (r, after) = quoted(s, 0);
        assert_eq!(&s[r], br#"a\"b"#);
        assert_eq!(after, 6);
        let s = br#""abc\"#;
        let (r, after) = quoted(s, 0);
        assert_eq!(r.end, s.len());
        assert_eq!(after, s.len());
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u32(" 70 "), Some(70));
        assert_eq!(parse_u32("4294967296"), None);
        assert_eq!(parse_u32("-1"), None);
        assert_eq!(parse_u32(""), None);
        assert_eq!(parse_delta(" 3600 "), Some(3600));
        assert_eq!(parse_delta("99999999999999999999999"), Some(u32::MAX));
        assert_eq!(parse_delta("1h"), None);
    }
}
