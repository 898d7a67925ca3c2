//! Reliability and security: hostile input, floods and faults through both agents, a key-leak
//! scan of every log line and every message toward the UE, and the fuzz seed corpora.
//!
//! # Layout
//! - `support`: both agents between a fake P-CSCF and a fake S-CSCF (`Duo`), with a recording
//!   hop between them; the test can also play the s-cscf-agent on the out-of-band link.
//! - `netproxy`: a TCP/UDP proxy on the out-of-band link that can be cut, restored or slowed.
//! - `record`: rows for `docs/reliability.md`.
//! - `challenges`, `tokens`, `hostile_sip`, `transport`: hostile input.
//! - `floods`: the held-401 queue and the key store under floods.
//! - `faults`: link cuts, restarts under load, slow peer, retransmissions, key timing, skew.
//! - `kill`: each agent as a process, SIGKILLed under load and restarted.
//! - `leaks`: the key-leak scan (with a self-test that plants a leak).
//! - `seeds`: the committed fuzz seeds are current.
//! - `regressions`: bugs found by fuzzing, as plain tests.
#![allow(missing_docs)]

mod challenges;
mod faults;
mod floods;
mod hostile_sip;
mod kill;
mod leaks;
mod netproxy;
mod record;
mod regressions;
mod seeds;
mod support;
mod tokens;
mod transport;
