//! Failure policies through the whole chain: restarts, downgrades, fallbacks, and the
//! operator's re-authentication policy still applying with the agents in the path.

use std::sync::atomic::Ordering;

use ikt_agent::Mode;
use ikt_lab::ue::UeEvent;

use crate::support::{Chain, Opts, WAIT, register};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p_agent_restart_mid_run_resumes_and_never_leaks_a_keyless_401() {
    for mode in [Mode::Grpc, Mode::Quic] {
        let mut chain = Chain::start(Opts::new(mode)).await;
        let ue0 = chain.ue(0).await;
        register(&ue0).await;
        chain.restart_p_agent().await;
        chain.wait_peer_up().await;
        for i in 1..chain.provisioned.len() {
            let ue = chain.ue(i).await;
            let fp = register(&ue).await;
            assert_eq!(chain.net.pcscf_fingerprint(ue.impi()), Some(fp), "{mode}");
        }
        // A re-registration of the first UE after the restart also gets its keys.
        let fp = register(&ue0).await;
        assert_eq!(chain.net.pcscf_fingerprint(ue0.impi()), Some(fp), "{mode}");
        let stats = chain.net.pcscf().stats();
        assert_eq!(
            stats.fail_closed.load(Ordering::Relaxed),
            0,
            "{mode}: a 401 reached the P-CSCF without keys"
        );
        assert_eq!(chain.tap.with_clear_keys(), 0, "{mode}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_plain_false_refuses_a_downgrade() {
    let mut opts = Opts::new(Mode::Plain);
    opts.accept_plain = false;
    let chain = Chain::start(opts).await;
    let ue = chain.ue(0).await;
    match ue.register_and_wait(WAIT).await {
        Ok(UeEvent::Rejected(503)) => {}
        other => panic!("downgrade not refused: {other:?}"),
    }
    assert_eq!(ue.status().keys_seen_in_401, 0);
    assert!(chain.net.pcscf_fingerprint(ue.impi()).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_peer_falls_back_to_sealed_when_allowed() {
    let mut opts = Opts::new(Mode::Grpc);
    opts.unreachable_peer = true;
    opts.fallback = "sealed";
    let chain = Chain::start(opts).await;
    let ue = chain.ue(0).await;
    let fp = register(&ue).await;
    assert_eq!(chain.net.pcscf_fingerprint(ue.impi()), Some(fp));
    assert_eq!(chain.tap.with_clear_keys(), 0);
    assert!(chain.tap.with_tokens() >= 1, "the fallback seals the keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_peer_fails_closed_without_fallback() {
    let mut opts = Opts::new(Mode::Quic);
    opts.unreachable_peer = true;
    let chain = Chain::start(opts).await;
    let ue = chain.ue(0).await;
    match ue.register_and_wait(WAIT).await {
        Ok(UeEvent::Rejected(503)) => {}
        other => panic!("expected 503, got {other:?}"),
    }
    assert_eq!(
        chain.tap.with_clear_keys(),
        0,
        "never downgraded to clear keys"
    );
    assert_eq!(
        chain
            .net
            .pcscf()
            .stats()
            .fail_closed
            .load(Ordering::Relaxed),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_initiated_reauth_and_failed_attempt_policy_through_agents() {
    let mut opts = Opts::new(Mode::Grpc);
    opts.lab = "[reauth]\nmax_failed_attempts = 2\non_exceeded = \"deregister\"\n";
    let chain = Chain::start(opts).await;
    let ue = chain.ue(0).await;
    let first = register(&ue).await;
    // Re-authentication on command: the UE is challenged again and gets new keys.
    let mut rx = ue.events();
    chain.net.reauth(ue.impi()).await.unwrap();
    let again = ikt_lab::ue::wait_for(&mut rx, WAIT, |e| matches!(e, UeEvent::Registered { .. }))
        .await
        .unwrap();
    let UeEvent::Registered { fingerprint, .. } = again else {
        unreachable!()
    };
    assert_ne!(
        fingerprint, first,
        "re-authentication must bring fresh keys"
    );
    assert_eq!(chain.net.pcscf_fingerprint(ue.impi()), Some(fingerprint));

    // A wrong K: the S-CSCF tolerates the configured number of failures, then deregisters.
    let before = chain.net.scscf_counts();
    let k = ikt_lab::demo::wrong_k(&chain.provisioned[0].k);
    ue.set_k(k).await.unwrap();
    let mut rx = ue.events();
    chain.net.reauth(ue.impi()).await.unwrap();
    let rejected =
        ikt_lab::ue::wait_for(&mut rx, WAIT, |e| matches!(e, UeEvent::Rejected(_))).await;
    assert!(
        matches!(rejected, Ok(UeEvent::Rejected(403))),
        "the policy answers 403: {rejected:?}"
    );
    let after = chain.net.scscf_counts();
    assert_eq!(
        after.auth_failures - before.auth_failures,
        2,
        "policy: 2 failed attempts"
    );
    assert_eq!(after.policy_actions - before.policy_actions, 1);
    assert_eq!(chain.tap.with_clear_keys(), 0);
}
