//! Key store: TTL, capacity, idempotency, waiters, purge; model-checked with proptest.

use std::collections::HashMap;

use ikt_keys::store::{DEFAULT_TTL_MS, Wait};
use ikt_keys::{Error, InsertOutcome, KeyStore, StoreConfig};
use proptest::prelude::*;

use crate::support::bundle;

fn store(capacity: usize) -> KeyStore<u32> {
    KeyStore::new(StoreConfig {
        capacity,
        max_waiters: 4,
        ..StoreConfig::default()
    })
}

#[test]
fn default_ttl_is_64_seconds() {
    assert_eq!(StoreConfig::default().ttl_ms, 64_000);
    assert_eq!(DEFAULT_TTL_MS, 64_000);
    let mut s = store(10);
    s.insert(bundle("n", 1), 1_000).unwrap();
    assert!(s.get("n", None, 64_999).is_some());
    assert!(
        s.get("n", None, 65_000).is_none(),
        "lazy expiry at the deadline"
    );
    assert_eq!(s.stats().expired, 1);
    assert!(s.is_empty());
}

#[test]
fn explicit_expire_removes_only_due_entries() {
    let mut s = store(10);
    s.insert(bundle("a", 1), 0).unwrap();
    s.insert(bundle("b", 2), 10_000).unwrap();
    assert_eq!(s.expire(63_999), 0);
    assert_eq!(s.expire(64_000), 1);
    assert!(!s.contains("a", 64_000));
    assert!(s.contains("b", 64_000));
    assert_eq!(s.expire(74_000), 1);
    assert_eq!(s.stats().expired, 2);
}

#[test]
fn capacity_refuses_and_counts_then_recovers_after_expiry() {
    let mut s = store(2);
    s.insert(bundle("a", 1), 0).unwrap();
    s.insert(bundle("b", 2), 1).unwrap();
    assert_eq!(s.insert(bundle("c", 3), 2).unwrap_err(), Error::StoreFull);
    assert_eq!(s.insert(bundle("d", 3), 3).unwrap_err(), Error::StoreFull);
    assert_eq!(s.stats().refused_full, 2);
    assert_eq!(s.len(), 2);
    // A duplicate of a stored nonce is still accepted when full.
    assert_eq!(
        s.insert(bundle("a", 1), 4).unwrap().outcome,
        InsertOutcome::Duplicate
    );
    // Once "a" is due, the full store makes room by expiring before refusing.
    assert_eq!(
        s.insert(bundle("c", 3), 64_000).unwrap().outcome,
        InsertOutcome::Stored
    );
    assert_eq!(s.len(), 2);
}

#[test]
fn idempotent_insert_and_conflict() {
    let mut s = store(10);
    assert_eq!(
        s.insert(bundle("n", 1), 0).unwrap().outcome,
        InsertOutcome::Stored
    );
    assert_eq!(
        s.insert(bundle("n", 1), 5).unwrap().outcome,
        InsertOutcome::Duplicate
    );
    assert_eq!(s.insert(bundle("n", 2), 6).unwrap_err(), Error::Conflict);
    let mut other_call = bundle("n", 1);
    other_call.call_id = "other@x".into();
    assert_eq!(s.insert(other_call, 7).unwrap_err(), Error::Conflict);
    let st = s.stats();
    assert_eq!((st.inserted, st.duplicates, st.conflicts), (1, 1, 2));
    // The original keys survive the conflicting offers.
    assert_eq!(s.take("n", None, 8).unwrap().ck, bundle("n", 1).ck);
}

#[test]
fn get_keeps_take_removes() {
    let mut s = store(10);
    s.insert(bundle("n", 1), 0).unwrap();
    assert_eq!(
        s.get("n", Some("a84b4c76e66710@pc33.example"), 1).unwrap(),
        bundle("n", 1)
    );
    assert!(
        s.get("n", None, 2).is_some(),
        "a retransmitted 401 is restored again"
    );
    assert!(s.take("n", None, 3).is_some());
    assert!(s.take("n", None, 4).is_none());
    assert_eq!(s.stats().taken, 1);
}

#[test]
fn purge_by_impi() {
    let mut s = store(10);
    let mut bob = bundle("b", 2);
    bob.impi = "bob@ims".into();
    s.insert(bundle("a1", 1), 0).unwrap();
    s.insert(bundle("a2", 3), 0).unwrap();
    s.insert(bob, 0).unwrap();
    assert_eq!(
        s.purge_impi("001010000000001@ims.mnc001.mcc001.3gppnetwork.org"),
        2
    );
    assert_eq!(s.purge_impi("nobody"), 0);
    assert_eq!(s.len(), 1);
    assert!(s.contains("b", 1));
    assert_eq!(s.stats().purged, 2);
}

#[test]
fn purge_by_impu() {
    let mut s = store(10);
    let mut bob = bundle("b", 2);
    bob.impu = "sip:bob@ims".into();
    let alice_impu = bundle("x", 1).impu;
    s.insert(bundle("a1", 1), 0).unwrap();
    s.insert(bob, 0).unwrap();
    assert_eq!(s.purge_impu(&alice_impu), 1);
    assert_eq!(s.purge_impu("sip:nobody@ims"), 0);
    assert!(s.contains("b", 1) && !s.contains("a1", 1));
    assert_eq!(s.stats().purged, 1);
}

#[test]
fn waiter_woken_at_arrival() {
    let mut s = store(10);
    let w1 = s.register_waiter("n", None, 200, 1, 0).unwrap();
    let w2 = s.register_waiter("n", None, 300, 2, 10).unwrap();
    assert!(matches!(w1, Wait::Parked(_)) && matches!(w2, Wait::Parked(_)));
    s.register_waiter("other", None, 200, 3, 0).unwrap();
    let ins = s.insert(bundle("n", 1), 50).unwrap();
    let mut woken = ins.woken;
    woken.sort_unstable();
    assert_eq!(woken, vec![1, 2]);
    assert_eq!(s.stats().waiters, 1);
    // Nothing more to wake for "n"; "other" times out at its deadline.
    assert!(s.expired_waiters(199).is_empty());
    assert_eq!(s.expired_waiters(200), vec![3]);
    assert_eq!(s.stats().waiters_expired, 1);
}

#[test]
fn waiter_times_out_at_deadline_then_late_bundle_wakes_nobody() {
    let mut s = store(10);
    assert!(matches!(
        s.register_waiter("n", None, 200, 7, 0).unwrap(),
        Wait::Parked(_)
    ));
    assert_eq!(s.next_waiter_deadline(), Some(200));
    assert!(s.expired_waiters(150).is_empty());
    assert_eq!(s.expired_waiters(200), vec![7]);
    assert!(s.insert(bundle("n", 1), 250).unwrap().woken.is_empty());
}

#[test]
fn waiter_ready_when_bundle_already_there() {
    let mut s = store(10);
    s.insert(bundle("n", 1), 0).unwrap();
    match s.register_waiter("n", None, 200, 9, 5).unwrap() {
        Wait::Ready { bundle: b, token } => {
            assert_eq!(token, 9);
            assert_eq!(b.nonce, "n");
        }
        Wait::Parked(_) => panic!("bundle was stored; must not park"),
    }
    assert_eq!(s.stats().waiters, 0);
}

#[test]
fn waiters_are_bounded_and_cancellable() {
    let mut s = store(10);
    let mut ids = Vec::new();
    for i in 0..4 {
        match s
            .register_waiter(&format!("n{i}"), None, 100, i, 0)
            .unwrap()
        {
            Wait::Parked(id) => ids.push(id),
            Wait::Ready { .. } => panic!("nothing stored"),
        }
    }
    assert_eq!(
        s.register_waiter("n9", None, 100, 9, 0).unwrap_err(),
        Error::WaitersFull
    );
    assert_eq!(s.stats().waiters_refused, 1);
    assert_eq!(s.cancel_waiter(ids[1]), Some(1));
    assert_eq!(s.cancel_waiter(ids[1]), None);
    assert!(
        s.insert(bundle("n1", 1), 1).unwrap().woken.is_empty(),
        "cancelled waiter not woken"
    );
    assert!(matches!(
        s.register_waiter("n9", None, 100, 9, 0).unwrap(),
        Wait::Parked(_)
    ));
}

#[test]
fn memory_per_pending_bundle_within_budget() {
    // Realistic IMS identities: 33-byte realm, 44-byte nonce, 53-byte IMPU, 49-byte IMPI.
    let mut s: KeyStore<()> = KeyStore::new(StoreConfig {
        capacity: 20_000,
        ..StoreConfig::default()
    });
    for n in [1usize, 1_000, 10_000] {
        while s.len() < n {
            let i = s.len();
            let mut b = bundle(&format!("q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83v{i:08}"), 1);
            b.call_id = format!("{i:08}-a84b4c76e66710@pc33.example");
            s.insert(b, 0).unwrap();
        }
        let per_entry = s.memory_estimate() / s.len();
        println!("entries {n}: about {per_entry} bytes per pending bundle");
        assert!(
            per_entry <= 512,
            "{per_entry} bytes per entry at {n} entries"
        );
    }
    println!(
        "fixed record: {} bytes",
        ikt_keys::store::ENTRY_RECORD_BYTES
    );
}

#[derive(Debug, Clone)]
enum Op {
    Insert { n: u8, key: u8, impi: u8 },
    Advance(u64),
    Get(u8),
    Take(u8),
    Expire,
    Purge(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..6u8, 0..2u8, 0..2u8).prop_map(|(n, key, impi)| Op::Insert { n, key, impi }),
        3 => (0..40_000u64).prop_map(Op::Advance),
        2 => (0..6u8).prop_map(Op::Get),
        1 => (0..6u8).prop_map(Op::Take),
        1 => Just(Op::Expire),
        1 => (0..2u8).prop_map(Op::Purge),
    ]
}

/// Reference model: nonce -> (key, impi, deadline); mirrors the store's lazy expiry points.
#[derive(Default)]
struct Model {
    map: HashMap<u8, (u8, u8, u64)>,
}

impl Model {
    fn lazy(&mut self, n: u8, now: u64) {
        if self.map.get(&n).is_some_and(|e| e.2 <= now) {
            self.map.remove(&n);
        }
    }
    fn expire(&mut self, now: u64) -> usize {
        let before = self.map.len();
        self.map.retain(|_, e| e.2 > now);
        before - self.map.len()
    }
}

fn impi(i: u8) -> String {
    format!("user{i}@ims")
}

proptest! {
    #[test]
    fn store_matches_model(ops in proptest::collection::vec(op(), 1..80)) {
        const CAP: usize = 4;
        const TTL: u64 = 64_000;
        let mut s: KeyStore<()> = KeyStore::new(StoreConfig { capacity: CAP, ttl_ms: TTL, max_waiters: 1 });
        let mut m = Model::default();
        let mut now = 0u64;
        for op in ops {
            match op {
                Op::Insert { n, key, impi: i } => {
                    let mut b = bundle(&format!("nonce-{n}"), key);
                    b.impi = impi(i);
                    m.lazy(n, now);
                    let want = match m.map.get(&n) {
                        Some(&(k, mi, _)) if k == key && mi == i => Ok(InsertOutcome::Duplicate),
                        Some(_) => Err(Error::Conflict),
                        None => {
                            if m.map.len() >= CAP {
                                m.expire(now);
                            }
                            if m.map.len() >= CAP {
                                Err(Error::StoreFull)
                            } else {
                                m.map.insert(n, (key, i, now + TTL));
                                Ok(InsertOutcome::Stored)
                            }
                        }
                    };
                    prop_assert_eq!(s.insert(b, now).map(|i| i.outcome), want);
                }
                Op::Advance(d) => now += d,
                Op::Get(n) => {
                    m.lazy(n, now);
                    let got = s.get(&format!("nonce-{n}"), None, now).map(|b| b.ck);
                    prop_assert_eq!(got, m.map.get(&n).map(|e| bundle("", e.0).ck));
                }
                Op::Take(n) => {
                    m.lazy(n, now);
                    let got = s.take(&format!("nonce-{n}"), None, now).map(|b| b.ck);
                    prop_assert_eq!(got, m.map.remove(&n).map(|e| bundle("", e.0).ck));
                }
                Op::Expire => {
                    // The store may have expired some entries lazily already; compare the result.
                    s.expire(now);
                    m.expire(now);
                }
                Op::Purge(i) => {
                    let before = m.map.len();
                    m.map.retain(|_, e| e.1 != i);
                    prop_assert_eq!(s.purge_impi(&impi(i)), before - m.map.len());
                }
            }
            prop_assert_eq!(s.len(), m.map.len());
            prop_assert!(s.len() <= CAP);
        }
    }

    #[test]
    fn waiter_wakes_exactly_once(arrival in 0..1_000u64, deadline in 1..1_000u64, tick in 1..50u64) {
        let mut s: KeyStore<u32> = KeyStore::new(StoreConfig::default());
        prop_assert!(matches!(s.register_waiter("n", None, deadline, 1, 0).unwrap(), Wait::Parked(_)));
        let mut wakes = Vec::new();
        let mut now = 0;
        let mut arrived = false;
        // The agent's loop: a timer tick checks deadlines; the bundle arrives at `arrival`.
        while now <= 1_100 {
            if !arrived && now >= arrival {
                arrived = true;
                for t in s.insert(bundle("n", 1), now).unwrap().woken {
                    wakes.push((t, now, "arrival"));
                }
            }
            for t in s.expired_waiters(now) {
                wakes.push((t, now, "deadline"));
            }
            now += tick;
        }
        prop_assert_eq!(wakes.len(), 1);
        let (_, at, why) = wakes[0];
        // Within one tick of whichever came first.
        let first = arrival.min(deadline);
        prop_assert!(at >= first && at < first + tick, "{at} {first} {why}");
        if arrival < deadline {
            prop_assert_eq!(why, "arrival");
        }
    }
}
