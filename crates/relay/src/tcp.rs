//! TCP: accepted and opened connections, one bounded send queue each, Content-Length framing.
//!
//! Each connection has a reader task (framing, then the whole proxy path inline, as UDP does) and
//! a writer task draining the connection's bounded queue. A peer that stops reading fills only its
//! own queue; further messages to it are dropped and counted while everything else flows.
//! Connections are reused per peer address, and a response goes back on the connection its
//! request came on (named by the `ikt-cid` parameter of our Via).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ikt_sip::Framer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::debug;

use crate::config::{Config, Transport};
use crate::hook::ConnId;
use crate::proxy::{Core, Origin};
use crate::stats::DropReason;

struct Entry {
    tx: mpsc::Sender<Vec<u8>>,
    peer: SocketAddr,
}

#[derive(Default)]
struct Table {
    by_id: HashMap<ConnId, Entry>,
    by_addr: HashMap<SocketAddr, ConnId>,
}

/// The connection table of one relay.
pub(crate) struct TcpConns {
    table: Mutex<Table>,
    next_id: AtomicU64,
    queue: usize,
    idle: Duration,
    connect_timeout: Duration,
    max: usize,
}

/// Milliseconds since `base`, for a cheap shared "last activity" stamp.
fn stamp(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl TcpConns {
    pub(crate) fn new(config: &Config) -> TcpConns {
        TcpConns {
            table: Mutex::new(Table::default()),
            next_id: AtomicU64::new(1),
            queue: config.tcp_queue,
            idle: config.tcp_idle_timeout,
            connect_timeout: config.tcp_connect_timeout,
            max: config.max_tcp_connections,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while holding this lock cannot leave the maps inconsistent in a way that
        // matters more than losing the whole relay, so keep going with the inner value.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn contains(&self, id: ConnId) -> bool {
        self.lock().by_id.contains_key(&id)
    }

    /// Number of open (or opening) connections.
    pub(crate) fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Queues `bytes` on connection `id` without waiting.
    pub(crate) fn send_on(&self, id: ConnId, bytes: Vec<u8>) -> Result<(), DropReason> {
        let tx = match self.lock().by_id.get(&id) {
            Some(e) => e.tx.clone(),
            None => return Err(DropReason::SendError),
        };
        push(&tx, bytes)
    }

    /// Adds a connection; `None` when the table is full.
    fn insert(&self, peer: SocketAddr) -> Option<(ConnId, mpsc::Receiver<Vec<u8>>)> {
        let mut t = self.lock();
        self.insert_locked(&mut t, peer)
    }

    fn insert_locked(
        &self,
        t: &mut Table,
        peer: SocketAddr,
    ) -> Option<(ConnId, mpsc::Receiver<Vec<u8>>)> {
        if t.by_id.len() >= self.max {
            return None;
        }
        let id = ConnId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel(self.queue);
        t.by_id.insert(id, Entry { tx, peer });
        t.by_addr.insert(peer, id);
        Some((id, rx))
    }

    fn remove(&self, id: ConnId) {
        let mut t = self.lock();
        if let Some(e) = t.by_id.remove(&id)
            && t.by_addr.get(&e.peer) == Some(&id)
        {
            t.by_addr.remove(&e.peer);
        }
    }

    /// Drops every queue sender so writers finish and exit (used at shutdown).
    pub(crate) fn clear(&self) {
        let mut t = self.lock();
        t.by_id.clear();
        t.by_addr.clear();
    }
}

fn push(tx: &mpsc::Sender<Vec<u8>>, bytes: Vec<u8>) -> Result<(), DropReason> {
    match tx.try_send(bytes) {
        Ok(()) => Ok(()),
        Err(mpsc::error::TrySendError::Full(_)) => Err(DropReason::QueueFull),
        Err(mpsc::error::TrySendError::Closed(_)) => Err(DropReason::SendError),
    }
}

impl Core {
    /// Sends on the connection to `addr`, opening one (asynchronously) if there is none.
    pub(crate) fn tcp_send_to(
        self: &Arc<Self>,
        addr: SocketAddr,
        bytes: Vec<u8>,
    ) -> Result<(), DropReason> {
        // Look up and insert under one lock so concurrent senders share one new connection.
        let (id, rx) = {
            let mut t = self.tcp.lock();
            if let Some(e) = t.by_addr.get(&addr).and_then(|id| t.by_id.get(id)) {
                let tx = e.tx.clone();
                drop(t);
                return push(&tx, bytes);
            }
            match self.tcp.insert_locked(&mut t, addr) {
                Some(new) => new,
                None => {
                    self.stats.tcp_refused();
                    return Err(DropReason::SendError);
                }
            }
        };
        let result = self.tcp.send_on(id, bytes);
        let core = Arc::clone(self);
        tokio::spawn(async move {
            let connected =
                tokio::time::timeout(core.tcp.connect_timeout, TcpStream::connect(addr)).await;
            match connected {
                Ok(Ok(stream)) => {
                    core.stats.tcp_connected();
                    core.run_connection(stream, id, addr, rx);
                }
                Ok(Err(e)) => core.connect_failed(id, addr, rx, &e.to_string()),
                Err(_) => core.connect_failed(id, addr, rx, "timed out"),
            }
        });
        result
    }

    fn connect_failed(
        &self,
        id: ConnId,
        addr: SocketAddr,
        mut rx: mpsc::Receiver<Vec<u8>>,
        why: &str,
    ) {
        debug!(%addr, why, "TCP connect failed");
        self.tcp.remove(id);
        rx.close();
        while rx.try_recv().is_ok() {
            self.stats.dropped(DropReason::SendError);
        }
    }

    /// Accept loop of one TCP listener.
    pub(crate) async fn run_tcp_listener(self: Arc<Self>, listener: TcpListener) {
        let stop = self.shutdown.clone();
        let stop = stop.triggered();
        tokio::pin!(stop);
        loop {
            let accepted = tokio::select! {
                biased;
                () = &mut stop => break,
                a = listener.accept() => a,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let Some((id, rx)) = self.tcp.insert(peer) else {
                        self.stats.tcp_refused();
                        continue;
                    };
                    self.stats.tcp_accepted();
                    self.run_connection(stream, id, peer, rx);
                }
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    debug!(error = %e, "TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Spawns the reader and writer of an established connection.
    fn run_connection(
        self: &Arc<Self>,
        stream: TcpStream,
        id: ConnId,
        peer: SocketAddr,
        rx: mpsc::Receiver<Vec<u8>>,
    ) {
        // Nagle would hold small SIP messages back (DESIGN §9 pitfalls).
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(peer);
        let (read, write) = stream.into_split();
        let base = Instant::now();
        let activity = Arc::new(AtomicU64::new(0));
        tokio::spawn(Arc::clone(self).writer(write, rx, id, base, Arc::clone(&activity)));
        let origin = Origin {
            transport: Transport::Tcp,
            peer,
            local,
            conn: Some(id),
            udp: 0,
        };
        let core = Arc::clone(self);
        tokio::spawn(async move {
            let idle = core.reader(read, &origin, base, &activity).await;
            core.tcp.remove(id);
            core.stats.tcp_closed(idle);
        });
    }

    /// Reads, frames and relays until EOF, error, idleness or shutdown; returns whether idle.
    async fn reader(
        self: &Arc<Self>,
        mut read: OwnedReadHalf,
        origin: &Origin,
        base: Instant,
        activity: &AtomicU64,
    ) -> bool {
        let mut framer = Framer::new(self.limits);
        let mut buf = vec![0u8; 64 * 1024];
        let mut out = Vec::new();
        let stop = self.shutdown.triggered();
        tokio::pin!(stop);
        let idle_ms = u64::try_from(self.tcp.idle.as_millis()).unwrap_or(u64::MAX);
        loop {
            let last = activity.load(Ordering::Relaxed);
            let deadline = base + Duration::from_millis(last.saturating_add(idle_ms));
            let n = tokio::select! {
                biased;
                () = &mut stop => return false,
                r = tokio::time::timeout_at(deadline, read.read(&mut buf)) => match r {
                    Err(_) => {
                        if activity.load(Ordering::Relaxed) == last {
                            debug!(peer = %origin.peer, "closing idle TCP connection");
                            return true;
                        }
                        continue;
                    }
                    Ok(Ok(0)) => return false,
                    Ok(Ok(n)) => n,
                    Ok(Err(e)) => {
                        debug!(peer = %origin.peer, error = %e, "TCP read failed");
                        return false;
                    }
                },
            };
            activity.store(stamp(base), Ordering::Relaxed);
            framer.push(&buf[..n]);
            loop {
                match framer.next_message() {
                    Ok(Some(msg)) => self.receive(&msg, origin, &mut out),
                    Ok(None) => break,
                    Err(e) => {
                        // A stream cannot resynchronise after a framing error: close it.
                        debug!(peer = %origin.peer, error = %e, "TCP framing error");
                        self.stats.dropped(DropReason::Malformed);
                        return false;
                    }
                }
            }
        }
    }
}

impl Core {
    /// Drains the connection's queue; a write that makes no progress for the idle timeout, a
    /// write error or shutdown ends it (and the connection with it).
    async fn writer(
        self: Arc<Self>,
        mut write: OwnedWriteHalf,
        mut rx: mpsc::Receiver<Vec<u8>>,
        id: ConnId,
        base: Instant,
        activity: Arc<AtomicU64>,
    ) {
        let stop = self.shutdown.triggered();
        tokio::pin!(stop);
        loop {
            let bytes = tokio::select! {
                biased;
                () = &mut stop => break,
                b = rx.recv() => match b {
                    Some(b) => b,
                    None => break,
                },
            };
            let written = tokio::select! {
                biased;
                () = &mut stop => break,
                w = tokio::time::timeout(self.tcp.idle, write.write_all(&bytes)) => w,
            };
            match written {
                Ok(Ok(())) => activity.store(stamp(base), Ordering::Relaxed),
                Ok(Err(e)) => {
                    debug!(error = %e, "TCP write failed");
                    self.stats.dropped(DropReason::SendError);
                    break;
                }
                Err(_) => {
                    debug!("TCP write stalled for the idle timeout; closing");
                    self.stats.dropped(DropReason::SendError);
                    break;
                }
            }
        }
        self.tcp.remove(id);
        let _ = write.shutdown().await;
    }
}
