//! Fixed-size secrets (K, OP, OPc, CK, IK, RES, AK) that zeroize on drop and never print.
//!
//! The lab keeps its own secret type instead of borrowing one from `ikt-keys` because it also
//! needs subscriber keys (K, OP, OPc) and RES, which are not transport concerns.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::hex;

/// A fixed-size secret byte string: zeroized on drop, redacting `Debug`, no `Display`,
/// constant-time equality.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret<const N: usize>([u8; N]);

/// Subscriber key K (TS 35.206).
pub type K = Secret<16>;
/// Operator variant configuration field OP.
pub type Op = Secret<16>;
/// OP combined with K (OPc = OP xor E_K(OP)).
pub type Opc = Secret<16>;
/// Cipher key CK (f3).
pub type Ck = Secret<16>;
/// Integrity key IK (f4).
pub type Ik = Secret<16>;
/// Authentication response RES / XRES (f2, 64 bits as Milenage produces it).
pub type Res = Secret<8>;
/// Anonymity key AK (f5) or AK* (f5*).
pub type Ak = Secret<6>;

impl<const N: usize> Secret<N> {
    /// Wraps bytes; the caller's copy is the caller's to zeroize.
    pub fn new(bytes: [u8; N]) -> Self {
        Self(bytes)
    }

    /// Parses exactly `2*N` hex digits into a secret without keeping a non-zeroizing copy.
    pub fn from_hex(text: &str) -> Result<Self, hex::HexError> {
        let mut out = Self([0u8; N]);
        hex::decode_into(text, &mut out.0)?;
        Ok(out)
    }

    /// Read access to the secret bytes; keep the borrow short and never log it.
    pub fn expose(&self) -> &[u8; N] {
        &self.0
    }

    /// Lowercase hex in a zeroizing string, for the places that must put the key on the wire
    /// (the S-CSCF's `ck=`/`ik=` auth-params) or print it on request (the `milenage` command).
    pub fn to_hex(&self) -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(hex::encode(&self.0))
    }
}

impl<const N: usize> fmt::Debug for Secret<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret<{N}>(redacted)")
    }
}

impl<const N: usize> PartialEq for Secret<N> {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl<const N: usize> Eq for Secret<N> {}

/// The key fingerprint the P-CSCF and the UE report: the first 8 hex digits of SHA-256(CK || IK).
///
/// Four bytes of a hash cannot be turned back into keys, so this is safe to log and compare.
pub fn fingerprint(ck: &Ck, ik: &Ik) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(ck.expose());
    h.update(ik.expose());
    let digest = h.finalize();
    hex::encode(&digest[..4])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let k = K::from_hex("465b5ce8b199b49faa5f0a2ee238a6bc").unwrap();
        let shown = format!("{k:?}");
        assert_eq!(shown, "Secret<16>(redacted)");
        assert!(!shown.contains("465b"));
    }

    #[test]
    fn equality_is_by_value() {
        let a = Res::new([1; 8]);
        assert_eq!(a, Res::new([1; 8]));
        assert_ne!(a, Res::new([2; 8]));
    }

    #[test]
    fn fingerprint_is_eight_hex_digits_of_sha256() {
        let fp = fingerprint(&Ck::new([0; 16]), &Ik::new([0; 16]));
        // SHA-256 of 32 zero bytes starts with 66687aad.
        assert_eq!(fp, "66687aad");
    }
}
