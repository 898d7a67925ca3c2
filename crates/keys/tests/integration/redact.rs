//! No secret-bearing type prints key material with `{:?}`, and errors carry none.

use ikt_keys::store::Wait;
use ikt_keys::{
    AadContext, Ck, Error, Ik, InsertOutcome, KeyStore, Opener, OpenerConfig, Sealer, SealingKey,
    SecretBytes, StoreConfig, derive_key,
};

use crate::support::bundle;

const CK: [u8; 16] = [
    0xc1, 0x7a, 0x3e, 0x99, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0,
];
const IK: [u8; 16] = [
    0x1d, 0xe4, 0x77, 0x08, 0x11, 0x21, 0x31, 0x41, 0x51, 0x61, 0x71, 0x81, 0x91, 0xa1, 0xb1, 0xc1,
];

/// Every spelling of `bytes` a formatter could produce: lower/upper hex, and the decimal and hex
/// `[a, b, …]` lists of a derived Debug.
fn spellings(bytes: &[u8]) -> Vec<String> {
    let lower: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        lower.clone(),
        lower.to_uppercase(),
        format!("{bytes:?}"),
        format!("{bytes:x?}"),
        bytes[..4]
            .iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    ]
}

fn assert_clean(what: &str, printed: &str, secrets: &[&[u8]]) {
    for s in secrets {
        for spelling in spellings(s) {
            assert!(
                !printed.contains(&spelling),
                "{what} leaks {spelling:?}: {printed}"
            );
        }
    }
}

#[test]
fn debug_of_every_secret_bearing_type_is_redacted() {
    let shared = [0x3c; 32];
    let secret = SecretBytes::from_slice(&shared).unwrap();
    let sealing = derive_key(&secret, "k1", "scscf-1", "pcscf-1").unwrap();
    let sealing_bytes = *sealing.expose_secret();
    let mut b = bundle("bm9uY2U=", 0);
    b.ck = Ck::from_bytes(CK);
    b.ik = Ik::from_bytes(IK);

    let sealer = Sealer::new("k1", &secret, "scscf-1", "pcscf-1").unwrap();
    let mut opener = Opener::new(OpenerConfig::default());
    opener.add_kid("k1", &secret, "scscf-1", "pcscf-1").unwrap();
    let token = sealer.seal(&b, "sip:alice@ims").unwrap();
    let opened = opener
        .open(
            &token,
            &AadContext::for_bundle(&b, "sip:alice@ims"),
            b.issued_at_ms,
        )
        .unwrap();

    let mut store: KeyStore<u8> = KeyStore::new(StoreConfig::default());
    let ins = store.insert(b.clone(), 0).unwrap();
    assert_eq!(ins.outcome, InsertOutcome::Stored);
    let wait = store.register_waiter(&b.nonce, None, 10, 1, 0).unwrap();
    assert!(matches!(wait, Wait::Ready { .. }));

    let printed = [
        ("Ck", format!("{:?}", b.ck)),
        ("Ik", format!("{:?}", b.ik)),
        ("Ck alt", format!("{:#?}", b.ck)),
        ("SecretBytes", format!("{secret:?}")),
        ("SealingKey", format!("{sealing:?}")),
        (
            "SealingKey from bytes",
            format!("{:?}", SealingKey::from_bytes(sealing_bytes)),
        ),
        ("KeyBundle", format!("{b:?}")),
        ("KeyBundle pretty", format!("{b:#?}")),
        ("opened KeyBundle", format!("{opened:?}")),
        ("Sealer", format!("{sealer:?}")),
        ("Opener", format!("{opener:?}")),
        ("KeyStore", format!("{store:?}")),
        ("Wait", format!("{wait:?}")),
        ("Inserted", format!("{ins:?}")),
        (
            "fingerprint",
            format!("{} {:?}", b.fingerprint(), b.fingerprint()),
        ),
    ];
    for (what, text) in &printed {
        assert_clean(what, text, &[&CK, &IK, &shared, &sealing_bytes]);
    }
    assert_eq!(printed[0].1, "Ck(<redacted>)");
    assert!(printed[6].1.contains("Ck(<redacted>)") && printed[6].1.contains("Ik(<redacted>)"));
}

#[test]
fn errors_carry_no_key_material() {
    let bad_hex = "c17a3e99102030405060708090a0b0zz";
    let errs: Vec<Error> = vec![
        Ck::from_hex(bad_hex).unwrap_err(),
        Ik::from_hex("1de4").unwrap_err(),
        SecretBytes::from_hex("3c3c3").unwrap_err(),
    ];
    for e in errs {
        let text = format!("{e} {e:?}");
        assert!(
            !text.contains("c17a") && !text.contains("1de4") && !text.contains("3c3c"),
            "{text}"
        );
    }
}
