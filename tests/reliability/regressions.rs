//! Regressions for bugs found by fuzzing, as plain tests (they fail until the owning crate is
//! fixed; nothing here is ignored).

/// The 401 the `challenge` fuzz target builds around a WWW-Authenticate value.
fn challenge_401(value: &[u8]) -> Vec<u8> {
    let mut raw = b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
From: <sip:a@x>;tag=1\r\nTo: <sip:a@x>;tag=2\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\n\
WWW-Authenticate: "
        .to_vec();
    raw.extend_from_slice(value);
    raw.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
    raw
}

/// FINDING (crates/sip/src/challenge.rs, `remove_auth_params` / `Editor::remove_auth_params`,
/// found by `fuzz/fuzz_targets/challenge.rs`): when the removed `ck` is the last param of a
/// challenge and the next bytes follow its closing quote with no comma, the splice glues
/// `algorithm=AKAv5-MD5` to that garbage; the edited message then parses differently and an
/// `ik="…"` that belonged to the garbage challenge becomes a param of the edited challenge:
/// `remove_keys` returns a challenge that still has keys. Input:
/// tests/data/sip/regress/remove_keys_glued_challenge.bin (the WWW-Authenticate value).
#[test]
fn remove_keys_leaves_no_key_in_the_edited_challenge() {
    let value = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/sip/regress/remove_keys_glued_challenge.bin"
    ))
    .unwrap();
    let raw = challenge_401(&value);
    let m = ikt_sip::scan(&raw).unwrap();
    for i in 0..m.challenges().len() {
        let Ok(out) = ikt_sip::remove_keys(&m, i) else {
            continue;
        };
        let again = ikt_sip::scan(&out).expect("edited message scans");
        let ch = &again.challenges()[i];
        assert!(
            !ch.has_keys(),
            "challenge {i} still carries ck/ik after remove_keys"
        );
    }
}
