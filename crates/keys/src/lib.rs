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
//!
//! # Example: sealed mode, and the p-side store with a parked 401
//! ```
//! use ikt_keys::{AadContext, Ck, Ik, KeyBundle, KeyStore, Opener, OpenerConfig, Sealer,
//!     SecretBytes, StoreConfig, store::Wait};
//!
//! # fn main() -> Result<(), ikt_keys::Error> {
//! let secret = SecretBytes::from_hex("000102030405060708090a0b0c0d0e0f")?; // read from a file
//! let bundle = KeyBundle {
//!     seq: 1,
//!     realm: "ims.example".into(),
//!     nonce: "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=".into(),
//!     call_id: "a84b4c76e66710@pc33".into(),
//!     cseq: 1,
//!     impu: "sip:alice@ims.example".into(),
//!     impi: "alice@ims.example".into(),
//!     ck: Ck::from_hex("00112233445566778899aabbccddeeff")?,
//!     ik: Ik::from_hex("ffeeddccbbaa99887766554433221100")?,
//!     issued_at_ms: 1_000,
//!     not_after_ms: 65_000,
//!     algorithm: "AKAv1-MD5".into(),
//! };
//!
//! // s-cscf-agent: replace ck/ik with kt="<token>".
//! let sealer = Sealer::new("k1", &secret, "scscf-1", "pcscf-1")?;
//! let token = sealer.seal(&bundle, "sip:alice@ims.example")?;
//!
//! // p-cscf-agent: open with the context read from the 401 it is in.
//! let mut opener = Opener::new(OpenerConfig::default());
//! opener.add_kid("k1", &secret, "scscf-1", "pcscf-1")?;
//! let ctx = AadContext { realm: "ims.example", nonce: &bundle.nonce, call_id: "a84b4c76e66710@pc33",
//!     cseq: 1, to_uri: "sip:alice@ims.example" };
//! let opened = opener.open(&token, &ctx, 1_010)?;
//! assert_eq!(opened.ck.to_hex().as_str(), "00112233445566778899aabbccddeeff");
//!
//! // p-cscf-agent, out-of-band modes: the 401 beat its bundle, so park it. The token type is the
//! // agent's choice (a oneshot sender in practice); the store is kept under the agent's Mutex.
//! let mut store: KeyStore<&str> = KeyStore::new(StoreConfig::default());
//! let Wait::Parked(_) = store.register_waiter(&bundle.nonce, Some(&bundle.call_id), 1_200, "401#1", 1_000)?
//!     else { unreachable!("nothing stored yet") };
//! let inserted = store.insert(bundle, 1_050)?;
//! assert_eq!(inserted.woken, vec!["401#1"]); // wake it after releasing the lock, then:
//! let restored = store.get("q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=", Some("a84b4c76e66710@pc33"), 1_051);
//! assert!(restored.is_some());
//! assert!(store.expired_waiters(1_200).is_empty());
//! # Ok(())
//! # }
//! ```
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
