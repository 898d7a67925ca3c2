//! TCP: transparency, responses on the request's connection, reuse, slow or dead peers, idle.

use std::sync::Arc;
use std::time::Duration;

use ikt_relay::{DropReason, NoHook, Transport};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

#[tokio::test]
async fn request_and_response_cross_the_hop_and_return_on_the_same_connection() {
    let uas = TcpListener::bind(localhost()).await.unwrap();
    let uas_addr = uas.local_addr().unwrap();
    let relay = relay(Some((uas_addr, None)), Arc::new(NoHook), |_| {}).await;
    let r = relay.tcp_addrs()[0];

    let mut uac = TcpStream::connect(r).await.unwrap();
    let mut uac_pending = Vec::new();
    // The UAC's Via names a port where nobody listens: only the connection can carry the answer.
    let req = register("TCP", "127.0.0.1:9", "z9hG4bKtcp1", "call-tcp-1", Some(70));
    write_all(&mut uac, req.as_bytes()).await;

    let (mut srv, _) = tokio::time::timeout(GUARD, uas.accept())
        .await
        .unwrap()
        .unwrap();
    let mut srv_pending = Vec::new();
    let fwd = text(&read_sip(&mut srv, &mut srv_pending).await);
    let (via_line, _) = relay_via(&fwd, "TCP", &r.to_string(), "ikt-cid=");
    assert_eq!(fwd, expected_request(&req, &via_line));

    let resp = response_to(&fwd, "401 Unauthorized", CHALLENGE);
    write_all(&mut srv, resp.as_bytes()).await;
    let back = text(&read_sip(&mut uac, &mut uac_pending).await);
    assert_eq!(back, without_line(&resp, &via_line));

    // A second transaction reuses both connections.
    let req2 = register("TCP", "127.0.0.1:9", "z9hG4bKtcp2", "call-tcp-2", Some(70));
    write_all(&mut uac, req2.as_bytes()).await;
    let fwd2 = text(&read_sip(&mut srv, &mut srv_pending).await);
    let (via_line2, _) = relay_via(&fwd2, "TCP", &r.to_string(), "ikt-cid=");
    assert_eq!(fwd2, expected_request(&req2, &via_line2));
    let resp2 = response_to(&fwd2, "200 OK", "");
    write_all(&mut srv, resp2.as_bytes()).await;
    assert_eq!(
        text(&read_sip(&mut uac, &mut uac_pending).await),
        without_line(&resp2, &via_line2)
    );

    let s = relay.stats();
    assert_eq!((s.tcp_accepted, s.tcp_connected), (1, 1), "{s:?}");
    assert_eq!(
        (
            s.forwarded_requests,
            s.forwarded_responses,
            s.dropped_total()
        ),
        (2, 2, 0)
    );
}

#[tokio::test]
async fn udp_in_tcp_out_and_back() {
    let uas = TcpListener::bind(localhost()).await.unwrap();
    let uas_addr = uas.local_addr().unwrap();
    let relay = relay(
        Some((uas_addr, Some(Transport::Tcp))),
        Arc::new(NoHook),
        |_| {},
    )
    .await;
    let uac = UdpPeer::new().await;
    let req = register(
        "UDP",
        &uac.addr.to_string(),
        "z9hG4bKmix",
        "call-mix",
        Some(70),
    );
    uac.send(req.as_bytes(), relay.udp_addrs()[0]).await;
    let (mut srv, _) = tokio::time::timeout(GUARD, uas.accept())
        .await
        .unwrap()
        .unwrap();
    let mut pending = Vec::new();
    let fwd = text(&read_sip(&mut srv, &mut pending).await);
    let (via_line, _) = relay_via(&fwd, "TCP", &relay.tcp_addrs()[0].to_string(), "");
    assert_eq!(fwd, expected_request(&req, &via_line));
    let resp = response_to(&fwd, "200 OK", "");
    write_all(&mut srv, resp.as_bytes()).await;
    assert_eq!(text(&uac.recv().await.0), without_line(&resp, &via_line));
}

#[tokio::test]
async fn dead_tcp_next_hop_does_not_block_other_traffic() {
    let dead = {
        let l = TcpListener::bind(localhost()).await.unwrap();
        l.local_addr().unwrap()
    };
    let live = UdpPeer::new().await;
    let relay = relay(Some((dead, Some(Transport::Tcp))), Arc::new(NoHook), |_| {}).await;
    let uac = UdpPeer::new().await;
    let r = relay.udp_addrs()[0];
    for i in 0..5 {
        let to_dead = register(
            "UDP",
            &uac.addr.to_string(),
            &format!("z9hG4bKtd{i}"),
            &format!("tdead-{i}"),
            Some(70),
        );
        uac.send(to_dead.as_bytes(), r).await;
        let base = register(
            "UDP",
            &uac.addr.to_string(),
            &format!("z9hG4bKtl{i}"),
            &format!("tlive-{i}"),
            Some(70),
        );
        let req = base.replacen(
            "From:",
            &format!("Route: <sip:{};lr;transport=udp>\r\nFrom:", live.addr),
            1,
        );
        uac.send(req.as_bytes(), r).await;
        assert!(text(&live.recv().await.0).contains(&format!("Call-ID: tlive-{i}\r\n")));
    }
    wait_stats(&relay, "refused connects counted", |s| {
        s.dropped(DropReason::SendError) == 5
    })
    .await;
    assert_eq!(relay.tcp_connections(), 0);
}

#[tokio::test]
async fn a_peer_that_stops_reading_fills_only_its_own_queue() {
    // The next hop accepts and then never reads.
    let stuck = TcpListener::bind(localhost()).await.unwrap();
    let stuck_addr = stuck.local_addr().unwrap();
    let hold_open = tokio::spawn(async move {
        let (s, _) = stuck.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(s);
    });
    let live = UdpPeer::new().await;
    let relay = relay(Some((stuck_addr, None)), Arc::new(NoHook), |c| {
        c.tcp_queue = 2
    })
    .await;
    let r = relay.tcp_addrs()[0];
    let mut uac = TcpStream::connect(r).await.unwrap();

    // Big requests until the kernel buffers toward the stuck peer and its queue are full.
    let body = "x".repeat(60_000);
    let mut sent = 0;
    while relay.stats().dropped(DropReason::QueueFull) == 0 {
        assert!(sent < 5_000, "queue never filled: {:?}", relay.stats());
        let req = register(
            "TCP",
            "127.0.0.1:9",
            &format!("z9hG4bKbig{sent}"),
            &format!("big-{sent}"),
            Some(70),
        )
        .replace(
            "Content-Length: 0\r\n\r\n",
            &format!(
                "Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        );
        write_all(&mut uac, req.as_bytes()).await;
        sent += 1;
        if sent % 20 == 0 {
            // Let the relay catch up so the loop ends soon after the first drop.
            wait_stats(&relay, "relay reading", |s| s.received_requests == sent).await;
        }
    }

    // Other traffic, on the same inbound connection, still flows to another hop.
    let base = register("TCP", "127.0.0.1:9", "z9hG4bKother", "other", Some(70));
    let req = base.replacen(
        "From:",
        &format!("Route: <sip:{};lr;transport=udp>\r\nFrom:", live.addr),
        1,
    );
    write_all(&mut uac, req.as_bytes()).await;
    let fwd = text(&live.recv().await.0);
    assert!(fwd.contains("Call-ID: other\r\n"), "{fwd}");
    hold_open.abort();
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let uas = UdpPeer::new().await;
    let relay = relay(
        Some((uas.addr, Some(Transport::Udp))),
        Arc::new(NoHook),
        |c| {
            c.tcp_idle_timeout = Duration::from_millis(200);
        },
    )
    .await;
    let mut uac = TcpStream::connect(relay.tcp_addrs()[0]).await.unwrap();
    let req = register("TCP", "127.0.0.1:9", "z9hG4bKidle", "idle", Some(70));
    write_all(&mut uac, req.as_bytes()).await;
    assert!(text(&uas.recv().await.0).contains("Call-ID: idle"));
    let s = wait_stats(&relay, "idle close", |s| s.tcp_idle_closed == 1).await;
    assert_eq!(s.tcp_closed, 1);
    // The relay closed its side: the client reads EOF.
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(GUARD, tokio::io::AsyncReadExt::read(&mut uac, &mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn response_falls_back_to_the_via_address_when_the_request_connection_is_gone() {
    let uas = TcpListener::bind(localhost()).await.unwrap();
    let uas_addr = uas.local_addr().unwrap();
    // Where the UAC's Via says it listens.
    let uac_listener = TcpListener::bind(localhost()).await.unwrap();
    let uac_addr = uac_listener.local_addr().unwrap();
    let relay = relay(Some((uas_addr, None)), Arc::new(NoHook), |_| {}).await;
    let r = relay.tcp_addrs()[0];

    let mut uac = TcpStream::connect(r).await.unwrap();
    let req = register(
        "TCP",
        &uac_addr.to_string(),
        "z9hG4bKgone",
        "call-gone",
        Some(70),
    );
    write_all(&mut uac, req.as_bytes()).await;
    let (mut srv, _) = tokio::time::timeout(GUARD, uas.accept())
        .await
        .unwrap()
        .unwrap();
    let mut pending = Vec::new();
    let fwd = text(&read_sip(&mut srv, &mut pending).await);
    let (via_line, _) = relay_via(&fwd, "TCP", &r.to_string(), "ikt-cid=");

    drop(uac);
    wait_stats(&relay, "request connection closed", |s| s.tcp_closed == 1).await;
    let resp = response_to(&fwd, "200 OK", "");
    write_all(&mut srv, resp.as_bytes()).await;
    let (mut back_conn, _) = tokio::time::timeout(GUARD, uac_listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut pending = Vec::new();
    let back = text(&read_sip(&mut back_conn, &mut pending).await);
    assert_eq!(back, without_line(&resp, &via_line));
}
