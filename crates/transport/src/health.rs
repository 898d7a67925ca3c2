//! Per-peer health, shared between a connection task and the caller.

use std::sync::Mutex;

/// Health of one peer, as seen by a sender (toward a receiver) or a receiver (from a sender).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerHealth {
    /// Agent id of the peer.
    pub peer: String,
    /// A connection (sender) or at least one stream (receiver) is established.
    pub up: bool,
    /// Last connection or protocol error, if any (never contains key material).
    pub last_error: Option<String>,
    /// Bundles sent and not yet acknowledged (sender) / handed to the caller and not yet answered (receiver).
    pub in_flight: usize,
    /// Bundles acknowledged as stored or duplicate.
    pub delivered: u64,
    /// Bundles answered `REJECTED` (or unspecified).
    pub refused: u64,
    /// Bundles recognised as duplicates (receiver: by (nonce, seq); sender: acks with `DUPLICATE`).
    pub duplicates: u64,
    /// Connections established so far (a value above 1 means reconnects happened).
    pub connects: u64,
    /// Bundles sent again after a reconnect (sender only).
    pub resent: u64,
    /// Bundles given up because `not_after_ms` passed before an ack (sender only).
    pub expired: u64,
}

/// Mutable health cell; lock held only for a field update.
#[derive(Debug, Default)]
pub(crate) struct HealthCell(Mutex<PeerHealth>);

impl HealthCell {
    pub(crate) fn new(peer: &str) -> Self {
        Self(Mutex::new(PeerHealth {
            peer: peer.to_owned(),
            ..PeerHealth::default()
        }))
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut PeerHealth)) {
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    pub(crate) fn get(&self) -> PeerHealth {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
