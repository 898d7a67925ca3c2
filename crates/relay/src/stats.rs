//! Relay counters: lock-free atomics the agents read and turn into Prometheus metrics.
//!
//! The library installs no metrics recorder; `Relay::stats` returns a [`StatsSnapshot`] the
//! embedding binary exports however it likes.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a message was not forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The bytes did not scan as SIP (or broke a configured limit).
    Malformed,
    /// A response whose top Via is not this relay's.
    NotOurVia,
    /// A response with no Via left after removing ours (it was addressed to us).
    NoNextVia,
    /// No Route, no next hop and no usable Request-URI, or a target host that did not resolve.
    NoRoute,
    /// No socket of the needed transport or address family.
    NoTransport,
    /// A peer's bounded TCP send queue was full.
    QueueFull,
    /// The kernel refused the datagram or the TCP connection failed or closed.
    SendError,
    /// The hook returned `Verdict::Drop`.
    Hook,
    /// Too many messages were already held by hooks.
    HoldOverflow,
    /// A held message was not released within `Config::max_hold`.
    HoldTimeout,
    /// The `Release` handle of a held message was dropped without a verdict.
    HoldAbandoned,
    /// The relay was shutting down.
    Shutdown,
    /// Handling the message panicked (a bug, in a hook or in the relay); the relay kept running.
    Panic,
}

impl DropReason {
    /// Every reason, in a stable order (for exporting one labelled series per reason).
    pub const ALL: [DropReason; 13] = [
        DropReason::Malformed,
        DropReason::NotOurVia,
        DropReason::NoNextVia,
        DropReason::NoRoute,
        DropReason::NoTransport,
        DropReason::QueueFull,
        DropReason::SendError,
        DropReason::Hook,
        DropReason::HoldOverflow,
        DropReason::HoldTimeout,
        DropReason::HoldAbandoned,
        DropReason::Shutdown,
        DropReason::Panic,
    ];

    /// Short snake_case label, suitable as a metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::NotOurVia => "not_our_via",
            DropReason::NoNextVia => "no_next_via",
            DropReason::NoRoute => "no_route",
            DropReason::NoTransport => "no_transport",
            DropReason::QueueFull => "queue_full",
            DropReason::SendError => "send_error",
            DropReason::Hook => "hook",
            DropReason::HoldOverflow => "hold_overflow",
            DropReason::HoldTimeout => "hold_timeout",
            DropReason::HoldAbandoned => "hold_abandoned",
            DropReason::Shutdown => "shutdown",
            DropReason::Panic => "panic",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Live counters shared by every task of one relay.
#[derive(Debug, Default)]
pub struct Stats {
    received_requests: AtomicU64,
    received_responses: AtomicU64,
    forwarded_requests: AtomicU64,
    forwarded_responses: AtomicU64,
    answered: AtomicU64,
    too_many_hops: AtomicU64,
    held: AtomicU64,
    released: AtomicU64,
    tcp_accepted: AtomicU64,
    tcp_connected: AtomicU64,
    tcp_closed: AtomicU64,
    tcp_idle_closed: AtomicU64,
    tcp_refused: AtomicU64,
    dropped: [AtomicU64; DropReason::ALL.len()],
}

/// A copy of the counters at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Requests received (before any check).
    pub received_requests: u64,
    /// Responses received (before any check).
    pub received_responses: u64,
    /// Requests sent on to the next hop (handed to the kernel, or queued on a TCP connection:
    /// a later TCP failure also counts in `DropReason::SendError`).
    pub forwarded_requests: u64,
    /// Responses sent on toward the previous hop (same convention as `forwarded_requests`).
    pub forwarded_responses: u64,
    /// Responses the relay or a hook generated and sent back instead of forwarding.
    pub answered: u64,
    /// Requests answered with 483 because Max-Forwards reached zero.
    pub too_many_hops: u64,
    /// Messages a hook held.
    pub held: u64,
    /// Held messages whose release verdict was applied.
    pub released: u64,
    /// TCP connections accepted.
    pub tcp_accepted: u64,
    /// TCP connections opened by the relay.
    pub tcp_connected: u64,
    /// TCP connections closed (for any reason).
    pub tcp_closed: u64,
    /// TCP connections closed because they were idle.
    pub tcp_idle_closed: u64,
    /// TCP connections refused because `max_tcp_connections` was reached.
    pub tcp_refused: u64,
    /// Dropped messages per reason, indexed like [`DropReason::ALL`].
    pub dropped: [u64; DropReason::ALL.len()],
}

impl StatsSnapshot {
    /// Messages dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    /// Messages dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Every counter as `(metric name, label name, label value, value)`, ready for a
    /// Prometheus exporter (names follow DESIGN §7: `ikt_relay_*_total`).
    pub fn counters(&self) -> Vec<(&'static str, &'static str, &'static str, u64)> {
        let mut v = vec![
            (
                "ikt_relay_received_total",
                "kind",
                "request",
                self.received_requests,
            ),
            (
                "ikt_relay_received_total",
                "kind",
                "response",
                self.received_responses,
            ),
            (
                "ikt_relay_forwarded_total",
                "kind",
                "request",
                self.forwarded_requests,
            ),
            (
                "ikt_relay_forwarded_total",
                "kind",
                "response",
                self.forwarded_responses,
            ),
            ("ikt_relay_answered_total", "reason", "any", self.answered),
            (
                "ikt_relay_answered_total",
                "reason",
                "too_many_hops",
                self.too_many_hops,
            ),
            ("ikt_relay_held_total", "outcome", "held", self.held),
            ("ikt_relay_held_total", "outcome", "released", self.released),
            (
                "ikt_relay_tcp_connections_total",
                "event",
                "accepted",
                self.tcp_accepted,
            ),
            (
                "ikt_relay_tcp_connections_total",
                "event",
                "connected",
                self.tcp_connected,
            ),
            (
                "ikt_relay_tcp_connections_total",
                "event",
                "closed",
                self.tcp_closed,
            ),
            (
                "ikt_relay_tcp_connections_total",
                "event",
                "idle_closed",
                self.tcp_idle_closed,
            ),
            (
                "ikt_relay_tcp_connections_total",
                "event",
                "refused",
                self.tcp_refused,
            ),
        ];
        for r in DropReason::ALL {
            v.push((
                "ikt_relay_dropped_total",
                "reason",
                r.as_str(),
                self.dropped(r),
            ));
        }
        v
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

impl Stats {
    /// Copies every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let mut dropped = [0; DropReason::ALL.len()];
        for (d, c) in dropped.iter_mut().zip(self.dropped.iter()) {
            *d = load(c);
        }
        StatsSnapshot {
            received_requests: load(&self.received_requests),
            received_responses: load(&self.received_responses),
            forwarded_requests: load(&self.forwarded_requests),
            forwarded_responses: load(&self.forwarded_responses),
            answered: load(&self.answered),
            too_many_hops: load(&self.too_many_hops),
            held: load(&self.held),
            released: load(&self.released),
            tcp_accepted: load(&self.tcp_accepted),
            tcp_connected: load(&self.tcp_connected),
            tcp_closed: load(&self.tcp_closed),
            tcp_idle_closed: load(&self.tcp_idle_closed),
            tcp_refused: load(&self.tcp_refused),
            dropped,
        }
    }

    pub(crate) fn dropped(&self, reason: DropReason) {
        bump(&self.dropped[reason.index()]);
    }
    pub(crate) fn received(&self, request: bool) {
        bump(if request {
            &self.received_requests
        } else {
            &self.received_responses
        });
    }
    pub(crate) fn forwarded(&self, request: bool) {
        bump(if request {
            &self.forwarded_requests
        } else {
            &self.forwarded_responses
        });
    }
    pub(crate) fn answered(&self) {
        bump(&self.answered);
    }
    pub(crate) fn too_many_hops(&self) {
        bump(&self.too_many_hops);
    }
    pub(crate) fn held(&self) {
        bump(&self.held);
    }
    pub(crate) fn released(&self) {
        bump(&self.released);
    }
    pub(crate) fn tcp_accepted(&self) {
        bump(&self.tcp_accepted);
    }
    pub(crate) fn tcp_connected(&self) {
        bump(&self.tcp_connected);
    }
    pub(crate) fn tcp_closed(&self, idle: bool) {
        bump(&self.tcp_closed);
        if idle {
            bump(&self.tcp_idle_closed);
        }
    }
    pub(crate) fn tcp_refused(&self) {
        bump(&self.tcp_refused);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reasons_index_their_own_slot() {
        let s = Stats::default();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            for _ in 0..=i {
                s.dropped(*r);
            }
        }
        let snap = s.snapshot();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(snap.dropped(*r), i as u64 + 1, "{}", r.as_str());
        }
        assert_eq!(snap.dropped_total(), (1..=13).sum::<u64>());
        let exported: u64 = snap
            .counters()
            .iter()
            .filter(|c| c.0 == "ikt_relay_dropped_total")
            .map(|c| c.3)
            .sum();
        assert_eq!(exported, snap.dropped_total());
    }
}
