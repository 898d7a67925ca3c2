//! MILENAGE (3GPP TS 35.206): the authentication and key generation functions f1, f1*, f2-f5, f5*.
//!
//! Built on the AES-128 block cipher as the kernel function E_K. The key schedule lives in an
//! `aes::Aes128`, which zeroizes itself on drop (crate feature `zeroize`) and prints as `Aes128 { .. }`.

use aes::Aes128;
use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};
use zeroize::Zeroize;

use crate::secret::{Ak, Ck, Ik, K, Op, Opc, Res};

/// Rotation amounts r1..r5 in bits (TS 35.206 §4.1, default values).
const R: [usize; 5] = [64, 0, 32, 64, 96];

/// A subscriber's MILENAGE instance: K and OPc, ready to compute.
pub struct Milenage {
    cipher: Aes128,
    opc: Opc,
}

impl std::fmt::Debug for Milenage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Milenage(redacted)")
    }
}

/// Output of f1 and f1* for one (SQN, RAND, AMF): MAC-A and MAC-S (not secret once sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Macs {
    /// MAC-A = f1, the network authentication code carried in AUTN.
    pub mac_a: [u8; 8],
    /// MAC-S = f1*, the resynchronisation code carried in AUTS.
    pub mac_s: [u8; 8],
}

/// Output of f2-f5 for one RAND.
#[derive(Debug)]
pub struct Keys {
    /// RES (f2).
    pub res: Res,
    /// CK (f3).
    pub ck: Ck,
    /// IK (f4).
    pub ik: Ik,
    /// AK (f5).
    pub ak: Ak,
}

fn encrypt(cipher: &Aes128, block: &mut [u8; 16]) {
    let mut b = Array::from(*block);
    cipher.encrypt_block(&mut b);
    block.copy_from_slice(&b);
    b.zeroize();
}

fn xor(a: &mut [u8; 16], b: &[u8; 16]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x ^= y;
    }
}

fn rotate_left_bits(block: &[u8; 16], bits: usize) -> [u8; 16] {
    let by = bits / 8;
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = block[(i + by) % 16];
    }
    out
}

/// Constant c_i (TS 35.206 §4.1): c1 = 0, c2..c5 = 1, 2, 4, 8 in the last byte.
fn constant(i: usize) -> [u8; 16] {
    let mut c = [0u8; 16];
    if i > 1 {
        c[15] = 1 << (i - 2);
    }
    c
}

impl Milenage {
    /// A subscriber with K and OPc.
    pub fn with_opc(k: &K, opc: Opc) -> Self {
        let key = Array::from(*k.expose());
        let cipher = Aes128::new(&key);
        Self { cipher, opc }
    }

    /// A subscriber with K and OP; OPc is derived (OPc = OP xor E_K(OP)).
    pub fn with_op(k: &K, op: &Op) -> Self {
        let key = Array::from(*k.expose());
        let cipher = Aes128::new(&key);
        let mut block = *op.expose();
        encrypt(&cipher, &mut block);
        xor(&mut block, op.expose());
        let opc = Opc::new(block);
        block.zeroize();
        Self { cipher, opc }
    }

    /// The OPc this instance uses.
    pub fn opc(&self) -> &Opc {
        &self.opc
    }

    /// TEMP = E_K(RAND xor OPc).
    fn temp(&self, rand: &[u8; 16]) -> [u8; 16] {
        let mut t = *rand;
        xor(&mut t, self.opc.expose());
        encrypt(&self.cipher, &mut t);
        t
    }

    /// OUT_i = E_K(rot(TEMP xor OPc, r_i) xor c_i) xor OPc, for i in 2..=5.
    fn out(&self, temp: &[u8; 16], i: usize) -> [u8; 16] {
        let mut x = *temp;
        xor(&mut x, self.opc.expose());
        let mut y = rotate_left_bits(&x, R[i - 1]);
        x.zeroize();
        xor(&mut y, &constant(i));
        encrypt(&self.cipher, &mut y);
        xor(&mut y, self.opc.expose());
        y
    }

    /// f1 and f1*: MAC-A and MAC-S over SQN, RAND and AMF.
    pub fn f1_f1star(&self, rand: &[u8; 16], sqn: &[u8; 6], amf: &[u8; 2]) -> Macs {
        let mut temp = self.temp(rand);
        let mut in1 = [0u8; 16];
        in1[..6].copy_from_slice(sqn);
        in1[6..8].copy_from_slice(amf);
        in1[8..14].copy_from_slice(sqn);
        in1[14..].copy_from_slice(amf);
        xor(&mut in1, self.opc.expose());
        let mut y = rotate_left_bits(&in1, R[0]);
        xor(&mut y, &temp);
        xor(&mut y, &constant(1));
        encrypt(&self.cipher, &mut y);
        xor(&mut y, self.opc.expose());
        let mut macs = Macs {
            mac_a: [0; 8],
            mac_s: [0; 8],
        };
        macs.mac_a.copy_from_slice(&y[..8]);
        macs.mac_s.copy_from_slice(&y[8..]);
        temp.zeroize();
        y.zeroize();
        macs
    }

    /// f2, f3, f4 and f5: RES, CK, IK and AK for this RAND.
    pub fn f2345(&self, rand: &[u8; 16]) -> Keys {
        let mut temp = self.temp(rand);
        let mut out2 = self.out(&temp, 2);
        let mut out3 = self.out(&temp, 3);
        let mut out4 = self.out(&temp, 4);
        let mut res = [0u8; 8];
        res.copy_from_slice(&out2[8..]);
        let mut ak = [0u8; 6];
        ak.copy_from_slice(&out2[..6]);
        let keys = Keys {
            res: Res::new(res),
            ck: Ck::new(out3),
            ik: Ik::new(out4),
            ak: Ak::new(ak),
        };
        for b in [&mut temp, &mut out2, &mut out3, &mut out4] {
            b.zeroize();
        }
        res.zeroize();
        ak.zeroize();
        keys
    }

    /// f5*: the anonymity key AK* that conceals SQN_MS in AUTS.
    pub fn f5star(&self, rand: &[u8; 16]) -> Ak {
        let mut temp = self.temp(rand);
        let mut out5 = self.out(&temp, 5);
        let mut ak = [0u8; 6];
        ak.copy_from_slice(&out5[..6]);
        let result = Ak::new(ak);
        temp.zeroize();
        out5.zeroize();
        ak.zeroize();
        result
    }
}

/// AUTN = (SQN xor AK) || AMF || MAC-A (TS 33.102 §6.3.2).
pub fn autn(sqn: &[u8; 6], ak: &Ak, amf: &[u8; 2], mac_a: &[u8; 8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for i in 0..6 {
        out[i] = sqn[i] ^ ak.expose()[i];
    }
    out[6..8].copy_from_slice(amf);
    out[8..].copy_from_slice(mac_a);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_matches_definition() {
        let mut b = [0u8; 16];
        for (i, x) in b.iter_mut().enumerate() {
            *x = u8::try_from(i).unwrap();
        }
        let r = rotate_left_bits(&b, 32);
        assert_eq!(r[0], 4);
        assert_eq!(r[12], 0);
        assert_eq!(rotate_left_bits(&b, 0), b);
    }

    #[test]
    fn constants() {
        assert_eq!(constant(1), [0; 16]);
        assert_eq!(constant(2)[15], 1);
        assert_eq!(constant(5)[15], 8);
    }

    #[test]
    fn debug_hides_keys() {
        let m = Milenage::with_op(&K::new([7; 16]), &Op::new([9; 16]));
        assert_eq!(format!("{m:?}"), "Milenage(redacted)");
    }
}
