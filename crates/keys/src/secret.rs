//! Secret types: [`Ck`], [`Ik`], [`SecretBytes`], [`SealingKey`], and the log-safe [`Fingerprint`].
//!
//! Every secret type zeroizes on drop, has a `Debug` that prints only `Name(<redacted>)`, no
//! `Display`, and compares in constant time. Hex conversion runs without data-dependent branches
//! or table look-ups, so parsing `ck="…"` does not leak key nibbles through timing.
//!
//! Moves in Rust are copies: a secret returned by value may leave a stale copy in a stack frame
//! the compiler reused. Long-lived secrets (store entries, ciphers) are therefore kept in heap
//! allocations that do not move once created.

use core::fmt;

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq, ConstantTimeLess};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::Error;

/// Decodes one hex digit (either case) without branching on its value; `valid` is 0 or 1.
fn hex_nibble(c: u8) -> (u8, subtle::Choice) {
    let digit = c.wrapping_sub(b'0');
    let is_digit = digit.ct_lt(&10);
    let letter = (c | 0x20).wrapping_sub(b'a');
    let is_letter = letter.ct_lt(&6);
    let mut value = 0u8;
    value.conditional_assign(&digit, is_digit);
    value.conditional_assign(&letter.wrapping_add(10), is_letter);
    (value, is_digit | is_letter)
}

/// Encodes a nibble (0..=15) as a lowercase hex digit without branching on its value.
fn hex_digit(n: u8) -> char {
    let n = i16::from(n & 0x0f);
    // For n > 9, (9 - n) is negative and its arithmetic shift is all ones: add 'a' - '0' - 10.
    char::from((n + 0x30 + (((9 - n) >> 8) & 0x27)) as u8)
}

/// Decodes hex into `out` exactly; errors never reveal where the bad character was.
fn decode_hex_exact(hex: &str, out: &mut [u8]) -> Result<(), Error> {
    let bytes = hex.as_bytes();
    if bytes.len() != out.len() * 2 {
        return Err(Error::SecretLength {
            expected: out.len(),
            got: bytes.len() / 2,
        });
    }
    let mut ok = subtle::Choice::from(1);
    for (dst, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let (hi, hi_ok) = hex_nibble(pair[0]);
        let (lo, lo_ok) = hex_nibble(pair[1]);
        *dst = (hi << 4) | lo;
        ok &= hi_ok & lo_ok;
    }
    if bool::from(ok) {
        Ok(())
    } else {
        out.zeroize();
        Err(Error::SecretHex)
    }
}

/// Lowercase hex of `bytes` in a string that is wiped when dropped.
fn encode_hex(bytes: &[u8]) -> Zeroizing<String> {
    // Capacity is exact, so pushing never reallocates and leaves no stale copy behind.
    let mut s = Zeroizing::new(String::with_capacity(bytes.len() * 2));
    for b in bytes {
        s.push(hex_digit(b >> 4));
        s.push(hex_digit(b & 0x0f));
    }
    s
}

macro_rules! fixed_secret {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// Wraps raw bytes; the caller should wipe its own copy.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// Copies from a slice that must be exactly [`Self::LEN`] bytes.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
                let arr: [u8; $len] = bytes
                    .try_into()
                    .map_err(|_| Error::SecretLength { expected: $len, got: bytes.len() })?;
                Ok(Self(arr))
            }

            /// Parses hex of exactly `2 * LEN` digits, upper or lower case.
            pub fn from_hex(hex: &str) -> Result<Self, Error> {
                let mut out = Self([0u8; $len]);
                decode_hex_exact(hex, &mut out.0)?;
                Ok(out)
            }

            /// Lowercase hex, as Kamailio's S-CSCF writes it, in a string wiped on drop.
            pub fn to_hex(&self) -> Zeroizing<String> {
                encode_hex(&self.0)
            }

            /// The raw bytes. Named loudly so every use is easy to audit.
            pub const fn expose_secret(&self) -> &[u8; $len] {
                &self.0
            }

            /// Lets derivations write straight into the secret, with no stack copy to wipe.
            #[allow(dead_code, reason = "used by some of the types the macro defines")]
            pub(crate) fn expose_secret_mut(&mut self) -> &mut [u8; $len] {
                &mut self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl ConstantTimeEq for $name {
            fn ct_eq(&self, other: &Self) -> subtle::Choice {
                self.0.ct_eq(&other.0)
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.ct_eq(other).into()
            }
        }

        impl Eq for $name {}
    };
}

fixed_secret!(
    /// AKA cipher key CK (16 bytes), as carried in `ck="…"`.
    Ck,
    16
);
fixed_secret!(
    /// AKA integrity key IK (16 bytes), as carried in `ik="…"`.
    Ik,
    16
);
fixed_secret!(
    /// A derived 256-bit AES-GCM sealing key.
    SealingKey,
    32
);

/// A variable-length secret, such as a pair's shared secret read from a file.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Box<[u8]>);

impl SecretBytes {
    /// Upper bound on length: shared secrets are small, and this keeps hex parsing bounded.
    pub const MAX_LEN: usize = 4096;

    /// Copies from a slice (the caller wipes its own copy).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > Self::MAX_LEN {
            return Err(Error::SecretLength {
                expected: Self::MAX_LEN,
                got: bytes.len(),
            });
        }
        Ok(Self(bytes.into()))
    }

    /// Takes ownership of a vector and wipes it, including any spare capacity.
    pub fn from_vec(mut bytes: Vec<u8>) -> Result<Self, Error> {
        let out = Self::from_slice(&bytes);
        bytes.zeroize();
        out
    }

    /// Parses hex (even length, either case); surrounding ASCII whitespace, as a secret file
    /// usually ends with a newline, is ignored.
    pub fn from_hex(hex: &str) -> Result<Self, Error> {
        let hex = hex.trim_ascii();
        if !hex.len().is_multiple_of(2) {
            return Err(Error::SecretHex);
        }
        if hex.len() / 2 > Self::MAX_LEN {
            return Err(Error::SecretLength {
                expected: Self::MAX_LEN,
                got: hex.len() / 2,
            });
        }
        let mut out = Self(vec![0u8; hex.len() / 2].into_boxed_slice());
        decode_hex_exact(hex, &mut out.0)?;
        Ok(out)
    }

    /// Lowercase hex in a string wiped on drop.
    pub fn to_hex(&self) -> Zeroizing<String> {
        encode_hex(&self.0)
    }

    /// Length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The raw bytes. Named loudly so every use is easy to audit.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

impl ConstantTimeEq for SecretBytes {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        // Lengths are not secret; subtle's slice ct_eq returns false on a length mismatch.
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for SecretBytes {}

/// First 4 bytes (8 hex digits) of SHA-256(CK || IK): lets logs correlate a key pair across
/// agents without revealing it. Printing it is fine; that is its purpose.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 4]);

impl Fingerprint {
    /// The four digest bytes.
    pub const fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Full SHA-256 over CK || IK; used by the replay cache, which must tell key pairs apart
/// without keeping the keys.
pub(crate) fn key_digest(ck: &Ck, ik: &Ik) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(ck.expose_secret());
    h.update(ik.expose_secret());
    h.finalize().into()
}

/// The log-safe fingerprint of a CK/IK pair.
pub fn fingerprint(ck: &Ck, ik: &Ik) -> Fingerprint {
    let d = key_digest(ck, ik);
    Fingerprint([d[0], d[1], d[2], d[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_case() {
        let ck = Ck::from_hex("00112233445566778899AABBCCDDEEFF").unwrap();
        assert_eq!(ck.to_hex().as_str(), "00112233445566778899aabbccddeeff");
        assert_eq!(
            ck,
            Ck::from_hex("00112233445566778899aabbccddeeff").unwrap()
        );
        for n in 0..16u8 {
            assert_eq!(hex_digit(n), char::from_digit(u32::from(n), 16).unwrap());
        }
        for c in 0..=255u8 {
            let (v, ok) = hex_nibble(c);
            let want = char::from(c).to_digit(16);
            assert_eq!(bool::from(ok), want.is_some(), "char {c}");
            if let Some(w) = want {
                assert_eq!(u32::from(v), w);
            }
        }
    }

    #[test]
    fn hex_errors_carry_no_input() {
        assert_eq!(
            Ik::from_hex("00"),
            Err(Error::SecretLength {
                expected: 16,
                got: 1
            })
        );
        assert_eq!(
            Ik::from_hex("zz112233445566778899aabbccddeeff"),
            Err(Error::SecretHex)
        );
        assert_eq!(SecretBytes::from_hex("abc"), Err(Error::SecretHex));
        assert_eq!(
            SecretBytes::from_hex("0a0b\n").unwrap().expose_secret(),
            &[10, 11]
        );
    }

    #[test]
    fn debug_redacts() {
        let ck = Ck::from_bytes([0xab; 16]);
        assert_eq!(format!("{ck:?}"), "Ck(<redacted>)");
        assert_eq!(format!("{:?}", Ik::from_bytes([1; 16])), "Ik(<redacted>)");
        assert_eq!(
            format!("{:?}", SealingKey::from_bytes([2; 32])),
            "SealingKey(<redacted>)"
        );
        assert_eq!(
            format!("{:?}", SecretBytes::from_slice(&[3; 5]).unwrap()),
            "SecretBytes(<redacted>)"
        );
    }

    #[test]
    fn constant_time_equality() {
        let a = Ck::from_bytes([1; 16]);
        let mut b = [1; 16];
        b[15] = 2;
        assert_ne!(a, Ck::from_bytes(b));
        assert_eq!(a, a.clone());
        assert_ne!(
            SecretBytes::from_slice(&[1, 2]).unwrap(),
            SecretBytes::from_slice(&[1]).unwrap()
        );
    }

    #[test]
    fn fingerprint_is_prefix_of_sha256() {
        let ck = Ck::from_bytes([0; 16]);
        let ik = Ik::from_bytes([0; 16]);
        // SHA-256 of 32 zero bytes starts with 66687aad.
        assert_eq!(fingerprint(&ck, &ik).to_string(), "66687aad");
    }
}
