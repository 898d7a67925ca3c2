//! Scenarios shared by the gRPC and QUIC tests.

use std::net::SocketAddr;
use std::sync::Arc;

use ikt_certs::Ca;
use ikt_transport::{KeySender, PeerTable, RefusalReason, Status, TlsHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

use crate::support::*;

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

pub async fn delivery_with_ack(kind: Kind) {
    let ca = Ca::new("test ca", 2).expect("ca");
    let (rh, rx) = serve(
        kind,
        receiver_config(any_port()),
        tls(&leaf(&ca, P), &ca, &[S]),
    )
    .await;
    let agent = Agent::default();
    agent.run(rx);
    let sender = connect(
        kind,
        sender_config(rh.local_addr()),
        tls(&leaf(&ca, S), &ca, &[P]),
    );

    let mut handles = Vec::new();
    for i in 0..200 {
        let h = timeout(GUARD, sender.send_wait(bundle(&format!("n{i}"))))
            .await
            .expect("guard")
            .expect("send");
        handles.push(h);
    }
    let mut seqs = Vec::new();
    for h in handles {
        let seq = h.seq();
        let ack = timeout(GUARD, h).await.expect("guard").expect("ack");
        assert_eq!(ack.seq, seq);
        assert_eq!(ack.status, Status::Stored, "{ack:?}");
        seqs.push(seq);
    }
    seqs.dedup();
    assert_eq!(seqs.len(), 200, "sequence numbers are unique");

    let h = sender.health();
    assert!(h.up, "{h:?}");
    assert_eq!((h.delivered, h.in_flight, h.refused), (200, 0, 0), "{h:?}");
    let rhh = rh.health();
    let from_s = rhh.iter().find(|h| h.peer == S).expect("peer health");
    assert!(from_s.up, "{from_s:?}");
    assert_eq!(from_s.delivered, 200);
    assert_eq!(
        agent.store.lock().expect("store").get("n7").cloned(),
        Some(vec![0xc1; 16])
    );
    assert_eq!(rh.refusals().total(), 0);
}

pub async fn refused_and_counted(kind: Kind) {
    let ca = Ca::new("test ca", 2).expect("ca");
    let other = Ca::new("other ca", 2).expect("ca");
    let (rh, rx) = serve(
        kind,
        receiver_config(any_port()),
        tls(&leaf(&ca, P), &ca, &[S]),
    )
    .await;
    let agent = Agent::default();
    agent.run(rx);
    let addr = rh.local_addr();

    let cases = [
        (
            "client certificate from another CA",
            tls(&leaf(&other, S), &ca, &[P]),
            RefusalReason::UnknownCa,
        ),
        (
            "valid certificate, SAN not in peer list",
            tls(&leaf(&ca, "intruder-1"), &ca, &[P]),
            RefusalReason::UnknownPeer,
        ),
        (
            "expired client certificate",
            tls(&expired_leaf(&ca, S), &ca, &[P]),
            RefusalReason::Expired,
        ),
    ];
    for (what, client, reason) in cases {
        let sender = connect(kind, sender_config(addr), client);
        let _pending = sender
            .send(bundle(&format!("refused-{}", reason.as_str())))
            .expect("queued");
        wait_for(what, || rh.refusals().get(reason) >= 1).await;
        wait_for("sender reports the error", || {
            sender.health().last_error.is_some()
        })
        .await;
        let h = sender.health();
        assert!(!h.up && h.delivered == 0, "{what}: {h:?}");
    }

    // No client certificate at all.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert_der().to_vec().into()).expect("root");
    let mut no_auth = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("tls13")
        .with_root_certificates(roots)
        .with_no_client_auth();
    match kind {
        Kind::Grpc => {
            no_auth.alpn_protocols = vec![b"h2".to_vec()];
            let sock = tokio::net::TcpStream::connect(addr).await.expect("tcp");
            let name = rustls_pki_types::ServerName::try_from(P).expect("name");
            let conn = tokio_rustls::TlsConnector::from(Arc::new(no_auth));
            // The client side may complete; the server refuses when it finds no certificate.
            if let Ok(Ok(mut tls)) = timeout(GUARD, conn.connect(name, sock)).await {
                let _ = tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
                let mut buf = [0u8; 64];
                let _ = timeout(GUARD, tls.read(&mut buf)).await;
            }
        }
        Kind::Quic(_) => {
            no_auth.alpn_protocols = vec![ikt_transport::quic::ALPN.to_vec()];
            let crypto =
                quinn::crypto::rustls::QuicClientConfig::try_from(Arc::new(no_auth)).expect("quic");
            let ep = quinn::Endpoint::client(any_port()).expect("endpoint");
            let r = ep
                .connect_with(quinn::ClientConfig::new(Arc::new(crypto)), addr, P)
                .expect("connect");
            if let Ok(Ok(c)) = timeout(GUARD, r).await {
                let _ = timeout(GUARD, c.closed()).await;
            }
        }
    }
    wait_for("no-certificate refusal", || {
        rh.refusals().get(RefusalReason::NoCertificate) >= 1
    })
    .await;

    // The receiver still serves the legitimate peer, and nothing refused reached the agent.
    let sender = connect(kind, sender_config(addr), tls(&leaf(&ca, S), &ca, &[P]));
    let ack = timeout(GUARD, sender.send(bundle("legit")).expect("send"))
        .await
        .expect("guard")
        .expect("ack");
    assert_eq!(ack.status, Status::Stored);
    assert_eq!(agent.seen_nonces(), vec!["legit".to_owned()]);
}

pub async fn plain_tcp_refused(kind: Kind) {
    let ca = Ca::new("test ca", 2).expect("ca");
    let (rh, rx) = serve(
        kind,
        receiver_config(any_port()),
        tls(&leaf(&ca, P), &ca, &[S]),
    )
    .await;
    Agent::default().run(rx);
    let mut sock = tokio::net::TcpStream::connect(rh.local_addr())
        .await
        .expect("tcp");
    // What a plaintext gRPC client would send first.
    sock.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 256];
    let _ = timeout(GUARD, sock.read(&mut buf))
        .await
        .expect("server closes");
    wait_for("plain TCP refusal", || {
        rh.refusals().get(RefusalReason::NotTls) >= 1
    })
    .await;
    // Still serving.
    let sender = connect(
        kind,
        sender_config(rh.local_addr()),
        tls(&leaf(&ca, S), &ca, &[P]),
    );
    let ack = timeout(GUARD, sender.send(bundle("after-plain")).expect("send"))
        .await
        .expect("guard")
        .expect("ack");
    assert_eq!(ack.status, Status::Stored);
}

pub async fn plain_udp_garbage(kind: Kind) {
    let ca = Ca::new("test ca", 2).expect("ca");
    let (rh, rx) = serve(
        kind,
        receiver_config(any_port()),
        tls(&leaf(&ca, P), &ca, &[S]),
    )
    .await;
    let agent = Agent::default();
    agent.run(rx);
    let sock = tokio::net::UdpSocket::bind(any_port()).await.expect("udp");
    let mut long = vec![0u8; 1200];
    getrandom::fill(&mut long).expect("random");
    // Looks like a QUIC v1 Initial, then random bytes: must be dropped, not crash anything.
    long[0] = 0xc3;
    long[1..5].copy_from_slice(&1u32.to_be_bytes());
    for pkt in [
        &b"hello"[..],
        &[0u8; 40][..],
        &long[..],
        &[0x40, 1, 2, 3][..],
    ] {
        sock.send_to(pkt, rh.local_addr()).await.expect("send");
    }
    let sender = connect(
        kind,
        sender_config(rh.local_addr()),
        tls(&leaf(&ca, S), &ca, &[P]),
    );
    let ack = timeout(GUARD, sender.send(bundle("after-garbage")).expect("send"))
        .await
        .expect("guard")
        .expect("ack");
    assert_eq!(ack.status, Status::Stored);
    assert_eq!(agent.seen_nonces(), vec!["after-garbage".to_owned()]);
    let from_s = rh
        .health()
        .into_iter()
        .find(|h| h.peer == S)
        .expect("health");
    assert_eq!(
        from_s.connects, 1,
        "garbage produced no connection: {from_s:?}"
    );
}

pub async fn receiver_restart(kind: Kind) {
    let ca = Ca::new("test ca", 2).expect("ca");
    let server_tls = tls(&leaf(&ca, P), &ca, &[S]);
    let (rh, rx) = serve(kind, receiver_config(any_port()), server_tls.clone()).await;
    let addr = rh.local_addr();
    let agent = Agent::default();
    agent.run(rx);
    let sender = connect(kind, sender_config(addr), tls(&leaf(&ca, S), &ca, &[P]));

    // 1. Acknowledged before the restart.
    let mut acked = Vec::new();
    for i in 0..20 {
        acked.push(
            sender
                .send_wait(bundle(&format!("a{i}")))
                .await
                .expect("send"),
        );
    }
    for h in acked {
        assert_eq!(
            timeout(GUARD, h).await.expect("guard").expect("ack").status,
            Status::Stored
        );
    }
    // 2. Stored by the agent but not acknowledged when the receiver goes down.
    let mut unacked = Vec::new();
    for i in 0..10 {
        unacked.push(
            sender
                .send_wait(bundle(&format!("hold-{i}")))
                .await
                .expect("send"),
        );
    }
    wait_for("held bundles reach the agent", || {
        agent
            .seen_nonces()
            .iter()
            .filter(|n| n.starts_with("hold-"))
            .count()
            == 10
    })
    .await;
    rh.shutdown().await;
    wait_for("sender notices", || !sender.health().up).await;
    // 3. Sent while the receiver is down: queued in the window.
    let mut queued = Vec::new();
    for i in 0..10 {
        queued.push(sender.send(bundle(&format!("c{i}"))).expect("queued"));
    }
    agent.seen.lock().expect("seen").clear();

    let (rh2, rx2) = serve_again(kind, addr, server_tls).await;
    agent.run(rx2);
    for h in unacked {
        let ack = timeout(GUARD, h).await.expect("guard").expect("ack");
        // Redelivered and recognised by the agent's store.
        assert_eq!(ack.status, Status::Duplicate, "{ack:?}");
    }
    for h in queued {
        assert_eq!(
            timeout(GUARD, h).await.expect("guard").expect("ack").status,
            Status::Stored
        );
    }
    let seen = agent.seen_nonces();
    assert!(
        seen.iter().all(|n| !n.starts_with('a')),
        "acked bundles are not resent: {seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|n| n.starts_with("hold-")).count(),
        10,
        "{seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|n| n.starts_with('c')).count(),
        10,
        "{seen:?}"
    );
    let store = agent.store.lock().expect("store");
    assert_eq!(store.len(), 40, "nothing lost");
    drop(store);
    let h = sender.health();
    assert!(
        h.connects >= 2 && h.resent >= 10 && h.in_flight == 0,
        "{h:?}"
    );
    assert!(h.up);
    drop(rh2);
}

pub async fn rotation(kind: Kind) {
    let dir = TempDir::new("rotation");
    let (sdir, cdir) = (dir.path().join("p"), dir.path().join("s"));
    std::fs::create_dir_all(&sdir).expect("mkdir");
    std::fs::create_dir_all(&cdir).expect("mkdir");
    let ca1 = Ca::new("ca one", 2).expect("ca");
    let ca2 = Ca::new("ca two", 2).expect("ca");
    let server_tls = TlsHandle::new(
        provider(),
        write_files(&sdir, &leaf(&ca1, P), &ca1),
        PeerTable::new([S]).expect("peers"),
    )
    .expect("server tls");
    let client_tls = TlsHandle::new(
        provider(),
        write_files(&cdir, &leaf(&ca1, S), &ca1),
        PeerTable::new([P]).expect("peers"),
    )
    .expect("client tls");
    let (rh, rx) = serve(kind, receiver_config(any_port()), server_tls.clone()).await;
    let addr = rh.local_addr();
    Agent::default().run(rx);
    let first = connect(kind, sender_config(addr), client_tls.clone());
    let ack = timeout(GUARD, first.send(bundle("r1")).expect("send"))
        .await
        .expect("guard")
        .expect("ack");
    assert_eq!(ack.status, Status::Stored);

    // Rotate both sides to a new CA and new leaves; no restart.
    write_files(&sdir, &leaf(&ca2, P), &ca2);
    server_tls.reload().expect("server reload");
    write_files(&cdir, &leaf(&ca2, S), &ca2);
    client_tls.reload().expect("client reload");

    // The established connection carries on.
    let ack = timeout(GUARD, first.send(bundle("r2")).expect("send"))
        .await
        .expect("guard")
        .expect("ack");
    assert_eq!(ack.status, Status::Stored);
    // A new connection handshakes with the new material on both sides.
    let second = connect(kind, sender_config(addr), client_tls.clone());
    let ack = timeout(GUARD, second.send(bundle("r3")).expect("send"))
        .await
        .expect("guard")
        .expect("ack");
    assert_eq!(ack.status, Status::Stored);
    // A client still presenting a CA-one certificate is now refused by the server.
    let before = rh.refusals().get(RefusalReason::UnknownCa);
    let stale = connect(kind, sender_config(addr), tls(&leaf(&ca1, S), &ca2, &[P]));
    let _pending = stale.send(bundle("stale")).expect("queued");
    wait_for("old-CA client refused", || {
        rh.refusals().get(RefusalReason::UnknownCa) > before
    })
    .await;
    drop(stale);

    // A broken file does not replace working material.
    std::fs::write(sdir.join("ca.pem"), "not a certificate").expect("write");
    assert!(server_tls.reload().is_err());
    let third = connect(kind, sender_config(addr), client_tls.clone());
    let ack = timeout(GUARD, third.send(bundle("r4")).expect("send"))
        .await
        .expect("guard")
        .expect("ack");
    assert_eq!(ack.status, Status::Stored);
}

pub async fn window_and_reject(kind: Kind) {
    let ca = Ca::new("test ca", 2).expect("ca");
    let (rh, rx) = serve(
        kind,
        receiver_config(any_port()),
        tls(&leaf(&ca, P), &ca, &[S]),
    )
    .await;
    Agent::default().run(rx);
    let client = tls(&leaf(&ca, S), &ca, &[P]);

    // The window bounds unacknowledged bundles: the agent holds these, so the 5th is refused.
    let mut cfg = sender_config(rh.local_addr());
    cfg.window = 4;
    let small = connect(kind, cfg, client.clone());
    let mut held = Vec::new();
    for i in 0..4 {
        held.push(
            small
                .send(bundle(&format!("hold-w{i}")))
                .expect("within window"),
        );
    }
    assert!(matches!(
        small.send(bundle("hold-w4")),
        Err(ikt_transport::Error::WindowFull(4))
    ));
    assert_eq!(small.health().in_flight, 4);

    // Oversized bundles are refused before they reach the network.
    let mut big = bundle("big");
    big.impu = "x".repeat(5000);
    assert!(matches!(
        small.send(big),
        Err(ikt_transport::Error::TooLarge { .. })
    ));

    // Different keys for a known nonce: the agent rejects, the sender counts it.
    let sender = connect(kind, sender_config(rh.local_addr()), client);
    let ack = timeout(GUARD, sender.send(bundle("same")).expect("send"))
        .await
        .expect("guard")
        .expect("ack");
    assert_eq!(ack.status, Status::Stored);
    let mut other = bundle("same");
    other.ck = vec![0xee; 16];
    let ack = timeout(GUARD, sender.send(other).expect("send"))
        .await
        .expect("guard")
        .expect("ack");
    assert_eq!(ack.status, Status::Rejected);
    assert_eq!(ack.reason, "different keys");
    assert!(!ack.is_delivered());
    assert_eq!(sender.health().refused, 1);
}

pub async fn peer_table_change(kind: Kind) {
    let ca = Ca::new("test ca", 2).expect("ca");
    let server_tls = tls(&leaf(&ca, P), &ca, &[S]);
    let (rh, rx) = serve(kind, receiver_config(any_port()), server_tls.clone()).await;
    Agent::default().run(rx);
    let client = tls(&leaf(&ca, S), &ca, &[P]);
    let first = connect(kind, sender_config(rh.local_addr()), client.clone());
    let ack = timeout(GUARD, first.send(bundle("t1")).expect("send"))
        .await
        .expect("guard")
        .expect("ack");
    assert_eq!(ack.status, Status::Stored);
    // S is removed from the table (SIGHUP): its new connections are refused as unknown peers.
    server_tls.peers().set(["scscf-2"]).expect("set");
    let before = rh.refusals().get(RefusalReason::UnknownPeer);
    let second = connect(kind, sender_config(rh.local_addr()), client);
    let _pending = second.send(bundle("t2")).expect("queued");
    wait_for("removed peer refused", || {
        rh.refusals().get(RefusalReason::UnknownPeer) > before
    })
    .await;
    assert!(!second.health().up);
    assert!(
        PeerTable::new(["localhost"]).is_err(),
        "every dev cert carries localhost"
    );
    assert!(PeerTable::new(["not a name"]).is_err());
}

/// An authenticated peer that sends hostile frames gets its stream closed; nothing panics and
/// the receiver keeps serving.
pub async fn hostile_frames_from_authenticated_peer(kind: Kind) {
    let ca = Ca::new("test ca", 2).expect("ca");
    let (rh, rx) = serve(
        kind,
        receiver_config(any_port()),
        tls(&leaf(&ca, P), &ca, &[S]),
    )
    .await;
    let agent = Agent::default();
    agent.run(rx);
    let addr = rh.local_addr();
    let client = tls(&leaf(&ca, S), &ca, &[P]);
    match kind {
        Kind::Quic(_) => {
            let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(
                client
                    .client_config(&[ikt_transport::quic::ALPN])
                    .expect("config"),
            )
            .expect("quic");
            let ep = quinn::Endpoint::client(any_port()).expect("endpoint");
            let conn = timeout(
                GUARD,
                ep.connect_with(quinn::ClientConfig::new(Arc::new(crypto)), addr, P)
                    .expect("connect"),
            )
            .await
            .expect("guard")
            .expect("handshake");
            let hostile: [&[u8]; 3] = [
                &[0x80, 0x80, 0x80, 0x80, 0x04], // claims 1 GiB
                &[0x04, 0xff, 0xff, 0xff, 0xff], // not protobuf
                &[
                    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                ], // endless varint
            ];
            for frame in hostile {
                let (mut send, mut recv) = conn.open_bi().await.expect("open");
                send.write_all(frame).await.expect("write");
                let _ = send.finish();
                // The receiver stops the stream or ends it; either way reading ends.
                let _ = timeout(GUARD, recv.read_to_end(1024)).await.expect("guard");
            }
            let mut uni = conn.open_uni().await.expect("uni");
            uni.write_all(&[0x80, 0x80, 0x80, 0x80, 0x04])
                .await
                .expect("write");
            let _ = uni.finish();
        }
        Kind::Grpc => {
            // A raw tonic client over our TLS that skips the sender's size check.
            let c = client.clone();
            let connector = tower::service_fn(move |_: tonic::codegen::http::Uri| {
                let c = c.clone();
                async move {
                    let sock = tokio::net::TcpStream::connect(addr).await?;
                    let name = rustls_pki_types::ServerName::try_from(P).expect("name");
                    let tls =
                        tokio_rustls::TlsConnector::from(c.client_config(&[b"h2"]).expect("cfg"))
                            .connect(name, sock)
                            .await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
                }
            });
            let channel = tonic::transport::Endpoint::from_static("http://ikt.invalid")
                .connect_with_connector(connector)
                .await
                .expect("channel");
            let mut raw = ikt_proto::v1::key_transport_client::KeyTransportClient::new(channel);
            let mut big = bundle("too-big");
            big.impu = "x".repeat(10_000);
            let stream = tokio_stream::iter(vec![big]);
            let r = timeout(GUARD, async {
                let mut acks = raw.deliver(stream).await?.into_inner();
                acks.message().await
            })
            .await
            .expect("guard");
            assert!(
                r.is_err() || matches!(r, Ok(None)),
                "oversized message must not be acked: {r:?}"
            );
        }
    }
    let sender = connect(kind, sender_config(addr), client);
    let ack = timeout(GUARD, sender.send(bundle("fine")).expect("send"))
        .await
        .expect("guard")
        .expect("ack");
    assert_eq!(ack.status, Status::Stored);
    assert_eq!(agent.seen_nonces(), vec!["fine".to_owned()]);
}

/// Runs a delivery with every log at TRACE captured and checks no key byte form appears.
pub fn no_key_material_in_logs(kind: Kind) {
    let logs = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || LogSink(sink.clone()))
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Single-threaded so every task logs through this thread's subscriber.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let ca = Ca::new("test ca", 2).expect("ca");
        let (rh, rx) = serve(
            kind,
            receiver_config(any_port()),
            tls(&leaf(&ca, P), &ca, &[S]),
        )
        .await;
        let agent = Agent::default();
        agent.run(rx);
        let sender = connect(
            kind,
            sender_config(rh.local_addr()),
            tls(&leaf(&ca, S), &ca, &[P]),
        );
        let mut b = bundle("logged");
        b.ck = (0xa0..0xb0).collect();
        b.ik = (0xd0..0xe0).collect();
        tracing::debug!(bundle = ?b, "test logs a bundle with Debug");
        let ack = timeout(GUARD, sender.send(b).expect("send"))
            .await
            .expect("guard")
            .expect("ack");
        assert_eq!(ack.status, Status::Stored);
        // Refused handshake and reconnect paths log too.
        let bad = connect(
            kind,
            sender_config(rh.local_addr()),
            tls(&leaf(&ca, "intruder-1"), &ca, &[P]),
        );
        let _pending = bad.send(bundle("refused")).expect("queued");
        wait_for("refusal", || rh.refusals().total() >= 1).await;
    });
    drop(rt);
    let text = String::from_utf8_lossy(&logs.lock().expect("logs")).to_string();
    assert!(
        text.contains("redacted"),
        "the bundle was logged (redacted)"
    );
    let ck: Vec<u8> = (0xa0..0xb0).collect();
    let ik: Vec<u8> = (0xd0..0xe0).collect();
    for key in [ck, ik] {
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let dec = format!("{:?}", &key[..4]).trim_end_matches(']').to_owned();
        for needle in [hex.clone(), hex.to_uppercase(), hex[..8].to_owned(), dec] {
            assert!(!text.contains(&needle), "log leaks key material ({needle})");
        }
    }
}

struct LogSink(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
