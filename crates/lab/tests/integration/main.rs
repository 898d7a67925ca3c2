//! Integration tests of the reference IMS lab.

mod binary;
mod milenage;
mod network;
mod policy;
mod support;
