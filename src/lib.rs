//! Workspace root package of `ims-key-transport`.
//!
//! It holds no code of its own: it exists so that the end-to-end tests under `tests/` and the
//! cross-crate benchmarks under `benches/` can use every crate of the workspace together.
//!
//! # Layout
//! - `crates/sip`: byte-preserving SIP scanner and editor.
//! - `crates/keys`: CK/IK secret types, key bundles, key store, sealing.
//! - `crates/proto`: generated protobuf / gRPC types.
//! - `crates/transport`: gRPC and QUIC key delivery over mutual TLS.
//! - `crates/certs`: development PKI (`ikt-certs`).
//! - `crates/relay`: stateless SIP relay engine and the `sip-relay` binary.
//! - `crates/s-cscf-agent`, `crates/p-cscf-agent`: the two sidecar agents.
//! - `crates/lab`: the reference IMS network (`ims-lab`).
#![forbid(unsafe_code)]
