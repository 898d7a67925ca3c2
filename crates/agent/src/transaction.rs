//! A short-lived, bounded memory of REGISTER transactions, keyed by (Call-ID, CSeq number).
//!
//! The agents are stateless relays, but a response does not repeat everything its request said:
//! a 401 has no Path and no Authorization username, a 200 to a de-registration does not say
//! `Expires: 0` of the request. The agents remember what they need from the request for one
//! transaction lifetime (Timer F, 32 s) and never more than `capacity` entries, so a flood of
//! requests cannot grow memory without bound: the oldest entries are dropped first.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Default lifetime of a remembered transaction: SIP Timer F.
pub const DEFAULT_TTL: Duration = Duration::from_secs(32);

/// Remembers a value per (Call-ID, CSeq number) for a bounded time and count.
#[derive(Debug)]
pub struct Transactions<V> {
    ttl: Duration,
    capacity: usize,
    map: HashMap<(Box<str>, u32), (Instant, V)>,
    order: VecDeque<(Instant, Box<str>, u32)>,
}

impl<V> Transactions<V> {
    /// An empty memory holding at most `capacity` transactions for `ttl` each.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Remembers `value` for the transaction; replaces an earlier value for the same key.
    pub fn insert(&mut self, call_id: &str, cseq: u32, value: V, now: Instant) {
        self.expire(now);
        while self.map.len() >= self.capacity {
            let Some((_, cid, n)) = self.order.pop_front() else {
                break;
            };
            self.map.remove(&(cid, n));
        }
        let key: Box<str> = call_id.into();
        self.order.push_back((now, key.clone(), cseq));
        self.map.insert((key, cseq), (now, value));
    }

    /// The value remembered for the transaction, if still live.
    pub fn get(&mut self, call_id: &str, cseq: u32, now: Instant) -> Option<&V> {
        self.expire(now);
        self.map.get(&(call_id.into(), cseq)).map(|(_, v)| v)
    }

    /// Forgets and returns the value for the transaction.
    pub fn remove(&mut self, call_id: &str, cseq: u32, now: Instant) -> Option<V> {
        self.expire(now);
        self.map.remove(&(call_id.into(), cseq)).map(|(_, v)| v)
    }

    /// Transactions remembered now.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((t, _, _)) = self.order.front() {
            if now.duration_since(*t) < self.ttl {
                break;
            }
            let Some((t, cid, n)) = self.order.pop_front() else {
                break;
            };
            // An entry re-inserted later has a newer timestamp: keep it.
            let key = (cid, n);
            if self.map.get(&key).is_some_and(|(at, _)| *at == t) {
                self.map.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_after_ttl() {
        let t0 = Instant::now();
        let mut m = Transactions::new(10, Duration::from_secs(32));
        m.insert("c1", 1, "a", t0);
        assert_eq!(m.get("c1", 1, t0 + Duration::from_secs(31)), Some(&"a"));
        assert_eq!(m.get("c1", 1, t0 + Duration::from_secs(32)), None);
        assert!(m.is_empty());
    }

    #[test]
    fn bounded_oldest_first() {
        let t0 = Instant::now();
        let mut m = Transactions::new(2, Duration::from_secs(32));
        m.insert("c1", 1, 1, t0);
        m.insert("c2", 1, 2, t0);
        m.insert("c3", 1, 3, t0);
        assert_eq!(m.len(), 2);
        assert_eq!(m.get("c1", 1, t0), None);
        assert_eq!(m.get("c3", 1, t0), Some(&3));
    }

    #[test]
    fn reinsert_keeps_newer_value() {
        let t0 = Instant::now();
        let mut m = Transactions::new(10, Duration::from_secs(10));
        m.insert("c1", 1, "old", t0);
        m.insert("c1", 1, "new", t0 + Duration::from_secs(5));
        assert_eq!(m.get("c1", 1, t0 + Duration::from_secs(12)), Some(&"new"));
        assert_eq!(m.remove("c1", 1, t0 + Duration::from_secs(12)), Some("new"));
    }
}
