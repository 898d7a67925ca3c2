//! Forged, truncated, replayed and skewed `kt` tokens into the p-cscf-agent (sealed mode). The
//! fake S-CSCF writes the token itself with the pair's real sealing key (or a wrong one), so
//! every case reaches the opener. Outcome is always the exact keys or a 503, never a 401 with
//! other keys and never a keyless 401.

use ikt_agent::Mode;
use ikt_keys::{Ck, Ik, KeyBundle, Sealer, SecretBytes};

use crate::record;
use crate::support::{
    Duo, Outcome, POpts, REALM, SECRET_HEX, SOpts, key_hex, nonce, now_ms, outcome,
};

struct Ctx {
    nonce: String,
    call_id: String,
    ck: String,
    ik: String,
}

fn bundle(c: &Ctx, issued_at_ms: u64) -> KeyBundle {
    KeyBundle {
        seq: 0,
        realm: REALM.into(),
        nonce: c.nonce.clone(),
        call_id: c.call_id.clone(),
        cseq: 1,
        impu: format!("sip:alice@{REALM}"),
        impi: format!("alice@{REALM}"),
        ck: Ck::from_hex(&c.ck).unwrap(),
        ik: Ik::from_hex(&c.ik).unwrap(),
        issued_at_ms,
        not_after_ms: issued_at_ms + 64_000,
        algorithm: "AKAv1-MD5".into(),
    }
}

fn sealer(secret_hex: &str, kid: &str) -> Sealer {
    let secret = SecretBytes::from_hex(secret_hex).unwrap();
    Sealer::new(kid, &secret, "scscf-1", "pcscf-1").unwrap()
}

fn to_uri() -> String {
    format!("sip:alice@{REALM}")
}

fn header(nonce: &str, token: &str) -> String {
    format!(
        "WWW-Authenticate: Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm=AKAv1-MD5, \
         kt=\"{token}\", qop=\"auth,auth-int\""
    )
}

/// Sends a REGISTER, answers with a 401 whose kt comes from `make(ctx)`, returns the outcome.
async fn attempt(duo: &Duo, seed: u64, make: impl FnOnce(&Ctx) -> String) -> (Outcome, Ctx) {
    let call_id = duo.call_id("kt");
    let req = duo.register(&call_id).await;
    let c = Ctx {
        nonce: nonce(seed),
        call_id: call_id.clone(),
        ck: key_hex(seed, 1),
        ik: key_hex(seed, 2),
    };
    let token = make(&c);
    duo.answer(&req, "401 Unauthorized", &[header(&c.nonce, &token)])
        .await;
    let got = duo.edge.recv_call(&call_id).await.0;
    (outcome(&got), c)
}

fn check(name: &str, o: &Outcome, c: &Ctx, expect_keys: bool) {
    let shown = format!("{o:?}")
        .replace(&c.ck, "<CK>")
        .replace(&c.ik, "<IK>");
    record::row("hostile", &format!("kt token: {name}"), &shown);
    if expect_keys {
        assert_eq!(*o, Outcome::Keys(c.ck.clone(), c.ik.clone()), "{name}");
    } else {
        assert_eq!(*o, Outcome::Status(503), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_truncated_tokens_fail_closed() {
    let duo = Duo::start(SOpts::new(Mode::Sealed), POpts::default(), false).await;
    let good = sealer(SECRET_HEX, "k1");
    let now = now_ms();

    let (o, c) = attempt(&duo, 100, |c| {
        good.seal(&bundle(c, now), &to_uri()).unwrap()
    })
    .await;
    check("valid token (control)", &o, &c, true);

    type Forge = Box<dyn Fn(&Sealer, &Ctx) -> String>;
    let cases: Vec<(&str, Forge)> = vec![
        (
            "one ciphertext character flipped",
            Box::new(move |s, c| {
                let t = s.seal(&bundle(c, now), &to_uri()).unwrap();
                let mut b = t.into_bytes();
                let i = b.len() - 20;
                b[i] = if b[i] == b'A' { b'B' } else { b'A' };
                String::from_utf8(b).unwrap()
            }),
        ),
        (
            "truncated to half",
            Box::new(move |s, c| {
                let t = s.seal(&bundle(c, now), &to_uri()).unwrap();
                t[..t.len() / 2].to_owned()
            }),
        ),
        (
            "tag cut off",
            Box::new(move |s, c| {
                let t = s.seal(&bundle(c, now), &to_uri()).unwrap();
                t[..t.len() - 22].to_owned()
            }),
        ),
        (
            "unknown kid",
            Box::new(move |_, c| {
                sealer(SECRET_HEX, "k2")
                    .seal(&bundle(c, now), &to_uri())
                    .unwrap()
            }),
        ),
        (
            "kid of the pair, other secret",
            Box::new(move |_, c| {
                sealer(&"a5".repeat(32), "k1")
                    .seal(&bundle(c, now), &to_uri())
                    .unwrap()
            }),
        ),
        (
            "bound to another Call-ID",
            Box::new(move |s, c| {
                let other = Ctx {
                    call_id: format!("{}-other", c.call_id),
                    nonce: c.nonce.clone(),
                    ck: c.ck.clone(),
                    ik: c.ik.clone(),
                };
                s.seal(&bundle(&other, now), &to_uri()).unwrap()
            }),
        ),
        (
            "bound to another To URI",
            Box::new(move |s, c| {
                s.seal(&bundle(c, now), "sip:mallory@ims.example.org")
                    .unwrap()
            }),
        ),
        (
            "bound to another nonce",
            Box::new(move |s, c| {
                let other = Ctx {
                    nonce: nonce(999),
                    call_id: c.call_id.clone(),
                    ck: c.ck.clone(),
                    ik: c.ik.clone(),
                };
                s.seal(&bundle(&other, now), &to_uri()).unwrap()
            }),
        ),
        (
            "version ikt2",
            Box::new(move |s, c| {
                s.seal(&bundle(c, now), &to_uri())
                    .unwrap()
                    .replacen("ikt1.", "ikt2.", 1)
            }),
        ),
        (
            "not base64url",
            Box::new(|_, _| "ikt1.k1.!!!!$$$$****".to_owned()),
        ),
        ("empty payload", Box::new(|_, _| "ikt1.k1.".to_owned())),
        ("empty token", Box::new(|_, _| String::new())),
        (
            "5000-character token",
            Box::new(|_, _| format!("ikt1.k1.{}", "A".repeat(5000))),
        ),
        (
            "issued 2 minutes in the future (beyond skew)",
            Box::new(move |s, c| s.seal(&bundle(c, now + 120_000), &to_uri()).unwrap()),
        ),
        (
            "issued 60 s ago (beyond max_age 32 s)",
            Box::new(move |s, c| s.seal(&bundle(c, now - 60_000), &to_uri()).unwrap()),
        ),
    ];
    for (i, (name, forge)) in cases.iter().enumerate() {
        let (o, c) = attempt(&duo, 200 + i as u64, |c| forge(&good, c)).await;
        check(name, &o, &c, false);
        duo.assert_serves(name).await;
    }

    // Clock skew within bounds: a little ahead (max_skew 2 s) and well inside max_age.
    for (name, at) in [
        ("issued 1 s in the future (within skew)", now + 1_000),
        (
            "issued 20 s ago (within max_age)",
            now.saturating_sub(20_000),
        ),
    ] {
        let (o, c) = attempt(&duo, 300 + at % 97, |c| {
            good.seal(&bundle(c, at), &to_uri()).unwrap()
        })
        .await;
        check(name, &o, &c, true);
    }
}

/// Replays: an identical retransmitted 401 opens again with the same keys; a token with other
/// keys for a nonce already seen is refused; a token replayed into a new transaction fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_tokens() {
    let duo = Duo::start(SOpts::new(Mode::Sealed), POpts::default(), false).await;
    let s = sealer(SECRET_HEX, "k1");
    let now = now_ms();

    // Retransmission of the same 401 (same token) restores the same keys each time.
    let call_id = duo.call_id("replay");
    let req = duo.register(&call_id).await;
    let c = Ctx {
        nonce: nonce(400),
        call_id: call_id.clone(),
        ck: key_hex(400, 1),
        ik: key_hex(400, 2),
    };
    let token = s.seal(&bundle(&c, now), &to_uri()).unwrap();
    for round in 0..3 {
        duo.answer(&req, "401 Unauthorized", &[header(&c.nonce, &token)])
            .await;
        let o = outcome(&duo.edge.recv_call(&call_id).await.0);
        check(&format!("identical retransmission #{round}"), &o, &c, true);
    }

    // Same nonce and context, other keys (a forger who holds the sealing key but replays a nonce).
    let evil = Ctx {
        ck: key_hex(401, 1),
        ik: key_hex(401, 2),
        nonce: c.nonce.clone(),
        call_id: c.call_id.clone(),
    };
    let token2 = s.seal(&bundle(&evil, now), &to_uri()).unwrap();
    duo.answer(&req, "401 Unauthorized", &[header(&c.nonce, &token2)])
        .await;
    let o = outcome(&duo.edge.recv_call(&call_id).await.0);
    check("same nonce, different keys", &o, &evil, false);

    // The first token replayed into another transaction (new Call-ID, same nonce).
    let (o, c2) = attempt(&duo, 402, |_| token.clone()).await;
    let shown = Ctx {
        nonce: c2.nonce,
        call_id: c2.call_id,
        ck: c.ck.clone(),
        ik: c.ik.clone(),
    };
    check("token replayed into another transaction", &o, &shown, false);
    duo.assert_serves("after replays").await;
}
