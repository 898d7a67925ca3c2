//! `sip-relay`: a bare stateless SIP relay hop.
#![forbid(unsafe_code)]

fn main() {}
