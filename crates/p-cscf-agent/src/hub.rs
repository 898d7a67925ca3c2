//! The key hub: the p-cscf-agent's key store shared by the SIP hook (which waits for keys), the
//! transport receivers (which deliver them) and the local API (which hands them out).
//!
//! The store itself ([`ikt_keys::KeyStore`]) does no I/O and no clocks; the hub adds the lock,
//! the wall clock, the wake-ups of parked 401s and the metrics.

use std::sync::Mutex;

use ikt_agent::telemetry::{self as t, now_ms};
use ikt_keys::{InsertOutcome, KeyBundle, KeyStore, StoreConfig, Wait, WaiterId};
use tokio::sync::{broadcast, oneshot};

/// What [`KeyHub::wait`] answers.
pub enum Waiting {
    /// The bundle is here.
    Ready(KeyBundle),
    /// Parked: `rx` fires when a bundle for the nonce arrives; cancel `id` on timeout.
    Parked(WaiterId, oneshot::Receiver<()>),
    /// Too many 401s are already waiting.
    Full,
}

/// Shared key store with waiters and watchers.
pub struct KeyHub {
    store: Mutex<KeyStore<oneshot::Sender<()>>>,
    watchers: broadcast::Sender<KeyBundle>,
}

impl KeyHub {
    /// A hub with these store limits.
    pub fn new(config: StoreConfig) -> Self {
        Self {
            store: Mutex::new(KeyStore::new(config)),
            watchers: broadcast::channel(1024).0,
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, KeyStore<oneshot::Sender<()>>> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offers a bundle; wakes the 401s parked on its nonce.
    pub fn insert(&self, bundle: KeyBundle) -> Result<InsertOutcome, ikt_keys::Error> {
        let watched = (self.watchers.receiver_count() > 0).then(|| bundle.clone());
        let (inserted, entries) = {
            let mut s = self.store();
            let r = s.insert(bundle, now_ms());
            (r, s.len())
        };
        metrics::gauge!(t::STORE_ENTRIES).set(entries as f64);
        let inserted = inserted?;
        for w in inserted.woken {
            let _ = w.send(());
        }
        if let (InsertOutcome::Stored, Some(b)) = (inserted.outcome, watched) {
            let _ = self.watchers.send(b);
        }
        Ok(inserted.outcome)
    }

    /// The bundle for this challenge if here, else a parked waiter until `deadline_ms`.
    pub fn wait(&self, nonce: &str, call_id: &str, deadline_ms: u64) -> Waiting {
        let (tx, rx) = oneshot::channel();
        match self
            .store()
            .register_waiter(nonce, Some(call_id), deadline_ms, tx, now_ms())
        {
            Ok(Wait::Ready { bundle, .. }) => Waiting::Ready(bundle),
            Ok(Wait::Parked(id)) => Waiting::Parked(id, rx),
            Err(_) => Waiting::Full,
        }
    }

    /// Forgets a parked waiter whose 401 gave up.
    pub fn cancel(&self, id: WaiterId) {
        self.store().cancel_waiter(id);
    }

    /// A copy of the bundle for this challenge, if held.
    pub fn get(&self, nonce: &str, call_id: Option<&str>) -> Option<KeyBundle> {
        self.store().get(nonce, call_id, now_ms())
    }

    /// Removes and returns the bundle for this challenge (local API `Take`).
    pub fn take(&self, nonce: &str, call_id: Option<&str>) -> Option<KeyBundle> {
        let mut s = self.store();
        let b = s.take(nonce, call_id, now_ms());
        metrics::gauge!(t::STORE_ENTRIES).set(s.len() as f64);
        b
    }

    /// Wipes every bundle of this private identity; returns how many.
    pub fn purge_impi(&self, impi: &str) -> usize {
        let mut s = self.store();
        let n = s.purge_impi(impi);
        metrics::gauge!(t::STORE_ENTRIES).set(s.len() as f64);
        n
    }

    /// Wipes every bundle of this public identity (a reg-event NOTIFY names the AOR).
    pub fn purge_impu(&self, impu: &str) -> usize {
        let mut s = self.store();
        let n = s.purge_impu(impu);
        metrics::gauge!(t::STORE_ENTRIES).set(s.len() as f64);
        n
    }

    /// Drops expired bundles (called periodically so memory follows the TTL without traffic).
    pub fn expire(&self) -> usize {
        let mut s = self.store();
        let n = s.expire(now_ms());
        metrics::gauge!(t::STORE_ENTRIES).set(s.len() as f64);
        n
    }

    /// Bundles held now.
    pub fn len(&self) -> usize {
        self.store().len()
    }

    /// Whether no bundle is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counters of the store.
    pub fn stats(&self) -> ikt_keys::StoreStats {
        self.store().stats()
    }

    /// A feed of newly stored bundles (local API `Watch`).
    pub fn subscribe(&self) -> broadcast::Receiver<KeyBundle> {
        self.watchers.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ikt_keys::{Ck, Ik};

    fn bundle(nonce: &str, impi: &str) -> KeyBundle {
        KeyBundle {
            seq: 1,
            realm: "r".into(),
            nonce: nonce.into(),
            call_id: "c".into(),
            cseq: 1,
            impu: format!("sip:{impi}"),
            impi: impi.into(),
            ck: Ck::from_bytes([1; 16]),
            ik: Ik::from_bytes([2; 16]),
            issued_at_ms: now_ms(),
            not_after_ms: 0,
            algorithm: "AKAv1-MD5".into(),
        }
    }

    #[tokio::test]
    async fn parked_waiter_wakes_on_insert() {
        let hub = KeyHub::new(StoreConfig::default());
        let Waiting::Parked(_, rx) = hub.wait("n1", "c", now_ms() + 1000) else {
            panic!("not parked")
        };
        assert_eq!(
            hub.insert(bundle("n1", "alice")).unwrap(),
            InsertOutcome::Stored
        );
        rx.await.unwrap();
        assert!(matches!(hub.wait("n1", "c", 0), Waiting::Ready(_)));
        assert!(hub.get("n1", Some("other-call")).is_none());
    }

    #[test]
    fn purge_by_impu() {
        let hub = KeyHub::new(StoreConfig::default());
        hub.insert(bundle("n1", "alice")).unwrap();
        hub.insert(bundle("n2", "bob")).unwrap();
        assert_eq!(hub.purge_impu("sip:alice"), 1);
        assert_eq!(hub.len(), 1);
        assert_eq!(hub.purge_impu("sip:alice"), 0);
    }
}
