//! The sealed header extension of DESIGN §2.2: `kt="ikt1.<kid>.<payload>"`.
//!
//! # Token
//! `ikt1.` || kid || `.` || base64url-without-padding(nonce(12) || ciphertext || tag(16)).
//! The kid is 1..=32 characters of `A-Z a-z 0-9 _ -` (so it can never contain the `.`
//! separator). Decoding is strict: padding, non-alphabet characters and non-zero trailing
//! bits are refused, so every token has exactly one spelling. Tokens longer than
//! [`MAX_TOKEN_LEN`] are refused before any work.
//!
//! # Cipher and key
//! AES-256-GCM with a random 96-bit nonce per token. The key is
//! `HKDF-SHA256(ikm = pair shared secret, salt = kid, info = "ikt1 seal" || s-agent id || p-agent id)`,
//! 32 bytes; kid and agent ids are their UTF-8 bytes, concatenated without separators, exactly
//! as in DESIGN §2.2.
//!
//! # Plaintext
//! The [`KeyBundle`] protobuf (see [`crate::bundle`]).
//!
//! # Associated data
//! Seven items, each written as its length (`u32`, big-endian) followed by its bytes:
//!
//! | # | item | bytes |
//! |---|---|---|
//! | 1 | version | `ikt1` (ASCII) |
//! | 2 | kid | UTF-8 of the kid |
//! | 3 | realm | UTF-8 of the challenge's `realm` value (unquoted) |
//! | 4 | challenge nonce | UTF-8 of the challenge's `nonce` value (unquoted) |
//! | 5 | Call-ID | UTF-8 of the Call-ID header value |
//! | 6 | CSeq number | 4 bytes, `u32` big-endian (so the length prefix is `00 00 00 04`) |
//! | 7 | To URI | UTF-8 of the To header's URI (no display name, no tag) |
//!
//! A token cut from one 401 and pasted into another therefore fails with [`Error::BadTag`].
//!
//! # Opening
//! Checks run in this order, each with its own error: [`Error::Malformed`], [`Error::UnknownKid`],
//! [`Error::BadTag`], [`Error::BadPlaintext`] (includes a bundle whose realm, nonce, Call-ID or
//! CSeq differs from the context), [`Error::NotYetValid`] (`issued_at_ms` beyond `now + max_skew`),
//! [`Error::TooOld`] (`issued_at_ms + max_age` passed), [`Error::Expired`] (the bundle's own
//! `not_after_ms` passed), then the replay cache: [`Error::ReplayMismatch`] when this challenge
//! nonce was opened before with different keys, [`Error::ReplayCacheFull`] when the bounded cache
//! holds only live entries (fail closed rather than forget). An identical retransmission (same
//! nonce, same CK/IK, whatever its sealing nonce) opens again.

use std::collections::{HashMap, VecDeque};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::bundle::{KeyBundle, MAX_ENCODED_LEN};
use crate::secret::{SealingKey, SecretBytes, key_digest};
use crate::{Error, MalformedToken};

/// Token prefix: version and separator.
pub const PREFIX: &str = "ikt1.";
/// Longest kid, in bytes.
pub const MAX_KID_LEN: usize = 32;
/// Longest agent id accepted in the key derivation, in bytes.
pub const MAX_AGENT_ID_LEN: usize = 128;
/// Shortest pair shared secret accepted, in bytes.
pub const MIN_SHARED_SECRET_LEN: usize = 16;
/// Length of the AES-GCM nonce at the start of the payload.
pub const NONCE_LEN: usize = 12;
/// Length of the AES-GCM tag at the end of the payload.
pub const TAG_LEN: usize = 16;
/// Longest token accepted: room for the largest bundle with margin.
pub const MAX_TOKEN_LEN: usize = 4096;
/// Most kids an [`Opener`] holds at once (rotation needs two or three).
pub const MAX_KIDS: usize = 16;

const VERSION: &[u8] = b"ikt1";
const INFO_LABEL: &[u8] = b"ikt1 seal";

/// What a token is bound to: the 401 it travels in. Build it from the 401 on the opening side
/// and with [`AadContext::for_bundle`] on the sealing side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AadContext<'a> {
    /// The challenge's `realm` value.
    pub realm: &'a str,
    /// The challenge's `nonce` value.
    pub nonce: &'a str,
    /// The Call-ID header value.
    pub call_id: &'a str,
    /// The CSeq number.
    pub cseq: u32,
    /// The To header's URI.
    pub to_uri: &'a str,
}

impl<'a> AadContext<'a> {
    /// The context of `bundle` carried in a 401 whose To URI is `to_uri`.
    pub fn for_bundle(bundle: &'a KeyBundle, to_uri: &'a str) -> Self {
        Self {
            realm: &bundle.realm,
            nonce: &bundle.nonce,
            call_id: &bundle.call_id,
            cseq: bundle.cseq,
            to_uri,
        }
    }

    /// The associated data bytes for `kid` (layout in the module doc).
    pub fn aad(&self, kid: &str) -> Vec<u8> {
        let cseq = self.cseq.to_be_bytes();
        let items: [&[u8]; 7] = [
            VERSION,
            kid.as_bytes(),
            self.realm.as_bytes(),
            self.nonce.as_bytes(),
            self.call_id.as_bytes(),
            &cseq,
            self.to_uri.as_bytes(),
        ];
        let mut out = Vec::with_capacity(items.iter().map(|i| 4 + i.len()).sum());
        for item in items {
            // Items are bounded by SIP message limits far below 4 GiB; saturate rather than wrap.
            let len = u32::try_from(item.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(item);
        }
        out
    }
}

fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check_kid(kid: &str) -> Result<(), Error> {
    if valid_kid(kid) {
        Ok(())
    } else {
        Err(Error::SealConfig("kid must be 1..=32 of [A-Za-z0-9_-]"))
    }
}

/// Derives the pair's sealing key for `kid` (formula in the module doc).
pub fn derive_key(
    shared_secret: &SecretBytes,
    kid: &str,
    s_agent_id: &str,
    p_agent_id: &str,
) -> Result<SealingKey, Error> {
    check_kid(kid)?;
    if shared_secret.len() < MIN_SHARED_SECRET_LEN {
        return Err(Error::SealConfig("shared secret shorter than 16 bytes"));
    }
    for id in [s_agent_id, p_agent_id] {
        if id.is_empty() || id.len() > MAX_AGENT_ID_LEN {
            return Err(Error::SealConfig("agent id must be 1..=128 bytes"));
        }
    }
    let hk = Hkdf::<Sha256>::new(Some(kid.as_bytes()), shared_secret.expose_secret());
    let mut key = SealingKey::from_bytes([0u8; 32]);
    hk.expand_multi_info(
        &[INFO_LABEL, s_agent_id.as_bytes(), p_agent_id.as_bytes()],
        key.expose_secret_mut(),
    )
    .map_err(|_| Error::SealConfig("hkdf output length"))?;
    Ok(key)
}

fn cipher_for(key: &SealingKey) -> Result<Box<Aes256Gcm>, Error> {
    // Boxed so the expanded round keys stay at one address and are wiped on drop (aes-gcm's
    // zeroize feature), instead of being copied around with the owner.
    Aes256Gcm::new_from_slice(key.expose_secret())
        .map(Box::new)
        .map_err(|_| Error::SealConfig("key length"))
}

/// Seals bundles under one kid (the s-cscf-agent side).
pub struct Sealer {
    kid: Box<str>,
    cipher: Box<Aes256Gcm>,
}

impl core::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sealer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer for the pair (`s_agent_id` → `p_agent_id`) under `kid`.
    pub fn new(
        kid: &str,
        shared_secret: &SecretBytes,
        s_agent_id: &str,
        p_agent_id: &str,
    ) -> Result<Self, Error> {
        let key = derive_key(shared_secret, kid, s_agent_id, p_agent_id)?;
        Self::from_key(kid, &key)
    }

    /// A sealer from an already derived key.
    pub fn from_key(kid: &str, key: &SealingKey) -> Result<Self, Error> {
        check_kid(kid)?;
        Ok(Self {
            kid: kid.into(),
            cipher: cipher_for(key)?,
        })
    }

    /// The kid written into tokens.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Seals `bundle` for the 401 whose To URI is `to_uri`, with a fresh random nonce.
    pub fn seal(&self, bundle: &KeyBundle, to_uri: &str) -> Result<String, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| Error::Random)?;
        self.seal_with_nonce(bundle, to_uri, nonce)
    }

    /// Seals with a caller-chosen AES-GCM nonce. Only for tests and test vectors: reusing a
    /// nonce under one key breaks GCM.
    pub fn seal_with_nonce(
        &self,
        bundle: &KeyBundle,
        to_uri: &str,
        nonce: [u8; NONCE_LEN],
    ) -> Result<String, Error> {
        let aad = AadContext::for_bundle(bundle, to_uri).aad(&self.kid);
        let plain_len = bundle.encoded_len();
        let mut buf = Zeroizing::new(Vec::with_capacity(NONCE_LEN + plain_len + TAG_LEN));
        buf.extend_from_slice(&nonce);
        bundle.encode_into(&mut buf, TAG_LEN)?;
        let nonce = Nonce::from(nonce);
        let tag = self
            .cipher
            .encrypt_inout_detached(&nonce, &aad, (&mut buf[NONCE_LEN..]).into())
            .map_err(|_| Error::SealFailed)?;
        buf.extend_from_slice(&tag);
        let mut token =
            String::with_capacity(PREFIX.len() + self.kid.len() + 1 + buf.len().div_ceil(3) * 4);
        token.push_str(PREFIX);
        token.push_str(&self.kid);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(buf.as_slice(), &mut token);
        if token.len() > MAX_TOKEN_LEN {
            return Err(Error::SealFailed);
        }
        Ok(token)
    }
}

/// Splits a token into kid and decoded payload; never panics, bounded work.
pub fn parse_token(token: &str) -> Result<(&str, Vec<u8>), MalformedToken> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(MalformedToken::TooLong);
    }
    let rest = token
        .strip_prefix(PREFIX)
        .ok_or(MalformedToken::BadVersion)?;
    let (kid, b64) = rest.split_once('.').ok_or(MalformedToken::BadKid)?;
    if !valid_kid(kid) {
        return Err(MalformedToken::BadKid);
    }
    let payload = URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| MalformedToken::BadBase64)?;
    if payload.len() < NONCE_LEN + TAG_LEN {
        return Err(MalformedToken::TooShort);
    }
    Ok((kid, payload))
}

/// Limits of an [`Opener`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenerConfig {
    /// Tokens issued longer ago than this are refused ([`Error::TooOld`]), milliseconds.
    pub max_age_ms: u64,
    /// How far in the future `issued_at_ms` may be (clock skew between agents), milliseconds.
    pub max_skew_ms: u64,
    /// Most challenge nonces remembered by the replay cache.
    pub replay_capacity: usize,
}

impl Default for OpenerConfig {
    fn default() -> Self {
        // 32 s is SIP Timer F: no retransmission of a 401 outlives its transaction.
        Self {
            max_age_ms: 32_000,
            max_skew_ms: 2_000,
            replay_capacity: 65_536,
        }
    }
}

struct ReplayEntry {
    digest: [u8; 32],
    expires_ms: u64,
}

/// Opens tokens from one or more sealers (the p-cscf-agent side); holds several kids so keys
/// can rotate, and a bounded replay cache by challenge nonce.
pub struct Opener {
    config: OpenerConfig,
    keys: Vec<(Box<str>, Box<Aes256Gcm>)>,
    /// By a 128-bit keyed hash of the challenge nonce rather than the nonce itself: an entry
    /// lives as long as `max_age`, so its size is memory per pending bundle.
    replay: HashMap<NonceKey, ReplayEntry>,
    /// Nonce keys in first-seen order, for expiry; expiry times are non-decreasing along it as
    /// long as `now_ms` is.
    replay_order: VecDeque<(u64, NonceKey)>,
    /// Two independent random keys: a collision between different nonces is out of reach.
    hashers: [std::collections::hash_map::RandomState; 2],
}

/// Keyed hash of a challenge nonce.
type NonceKey = [u64; 2];

impl core::fmt::Debug for Opener {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Opener")
            .field("config", &self.config)
            .field(
                "kids",
                &self.keys.iter().map(|(k, _)| &**k).collect::<Vec<_>>(),
            )
            .field("replay_entries", &self.replay.len())
            .finish()
    }
}

impl Opener {
    /// An opener with no kids yet.
    pub fn new(config: OpenerConfig) -> Self {
        Self {
            config,
            keys: Vec::new(),
            replay: HashMap::new(),
            replay_order: VecDeque::new(),
            hashers: Default::default(),
        }
    }

    /// Accepts `kid` for the pair (`s_agent_id` → `p_agent_id`); replaces a kid of that name.
    pub fn add_kid(
        &mut self,
        kid: &str,
        shared_secret: &SecretBytes,
        s_agent_id: &str,
        p_agent_id: &str,
    ) -> Result<(), Error> {
        let key = derive_key(shared_secret, kid, s_agent_id, p_agent_id)?;
        self.add_key(kid, &key)
    }

    /// Accepts `kid` with an already derived key; replaces a kid of that name.
    pub fn add_key(&mut self, kid: &str, key: &SealingKey) -> Result<(), Error> {
        check_kid(kid)?;
        let cipher = cipher_for(key)?;
        if let Some(slot) = self.keys.iter_mut().find(|(k, _)| &**k == kid) {
            slot.1 = cipher;
            return Ok(());
        }
        if self.keys.len() >= MAX_KIDS {
            return Err(Error::SealConfig("too many kids"));
        }
        self.keys.push((kid.into(), cipher));
        Ok(())
    }

    /// Stops accepting `kid` (its key is wiped); returns whether it was held.
    pub fn remove_kid(&mut self, kid: &str) -> bool {
        let before = self.keys.len();
        self.keys.retain(|(k, _)| &**k != kid);
        before != self.keys.len()
    }

    /// The kids accepted now.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(k, _)| &**k)
    }

    /// Challenge nonces remembered by the replay cache now.
    pub fn replay_len(&self) -> usize {
        self.replay.len()
    }

    /// Opens `token` found in the 401 described by `ctx`, at `now_ms` (order of checks in the
    /// module doc).
    pub fn open(
        &mut self,
        token: &str,
        ctx: &AadContext<'_>,
        now_ms: u64,
    ) -> Result<KeyBundle, Error> {
        let (kid, payload) = parse_token(token)?;
        let cipher = &self
            .keys
            .iter()
            .find(|(k, _)| &**k == kid)
            .ok_or(Error::UnknownKid)?
            .1;
        // The payload turns into plaintext in place: wipe it whatever happens next.
        let mut payload = Zeroizing::new(payload);
        let body_end = payload.len() - TAG_LEN;
        if body_end - NONCE_LEN > MAX_ENCODED_LEN {
            return Err(MalformedToken::TooLong.into());
        }
        let nonce = Nonce::try_from(&payload[..NONCE_LEN]).map_err(|_| MalformedToken::TooShort)?;
        let tag = Tag::try_from(&payload[body_end..]).map_err(|_| MalformedToken::TooShort)?;
        let aad = ctx.aad(kid);
        cipher
            .decrypt_inout_detached(
                &nonce,
                &aad,
                (&mut payload[NONCE_LEN..body_end]).into(),
                &tag,
            )
            .map_err(|_| Error::BadTag)?;
        let bundle =
            KeyBundle::decode(&payload[NONCE_LEN..body_end]).map_err(|_| Error::BadPlaintext)?;
        let consistent = bundle.realm == ctx.realm
            && bundle.nonce == ctx.nonce
            && bundle.call_id == ctx.call_id
            && bundle.cseq == ctx.cseq;
        if !consistent {
            return Err(Error::BadPlaintext);
        }
        if bundle.issued_at_ms > now_ms.saturating_add(self.config.max_skew_ms) {
            return Err(Error::NotYetValid);
        }
        if now_ms > bundle.issued_at_ms.saturating_add(self.config.max_age_ms) {
            return Err(Error::TooOld);
        }
        if bundle.not_after_ms != 0 && now_ms >= bundle.not_after_ms {
            return Err(Error::Expired);
        }
        self.check_replay(&bundle, now_ms)?;
        Ok(bundle)
    }

    fn check_replay(&mut self, bundle: &KeyBundle, now_ms: u64) -> Result<(), Error> {
        while let Some((expires, _)) = self.replay_order.front() {
            if *expires > now_ms {
                break;
            }
            if let Some((expires, nonce)) = self.replay_order.pop_front()
                && self
                    .replay
                    .get(&nonce)
                    .is_some_and(|e| e.expires_ms == expires)
            {
                self.replay.remove(&nonce);
            }
        }
        let digest = key_digest(&bundle.ck, &bundle.ik);
        let nonce: NonceKey = {
            use core::hash::BuildHasher;
            [
                self.hashers[0].hash_one(bundle.nonce.as_str()),
                self.hashers[1].hash_one(bundle.nonce.as_str()),
            ]
        };
        if let Some(seen) = self.replay.get(&nonce) {
            return if bool::from(seen.digest.ct_eq(&digest)) {
                Ok(())
            } else {
                Err(Error::ReplayMismatch)
            };
        }
        if self.replay.len() >= self.config.replay_capacity {
            return Err(Error::ReplayCacheFull);
        }
        // Remember the nonce as long as any token for it could still pass the age check.
        let expires_ms = now_ms
            .saturating_add(self.config.max_age_ms)
            .saturating_add(self.config.max_skew_ms)
            .saturating_add(1);
        self.replay_order.push_back((expires_ms, nonce));
        self.replay
            .insert(nonce, ReplayEntry { digest, expires_ms });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ck, Ik};

    fn bundle() -> KeyBundle {
        KeyBundle {
            seq: 1,
            realm: "ims.example".into(),
            nonce: "bm9uY2U=".into(),
            call_id: "cid@host".into(),
            cseq: 7,
            impu: "sip:alice@ims.example".into(),
            impi: "alice@ims.example".into(),
            ck: Ck::from_bytes([1; 16]),
            ik: Ik::from_bytes([2; 16]),
            issued_at_ms: 10_000,
            not_after_ms: 74_000,
            algorithm: "AKAv1-MD5".into(),
        }
    }

    fn pair() -> (Sealer, Opener) {
        let secret = SecretBytes::from_slice(&[9; 32]).unwrap();
        let sealer = Sealer::new("k1", &secret, "scscf-1", "pcscf-1").unwrap();
        let mut opener = Opener::new(OpenerConfig::default());
        opener.add_kid("k1", &secret, "scscf-1", "pcscf-1").unwrap();
        (sealer, opener)
    }

    #[test]
    fn aad_layout_is_length_prefixed() {
        let b = bundle();
        let aad = AadContext::for_bundle(&b, "sip:a@b").aad("k1");
        let mut want = Vec::new();
        for item in [
            &b"ikt1"[..],
            b"k1",
            b"ims.example",
            b"bm9uY2U=",
            b"cid@host",
            &[0, 0, 0, 7],
            b"sip:a@b",
        ] {
            want.extend_from_slice(&(item.len() as u32).to_be_bytes());
            want.extend_from_slice(item);
        }
        assert_eq!(aad, want);
    }

    #[test]
    fn token_shape() {
        let (s, _) = pair();
        let t = s.seal_with_nonce(&bundle(), "sip:a@b", [0; 12]).unwrap();
        assert!(t.starts_with("ikt1.k1."));
        let (kid, payload) = parse_token(&t).unwrap();
        assert_eq!(kid, "k1");
        assert_eq!(payload.len(), NONCE_LEN + bundle().encoded_len() + TAG_LEN);
        assert_eq!(&payload[..12], &[0; 12]);
    }

    #[test]
    fn round_trip_and_checks_in_order() {
        let (s, mut o) = pair();
        let b = bundle();
        let t = s.seal(&b, "sip:a@b").unwrap();
        let ctx = AadContext::for_bundle(&b, "sip:a@b");
        assert_eq!(o.open(&t, &ctx, 10_500).unwrap(), b);
        assert_eq!(
            o.open(&t, &ctx, 10_000 - 2_001).unwrap_err(),
            Error::NotYetValid
        );
        assert_eq!(
            o.open(&t, &ctx, 10_000 + 32_001).unwrap_err(),
            Error::TooOld
        );
        let mut o2 = Opener::new(OpenerConfig {
            max_age_ms: 1_000_000,
            ..OpenerConfig::default()
        });
        o2.add_key(
            "k1",
            &derive_key(
                &SecretBytes::from_slice(&[9; 32]).unwrap(),
                "k1",
                "scscf-1",
                "pcscf-1",
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(o2.open(&t, &ctx, 74_000).unwrap_err(), Error::Expired);
    }

    #[test]
    fn config_limits() {
        let short = SecretBytes::from_slice(&[1; 8]).unwrap();
        let ok = SecretBytes::from_slice(&[1; 16]).unwrap();
        assert!(matches!(
            Sealer::new("k1", &short, "s", "p"),
            Err(Error::SealConfig(_))
        ));
        assert!(matches!(
            Sealer::new("k.1", &ok, "s", "p"),
            Err(Error::SealConfig(_))
        ));
        assert!(matches!(
            Sealer::new("k1", &ok, "", "p"),
            Err(Error::SealConfig(_))
        ));
        let mut o = Opener::new(OpenerConfig::default());
        for i in 0..MAX_KIDS {
            o.add_kid(&format!("k{i}"), &ok, "s", "p").unwrap();
        }
        assert!(
            o.add_kid("k0", &ok, "s", "p").is_ok(),
            "replacing a kid is not adding one"
        );
        assert_eq!(
            o.add_kid("extra", &ok, "s", "p"),
            Err(Error::SealConfig("too many kids"))
        );
        assert!(o.remove_kid("k3"));
        assert!(!o.kids().any(|k| k == "k3"));
    }

    #[test]
    fn derivation_separates_pairs_and_kids() {
        let sec = SecretBytes::from_slice(&[5; 32]).unwrap();
        let a = derive_key(&sec, "k1", "s1", "p1").unwrap();
        assert_ne!(a, derive_key(&sec, "k2", "s1", "p1").unwrap());
        assert_ne!(a, derive_key(&sec, "k1", "s2", "p1").unwrap());
        assert_ne!(a, derive_key(&sec, "k1", "s1", "p2").unwrap());
        assert_eq!(a, derive_key(&sec, "k1", "s1", "p1").unwrap());
    }

    #[test]
    fn derivation_is_literal_design_formula() {
        // DESIGN §2.2: info = "ikt1 seal" || s-agent id || p-agent id, no separators.
        let sec = SecretBytes::from_slice(&[5; 32]).unwrap();
        let hk = Hkdf::<Sha256>::new(Some(b"k1"), sec.expose_secret());
        let mut want = [0u8; 32];
        hk.expand(b"ikt1 sealscscf-1pcscf-1", &mut want).unwrap();
        assert_eq!(
            derive_key(&sec, "k1", "scscf-1", "pcscf-1")
                .unwrap()
                .expose_secret(),
            &want
        );
    }

    #[test]
    fn pinned_token_vector() {
        // Guards the wire format against accidental change: fixed secret, kid, ids, nonce, bundle.
        let sec = SecretBytes::from_hex(
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        )
        .unwrap();
        let s = Sealer::new("k1", &sec, "scscf-1", "pcscf-1").unwrap();
        let t = s.seal_with_nonce(&bundle(), "sip:a@b", [0; 12]).unwrap();
        let mut o = Opener::new(OpenerConfig::default());
        o.add_kid("k1", &sec, "scscf-1", "pcscf-1").unwrap();
        let b = bundle();
        assert_eq!(
            o.open(&t, &AadContext::for_bundle(&b, "sip:a@b"), 10_000)
                .unwrap(),
            b
        );
        assert_eq!(t, PINNED);
    }

    /// Produced identically by an independent implementation (Python `cryptography`):
    /// `tests/vectors/ikt1_token.py`.
    const PINNED: &str = concat!(
        "ikt1.k1.AAAAAAAAAAAAAAAAzKwqTi8p56OwSkzv1ZOvBzVNo7yHRQ97MZ4jQd23bWQFsMAjsxLFfWe8ktpl3v2eYRSt",
        "tXWz3f-S6ufn-294msEaCfw08VBZY4DjSeTqRflvUNby3Uvwp0UhhfQKzBFIshoXQjLYYgSBMKF9buxFzjeCU6fqSOhx",
        "_GlpXJFhmiNB8W8m2PrZn994mq9pe1xzt2bhmgE"
    );
}
