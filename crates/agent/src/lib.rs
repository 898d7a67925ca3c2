//! Runtime pieces that both sidecar agents share.
//!
//! The agents' binaries stay thin: they parse config, install global state and wire libraries
//! together. What they have in common lives here, so the two behave alike for an operator: the same
//! admin endpoint (`/metrics`, `/healthz`), the same log format, the same signal handling and the same
//! rules for reading secrets and config files.
//!
//! # Layout
//! - [`admin`]: a minimal HTTP/1.1 endpoint for Prometheus scrapes and health checks.
//! - [`telemetry`]: tracing subscriber and Prometheus recorder installation, metric names.
//! - [`signals`]: shutdown (SIGINT/SIGTERM) and reload (SIGHUP) notifications.
//! - [`secret`]: reading shared secrets from files, never from the TOML itself.
//! - [`config`]: loading a TOML file into a typed struct with errors that name the field.
//! - [`mode`]: the four key transport modes.
//! - [`local_api`]: gRPC on a Unix socket for natively integrated proxies.
//! - [`transaction`]: bounded, short-lived memory of REGISTER transactions.
//! - [`wire`]: key bundles between the store's secret types and the protobuf the transports carry.
#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
pub mod local_api;
pub mod mode;
pub mod secret;
pub mod signals;
pub mod telemetry;
pub mod transaction;
pub mod wire;

pub use mode::Mode;

/// Errors of the shared agent runtime.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file named in the config could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or does not fit the schema.
    #[error("invalid config {path}: {message}")]
    Config {
        /// The config file.
        path: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A secret file does not hold a usable secret (the content is never shown).
    #[error("invalid secret file {path}: {reason}")]
    Secret {
        /// The secret file.
        path: String,
        /// What is wrong, without the content.
        reason: &'static str,
    },
    /// The metrics recorder could not be installed.
    #[error("metrics: {0}")]
    Metrics(String),
}
