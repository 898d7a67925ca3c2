//! `ikt-certs`: makes the development PKI.
#![forbid(unsafe_code)]

fn main() {}
