//! Shared builders and proptest strategies.

use ikt_keys::{Ck, Ik, KeyBundle};
use proptest::prelude::*;

/// A realistic bundle for `nonce` whose keys are derived from `key`.
pub fn bundle(nonce: &str, key: u8) -> KeyBundle {
    KeyBundle {
        seq: 1,
        realm: "ims.mnc001.mcc001.3gppnetwork.org".into(),
        nonce: nonce.into(),
        call_id: "a84b4c76e66710@pc33.example".into(),
        cseq: 2,
        impu: "sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org".into(),
        impi: "001010000000001@ims.mnc001.mcc001.3gppnetwork.org".into(),
        ck: Ck::from_bytes([key; 16]),
        ik: Ik::from_bytes([key.wrapping_add(0x5a); 16]),
        issued_at_ms: 1_000_000,
        not_after_ms: 0,
        algorithm: "AKAv1-MD5".into(),
    }
}

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..max / 4).prop_map(|v| v.into_iter().collect())
}

/// Arbitrary valid bundles (any Unicode strings within limits, any numbers).
pub fn any_bundle() -> impl Strategy<Value = KeyBundle> {
    (
        (
            any::<u64>(),
            text(256),
            text(256).prop_filter("nonce", |s| !s.is_empty()),
            text(256),
        ),
        (
            any::<u32>(),
            text(256),
            text(256),
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
        ),
        (any::<u64>(), any::<u64>(), text(32)),
    )
        .prop_map(
            |(
                (seq, realm, nonce, call_id),
                (cseq, impu, impi, ck, ik),
                (issued, not_after, alg),
            )| {
                KeyBundle {
                    seq,
                    realm,
                    nonce,
                    call_id,
                    cseq,
                    impu,
                    impi,
                    ck: Ck::from_bytes(ck),
                    ik: Ik::from_bytes(ik),
                    issued_at_ms: issued,
                    not_after_ms: not_after,
                    algorithm: alg,
                }
            },
        )
}
