//! CK/IK secret types, key bundles, TTL key store and the sealed header extension (AES-256-GCM, HKDF).
#![forbid(unsafe_code)]
