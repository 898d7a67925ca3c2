//! Library half of the `p-cscf-agent` binary: the sidecar beside the P-CSCF that puts CK/IK back
//! into AKA 401s exactly as the P-CSCF expects, or hands them over by a local API.
//!
//! # Layout
//! - [`config`]: the TOML file, its defaults and its validation.
//! - [`hub`]: the key store shared by the hook, the receivers and the local API.
//! - [`hook`]: the relay hook that restores keys or fails closed.
//! - [`local_api`]: `KeyStore.Take`/`Watch` on a Unix socket.
//! - [`run`]: wiring a config into a running agent.
#![forbid(unsafe_code)]

pub mod config;
pub mod hook;
pub mod hub;
pub mod local_api;
pub mod run;
