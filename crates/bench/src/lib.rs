//! `ikt-load`: drives IMS registrations through the full chain
//! (UE → P-CSCF → p-cscf-agent → I-CSCF → s-cscf-agent → S-CSCF) for every transport mode and a
//! baseline without agents, in one run with the modes interleaved in rounds; compares the bare
//! relay hop with Kamailio; and renders the benchmark report.
//!
//! # Layout
//! - [`subscriber`]: generated subscribers (random K/OP) and their provisioning file.
//! - [`ue`]: the load UE: many registrations in flight on one UDP socket, AKA from the lab library.
//! - [`chain`]: one chain per mode as separate processes (`ims-lab serve`, both agents).
//! - [`process`]: CPU and memory of a process from `/proc`.
//! - [`netcount`]: nftables byte counters on the agent-to-agent link.
//! - [`scrape`]: the agents' Prometheus `/metrics`.
//! - [`latency`]: percentiles of µs samples.
//! - [`run`]: the rounds, segments and the hold phase; [`results`]: what a run produces.
//! - [`anchor`]: `sip-relay` versus Kamailio under the same SIPp load.
//! - [`micro`]: criterion figures of the per-crate micro-benchmarks.
//! - [`report`]: Markdown table and SVG chart.
#![forbid(unsafe_code)]

pub mod anchor;
pub mod chain;
pub mod latency;
pub mod micro;
pub mod netcount;
pub mod process;
pub mod report;
pub mod results;
pub mod run;
pub mod scrape;
pub mod subscriber;
pub mod ue;

/// Errors of the load tool. Messages never carry key material.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket or file operation failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A process of the chain could not be started or did not become ready.
    #[error("process {name}: {why}")]
    Process {
        /// Which process.
        name: String,
        /// What went wrong.
        why: String,
    },
    /// Options or inputs are inconsistent.
    #[error("invalid input: {0}")]
    Input(String),
    /// The lab library refused something (subscriber file, certificates).
    #[error("lab: {0}")]
    Lab(String),
    /// Results or report files could not be read or written.
    #[error("report: {0}")]
    Report(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
