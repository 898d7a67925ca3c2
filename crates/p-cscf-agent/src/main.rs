//! Sidecar beside the P-CSCF: restores CK/IK into AKA 401s exactly as the P-CSCF expects.
#![forbid(unsafe_code)]

fn main() {}
