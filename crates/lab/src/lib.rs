//! Reference IMS network for demos, tests and benchmarks: HSS (Milenage), S-CSCF, I-CSCF, P-CSCF, UE.
//!
//! # Layout
//! - [`secret`], [`hex`]: zeroizing key types and hex text.
//! - [`milenage`]: TS 35.206 f1-f5*; [`aka`]: AUTN/AUTS and SQN handling (TS 33.102).
//! - [`digest`]: AKAv1-MD5 (RFC 3310) responses.
//! - [`hss`]: subscribers and authentication vectors.
#![forbid(unsafe_code)]

pub mod aka;
pub mod cli_milenage;
pub mod digest;
pub mod hex;
pub mod hss;
pub mod milenage;
pub mod secret;

/// Errors of the lab library. Messages never carry key material.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration or subscriber file is invalid; the message names the field.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The IMPI is not provisioned in the HSS.
    #[error("unknown subscriber")]
    UnknownSubscriber,
    /// AUTS did not verify (MAC-S mismatch).
    #[error("AUTS failed verification")]
    AutsInvalid,
    /// The operating system's random source failed.
    #[error("random source unavailable")]
    Random,
    /// A socket operation failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
