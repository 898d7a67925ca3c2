//! CK/IK secret types, key bundles, TTL key store and the sealed header extension (AES-256-GCM, HKDF).
//!
//! No I/O and no clocks: every function that needs the time takes `now_ms` (Unix milliseconds),
//! so the agents drive it and tests are deterministic.
//!
//! # Layout
//! - [`secret`]: [`Ck`], [`Ik`], [`SecretBytes`], [`SealingKey`]: zeroized, redacted, compared in
//!   constant time; [`fingerprint`] for logs.
//! - [`bundle`]: [`KeyBundle`] and its protobuf encoding (wire-compatible with
//!   `proto/ikt/v1/key_transport.proto`, hand-written so key bytes never sit in unwiped buffers).
//! - [`store`]: [`KeyStore`], pending bundles keyed by challenge nonce, with TTL, a capacity bound,
//!   idempotent insert, purge by IMPI, and waiters for the p-cscf-agent's parked 401s.
//! - [`seal`]: the `kt="ikt1.<kid>.<…>"` token of DESIGN §2.2: [`Sealer`] and [`Opener`].
//! - [`Error`]: the crate's one error type; every variant is `Copy` and free of key material.
#![forbid(unsafe_code)]

pub mod bundle;
mod error;
pub mod seal;
pub mod secret;
pub mod store;

pub use bundle::KeyBundle;
pub use error::{DecodeError, Error, Field, MalformedToken};
pub use seal::{AadContext, Opener, OpenerConfig, Sealer, derive_key};
pub use secret::{Ck, Fingerprint, Ik, SealingKey, SecretBytes, fingerprint};
pub use store::{InsertOutcome, Inserted, KeyStore, StoreConfig, StoreStats, Wait, WaiterId};
