//! `relay_udp_hop`: one REGISTER/200 round trip through the relay over UDP on loopback.
//!
//! client socket -> relay -> echo server (answers 200 with the Vias it got) -> relay -> client.
//! The relay runs on its own current-thread runtime and thread, as the bare `sip-relay` does;
//! the echo server is a plain blocking thread. The figure includes four loopback datagrams, so
//! compare it with the same loop without the relay (`direct`) to see the hop's own cost.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ikt_relay::{Config, NextHop, NoHook, Relay, response};

fn echo_server() -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                return;
            };
            let Ok(req) = ikt_sip::scan(&buf[..n]) else {
                continue;
            };
            let ok = response::response_to(&req, 200, "OK", &[]);
            let _ = sock.send_to(&ok, from);
        }
    });
    addr
}

fn start_relay(next: SocketAddr) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let config = Config {
                udp_listen: vec!["127.0.0.1:0".parse().unwrap()],
                next_hop: Some(NextHop {
                    addr: next,
                    transport: None,
                }),
                ..Config::default()
            };
            let relay = Relay::start(config, Arc::new(NoHook)).await.unwrap();
            tx.send(relay.udp_addrs()[0]).unwrap();
            relay.wait().await;
        });
    });
    rx.recv().unwrap()
}

fn register(port: u16) -> Vec<u8> {
    format!(
        "REGISTER sip:ims.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKbench1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@ims.example.com>;tag=4fa3\r\n\
         To: <sip:alice@ims.example.com>\r\n\
         Call-ID: bench-call\r\n\
         CSeq: 1 REGISTER\r\n\
         Authorization: Digest username=\"alice@ims.example.com\", realm=\"ims.example.com\", nonce=\"\", uri=\"sip:ims.example.com\", response=\"\"\r\n\
         Contact: <sip:alice@127.0.0.1:{port}>;expires=600000\r\n\
         Supported: path\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Requests in flight at once in the pipelined case (well within the socket buffers).
const WINDOW: usize = 32;

fn round_trips(c: &mut Criterion) {
    let echo = echo_server();
    let relay = start_relay(echo);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let req = register(client.local_addr().unwrap().port());
    let mut buf = vec![0u8; 65536];

    let mut group = c.benchmark_group("relay_udp_hop");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("register_200_round_trip", |b| {
        b.iter(|| {
            client.send_to(&req, relay).unwrap();
            let (n, _) = client
                .recv_from(&mut buf)
                .expect("response through the relay");
            assert!(buf[..n].starts_with(b"SIP/2.0 200 OK"));
        })
    });
    group.bench_function("direct_without_relay", |b| {
        b.iter(|| {
            client.send_to(&req, echo).unwrap();
            let (n, _) = client
                .recv_from(&mut buf)
                .expect("response from the echo server");
            assert!(buf[..n].starts_with(b"SIP/2.0 200 OK"));
        })
    });
    group.throughput(Throughput::Elements(WINDOW as u64));
    group.bench_function("pipelined_window_32", |b| {
        b.iter(|| {
            for _ in 0..WINDOW {
                client.send_to(&req, relay).unwrap();
            }
            for _ in 0..WINDOW {
                let (n, _) = client
                    .recv_from(&mut buf)
                    .expect("response through the relay");
                assert!(buf[..n].starts_with(b"SIP/2.0 200 OK"));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, round_trips);
criterion_main!(benches);
