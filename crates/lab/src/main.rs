//! `ims-lab`: the reference IMS network.
#![forbid(unsafe_code)]

fn main() {}
