//! UDP: transparency, branch determinism, Via checks, Max-Forwards, dead next hop.

use std::sync::Arc;

use ikt_relay::{DropReason, NoHook};

use crate::support::*;

#[tokio::test]
async fn request_and_response_cross_the_hop_byte_exact() {
    let uas = UdpPeer::new().await;
    let uac = UdpPeer::new().await;
    let relay = relay(Some((uas.addr, None)), Arc::new(NoHook), |_| {}).await;
    let r = relay.udp_addrs()[0];

    let req = register(
        "UDP",
        &uac.addr.to_string(),
        "z9hG4bKue1",
        "call-udp-1",
        Some(70),
    );
    uac.send(req.as_bytes(), r).await;
    let (fwd, from) = uas.recv().await;
    assert_eq!(from, r, "forwarded from the relay's listening socket");
    let fwd = text(&fwd);
    let (via_line, _) = relay_via(&fwd, "UDP", &r.to_string(), "");
    assert_eq!(fwd, expected_request(&req, &via_line));

    let resp = response_to(&fwd, "401 Unauthorized", CHALLENGE);
    uas.send(resp.as_bytes(), r).await;
    let (back, _) = uac.recv().await;
    assert_eq!(text(&back), without_line(&resp, &via_line));

    let s = relay.stats();
    assert_eq!((s.received_requests, s.forwarded_requests), (1, 1));
    assert_eq!((s.received_responses, s.forwarded_responses), (1, 1));
    assert_eq!(s.dropped_total(), 0);
}

#[tokio::test]
async fn retransmission_gets_the_same_branch_and_new_transaction_a_new_one() {
    let uas = UdpPeer::new().await;
    let uac = UdpPeer::new().await;
    let relay = relay(Some((uas.addr, None)), Arc::new(NoHook), |c| {
        c.via_params = "ikt=pcscf-1".into()
    })
    .await;
    let r = relay.udp_addrs()[0].to_string();
    let req = register(
        "UDP",
        &uac.addr.to_string(),
        "z9hG4bKretx",
        "call-retx",
        Some(70),
    );

    let mut branches = Vec::new();
    for _ in 0..2 {
        uac.send(req.as_bytes(), relay.udp_addrs()[0]).await;
        let fwd = text(&uas.recv().await.0);
        let (via_line, branch) = relay_via(&fwd, "UDP", &r, "ikt=pcscf-1");
        assert_eq!(fwd, expected_request(&req, &via_line));
        branches.push(branch);
    }
    assert_eq!(branches[0], branches[1]);

    let other = register(
        "UDP",
        &uac.addr.to_string(),
        "z9hG4bKnext",
        "call-retx",
        Some(70),
    );
    uac.send(other.as_bytes(), relay.udp_addrs()[0]).await;
    let fwd = text(&uas.recv().await.0);
    let (_, branch) = relay_via(&fwd, "UDP", &r, "ikt=pcscf-1");
    assert_ne!(branch, branches[0]);
}

#[tokio::test]
async fn response_whose_top_via_is_not_ours_is_dropped_and_counted() {
    let uas = UdpPeer::new().await;
    let uac = UdpPeer::new().await;
    let relay = relay(Some((uas.addr, None)), Arc::new(NoHook), |_| {}).await;
    let r = relay.udp_addrs()[0];
    // A response carrying only the UAC's Via (as if the relay had never forwarded the request).
    let req = register(
        "UDP",
        &uac.addr.to_string(),
        "z9hG4bKnotours",
        "call-notours",
        Some(70),
    );
    let resp = response_to(&req, "200 OK", "");
    uas.send(resp.as_bytes(), r).await;
    wait_stats(&relay, "not-our-Via drop", |s| {
        s.dropped(DropReason::NotOurVia) == 1
    })
    .await;
    uac.assert_empty();
    assert_eq!(relay.stats().forwarded_responses, 0);
}

#[tokio::test]
async fn max_forwards_zero_is_answered_with_483() {
    let uas = UdpPeer::new().await;
    let uac = UdpPeer::new().await;
    let relay = relay(Some((uas.addr, None)), Arc::new(NoHook), |_| {}).await;
    let req = register(
        "UDP",
        &uac.addr.to_string(),
        "z9hG4bKmf0",
        "call-mf0",
        Some(0),
    );
    uac.send(req.as_bytes(), relay.udp_addrs()[0]).await;
    let (answer, from) = uac.recv().await;
    assert_eq!(from, relay.udp_addrs()[0]);
    let answer = text(&answer);
    assert!(
        answer.starts_with("SIP/2.0 483 Too Many Hops\r\n"),
        "{answer}"
    );
    let via = req.lines().find(|l| l.starts_with("Via:")).unwrap();
    assert!(
        answer.contains(&format!("{via}\r\n")),
        "Via copied verbatim: {answer}"
    );
    assert!(answer.contains("Call-ID: call-mf0\r\n") && answer.contains("CSeq: 1 REGISTER\r\n"));
    assert!(
        answer.contains("To: <sip:alice@ims.example.com>;tag="),
        "{answer}"
    );
    assert!(answer.ends_with("Content-Length: 0\r\n\r\n"));
    let s = wait_stats(&relay, "483", |s| s.too_many_hops == 1).await;
    assert_eq!(s.forwarded_requests, 0);
    uas.assert_empty();
}

#[tokio::test]
async fn missing_max_forwards_is_inserted_as_70() {
    let uas = UdpPeer::new().await;
    let uac = UdpPeer::new().await;
    let relay = relay(Some((uas.addr, None)), Arc::new(NoHook), |_| {}).await;
    let req = register(
        "UDP",
        &uac.addr.to_string(),
        "z9hG4bKnomf",
        "call-nomf",
        None,
    );
    uac.send(req.as_bytes(), relay.udp_addrs()[0]).await;
    let fwd = text(&uas.recv().await.0);
    let (via_line, _) = relay_via(&fwd, "UDP", &relay.udp_addrs()[0].to_string(), "");
    assert_eq!(fwd, expected_request(&req, &via_line));
    assert!(fwd.contains(&format!("{via_line}Max-Forwards: 70\r\n")));
}

#[tokio::test]
async fn loose_route_naming_us_is_popped_and_the_next_route_followed() {
    let default_hop = UdpPeer::new().await;
    let routed = UdpPeer::new().await;
    let uac = UdpPeer::new().await;
    let relay = relay(Some((default_hop.addr, None)), Arc::new(NoHook), |_| {}).await;
    let r = relay.udp_addrs()[0];
    let base = register(
        "UDP",
        &uac.addr.to_string(),
        "z9hG4bKroute",
        "call-route",
        Some(10),
    );
    let route = format!("Route: <sip:{r};lr>, <sip:{};lr>\r\n", routed.addr);
    let req = base.replacen("From:", &format!("{route}From:"), 1);
    uac.send(req.as_bytes(), r).await;
    let fwd = text(&routed.recv().await.0);
    let (via_line, _) = relay_via(&fwd, "UDP", &r.to_string(), "");
    let popped = req.replacen(&format!("<sip:{r};lr>, "), "", 1);
    assert_eq!(fwd, expected_request(&popped, &via_line));
    default_hop.assert_empty();

    // A top Route that is not us is followed and kept.
    let req = base.replacen(
        "From:",
        &format!("Route: <sip:{};lr>\r\nFrom:", routed.addr),
        1,
    );
    uac.send(req.as_bytes(), r).await;
    let fwd = text(&routed.recv().await.0);
    let (via_line, _) = relay_via(&fwd, "UDP", &r.to_string(), "");
    assert_eq!(fwd, expected_request(&req, &via_line));
}

#[tokio::test]
async fn dead_next_hop_does_not_block_other_traffic() {
    let dead = dead_udp_addr().await;
    let live = UdpPeer::new().await;
    let uac = UdpPeer::new().await;
    let relay = relay(Some((dead, None)), Arc::new(NoHook), |_| {}).await;
    let r = relay.udp_addrs()[0];
    for i in 0..10 {
        // Toward the dead default hop: ICMP port unreachable comes back to the relay's socket.
        let to_dead = register(
            "UDP",
            &uac.addr.to_string(),
            &format!("z9hG4bKdead{i}"),
            &format!("dead-{i}"),
            Some(70),
        );
        uac.send(to_dead.as_bytes(), r).await;
        // Toward a live hop via Route: must still get through, every time.
        let base = register(
            "UDP",
            &uac.addr.to_string(),
            &format!("z9hG4bKlive{i}"),
            &format!("live-{i}"),
            Some(70),
        );
        let req = base.replacen(
            "From:",
            &format!("Route: <sip:{};lr>\r\nFrom:", live.addr),
            1,
        );
        uac.send(req.as_bytes(), r).await;
        let fwd = text(&live.recv().await.0);
        assert!(fwd.contains(&format!("Call-ID: live-{i}\r\n")), "{fwd}");
    }
    let s = wait_stats(&relay, "all requests received", |s| {
        s.received_requests == 20
    })
    .await;
    assert_eq!(
        s.forwarded_requests + s.dropped(DropReason::SendError),
        20,
        "{s:?}"
    );
}

#[tokio::test]
async fn garbage_is_dropped_and_counted_and_the_relay_keeps_going() {
    let uas = UdpPeer::new().await;
    let uac = UdpPeer::new().await;
    let relay = relay(Some((uas.addr, None)), Arc::new(NoHook), |_| {}).await;
    uac.send(b"\x00\xffnot sip at all\r\n\r\n", relay.udp_addrs()[0])
        .await;
    wait_stats(&relay, "malformed drop", |s| {
        s.dropped(DropReason::Malformed) == 1
    })
    .await;
    let req = register(
        "UDP",
        &uac.addr.to_string(),
        "z9hG4bKafter",
        "call-after",
        Some(70),
    );
    uac.send(req.as_bytes(), relay.udp_addrs()[0]).await;
    assert!(text(&uas.recv().await.0).contains("Call-ID: call-after"));
}

#[tokio::test]
async fn shutdown_stops_the_relay() {
    let uas = UdpPeer::new().await;
    let relay = relay(Some((uas.addr, None)), Arc::new(NoHook), |_| {}).await;
    let addr = relay.udp_addrs()[0];
    tokio::time::timeout(GUARD, relay.shutdown())
        .await
        .expect("shutdown completes");
    // The port is free again once the relay's socket is gone.
    tokio::net::UdpSocket::bind(addr)
        .await
        .expect("port released after shutdown");
}

#[tokio::test]
async fn compact_and_comma_separated_vias_are_handled_byte_exact() {
    let uas = UdpPeer::new().await;
    let uac = UdpPeer::new().await;
    let relay = relay(Some((uas.addr, None)), Arc::new(NoHook), |_| {}).await;
    let r = relay.udp_addrs()[0];
    // Compact header names, as UEs on small links send them.
    let req = register(
        "UDP",
        &uac.addr.to_string(),
        "z9hG4bKcompact",
        "call-compact",
        Some(5),
    )
    .replace("Via: ", "v: ")
    .replace("Call-ID: ", "i: ");
    uac.send(req.as_bytes(), r).await;
    let fwd = text(&uas.recv().await.0);
    let (via_line, _) = relay_via(&fwd, "UDP", &r.to_string(), "");
    assert_eq!(fwd, expected_request(&req, &via_line));

    // The next hop folds all Vias into one comma-separated compact header.
    let ours = via_line
        .trim_start_matches("Via: ")
        .trim_end_matches("\r\n");
    let theirs = req.lines().find_map(|l| l.strip_prefix("v: ")).unwrap();
    let resp = format!(
        "SIP/2.0 200 OK\r\nv: {ours} , {theirs}\r\nFrom: <sip:alice@ims.example.com>;tag=4fa3\r\nTo: <sip:alice@ims.example.com>;tag=s\r\ni: call-compact\r\nCSeq: 1 REGISTER\r\nl: 0\r\n\r\n"
    );
    uas.send(resp.as_bytes(), r).await;
    let back = text(&uac.recv().await.0);
    assert_eq!(back, resp.replacen(&format!("{ours} , "), "", 1));
}

#[tokio::test]
async fn external_shutdown_stops_the_relay_and_dropping_it_leaves_the_caller_signal_alone() {
    let uas = UdpPeer::new().await;
    let config = || ikt_relay::Config {
        udp_listen: vec![localhost()],
        next_hop: Some(ikt_relay::NextHop {
            addr: uas.addr,
            transport: None,
        }),
        ..ikt_relay::Config::default()
    };
    let agent = ikt_relay::Shutdown::new();
    let relay = ikt_relay::Relay::start_with_shutdown(config(), Arc::new(NoHook), agent.clone())
        .await
        .unwrap();
    drop(relay);
    assert!(
        !agent.is_triggered(),
        "dropping the relay must not stop the agent"
    );

    let relay = ikt_relay::Relay::start_with_shutdown(config(), Arc::new(NoHook), agent.clone())
        .await
        .unwrap();
    let own = relay.shutdown_signal();
    agent.trigger();
    tokio::time::timeout(GUARD, relay.wait())
        .await
        .expect("the agent's signal stops the relay");
    assert!(own.is_triggered());
}
