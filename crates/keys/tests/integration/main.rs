//! Integration tests of ikt-keys: one binary, a module per area.

mod bundle;
mod redact;
mod seal;
mod secret;
mod store;
mod support;
