//! HSS: subscribers from TOML and authentication vectors with SQN management (TS 33.102 §6.3,
//! resynchronisation per §6.3.5).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use serde::Deserialize;
use zeroize::Zeroize;

use crate::Error;
use crate::aka::{self, SQN_MASK};
use crate::hex;
use crate::milenage::Milenage;
use crate::secret::{Ck, Ik, K, Op, Opc, Res};

/// The subscriber file as written (`[[subscriber]]` tables).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriberFile {
    #[serde(default)]
    subscriber: Vec<SubscriberEntry>,
}

/// One `[[subscriber]]` table; key fields are hex strings that are zeroized after parsing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriberEntry {
    impi: String,
    impus: Vec<String>,
    k: String,
    op: Option<String>,
    opc: Option<String>,
    amf: String,
    sqn: String,
}

impl Drop for SubscriberEntry {
    fn drop(&mut self) {
        self.k.zeroize();
        self.op.zeroize();
        self.opc.zeroize();
    }
}

/// OP or OPc of a subscriber.
#[derive(Debug, Clone)]
pub enum OperatorKey {
    /// OP (OPc is derived with K).
    Op(Op),
    /// OPc.
    Opc(Opc),
}

impl OperatorKey {
    /// A MILENAGE instance for K with this operator key.
    pub fn milenage(&self, k: &K) -> Milenage {
        match self {
            OperatorKey::Op(op) => Milenage::with_op(k, op),
            OperatorKey::Opc(opc) => Milenage::with_opc(k, opc.clone()),
        }
    }
}

/// One provisioned subscription as the file states it: what both the HSS and the subscriber's
/// USIM are built from.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// Private user identity.
    pub impi: String,
    /// Public user identities.
    pub impus: Vec<String>,
    /// K.
    pub k: K,
    /// OP or OPc.
    pub operator_key: OperatorKey,
    /// AMF.
    pub amf: [u8; 2],
    /// The SQN the HSS uses next.
    pub sqn: u64,
}

/// A validated subscriber: identities, MILENAGE instance, AMF and next SQN.
#[derive(Debug)]
pub struct Subscriber {
    /// Private user identity (the digest username).
    pub impi: String,
    /// Public user identities; the first is the default one, all form one implicit registration set.
    pub impus: Vec<String>,
    milenage: Milenage,
    amf: [u8; 2],
    sqn: u64,
}

/// One authentication vector (RAND, AUTN, XRES, CK, IK) for an IMPI.
#[derive(Debug)]
pub struct AuthVector {
    /// The challenge RAND.
    pub rand: [u8; 16],
    /// AUTN = SQN^AK || AMF || MAC-A.
    pub autn: [u8; 16],
    /// Expected RES.
    pub xres: Res,
    /// Cipher key.
    pub ck: Ck,
    /// Integrity key.
    pub ik: Ik,
    /// SQN this vector was made with (not secret).
    pub sqn: u64,
}

fn field_err(index: usize, field: &str, why: impl std::fmt::Display) -> Error {
    Error::Config(format!("subscriber[{index}].{field}: {why}"))
}

fn valid_identity(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'<' && b != b'>' && b != b',')
}

impl SubscriberEntry {
    fn validate(&self, index: usize) -> Result<Provisioned, Error> {
        if !valid_identity(&self.impi) {
            return Err(field_err(
                index,
                "impi",
                "must be a non-empty identity without spaces, quotes, commas or angle brackets",
            ));
        }
        if self.impus.is_empty() {
            return Err(field_err(
                index,
                "impus",
                "at least one public identity is required",
            ));
        }
        for (j, impu) in self.impus.iter().enumerate() {
            if !(impu.starts_with("sip:") || impu.starts_with("tel:")) || !valid_identity(impu) {
                return Err(field_err(
                    index,
                    &format!("impus[{j}]"),
                    "must be a sip: or tel: URI without spaces",
                ));
            }
        }
        let k = K::from_hex(&self.k).map_err(|e| field_err(index, "k", e))?;
        let operator_key = match (&self.op, &self.opc) {
            (Some(op), None) => {
                OperatorKey::Op(Op::from_hex(op).map_err(|e| field_err(index, "op", e))?)
            }
            (None, Some(opc)) => {
                OperatorKey::Opc(Opc::from_hex(opc).map_err(|e| field_err(index, "opc", e))?)
            }
            _ => {
                return Err(field_err(
                    index,
                    "op/opc",
                    "exactly one of op and opc is required",
                ));
            }
        };
        let amf = hex::decode_array::<2>(&self.amf).map_err(|e| field_err(index, "amf", e))?;
        let sqn = aka::sqn_value(
            &hex::decode_array::<6>(&self.sqn).map_err(|e| field_err(index, "sqn", e))?,
        );
        Ok(Provisioned {
            impi: self.impi.clone(),
            impus: self.impus.clone(),
            k,
            operator_key,
            amf,
            sqn,
        })
    }
}

impl From<&Provisioned> for Subscriber {
    fn from(p: &Provisioned) -> Self {
        Subscriber {
            impi: p.impi.clone(),
            impus: p.impus.clone(),
            milenage: p.operator_key.milenage(&p.k),
            amf: p.amf,
            sqn: p.sqn,
        }
    }
}

/// Parses and validates a subscriber file's text into HSS subscribers.
pub fn parse_subscribers(text: &str) -> Result<Vec<Subscriber>, Error> {
    Ok(parse_provisioning(text)?
        .iter()
        .map(Subscriber::from)
        .collect())
}

/// Parses and validates a subscriber file's text, keeping the credentials (for building UEs).
pub fn parse_provisioning(text: &str) -> Result<Vec<Provisioned>, Error> {
    let file: SubscriberFile = toml::from_str(text)
        .map_err(|e| Error::Config(format!("subscriber file: {}", e.message())))?;
    let mut out: Vec<Provisioned> = Vec::with_capacity(file.subscriber.len());
    let mut impus = HashMap::new();
    for (i, entry) in file.subscriber.iter().enumerate() {
        let s = entry.validate(i)?;
        if out.iter().any(|o| o.impi == s.impi) {
            return Err(field_err(i, "impi", "duplicate IMPI"));
        }
        for impu in &s.impus {
            if impus.insert(impu.clone(), i).is_some() {
                return Err(field_err(
                    i,
                    "impus",
                    format!("{impu} belongs to another subscriber"),
                ));
            }
        }
        out.push(s);
    }
    if out.is_empty() {
        return Err(Error::Config(
            "subscriber file: no [[subscriber]] entries".into(),
        ));
    }
    Ok(out)
}

/// The home subscriber server: subscriber data and SQN state behind one lock.
#[derive(Debug)]
pub struct Hss {
    subscribers: Mutex<HashMap<String, Subscriber>>,
    impu_index: HashMap<String, String>,
    nul_free_res: bool,
}

impl Hss {
    /// An HSS holding these subscribers.
    pub fn new(subscribers: Vec<Subscriber>) -> Self {
        let mut impu_index = HashMap::new();
        let mut map = HashMap::new();
        for s in subscribers {
            for impu in &s.impus {
                impu_index.insert(impu.clone(), s.impi.clone());
            }
            map.insert(s.impi.clone(), s);
        }
        Self {
            subscribers: Mutex::new(map),
            impu_index,
            nul_free_res: false,
        }
    }

    /// Draws only RANDs whose RES has no zero byte. SIPp (as a UE) treats RES as a C string and
    /// cuts it at the first zero byte, so about 3% of ordinary challenges fail in SIPp itself;
    /// with this on, SIPp registrations are deterministic. Off by default: real UEs need no help.
    pub fn with_nul_free_res(mut self, on: bool) -> Self {
        self.nul_free_res = on;
        self
    }

    /// Loads and validates a subscriber file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        Ok(Self::new(parse_subscribers(&text)?))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Subscriber>> {
        // A panic elsewhere while holding the lock leaves consistent data (every update is one
        // assignment), so a poisoned lock is still usable.
        self.subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The implicit registration set (all IMPUs) of an IMPI.
    pub fn impus(&self, impi: &str) -> Option<Vec<String>> {
        self.lock().get(impi).map(|s| s.impus.clone())
    }

    /// The IMPI that owns an IMPU.
    pub fn impi_of(&self, impu: &str) -> Option<&str> {
        self.impu_index.get(impu).map(String::as_str)
    }

    /// Every IMPI, sorted.
    pub fn impis(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lock().keys().cloned().collect();
        v.sort();
        v
    }

    /// The SQN the next vector for `impi` will carry.
    pub fn next_sqn(&self, impi: &str) -> Option<u64> {
        self.lock().get(impi).map(|s| s.sqn)
    }

    /// A fresh vector with a random RAND; the subscriber's SQN advances by one.
    pub fn vector(&self, impi: &str) -> Result<AuthVector, Error> {
        let mut rand = [0u8; 16];
        // With `nul_free_res`, each draw fails with probability ~3%; 64 draws always suffice.
        for _ in 0..64 {
            getrandom::fill(&mut rand).map_err(|_| Error::Random)?;
            if !self.nul_free_res {
                break;
            }
            let subs = self.lock();
            let s = subs.get(impi).ok_or(Error::UnknownSubscriber)?;
            if !s.milenage.f2345(&rand).res.expose().contains(&0) {
                break;
            }
        }
        self.vector_with_rand(impi, rand)
    }

    /// A vector with a given RAND (deterministic tests); the SQN still advances.
    pub fn vector_with_rand(&self, impi: &str, rand: [u8; 16]) -> Result<AuthVector, Error> {
        let mut subs = self.lock();
        let s = subs.get_mut(impi).ok_or(Error::UnknownSubscriber)?;
        let sqn = s.sqn;
        s.sqn = (sqn + 1) & SQN_MASK;
        // RAND and SQN are public (RAND travels in the nonce); logged so a test can recompute
        // every key of a run and prove none of them reached the logs.
        tracing::debug!(impi, rand = %hex::encode(&rand), sqn, "hss: authentication vector");
        let autn = aka::make_autn(&s.milenage, &rand, sqn, &s.amf);
        let keys = s.milenage.f2345(&rand);
        Ok(AuthVector {
            rand,
            autn,
            xres: keys.res,
            ck: keys.ck,
            ik: keys.ik,
            sqn,
        })
    }

    /// CK and IK of `impi` for a RAND, without touching the SQN: the oracle tests use to check
    /// the keys a P-CSCF holds.
    pub fn keys_for(&self, impi: &str, rand: &[u8; 16]) -> Option<(Ck, Ik)> {
        let subs = self.lock();
        let keys = subs.get(impi)?.milenage.f2345(rand);
        Some((keys.ck, keys.ik))
    }

    /// Resynchronisation (TS 33.102 §6.3.5): verifies AUTS against the RAND it answers, sets the
    /// SQN past SQN_MS and returns a fresh vector.
    pub fn resync(
        &self,
        impi: &str,
        rand: &[u8; 16],
        auts: &[u8; 14],
    ) -> Result<AuthVector, Error> {
        {
            let mut subs = self.lock();
            let s = subs.get_mut(impi).ok_or(Error::UnknownSubscriber)?;
            let sqn_ms = aka::verify_auts(&s.milenage, rand, auts).ok_or(Error::AutsInvalid)?;
            s.sqn = (sqn_ms + 1) & SQN_MASK;
        }
        self.vector(impi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[subscriber]]
impi = "alice@ims.example.org"
impus = ["sip:alice@ims.example.org", "tel:+15550100"]
k = "0396eb317b6d1c36f19c1c84cd6ffd16"
op = "ff53bade17df5d4e793073ce9d7579fa"
amf = "af17"
sqn = "fd8eef40df7d"
"#;

    #[test]
    fn vector_matches_milenage_set_2_and_sqn_advances() {
        let hss = Hss::new(parse_subscribers(GOOD).unwrap());
        let rand = hex::decode_array::<16>("c00d603103dcee52c4478119494202e8").unwrap();
        let v = hss.vector_with_rand("alice@ims.example.org", rand).unwrap();
        assert_eq!(hex::encode(&v.autn), "39f96cd9800faf175df5b31807e258b0");
        assert_eq!(v.xres, Res::from_hex("d3a628ed988620f0").unwrap());
        assert_eq!(hss.next_sqn("alice@ims.example.org"), Some(0xfd8eef40df7e));
        assert_eq!(hss.impi_of("tel:+15550100"), Some("alice@ims.example.org"));
        assert!(matches!(
            hss.vector("nobody"),
            Err(Error::UnknownSubscriber)
        ));
    }

    #[test]
    fn rejects_invalid_files() {
        for (text, needle) in [
            (
                GOOD.replace("op = ", "opc = \"00000000000000000000000000000000\"\nop = "),
                "exactly one of op and opc",
            ),
            (GOOD.replace("op = ", "oq = "), "unknown field"),
            (GOOD.replace("0396eb31", "0396eb3"), "subscriber[0].k"),
            (GOOD.replace("af17", "af1z"), "subscriber[0].amf"),
            (GOOD.replace("\"sip:alice@ims.example.org\", ", ""), ""),
            (
                GOOD.replace("[\"sip:alice@ims.example.org\", \"tel:+15550100\"]", "[]"),
                "at least one",
            ),
            (format!("{GOOD}{GOOD}"), "duplicate IMPI"),
            (String::new(), "no [[subscriber]]"),
        ] {
            match parse_subscribers(&text) {
                Err(Error::Config(msg)) => {
                    assert!(msg.contains(needle), "{msg} should mention {needle}");
                    assert!(!msg.contains("0396eb"), "error leaks key: {msg}");
                }
                Ok(_) if needle.is_empty() => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn nul_free_res_draws_rands_sipp_can_answer() {
        let hss = Hss::new(parse_subscribers(GOOD).unwrap()).with_nul_free_res(true);
        for _ in 0..200 {
            let v = hss.vector("alice@ims.example.org").unwrap();
            assert!(!v.xres.expose().contains(&0));
        }
    }

    #[test]
    fn resync_moves_sqn_past_the_ue() {
        let hss = Hss::new(parse_subscribers(GOOD).unwrap());
        let p = parse_provisioning(GOOD).unwrap().pop().unwrap();
        let usim = aka::Usim::new(
            p.operator_key.milenage(&p.k),
            0xfd8eef40ff00,
            aka::Usim::DEFAULT_DELTA,
        );
        let rand = [5u8; 16];
        let auts = usim.auts(&rand);
        let v = hss.resync("alice@ims.example.org", &rand, &auts).unwrap();
        assert_eq!(v.sqn, 0xfd8eef40ff01);
        let mut bad = auts;
        bad[7] ^= 0x40;
        assert!(matches!(
            hss.resync("alice@ims.example.org", &rand, &bad),
            Err(Error::AutsInvalid)
        ));
    }
}
