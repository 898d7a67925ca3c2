//! Development PKI: a private CA and per-agent certificates for mutual TLS.
#![forbid(unsafe_code)]
