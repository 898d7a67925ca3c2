//! Integration tests of the relay over real sockets on 127.0.0.1 (ephemeral ports).

mod hooks;
mod robustness;
mod sipp;
mod support;
mod tcp;
mod udp;
