//! The sealed-token opener: `parse_token` and `Opener::open` with a fixed pair key and a fixed
//! 401 context. Valid seeds open; mutations must be refused without panicking, and anything that
//! opens must carry the context it was bound to.
#![no_main]

use std::sync::{Mutex, OnceLock};

use ikt_keys::seal::parse_token;
use ikt_keys::{AadContext, Opener, OpenerConfig, SecretBytes};
use libfuzzer_sys::fuzz_target;

/// Same secret, ids and context as the committed seeds (written by the reliability test `fuzz_seeds`).
const SECRET: [u8; 32] = [0x5a; 32];
const REALM: &str = "ims.example.org";
const NONCE: &str = "3q2+78r+ur7erb7v3q2+78r+ur7erb7v3q2+78r+ur4=";
const CALL_ID: &str = "fuzz-call-1";
const TO: &str = "sip:set2@ims.example.org";
const NOW_MS: u64 = 1_800_000_000_000;

fn opener() -> &'static Mutex<Opener> {
    static O: OnceLock<Mutex<Opener>> = OnceLock::new();
    O.get_or_init(|| {
        let mut o = Opener::new(OpenerConfig {
            max_age_ms: u64::MAX / 4,
            max_skew_ms: u64::MAX / 4,
            replay_capacity: 64,
        });
        let secret = SecretBytes::from_slice(&SECRET).expect("secret");
        o.add_kid("k1", &secret, "scscf-1", "pcscf-1").expect("kid");
        Mutex::new(o)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((kid, payload)) = parse_token(token) {
        assert!(!kid.is_empty() && kid.len() <= 32);
        assert!(payload.len() >= 28);
    }
    let ctx = AadContext {
        realm: REALM,
        nonce: NONCE,
        call_id: CALL_ID,
        cseq: 1,
        to_uri: TO,
    };
    let mut o = opener().lock().unwrap_or_else(|e| e.into_inner());
    if let Ok(b) = o.open(token, &ctx, NOW_MS) {
        assert_eq!(b.nonce, NONCE);
        assert_eq!(b.realm, REALM);
        assert_eq!(b.call_id, CALL_ID);
        // The same token pasted into another 401 (other CSeq) must not open.
        let other = AadContext { cseq: 2, ..ctx };
        assert!(
            o.open(token, &other, NOW_MS).is_err(),
            "token opened in a foreign 401"
        );
    }
});
