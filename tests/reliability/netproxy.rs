//! A tiny TCP or UDP proxy put on the out-of-band link between the agents, which the test can
//! cut (drop everything, close connections), restore, or slow down (delay what flows back from
//! the receiver, i.e. the acks).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Mutex, watch};

struct Ctl {
    cut: AtomicBool,
    /// Delay of the receiver → sender direction, milliseconds.
    delay_ms: AtomicU64,
    /// Bumped on every cut so live connections notice and close.
    epoch: watch::Sender<u64>,
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    /// Where the sender should connect.
    pub addr: SocketAddr,
    ctl: Arc<Ctl>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Cuts the link: live connections close, new ones and datagrams are dropped.
    pub fn cut(&self) {
        self.ctl.cut.store(true, Ordering::SeqCst);
        self.ctl.epoch.send_modify(|e| *e += 1);
    }

    /// Restores the link.
    pub fn restore(&self) {
        self.ctl.cut.store(false, Ordering::SeqCst);
    }

    /// Delays everything the receiver sends back (acks) by `d`.
    pub fn delay_acks(&self, d: Duration) {
        self.ctl
            .delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    fn ctl() -> Arc<Ctl> {
        Arc::new(Ctl {
            cut: AtomicBool::new(false),
            delay_ms: AtomicU64::new(0),
            epoch: watch::channel(0).0,
        })
    }

    /// A TCP proxy toward `target` (gRPC).
    pub async fn tcp(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ctl = Self::ctl();
        let c = ctl.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((down, _)) = listener.accept().await else {
                    return;
                };
                if c.cut.load(Ordering::SeqCst) {
                    drop(down);
                    continue;
                }
                let c = c.clone();
                tokio::spawn(async move {
                    let Ok(up) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = down.set_nodelay(true);
                    let _ = up.set_nodelay(true);
                    let mut epoch = c.epoch.subscribe();
                    let (dr, dw) = down.into_split();
                    let (ur, uw) = up.into_split();
                    let forward = pump(dr, uw, c.clone(), false);
                    let back = pump(ur, dw, c.clone(), true);
                    tokio::select! {
                        _ = forward => {}
                        _ = back => {}
                        _ = epoch.changed() => {}
                    }
                });
            }
        });
        Proxy { addr, ctl, task }
    }

    /// A UDP proxy toward `target` (QUIC): one upstream socket per client address.
    pub async fn udp(target: SocketAddr) -> Proxy {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = front.local_addr().unwrap();
        let ctl = Self::ctl();
        let c = ctl.clone();
        let task = tokio::spawn(async move {
            let clients: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
            let mut buf = vec![0u8; 65_536];
            loop {
                let Ok((n, from)) = front.recv_from(&mut buf).await else {
                    return;
                };
                if c.cut.load(Ordering::SeqCst) {
                    continue;
                }
                let up = {
                    let mut map = clients.lock().await;
                    match map.get(&from) {
                        Some(s) => s.clone(),
                        None => {
                            let s = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                            map.insert(from, s.clone());
                            let (s2, front2, c2) = (s.clone(), front.clone(), c.clone());
                            tokio::spawn(async move {
                                let mut b = vec![0u8; 65_536];
                                while let Ok((n, _)) = s2.recv_from(&mut b).await {
                                    if c2.cut.load(Ordering::SeqCst) {
                                        continue;
                                    }
                                    let d = c2.delay_ms.load(Ordering::SeqCst);
                                    if d > 0 {
                                        let (f, data, to) = (front2.clone(), b[..n].to_vec(), from);
                                        tokio::spawn(async move {
                                            tokio::time::sleep(Duration::from_millis(d)).await;
                                            let _ = f.send_to(&data, to).await;
                                        });
                                    } else {
                                        let _ = front2.send_to(&b[..n], from).await;
                                    }
                                }
                            });
                            s
                        }
                    }
                };
                let _ = up.send_to(&buf[..n], target).await;
            }
        });
        Proxy { addr, ctl, task }
    }
}

/// Copies `r` to `w`. In the delayed direction every chunk leaves `delay` after it arrived
/// (constant latency, in order), as on a slow path; delays do not add up across chunks.
async fn pump(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    c: Arc<Ctl>,
    delayed: bool,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = async move {
        while let Some((due, data)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if w.write_all(&data).await.is_err() {
                return;
            }
        }
    };
    let c2 = c.clone();
    let reader = async move {
        let mut buf = vec![0u8; 16_384];
        loop {
            let n = match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if c2.cut.load(Ordering::SeqCst) {
                return;
            }
            let d = if delayed {
                c2.delay_ms.load(Ordering::SeqCst)
            } else {
                0
            };
            let due = tokio::time::Instant::now() + Duration::from_millis(d);
            if tx.send((due, buf[..n].to_vec())).is_err() {
                return;
            }
        }
    };
    // Either side ending ends the pump (the writer drains what is queued first).
    tokio::select! {
        () = reader => {}
        () = writer => {}
    }
}
