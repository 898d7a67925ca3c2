//! Integration tests of the reference IMS lab.

mod milenage;
