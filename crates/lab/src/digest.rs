//! AKAv1-MD5 digest (RFC 3310 over RFC 2617): HTTP Digest with the AKA RES bytes as the password.

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::hex;
use crate::secret::Res;

/// Quality of protection of a digest response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    /// `qop=auth`: method and URI are covered.
    Auth,
    /// `qop=auth-int`: the body is covered too.
    AuthInt,
}

impl Qop {
    /// The token as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }

    /// Parses `auth` / `auth-int` (case-insensitive).
    pub fn parse(token: &str) -> Option<Self> {
        if token.eq_ignore_ascii_case("auth") {
            Some(Qop::Auth)
        } else if token.eq_ignore_ascii_case("auth-int") {
            Some(Qop::AuthInt)
        } else {
            None
        }
    }
}

/// Everything but the password that goes into a digest response.
#[derive(Debug, Clone, Copy)]
pub struct DigestInput<'a> {
    /// Request method, e.g. `REGISTER`.
    pub method: &'a str,
    /// The `uri` directive as sent.
    pub uri: &'a str,
    /// The `username` directive (the IMPI).
    pub username: &'a str,
    /// The `realm` directive.
    pub realm: &'a str,
    /// The `nonce` directive (base64 of RAND || AUTN).
    pub nonce: &'a str,
    /// `nc`, `cnonce` and `qop`, present together when a qop is used.
    pub qop: Option<(Qop, &'a str, &'a str)>,
    /// The message body, used by `auth-int`.
    pub body: &'a [u8],
}

fn md5_hex(parts: &[&[u8]]) -> Zeroizing<String> {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p);
    }
    Zeroizing::new(hex::encode(&h.finalize()))
}

/// HA1 = MD5(username:realm:RES), RES taken as raw bytes (RFC 3310 §3.4). Derived from RES, so it
/// is kept in a zeroizing string.
pub fn ha1(username: &str, realm: &str, res: &Res) -> Zeroizing<String> {
    md5_hex(&[username.as_bytes(), realm.as_bytes(), res.expose()])
}

/// HA2 = MD5(method:uri) or, for auth-int, MD5(method:uri:MD5(body)).
pub fn ha2(input: &DigestInput<'_>) -> String {
    let v = match input.qop {
        Some((Qop::AuthInt, _, _)) => {
            let body_hash = md5_hex(&[input.body]);
            md5_hex(&[
                input.method.as_bytes(),
                input.uri.as_bytes(),
                body_hash.as_bytes(),
            ])
        }
        _ => md5_hex(&[input.method.as_bytes(), input.uri.as_bytes()]),
    };
    v.to_string()
}

/// The `response` directive a UE holding `res` sends.
pub fn response(res: &Res, input: &DigestInput<'_>) -> String {
    let h1 = ha1(input.username, input.realm, res);
    let h2 = ha2(input);
    let v = match input.qop {
        Some((qop, nc, cnonce)) => md5_hex(&[
            h1.as_bytes(),
            input.nonce.as_bytes(),
            nc.as_bytes(),
            cnonce.as_bytes(),
            qop.as_str().as_bytes(),
            h2.as_bytes(),
        ]),
        None => md5_hex(&[h1.as_bytes(), input.nonce.as_bytes(), h2.as_bytes()]),
    };
    v.to_string()
}

/// Checks a received `response` against XRES in constant time (case-insensitive hex).
pub fn verify(xres: &Res, input: &DigestInput<'_>, received: &str) -> bool {
    let expected = response(xres, input);
    let received = received.to_ascii_lowercase();
    expected.len() == received.len() && bool::from(expected.as_bytes().ct_eq(received.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_int_differs_from_auth_and_covers_body() {
        let res = Res::new([1, 2, 3, 4, 5, 6, 7, 8]);
        let mut input = DigestInput {
            method: "REGISTER",
            uri: "sip:ims.example.org",
            username: "u@ims.example.org",
            realm: "ims.example.org",
            nonce: "abc",
            qop: Some((Qop::Auth, "00000001", "c")),
            body: b"",
        };
        let auth = response(&res, &input);
        input.qop = Some((Qop::AuthInt, "00000001", "c"));
        let int_empty = response(&res, &input);
        input.body = b"x";
        let int_body = response(&res, &input);
        assert_ne!(auth, int_empty);
        assert_ne!(int_empty, int_body);
        assert!(verify(&res, &input, &int_body.to_uppercase()));
        assert!(!verify(&Res::new([0; 8]), &input, &int_body));
        input.qop = None;
        let none = response(&res, &input);
        assert_eq!(none.len(), 32);
        assert!(verify(&res, &input, &none));
    }
}
