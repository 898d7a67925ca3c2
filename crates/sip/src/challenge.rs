//! Authentication headers (WWW-Authenticate, Proxy-Authenticate, Authorization,
//! Proxy-Authorization) as a scheme plus ordered auth-params, and the AKA key edits.
//!
//! Parsing is lenient (any order, any case of names, white space around `=` and `,`, several
//! challenges in one header or in several headers). Emission is exact: [`restore_keys`] writes
//! the form Kamailio's S-CSCF emits (DESIGN 2.3). `ck`/`ik` are matched by exact name only.
//!
//! Key hex strings are secrets: they are taken as `&str`, copied only into the output buffer,
//! never kept, and an [`AuthParam`]'s `Debug` redacts `ck`/`ik` values.

use std::fmt;
use std::ops::Range;

use crate::Error;
use crate::edit::Editor;
use crate::header::HeaderName;
use crate::lex::{is_lws, next_comma, quoted, skip_lws, sub, token_end};
use crate::message::Message;

/// Auth-param names whose values are key material.
const SECRET_PARAMS: [&str; 2] = ["ck", "ik"];

/// One `name=value` auth-param (or a token68 credential, which has an empty name).
#[derive(Clone, PartialEq, Eq)]
pub struct AuthParam<'a> {
    /// The name as written.
    pub name: &'a str,
    /// The value as written, without surrounding quotes (escapes kept; see [`Challenge::unescaped`]).
    pub value: &'a str,
    /// Whether the value was a quoted string.
    pub quoted: bool,
    /// `name=value` including the quotes, within the message.
    pub range: Range<usize>,
    /// The value without quotes, within the message.
    pub value_range: Range<usize>,
}

impl fmt::Debug for AuthParam<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = SECRET_PARAMS
            .iter()
            .any(|s| self.name.eq_ignore_ascii_case(s));
        f.debug_struct("AuthParam")
            .field("name", &self.name)
            .field("value", &if secret { "<redacted>" } else { self.value })
            .field("quoted", &self.quoted)
            .field("range", &self.range)
            .finish()
    }
}

/// One challenge (or credentials): scheme and auth-params in their original order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge<'a> {
    /// Index of the header (in [`Message::headers`]) that holds this challenge.
    pub header_index: usize,
    /// The scheme as written (`Digest`).
    pub scheme: &'a str,
    /// Auth-params in order.
    pub params: Vec<AuthParam<'a>>,
    /// From the scheme to the end of the last param, within the message.
    pub range: Range<usize>,
    /// Params not separated by commas, or control characters inside a quoted value: the text
    /// can be read more than one way, so editing it could move bytes from one param into
    /// another. The key edits refuse such a challenge ([`Error::MalformedChallenge`]) and the
    /// agents fail closed on it.
    pub malformed: bool,
}

impl<'a> Challenge<'a> {
    /// The param with exactly this name (case-insensitive; `ck` never matches `cknonce`).
    pub fn param(&self, name: &str) -> Option<&AuthParam<'a>> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// A param's value with quoted-string escapes resolved.
    pub fn unescaped(&self, name: &str) -> Option<String> {
        let p = self.param(name)?;
        if !p.quoted {
            return Some(p.value.to_owned());
        }
        let mut out = String::with_capacity(p.value.len());
        let mut chars = p.value.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else {
                out.push(c);
            }
        }
        Some(out)
    }

    /// Whether this is a Digest challenge with an AKA algorithm (RFC 3310).
    pub fn is_aka(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
            && self.param("algorithm").is_some_and(|a| {
                a.value
                    .get(..3)
                    .is_some_and(|p| p.eq_ignore_ascii_case("AKA"))
            })
    }

    /// Whether the challenge carries `ck` or `ik`.
    pub fn has_keys(&self) -> bool {
        self.param("ck").is_some() || self.param("ik").is_some()
    }

    fn scheme_end(&self) -> usize {
        self.range.start + self.scheme.len()
    }
}

fn parse_challenges<'a>(
    value: &'a str,
    base: usize,
    header_index: usize,
    out: &mut Vec<Challenge<'a>>,
) {
    let b = value.as_bytes();
    let mut p = 0;
    while p < b.len() {
        while p < b.len() && (is_lws(b[p]) || b[p] == b',') {
            p += 1;
        }
        if p >= b.len() {
            break;
        }
        let s_end = token_end(b, p);
        if s_end == p {
            p = next_comma(b, p).max(p + 1);
            continue;
        }
        let mut ch = Challenge {
            header_index,
            scheme: sub(value, p..s_end),
            params: Vec::new(),
            range: base + p..base + s_end,
            malformed: false,
        };
        let mut q = s_end;
        let mut saw_comma = false;
        // A param was just read and no comma has followed it yet.
        let mut need_comma = false;
        loop {
            let n = skip_lws(b, q);
            if n >= b.len() {
                q = n;
                break;
            }
            if b[n] == b',' {
                saw_comma = true;
                need_comma = false;
                q = n + 1;
                continue;
            }
            let name_end = token_end(b, n);
            if name_end == n {
                q = next_comma(b, n).max(n + 1);
                continue;
            }
            let e = skip_lws(b, name_end);
            let has_eq = e < b.len() && b[e] == b'=';
            let v = if has_eq { skip_lws(b, e + 1) } else { e };
            let token68 = ch.params.is_empty()
                && !saw_comma
                && (!has_eq || v >= b.len() || matches!(b[v], b',' | b'='));
            if token68 {
                // `Basic dXNlcg==` / `Negotiate abc`: one opaque credential, no name.
                let mut t = n;
                while t < b.len() && !is_lws(b[t]) && b[t] != b',' {
                    t += 1;
                }
                ch.params.push(AuthParam {
                    name: "",
                    value: sub(value, n..t),
                    quoted: false,
                    range: base + n..base + t,
                    value_range: base + n..base + t,
                });
                q = t;
            } else if !has_eq {
                // A token without `=` after a comma starts the next challenge; without the
                // comma the boundary is a guess, and an edit could move it.
                ch.malformed |= need_comma;
                q = n;
                break;
            } else if v < b.len() && b[v] == b'"' {
                ch.malformed |= need_comma;
                let (content, after) = quoted(b, v);
                let ctl = b[content.clone()]
                    .iter()
                    .any(|&c| (c < 0x20 && c != b'\t') || c == 0x7f);
                let glued = after < b.len() && !is_lws(b[after]) && b[after] != b',';
                let unterminated = content.end >= b.len();
                ch.malformed |= ctl || glued || unterminated;
                ch.params.push(AuthParam {
                    name: sub(value, n..name_end),
                    value: sub(value, content.clone()),
                    quoted: true,
                    range: base + n..base + after,
                    value_range: base + content.start..base + content.end,
                });
                q = after;
            } else {
                ch.malformed |= need_comma;
                let mut t = v;
                while t < b.len() && !is_lws(b[t]) && b[t] != b',' {
                    t += 1;
                }
                ch.malformed |= b[v..t].iter().any(|&c| c < 0x20 || c == 0x7f || c == b'"');
                ch.params.push(AuthParam {
                    name: sub(value, n..name_end),
                    value: sub(value, v..t),
                    quoted: false,
                    range: base + n..base + t,
                    value_range: base + v..base + t,
                });
                q = t;
            }
            if let Some(last) = ch.params.last() {
                ch.range.end = last.range.end;
            }
            need_comma = true;
        }
        out.push(ch);
        p = q;
    }
}

impl<'a> Message<'a> {
    fn auth_headers(&self, a: HeaderName, b: HeaderName) -> Vec<Challenge<'a>> {
        let mut out = Vec::new();
        for (i, h) in self.headers().iter().enumerate() {
            if h.name == a || h.name == b {
                parse_challenges(self.value(h), h.value_range.start, i, &mut out);
            }
        }
        out
    }

    /// WWW-Authenticate and Proxy-Authenticate challenges, in header order.
    pub fn challenges(&self) -> Vec<Challenge<'a>> {
        self.auth_headers(HeaderName::WwwAuthenticate, HeaderName::ProxyAuthenticate)
    }

    /// Authorization and Proxy-Authorization credentials, in header order.
    pub fn credentials(&self) -> Vec<Challenge<'a>> {
        self.auth_headers(HeaderName::Authorization, HeaderName::ProxyAuthorization)
    }
}

/// Reject text that would end a quoted string or a header line early.
fn quotable(s: &str) -> bool {
    let mut esc = false;
    for c in s.bytes() {
        match (esc, c) {
            (_, b'\r' | b'\n') => return false,
            (true, _) => esc = false,
            (false, b'\\') => esc = true,
            (false, b'"') => return false,
            _ => {}
        }
    }
    !esc
}

fn check_key(hex: &str) -> Result<(), Error> {
    if hex.len() == 32 && hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(Error::InvalidKeyHex)
    }
}

fn push_lower_hex(out: &mut Vec<u8>, hex: &str) {
    out.extend(hex.bytes().map(|c| c.to_ascii_lowercase()));
}

/// Append the canonical AKA challenge (DESIGN 2.3) to `out`:
/// `Digest realm="<realm>", nonce="<nonce>", algorithm=<algorithm>, ck="<hex>", ik="<hex>"`
/// followed by `, <param>` for each of `rest_params` (raw `name=value` texts, in order).
pub fn write_canonical_aka_challenge(
    out: &mut Vec<u8>,
    realm: &str,
    nonce: &str,
    algorithm: &str,
    ck_hex: &str,
    ik_hex: &str,
    rest_params: &[&str],
) -> Result<(), Error> {
    check_key(ck_hex)?;
    check_key(ik_hex)?;
    if !quotable(realm) {
        return Err(Error::InvalidValue { what: "realm" });
    }
    if !quotable(nonce) {
        return Err(Error::InvalidValue { what: "nonce" });
    }
    if algorithm.is_empty() || !algorithm.bytes().all(crate::lex::is_token) {
        return Err(Error::InvalidValue { what: "algorithm" });
    }
    if rest_params
        .iter()
        .any(|p| p.bytes().any(|c| c == b'\r' || c == b'\n'))
    {
        return Err(Error::InvalidValue { what: "auth-param" });
    }
    out.extend_from_slice(b"Digest realm=\"");
    out.extend_from_slice(realm.as_bytes());
    out.extend_from_slice(b"\", nonce=\"");
    out.extend_from_slice(nonce.as_bytes());
    out.extend_from_slice(b"\", algorithm=");
    out.extend_from_slice(algorithm.as_bytes());
    out.extend_from_slice(b", ck=\"");
    push_lower_hex(out, ck_hex);
    out.extend_from_slice(b"\", ik=\"");
    push_lower_hex(out, ik_hex);
    out.push(b'"');
    for p in rest_params {
        out.extend_from_slice(b", ");
        out.extend_from_slice(p.as_bytes());
    }
    Ok(())
}

/// The canonical AKA challenge (DESIGN 2.3) as new bytes; see [`write_canonical_aka_challenge`].
pub fn canonical_aka_challenge(
    realm: &str,
    nonce: &str,
    algorithm: &str,
    ck_hex: &str,
    ik_hex: &str,
    rest_params: &[&str],
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(160 + realm.len() + nonce.len());
    write_canonical_aka_challenge(
        &mut out,
        realm,
        nonce,
        algorithm,
        ck_hex,
        ik_hex,
        rest_params,
    )?;
    Ok(out)
}

impl Editor<'_, '_> {
    /// Remove the params with these exact names (case-insensitive) from `ch`, together with one
    /// adjacent comma and its white space, so the list stays tidy.
    pub fn remove_auth_params(&mut self, ch: &Challenge<'_>, names: &[&str]) -> &mut Self {
        self.rewrite_auth_params(ch, names, None)
    }

    /// Replace the first param named in `names` with `new_param` (raw `name=value` bytes) and
    /// remove the others; when none is present, `new_param` is appended to the challenge.
    pub fn replace_auth_params(
        &mut self,
        ch: &Challenge<'_>,
        names: &[&str],
        new_param: &[u8],
    ) -> &mut Self {
        self.rewrite_auth_params(ch, names, Some(new_param))
    }

    /// Append a raw `name=value` param at the end of `ch`.
    pub fn append_auth_param(&mut self, ch: &Challenge<'_>, param: &[u8]) -> &mut Self {
        let sep: &[u8] = if ch.params.is_empty() { b" " } else { b", " };
        let mut bytes = Vec::with_capacity(sep.len() + param.len());
        bytes.extend_from_slice(sep);
        bytes.extend_from_slice(param);
        self.insert(ch.range.end, &bytes)
    }

    /// Replace the whole challenge (scheme and params) with `bytes`.
    pub fn replace_challenge(&mut self, ch: &Challenge<'_>, bytes: &[u8]) -> &mut Self {
        self.replace(ch.range.clone(), bytes)
    }

    fn rewrite_auth_params(
        &mut self,
        ch: &Challenge<'_>,
        names: &[&str],
        new_param: Option<&[u8]>,
    ) -> &mut Self {
        let matches = |p: &AuthParam<'_>| names.iter().any(|n| p.name.eq_ignore_ascii_case(n));
        let replaced = new_param.and_then(|_| ch.params.iter().position(matches));
        let removed = |i: usize| Some(i) != replaced && ch.params.get(i).is_some_and(&matches);
        let n = ch.params.len();
        let mut i = 0;
        while i < n {
            if !removed(i) {
                if Some(i) == replaced
                    && let (Some(p), Some(np)) = (ch.params.get(i), new_param)
                {
                    self.replace(p.range.clone(), np);
                }
                i += 1;
                continue;
            }
            let mut j = i;
            while j + 1 < n && removed(j + 1) {
                j += 1;
            }
            let span = if i > 0 {
                ch.params[i - 1].range.end..ch.params[j].range.end
            } else if j + 1 < n {
                ch.params[i].range.start..ch.params[j + 1].range.start
            } else {
                ch.scheme_end()..ch.params[j].range.end
            };
            self.remove(span);
            i = j + 1;
        }
        if let (None, Some(np)) = (replaced, new_param) {
            self.append_auth_param(ch, np);
        }
        self
    }
}

/// Challenge `index`, refused when malformed: an edit could then change how the rest parses.
fn challenge_at<'a>(msg: &Message<'a>, index: usize) -> Result<Challenge<'a>, Error> {
    let ch = msg
        .challenges()
        .into_iter()
        .nth(index)
        .ok_or(Error::NoSuchChallenge { index })?;
    if ch.malformed {
        return Err(Error::MalformedChallenge { index });
    }
    Ok(ch)
}

/// Refuses an edit whose output does not read back as promised: the same number of challenges,
/// and challenge `index` carrying keys exactly when `keys` says so. Any parse ambiguity the
/// `malformed` flag missed then fails closed instead of moving bytes between params.
fn verified(mut out: Vec<u8>, count: usize, index: usize, keys: bool) -> Result<Vec<u8>, Error> {
    let ok = crate::scan(&out).is_ok_and(|again| {
        let chs = again.challenges();
        chs.len() == count
            && chs
                .get(index)
                .is_some_and(|ch| !ch.malformed && ch.has_keys() == keys)
    });
    if ok {
        return Ok(out);
    }
    // The refused output may hold key text: wipe it before it is freed.
    out.fill(0);
    std::hint::black_box(&out);
    Err(Error::MalformedChallenge { index })
}

/// A copy of `msg` with the named auth-params removed from challenge `challenge_index`
/// (an index into [`Message::challenges`]).
pub fn remove_auth_params(
    msg: &Message<'_>,
    challenge_index: usize,
    names: &[&str],
) -> Result<Vec<u8>, Error> {
    let ch = challenge_at(msg, challenge_index)?;
    let mut e = msg.edit();
    e.remove_auth_params(&ch, names);
    Ok(e.finish())
}

/// A copy of `msg` with `name="value"` (quoted) or `name=value` appended to challenge
/// `challenge_index`.
pub fn insert_auth_param(
    msg: &Message<'_>,
    challenge_index: usize,
    name: &str,
    value: &str,
    quoted: bool,
) -> Result<Vec<u8>, Error> {
    let ch = challenge_at(msg, challenge_index)?;
    let param = auth_param_bytes(name, value, quoted)?;
    let mut e = msg.edit();
    e.append_auth_param(&ch, &param);
    Ok(e.finish())
}

fn auth_param_bytes(name: &str, value: &str, quoted: bool) -> Result<Vec<u8>, Error> {
    if name.is_empty() || !name.bytes().all(crate::lex::is_token) {
        return Err(Error::InvalidValue {
            what: "auth-param name",
        });
    }
    let ok = if quoted {
        quotable(value)
    } else {
        value.bytes().all(crate::lex::is_token)
    };
    if !ok || (!quoted && value.is_empty()) {
        return Err(Error::InvalidValue {
            what: "auth-param value",
        });
    }
    let mut p = Vec::with_capacity(name.len() + value.len() + 3);
    p.extend_from_slice(name.as_bytes());
    p.push(b'=');
    if quoted {
        p.push(b'"');
    }
    p.extend_from_slice(value.as_bytes());
    if quoted {
        p.push(b'"');
    }
    Ok(p)
}

/// A copy of `msg` with `ck` and `ik` removed from challenge `challenge_index`.
pub fn remove_keys(msg: &Message<'_>, challenge_index: usize) -> Result<Vec<u8>, Error> {
    let count = msg.challenges().len();
    let out = remove_auth_params(msg, challenge_index, &SECRET_PARAMS)?;
    verified(out, count, challenge_index, false)
}

/// A copy of `msg` where `ck`/`ik` of challenge `challenge_index` become one quoted param
/// `name="value"` (e.g. the sealed `kt`), placed where `ck` was.
pub fn replace_keys_with_param(
    msg: &Message<'_>,
    challenge_index: usize,
    name: &str,
    value: &str,
) -> Result<Vec<u8>, Error> {
    let ch = challenge_at(msg, challenge_index)?;
    let param = auth_param_bytes(name, value, true)?;
    let mut e = msg.edit();
    e.replace_auth_params(&ch, &SECRET_PARAMS, &param);
    verified(e.finish(), msg.challenges().len(), challenge_index, false)
}

/// A copy of `msg` whose challenge `challenge_index` is rewritten into the canonical form
/// `Digest realm="…", nonce="…", algorithm=AKAv1-MD5, ck="…", ik="…"[, other params in order]`.
///
/// Any existing `ck`, `ik` and `kt` params are dropped; the algorithm keeps its value when present
/// (`AKAv1-MD5` otherwise). The key hex strings (32 hex digits each) are written in lowercase.
pub fn restore_keys(
    msg: &Message<'_>,
    challenge_index: usize,
    ck_hex: &str,
    ik_hex: &str,
) -> Result<Vec<u8>, Error> {
    let ch = challenge_at(msg, challenge_index)?;
    let mut e = msg.edit();
    restore_keys_in(&mut e, &ch, ck_hex, ik_hex)?;
    verified(e.finish(), msg.challenges().len(), challenge_index, true)
}

/// [`restore_keys`] as an editor step, for callers that make other edits in the same pass.
pub fn restore_keys_in(
    e: &mut Editor<'_, '_>,
    ch: &Challenge<'_>,
    ck_hex: &str,
    ik_hex: &str,
) -> Result<(), Error> {
    if ch.malformed {
        return Err(Error::MalformedChallenge {
            index: ch.header_index,
        });
    }
    let realm = ch
        .param("realm")
        .ok_or(Error::MissingParam { name: "realm" })?;
    let nonce = ch
        .param("nonce")
        .ok_or(Error::MissingParam { name: "nonce" })?;
    let algorithm = ch.param("algorithm").map_or("AKAv1-MD5", |a| a.value);
    let bytes = e.message().bytes();
    let mut rest: Vec<&str> = Vec::with_capacity(ch.params.len());
    for p in &ch.params {
        let skip = ["realm", "nonce", "algorithm", "ck", "ik", "kt"]
            .iter()
            .any(|n| p.name.eq_ignore_ascii_case(n));
        if !skip {
            let raw = bytes
                .get(p.range.clone())
                .and_then(|r| std::str::from_utf8(r).ok());
            rest.push(raw.unwrap_or(""));
        }
    }
    rest.retain(|r| !r.is_empty());
    // Written straight into the editor's buffer so the key hex is not copied anywhere else.
    e.replace_with(ch.range.clone(), |out| {
        write_canonical_aka_challenge(
            out,
            realm.value,
            nonce.value,
            algorithm,
            ck_hex,
            ik_hex,
            &rest,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan;

    const CK: &str = "0123456789abcdef0123456789abcdef";
    const IK: &str = "fedcba9876543210fedcba9876543210";

    fn k401(auth: &str) -> Vec<u8> {
        format!(
            "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n{auth}\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    const KAM: &str = "WWW-Authenticate: Digest realm=\"ims.example.net\", nonce=\"q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng=\", algorithm=AKAv1-MD5, ck=\"0123456789abcdef0123456789abcdef\", ik=\"fedcba9876543210fedcba9876543210\", qop=\"auth,auth-int\"";

    #[test]
    fn parses_kamailio_form() {
        let raw = k401(KAM);
        let m = scan(&raw).unwrap();
        let ch = m.challenges();
        assert_eq!(ch.len(), 1);
        let c = &ch[0];
        assert_eq!(c.scheme, "Digest");
        let names: Vec<&str> = c.params.iter().map(|p| p.name).collect();
        assert_eq!(names, ["realm", "nonce", "algorithm", "ck", "ik", "qop"]);
        assert_eq!(c.param("CK").unwrap().value, CK);
        assert_eq!(c.param("qop").unwrap().value, "auth,auth-int");
        assert!(c.is_aka());
        assert!(c.has_keys());
        assert_eq!(
            &raw[c.params[3].range.clone()],
            format!("ck=\"{CK}\"").as_bytes()
        );
        let dbg = format!("{c:?}");
        assert!(!dbg.contains(CK) && !dbg.contains(IK), "{dbg}");
    }

    #[test]
    fn lenient_forms_and_exact_names() {
        let raw = k401(concat!(
            "Proxy-Authenticate:   digest   NONCE = \"a\\\"b\" ,cknonce=\"x\",  REALM=r , ",
            "algorithm=\"AKAv1-MD5\",, Basic realm=\"b\"\r\n",
            "WWW-Authenticate: Digest realm=\"two\", ckx=1, ik_=2"
        ));
        let m = scan(&raw).unwrap();
        let ch = m.challenges();
        assert_eq!(ch.len(), 3);
        assert_eq!(ch[0].scheme, "digest");
        assert_eq!(ch[0].param("nonce").unwrap().value, "a\\\"b");
        assert_eq!(ch[0].unescaped("nonce").unwrap(), "a\"b");
        assert_eq!(ch[0].param("realm").unwrap().value, "r");
        assert!(!ch[0].param("realm").unwrap().quoted);
        assert!(ch[0].param("ck").is_none());
        assert!(ch[0].is_aka());
        assert_eq!(ch[1].scheme, "Basic");
        assert_eq!(ch[1].header_index, 1);
        assert_eq!(ch[2].header_index, 2);
        assert!(ch[2].param("ck").is_none() && ch[2].param("ik").is_none());
        assert!(!ch[2].has_keys());
    }

    #[test]
    fn credentials_and_token68() {
        let raw = b"REGISTER sip:r SIP/2.0\r\n\
Authorization: Digest username=\"u@r\", realm=\"r\", nonce=\"\", uri=\"sip:r\", response=\"\"\r\n\
Proxy-Authorization: Basic dXNlcjpwYXNz==\r\n\r\n";
        let m = scan(raw).unwrap();
        let c = m.credentials();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].param("nonce").unwrap().value, "");
        assert_eq!(c[0].param("response").unwrap().value, "");
        assert_eq!(c[1].params[0].name, "");
        assert_eq!(c[1].params[0].value, "dXNlcjpwYXNz==");
        assert!(m.challenges().is_empty());
    }

    #[test]
    fn remove_and_restore_round_trip() {
        let raw = k401(KAM);
        let m = scan(&raw).unwrap();
        let stripped = remove_keys(&m, 0).unwrap();
        let s = String::from_utf8(stripped.clone()).unwrap();
        assert!(
            s.contains("algorithm=AKAv1-MD5, qop=\"auth,auth-int\"\r\n"),
            "{s}"
        );
        assert!(!s.contains(CK));
        let m2 = scan(&stripped).unwrap();
        assert_eq!(restore_keys(&m2, 0, CK, IK).unwrap(), raw);
        // Upper-case hex input is written in lowercase.
        assert_eq!(
            restore_keys(&m2, 0, &CK.to_ascii_uppercase(), &IK.to_ascii_uppercase()).unwrap(),
            raw
        );
    }

    #[test]
    fn restore_canonicalises_any_order() {
        let raw = k401(
            "WWW-Authenticate: Digest qop=\"auth\" ,algorithm=AKAv1-MD5,nonce=\"n\", opaque=\"o\", realm=\"r\", kt=\"ikt1.x.y\"",
        );
        let m = scan(&raw).unwrap();
        let out = restore_keys(&m, 0, CK, IK).unwrap();
        let want = k401(&format!(
            "WWW-Authenticate: Digest realm=\"r\", nonce=\"n\", algorithm=AKAv1-MD5, ck=\"{CK}\", ik=\"{IK}\", qop=\"auth\", opaque=\"o\""
        ));
        assert_eq!(out, want);
        assert_eq!(
            restore_keys(&m, 1, CK, IK),
            Err(Error::NoSuchChallenge { index: 1 })
        );
        assert_eq!(restore_keys(&m, 0, "xyz", IK), Err(Error::InvalidKeyHex));
        let no_nonce = k401("WWW-Authenticate: Digest realm=\"r\"");
        let m = scan(&no_nonce).unwrap();
        assert_eq!(
            restore_keys(&m, 0, CK, IK),
            Err(Error::MissingParam { name: "nonce" })
        );
    }

    #[test]
    fn kt_in_place_of_keys() {
        let raw = k401(KAM);
        let m = scan(&raw).unwrap();
        let out = replace_keys_with_param(&m, 0, "kt", "ikt1.k1.AAAA").unwrap();
        let s = String::from_utf8(out.clone()).unwrap();
        assert!(
            s.contains("algorithm=AKAv1-MD5, kt=\"ikt1.k1.AAAA\", qop=\"auth,auth-int\"\r\n"),
            "{s}"
        );
        let m2 = scan(&out).unwrap();
        assert_eq!(restore_keys(&m2, 0, CK, IK).unwrap(), raw);
        // No keys: appended.
        let plain = k401("WWW-Authenticate: Digest realm=\"r\", nonce=\"n\"");
        let m = scan(&plain).unwrap();
        let out = replace_keys_with_param(&m, 0, "kt", "v").unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("nonce=\"n\", kt=\"v\"\r\n")
        );
        assert_eq!(
            replace_keys_with_param(&m, 0, "kt", "a\"b"),
            Err(Error::InvalidValue {
                what: "auth-param value"
            })
        );
    }

    #[test]
    fn comma_tidy_positions() {
        let cases = [
            ("Digest ck=\"1\", realm=\"r\"", "Digest realm=\"r\""),
            ("Digest realm=\"r\",ck=1 , ik=2", "Digest realm=\"r\""),
            ("Digest ck=1, ik=2", "Digest"),
            ("Digest a=1, ck=1, b=2, ik=2, c=3", "Digest a=1, b=2, c=3"),
            ("Digest ck=1, ik=2, Basic realm=x", "Digest, Basic realm=x"),
        ];
        for (input, want) in cases {
            let raw = k401(&format!("WWW-Authenticate: {input}"));
            let m = scan(&raw).unwrap();
            let out = remove_keys(&m, 0).unwrap();
            let want = k401(&format!("WWW-Authenticate: {want}"));
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
    }

    #[test]
    fn debug_and_errors_never_show_keys() {
        let raw = k401(KAM);
        let m = scan(&raw).unwrap();
        let ch = m.challenges();
        let mut e = m.edit();
        restore_keys_in(&mut e, &ch[0], CK, IK).unwrap();
        let mut f = crate::Framer::new(crate::Limits::DEFAULT);
        f.push(&raw);
        let bad = "0123456789abcdef0123456789abcdeZ";
        let err = restore_keys(&m, 0, bad, IK).unwrap_err();
        for text in [
            format!("{m:?}"),
            format!("{ch:?}"),
            format!("{e:?}"),
            format!("{f:?}"),
            format!("{err:?} {err}"),
        ] {
            assert!(
                !text.contains(CK) && !text.contains(IK) && !text.contains(bad),
                "{text}"
            );
        }
    }

    #[test]
    fn insert_param_and_canonical_builder() {
        let raw = k401("WWW-Authenticate: Digest realm=\"r\"");
        let m = scan(&raw).unwrap();
        let out = insert_auth_param(&m, 0, "nonce", "n", true).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("Digest realm=\"r\", nonce=\"n\"\r\n")
        );
        let c = canonical_aka_challenge("r", "n", "AKAv1-MD5", CK, IK, &["qop=\"auth\""]).unwrap();
        assert_eq!(
            String::from_utf8(c).unwrap(),
            format!(
                "Digest realm=\"r\", nonce=\"n\", algorithm=AKAv1-MD5, ck=\"{CK}\", ik=\"{IK}\", qop=\"auth\""
            )
        );
        assert!(canonical_aka_challenge("r\"", "n", "AKAv1-MD5", CK, IK, &[]).is_err());
        assert!(canonical_aka_challenge("r", "n\r\n", "AKAv1-MD5", CK, IK, &[]).is_err());
        assert!(canonical_aka_challenge("r", "n", "AKAv1-MD5", CK, &IK[1..], &[]).is_err());
        let err = canonical_aka_challenge("r", "n", "AKAv1-MD5", CK, "g".repeat(32).as_str(), &[]);
        assert!(!format!("{err:?}").contains("gggg"));
    }
}

#[cfg(test)]
mod malformed_tests {
    use crate::scan;

    fn first(www: &str) -> (bool, usize) {
        let raw = format!(
            "SIP/2.0 401 Unauthorized\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nWWW-Authenticate: {www}\r\nContent-Length: 0\r\n\r\n"
        );
        let m = scan(raw.as_bytes()).unwrap();
        let ch = &m.challenges()[0];
        (ch.malformed, ch.params.len())
    }

    #[test]
    fn well_formed_challenges_are_not_flagged() {
        assert!(!first(r#"Digest realm="r", nonce="n", algorithm=AKAv1-MD5, ck="00", ik="11", qop="auth,auth-int""#).0);
        assert!(!first(r#"Digest realm = "r" ,nonce="a\"b",algorithm=AKAv1-MD5"#).0);
        assert!(!first("Digest realm=\"r\",\t nonce=\"n\"").0);
    }

    #[test]
    fn ambiguous_challenges_are_flagged() {
        // No comma between params, a value glued to the next name, control bytes, no closing quote.
        assert!(first(r#"Digest realm="r" nonce="n""#).0);
        assert!(first(r#"Digest realm="r", ck="00"hm=x, ik="11""#).0);
        assert!(first("Digest realm=\"r\u{3}\", nonce=\"n\"").0);
        assert!(first("Digest realm=\"r\", nonce=\"n").0);
        assert!(first("Digest realm=r\u{0}x, nonce=\"n\"").0);
    }

    #[test]
    fn key_edits_refuse_a_malformed_challenge() {
        let raw = "SIP/2.0 401 Unauthorized\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"n\", algorithm=AKAv1-MD5, ck=\"00112233445566778899aabbccddeeff\"x=1, ik=\"00112233445566778899aabbccddeeff\"\r\nContent-Length: 0\r\n\r\n";
        let m = scan(raw.as_bytes()).unwrap();
        assert!(matches!(
            crate::remove_keys(&m, 0),
            Err(crate::Error::MalformedChallenge { .. })
        ));
    }
}
