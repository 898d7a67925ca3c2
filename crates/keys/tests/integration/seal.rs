//! Sealed header tokens: round trip, AAD binding, tampering, and each failure's own error.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ikt_keys::seal::{MAX_TOKEN_LEN, parse_token};
use ikt_keys::{
    AadContext, Ck, Error, KeyBundle, MalformedToken, Opener, OpenerConfig, Sealer, SecretBytes,
    derive_key,
};
use proptest::prelude::*;

use crate::support::{any_bundle, bundle};

const TO: &str = "sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org";
const NOW: u64 = 1_000_500;

fn secret() -> SecretBytes {
    SecretBytes::from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
        .unwrap()
}

fn sealer(kid: &str) -> Sealer {
    Sealer::new(kid, &secret(), "scscf-1", "pcscf-1").unwrap()
}

fn opener() -> Opener {
    let mut o = Opener::new(OpenerConfig::default());
    o.add_kid("k1", &secret(), "scscf-1", "pcscf-1").unwrap();
    o.add_kid("k2", &secret(), "scscf-1", "pcscf-1").unwrap();
    o
}

fn sealed() -> (KeyBundle, String) {
    let b = bundle("q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=", 1);
    let t = sealer("k1").seal(&b, TO).unwrap();
    (b, t)
}

#[test]
fn round_trip() {
    let (b, t) = sealed();
    assert_eq!(
        opener()
            .open(&t, &AadContext::for_bundle(&b, TO), NOW)
            .unwrap(),
        b
    );
}

#[test]
fn each_aad_field_is_bound() {
    let (b, t) = sealed();
    let good = AadContext::for_bundle(&b, TO);
    let changed = [
        AadContext {
            realm: "other.realm",
            ..good
        },
        AadContext {
            nonce: "AAAAq83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNF",
            ..good
        },
        AadContext {
            call_id: "another-call@pc33.example",
            ..good
        },
        AadContext {
            cseq: good.cseq + 1,
            ..good
        },
        AadContext {
            to_uri: "sip:someone.else@ims",
            ..good
        },
    ];
    for ctx in changed {
        assert_eq!(
            opener().open(&t, &ctx, NOW).unwrap_err(),
            Error::BadTag,
            "{ctx:?}"
        );
    }
    // The kid is bound too: the same token under a kid of the same pair does not open.
    let moved = t.replacen("ikt1.k1.", "ikt1.k2.", 1);
    assert_eq!(
        opener().open(&moved, &good, NOW).unwrap_err(),
        Error::BadTag
    );
    assert!(opener().open(&t, &good, NOW).is_ok());
}

#[test]
fn a_token_pasted_into_another_401_fails() {
    let (_, t) = sealed();
    let other = bundle("b3RoZXItbm9uY2U=", 1);
    assert_eq!(
        opener()
            .open(&t, &AadContext::for_bundle(&other, TO), NOW)
            .unwrap_err(),
        Error::BadTag
    );
}

#[test]
fn other_pair_or_secret_fails_authentication() {
    let (b, _) = sealed();
    let ctx = AadContext::for_bundle(&b, TO);
    let wrong_pair = Sealer::new("k1", &secret(), "scscf-2", "pcscf-1")
        .unwrap()
        .seal(&b, TO)
        .unwrap();
    assert_eq!(
        opener().open(&wrong_pair, &ctx, NOW).unwrap_err(),
        Error::BadTag
    );
    let other_secret = SecretBytes::from_slice(&[0xee; 32]).unwrap();
    let wrong_secret = Sealer::new("k1", &other_secret, "scscf-1", "pcscf-1")
        .unwrap()
        .seal(&b, TO)
        .unwrap();
    assert_eq!(
        opener().open(&wrong_secret, &ctx, NOW).unwrap_err(),
        Error::BadTag
    );
}

#[test]
fn unknown_kid_and_rotation() {
    let (b, t1) = sealed();
    let ctx = AadContext::for_bundle(&b, TO);
    let t3 = sealer("k3").seal(&b, TO).unwrap();
    let mut o = opener();
    assert_eq!(o.open(&t3, &ctx, NOW).unwrap_err(), Error::UnknownKid);
    // Rotation: k2 takes over, k1 retired.
    let t2 = sealer("k2").seal(&b, TO).unwrap();
    assert!(o.open(&t2, &ctx, NOW).is_ok());
    assert!(o.remove_kid("k1"));
    assert_eq!(o.open(&t1, &ctx, NOW).unwrap_err(), Error::UnknownKid);
}

#[test]
fn time_checks_have_their_own_errors() {
    let cfg = OpenerConfig {
        max_age_ms: 10_000,
        max_skew_ms: 1_000,
        replay_capacity: 16,
    };
    let mut o = Opener::new(cfg);
    o.add_kid("k1", &secret(), "scscf-1", "pcscf-1").unwrap();
    let mut b = bundle("bm9uY2U=", 1);
    b.issued_at_ms = 1_000_000;
    b.not_after_ms = 1_005_000;
    let t = sealer("k1").seal(&b, TO).unwrap();
    let ctx = AadContext::for_bundle(&b, TO);
    assert_eq!(o.open(&t, &ctx, 998_999).unwrap_err(), Error::NotYetValid);
    assert!(o.open(&t, &ctx, 999_000).is_ok(), "skew within allowance");
    assert_eq!(o.open(&t, &ctx, 1_005_000).unwrap_err(), Error::Expired);
    let mut b2 = b.clone();
    b2.not_after_ms = 0;
    let t = sealer("k1").seal(&b2, TO).unwrap();
    assert!(o.open(&t, &ctx, 1_010_000).is_ok());
    assert_eq!(o.open(&t, &ctx, 1_010_001).unwrap_err(), Error::TooOld);
}

#[test]
fn replay_cache_accepts_retransmission_rejects_other_keys() {
    let (b, t) = sealed();
    let ctx = AadContext::for_bundle(&b, TO);
    let mut o = opener();
    assert!(o.open(&t, &ctx, NOW).is_ok());
    // The same token again, and the same keys re-sealed (fresh GCM nonce, later seq): both open.
    assert_eq!(o.open(&t, &ctx, NOW + 10).unwrap(), b);
    let mut again = b.clone();
    again.seq = 77;
    let t_again = sealer("k1").seal(&again, TO).unwrap();
    assert_ne!(t_again, t);
    assert_eq!(o.open(&t_again, &ctx, NOW + 20).unwrap().seq, 77);
    // Different keys for the same challenge nonce: refused.
    let mut other = b.clone();
    other.ck = Ck::from_bytes([0x99; 16]);
    let t_other = sealer("k1").seal(&other, TO).unwrap();
    assert_eq!(
        o.open(&t_other, &ctx, NOW + 30).unwrap_err(),
        Error::ReplayMismatch
    );
    assert_eq!(o.replay_len(), 1);
}

#[test]
fn replay_cache_is_bounded_and_expires() {
    let cfg = OpenerConfig {
        max_age_ms: 1_000,
        max_skew_ms: 0,
        replay_capacity: 2,
    };
    let mut o = Opener::new(cfg);
    o.add_kid("k1", &secret(), "scscf-1", "pcscf-1").unwrap();
    let s = sealer("k1");
    let open = |o: &mut Opener, n: &str, now: u64| {
        let mut b = bundle(n, 1);
        b.issued_at_ms = now;
        let t = s.seal(&b, TO).unwrap();
        o.open(&t, &AadContext::for_bundle(&b, TO), now)
    };
    assert!(open(&mut o, "a", 0).is_ok());
    assert!(open(&mut o, "b", 0).is_ok());
    assert_eq!(open(&mut o, "c", 500).unwrap_err(), Error::ReplayCacheFull);
    // Entries outlive max_age + skew, then make room.
    assert!(open(&mut o, "c", 1_001).is_ok());
    assert_eq!(o.replay_len(), 1);
}

#[test]
fn malformed_tokens_have_their_own_errors() {
    let (b, t) = sealed();
    let ctx = AadContext::for_bundle(&b, TO);
    let mut o = opener();
    let m = |e| Error::Malformed(e);
    assert_eq!(
        o.open("", &ctx, NOW).unwrap_err(),
        m(MalformedToken::BadVersion)
    );
    assert_eq!(
        o.open(&t.replacen("ikt1", "ikt2", 1), &ctx, NOW)
            .unwrap_err(),
        m(MalformedToken::BadVersion)
    );
    assert_eq!(
        o.open("ikt1.k1", &ctx, NOW).unwrap_err(),
        m(MalformedToken::BadKid)
    );
    assert_eq!(
        o.open("ikt1..AAAA", &ctx, NOW).unwrap_err(),
        m(MalformedToken::BadKid)
    );
    assert_eq!(
        o.open("ikt1.k 1.AAAA", &ctx, NOW).unwrap_err(),
        m(MalformedToken::BadKid)
    );
    assert_eq!(
        o.open(&format!("{t}="), &ctx, NOW).unwrap_err(),
        m(MalformedToken::BadBase64)
    );
    assert_eq!(
        o.open(&format!("{t}.x"), &ctx, NOW).unwrap_err(),
        m(MalformedToken::BadBase64)
    );
    assert_eq!(
        o.open("ikt1.k1.AAAA", &ctx, NOW).unwrap_err(),
        m(MalformedToken::TooShort)
    );
    let long = format!("ikt1.k1.{}", "A".repeat(MAX_TOKEN_LEN));
    assert_eq!(
        o.open(&long, &ctx, NOW).unwrap_err(),
        m(MalformedToken::TooLong)
    );
}

/// Seals arbitrary plaintext under the pair's k1 key with the AAD of `ctx`, as a buggy or
/// hostile holder of the pair secret could.
fn seal_raw(plaintext: &[u8], ctx: &AadContext<'_>) -> String {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let key = derive_key(&secret(), "k1", "scscf-1", "pcscf-1").unwrap();
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(key.expose_secret()).unwrap();
    let nonce = aes_gcm::Nonce::from([3u8; 12]);
    let aad = ctx.aad("k1");
    let ct = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .unwrap();
    let mut payload = vec![3u8; 12];
    payload.extend_from_slice(&ct);
    format!("ikt1.k1.{}", URL_SAFE_NO_PAD.encode(payload))
}

#[test]
fn authentic_but_invalid_plaintext_is_bad_plaintext() {
    let (b, _) = sealed();
    let ctx = AadContext::for_bundle(&b, TO);
    // Control: a correct bundle sealed by hand opens, so the helper matches the sealer.
    assert_eq!(
        opener()
            .open(&seal_raw(&b.encode().unwrap(), &ctx), &ctx, NOW)
            .unwrap(),
        b
    );
    // Not a protobuf bundle at all.
    assert_eq!(
        opener()
            .open(&seal_raw(b"not a bundle", &ctx), &ctx, NOW)
            .unwrap_err(),
        Error::BadPlaintext
    );
    // A bundle with a 15-byte IK is refused by the decoder.
    let mut short = b.encode().unwrap().to_vec();
    let at = short.windows(2).position(|w| w == [0x4a, 16]).unwrap();
    short[at + 1] = 15;
    short.remove(at + 2);
    assert_eq!(
        opener()
            .open(&seal_raw(&short, &ctx), &ctx, NOW)
            .unwrap_err(),
        Error::BadPlaintext
    );
    // A valid bundle for another challenge, bound to this 401's AAD.
    let mut other = b.clone();
    other.cseq += 1;
    assert_eq!(
        opener()
            .open(&seal_raw(&other.encode().unwrap(), &ctx), &ctx, NOW)
            .unwrap_err(),
        Error::BadPlaintext
    );
}

#[test]
fn deterministic_nonce_gives_stable_token() {
    let (b, _) = sealed();
    let s = sealer("k1");
    let a = s.seal_with_nonce(&b, TO, [7; 12]).unwrap();
    assert_eq!(a, s.seal_with_nonce(&b, TO, [7; 12]).unwrap());
    let (_, payload) = parse_token(&a).unwrap();
    assert_eq!(&payload[..12], &[7; 12]);
    assert_eq!(
        URL_SAFE_NO_PAD.encode(&payload),
        a.trim_start_matches("ikt1.k1.")
    );
}

proptest! {
    #[test]
    fn round_trip_any_bundle(mut b in any_bundle(), to in ".{0,64}", nonce in any::<[u8; 12]>()) {
        b.issued_at_ms = NOW;
        b.not_after_ms = 0;
        let t = sealer("k1").seal_with_nonce(&b, &to, nonce).unwrap();
        prop_assert!(t.len() <= MAX_TOKEN_LEN);
        prop_assert_eq!(opener().open(&t, &AadContext::for_bundle(&b, &to), NOW).unwrap(), b);
    }

    #[test]
    fn any_single_byte_change_fails((pos, byte) in (0usize..200).prop_flat_map(|p| (Just(p), 0x21u8..0x7f))) {
        let (b, t) = sealed();
        let pos = pos % t.len();
        let original = t.as_bytes()[pos];
        prop_assume!(byte != original);
        let mut bytes = t.clone().into_bytes();
        bytes[pos] = byte;
        let tampered = String::from_utf8(bytes).unwrap();
        let r = opener().open(&tampered, &AadContext::for_bundle(&b, TO), NOW);
        prop_assert!(r.is_err(), "byte {} changed to {} still opened", pos, byte);
    }

    #[test]
    fn opening_arbitrary_strings_never_panics(s in ".{0,300}") {
        let (b, _) = sealed();
        let mut o = opener();
        let _ = o.open(&s, &AadContext::for_bundle(&b, TO), NOW);
        let _ = o.open(&format!("ikt1.k1.{s}"), &AadContext::for_bundle(&b, TO), NOW);
    }

    #[test]
    fn opening_random_payloads_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..600)) {
        let (b, _) = sealed();
        let t = format!("ikt1.k1.{}", URL_SAFE_NO_PAD.encode(&payload));
        let r = opener().open(&t, &AadContext::for_bundle(&b, TO), NOW);
        prop_assert!(r.is_err());
    }
}

proptest! {
    // Each case already sweeps every position of a token.
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn every_position_flipped(seed in any::<u64>()) {
        // Deterministic sweep over every position of one token, with a replacement chosen per run.
        let (b, t) = sealed();
        let ctx = AadContext::for_bundle(&b, TO);
        let mut o = opener();
        for pos in 0..t.len() {
            let original = t.as_bytes()[pos];
            let mut byte = 0x21 + ((seed.wrapping_add(pos as u64) % 94) as u8);
            if byte == original {
                byte = if original == 0x7e { 0x21 } else { original + 1 };
            }
            let mut bytes = t.clone().into_bytes();
            bytes[pos] = byte;
            let tampered = String::from_utf8(bytes).unwrap();
            prop_assert!(o.open(&tampered, &ctx, NOW).is_err(), "position {}", pos);
        }
    }
}
