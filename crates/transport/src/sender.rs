//! The transport-independent sending side: a bounded window of pending bundles, acks by seq,
//! resend after reconnect, expiry, and the reconnect loop with exponential backoff and jitter.
//!
//! A connection task (gRPC or QUIC) reads bundles not yet sent on its connection through
//! [`Outbox::for_unsent`] and feeds acks back through [`Outbox::ack`]. When a connection ends,
//! the cursor restarts at zero on the next one, so every unacked bundle is sent again
//! (at-least-once); the receiver deduplicates.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ikt_proto::{DeliveryAck, KeyBundle, Status};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot, watch};
use tokio::task::JoinHandle;

use crate::health::{HealthCell, PeerHealth};
use crate::{DEFAULT_MAX_MESSAGE_BYTES, Error, now_ms};

/// Reconnect delays: exponential from `initial` to `max`, each drawn uniformly from `[d/2, d]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First delay after a failure.
    pub initial: Duration,
    /// Cap of the delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// Delay for attempt `n` (0-based) with jitter, so many senders do not reconnect in step.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max);
        let half = base / 2;
        let mut r = [0u8; 8];
        // Without randomness we still back off, just without spreading.
        let frac = if getrandom::fill(&mut r).is_ok() {
            (u64::from_le_bytes(r) >> 11) as f64 / (1u64 << 53) as f64
        } else {
            0.5
        };
        half + half.mul_f64(frac)
    }
}

/// Configuration of a sender toward one peer.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// The peer's agent id: the TLS server name, checked against the server certificate's SAN.
    pub peer: String,
    /// The peer's address.
    pub addr: SocketAddr,
    /// Maximum bundles sent and not yet acknowledged.
    pub window: usize,
    /// Reconnect delays.
    pub backoff: Backoff,
    /// Limit for TCP/QUIC connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Largest message accepted from (and sent to) the network.
    pub max_message_bytes: usize,
    /// A bundle sent and not acknowledged within this time means the connection is dead even if
    /// the socket looks fine (a silently cut link): it is torn down, the peer reported down, and
    /// the bundle resent on the next connection.
    pub ack_timeout: Duration,
}

impl SenderConfig {
    /// Defaults: window 1024, backoff 100 ms..5 s, connect timeout 5 s, 4 KiB messages.
    pub fn new(peer: impl Into<String>, addr: SocketAddr) -> Self {
        Self {
            peer: peer.into(),
            addr,
            window: 1024,
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(5),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            ack_timeout: Duration::from_secs(2),
        }
    }
}

/// The receiver's answer to one bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// Sequence number of the bundle.
    pub seq: u64,
    /// Stored, Duplicate or Rejected.
    pub status: Status,
    /// Why it was rejected (empty otherwise).
    pub reason: String,
}

impl Ack {
    /// Stored or duplicate: the peer holds the keys.
    pub fn is_delivered(&self) -> bool {
        matches!(self.status, Status::Stored | Status::Duplicate)
    }
}

/// Resolves to the receiver's ack for one bundle (or an error if closed or expired first).
///
/// Dropping it does not cancel delivery: the bundle stays in the window until acked.
#[derive(Debug)]
pub struct DeliveryHandle {
    seq: u64,
    rx: oneshot::Receiver<Result<Ack, Error>>,
}

impl DeliveryHandle {
    /// The sequence number assigned to the bundle.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl Future for DeliveryHandle {
    type Output = Result<Ack, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(Error::Closed)))
    }
}

/// Something that delivers key bundles to one peer.
pub trait KeySender: Send + Sync {
    /// Queues a bundle without waiting; fails with [`Error::WindowFull`] when the window is full.
    /// The transport assigns `bundle.seq`.
    fn send(&self, bundle: KeyBundle) -> Result<DeliveryHandle, Error>;
    /// Current health of the peer.
    fn health(&self) -> PeerHealth;
}

struct Pending {
    bundle: KeyBundle,
    tx: Option<oneshot::Sender<Result<Ack, Error>>>,
    sends: u32,
    /// When it was last written to a connection.
    sent_at: Option<Instant>,
    _permit: OwnedSemaphorePermit,
}

#[derive(Default)]
struct State {
    next_seq: u64,
    pending: BTreeMap<u64, Pending>,
}

/// Shared between the caller's [`PeerSender`] and the connection task.
pub(crate) struct Outbox {
    pub(crate) peer: String,
    state: Mutex<State>,
    pub(crate) notify: Notify,
    window: Arc<Semaphore>,
    window_size: usize,
    max_message: usize,
    ack_timeout: Duration,
    pub(crate) health: HealthCell,
    closed: watch::Sender<bool>,
}

impl Outbox {
    pub(crate) fn new(
        peer: &str,
        window: usize,
        max_message: usize,
        ack_timeout: Duration,
    ) -> Arc<Self> {
        let window_size = window.max(1);
        Arc::new(Self {
            peer: peer.to_owned(),
            state: Mutex::new(State {
                next_seq: 1,
                pending: BTreeMap::new(),
            }),
            notify: Notify::new(),
            window: Arc::new(Semaphore::new(window_size)),
            window_size,
            max_message,
            ack_timeout,
            health: HealthCell::new(peer),
            closed: watch::channel(false).0,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn submit(&self, mut bundle: KeyBundle, permit: OwnedSemaphorePermit) -> DeliveryHandle {
        let (tx, rx) = oneshot::channel();
        let seq = {
            let mut st = self.lock();
            let seq = st.next_seq;
            st.next_seq += 1;
            bundle.seq = seq;
            st.pending.insert(
                seq,
                Pending {
                    bundle,
                    tx: Some(tx),
                    sends: 0,
                    sent_at: None,
                    _permit: permit,
                },
            );
            seq
        };
        self.health.update(|h| h.in_flight += 1);
        self.notify.notify_one();
        DeliveryHandle { seq, rx }
    }

    /// Refuses up front what the receiver would refuse, so it cannot loop through resends.
    fn check(&self, bundle: &KeyBundle) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let len = prost::Message::encoded_len(bundle) + 10;
        if len > self.max_message {
            return Err(Error::TooLarge {
                len,
                max: self.max_message,
            });
        }
        Ok(())
    }

    pub(crate) fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Resolves once the sender is closed.
    pub(crate) async fn closed(&self) {
        let mut rx = self.closed.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Calls `f` for each pending bundle with `seq >= *cursor`, in order, and advances the cursor.
    pub(crate) fn for_unsent(&self, cursor: &mut u64, mut f: impl FnMut(&KeyBundle)) {
        let mut resent = 0;
        let now = Instant::now();
        {
            let mut st = self.lock();
            for (seq, p) in st.pending.range_mut(*cursor..) {
                if p.sends > 0 {
                    resent += 1;
                }
                p.sends = p.sends.saturating_add(1);
                p.sent_at = Some(now);
                f(&p.bundle);
                *cursor = seq + 1;
            }
        }
        if resent > 0 {
            self.health.update(|h| h.resent += resent);
        }
    }

    /// Applies an ack from the receiver; unknown seqs (late duplicates) are ignored.
    pub(crate) fn ack(&self, ack: DeliveryAck) {
        let p = self.lock().pending.remove(&ack.seq);
        let Some(mut p) = p else {
            tracing::debug!(peer = %self.peer, seq = ack.seq, "ack for a seq not pending");
            return;
        };
        let status = Status::try_from(ack.status).unwrap_or(Status::Unspecified);
        self.health.update(|h| {
            h.in_flight = h.in_flight.saturating_sub(1);
            match status {
                Status::Stored => h.delivered += 1,
                Status::Duplicate => {
                    h.delivered += 1;
                    h.duplicates += 1;
                }
                Status::Rejected | Status::Unspecified => h.refused += 1,
            }
        });
        if let Some(tx) = p.tx.take() {
            let _ = tx.send(Ok(Ack {
                seq: ack.seq,
                status,
                reason: ack.reason,
            }));
        }
    }

    /// Periodic check of a live connection: expires stale bundles, and reports the connection
    /// dead when a bundle sent on it has waited longer than the ack timeout.
    pub(crate) fn housekeep(&self, now_ms: u64) -> Result<(), Error> {
        self.expire(now_ms);
        let oldest = self.lock().pending.values().filter_map(|p| p.sent_at).min();
        match oldest {
            Some(t) if t.elapsed() > self.ack_timeout => Err(Error::Connection(format!(
                "no ack within {} ms: link considered down",
                self.ack_timeout.as_millis()
            ))),
            _ => Ok(()),
        }
    }

    /// Gives up bundles whose `not_after_ms` has passed: their keys are useless now.
    pub(crate) fn expire(&self, now_ms: u64) {
        let expired: Vec<Pending> = {
            let mut st = self.lock();
            let seqs: Vec<u64> = st
                .pending
                .iter()
                .filter(|(_, p)| p.bundle.not_after_ms != 0 && p.bundle.not_after_ms < now_ms)
                .map(|(s, _)| *s)
                .collect();
            seqs.iter().filter_map(|s| st.pending.remove(s)).collect()
        };
        if expired.is_empty() {
            return;
        }
        let n = expired.len();
        self.health.update(|h| {
            h.in_flight = h.in_flight.saturating_sub(n);
            h.expired += n as u64;
        });
        tracing::warn!(peer = %self.peer, count = n, "bundles expired before acknowledgement");
        for mut p in expired {
            if let Some(tx) = p.tx.take() {
                let _ = tx.send(Err(Error::Expired(p.bundle.seq)));
            }
        }
    }

    pub(crate) fn close(&self) {
        self.closed.send_replace(true);
        let pending = std::mem::take(&mut self.lock().pending);
        for (_, mut p) in pending {
            if let Some(tx) = p.tx.take() {
                let _ = tx.send(Err(Error::Closed));
            }
        }
        self.health.update(|h| {
            h.in_flight = 0;
            h.up = false;
        });
    }

    pub(crate) fn set_up(&self) {
        self.health.update(|h| {
            h.up = true;
            h.connects += 1;
        });
        tracing::info!(peer = %self.peer, "peer connected");
    }

    pub(crate) fn set_down(&self, err: &Error) {
        self.health.update(|h| {
            h.up = false;
            h.last_error = Some(err.to_string());
        });
        tracing::warn!(peer = %self.peer, error = %err, "peer connection down");
    }
}

/// A sender toward one peer: owns the background connection task. Dropping it closes it.
pub struct PeerSender {
    outbox: Arc<Outbox>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for PeerSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSender")
            .field("peer", &self.outbox.peer)
            .finish_non_exhaustive()
    }
}

impl PeerSender {
    /// Spawns `run` (one connection attempt until it ends) in a reconnect loop.
    pub(crate) fn spawn<F, Fut>(outbox: Arc<Outbox>, backoff: Backoff, mut run: F) -> Self
    where
        F: FnMut(Arc<Outbox>) -> Fut + Send + 'static,
        Fut: Future<Output = Error> + Send,
    {
        let ob = outbox.clone();
        let task = tokio::spawn(async move {
            let mut attempt = 0u32;
            loop {
                if ob.is_closed() {
                    return;
                }
                let connects_before = ob.health.get().connects;
                let err = tokio::select! {
                    e = run(ob.clone()) => e,
                    () = ob.closed() => return,
                };
                ob.set_down(&err);
                if ob.health.get().connects > connects_before {
                    attempt = 0;
                }
                ob.expire(now_ms());
                let delay = backoff.delay(attempt);
                attempt = attempt.saturating_add(1);
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = ob.closed() => return,
                }
            }
        });
        Self { outbox, task }
    }

    /// The peer's agent id.
    pub fn peer(&self) -> &str {
        &self.outbox.peer
    }

    /// Queues a bundle, waiting for room in the window.
    pub async fn send_wait(&self, bundle: KeyBundle) -> Result<DeliveryHandle, Error> {
        self.outbox.check(&bundle)?;
        let permit = tokio::select! {
            p = self.outbox.window.clone().acquire_owned() => p.map_err(|_| Error::Closed)?,
            () = self.outbox.closed() => return Err(Error::Closed),
        };
        if self.outbox.is_closed() {
            return Err(Error::Closed);
        }
        Ok(self.outbox.submit(bundle, permit))
    }

    /// Stops the connection task; pending handles resolve to [`Error::Closed`].
    pub fn close(&self) {
        self.outbox.close();
    }
}

impl KeySender for PeerSender {
    fn send(&self, bundle: KeyBundle) -> Result<DeliveryHandle, Error> {
        self.outbox.check(&bundle)?;
        let permit = self
            .outbox
            .window
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::WindowFull(self.outbox.window_size))?;
        Ok(self.outbox.submit(bundle, permit))
    }

    fn health(&self) -> PeerHealth {
        self.outbox.health.get()
    }
}

impl Drop for PeerSender {
    fn drop(&mut self) {
        self.outbox.close();
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(nonce: &str) -> KeyBundle {
        let mut b = KeyBundle::default();
        b.nonce = nonce.into();
        b.ck = vec![1; 16];
        b.ik = vec![2; 16];
        b
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        for attempt in 0..40 {
            let d = b.delay(attempt);
            let base = (Duration::from_millis(100) * 2u32.pow(attempt.min(16)))
                .min(Duration::from_secs(2));
            assert!(
                d >= base / 2 && d <= base,
                "attempt {attempt}: {d:?} vs {base:?}"
            );
        }
    }

    #[tokio::test]
    async fn window_ack_resend_expire_close() {
        let ob = Outbox::new("pcscf-1", 2, 4096, Duration::from_secs(2));
        let p1 = ob.window.clone().try_acquire_owned().expect("permit");
        let h1 = ob.submit(bundle("n1"), p1);
        let p2 = ob.window.clone().try_acquire_owned().expect("permit");
        let mut b2 = bundle("n2");
        b2.not_after_ms = 5;
        let h2 = ob.submit(b2, p2);
        assert!(
            ob.window.clone().try_acquire_owned().is_err(),
            "window of 2 is full"
        );

        let mut cursor = 0;
        let mut seen = Vec::new();
        ob.for_unsent(&mut cursor, |b| seen.push(b.seq));
        assert_eq!(seen, vec![1, 2]);
        ob.for_unsent(&mut cursor, |b| seen.push(b.seq));
        assert_eq!(seen.len(), 2, "nothing new after the cursor");
        // A reconnect restarts the cursor: both are resent.
        let mut cursor = 0;
        ob.for_unsent(&mut cursor, |b| seen.push(b.seq));
        assert_eq!(ob.health.get().resent, 2);

        ob.ack(DeliveryAck {
            seq: 1,
            status: Status::Stored as i32,
            reason: String::new(),
        });
        let a1 = h1.await.expect("ack");
        assert!(a1.is_delivered());
        assert!(
            ob.window.clone().try_acquire_owned().is_ok(),
            "ack frees a slot"
        );
        ob.ack(DeliveryAck {
            seq: 99,
            status: Status::Stored as i32,
            reason: String::new(),
        });

        ob.expire(10);
        assert!(matches!(h2.await, Err(Error::Expired(2))));
        let h = ob.health.get();
        assert_eq!((h.delivered, h.expired, h.in_flight), (1, 1, 0));

        let p3 = ob.window.clone().try_acquire_owned().expect("permit");
        let h3 = ob.submit(bundle("n3"), p3);
        ob.close();
        assert!(matches!(h3.await, Err(Error::Closed)));
        assert!(ob.is_closed());
    }
}
