//! Sidecar beside the S-CSCF: takes CK/IK out of AKA 401s and sends them to the right P-CSCF agent.
#![forbid(unsafe_code)]

fn main() {}
