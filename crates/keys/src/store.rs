//! [`KeyStore`]: pending key bundles on the p-side, keyed by challenge nonce.
//!
//! The store is a plain data structure: no clock, no task, no lock. The p-cscf-agent wraps it in
//! a `Mutex`, feeds it bundles as they arrive, calls [`KeyStore::expire`] and
//! [`KeyStore::expired_waiters`] from a timer, and parks 401s that beat their bundle through
//! waiters.
//!
//! # Waiters
//! A waiter is an opaque token `W` chosen by the caller, typically a
//! `tokio::sync::oneshot::Sender<()>` or a `Notify` handle. [`KeyStore::register_waiter`] either
//! answers at once ([`Wait::Ready`], the bundle was already there: no lost wake-up, since both
//! happen under the caller's lock) or parks the token until [`KeyStore::insert`] returns it in
//! [`Inserted::woken`] (the bundle arrived) or [`KeyStore::expired_waiters`] returns it (the
//! deadline passed). The caller then wakes the token outside the lock and looks the bundle up
//! with [`KeyStore::get`]. Waiters are bounded by [`StoreConfig::max_waiters`].
//!
//! # Identity, duplicates and conflicts
//! A bundle is keyed by its nonce. Offering a bundle whose nonce is already stored is a
//! [`InsertOutcome::Duplicate`] when [`KeyBundle::same_content`] holds (a retransmitted 401, or an
//! at-least-once redelivery) and an [`Error::Conflict`] otherwise; both are counted. A lookup
//! given a Call-ID only matches when the Call-ID is the one stored.
//!
//! # Memory
//! Each entry is one boxed, fixed-size record (the keys, numbers, deadline and the offsets of
//! the six strings, see [`ENTRY_RECORD_BYTES`]) plus one allocation holding all six strings back
//! to back, plus one pointer-sized slot in the hash table. The nonce is stored once: the table
//! is a set of entries that hash and compare by their nonce. Boxing keeps CK/IK at one heap
//! address for the entry's life (a table resize moves only the pointer), so the zeroize on
//! removal wipes the only copy the store made.

use core::borrow::Borrow;
use core::hash::{Hash, Hasher};
use std::collections::{HashMap, HashSet};

use crate::bundle::{KeyBundle, MAX_FIELD_LEN};
use crate::secret::{Ck, Ik};
use crate::{Error, Field};

/// Default lifetime of a stored bundle: 64 s, twice SIP Timer F, so every retransmitted 401 of a
/// transaction can be restored.
pub const DEFAULT_TTL_MS: u64 = 64_000;

/// Size in bytes of the fixed part of one stored entry (its heap record).
pub const ENTRY_RECORD_BYTES: usize = core::mem::size_of::<Entry>();

// The per-bundle memory budget is 512 bytes; the fixed record must stay a small part of it.
const _: () = assert!(ENTRY_RECORD_BYTES <= 128);

/// Limits of a [`KeyStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    /// How long a bundle stays after insertion, in milliseconds (capped by its `not_after_ms`).
    pub ttl_ms: u64,
    /// Most bundles held at once; inserts beyond are refused with [`Error::StoreFull`].
    pub capacity: usize,
    /// Most waiters parked at once; more are refused with [`Error::WaitersFull`].
    pub max_waiters: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            ttl_ms: DEFAULT_TTL_MS,
            capacity: 65_536,
            max_waiters: 4_096,
        }
    }
}

/// What [`KeyStore::insert`] did with an accepted bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// New nonce: stored.
    Stored,
    /// Same content already stored for this nonce: nothing changed.
    Duplicate,
}

/// Result of an accepted insert: the outcome and the waiters to wake.
#[derive(Debug)]
pub struct Inserted<W> {
    /// Stored or duplicate.
    pub outcome: InsertOutcome,
    /// Tokens of waiters parked on this nonce; wake them after releasing the lock.
    pub woken: Vec<W>,
}

/// Handle of a parked waiter, for [`KeyStore::cancel_waiter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WaiterId(u64);

/// Answer of [`KeyStore::register_waiter`].
#[derive(Debug)]
pub enum Wait<W> {
    /// The bundle is already here; the token is handed back unused.
    Ready {
        /// The stored bundle.
        bundle: KeyBundle,
        /// The caller's token, not parked.
        token: W,
    },
    /// Parked until the bundle arrives or the deadline passes.
    Parked(WaiterId),
}

/// Counters and gauges of a [`KeyStore`], for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Bundles held now.
    pub entries: usize,
    /// Waiters parked now.
    pub waiters: usize,
    /// Bundles stored (new nonces).
    pub inserted: u64,
    /// Offers of content already stored.
    pub duplicates: u64,
    /// Offers of different content for a stored nonce, refused.
    pub conflicts: u64,
    /// Bundles removed because their TTL or `not_after_ms` passed.
    pub expired: u64,
    /// Offers refused because the store was full.
    pub refused_full: u64,
    /// Offers refused because their `not_after_ms` had already passed (or were invalid).
    pub refused_stale: u64,
    /// Bundles removed by [`KeyStore::take`].
    pub taken: u64,
    /// Bundles removed by [`KeyStore::purge_impi`].
    pub purged: u64,
    /// Lookups that found the nonce under a different Call-ID.
    pub call_id_mismatches: u64,
    /// Waiters refused because too many were parked.
    pub waiters_refused: u64,
    /// Waiters whose deadline passed before their bundle arrived.
    pub waiters_expired: u64,
}

/// One stored bundle: fixed record plus one string allocation (see the module doc).
struct Entry {
    /// realm, nonce, call_id, impu, impi, algorithm, back to back.
    text: Box<str>,
    /// End offset of each string in `text`, in the order above.
    ends: [u16; 6],
    cseq: u32,
    seq: u64,
    issued_at_ms: u64,
    not_after_ms: u64,
    deadline_ms: u64,
    ck: Ck,
    ik: Ik,
}

const REALM: usize = 0;
const NONCE: usize = 1;
const CALL_ID: usize = 2;
const IMPU: usize = 3;
const IMPI: usize = 4;
const ALGORITHM: usize = 5;

impl Entry {
    fn new(b: KeyBundle, deadline_ms: u64) -> Result<Box<Entry>, Error> {
        b.validate()?;
        let parts = [
            &b.realm,
            &b.nonce,
            &b.call_id,
            &b.impu,
            &b.impi,
            &b.algorithm,
        ];
        let total: usize = parts.iter().map(|s| s.len()).sum();
        let mut text = String::with_capacity(total);
        let mut ends = [0u16; 6];
        for (end, part) in ends.iter_mut().zip(parts) {
            text.push_str(part);
            // validate() bounds the total well below u16::MAX.
            *end = u16::try_from(text.len()).map_err(|_| Error::InvalidField(Field::Realm))?;
        }
        let KeyBundle {
            seq,
            cseq,
            issued_at_ms,
            not_after_ms,
            ck,
            ik,
            ..
        } = b;
        Ok(Box::new(Entry {
            text: text.into_boxed_str(),
            ends,
            cseq,
            seq,
            issued_at_ms,
            not_after_ms,
            deadline_ms,
            ck,
            ik,
        }))
    }

    fn part(&self, i: usize) -> &str {
        let start = if i == 0 {
            0
        } else {
            usize::from(self.ends[i - 1])
        };
        self.text
            .get(start..usize::from(self.ends[i]))
            .unwrap_or_default()
    }

    fn to_bundle(&self) -> KeyBundle {
        KeyBundle {
            seq: self.seq,
            realm: self.part(REALM).to_owned(),
            nonce: self.part(NONCE).to_owned(),
            call_id: self.part(CALL_ID).to_owned(),
            cseq: self.cseq,
            impu: self.part(IMPU).to_owned(),
            impi: self.part(IMPI).to_owned(),
            ck: self.ck.clone(),
            ik: self.ik.clone(),
            issued_at_ms: self.issued_at_ms,
            not_after_ms: self.not_after_ms,
            algorithm: self.part(ALGORITHM).to_owned(),
        }
    }

    /// Same rule as [`KeyBundle::same_content`], without materialising a bundle.
    fn same_content(&self, b: &KeyBundle) -> bool {
        let keys = (self.ck == b.ck) & (self.ik == b.ik);
        keys & (self.part(NONCE) == b.nonce)
            & (self.part(CALL_ID) == b.call_id)
            & (self.part(REALM) == b.realm)
            & (self.part(IMPI) == b.impi)
            & (self.part(IMPU) == b.impu)
            & (self.part(ALGORITHM) == b.algorithm)
    }
}

/// Table element: hashes and compares by nonce, so the set can be queried with a `&str`.
struct Slot(Box<Entry>);

impl Borrow<str> for Slot {
    fn borrow(&self) -> &str {
        self.0.part(NONCE)
    }
}

impl Hash for Slot {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.part(NONCE).hash(state);
    }
}

impl PartialEq for Slot {
    fn eq(&self, other: &Self) -> bool {
        self.0.part(NONCE) == other.0.part(NONCE)
    }
}

impl Eq for Slot {}

struct Waiter<W> {
    nonce: Box<str>,
    deadline_ms: u64,
    token: W,
}

/// Pending key bundles keyed by challenge nonce, with TTL, capacity bound and waiters.
/// `W` is the caller's waiter token type (see the module doc).
pub struct KeyStore<W> {
    config: StoreConfig,
    entries: HashSet<Slot>,
    /// Lower bound of every stored deadline; lets [`KeyStore::expire`] return at once when
    /// nothing can be due.
    next_deadline_ms: u64,
    waiters: HashMap<u64, Waiter<W>>,
    waiters_by_nonce: HashMap<Box<str>, Vec<u64>>,
    next_waiter: u64,
    stats: StoreStats,
}

impl<W> core::fmt::Debug for KeyStore<W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyStore")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<W> KeyStore<W> {
    /// An empty store with these limits.
    pub fn new(config: StoreConfig) -> Self {
        Self {
            config,
            entries: HashSet::new(),
            next_deadline_ms: u64::MAX,
            waiters: HashMap::new(),
            waiters_by_nonce: HashMap::new(),
            next_waiter: 0,
            stats: StoreStats::default(),
        }
    }

    /// The limits this store was built with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Bundles held now (including any whose TTL passed but were not yet expired).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no bundle is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Counters and gauges.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            entries: self.entries.len(),
            waiters: self.waiters.len(),
            ..self.stats
        }
    }

    /// Approximate heap bytes held by stored bundles: table slots (pointer plus control byte, at
    /// the table's current capacity), records and string payloads, each allocation rounded up to
    /// 16 bytes plus a 16-byte allocator header (waiters excluded).
    pub fn memory_estimate(&self) -> usize {
        let slots = self.entries.capacity() * (core::mem::size_of::<Slot>() + 1);
        let alloc = |n: usize| n.div_ceil(16) * 16 + 16;
        slots
            + self
                .entries
                .iter()
                .map(|s| alloc(core::mem::size_of::<Entry>()) + alloc(s.0.text.len()))
                .sum::<usize>()
    }

    /// Offers a bundle received at `now_ms`. Accepted bundles live until `now_ms + ttl_ms` or
    /// their own `not_after_ms`, whichever is first.
    ///
    /// Errors: [`Error::Conflict`] (different content for a stored nonce), [`Error::StoreFull`],
    /// [`Error::Expired`] (`not_after_ms` already passed), [`Error::InvalidField`]. Every refusal
    /// is counted; the refused bundle is dropped, which wipes its keys.
    pub fn insert(&mut self, bundle: KeyBundle, now_ms: u64) -> Result<Inserted<W>, Error> {
        self.expire_one(&bundle.nonce, now_ms);
        if let Some(slot) = self.entries.get(bundle.nonce.as_str()) {
            return if slot.0.same_content(&bundle) {
                self.stats.duplicates += 1;
                Ok(Inserted {
                    outcome: InsertOutcome::Duplicate,
                    woken: Vec::new(),
                })
            } else {
                self.stats.conflicts += 1;
                Err(Error::Conflict)
            };
        }
        if bundle.not_after_ms != 0 && bundle.not_after_ms <= now_ms {
            self.stats.refused_stale += 1;
            return Err(Error::Expired);
        }
        if self.entries.len() >= self.config.capacity {
            self.expire(now_ms);
            if self.entries.len() >= self.config.capacity {
                self.stats.refused_full += 1;
                return Err(Error::StoreFull);
            }
        }
        let mut deadline = now_ms.saturating_add(self.config.ttl_ms);
        if bundle.not_after_ms != 0 {
            deadline = deadline.min(bundle.not_after_ms);
        }
        let entry = Entry::new(bundle, deadline).inspect_err(|_| self.stats.refused_stale += 1)?;
        let woken = self.take_waiters(entry.part(NONCE));
        self.entries.insert(Slot(entry));
        self.next_deadline_ms = self.next_deadline_ms.min(deadline);
        self.stats.inserted += 1;
        Ok(Inserted {
            outcome: InsertOutcome::Stored,
            woken,
        })
    }

    /// A copy of the bundle for `nonce`, if stored and live. With `call_id`, only a bundle stored
    /// under that Call-ID matches (a mismatch is counted).
    pub fn get(&mut self, nonce: &str, call_id: Option<&str>, now_ms: u64) -> Option<KeyBundle> {
        self.lookup(nonce, call_id, now_ms)
            .then(|| self.entries.get(nonce))
            .flatten()
            .map(|s| s.0.to_bundle())
    }

    /// Removes and returns the bundle for `nonce`, if stored and live (same Call-ID rule as
    /// [`KeyStore::get`]; a mismatch leaves the entry in place).
    pub fn take(&mut self, nonce: &str, call_id: Option<&str>, now_ms: u64) -> Option<KeyBundle> {
        if !self.lookup(nonce, call_id, now_ms) {
            return None;
        }
        let slot = self.entries.take(nonce)?;
        self.stats.taken += 1;
        Some(slot.0.to_bundle())
    }

    /// Whether a live bundle for `nonce` is stored (no Call-ID check, nothing counted except
    /// a lazy expiry).
    pub fn contains(&mut self, nonce: &str, now_ms: u64) -> bool {
        self.expire_one(nonce, now_ms);
        self.entries.contains(nonce)
    }

    /// Lazy-expires `nonce`, then reports whether it is stored under a matching Call-ID.
    fn lookup(&mut self, nonce: &str, call_id: Option<&str>, now_ms: u64) -> bool {
        self.expire_one(nonce, now_ms);
        match (self.entries.get(nonce), call_id) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(slot), Some(cid)) => {
                let ok = slot.0.part(CALL_ID) == cid;
                if !ok {
                    self.stats.call_id_mismatches += 1;
                }
                ok
            }
        }
    }

    fn expire_one(&mut self, nonce: &str, now_ms: u64) {
        let due = self
            .entries
            .get(nonce)
            .is_some_and(|s| s.0.deadline_ms <= now_ms);
        if due {
            self.entries.remove(nonce);
            self.stats.expired += 1;
        }
    }

    /// Removes (and wipes) every bundle whose deadline is at or before `now_ms`; returns how
    /// many. Cheap when nothing is due; otherwise one pass over the table.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        if now_ms < self.next_deadline_ms {
            return 0;
        }
        let before = self.entries.len();
        let mut next = u64::MAX;
        self.entries.retain(|s| {
            let keep = s.0.deadline_ms > now_ms;
            if keep {
                next = next.min(s.0.deadline_ms);
            }
            keep
        });
        self.next_deadline_ms = next;
        let n = before - self.entries.len();
        self.stats.expired += n as u64;
        n
    }

    /// Removes (and wipes) every bundle of this private identity, e.g. on deregistration or an
    /// operator request; returns how many.
    pub fn purge_impi(&mut self, impi: &str) -> usize {
        let before = self.entries.len();
        self.entries.retain(|s| s.0.part(IMPI) != impi);
        let n = before - self.entries.len();
        self.stats.purged += n as u64;
        n
    }

    /// Removes (and wipes) every bundle of this public identity, e.g. when a reg-event NOTIFY
    /// reports its registration terminated (it names the AOR, not the IMPI); returns how many.
    pub fn purge_impu(&mut self, impu: &str) -> usize {
        let before = self.entries.len();
        self.entries.retain(|s| s.0.part(IMPU) != impu);
        let n = before - self.entries.len();
        self.stats.purged += n as u64;
        n
    }

    /// Asks to be woken when the bundle for `nonce` arrives, or at `deadline_ms`. If it is
    /// already stored (and matches `call_id`), answers [`Wait::Ready`] at once instead.
    /// When too many waiters are parked, returns [`Error::WaitersFull`] and drops `token`; a nonce
    /// that could never be stored (empty or too long) gives [`Error::InvalidField`].
    pub fn register_waiter(
        &mut self,
        nonce: &str,
        call_id: Option<&str>,
        deadline_ms: u64,
        token: W,
        now_ms: u64,
    ) -> Result<Wait<W>, Error> {
        if nonce.is_empty() || nonce.len() > MAX_FIELD_LEN {
            // Such a nonce can never be stored: fail now rather than wait for the deadline.
            return Err(Error::InvalidField(Field::Nonce));
        }
        if let Some(bundle) = self.get(nonce, call_id, now_ms) {
            return Ok(Wait::Ready { bundle, token });
        }
        if self.waiters.len() >= self.config.max_waiters {
            self.stats.waiters_refused += 1;
            return Err(Error::WaitersFull);
        }
        let id = self.next_waiter;
        self.next_waiter += 1;
        let nonce: Box<str> = nonce.into();
        self.waiters_by_nonce
            .entry(nonce.clone())
            .or_default()
            .push(id);
        self.waiters.insert(
            id,
            Waiter {
                nonce,
                deadline_ms,
                token,
            },
        );
        Ok(Wait::Parked(WaiterId(id)))
    }

    /// Removes a parked waiter (e.g. its 401 was abandoned) and returns its token.
    pub fn cancel_waiter(&mut self, id: WaiterId) -> Option<W> {
        let w = self.waiters.remove(&id.0)?;
        self.unlink_waiter(&w.nonce, id.0);
        Some(w.token)
    }

    /// Removes and returns the tokens of every waiter whose deadline is at or before `now_ms`:
    /// their bundle did not come in time.
    pub fn expired_waiters(&mut self, now_ms: u64) -> Vec<W> {
        let due: Vec<u64> = self
            .waiters
            .iter()
            .filter(|(_, w)| w.deadline_ms <= now_ms)
            .map(|(&id, _)| id)
            .collect();
        let mut out = Vec::with_capacity(due.len());
        for id in due {
            if let Some(w) = self.waiters.remove(&id) {
                self.unlink_waiter(&w.nonce, id);
                out.push(w.token);
            }
        }
        self.stats.waiters_expired += out.len() as u64;
        out
    }

    /// The earliest waiter deadline, so the caller can sleep exactly until then.
    pub fn next_waiter_deadline(&self) -> Option<u64> {
        self.waiters.values().map(|w| w.deadline_ms).min()
    }

    fn unlink_waiter(&mut self, nonce: &str, id: u64) {
        if let Some(ids) = self.waiters_by_nonce.get_mut(nonce) {
            ids.retain(|&x| x != id);
            if ids.is_empty() {
                self.waiters_by_nonce.remove(nonce);
            }
        }
    }

    fn take_waiters(&mut self, nonce: &str) -> Vec<W> {
        let Some(ids) = self.waiters_by_nonce.remove(nonce) else {
            return Vec::new();
        };
        ids.into_iter()
            .filter_map(|id| self.waiters.remove(&id))
            .map(|w| w.token)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(nonce: &str, key: u8) -> KeyBundle {
        KeyBundle {
            seq: 1,
            realm: "ims.example".into(),
            nonce: nonce.into(),
            call_id: "cid-1".into(),
            cseq: 1,
            impu: "sip:alice@ims.example".into(),
            impi: "alice@ims.example".into(),
            ck: Ck::from_bytes([key; 16]),
            ik: Ik::from_bytes([key ^ 0xff; 16]),
            issued_at_ms: 1_000,
            not_after_ms: 0,
            algorithm: "AKAv1-MD5".into(),
        }
    }

    #[test]
    fn entry_round_trips_bundle() {
        let b = bundle("n1", 7);
        let e = Entry::new(b.clone(), 5).unwrap();
        assert_eq!(e.to_bundle(), b);
        assert!(e.same_content(&b));
    }

    #[test]
    fn duplicate_conflict_and_seq_ignored() {
        let mut s: KeyStore<()> = KeyStore::new(StoreConfig::default());
        assert_eq!(
            s.insert(bundle("n", 1), 0).unwrap().outcome,
            InsertOutcome::Stored
        );
        let mut again = bundle("n", 1);
        again.seq = 99;
        again.issued_at_ms = 5_000;
        assert_eq!(
            s.insert(again, 10).unwrap().outcome,
            InsertOutcome::Duplicate
        );
        assert_eq!(s.insert(bundle("n", 2), 10).unwrap_err(), Error::Conflict);
        let st = s.stats();
        assert_eq!(
            (st.inserted, st.duplicates, st.conflicts, st.entries),
            (1, 1, 1, 1)
        );
        assert_eq!(s.get("n", None, 10).unwrap().ck, Ck::from_bytes([1; 16]));
    }

    #[test]
    fn call_id_must_match() {
        let mut s: KeyStore<()> = KeyStore::new(StoreConfig::default());
        s.insert(bundle("n", 1), 0).unwrap();
        assert!(s.get("n", Some("other"), 1).is_none());
        assert!(s.take("n", Some("other"), 1).is_none());
        assert_eq!(s.stats().call_id_mismatches, 2);
        assert!(s.take("n", Some("cid-1"), 1).is_some());
        assert!(s.is_empty());
    }

    #[test]
    fn not_after_caps_ttl_and_stale_refused() {
        let mut s: KeyStore<()> = KeyStore::new(StoreConfig::default());
        let mut b = bundle("n", 1);
        b.not_after_ms = 500;
        s.insert(b.clone(), 100).unwrap();
        assert!(s.get("n", None, 499).is_some());
        assert!(s.get("n", None, 500).is_none());
        assert_eq!(s.insert(b, 600).unwrap_err(), Error::Expired);
        assert_eq!(s.stats().refused_stale, 1);
        assert_eq!(s.stats().expired, 1);
    }
}
