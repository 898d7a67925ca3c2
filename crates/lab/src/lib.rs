//! Reference IMS network for demos, tests and benchmarks: HSS (Milenage), S-CSCF, I-CSCF, P-CSCF, UE.
//!
//! # Layout
//! - [`secret`], [`hex`]: zeroizing key types and hex text.
//! - [`milenage`]: TS 35.206 f1-f5*; [`aka`]: AUTN/AUTS and SQN handling (TS 33.102).
//! - [`digest`]: AKAv1-MD5 (RFC 3310) responses.
//! - [`hss`]: subscribers and authentication vectors.
//! - [`config`]: realm, registrar settings, the re-authentication policy.
//! - [`scscf`], [`pcscf`], [`ue`]: the network elements; the I-CSCF is an `ikt-relay` hop.
//! - [`network`]: starting the elements with optional agent hops; [`admin`]: the control endpoint.
//! - [`challenge`], [`via`], [`compose`], [`reginfo`]: the bits of SIP the elements need.
//! - [`demo`]: the `ims-lab demo` scenario.
#![forbid(unsafe_code)]

pub mod admin;
pub mod aka;
pub mod challenge;
pub mod cli_milenage;
pub mod compose;
pub mod config;
pub mod demo;
pub mod digest;
pub mod hex;
pub mod hss;
pub mod milenage;
pub mod network;
pub mod pcscf;
pub mod reginfo;
pub mod scscf;
pub mod secret;
pub mod ue;
pub mod via;

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
    /// The IMPI has no registration (e.g. re-authentication of an unregistered user).
    #[error("not registered")]
    NotRegistered,
    /// The I-CSCF relay could not start.
    #[error("relay: {0}")]
    Relay(String),
    /// A task this handle talks to has stopped.
    #[error("stopped")]
    Stopped,
    /// Waited too long.
    #[error("timed out")]
    Timeout,
    /// A socket operation failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
