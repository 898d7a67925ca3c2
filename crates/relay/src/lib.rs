//! Stateless SIP proxy hop (RFC 3261 §16.11) over UDP and TCP with request and response hooks.
//!
//! The relay forwards requests to a configured next hop (or along a loose Route), inserting its
//! own Via with a deterministic branch and decrementing Max-Forwards, and routes responses back
//! by the next Via after removing its own. Every other byte is forwarded untouched. The agents
//! embed it and add behaviour through a [`Hook`].
//!
//! # Layout
//! - [`config`]: [`Config`], [`NextHop`], [`Transport`].
//! - [`hook`]: the [`Hook`] trait, [`Verdict`] (pass, edit, answer, drop, hold), [`Release`].
//! - [`response`]: building a response to a request, or rewriting a response (401 → 503).
//! - [`stats`]: counters ([`StatsSnapshot`], [`DropReason`]).
//! - [`shutdown`]: the [`Shutdown`] signal.
//! - `proxy` (private): the per-message path from scan to send; `udp`, `tcp`: the sockets.
//! - [`branch`], [`uri`]: deterministic branch IDs and the bits of SIP URIs routing needs.
//!
//! # Starting a relay
//! ```no_run
//! # async fn demo() -> Result<(), ikt_relay::Error> {
//! use std::sync::Arc;
//! use ikt_relay::{Config, NextHop, NoHook, Relay};
//!
//! let config = Config {
//!     udp_listen: vec!["127.0.0.1:5060".parse().unwrap()],
//!     next_hop: Some(NextHop { addr: "127.0.0.1:5070".parse().unwrap(), transport: None }),
//!     via_params: "ikt=pcscf-1".into(),
//!     ..Config::default()
//! };
//! let relay = Relay::start(config, Arc::new(NoHook)).await?;
//! println!("listening on {:?}", relay.udp_addrs());
//! relay.wait().await; // until relay.shutdown_signal().trigger() is called somewhere
//! # Ok(()) }
//! ```
//!
//! # Hooks: edit, answer, hold
//! A hook runs on the receiving task and must return quickly. To wait for something (the
//! p-cscf-agent waits up to 200 ms for the keys of a 401), return a held verdict: the relay parks
//! the message on a task of its own, keeps relaying everything else, and applies the verdict the
//! future yields. [`response::rewrite_response`] turns a 401 into a 503 that keeps the routing
//! headers.
//!
//! ```
//! use std::time::Duration;
//! use ikt_relay::{Direction, Hook, Inbound, Verdict, response};
//!
//! struct KeyWait;
//!
//! impl Hook for KeyWait {
//!     fn on_response(&self, msg: &Inbound<'_, '_>) -> Verdict {
//!         if msg.message.status() != Some(401) {
//!             return Verdict::Pass;
//!         }
//!         // Copy what the future needs: it outlives the receive buffer.
//!         let original = msg.bytes().to_vec();
//!         let fallback = response::rewrite_response(msg.message, 503, "Service Unavailable",
//!             &[("Retry-After", "5")]);
//!         Verdict::hold(async move {
//!             match tokio::time::timeout(Duration::from_millis(200), keys_arrive()).await {
//!                 // Forward an edited 401 (our Via still on top: the relay pops it).
//!                 Ok(()) => Verdict::Replace(original),
//!                 // Fail closed: a 503 goes back toward the UE instead.
//!                 Err(_) => Verdict::Replace(fallback),
//!             }
//!         })
//!     }
//!
//!     fn on_request(&self, msg: &Inbound<'_, '_>) -> Verdict {
//!         // Answer instead of forwarding: the response goes back toward the sender.
//!         if msg.message.method() == Some("OPTIONS") {
//!             return Verdict::Answer(response::response_to(msg.message, 200, "OK", &[]));
//!         }
//!         // Read our agent tag from the Via path, e.g. `ikt=pcscf-1`.
//!         let _tag = msg.via_param("ikt");
//!         assert_eq!(msg.direction, Direction::Request);
//!         Verdict::Pass
//!     }
//! }
//! # async fn keys_arrive() {}
//! ```
//!
//! With a handle instead of a future: `let (verdict, release) = Verdict::held();` return
//! `verdict`, store `release` (it is `Send`), and later call
//! `release.release(Verdict::Pass)` from any task. Dropping the handle drops the message.
//!
//! # Behaviour in detail
//! - **Requests**: hook first; then Max-Forwards (483 at zero, 400 if unparsable, `70` inserted
//!   after our Via when absent); a top Route naming us (sent-by, listen address or
//!   `Config::aliases`) is popped; the next Route is followed (loose routing), else
//!   `Config::next_hop`, else the Request-URI if it is not us. Our Via goes first, as
//!   `Via: SIP/2.0/<T> <sent-by>;branch=z9hG4bK<20 hex>[;<via_params>][;ikt-cid=<n>]`; the
//!   branch is a SHA-256 of the received top branch (RFC 3261 §16.11), so retransmissions,
//!   CANCEL and non-2xx ACK get the same one. Nothing else changes, byte for byte.
//! - **Responses**: dropped (`DropReason::NotOurVia`) unless the top Via is ours; hook; our Via
//!   is removed (its line, or its value in a comma list) and the response goes to the next Via:
//!   `received` overrides the host, `rport=N` the port. Over TCP it goes back on the connection
//!   the request came on (`ikt-cid`), or a new one to that address if that one is gone.
//! - **Bounds**: per-connection send queues (`tcp_queue`, drop and count when full), writes
//!   that stall for `tcp_idle_timeout` close the connection, `max_tcp_connections`,
//!   `max_held`/`max_hold`, at most 64 host-name lookups in flight. UDP sends never wait: a
//!   full socket buffer or an ICMP error is counted, not fatal.
//! - **Panics** while handling one message (a hook bug) are caught and counted
//!   (`DropReason::Panic`); the receive loop carries on.
//! - Not done: strict routing (Route without `lr`), adding `received`/`rport` to the sender's
//!   Via (it would break byte transparency; values already present are honoured), TLS,
//!   DNS SRV/NAPTR (host names resolve with A/AAAA only), switching to TCP for large requests.
#![forbid(unsafe_code)]

pub mod branch;
pub mod config;
mod error;
pub mod hook;
mod proxy;
mod relay;
pub mod response;
pub mod shutdown;
pub mod stats;
mod tcp;
mod udp;
pub mod uri;

pub use config::{Config, NextHop, Transport};
pub use error::Error;
pub use hook::{ConnId, Direction, Held, Hook, Inbound, NoHook, Release, Verdict};
pub use relay::Relay;
pub use shutdown::Shutdown;
pub use stats::{DropReason, Stats, StatsSnapshot};
