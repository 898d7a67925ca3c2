//! Reference IMS network for demos, tests and benchmarks: HSS (Milenage), S-CSCF, I-CSCF, P-CSCF, UE.
#![forbid(unsafe_code)]
