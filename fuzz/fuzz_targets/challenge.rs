//! The challenge parser and the AKA key edits, on a 401 whose authentication headers come from
//! the input; every edit's output must scan again and say what the edit promised.
#![no_main]

use ikt_sip::{remove_keys, replace_keys_with_param, restore_keys, scan};
use libfuzzer_sys::fuzz_target;

const CK: &str = "00112233445566778899aabbccddeeff";
const IK: &str = "ffeeddccbbaa99887766554433221100";

fn check(raw: &[u8]) {
    let Ok(m) = scan(raw) else { return };
    for c in m.credentials() {
        let _ = (
            c.is_aka(),
            c.has_keys(),
            c.unescaped("response"),
            c.unescaped("username"),
        );
    }
    let challenges = m.challenges();
    for (i, c) in challenges.iter().enumerate() {
        for p in &c.params {
            // Ranges must lie inside the message and hold the name and value as written.
            assert!(raw.get(p.range.clone()).is_some());
            assert_eq!(raw.get(p.value_range.clone()), Some(p.value.as_bytes()));
            // Debug never prints a key value.
            if p.name.eq_ignore_ascii_case("ck") || p.name.eq_ignore_ascii_case("ik") {
                // (Checked by the redaction marker: a short value may occur in the field names.)
                let shown = format!("{p:?}");
                assert!(shown.contains("value: \"<redacted>\""), "{shown}");
            }
        }
        let _ = (c.is_aka(), c.unescaped("nonce"), c.unescaped("realm"));
        if let Ok(out) = remove_keys(&m, i) {
            let again = scan(&out).expect("remove_keys output must scan");
            let ch = &again.challenges()[i];
            assert!(!ch.has_keys(), "keys left after remove_keys");
        }
        if let Ok(out) = replace_keys_with_param(&m, i, "kt", "ikt1.k1.AAAA") {
            let again = scan(&out).expect("replace_keys_with_param output must scan");
            let ch = &again.challenges()[i];
            assert!(!ch.has_keys(), "keys left after replace_keys_with_param");
        }
        if let Ok(out) = restore_keys(&m, i, CK, IK) {
            let again = scan(&out).expect("restore_keys output must scan");
            let ch = &again.challenges()[i];
            assert_eq!(ch.param("ck").map(|p| p.value), Some(CK));
            assert_eq!(ch.param("ik").map(|p| p.value), Some(IK));
            assert!(ch.param("kt").is_none());
            assert_eq!(
                ch.params
                    .iter()
                    .filter(|p| p.name.eq_ignore_ascii_case("ck"))
                    .count(),
                1
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The input as a whole message, and as the value of WWW-Authenticate in a fixed 401 (where
    // most of the fuzzer's effort then goes into the auth-param grammar).
    check(data);
    let mut raw = b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
From: <sip:a@x>;tag=1\r\nTo: <sip:a@x>;tag=2\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\n\
WWW-Authenticate: "
        .to_vec();
    raw.extend_from_slice(data);
    raw.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
    check(&raw);
});
