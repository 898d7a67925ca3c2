//! Registration through P-CSCF → I-CSCF → S-CSCF: keys, re-authentication, resync,
//! de-registration, fail-closed P-CSCF, agent hops, the reg-await-auth timer, qop variants.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ikt_lab::digest::Qop;
use ikt_lab::network::{AgentHops, Network, NetworkConfig};
use ikt_lab::ue::{self, UeEvent};
use ikt_relay::{Hook, Inbound, Verdict};

use crate::support::{self, WAIT, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ue_registers_and_pcscf_holds_the_same_keys() {
    let lab = support::start(&["2", "3"], "").await;
    for i in 0..2 {
        let ue = lab.ue(i, |_| {}).await;
        let UeEvent::Registered {
            fingerprint,
            expires,
            ..
        } = ue.register_and_wait(WAIT).await.unwrap()
        else {
            panic!("not registered");
        };
        assert_eq!(fingerprint.len(), 8);
        assert_eq!(expires, 600);
        assert_eq!(lab.net.pcscf_fingerprint(ue.impi()), Some(fingerprint));
        // And they are the keys MILENAGE gives for the challenge's RAND.
        assert_eq!(lab.net.pcscf_keys_check(ue.impi()), Some(true));
        assert!(lab.net.scscf().is_registered(ue.impi()));
        let st = ue.status();
        assert_eq!(st.keys_seen_in_401, 0, "a 401 reached the UE with ck/ik");
        assert_eq!(st.challenges, 1);
        assert!(st.subscribed);
    }
    let c = lab.net.scscf_counts();
    assert_eq!((c.registrations, c.challenges, c.auth_failures), (2, 2, 0));
    // At least one per challenge (a retransmitted 401 under load is stripped again).
    assert!(lab.net.pcscf().stats().keys_stored.load(Ordering::Relaxed) >= 2);
    lab.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_initiated_reauthentication_on_command() {
    let lab = support::start(&["5"], "[reauth]\nshortened_expires = 45\n").await;
    let ue = lab.ue(0, |_| {}).await;
    ue.register_and_wait(WAIT).await.unwrap();
    let before = ue.fingerprint().unwrap();
    let mut rx = ue.events();
    lab.net.reauth(ue.impi()).await.unwrap();
    ue::wait_for(&mut rx, WAIT, |e| *e == UeEvent::Shortened)
        .await
        .unwrap();
    let UeEvent::Registered { fingerprint, .. } =
        ue::wait_for(&mut rx, WAIT, |e| matches!(e, UeEvent::Registered { .. }))
            .await
            .unwrap()
    else {
        unreachable!()
    };
    assert_ne!(fingerprint, before, "re-authentication must bring new keys");
    assert_eq!(lab.net.pcscf_fingerprint(ue.impi()), Some(fingerprint));
    let c = lab.net.scscf_counts();
    assert_eq!((c.reauths, c.challenges, c.registrations), (1, 2, 2));
    // Re-authenticating someone who is not registered is refused.
    assert!(lab.net.reauth("nobody@ims.example.org").await.is_err());
    lab.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auts_resynchronisation_after_an_sqn_jump() {
    let lab = support::start(&["3"], "").await;
    let hss_sqn = lab.net.hss().next_sqn("set3@ims.example.org").unwrap();
    // The USIM has seen far newer SQNs than the HSS hands out: the first challenge is stale.
    let ue = lab.ue(0, |c| c.sqn_ms = hss_sqn + 5000).await;
    let mut rx = ue.events();
    let outcome = ue.register_and_wait(WAIT).await.unwrap();
    assert!(matches!(outcome, UeEvent::Registered { .. }));
    ue::wait_for(&mut rx, WAIT, |e| *e == UeEvent::ResyncSent)
        .await
        .unwrap();
    let c = lab.net.scscf_counts();
    assert_eq!((c.resyncs, c.challenges, c.auth_failures), (1, 2, 0));
    assert_eq!(
        lab.net.hss().next_sqn("set3@ims.example.org"),
        Some(hss_sqn + 5002)
    );
    assert_eq!(lab.net.pcscf_fingerprint(ue.impi()), ue.fingerprint());
    lab.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deregistration_ends_registration_and_keys() {
    let lab = support::start(&["2"], "").await;
    let ue = lab.ue(0, |_| {}).await;
    ue.register_and_wait(WAIT).await.unwrap();
    assert!(lab.net.pcscf_fingerprint(ue.impi()).is_some());
    let mut rx = ue.events();
    ue.deregister().await.unwrap();
    ue::wait_for(&mut rx, WAIT, |e| *e == UeEvent::Deregistered)
        .await
        .unwrap();
    assert!(!lab.net.scscf().is_registered(ue.impi()));
    assert_eq!(lab.net.pcscf_fingerprint(ue.impi()), None);
    assert_eq!(lab.net.scscf_counts().deregistrations, 1);
    assert!(!ue.status().registered);
    lab.net.shutdown().await;
}

/// A hop that removes ck and ik from every AKA 401 (a broken or downgraded core).
struct StripKeys;

impl Hook for StripKeys {
    fn on_response(&self, msg: &Inbound<'_, '_>) -> Verdict {
        let m = msg.message;
        let Some(h) = m
            .headers()
            .iter()
            .find(|h| h.name == ikt_sip::HeaderName::WwwAuthenticate)
        else {
            return Verdict::Pass;
        };
        let value = m.value(h);
        let Some(d) = ikt_lab::challenge::parse(value) else {
            return Verdict::Pass;
        };
        let stripped = ikt_lab::challenge::without(value, &d, &["ck", "ik"]);
        let b = m.bytes();
        let mut out = b[..h.value_range.start].to_vec();
        out.extend_from_slice(stripped.as_bytes());
        out.extend_from_slice(&b[h.value_range.end..]);
        Verdict::Replace(out)
    }
}

async fn relay_hop(next: std::net::SocketAddr, hook: Arc<dyn Hook>) -> ikt_relay::Relay {
    let config = ikt_relay::Config {
        udp_listen: vec!["127.0.0.1:0".parse().unwrap()],
        next_hop: Some(ikt_relay::NextHop {
            addr: next,
            transport: None,
        }),
        ..ikt_relay::Config::default()
    };
    ikt_relay::Relay::start(config, hook).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcscf_fails_closed_on_a_challenge_without_keys() {
    let provisioned =
        ikt_lab::hss::parse_provisioning(&support::subscriber_file(&["2"], "000000000100"))
            .unwrap();
    let hss = Arc::new(ikt_lab::hss::Hss::new(
        provisioned.iter().map(Into::into).collect(),
    ));
    let lab = ikt_lab::config::LabConfig::default();
    // Staged start: the stripping hop sits where an s-cscf-agent would.
    let core = Network::stage(NetworkConfig::loopback(lab.clone()), hss)
        .await
        .unwrap();
    let hop = relay_hop(core.scscf_addr(), Arc::new(StripKeys)).await;
    let edge = core.start_icscf(Some(hop.udp_addrs()[0])).await.unwrap();
    let net = edge.start_pcscf(None).await.unwrap();
    let lab = support::Lab {
        net,
        provisioned,
        lab,
    };
    let ue = lab.ue(0, |_| {}).await;
    let outcome = ue.register_and_wait(WAIT).await.unwrap();
    assert_eq!(outcome, UeEvent::Rejected(503));
    assert_eq!(
        ue.status().challenges,
        0,
        "a challenge without keys must not reach the UE"
    );
    assert_eq!(
        lab.net.pcscf().stats().fail_closed.load(Ordering::Relaxed),
        1
    );
    assert_eq!(lab.net.pcscf_fingerprint(ue.impi()), None);
    lab.net.shutdown().await;
    hop.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_with_hops_inserted_where_the_agents_go() {
    let provisioned =
        ikt_lab::hss::parse_provisioning(&support::subscriber_file(&["5"], "000000000100"))
            .unwrap();
    let hss = Arc::new(ikt_lab::hss::Hss::new(
        provisioned.iter().map(Into::into).collect(),
    ));
    let lab = ikt_lab::config::LabConfig::default();
    let core = Network::stage(NetworkConfig::loopback(lab.clone()), hss)
        .await
        .unwrap();
    let s_hop = relay_hop(core.scscf_addr(), Arc::new(ikt_relay::NoHook)).await;
    let edge = core.start_icscf(Some(s_hop.udp_addrs()[0])).await.unwrap();
    let p_hop = relay_hop(edge.icscf_addr(), Arc::new(ikt_relay::NoHook)).await;
    let net = edge.start_pcscf(Some(p_hop.udp_addrs()[0])).await.unwrap();
    let lab = support::Lab {
        net,
        provisioned,
        lab,
    };
    let ue = lab.ue(0, |_| {}).await;
    let UeEvent::Registered { fingerprint, .. } = ue.register_and_wait(WAIT).await.unwrap() else {
        panic!("not registered")
    };
    assert_eq!(lab.net.pcscf_fingerprint(ue.impi()), Some(fingerprint));
    // Requests crossed both inserted hops.
    assert!(s_hop.stats().forwarded_requests >= 2);
    assert!(p_hop.stats().forwarded_requests >= 2);
    // Re-authentication still works through them.
    let mut rx = ue.events();
    lab.net.reauth(ue.impi()).await.unwrap();
    ue::wait_for(&mut rx, WAIT, |e| matches!(e, UeEvent::Registered { .. }))
        .await
        .unwrap();
    assert_eq!(lab.net.pcscf_fingerprint(ue.impi()), ue.fingerprint());
    lab.net.shutdown().await;
    s_hop.shutdown().await;
    p_hop.shutdown().await;
    let _ = AgentHops::default();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reg_await_auth_timer_drops_an_unanswered_challenge() {
    let lab = support::start(&["2"], "[registrar]\nreg_await_auth_ms = 100\n").await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = socket.local_addr().unwrap();
    let register = format!(
        "REGISTER sip:ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKtimer;rport\r\nMax-Forwards: 70\r\nFrom: <sip:set2@ims.example.org>;tag=t1\r\nTo: <sip:set2@ims.example.org>\r\nCall-ID: timer-1\r\nCSeq: 1 REGISTER\r\nContact: <sip:set2@{me}>\r\nContent-Length: 0\r\n\r\n"
    );
    socket
        .send_to(register.as_bytes(), lab.net.addrs().pcscf)
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(WAIT, socket.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let reply = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(reply.starts_with("SIP/2.0 401"), "{reply}");
    assert!(!reply.contains("ck=") && !reply.contains("ik="), "{reply}");
    assert!(reply.contains("algorithm=AKAv1-MD5"));
    let scscf = lab.net.scscf().clone();
    eventually("reg-await-auth expiry", || {
        scscf.stats().counts().reg_await_auth_expired == 1
    })
    .await;
    lab.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qop_auth_int_and_no_qop() {
    for (config, qop) in [
        ("[registrar]\nqop = \"auth-int\"\n", Qop::AuthInt),
        ("[registrar]\nqop = \"\"\n", Qop::Auth),
    ] {
        let lab = support::start(&["3"], config).await;
        let ue = lab.ue(0, |c| c.qop = qop).await;
        let outcome = ue.register_and_wait(WAIT).await.unwrap();
        assert!(
            matches!(outcome, UeEvent::Registered { .. }),
            "{config}: {outcome:?}"
        );
        assert_eq!(lab.net.pcscf_fingerprint(ue.impi()), ue.fingerprint());
        lab.net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retransmitted_register_gets_the_same_challenge() {
    let lab = support::start(&["5"], "").await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = socket.local_addr().unwrap();
    let register = format!(
        "REGISTER sip:ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKretx;rport\r\nMax-Forwards: 70\r\nFrom: <sip:set5@ims.example.org>;tag=t1\r\nTo: <sip:set5@ims.example.org>\r\nCall-ID: retx-1\r\nCSeq: 1 REGISTER\r\nContact: <sip:set5@{me}>\r\nAuthorization: Digest username=\"set5@ims.example.org\", realm=\"ims.example.org\", uri=\"sip:ims.example.org\", nonce=\"\", response=\"\"\r\nContent-Length: 0\r\n\r\n"
    );
    let mut replies = Vec::new();
    for _ in 0..2 {
        socket
            .send_to(register.as_bytes(), lab.net.addrs().pcscf)
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let (n, _) = tokio::time::timeout(WAIT, socket.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        replies.push(buf[..n].to_vec());
    }
    assert!(replies[0].starts_with(b"SIP/2.0 401"));
    assert_eq!(
        replies[0], replies[1],
        "a retransmission must get the same 401"
    );
    assert_eq!(lab.net.scscf_counts().challenges, 1);
    assert_eq!(
        lab.net.pcscf().stats().keys_stored.load(Ordering::Relaxed),
        2
    );
    lab.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ue_refreshes_its_registration_before_expiry() {
    let lab = support::start(&["2"], "").await;
    let ue = lab.ue(0, |c| c.expires = 2).await;
    let mut rx = ue.events();
    let UeEvent::Registered { expires, .. } = ue.register_and_wait(WAIT).await.unwrap() else {
        panic!("not registered")
    };
    assert_eq!(expires, 2);
    // The refresh (at half the expiry) is a full re-authentication with new keys.
    let first = ue.fingerprint();
    ue::wait_for(&mut rx, WAIT, |e| matches!(e, UeEvent::Registered { .. }))
        .await
        .unwrap();
    ue::wait_for(&mut rx, WAIT, |e| matches!(e, UeEvent::Registered { .. }))
        .await
        .unwrap();
    assert_ne!(ue.fingerprint(), first);
    assert!(lab.net.scscf().is_registered(ue.impi()));
    assert_eq!(lab.net.pcscf_fingerprint(ue.impi()), ue.fingerprint());
    lab.net.shutdown().await;
}
