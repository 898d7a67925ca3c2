//! Deterministic branch IDs for a stateless proxy (RFC 3261 §16.11).
//!
//! A stateless proxy keeps no transaction state, so it cannot remember the branch it chose: it
//! must derive the branch from the request itself, so that a retransmission (and the CANCEL or
//! the ACK of a non-2xx final response, which share the client's branch) gets the same one.

use sha2::{Digest, Sha256};

/// The RFC 3261 magic cookie every branch starts with.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// The fields a branch is derived from, all borrowed from the received request.
#[derive(Clone, Copy, Debug)]
pub struct BranchInput<'a> {
    /// The top Via's branch parameter, if any.
    pub top_branch: Option<&'a str>,
    /// The whole top Via value (used when the branch lacks the magic cookie).
    pub top_via: &'a str,
    /// Request-URI.
    pub request_uri: &'a str,
    /// Call-ID.
    pub call_id: &'a str,
    /// CSeq number (not the method, so that CANCEL/ACK match their INVITE).
    pub cseq: u32,
    /// From tag.
    pub from_tag: &'a str,
    /// To tag.
    pub to_tag: &'a str,
}

/// Appends `z9hG4bK` plus 20 hex digits to `out`; `salt` (our sent-by) keeps two relays apart.
pub fn compute(input: &BranchInput<'_>, salt: &str, out: &mut Vec<u8>) {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0u8]);
    match input.top_branch {
        Some(b) if b.starts_with(MAGIC_COOKIE) => {
            h.update(b"1");
            // Branch IDs compare case-insensitively (RFC 3261 §20.42), so hash them folded.
            for byte in b.bytes() {
                h.update([byte.to_ascii_lowercase()]);
            }
        }
        _ => {
            h.update(b"2");
            for field in [
                input.top_via,
                input.to_tag,
                input.from_tag,
                input.call_id,
                input.request_uri,
            ] {
                h.update(field.as_bytes());
                h.update([0u8]);
            }
            h.update(input.cseq.to_be_bytes());
        }
    }
    let digest = h.finalize();
    out.extend_from_slice(MAGIC_COOKIE.as_bytes());
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in &digest[..10] {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0xf)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(branch: Option<&'static str>, cseq: u32) -> BranchInput<'static> {
        BranchInput {
            top_branch: branch,
            top_via: "SIP/2.0/UDP 10.0.0.1",
            request_uri: "sip:x",
            call_id: "c",
            cseq,
            from_tag: "f",
            to_tag: "",
        }
    }

    fn branch(i: &BranchInput<'_>, salt: &str) -> String {
        let mut v = Vec::new();
        compute(i, salt, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn same_input_same_branch_different_input_different_branch() {
        let a = branch(&input(Some("z9hG4bKabc"), 1), "h:1");
        assert_eq!(a, branch(&input(Some("z9hG4bKABC"), 9), "h:1"));
        assert!(a.starts_with(MAGIC_COOKIE) && a.len() == 27);
        assert_ne!(a, branch(&input(Some("z9hG4bKabd"), 1), "h:1"));
        assert_ne!(a, branch(&input(Some("z9hG4bKabc"), 1), "h:2"));
        // Without the cookie the CSeq number takes part.
        assert_ne!(
            branch(&input(Some("old"), 1), "h"),
            branch(&input(Some("old"), 2), "h")
        );
    }
}
