//! Generated protobuf and gRPC types for the IMS key transport (proto/ikt/v1).
#![forbid(unsafe_code)]
