//! A silently cut link (packets vanish, no RST, no FIN): the sender must notice, report the peer
//! down (so the agent's fallback applies), and deliver the bundle once the link is back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ikt_certs::Ca;
use ikt_transport::{KeySender, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::time::timeout;

use crate::support::*;

/// When set, the proxy swallows every byte or datagram in both directions.
#[derive(Clone, Default)]
pub struct Cut(Arc<AtomicBool>);

impl Cut {
    fn on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    fn set(&self, v: bool) {
        self.0.store(v, Ordering::Relaxed);
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    cut: Cut,
) {
    let mut buf = vec![0u8; 16384];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            return;
        }
        if !cut.on() && to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A TCP proxy to `target` whose connections can be cut silently.
async fn tcp_proxy(target: SocketAddr, cut: Cut) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = l.accept().await {
            let Ok(server) = TcpStream::connect(target).await else {
                continue;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pipe(cr, sw, cut.clone()));
            tokio::spawn(pipe(sr, cw, cut.clone()));
        }
    });
    addr
}

/// A UDP proxy to `target` (one client) that can drop every datagram.
async fn udp_proxy(target: SocketAddr, cut: Cut) -> SocketAddr {
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    back.connect(target).await.unwrap();
    let addr = front.local_addr().unwrap();
    let client: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
    let (f, b, c, k) = (front.clone(), back.clone(), client.clone(), cut.clone());
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        while let Ok((n, from)) = f.recv_from(&mut buf).await {
            *c.lock().unwrap() = Some(from);
            if !k.on() {
                let _ = b.send(&buf[..n]).await;
            }
        }
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        while let Ok(n) = back.recv(&mut buf).await {
            let to = *client.lock().unwrap();
            if let (Some(to), false) = (to, cut.on()) {
                let _ = front.send_to(&buf[..n], to).await;
            }
        }
    });
    addr
}

pub async fn silent_cut_is_noticed_and_healed(kind: Kind) {
    let ca = Ca::new("test ca", 2).expect("ca");
    let (rh, rx) = serve(
        kind,
        receiver_config("127.0.0.1:0".parse().unwrap()),
        tls(&leaf(&ca, P), &ca, &[S]),
    )
    .await;
    let agent = Agent::default();
    agent.run(rx);
    let cut = Cut::default();
    let via = match kind {
        Kind::Grpc => tcp_proxy(rh.local_addr(), cut.clone()).await,
        Kind::Quic(_) => udp_proxy(rh.local_addr(), cut.clone()).await,
    };
    let mut cfg = sender_config(via);
    cfg.ack_timeout = Duration::from_millis(500);
    let sender = connect(kind, cfg, tls(&leaf(&ca, S), &ca, &[P]));
    let first = timeout(GUARD, sender.send_wait(bundle("before")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        timeout(GUARD, first).await.unwrap().unwrap().status,
        Status::Stored
    );
    assert!(sender.health().up);

    cut.set(true);
    let during = sender.send(bundle("during")).expect("queued");
    wait_for("the sender to notice the cut", || !sender.health().up).await;
    let h = sender.health();
    assert!(h.last_error.is_some(), "{h:?}");

    cut.set(false);
    let ack = timeout(GUARD, during)
        .await
        .expect("guard")
        .expect("delivered after healing");
    assert!(ack.is_delivered(), "{ack:?}");
    wait_for("the sender to be up again", || sender.health().up).await;
    assert!(sender.health().connects >= 2);
    assert!(agent.seen_nonces().contains(&"during".to_string()));
}
