//! End-to-end tests: the lab core with both agents in the chain, for every transport mode.
#![allow(missing_docs)]

mod failures;
mod metrics;
mod modes;
mod support;
