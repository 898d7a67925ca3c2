//! Library half of the `s-cscf-agent` binary: the sidecar beside the S-CSCF that takes CK/IK out
//! of AKA 401s and sends them to the right p-cscf-agent.
//!
//! # Layout
//! - [`config`]: the TOML file, its defaults and its validation.
//! - [`extract`]: finding CK/IK in the challenges of a 401/407 to REGISTER.
//! - [`hook`]: the relay hook that applies each peer's mode and the fallback policy.
//! - [`local_api`]: `KeyPublisher.Publish` on a Unix socket.
//! - [`run`]: wiring a config into a running agent.
#![forbid(unsafe_code)]

pub mod config;
pub mod extract;
pub mod hook;
pub mod local_api;
pub mod run;
