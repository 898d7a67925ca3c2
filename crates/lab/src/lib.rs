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
//! - [`agents`]: running the two sidecar agents as processes beside the lab (`--mode`).
//!
//! # Starting the network with agent hops
//! The chain is UE → P-CSCF → [p-cscf-agent] → I-CSCF → [s-cscf-agent] → S-CSCF. It starts from
//! the core outwards so each agent can be given the address of the element after it:
//! ```no_run
//! # async fn demo() -> Result<(), ikt_lab::Error> {
//! use std::sync::Arc;
//! use ikt_lab::config::LabConfig;
//! use ikt_lab::hss::{self, Hss};
//! use ikt_lab::network::{Network, NetworkConfig};
//! use ikt_lab::ue::{Ue, UeConfig};
//!
//! let provisioned = hss::parse_provisioning(ikt_lab::demo::EXAMPLE_SUBSCRIBERS)?;
//! let hss = Arc::new(Hss::new(provisioned.iter().map(Into::into).collect()));
//! let core = Network::stage(NetworkConfig::loopback(LabConfig::default()), hss).await?;
//! let s_agent = spawn_agent(core.scscf_addr());          // an s-cscf-agent forwarding to the S-CSCF
//! let edge = core.start_icscf(Some(s_agent)).await?;     // the I-CSCF sends to that agent
//! let p_agent = spawn_agent(edge.icscf_addr());          // a p-cscf-agent forwarding to the I-CSCF
//! let net = edge.start_pcscf(Some(p_agent)).await?;      // the P-CSCF sends to that agent
//!
//! let ue = Ue::spawn(UeConfig::from_provisioned(&provisioned[0], "ims.example.org", net.addrs().pcscf)).await?;
//! ue.register_and_wait(std::time::Duration::from_secs(10)).await?;
//! assert_eq!(net.pcscf_fingerprint(ue.impi()), ue.fingerprint());
//! net.reauth(ue.impi()).await?;                           // network-initiated re-authentication
//! net.shutdown().await;
//! # Ok(()) }
//! # // Stands in for starting an agent: without one, the hop is the next element itself.
//! # fn spawn_agent(next: std::net::SocketAddr) -> std::net::SocketAddr { next }
//! ```
//! With agent addresses known in advance, `Network::start(config, hss, AgentHops { .. })` does
//! the three steps at once; `ims-lab serve --pcscf-next-hop ADDR --icscf-next-hop ADDR` is the
//! same from the command line.
#![forbid(unsafe_code)]

pub mod admin;
pub mod agents;
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
