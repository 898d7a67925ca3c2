//! Shared secrets (e.g. the sealing secret of an agent pair) are read from files named in the config,
//! never written into the TOML itself, so configs can be shared and committed without key material.

use std::path::Path;

use zeroize::Zeroizing;

use crate::Error;

/// Smallest secret accepted: 256 bits, the strength of the AES-256 key derived from it.
pub const MIN_SECRET_BYTES: usize = 32;
/// Largest secret file accepted.
pub const MAX_SECRET_FILE_BYTES: u64 = 4096;

/// Reads a secret file holding hex text (whitespace ignored), at least 32 bytes once decoded.
///
/// Errors name the file and the problem, never the content.
pub fn read_hex_secret(path: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| Error::Read {
        path: shown.clone(),
        source,
    })?;
    if meta.len() > MAX_SECRET_FILE_BYTES {
        return Err(Error::Secret {
            path: shown,
            reason: "file too large",
        });
    }
    let raw = Zeroizing::new(std::fs::read(path).map_err(|source| Error::Read {
        path: shown.clone(),
        source,
    })?);
    decode_hex_secret(&raw).map_err(|reason| Error::Secret {
        path: shown,
        reason,
    })
}

/// Decodes hex text into a secret, ignoring ASCII whitespace.
pub fn decode_hex_secret(text: &[u8]) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    let digits: Zeroizing<Vec<u8>> = Zeroizing::new(
        text.iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect(),
    );
    if !digits.len().is_multiple_of(2) {
        return Err("odd number of hex digits");
    }
    let mut out = Zeroizing::new(Vec::with_capacity(digits.len() / 2));
    for pair in digits.chunks_exact(2) {
        let (Some(hi), Some(lo)) = (nibble(pair[0]), nibble(pair[1])) else {
            return Err("not hex");
        };
        out.push(hi << 4 | lo);
    }
    if out.len() < MIN_SECRET_BYTES {
        return Err("shorter than 32 bytes");
    }
    Ok(out)
}

fn nibble(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_hex_with_whitespace() {
        let text = format!("{}\n", "ab".repeat(32));
        assert_eq!(
            decode_hex_secret(text.as_bytes()).unwrap().as_slice(),
            &[0xab; 32]
        );
    }

    #[test]
    fn rejects_short_odd_and_non_hex() {
        assert_eq!(
            decode_hex_secret(b"abcd").unwrap_err(),
            "shorter than 32 bytes"
        );
        assert_eq!(
            decode_hex_secret(b"abc").unwrap_err(),
            "odd number of hex digits"
        );
        let bad = "zz".repeat(32);
        assert_eq!(decode_hex_secret(bad.as_bytes()).unwrap_err(), "not hex");
    }

    #[test]
    fn error_never_shows_content() {
        let dir = std::env::temp_dir().join(format!("ikt-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.hex");
        std::fs::write(&path, "deadbeefcafe").unwrap();
        let err = read_hex_secret(&path).unwrap_err().to_string();
        assert!(!err.contains("deadbeef"), "{err}");
        assert!(err.contains("s.hex"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
