//! Out-of-band key delivery between agents: gRPC (tonic) and QUIC (quinn) over mutual TLS 1.3.
//!
//! The s-cscf-agent holds one [`PeerSender`] per p-cscf-agent and calls [`KeySender::send`];
//! the p-cscf-agent runs a receiver ([`grpc::serve`] or [`quic::serve`]) and answers each
//! [`Delivery`] through its [`Responder`] with `Stored`, `Duplicate` or `Rejected`. This crate
//! does not know SIP: it moves [`KeyBundle`]s and acknowledgements.
//!
//! Guarantees: TLS 1.3 only, mutual authentication against a private CA, peer authorisation by
//! DNS SAN ([`PeerTable`]), certificate reload without restart ([`TlsHandle::reload`]),
//! reconnect with exponential backoff and jitter, a bounded in-flight window, at-least-once
//! delivery (unacked bundles are resent after reconnect) and receiver-side deduplication by
//! (peer, nonce, seq) in a bounded recent-set.
//!
//! # Layout
//! - [`tls`]: reloadable mutual-TLS material, peer authorisation, refused-handshake counters.
//! - [`sender`]: the transport-independent outbox (window, pending map, acks, backoff).
//! - [`receiver`]: deliveries, responders, dedup set and per-peer receiver health.
//! - [`framing`]: varint length-delimited protobuf frames (QUIC).
//! - [`grpc`]: tonic `KeyTransport.Deliver` over our own TLS acceptor and connector.
//! - [`quic`]: quinn, ALPN `ikt/1`, no 0-RTT.
//! - [`health`]: per-peer health ([`PeerHealth`]).
#![forbid(unsafe_code)]

pub mod framing;
pub mod grpc;
pub mod health;
pub mod quic;
pub mod receiver;
pub mod sender;
pub mod tls;

pub use health::PeerHealth;
pub use ikt_proto::{DeliveryAck, KeyBundle, Status};
pub use receiver::{Delivery, ReceiverConfig, ReceiverHandle, Responder};
pub use sender::{Ack, Backoff, DeliveryHandle, KeySender, PeerSender, SenderConfig};
pub use tls::{PeerTable, RefusalReason, Refusals, TlsHandle, TlsSource};

/// Default cap on one protobuf message from the network, in bytes.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4096;

/// Errors of the key transport.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The in-flight window is full; retry later or use `send_wait`.
    #[error("in-flight window full ({0} bundles awaiting ack)")]
    WindowFull(usize),
    /// The sender or receiver was closed.
    #[error("transport closed")]
    Closed,
    /// The bundle's `not_after_ms` passed before it was acknowledged.
    #[error("bundle seq {0} expired before it was acknowledged")]
    Expired(u64),
    /// A bundle is larger than the message limit.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Encoded length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A frame from the network could not be decoded.
    #[error("malformed frame: {0}")]
    Frame(String),
    /// Reading a PEM file failed.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// PEM content is unusable.
    #[error("invalid PEM in {what}: {reason}")]
    Pem {
        /// Which input.
        what: String,
        /// Why.
        reason: String,
    },
    /// The rustls configuration could not be built (e.g. key does not match certificate).
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// A peer id is not a valid DNS name (or is `localhost`, which every dev cert carries).
    #[error("invalid peer id {0:?}: must be a DNS name other than localhost")]
    InvalidPeerId(String),
    /// Binding the listening socket failed.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A connection or stream failed.
    #[error("connection: {0}")]
    Connection(String),
    /// The peer sent an ack that violates the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
}

/// Milliseconds since the Unix epoch (wall clock, as in `not_after_ms`).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
