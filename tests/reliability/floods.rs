//! Floods: keyless 401s that try to fill the held-401 queue, and bundles that try to fill the
//! key store. Both stay within their configured bounds, nothing is answered with a keyless or
//! wrong-keyed 401, memory stays bounded, and valid traffic is served (at once for the queue;
//! for the store, as soon as the flood's bundles expire, failing closed until then).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ikt_agent::Mode;

use crate::record;
use crate::support::{
    Duo, Outcome, POpts, SOpts, WAIT, key_hex, nonce, now_ms, outcome, response_to, rss_kib,
    wire_bundle, www_keyless,
};

const FLOOD: usize = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_401_queue_flood_is_bounded() {
    let p = POpts {
        max_parked: 32,
        key_wait_ms: 400,
        ..POpts::default()
    };
    let duo = Duo::start(SOpts::new(Mode::Grpc), p.clone(), false).await;
    let rss_before = rss_kib();
    // One real REGISTER gives the Via stack; the flood's 401s reuse it under new Call-IDs.
    let req = duo.register("flood-template").await;
    let hook = duo.p().hook.clone();
    let max_seen = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (max_seen, stop, hub) = (max_seen.clone(), stop.clone(), duo.p().hub.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let now = hook.parked().max(hub.stats().waiters);
                max_seen.fetch_max(now, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let send = async {
        for i in 0..FLOOD {
            let resp = response_to(
                &req,
                "401 Unauthorized",
                &[www_keyless(&nonce(10_000 + i as u64))],
            );
            let text = String::from_utf8(resp).unwrap();
            let text = text.replace("Call-ID: flood-template", &format!("Call-ID: flood-{i}"));
            duo.core.send(duo.s_sip, text.as_bytes()).await;
            if i % 64 == 63 {
                tokio::task::yield_now().await;
            }
        }
    };
    let recv = async {
        let (mut unavailable, mut other) = (0usize, Vec::new());
        while unavailable + other.len() < FLOOD {
            // Idle for the hang guard's fraction: UDP may drop part of a burst; stop then.
            let Some((b, _)) = duo.edge.try_recv(Duration::from_secs(3)).await else {
                break;
            };
            match outcome(&b) {
                Outcome::Status(503) => unavailable += 1,
                o => other.push(o),
            }
        }
        (unavailable, other)
    };
    let ((), (unavailable, other)) = tokio::join!(send, recv);
    stop.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let max = max_seen.load(Ordering::Relaxed);
    let rss_growth = rss_kib().saturating_sub(rss_before);
    record::row(
        "flood",
        &format!(
            "{FLOOD} keyless 401s with no bundle, max_parked {}",
            p.max_parked
        ),
        &format!(
            "503: {unavailable}; other answers: {}; most parked at once: {max}; RSS growth {rss_growth} KiB",
            other.len()
        ),
    );
    assert!(
        other.is_empty(),
        "flood 401s answered otherwise than 503: {other:?}"
    );
    assert!(unavailable > 0, "no flood 401 came back at all");
    assert!(
        max <= p.max_parked,
        "parked {max} > max_parked {}",
        p.max_parked
    );
    assert!(rss_growth < 256 * 1024, "RSS grew by {rss_growth} KiB");
    // Nothing stays parked, and valid traffic is served right away.
    let deadline = tokio::time::Instant::now() + WAIT;
    while duo.p().hook.parked() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(duo.p().hook.parked(), 0);
    duo.assert_serves("after the held-401 flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_store_flood_is_bounded() {
    let p = POpts {
        store_capacity: 256,
        ..POpts::default()
    };
    let duo = Duo::start(SOpts::new(Mode::Grpc), p.clone(), false).await;
    let rss_before = rss_kib();
    let inj = duo.injector(Mode::Grpc, |_| {});
    // Flood bundles live 3 s so the store frees itself during the test.
    let life_ms = 3_000;
    let mut handles = Vec::new();
    let mut max_len = 0;
    for i in 0..FLOOD as u64 {
        let mut b = wire_bundle(
            &nonce(20_000 + i),
            &format!("store-flood-{i}"),
            &key_hex(i, 1),
            &key_hex(i, 2),
        );
        b.not_after_ms = now_ms() + life_ms;
        handles.push(inj.send_wait(b).await.expect("queue bundle"));
        max_len = max_len.max(duo.p().hub.len());
    }
    let (mut stored, mut refused) = (0, 0);
    for h in handles {
        match tokio::time::timeout(WAIT, h).await {
            Ok(Ok(a)) if a.is_delivered() => stored += 1,
            _ => refused += 1,
        }
        max_len = max_len.max(duo.p().hub.len());
    }
    let stats = duo.p().hub.stats();
    let rss_growth = rss_kib().saturating_sub(rss_before);
    // While full, a valid challenge fails closed (503) or is served; never anything else.
    let seed = 31_337;
    let (ck, ik) = (key_hex(seed, 1), key_hex(seed, 2));
    let while_full = outcome(
        &duo.challenge(&crate::support::www(&nonce(seed), &ck, &ik))
            .await,
    );
    record::row(
        "flood",
        &format!(
            "{FLOOD} bundles from an authorised peer, store_capacity {}",
            p.store_capacity
        ),
        &format!(
            "stored {stored}, refused {refused}, largest store {max_len}, refused_full {}; RSS growth {rss_growth} KiB; valid 401 while full: {}",
            stats.refused_full,
            if while_full == Outcome::Keys(ck.clone(), ik.clone()) {
                "served"
            } else {
                "503 (fail closed)"
            }
        ),
    );
    assert!(max_len <= p.store_capacity, "store grew to {max_len}");
    assert!(stored <= p.store_capacity, "{stored} stored");
    assert!(stats.refused_full > 0, "the flood never hit the bound");
    assert!(
        while_full == Outcome::Status(503) || while_full == Outcome::Keys(ck, ik),
        "{while_full:?}"
    );
    assert!(rss_growth < 256 * 1024, "RSS grew by {rss_growth} KiB");
    // Once the flood's bundles expire, valid traffic is served again.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        duo.p().hub.expire();
        if duo.p().hub.len() < p.store_capacity / 2 || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    inj.close();
    duo.assert_serves("after the key store flood expired").await;
}
