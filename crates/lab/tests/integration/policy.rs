//! The operator's failed-attempt policy: a UE that answers re-authentication with a wrong K.

use ikt_lab::demo::wrong_k;
use ikt_lab::ue::{self, UeEvent};

use crate::support::{self, WAIT};

/// Registers with the right K, swaps in a wrong K, triggers re-authentication and waits for
/// the 403. Returns the lab, the UE, the events seen up to the 403 and the receiver (for what
/// arrives after it).
async fn wrong_k_after_reauth(
    limit: u32,
    action: &str,
) -> (
    support::Lab,
    ikt_lab::ue::Ue,
    Vec<UeEvent>,
    tokio::sync::broadcast::Receiver<UeEvent>,
) {
    let config = format!("[reauth]\nmax_failed_attempts = {limit}\non_exceeded = \"{action}\"\n");
    let lab = support::start(&["2"], &config).await;
    let ue = lab.ue(0, |_| {}).await;
    assert!(matches!(
        ue.register_and_wait(WAIT).await.unwrap(),
        UeEvent::Registered { .. }
    ));
    ue.set_k(wrong_k(&lab.provisioned[0].k)).await.unwrap();
    let mut rx = ue.events();
    lab.net.reauth(ue.impi()).await.unwrap();
    let mut seen = Vec::new();
    let last = ue::wait_for(&mut rx, WAIT, |e| {
        seen.push(e.clone());
        matches!(e, UeEvent::Rejected(_))
    })
    .await
    .unwrap();
    assert_eq!(last, UeEvent::Rejected(403));
    (lab, ue, seen, rx)
}

async fn check_limit_with_deregister(limit: u32) {
    let (lab, ue, seen, mut rx) = wrong_k_after_reauth(limit, "deregister").await;
    let mac_failures = seen.iter().filter(|e| **e == UeEvent::MacFailure).count();
    assert_eq!(
        mac_failures, limit as usize,
        "one failed response per tolerated attempt: {seen:?}"
    );
    let c = lab.net.scscf_counts();
    assert_eq!(c.auth_failures, u64::from(limit));
    // Initial registration, the re-authentication challenge, then one more per tolerated failure.
    assert_eq!(c.challenges, 2 + u64::from(limit) - 1);
    assert_eq!(c.policy_actions, 1);
    assert_eq!(c.deregistrations, 1);
    assert!(!lab.net.scscf().is_registered(ue.impi()));
    // NOTIFY terminated reaches the UE and the P-CSCF, which drops the keys.
    // (It may arrive before or after the 403: they travel different paths.)
    let terminated = UeEvent::NetworkDeregistered("rejected".into());
    if !seen.contains(&terminated) {
        ue::wait_for(&mut rx, WAIT, |e| *e == terminated)
            .await
            .unwrap();
    }
    assert!(!ue.status().registered);
    let pcscf = lab.net.pcscf().clone();
    let impi = ue.impi().to_string();
    support::eventually("P-CSCF drops the keys", || {
        pcscf.fingerprint(&impi).is_none()
    })
    .await;
    lab.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_k_limit_1_deregisters_every_identity() {
    check_limit_with_deregister(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_k_limit_5_deregisters_every_identity() {
    check_limit_with_deregister(5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_action_keeps_the_registration() {
    let (lab, ue, seen, _) = wrong_k_after_reauth(3, "reject").await;
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, UeEvent::NetworkDeregistered(_))),
        "{seen:?}"
    );
    let c = lab.net.scscf_counts();
    assert_eq!(
        (c.auth_failures, c.policy_actions, c.deregistrations),
        (3, 1, 0)
    );
    assert!(lab.net.scscf().is_registered(ue.impi()));
    lab.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_counter_resets_after_a_success() {
    // The limit is far above what the race between the UE's retry and the K swap can produce.
    let lab = support::start(&["3"], "[reauth]\nmax_failed_attempts = 50\n").await;
    let ue = lab.ue(0, |_| {}).await;
    ue.register_and_wait(WAIT).await.unwrap();
    // A failure or a few (wrong K), then the right K again: registered, no policy action.
    ue.set_k(wrong_k(&lab.provisioned[0].k)).await.unwrap();
    let mut rx = ue.events();
    lab.net.reauth(ue.impi()).await.unwrap();
    ue::wait_for(&mut rx, WAIT, |e| *e == UeEvent::MacFailure)
        .await
        .unwrap();
    ue.set_k(lab.provisioned[0].k.clone()).await.unwrap();
    ue::wait_for(&mut rx, WAIT, |e| matches!(e, UeEvent::Registered { .. }))
        .await
        .unwrap();
    let c = lab.net.scscf_counts();
    assert!(c.auth_failures >= 1);
    assert_eq!(c.policy_actions, 0);
    assert_eq!(lab.net.pcscf_fingerprint(ue.impi()), ue.fingerprint());
    lab.net.shutdown().await;
}
