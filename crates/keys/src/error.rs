//! The crate's one error type.
//!
//! Every variant is `Copy` and carries only lengths, field names and limits: never key bytes,
//! never attacker-supplied text, so an `Error` can go into a log line or a SIP reason phrase as is.

/// A protobuf field of `KeyBundle`, named in decode and validation errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `seq = 1`.
    Seq,
    /// `realm = 2`.
    Realm,
    /// `nonce = 3`.
    Nonce,
    /// `call_id = 4`.
    CallId,
    /// `cseq = 5`.
    Cseq,
    /// `impu = 6`.
    Impu,
    /// `impi = 7`.
    Impi,
    /// `ck = 8`.
    Ck,
    /// `ik = 9`.
    Ik,
    /// `issued_at_ms = 10`.
    IssuedAt,
    /// `not_after_ms = 11`.
    NotAfter,
    /// `algorithm = 12`.
    Algorithm,
}

impl Field {
    /// The field's name as written in `key_transport.proto`.
    pub const fn name(self) -> &'static str {
        match self {
            Field::Seq => "seq",
            Field::Realm => "realm",
            Field::Nonce => "nonce",
            Field::CallId => "call_id",
            Field::Cseq => "cseq",
            Field::Impu => "impu",
            Field::Impi => "impi",
            Field::Ck => "ck",
            Field::Ik => "ik",
            Field::IssuedAt => "issued_at_ms",
            Field::NotAfter => "not_after_ms",
            Field::Algorithm => "algorithm",
        }
    }
}

impl core::fmt::Display for Field {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a protobuf `KeyBundle` could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The encoded bundle is longer than [`crate::bundle::MAX_ENCODED_LEN`].
    #[error("bundle of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Length received.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The input ended inside a tag, varint or length-delimited field.
    #[error("bundle truncated")]
    Truncated,
    /// A varint longer than 10 bytes, or one that overflows its field.
    #[error("invalid varint")]
    BadVarint,
    /// Field number 0, or a group / unknown wire type.
    #[error("invalid tag or wire type")]
    BadTag,
    /// A known field arrived with the wrong wire type.
    #[error("field {0} has the wrong wire type")]
    WrongWireType(Field),
    /// A string field is longer than its limit.
    #[error("field {0} is too long")]
    FieldTooLong(Field),
    /// A string field is not UTF-8.
    #[error("field {0} is not UTF-8")]
    NotUtf8(Field),
    /// `ck` or `ik` is not exactly 16 bytes (also when absent).
    #[error("field {field} must be 16 bytes, got {len}")]
    BadKeyLength {
        /// `Ck` or `Ik`.
        field: Field,
        /// Length received (0 when absent).
        len: usize,
    },
    /// A required field (nonce) is missing or empty.
    #[error("field {0} is missing")]
    Missing(Field),
}

/// What was wrong with a sealed-header token before any cryptography ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedToken {
    /// Longer than [`crate::seal::MAX_TOKEN_LEN`].
    #[error("token too long")]
    TooLong,
    /// Does not start with `ikt1.`.
    #[error("unknown token version")]
    BadVersion,
    /// Missing the `.` after the kid, or the kid is empty, too long or has a forbidden character.
    #[error("bad kid")]
    BadKid,
    /// The payload is not canonical unpadded base64url.
    #[error("bad base64url payload")]
    BadBase64,
    /// The payload is shorter than nonce (12) + tag (16).
    #[error("payload too short")]
    TooShort,
}

/// The crate's error: secret parsing, bundle validation, store refusals and token opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Secret given with the wrong number of bytes (or hex digits / 2).
    #[error("secret must be {expected} bytes, got {got}")]
    SecretLength {
        /// Required length in bytes.
        expected: usize,
        /// Length received in bytes (hex: characters / 2, rounded down).
        got: usize,
    },
    /// Secret hex contains a non-hex character or has an odd length. The position is not given,
    /// because it would narrow down the secret.
    #[error("secret is not valid hex")]
    SecretHex,
    /// The bundle could not be decoded.
    #[error("bundle decode: {0}")]
    Decode(#[from] DecodeError),
    /// A bundle field breaks a limit on encode or insert.
    #[error("bundle field {0} is empty or too long")]
    InvalidField(Field),
    /// The store is at capacity; the bundle was refused.
    #[error("key store full")]
    StoreFull,
    /// The store already holds different keys (or a different context) for this nonce.
    #[error("different bundle already stored for this nonce")]
    Conflict,
    /// The bundle's `not_after_ms` had already passed when it was offered.
    #[error("bundle already expired")]
    Expired,
    /// Too many waiters are parked.
    #[error("too many waiters")]
    WaitersFull,
    /// A kid, agent id or shared secret given to a sealer/opener breaks a limit.
    #[error("invalid sealing configuration: {0}")]
    SealConfig(&'static str),
    /// The token is not well formed.
    #[error("malformed token: {0}")]
    Malformed(#[from] MalformedToken),
    /// The token names a kid this opener does not hold.
    #[error("unknown kid")]
    UnknownKid,
    /// Authentication failed: wrong key, tampered token, or AAD (realm, nonce, Call-ID, CSeq, To)
    /// differs from what was sealed.
    #[error("token authentication failed")]
    BadTag,
    /// The token authenticated but its plaintext is not a valid bundle for this context.
    #[error("token plaintext invalid")]
    BadPlaintext,
    /// Issued longer ago than the opener's `max_age`.
    #[error("token too old")]
    TooOld,
    /// Issued in the future beyond the allowed clock skew.
    #[error("token not yet valid")]
    NotYetValid,
    /// A token for this challenge nonce was opened before with different keys.
    #[error("replay with different keys for this nonce")]
    ReplayMismatch,
    /// The opener's replay cache is full of live entries; fail closed.
    #[error("replay cache full")]
    ReplayCacheFull,
    /// Sealing failed (plaintext too large for the token limit).
    #[error("sealing failed")]
    SealFailed,
    /// The operating system random generator failed.
    #[error("random generator failed")]
    Random,
}

impl Error {
    /// A short, stable snake_case name of the variant, for metric labels and log fields.
    pub const fn kind(&self) -> &'static str {
        match self {
            Error::SecretLength { .. } => "secret_length",
            Error::SecretHex => "secret_hex",
            Error::Decode(_) => "decode",
            Error::InvalidField(_) => "invalid_field",
            Error::StoreFull => "store_full",
            Error::Conflict => "conflict",
            Error::Expired => "expired",
            Error::WaitersFull => "waiters_full",
            Error::SealConfig(_) => "seal_config",
            Error::Malformed(_) => "malformed",
            Error::UnknownKid => "unknown_kid",
            Error::BadTag => "bad_tag",
            Error::BadPlaintext => "bad_plaintext",
            Error::TooOld => "too_old",
            Error::NotYetValid => "not_yet_valid",
            Error::ReplayMismatch => "replay_mismatch",
            Error::ReplayCacheFull => "replay_cache_full",
            Error::SealFailed => "seal_failed",
            Error::Random => "random",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_failures_have_distinct_kinds() {
        let errs = [
            Error::Malformed(MalformedToken::BadKid),
            Error::UnknownKid,
            Error::BadTag,
            Error::BadPlaintext,
            Error::TooOld,
            Error::Expired,
            Error::NotYetValid,
            Error::ReplayMismatch,
            Error::ReplayCacheFull,
        ];
        let kinds: std::collections::HashSet<_> = errs.iter().map(Error::kind).collect();
        assert_eq!(kinds.len(), errs.len());
        assert_eq!(Error::BadTag.kind(), "bad_tag");
    }
}
