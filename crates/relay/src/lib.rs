//! Stateless SIP proxy hop (RFC 3261 16.11) over UDP and TCP with request and response hooks.
#![forbid(unsafe_code)]
