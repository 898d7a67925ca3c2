//! The fuzz seed corpora that need our keys: valid `kt` tokens for `fuzz/fuzz_targets/token.rs`
//! (same secret, ids and 401 context as that target), encoded bundles for `bundle`, and
//! length-delimited frames for `frames`. `IKT_WRITE_SEEDS=1` (re)writes them; otherwise the
//! committed ones are checked to still open and decode, so a format change cannot silently turn
//! the seeds into noise.

use std::path::PathBuf;

use ikt_keys::{AadContext, Ck, Ik, KeyBundle, Opener, OpenerConfig, Sealer, SecretBytes};

const REALM: &str = "ims.example.org";
const NONCE: &str = "3q2+78r+ur7erb7v3q2+78r+ur7erb7v3q2+78r+ur4=";
const CALL_ID: &str = "fuzz-call-1";
const TO: &str = "sip:set2@ims.example.org";
const ISSUED_MS: u64 = 1_800_000_000_000 - 1_000;

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn bundle(i: u8) -> KeyBundle {
    KeyBundle {
        seq: u64::from(i) + 1,
        realm: REALM.into(),
        nonce: NONCE.into(),
        call_id: CALL_ID.into(),
        cseq: 1,
        impu: TO.into(),
        impi: "set2@ims.example.org".into(),
        ck: Ck::from_slice(&[i; 16]).unwrap(),
        ik: Ik::from_slice(&[i ^ 0xff; 16]).unwrap(),
        issued_at_ms: ISSUED_MS,
        not_after_ms: ISSUED_MS + 64_000,
        algorithm: "AKAv1-MD5".into(),
    }
}

fn secret() -> SecretBytes {
    SecretBytes::from_slice(&[0x5a; 32]).unwrap()
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let d = corpus(target);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(name), bytes).unwrap();
}

#[test]
fn fuzz_seeds() {
    let sealer = Sealer::new("k1", &secret(), "scscf-1", "pcscf-1").unwrap();
    if std::env::var_os("IKT_WRITE_SEEDS").is_some() {
        for i in 0..3u8 {
            let t = sealer.seal_with_nonce(&bundle(i), TO, [i; 12]).unwrap();
            write("token", &format!("valid-{i}"), t.as_bytes());
            let enc = bundle(i).encode().unwrap();
            write("bundle", &format!("valid-{i}"), &enc);
            let mut frame = Vec::new();
            let wire = ikt_agent::wire::to_wire(&bundle(i));
            ikt_transport::framing::encode(&wire, 4096, &mut frame).unwrap();
            frame.extend_from_slice(&frame.clone());
            write("frames", &format!("two-bundles-{i}"), &frame);
        }
        write(
            "token",
            "bad-kid",
            b"ikt1.k!.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        );
        write("bundle", "ack-stored", &[0x08, 0x01, 0x10, 0x01]);
        write(
            "frames",
            "huge-prefix",
            &[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00],
        );
    }
    let ctx = AadContext {
        realm: REALM,
        nonce: NONCE,
        call_id: CALL_ID,
        cseq: 1,
        to_uri: TO,
    };
    let mut opened = 0;
    for e in std::fs::read_dir(corpus("token"))
        .expect("fuzz/corpus/token exists")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("valid-") {
            let t = std::fs::read_to_string(e.path()).unwrap();
            // Each valid seed carries a different nonce-key pair under one challenge nonce, so
            // only the first opens past the replay cache; open each with a fresh opener.
            let mut o = Opener::new(OpenerConfig {
                max_age_ms: u64::MAX / 4,
                max_skew_ms: u64::MAX / 4,
                replay_capacity: 64,
            });
            o.add_kid("k1", &secret(), "scscf-1", "pcscf-1").unwrap();
            let b = o
                .open(t.trim(), &ctx, 1_800_000_000_000)
                .unwrap_or_else(|e| panic!("seed {name} does not open: {e}"));
            assert_eq!(b.nonce, NONCE);
            opened += 1;
        }
    }
    assert!(opened >= 1, "no valid token seed");
    let mut decoded = 0;
    for e in std::fs::read_dir(corpus("bundle"))
        .expect("fuzz/corpus/bundle exists")
        .flatten()
    {
        if e.file_name().to_string_lossy().starts_with("valid-") {
            KeyBundle::decode(&std::fs::read(e.path()).unwrap()).expect("bundle seed decodes");
            decoded += 1;
        }
    }
    assert!(decoded >= 1, "no valid bundle seed");
}
