//! The crate's error type.

use std::net::SocketAddr;

use crate::config::Transport;

/// Errors starting a relay (once running, per-message failures are counted, not returned).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid; the text names the field.
    #[error("invalid relay configuration: {0}")]
    Config(String),
    /// A listening socket could not be set up.
    #[error("cannot listen on {transport} {addr}: {source}")]
    Bind {
        /// Address that failed.
        addr: SocketAddr,
        /// Transport that failed.
        transport: Transport,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The relay must be started inside a Tokio runtime.
    #[error("Relay::start must run inside a Tokio runtime")]
    NoRuntime,
}
