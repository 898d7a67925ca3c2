//! Out-of-band key delivery between agents: gRPC (tonic) and QUIC (quinn) over mutual TLS 1.3.
#![forbid(unsafe_code)]
