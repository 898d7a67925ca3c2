//! Finding CK/IK in an AKA challenge of a 401/407 to REGISTER.

use ikt_keys::{Ck, Ik};
use ikt_sip::Message;

/// The keys of one AKA challenge, and what identifies the challenge.
pub struct AkaKeys<'a> {
    /// Index into [`Message::challenges`].
    pub index: usize,
    /// The challenge's realm.
    pub realm: &'a str,
    /// The challenge's nonce (opaque; base64 of RAND||AUTN, possibly with extra bytes).
    pub nonce: &'a str,
    /// The challenge's algorithm, e.g. `AKAv1-MD5`.
    pub algorithm: &'a str,
    /// Cipher key.
    pub ck: Ck,
    /// Integrity key.
    pub ik: Ik,
}

/// What a response holds for the agent.
pub enum Found<'a> {
    /// Not a 401/407 to REGISTER with keys in an AKA challenge: relay unchanged.
    Nothing,
    /// One or more AKA challenges carrying well-formed keys.
    Keys(Vec<AkaKeys<'a>>),
    /// An AKA challenge carries ck/ik that cannot be used (the reason names no key bytes).
    Malformed(&'static str),
}

/// Whether this response is a challenge to a REGISTER (401 or 407).
pub fn is_register_challenge(msg: &Message<'_>) -> bool {
    matches!(msg.status(), Some(401 | 407))
        && msg
            .cseq()
            .is_some_and(|c| c.method.eq_ignore_ascii_case("REGISTER"))
}

/// Scans a response for AKA challenges that carry `ck`/`ik`.
///
/// Keys anywhere else are refused rather than passed: in a challenge that is not AKA (or has no
/// algorithm), in a response that is not a 401/407 to REGISTER, or in a challenge that parses
/// ambiguously. Passing them would let clear keys cross the path in a protected mode.
pub fn find_keys<'a>(msg: &Message<'a>) -> Found<'a> {
    if !matches!(msg.status(), Some(401 | 407)) {
        return Found::Nothing;
    }
    let register = is_register_challenge(msg);
    let mut out = Vec::new();
    for (index, ch) in msg.challenges().into_iter().enumerate() {
        if !ch.has_keys() {
            if ch.malformed && ch.is_aka() {
                return Found::Malformed("ambiguous AKA challenge");
            }
            continue;
        }
        if ch.malformed {
            return Found::Malformed("ambiguous challenge carrying keys");
        }
        if !register {
            return Found::Malformed("keys in a challenge to a request other than REGISTER");
        }
        if !ch.is_aka() {
            return Found::Malformed("keys in a challenge that is not AKA");
        }
        // Exactly one of each: a duplicated ck would make "which one is right" ambiguous.
        let count = |n: &str| {
            ch.params
                .iter()
                .filter(|p| p.name.eq_ignore_ascii_case(n))
                .count()
        };
        if count("ck") != 1 || count("ik") != 1 {
            return Found::Malformed("ck and ik must appear exactly once");
        }
        let (Some(ck), Some(ik)) = (ch.param("ck"), ch.param("ik")) else {
            return Found::Malformed("ck and ik must appear exactly once");
        };
        let Ok(ck) = Ck::from_hex(ck.value) else {
            return Found::Malformed("ck is not 32 hex digits");
        };
        let Ok(ik) = Ik::from_hex(ik.value) else {
            return Found::Malformed("ik is not 32 hex digits");
        };
        let (Some(realm), Some(nonce)) = (ch.param("realm"), ch.param("nonce")) else {
            return Found::Malformed("AKA challenge without realm or nonce");
        };
        if nonce.value.is_empty() {
            return Found::Malformed("AKA challenge with an empty nonce");
        }
        let algorithm = ch.param("algorithm").map_or("AKAv1-MD5", |a| a.value);
        out.push(AkaKeys {
            index,
            realm: realm.value,
            nonce: nonce.value,
            algorithm,
            ck,
            ik,
        });
    }
    if out.is_empty() {
        Found::Nothing
    } else {
        Found::Keys(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(www: &str) -> Vec<u8> {
        format!(
            "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             From: <sip:a@x>;tag=1\r\nTo: <sip:a@x>;tag=2\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\n\
             WWW-Authenticate: {www}\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    const CK: &str = "00112233445566778899aabbccddeeff";
    const IK: &str = "ffeeddccbbaa99887766554433221100";

    #[test]
    fn finds_kamailio_form() {
        let m = msg(&format!(
            "Digest realm=\"ims\", nonce=\"bm9uY2U=\", algorithm=AKAv1-MD5, ck=\"{CK}\", ik=\"{IK}\", qop=\"auth,auth-int\""
        ));
        let s = ikt_sip::scan(&m).unwrap();
        let Found::Keys(k) = find_keys(&s) else {
            panic!("no keys found")
        };
        assert_eq!(k.len(), 1);
        assert_eq!(k[0].nonce, "bm9uY2U=");
        assert_eq!(k[0].realm, "ims");
        assert_eq!(k[0].ck, Ck::from_hex(CK).unwrap());
        assert_eq!(k[0].ik, Ik::from_hex(IK).unwrap());
    }

    #[test]
    fn lenient_order_and_case() {
        let m = msg(&format!(
            "Digest IK = \"{IK}\" ,CK=\"{}\",NONCE=\"n\",Realm=\"r\",Algorithm=akav1-md5",
            CK.to_uppercase()
        ));
        let s = ikt_sip::scan(&m).unwrap();
        assert!(matches!(find_keys(&s), Found::Keys(k) if k[0].ck == Ck::from_hex(CK).unwrap()));
    }

    #[test]
    fn prefix_names_are_not_keys() {
        let m =
            msg("Digest realm=\"r\", nonce=\"n\", algorithm=AKAv1-MD5, cknonce=\"x\", ikx=\"y\"");
        let s = ikt_sip::scan(&m).unwrap();
        assert!(matches!(find_keys(&s), Found::Nothing));
    }

    #[test]
    fn malformed_keys_are_reported_without_bytes() {
        for www in [
            format!(
                "Digest realm=\"r\", nonce=\"n\", algorithm=AKAv1-MD5, ck=\"abc\", ik=\"{IK}\""
            ),
            format!(
                "Digest realm=\"r\", nonce=\"n\", algorithm=AKAv1-MD5, ck=\"{CK}\", ik=\"zz{}\"",
                &IK[2..]
            ),
            format!(
                "Digest realm=\"r\", nonce=\"n\", algorithm=AKAv1-MD5, ck=\"{CK}\", ck=\"{CK}\", ik=\"{IK}\""
            ),
            format!("Digest realm=\"r\", nonce=\"n\", algorithm=AKAv1-MD5, ck=\"{CK}\""),
        ] {
            let m = msg(&www);
            let s = ikt_sip::scan(&m).unwrap();
            let Found::Malformed(why) = find_keys(&s) else {
                panic!("accepted {www}")
            };
            assert!(!why.contains(CK) && !why.contains(IK));
        }
    }

    #[test]
    fn keys_outside_an_aka_challenge_to_register_are_refused() {
        for www in [
            format!("Digest realm=\"r\", nonce=\"n\", algorithm=MD5, ck=\"{CK}\", ik=\"{IK}\""),
            format!("Digest realm=\"r\", nonce=\"n\", ck=\"{CK}\", ik=\"{IK}\""),
            format!(
                "Digest realm=\"r\" nonce=\"n\", algorithm=AKAv1-MD5, ck=\"{CK}\", ik=\"{IK}\""
            ),
        ] {
            let m = msg(&www);
            let s = ikt_sip::scan(&m).unwrap();
            assert!(matches!(find_keys(&s), Found::Malformed(_)), "{www}");
        }
        let m = String::from_utf8(msg(&format!(
            "Digest realm=\"r\", nonce=\"n\", algorithm=AKAv1-MD5, ck=\"{CK}\", ik=\"{IK}\""
        )))
        .unwrap()
        .replace("1 REGISTER", "1 INVITE");
        let s = ikt_sip::scan(m.as_bytes()).unwrap();
        assert!(matches!(find_keys(&s), Found::Malformed(_)));
    }

    #[test]
    fn challenges_without_keys_are_ignored() {
        let m = msg("Digest realm=\"r\", nonce=\"n\", algorithm=MD5, qop=\"auth\"");
        let s = ikt_sip::scan(&m).unwrap();
        assert!(matches!(find_keys(&s), Found::Nothing));
    }
}
