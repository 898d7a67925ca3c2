//! UMTS AKA around MILENAGE (TS 33.102 §6.3): AUTN checking and AUTS on the USIM side,
//! AUTS verification on the network side, SQN arithmetic.

use subtle::ConstantTimeEq;

use crate::milenage::{self, Milenage};
use crate::secret::{Ck, Ik, Res};

/// SQN is a 48-bit counter.
pub const SQN_MASK: u64 = (1 << 48) - 1;

/// The AMF that MAC-S is computed with during resynchronisation (TS 33.102 §6.3.3: all zeros).
pub const RESYNC_AMF: [u8; 2] = [0, 0];

/// SQN as the 6 bytes MILENAGE takes.
pub fn sqn_bytes(sqn: u64) -> [u8; 6] {
    let b = (sqn & SQN_MASK).to_be_bytes();
    let mut out = [0u8; 6];
    out.copy_from_slice(&b[2..]);
    out
}

/// The 6 bytes of an SQN as a number.
pub fn sqn_value(bytes: &[u8; 6]) -> u64 {
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(bytes);
    u64::from_be_bytes(b)
}

/// What the USIM concluded about a challenge.
#[derive(Debug)]
pub enum Outcome {
    /// AUTN is authentic and fresh: RES, CK and IK.
    Ok {
        /// RES to put in the digest as the password.
        res: Res,
        /// Cipher key.
        ck: Ck,
        /// Integrity key.
        ik: Ik,
    },
    /// MAC-A did not verify: the network is not authentic (or the UE's K is wrong).
    MacFailure,
    /// The SQN is out of range: AUTS (14 bytes) to send for resynchronisation.
    SyncFailure {
        /// AUTS = (SQN_MS xor AK*) || MAC-S.
        auts: [u8; 14],
    },
}

/// The UE's USIM: a MILENAGE instance plus the highest SQN it accepted (TS 33.102 Annex C, with a
/// single SEQ counter and a window `delta` that bounds how far ahead an SQN may jump).
#[derive(Debug)]
pub struct Usim {
    milenage: Milenage,
    sqn_ms: u64,
    delta: u64,
}

impl Usim {
    /// Default freshness window Δ (TS 33.102 C.2.1 suggests 2^28).
    pub const DEFAULT_DELTA: u64 = 1 << 28;

    /// A USIM with this MILENAGE instance, highest accepted SQN and freshness window.
    pub fn new(milenage: Milenage, sqn_ms: u64, delta: u64) -> Self {
        Self {
            milenage,
            sqn_ms: sqn_ms & SQN_MASK,
            delta,
        }
    }

    /// Highest SQN accepted so far.
    pub fn sqn_ms(&self) -> u64 {
        self.sqn_ms
    }

    /// Runs the USIM's side of AKA on RAND and AUTN.
    pub fn authenticate(&mut self, rand: &[u8; 16], autn: &[u8; 16]) -> Outcome {
        let keys = self.milenage.f2345(rand);
        let mut sqn = [0u8; 6];
        for (i, s) in sqn.iter_mut().enumerate() {
            *s = autn[i] ^ keys.ak.expose()[i];
        }
        let amf = [autn[6], autn[7]];
        let xmac = self.milenage.f1_f1star(rand, &sqn, &amf).mac_a;
        if !bool::from(xmac.ct_eq(&autn[8..])) {
            return Outcome::MacFailure;
        }
        let sqn = sqn_value(&sqn);
        if sqn <= self.sqn_ms || sqn - self.sqn_ms > self.delta {
            return Outcome::SyncFailure {
                auts: self.auts(rand),
            };
        }
        self.sqn_ms = sqn;
        Outcome::Ok {
            res: keys.res,
            ck: keys.ck,
            ik: keys.ik,
        }
    }

    /// AUTS = (SQN_MS xor AK*) || MAC-S, MAC-S = f1*(K, SQN_MS, RAND, AMF = 0).
    pub fn auts(&self, rand: &[u8; 16]) -> [u8; 14] {
        let sqn_ms = sqn_bytes(self.sqn_ms);
        let ak_star = self.milenage.f5star(rand);
        let mac_s = self.milenage.f1_f1star(rand, &sqn_ms, &RESYNC_AMF).mac_s;
        let mut out = [0u8; 14];
        for i in 0..6 {
            out[i] = sqn_ms[i] ^ ak_star.expose()[i];
        }
        out[6..].copy_from_slice(&mac_s);
        out
    }
}

/// Network side of resynchronisation: recovers SQN_MS from AUTS and checks MAC-S. `None` when
/// MAC-S does not verify.
pub fn verify_auts(milenage: &Milenage, rand: &[u8; 16], auts: &[u8; 14]) -> Option<u64> {
    let ak_star = milenage.f5star(rand);
    let mut sqn_ms = [0u8; 6];
    for (i, s) in sqn_ms.iter_mut().enumerate() {
        *s = auts[i] ^ ak_star.expose()[i];
    }
    let mac_s = milenage.f1_f1star(rand, &sqn_ms, &RESYNC_AMF).mac_s;
    if bool::from(mac_s.ct_eq(&auts[6..])) {
        Some(sqn_value(&sqn_ms))
    } else {
        None
    }
}

/// Network side of vector generation: AUTN for SQN and AMF under this RAND.
pub fn make_autn(milenage: &Milenage, rand: &[u8; 16], sqn: u64, amf: &[u8; 2]) -> [u8; 16] {
    let sqn = sqn_bytes(sqn);
    let mac_a = milenage.f1_f1star(rand, &sqn, amf).mac_a;
    let ak = milenage.f2345(rand).ak;
    milenage::autn(&sqn, &ak, amf, &mac_a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{K, Op};

    fn m() -> Milenage {
        Milenage::with_op(
            &K::from_hex("0396eb317b6d1c36f19c1c84cd6ffd16").unwrap(),
            &Op::from_hex("ff53bade17df5d4e793073ce9d7579fa").unwrap(),
        )
    }

    #[test]
    fn sqn_roundtrip() {
        assert_eq!(sqn_value(&sqn_bytes(0xfd8eef40df7d)), 0xfd8eef40df7d);
        assert_eq!(sqn_bytes(u64::MAX), [0xff; 6]);
    }

    #[test]
    fn fresh_sqn_accepted_once_then_resync_recovers_sqn_ms() {
        let rand = [3u8; 16];
        let autn = make_autn(&m(), &rand, 100, &[0x80, 0]);
        let mut usim = Usim::new(m(), 50, Usim::DEFAULT_DELTA);
        assert!(matches!(
            usim.authenticate(&rand, &autn),
            Outcome::Ok { .. }
        ));
        assert_eq!(usim.sqn_ms(), 100);
        // Replay: same SQN again is stale.
        let Outcome::SyncFailure { auts } = usim.authenticate(&rand, &autn) else {
            panic!("replayed AUTN must fail synchronisation");
        };
        assert_eq!(verify_auts(&m(), &rand, &auts), Some(100));
        let mut bad = auts;
        bad[13] ^= 1;
        assert_eq!(verify_auts(&m(), &rand, &bad), None);
    }

    #[test]
    fn jump_beyond_window_is_sync_failure_and_wrong_k_is_mac_failure() {
        let rand = [9u8; 16];
        let autn = make_autn(&m(), &rand, 1_000_000, &[0x80, 0]);
        let mut usim = Usim::new(m(), 1, 10);
        assert!(matches!(
            usim.authenticate(&rand, &autn),
            Outcome::SyncFailure { .. }
        ));
        let wrong = Milenage::with_op(&K::new([1; 16]), &Op::new([2; 16]));
        let mut usim = Usim::new(wrong, 1, Usim::DEFAULT_DELTA);
        assert!(matches!(
            usim.authenticate(&rand, &autn),
            Outcome::MacFailure
        ));
    }
}
