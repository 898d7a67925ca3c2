//! P-CSCF: the UE's first hop. Adds Path, forwards toward the core, takes ck/ik out of AKA 401s
//! and keeps them per UE (standing in for the IPsec SAs), subscribes to the reg event of each
//! registered user, and fails closed when a 401 carries no usable keys.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ikt_sip::{HeaderName, Message};
use tokio::net::UdpSocket;

use crate::Error;
use crate::challenge;
use crate::compose::{self, Builder};
use crate::hss::Hss;
use crate::reginfo;
use crate::secret::{self, Ck, Ik};
use crate::via;

/// Counters of the P-CSCF.
#[derive(Debug, Default)]
pub struct PcscfStats {
    /// AKA 401s whose keys were taken and stored.
    pub keys_stored: AtomicU64,
    /// AKA 401s turned into 503 because they carried no usable keys.
    pub fail_closed: AtomicU64,
    /// 200 OKs to REGISTER with a non-zero expiry.
    pub registrations: AtomicU64,
    /// Key sets dropped because a registration ended.
    pub keys_dropped: AtomicU64,
    /// reg-event NOTIFYs received for the P-CSCF's own subscriptions.
    pub notifies: AtomicU64,
}

/// Keys taken from a 401, with the RAND of its nonce (public) so a test oracle can recompute them.
struct HeldKeys {
    ck: Ck,
    ik: Ik,
    rand: Option<[u8; 16]>,
}

impl HeldKeys {
    fn fingerprint(&self) -> String {
        secret::fingerprint(&self.ck, &self.ik)
    }
}

#[derive(Default)]
struct UeKeys {
    pending: Option<HeldKeys>,
    active: Option<HeldKeys>,
}

struct Txn {
    key: String,
    is_register: bool,
}

#[derive(Default)]
struct State {
    txns: HashMap<String, Txn>,
    keys: HashMap<String, UeKeys>,
    impu_to_key: HashMap<String, String>,
    subscribed: HashMap<String, String>,
    own_call_ids: HashMap<String, String>,
}

/// The P-CSCF.
pub struct Pcscf {
    socket: Arc<UdpSocket>,
    addr: SocketAddr,
    next_hop: SocketAddr,
    state: Mutex<State>,
    stats: PcscfStats,
    salt: [u8; 16],
}

impl std::fmt::Debug for Pcscf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pcscf")
            .field("addr", &self.addr)
            .field("next_hop", &self.next_hop)
            .finish_non_exhaustive()
    }
}

type Out = Vec<(Vec<u8>, SocketAddr)>;

/// Bound on remembered transactions; the oldest are forgotten past it (their responses are still
/// relayed, only key bookkeeping for them is lost).
const MAX_TXNS: usize = 65_536;

/// Whether `text` has something that reads as a `ck=` or `ik=` parameter (any case, any
/// spacing before `=`), as a last check that no key leaves toward the UE.
fn has_key_param(text: &str) -> bool {
    let b = text.as_bytes();
    // Outside quoted strings only: a base64 nonce such as "…+ik=" is a value, not a param
    // (matching inside it failed one challenge in about 8k closed for nothing).
    let mut quoted = false;
    let mut escaped = false;
    (0..b.len().saturating_sub(1)).any(|i| {
        if quoted {
            match b[i] {
                // A quote never hides the next line (an unbalanced one must not mask a param).
                b'\n' => (quoted, escaped) = (false, false),
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => quoted = false,
                _ => {}
            }
            return false;
        }
        if b[i] == b'"' {
            quoted = true;
            return false;
        }
        let name = [b[i].to_ascii_lowercase(), b[i + 1].to_ascii_lowercase()];
        let boundary =
            i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'-' || b[i - 1] == b'_');
        let rest = b[i + 2..].iter().find(|c| !c.is_ascii_whitespace());
        (name == *b"ck" || name == *b"ik") && boundary && rest == Some(&b'=')
    })
}

fn is_hex32(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Pcscf {
    /// A P-CSCF on this socket that sends requests toward the core to `next_hop`.
    pub fn new(socket: Arc<UdpSocket>, next_hop: SocketAddr) -> Result<Arc<Self>, Error> {
        let addr = socket.local_addr()?;
        Ok(Arc::new(Self {
            socket,
            addr,
            next_hop,
            state: Mutex::new(State::default()),
            stats: PcscfStats::default(),
            salt: {
                let mut salt = [0u8; 16];
                getrandom::fill(&mut salt).map_err(|_| Error::Random)?;
                salt
            },
        }))
    }

    /// Its SIP address (what UEs send to).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counters.
    pub fn stats(&self) -> &PcscfStats {
        &self.stats
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Fingerprint of the keys of `impi`'s current registration (see [`secret::fingerprint`]).
    pub fn fingerprint(&self, impi: &str) -> Option<String> {
        let st = self.lock();
        st.keys
            .get(impi)?
            .active
            .as_ref()
            .map(HeldKeys::fingerprint)
    }

    /// Checks the keys held for `impi`'s registration against the HSS (the test oracle of
    /// DESIGN §6): `Some(true)` when they are what MILENAGE gives for the challenge's RAND.
    pub fn check_keys(&self, impi: &str, hss: &Hss) -> Option<bool> {
        let st = self.lock();
        let held = st.keys.get(impi)?.active.as_ref()?;
        let (ck, ik) = hss.keys_for(impi, held.rand.as_ref()?)?;
        Some(held.ck == ck && held.ik == ik)
    }

    /// Fingerprint of the keys of `impi`'s latest challenge (registered or not yet).
    pub fn pending_fingerprint(&self, impi: &str) -> Option<String> {
        let st = self.lock();
        st.keys
            .get(impi)?
            .pending
            .as_ref()
            .map(HeldKeys::fingerprint)
    }

    /// Runs the receive loop until `shutdown` flips to true.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut buf = vec![0u8; 65_535];
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                r = self.socket.recv_from(&mut buf) => {
                    let Ok((n, src)) = r else { continue };
                    let out = self.handle(&buf[..n], src);
                    // Received 401s carried CK/IK in clear: wipe the receive buffer.
                    zeroize::Zeroize::zeroize(&mut buf[..n]);
                    for (mut bytes, to) in out {
                        if let Err(e) = self.socket.send_to(&bytes, to).await {
                            tracing::warn!(%to, error = %e, "p-cscf: send failed");
                        }
                        zeroize::Zeroize::zeroize(&mut bytes);
                    }
                }
            }
        }
    }

    fn handle(&self, bytes: &[u8], src: SocketAddr) -> Out {
        let msg = match ikt_sip::scan(bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(%src, error = ?e, "p-cscf: unparsable datagram dropped");
                return Vec::new();
            }
        };
        if msg.is_request() {
            self.on_request(&msg, src)
        } else {
            self.on_response(&msg)
        }
    }

    fn on_request(&self, msg: &Message<'_>, src: SocketAddr) -> Out {
        if msg.method() == Some("ACK") {
            return Vec::new();
        }
        let call_id = msg.call_id().unwrap_or("");
        if msg.method() == Some("NOTIFY") && self.lock().own_call_ids.contains_key(call_id) {
            return self.on_own_notify(msg, src);
        }
        let target = msg
            .request_uri()
            .and_then(compose::uri_addr)
            .filter(|a| *a != self.addr);
        let branch = self.branch_for(msg);
        let my_via = format!("SIP/2.0/UDP {};branch={branch};rport", self.addr);
        if let Some(ue) = target {
            // Toward a UE (a NOTIFY from the S-CSCF routed by Path): drop our Route entry.
            let without_route = self.strip_own_route(msg);
            let Ok(m) = ikt_sip::scan(&without_route) else {
                return Vec::new();
            };
            return vec![(via::push(&m, &my_via), ue)];
        }
        let without_route = self.strip_own_route(msg);
        let Ok(routed) = ikt_sip::scan(&without_route) else {
            return Vec::new();
        };
        let mut bytes = via::push(&routed, &my_via);
        if msg.method() == Some("REGISTER") {
            let Ok(m) = ikt_sip::scan(&bytes) else {
                return Vec::new();
            };
            let path = format!("Path: <sip:term@{};lr>\r\n", self.addr);
            let at = m.head_end();
            let mut v = bytes[..at].to_vec();
            v.extend_from_slice(path.as_bytes());
            v.extend_from_slice(&bytes[at..]);
            bytes = v;
            let username = msg
                .headers_named(HeaderName::Authorization)
                .next()
                .and_then(|h| challenge::parse(msg.value(h)))
                .and_then(|d| d.param("username").map(str::to_string));
            let impu = msg.to().map(|t| t.uri.to_string()).unwrap_or_default();
            let key = username.unwrap_or_else(|| impu.clone());
            let mut st = self.lock();
            if st.txns.len() >= MAX_TXNS {
                st.txns.clear();
            }
            st.impu_to_key.insert(impu, key.clone());
            st.txns.insert(
                branch,
                Txn {
                    key,
                    is_register: true,
                },
            );
        }
        vec![(bytes, self.next_hop)]
    }

    /// Our branch for a forwarded request: derived from the request's own top branch, so a
    /// retransmission is forwarded with the same branch and meets the same server transaction.
    fn branch_for(&self, msg: &Message<'_>) -> String {
        use sha2::Digest;
        let Some(theirs) = via::top(msg).and_then(|v| v.branch) else {
            return via::new_branch();
        };
        let mut h = sha2::Sha256::new();
        h.update(self.salt);
        h.update(theirs.as_bytes());
        h.update(msg.method().unwrap_or("").as_bytes());
        h.update(msg.call_id().unwrap_or("").as_bytes());
        format!("z9hG4bK{}", crate::hex::encode(&h.finalize()[..10]))
    }

    /// The message without a first Route entry that names this P-CSCF (a UE configured with
    /// the P-CSCF as outbound proxy sends one; left in, the next hop would route back here).
    fn strip_own_route(&self, msg: &Message<'_>) -> Vec<u8> {
        let bytes = msg.bytes();
        let routes = msg.route();
        let Some(first) = routes
            .first()
            .filter(|r| compose::uri_addr(r.uri) == Some(self.addr))
        else {
            return bytes.to_vec();
        };
        let cut = match routes
            .get(1)
            .filter(|r| r.header_index == first.header_index)
        {
            // More values in the same header: drop this one up to where the next begins.
            Some(next) => first.range.start..next.range.start,
            None => msg.headers()[first.header_index].line.clone(),
        };
        let mut v = bytes[..cut.start].to_vec();
        v.extend_from_slice(&bytes[cut.end..]);
        v
    }

    fn on_response(&self, msg: &Message<'_>) -> Out {
        let Some(top) = via::top(msg) else {
            return Vec::new();
        };
        if top.host != self.addr.ip().to_string() || top.port != Some(self.addr.port()) {
            tracing::debug!("p-cscf: response whose top Via is not ours dropped");
            return Vec::new();
        }
        let branch = top.branch.unwrap_or_default();
        let popped = zeroize::Zeroizing::new(via::pop(msg));
        let Ok(m) = ikt_sip::scan(&popped) else {
            return Vec::new();
        };
        let Some(next) = via::top(&m).and_then(|v| v.response_target()) else {
            // Our own request (the reg-event SUBSCRIBE): nothing to forward.
            return Vec::new();
        };
        let txn = self.lock().txns.remove(&branch).filter(|t| t.is_register);
        match (m.status(), txn) {
            // Every challenge is checked, even one we cannot match to a REGISTER (its keys
            // would have no owner): it must never reach the UE with keys in it.
            (Some(401) | Some(407), txn) => self.on_challenge(&m, txn.as_ref(), next),
            // Keys have no business in any other response either.
            (_, txn) if has_key_param(&String::from_utf8_lossy(m.bytes())) => self.fail_closed(
                &m,
                txn.as_ref(),
                next,
                "key parameter in a non-challenge response",
            ),
            (Some(200), Some(txn)) => self.on_register_ok(&m, &txn, popped.to_vec(), next),
            _ => vec![(popped.to_vec(), next)],
        }
    }

    fn fail_closed(&self, m: &Message<'_>, txn: Option<&Txn>, next: SocketAddr, why: &str) -> Out {
        let impi = txn.map_or("-", |t| t.key.as_str());
        self.stats.fail_closed.fetch_add(1, Ordering::Relaxed);
        // Only clean values are logged or copied: a malformed message can hide a key inside
        // what scans as another header's value.
        let clean =
            |v: &str| !has_key_param(v) && !v.bytes().any(|c| c == b'\r' || c == b'\n' || c == 0);
        let call_id = m.call_id().filter(|c| clean(c)).unwrap_or("-");
        tracing::warn!(
            impi,
            call_id,
            why,
            "p-cscf: challenge not forwarded; answering 503 (fail closed)"
        );
        let mut b = Builder::response(503, "Service Unavailable");
        for h in m.headers() {
            let routing = matches!(
                h.name,
                HeaderName::Via
                    | HeaderName::From
                    | HeaderName::To
                    | HeaderName::CallId
                    | HeaderName::CSeq
            );
            if routing && clean(m.value(h)) {
                b = b.header(m.name(h), m.value(h));
            }
        }
        vec![(b.header("Retry-After", "5").finish(), next)]
    }

    fn on_challenge(&self, m: &Message<'_>, txn: Option<&Txn>, next: SocketAddr) -> Out {
        // Every challenge that is AKA or carries a key parameter; one we cannot parse but that
        // might carry keys is refused rather than forwarded.
        let mut aka = Vec::new();
        for (i, h) in m.headers().iter().enumerate() {
            if h.name != HeaderName::WwwAuthenticate && h.name != HeaderName::ProxyAuthenticate {
                continue;
            }
            match challenge::parse(m.value(h)) {
                Some(d) => {
                    let is_aka = d
                        .param("algorithm")
                        .is_some_and(|a| a.eq_ignore_ascii_case("AKAv1-MD5"));
                    if is_aka || d.param("ck").is_some() || d.param("ik").is_some() {
                        aka.push((i, d));
                    }
                }
                None if has_key_param(m.value(h))
                    || m.value(h).to_ascii_lowercase().contains("aka") =>
                {
                    return self.fail_closed(m, txn, next, "unparsable AKA challenge");
                }
                None => {}
            }
        }
        let (index, d) = match aka.len() {
            0 if has_key_param(&String::from_utf8_lossy(m.bytes())) => {
                return self.fail_closed(m, txn, next, "key parameter outside a challenge");
            }
            0 => return vec![(m.bytes().to_vec(), next)],
            1 => aka.remove(0),
            _ => return self.fail_closed(m, txn, next, "several AKA challenges"),
        };
        let keys = match (d.param("ck"), d.param("ik")) {
            (Some(ck), Some(ik)) if is_hex32(ck) && is_hex32(ik) => {
                Ck::from_hex(ck).ok().zip(Ik::from_hex(ik).ok())
            }
            _ => None,
        };
        let Some((ck, ik)) = keys else {
            return self.fail_closed(m, txn, next, "AKA challenge without usable ck/ik");
        };
        let Some(txn) = txn else {
            return self.fail_closed(m, None, next, "AKA challenge for no known REGISTER");
        };
        let fp = secret::fingerprint(&ck, &ik);
        let h = &m.headers()[index];
        let value = m.value(h);
        let stripped = challenge::without(value, &d, &["ck", "ik"]);
        let bytes = m.bytes();
        let mut out = bytes[..h.value_range.start].to_vec();
        out.extend_from_slice(stripped.as_bytes());
        out.extend_from_slice(&bytes[h.value_range.end..]);
        // Headers and body: a key must not reach the UE anywhere in the message.
        if has_key_param(&String::from_utf8_lossy(&out)) {
            return self.fail_closed(m, Some(txn), next, "key parameter left after stripping");
        }
        let rand = d.param("nonce").and_then(|n| {
            use base64::Engine;
            let raw = base64::engine::general_purpose::STANDARD.decode(n).ok()?;
            raw.get(..16)?.try_into().ok()
        });
        self.lock().keys.entry(txn.key.clone()).or_default().pending =
            Some(HeldKeys { ck, ik, rand });
        self.stats.keys_stored.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            impi = txn.key,
            fingerprint = fp,
            "p-cscf: keys taken from the 401 and stored"
        );
        vec![(out, next)]
    }

    fn on_register_ok(&self, m: &Message<'_>, txn: &Txn, bytes: Vec<u8>, next: SocketAddr) -> Out {
        let expires = m
            .contacts()
            .first()
            .and_then(|c| c.expires())
            .or_else(|| m.expires())
            .unwrap_or(0);
        let impus: Vec<String> = m
            .p_associated_uris()
            .iter()
            .map(|a| a.uri.to_string())
            .collect();
        let mut out = vec![(bytes, next)];
        let mut st = self.lock();
        if expires == 0 {
            if st.keys.remove(&txn.key).is_some() {
                self.stats.keys_dropped.fetch_add(1, Ordering::Relaxed);
            }
            st.subscribed.remove(&txn.key);
            tracing::info!(impi = txn.key, "p-cscf: de-registered; keys dropped");
            return out;
        }
        let entry = st.keys.entry(txn.key.clone()).or_default();
        if let Some(k) = entry.pending.take() {
            entry.active = Some(k);
        }
        let fp = entry.active.as_ref().map(HeldKeys::fingerprint);
        self.stats.registrations.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            impi = txn.key,
            fingerprint = fp.as_deref().unwrap_or("-"),
            expires,
            "p-cscf: registered"
        );
        for impu in &impus {
            st.impu_to_key.insert(impu.clone(), txn.key.clone());
        }
        let impu = m.to().map(|t| t.uri.to_string()).unwrap_or_default();
        if !st.subscribed.contains_key(&txn.key) && !impu.is_empty() {
            let call_id = format!("pcscf-reg-{}", compose::token());
            st.subscribed.insert(txn.key.clone(), call_id.clone());
            st.own_call_ids.insert(call_id.clone(), txn.key.clone());
            let me = format!("sip:pcscf@{}", self.addr);
            let sub = Builder::request("SUBSCRIBE", &impu)
                .header(
                    "Via",
                    &format!(
                        "SIP/2.0/UDP {};branch={};rport",
                        self.addr,
                        via::new_branch()
                    ),
                )
                .header("Max-Forwards", "70")
                .header("From", &format!("<{me}>;tag={}", compose::token()))
                .header("To", &format!("<{impu}>"))
                .header("Call-ID", &call_id)
                .header("CSeq", "1 SUBSCRIBE")
                .header("Contact", &format!("<{me}>"))
                .header("Event", "reg")
                .header("Expires", &expires.to_string())
                .finish();
            out.push((sub, self.next_hop));
        }
        out
    }

    fn on_own_notify(&self, msg: &Message<'_>, src: SocketAddr) -> Out {
        self.stats.notifies.fetch_add(1, Ordering::Relaxed);
        let target = via::top(msg)
            .and_then(|v| v.response_target())
            .unwrap_or(src);
        let reply = Builder::reply(msg, 200, "OK", &compose::token()).finish();
        let regs = reginfo::read(&String::from_utf8_lossy(msg.body()));
        let mut st = self.lock();
        let key = st.own_call_ids.get(msg.call_id().unwrap_or("")).cloned();
        if let Some(key) = key {
            let ended = !regs.is_empty() && regs.iter().all(|r| r.state == "terminated");
            let event = regs
                .iter()
                .flat_map(|r| r.contacts.iter())
                .map(|c| c.event.as_str())
                .next()
                .unwrap_or("");
            tracing::info!(impi = key, event, "p-cscf: reg-event NOTIFY");
            if ended {
                if st.keys.remove(&key).is_some() {
                    self.stats.keys_dropped.fetch_add(1, Ordering::Relaxed);
                }
                st.subscribed.remove(&key);
                if let Some(cid) = msg.call_id() {
                    st.own_call_ids.remove(cid);
                }
                tracing::info!(
                    impi = key,
                    event,
                    "p-cscf: registration terminated by the network; keys dropped"
                );
            }
        }
        vec![(reply, target)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CHALLENGE: &str = "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP PCSCF;branch=z9hG4bKp;rport\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKa;rport\r\nFrom: <sip:u@ims.example.org>;tag=1\r\nTo: <sip:u@ims.example.org>;tag=2\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\nWWW-Authenticate: Digest realm=\"ims.example.org\", nonce=\"wA1gMQPc7lLER4EZSUIC6Dn5bNmAD68XXfWzGAfiWLA=\", algorithm=AKAv1-MD5, ck=\"58c433ff7a7082acd424220f2b67c556\", ik=\"21a8c1f929702adb3e738488b9f5c5da\", qop=\"auth,auth-int\"\r\nContent-Length: 0\r\n\r\n";

    fn pcscf() -> (tokio::runtime::Runtime, Arc<Pcscf>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let socket = rt.block_on(UdpSocket::bind("127.0.0.1:0")).unwrap();
        let p = Pcscf::new(Arc::new(socket), "127.0.0.1:9".parse().unwrap()).unwrap();
        (rt, p)
    }

    fn challenge_for(p: &Pcscf) -> String {
        CHALLENGE.replace("PCSCF", &p.addr().to_string())
    }

    fn register_txn(p: &Pcscf) {
        // Registers the transaction the 401 answers (branch z9hG4bKp).
        p.lock().txns.insert(
            "z9hG4bKp".into(),
            Txn {
                key: "u@ims.example.org".into(),
                is_register: true,
            },
        );
    }

    #[test]
    fn strips_keys_and_stores_them() {
        let (_rt, p) = pcscf();
        register_txn(&p);
        let out = p.handle(challenge_for(&p).as_bytes(), "127.0.0.1:9".parse().unwrap());
        let text = String::from_utf8(out[0].0.clone()).unwrap();
        assert_eq!(out[0].1, "127.0.0.1:5999".parse().unwrap());
        assert!(!text.contains("ck=") && !text.contains("ik="), "{text}");
        assert!(text.contains("WWW-Authenticate: Digest realm=\"ims.example.org\", nonce=\"wA1gMQPc7lLER4EZSUIC6Dn5bNmAD68XXfWzGAfiWLA=\", algorithm=AKAv1-MD5, qop=\"auth,auth-int\"\r\n"));
        assert_eq!(
            p.pending_fingerprint("u@ims.example.org").map(|f| f.len()),
            Some(8)
        );
    }

    #[test]
    fn fails_closed_without_keys_or_with_bad_keys() {
        for bad in [
            challenge_for_bad("ck=\"58c433ff7a7082acd424220f2b67c556\", ", ""),
            challenge_for_bad("ik=\"21a8c1f929702adb3e738488b9f5c5da\", ", ""),
            challenge_for_bad(
                "58c433ff7a7082acd424220f2b67c556",
                "58c433ff7a7082acd424220f2b67c55",
            ),
            challenge_for_bad("21a8c1f929702adb3e738488b9f5c5da", "zz"),
        ] {
            let (_rt, p) = pcscf();
            register_txn(&p);
            let out = p.handle(
                bad.replace("PCSCF", &p.addr().to_string()).as_bytes(),
                "127.0.0.1:9".parse().unwrap(),
            );
            let text = String::from_utf8(out[0].0.clone()).unwrap();
            assert!(text.starts_with("SIP/2.0 503 "), "{text}");
            assert!(!text.contains("WWW-Authenticate"));
            assert_eq!(p.stats().fail_closed.load(Ordering::Relaxed), 1);
        }
    }

    #[test]
    fn own_route_entry_is_removed() {
        let (_rt, p) = pcscf();
        let me = p.addr();
        for (route, expect) in [
            (format!("Route: <sip:{me};lr>\r\n"), String::new()),
            (
                format!("Route: <sip:{me};lr>, <sip:10.0.0.1;lr>\r\n"),
                "Route: <sip:10.0.0.1;lr>\r\n".to_string(),
            ),
            (
                "Route: <sip:10.0.0.1;lr>\r\n".to_string(),
                "Route: <sip:10.0.0.1;lr>\r\n".to_string(),
            ),
        ] {
            let raw = format!(
                "SUBSCRIBE sip:u@ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKa\r\n{route}Call-ID: c\r\nContent-Length: 0\r\n\r\n"
            );
            let m = ikt_sip::scan(raw.as_bytes()).unwrap();
            let out = String::from_utf8(p.strip_own_route(&m)).unwrap();
            assert_eq!(out, raw.replace(&route, &expect));
        }
    }

    #[test]
    fn key_param_detection() {
        assert!(has_key_param("Digest ck=\"1\""));
        assert!(has_key_param("x, IK =1"));
        assert!(has_key_param("ck=1"));
        assert!(!has_key_param("Digest ckx=1, tick=2, nonce=\"ck\""));
        assert!(!has_key_param("Digest nonce=\"abc+ik=\", realm=\"r\""));
        assert!(!has_key_param("Digest nonce=\"a\\\" ck=1\""));
        assert!(has_key_param(
            "X: \"unbalanced\r\nWWW-Authenticate: Digest ck=\"1\""
        ));
        assert!(!has_key_param("sip:a@b;lr"));
    }

    fn challenge_for_bad(from: &str, to: &str) -> String {
        CHALLENGE.replace(from, to)
    }

    proptest! {
        #[test]
        fn mutated_challenges_never_panic_nor_leak(at in 0usize..CHALLENGE.len(), byte in any::<u8>()) {
            let (_rt, p) = pcscf();
            register_txn(&p);
            let mut m = challenge_for(&p).into_bytes();
            let i = at.min(m.len() - 1);
            m[i] = byte;
            for (bytes, _) in p.handle(&m, "127.0.0.1:9".parse().unwrap()) {
                let text = String::from_utf8_lossy(&bytes);
                prop_assert!(!text.contains("58c433ff7a7082acd424220f2b67c556"));
                prop_assert!(!text.contains("21a8c1f929702adb3e738488b9f5c5da"));
            }
        }

        #[test]
        fn keys_never_leave_under_any_status(status in 100u16..700, unknown_txn in any::<bool>()) {
            let (_rt, p) = pcscf();
            if !unknown_txn {
                register_txn(&p);
            }
            let m = challenge_for(&p).replace("401 Unauthorized", &format!("{status} Whatever"));
            for (bytes, _) in p.handle(m.as_bytes(), "127.0.0.1:9".parse().unwrap()) {
                let text = String::from_utf8_lossy(&bytes);
                prop_assert!(!text.contains("58c433ff7a7082acd424220f2b67c556"), "{}", text);
            }
        }

        #[test]
        fn arbitrary_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
            let (_rt, p) = pcscf();
            let _ = p.handle(&bytes, "127.0.0.1:9".parse().unwrap());
        }
    }
}
