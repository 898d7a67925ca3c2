//! The transport-independent receiving side: deliveries handed to the caller, responders that
//! turn the caller's verdict into an ack, a bounded dedup set, and per-peer receiver health.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ikt_proto::{DeliveryAck, KeyBundle, Status};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use crate::health::PeerHealth;
use crate::tls::{Refusals, TlsHandle};
use crate::{DEFAULT_MAX_MESSAGE_BYTES, Error};

/// Configuration of a receiver (the p-cscf-agent side, a server).
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// Address to listen on (TCP for gRPC, UDP for QUIC); port 0 picks one.
    pub listen: SocketAddr,
    /// Largest message accepted from the network.
    pub max_message_bytes: usize,
    /// Bundles per stream handed to the caller and not yet answered; reading pauses beyond it.
    pub max_in_flight_per_stream: usize,
    /// Capacity of the recent (peer, nonce, seq) set used to answer resends with `DUPLICATE`.
    pub dedup_capacity: usize,
    /// Deliveries queued toward the caller.
    pub queue: usize,
    /// Limit for a TLS handshake.
    pub handshake_timeout: Duration,
    /// Concurrent connections accepted (all peers together).
    pub max_connections: usize,
}

impl ReceiverConfig {
    /// Defaults: 4 KiB messages, 1024 in flight per stream, 65 536 dedup entries, queue 4096,
    /// 5 s handshake timeout, 256 connections.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_in_flight_per_stream: 1024,
            dedup_capacity: 65_536,
            queue: 4096,
            handshake_timeout: Duration::from_secs(5),
            max_connections: 256,
        }
    }
}

/// A bundle received from an authorised peer, waiting for the caller's verdict.
#[derive(Debug)]
pub struct Delivery {
    /// Agent id of the sender (from its certificate's SAN).
    pub peer: String,
    /// The bundle.
    pub bundle: KeyBundle,
    /// Answers the sender; dropping it unanswered sends `REJECTED`.
    pub responder: Responder,
}

pub(crate) type AckItem = (DeliveryAck, OwnedSemaphorePermit);
/// 128-bit keyed hash of (peer, nonce, seq). Storing the hash rather than the strings keeps a
/// remembered delivery at a few dozen bytes (memory per pending bundle is a target); with two
/// independent random keys a false "duplicate" between different bundles is out of reach.
type DedupKey = [u64; 2];

/// Sends the caller's verdict on one bundle back to the sender.
pub struct Responder {
    seq: u64,
    peer: String,
    key: Option<DedupKey>,
    acks: mpsc::Sender<AckItem>,
    permit: Option<OwnedSemaphorePermit>,
    shared: Arc<RecvShared>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Responder {
    /// Sequence number of the bundle answered.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Answers with `status`; `reason` must not contain key material.
    pub fn respond(mut self, status: Status, reason: &str) {
        self.finish(status, reason);
    }

    /// Answers `STORED`.
    pub fn stored(self) {
        self.respond(Status::Stored, "");
    }

    /// Answers `DUPLICATE` (same bundle already held).
    pub fn duplicate(self) {
        self.respond(Status::Duplicate, "");
    }

    /// Answers `REJECTED` with a reason.
    pub fn reject(self, reason: &str) {
        self.respond(Status::Rejected, reason);
    }

    fn finish(&mut self, status: Status, reason: &str) {
        let Some(permit) = self.permit.take() else {
            return;
        };
        let key = self.key.take();
        let peer = std::mem::take(&mut self.peer);
        let delivered = matches!(status, Status::Stored | Status::Duplicate);
        if let Some(k) = key.filter(|_| delivered) {
            self.shared.dedup_insert(k);
        }
        self.shared.health_update(&peer, |h| {
            h.in_flight = h.in_flight.saturating_sub(1);
            if delivered {
                h.delivered += 1;
            } else {
                h.refused += 1;
            }
        });
        let ack = DeliveryAck {
            seq: self.seq,
            status: status as i32,
            reason: reason.to_owned(),
        };
        // Capacity equals the stream's in-flight permits, so only a closed stream fails here;
        // the sender then resends on its next connection.
        if self.acks.try_send((ack, permit)).is_err() {
            tracing::debug!(seq = self.seq, "ack not sent: stream closed");
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        // During shutdown the stream is going away: say nothing, the sender resends.
        if self.permit.is_some() && !self.shared.is_shutdown() {
            self.finish(Status::Rejected, "not answered by the receiver");
        }
    }
}

/// FIFO-bounded set of recently delivered (peer, nonce, seq).
#[derive(Debug, Default)]
struct Dedup {
    set: HashSet<DedupKey>,
    order: VecDeque<DedupKey>,
    cap: usize,
}

/// State shared by every connection of one receiver.
pub(crate) struct RecvShared {
    pub(crate) cfg: ReceiverConfig,
    pub(crate) tls: TlsHandle,
    app: mpsc::Sender<Delivery>,
    dedup: Mutex<Dedup>,
    dedup_hashers: [std::collections::hash_map::RandomState; 2],
    health: Mutex<HashMap<String, (PeerHealth, usize)>>,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) connections: Arc<Semaphore>,
}

impl RecvShared {
    pub(crate) fn new(
        cfg: ReceiverConfig,
        tls: TlsHandle,
    ) -> (Arc<Self>, mpsc::Receiver<Delivery>) {
        let (app, rx) = mpsc::channel(cfg.queue.max(1));
        let cap = cfg.dedup_capacity.max(1);
        let conns = cfg.max_connections.max(1);
        let shared = Arc::new(Self {
            cfg,
            tls,
            app,
            dedup: Mutex::new(Dedup {
                cap,
                ..Dedup::default()
            }),
            dedup_hashers: Default::default(),
            health: Mutex::new(HashMap::new()),
            shutdown: watch::channel(false).0,
            connections: Arc::new(Semaphore::new(conns)),
        });
        (shared, rx)
    }

    fn dedup_contains(&self, k: &DedupKey) -> bool {
        self.dedup
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .set
            .contains(k)
    }

    fn dedup_insert(&self, k: DedupKey) {
        let mut d = self
            .dedup
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if d.set.insert(k) {
            d.order.push_back(k);
            while d.order.len() > d.cap {
                if let Some(old) = d.order.pop_front() {
                    d.set.remove(&old);
                }
            }
        }
    }

    fn health_update(&self, peer: &str, f: impl FnOnce(&mut PeerHealth)) {
        let mut m = self
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = m.entry(peer.to_owned()).or_insert_with(|| {
            (
                PeerHealth {
                    peer: peer.to_owned(),
                    ..PeerHealth::default()
                },
                0,
            )
        });
        f(&mut e.0);
    }

    /// A stream from `peer` opened (`+1`) or closed (`-1`, with the error if any).
    pub(crate) fn stream_event(&self, peer: &str, opened: bool, err: Option<String>) {
        let mut m = self
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = m.entry(peer.to_owned()).or_insert_with(|| {
            (
                PeerHealth {
                    peer: peer.to_owned(),
                    ..PeerHealth::default()
                },
                0,
            )
        });
        if opened {
            e.1 += 1;
            e.0.connects += 1;
        } else {
            e.1 = e.1.saturating_sub(1);
            if err.is_some() {
                e.0.last_error = err;
            }
        }
        e.0.up = e.1 > 0;
    }

    pub(crate) fn health(&self) -> Vec<PeerHealth> {
        let m = self
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut ids = self.tls.peers().ids();
        for k in m.keys() {
            if !ids.contains(k) {
                ids.push(k.clone());
            }
        }
        ids.sort();
        ids.into_iter()
            .map(|id| {
                m.get(&id).map(|(h, _)| h.clone()).unwrap_or(PeerHealth {
                    peer: id,
                    ..PeerHealth::default()
                })
            })
            .collect()
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        *self.shutdown.borrow()
    }

    pub(crate) async fn shutdown_signal(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Hands one bundle from `peer` to the caller, or answers a known resend with `DUPLICATE`.
    /// Waits for a per-stream in-flight permit first, which bounds memory per stream.
    pub(crate) async fn accept_bundle(
        self: &Arc<Self>,
        peer: &str,
        bundle: KeyBundle,
        acks: &mpsc::Sender<AckItem>,
        permits: &Arc<Semaphore>,
    ) -> Result<(), Error> {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Closed)?;
        let seq = bundle.seq;
        if bundle.nonce.is_empty() {
            self.health_update(peer, |h| h.refused += 1);
            let ack = DeliveryAck {
                seq,
                status: Status::Rejected as i32,
                reason: "empty nonce".into(),
            };
            let _ = acks.try_send((ack, permit));
            return Ok(());
        }
        let key: DedupKey = {
            use std::hash::BuildHasher;
            let item = (peer, bundle.nonce.as_str(), seq);
            [
                self.dedup_hashers[0].hash_one(item),
                self.dedup_hashers[1].hash_one(item),
            ]
        };
        if self.dedup_contains(&key) {
            self.health_update(peer, |h| h.duplicates += 1);
            tracing::debug!(peer, seq, "resent bundle answered as duplicate");
            let ack = DeliveryAck {
                seq,
                status: Status::Duplicate as i32,
                reason: String::new(),
            };
            let _ = acks.try_send((ack, permit));
            return Ok(());
        }
        self.health_update(peer, |h| h.in_flight += 1);
        let responder = Responder {
            seq,
            peer: peer.to_owned(),
            key: Some(key),
            acks: acks.clone(),
            permit: Some(permit),
            shared: self.clone(),
        };
        let d = Delivery {
            peer: peer.to_owned(),
            bundle,
            responder,
        };
        self.app.send(d).await.map_err(|_| Error::Closed)
    }
}

/// A running receiver. Dropping it (or [`ReceiverHandle::shutdown`]) stops it.
pub struct ReceiverHandle {
    pub(crate) local_addr: SocketAddr,
    pub(crate) shared: Arc<RecvShared>,
    pub(crate) task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for ReceiverHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverHandle")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl ReceiverHandle {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Health per peer: every peer in the table plus any that connected.
    pub fn health(&self) -> Vec<PeerHealth> {
        self.shared.health()
    }

    /// Refused handshakes by reason.
    pub fn refusals(&self) -> &Refusals {
        self.shared.tls.refusals()
    }

    /// Closes every connection and stops listening; unanswered bundles are resent by senders.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(t) = self.task.take() {
            // The serve task stops on the signal; bound the wait in case a peer stalls.
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(3), t)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for ReceiverHandle {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{PeerTable, TlsSource};

    fn shared(dedup: usize) -> (Arc<RecvShared>, mpsc::Receiver<Delivery>) {
        let ca = ikt_certs::Ca::new("t", 1).expect("ca");
        let leaf = ca
            .issue("pcscf-1", &ikt_certs::IssueOptions::default())
            .expect("leaf");
        let tls = TlsHandle::new(
            Arc::new(rustls::crypto::ring::default_provider()),
            TlsSource::Pem {
                cert: leaf.cert_pem.clone(),
                key: zeroize::Zeroizing::new(leaf.key_pem().to_owned()),
                ca: ca.cert_pem().to_owned(),
            },
            PeerTable::new(["scscf-1"]).expect("peers"),
        )
        .expect("tls");
        let mut cfg = ReceiverConfig::new("127.0.0.1:0".parse().expect("addr"));
        cfg.dedup_capacity = dedup;
        RecvShared::new(cfg, tls)
    }

    fn bundle(nonce: &str, seq: u64) -> KeyBundle {
        let mut b = KeyBundle::default();
        b.nonce = nonce.into();
        b.seq = seq;
        b
    }

    #[tokio::test]
    async fn dedup_answers_resends_and_is_bounded() {
        let (shared, mut app) = shared(2);
        let (acks, mut ack_rx) = mpsc::channel(16);
        let permits = Arc::new(Semaphore::new(16));
        let peer = "scscf-1";
        let status = |a: &AckItem| Status::try_from(a.0.status).expect("status");

        shared
            .accept_bundle(peer, bundle("n1", 1), &acks, &permits)
            .await
            .expect("accept");
        app.recv().await.expect("delivery").responder.stored();
        assert_eq!(status(&ack_rx.recv().await.expect("ack")), Status::Stored);

        // Resent after the ack was lost: answered without bothering the caller.
        shared
            .accept_bundle(peer, bundle("n1", 1), &acks, &permits)
            .await
            .expect("accept");
        assert!(app.try_recv().is_err());
        assert_eq!(
            status(&ack_rx.recv().await.expect("ack")),
            Status::Duplicate
        );
        // Same nonce, another seq: a different bundle, handed over.
        shared
            .accept_bundle(peer, bundle("n1", 9), &acks, &permits)
            .await
            .expect("accept");
        app.recv().await.expect("delivery").responder.duplicate();
        assert_eq!(
            status(&ack_rx.recv().await.expect("ack")),
            Status::Duplicate
        );

        // Capacity 2: (n1,9) and (n2,2) push (n1,1) out.
        shared
            .accept_bundle(peer, bundle("n2", 2), &acks, &permits)
            .await
            .expect("accept");
        app.recv().await.expect("delivery").responder.stored();
        let _ = ack_rx.recv().await;
        shared
            .accept_bundle(peer, bundle("n1", 1), &acks, &permits)
            .await
            .expect("accept");
        let d = app.recv().await.expect("evicted entry is delivered again");
        // Unanswered: rejected, so the sender is never left waiting.
        drop(d);
        let a = ack_rx.recv().await.expect("ack");
        assert_eq!(status(&a), Status::Rejected);

        shared
            .accept_bundle(peer, bundle("", 3), &acks, &permits)
            .await
            .expect("accept");
        assert_eq!(status(&ack_rx.recv().await.expect("ack")), Status::Rejected);

        let h = shared
            .health()
            .into_iter()
            .find(|h| h.peer == peer)
            .expect("health");
        assert_eq!(
            (h.delivered, h.duplicates, h.refused, h.in_flight),
            (3, 1, 2, 0),
            "{h:?}"
        );
    }
}
