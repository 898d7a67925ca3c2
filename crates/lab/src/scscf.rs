//! S-CSCF registrar: AKAv1-MD5 challenges in Kamailio's header form, digest verification, AUTS
//! resynchronisation, registrations with Path/Service-Route/P-Associated-URI, the reg-await-auth
//! timer, the reg event package, network-initiated re-authentication and the failed-attempt policy.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ikt_sip::{HeaderName, Message};
use tokio::net::UdpSocket;

use crate::Error;
use crate::challenge;
use crate::compose::{self, Builder};
use crate::config::{ExceededAction, LabConfig};
use crate::digest::{self, DigestInput, Qop};
use crate::hss::{AuthVector, Hss};
use crate::reginfo::{self, ContactInfo, Registration};
use crate::via;

/// Counters of the S-CSCF (also printed by the demo and `ims-lab ctl stats`).
#[derive(Debug, Default)]
pub struct ScscfStats {
    /// REGISTERs answered 200 with a non-zero expiry.
    pub registrations: AtomicU64,
    /// Registrations ended by the UE (expires=0), by policy or by expiry.
    pub deregistrations: AtomicU64,
    /// 401 challenges sent.
    pub challenges: AtomicU64,
    /// Failed authentication responses (wrong or empty response, bad AUTS).
    pub auth_failures: AtomicU64,
    /// Successful AUTS resynchronisations.
    pub resyncs: AtomicU64,
    /// Times the failed-attempt policy acted.
    pub policy_actions: AtomicU64,
    /// Network-initiated re-authentications started.
    pub reauths: AtomicU64,
    /// NOTIFYs sent.
    pub notifies: AtomicU64,
    /// Challenges dropped by the reg-await-auth timer.
    pub reg_await_auth_expired: AtomicU64,
}

/// A plain copy of [`ScscfStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScscfCounts {
    /// See [`ScscfStats::registrations`].
    pub registrations: u64,
    /// See [`ScscfStats::deregistrations`].
    pub deregistrations: u64,
    /// See [`ScscfStats::challenges`].
    pub challenges: u64,
    /// See [`ScscfStats::auth_failures`].
    pub auth_failures: u64,
    /// See [`ScscfStats::resyncs`].
    pub resyncs: u64,
    /// See [`ScscfStats::policy_actions`].
    pub policy_actions: u64,
    /// See [`ScscfStats::reauths`].
    pub reauths: u64,
    /// See [`ScscfStats::notifies`].
    pub notifies: u64,
    /// See [`ScscfStats::reg_await_auth_expired`].
    pub reg_await_auth_expired: u64,
}

impl ScscfStats {
    /// A snapshot.
    pub fn counts(&self) -> ScscfCounts {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ScscfCounts {
            registrations: g(&self.registrations),
            deregistrations: g(&self.deregistrations),
            challenges: g(&self.challenges),
            auth_failures: g(&self.auth_failures),
            resyncs: g(&self.resyncs),
            policy_actions: g(&self.policy_actions),
            reauths: g(&self.reauths),
            notifies: g(&self.notifies),
            reg_await_auth_expired: g(&self.reg_await_auth_expired),
        }
    }
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

struct Pending {
    vector: AuthVector,
    nonce: String,
    deadline: Instant,
}

struct Binding {
    contact: String,
    path: Vec<String>,
    expires_at: Instant,
}

struct Subscription {
    call_id: String,
    local_tag: String,
    remote_tag: String,
    remote_uri: String,
    target: String,
    dest: SocketAddr,
    /// Route header values for in-dialog NOTIFYs, in order.
    route: Vec<String>,
    cseq: u32,
    expires_at: Instant,
}

#[derive(Default)]
struct Record {
    impus: Vec<String>,
    pending: Option<Pending>,
    failed: u32,
    binding: Option<Binding>,
    subs: Vec<Subscription>,
    version: u32,
}

type Out = Vec<(Vec<u8>, SocketAddr)>;

/// A response kept for retransmissions of its request. It may hold a 401 with ck/ik, so the
/// bytes are zeroized when dropped.
struct Answered(zeroize::Zeroizing<Vec<u8>>, Instant);

/// Bound on cached responses; past it new transactions are answered but not cached.
const MAX_ANSWERED: usize = 16_384;

/// How long a response is kept for retransmissions (64*T1, as RFC 3261 Timer J).
const ANSWERED_TTL: Duration = Duration::from_secs(32);

/// Identity of a server transaction: top Via branch, Call-ID and CSeq (RFC 3261 §17.2.3).
fn transaction_key(msg: &Message<'_>) -> Option<String> {
    if !msg.is_request() || msg.method() == Some("ACK") {
        return None;
    }
    let branch = via::top(msg)?.branch?;
    let cseq = msg.cseq()?;
    Some(format!(
        "{branch}|{}|{}|{}",
        msg.call_id()?,
        cseq.num,
        cseq.method
    ))
}

/// The S-CSCF: shared state behind a handle; the receive loop runs as a task.
pub struct Scscf {
    socket: Arc<UdpSocket>,
    addr: SocketAddr,
    hss: Arc<Hss>,
    cfg: LabConfig,
    records: Mutex<HashMap<String, Record>>,
    answered: Mutex<HashMap<String, (Answered, SocketAddr)>>,
    stats: ScscfStats,
}

impl std::fmt::Debug for Scscf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scscf")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// The contact states a NOTIFY reports.
#[derive(Clone, Copy)]
enum RegEvent {
    Registered,
    Refreshed,
    Shortened,
    Expired,
    Unregistered,
    Rejected,
}

impl RegEvent {
    fn name(self) -> &'static str {
        match self {
            RegEvent::Registered => "registered",
            RegEvent::Refreshed => "refreshed",
            RegEvent::Shortened => "shortened",
            RegEvent::Expired => "expired",
            RegEvent::Unregistered => "unregistered",
            RegEvent::Rejected => "rejected",
        }
    }

    fn terminates(self) -> bool {
        matches!(
            self,
            RegEvent::Expired | RegEvent::Unregistered | RegEvent::Rejected
        )
    }
}

fn response_target(msg: &Message<'_>, src: SocketAddr) -> SocketAddr {
    via::top(msg)
        .and_then(|v| v.response_target())
        .unwrap_or(src)
}

fn header_values<'a>(msg: &Message<'a>, name: HeaderName) -> Vec<&'a str> {
    msg.headers_named(name).map(|h| msg.value(h)).collect()
}

impl Scscf {
    /// An S-CSCF on this socket.
    pub fn new(socket: Arc<UdpSocket>, hss: Arc<Hss>, cfg: LabConfig) -> Result<Arc<Self>, Error> {
        let addr = socket.local_addr()?;
        Ok(Arc::new(Self {
            socket,
            addr,
            hss,
            cfg,
            records: Mutex::new(HashMap::new()),
            answered: Mutex::new(HashMap::new()),
            stats: ScscfStats::default(),
        }))
    }

    /// Counters.
    pub fn stats(&self) -> &ScscfStats {
        &self.stats
    }

    /// Its SIP address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether any public identity of `impi` is registered.
    pub fn is_registered(&self, impi: &str) -> bool {
        self.lock().get(impi).is_some_and(|r| r.binding.is_some())
    }

    /// Seconds left on `impi`'s registration.
    pub fn remaining(&self, impi: &str) -> Option<Duration> {
        let recs = self.lock();
        let b = recs.get(impi)?.binding.as_ref()?;
        Some(b.expires_at.saturating_duration_since(Instant::now()))
    }

    /// Runs the receive loop and the timers until `shutdown` flips to true.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut buf = vec![0u8; 65_535];
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tick.tick() => {
                    let out = self.sweep(Instant::now());
                    self.send_all(out).await;
                }
                r = self.socket.recv_from(&mut buf) => {
                    let Ok((n, src)) = r else { continue };
                    let out = self.handle(&buf[..n], src);
                    zeroize::Zeroize::zeroize(&mut buf[..n]);
                    self.send_all(out).await;
                }
            }
        }
    }

    async fn send_all(&self, out: Out) {
        for (mut bytes, to) in out {
            if let Err(e) = self.socket.send_to(&bytes, to).await {
                tracing::warn!(%to, error = %e, "s-cscf: send failed");
            }
            // A 401 carries CK/IK in clear: wipe every sent buffer.
            zeroize::Zeroize::zeroize(&mut bytes);
        }
    }

    /// Handles one datagram; returns what to send.
    fn handle(&self, bytes: &[u8], src: SocketAddr) -> Out {
        let msg = match ikt_sip::scan(bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(%src, error = ?e, "s-cscf: unparsable datagram dropped");
                return Vec::new();
            }
        };
        let key = transaction_key(&msg);
        let cached = key.as_ref().and_then(|k| {
            let answered = self
                .answered
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            answered.get(k).map(|(a, to)| (a.0.to_vec(), *to))
        });
        if let Some(resend) = cached {
            // A retransmission (RFC 3261 §17.2.3): the same response again, not a new
            // challenge, so a retransmitted 401 carries the same nonce and keys.
            tracing::debug!(
                call_id = msg.call_id().unwrap_or(""),
                "s-cscf: retransmission answered from the transaction cache"
            );
            return vec![resend];
        }
        let out = match msg.method() {
            Some("REGISTER") => self.on_register(&msg, src),
            Some("SUBSCRIBE") => self.on_subscribe(&msg, src),
            Some("ACK") | None => return Vec::new(),
            Some(_) => vec![(
                Builder::reply(&msg, 405, "Method Not Allowed", &compose::token())
                    .header("Allow", "REGISTER, SUBSCRIBE")
                    .finish(),
                response_target(&msg, src),
            )],
        };
        if let (Some(key), Some((bytes, to))) = (key, out.first()) {
            let mut answered = self
                .answered
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if answered.len() < MAX_ANSWERED {
                answered.insert(
                    key,
                    (
                        Answered(zeroize::Zeroizing::new(bytes.clone()), Instant::now()),
                        *to,
                    ),
                );
            }
        }
        out
    }

    fn reply(
        &self,
        msg: &Message<'_>,
        src: SocketAddr,
        code: u16,
        reason: &str,
    ) -> (Vec<u8>, SocketAddr) {
        (
            Builder::reply(msg, code, reason, &compose::token()).finish(),
            response_target(msg, src),
        )
    }

    fn challenge(
        &self,
        msg: &Message<'_>,
        src: SocketAddr,
        impi: &str,
        rec: &mut Record,
        resynced: Option<AuthVector>,
    ) -> (Vec<u8>, SocketAddr) {
        let vector = match resynced.map_or_else(|| self.hss.vector(impi), Ok) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(impi, error = %e, "s-cscf: no authentication vector");
                return self.reply(msg, src, 500, "Server Internal Error");
            }
        };
        let mut raw = [0u8; 32];
        raw[..16].copy_from_slice(&vector.rand);
        raw[16..].copy_from_slice(&vector.autn);
        let nonce = B64.encode(raw);
        let ck = vector.ck.to_hex();
        let ik = vector.ik.to_hex();
        let mut value = zeroize::Zeroizing::new(format!(
            "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm=AKAv1-MD5, ck=\"{}\", ik=\"{}\"",
            self.cfg.realm,
            ck.as_str(),
            ik.as_str()
        ));
        if let Some(q) = self.cfg.qop_param() {
            value.push_str(&format!(", qop=\"{q}\""));
        }
        let bytes = Builder::reply(msg, 401, "Unauthorized", &compose::token())
            .header("WWW-Authenticate", &value)
            .finish();
        tracing::info!(
            impi,
            call_id = msg.call_id().unwrap_or(""),
            nonce_prefix = &nonce[..8],
            sqn = vector.sqn,
            "s-cscf: 401 challenge"
        );
        rec.pending = Some(Pending {
            vector,
            nonce,
            deadline: Instant::now() + self.cfg.reg_await_auth,
        });
        bump(&self.stats.challenges);
        (bytes, response_target(msg, src))
    }

    fn on_register(&self, msg: &Message<'_>, src: SocketAddr) -> Out {
        let Some(to) = msg.to() else {
            return vec![self.reply(msg, src, 400, "Bad Request")];
        };
        let impu = to.uri.to_string();
        let auth_text = header_values(msg, HeaderName::Authorization)
            .into_iter()
            .next();
        let auth = auth_text.and_then(challenge::parse);
        if auth_text.is_some() && auth.is_none() {
            return vec![self.reply(msg, src, 400, "Bad Request")];
        }
        let impi = match auth.as_ref().and_then(|a| a.param("username")) {
            Some(u) => u.to_string(),
            None => match self.hss.impi_of(&impu) {
                Some(i) => i.to_string(),
                None => return vec![self.reply(msg, src, 403, "Forbidden")],
            },
        };
        let Some(impus) = self.hss.impus(&impi) else {
            tracing::info!(impi, "s-cscf: unknown IMPI");
            return vec![self.reply(msg, src, 403, "Forbidden")];
        };
        if !impus.contains(&impu) {
            tracing::info!(impi, impu, "s-cscf: IMPU does not belong to IMPI");
            return vec![self.reply(msg, src, 403, "Forbidden")];
        }
        let mut recs = self.lock();
        let rec = recs.entry(impi.clone()).or_default();
        rec.impus = impus;
        let answer = auth.as_ref().filter(|a| {
            rec.pending
                .as_ref()
                .is_some_and(|p| a.param("nonce") == Some(p.nonce.as_str()))
        });
        let Some(answer) = answer else {
            return vec![self.challenge(msg, src, &impi, rec, None)];
        };
        let Some(pending) = rec.pending.take() else {
            return vec![self.challenge(msg, src, &impi, rec, None)];
        };
        if let Some(auts) = answer.param("auts").filter(|a| !a.is_empty()) {
            // RFC 3310 says base64; some UEs (SIPp among them) send 28 hex digits.
            let decoded = B64
                .decode(auts)
                .ok()
                .and_then(|b| <[u8; 14]>::try_from(b.as_slice()).ok())
                .or_else(|| crate::hex::decode_array::<14>(auts).ok());
            // The HSS checks MAC-S, moves its SQN past SQN_MS and hands out the next vector.
            let resynced =
                decoded.and_then(|auts| self.hss.resync(&impi, &pending.vector.rand, &auts).ok());
            if let Some(vector) = resynced {
                bump(&self.stats.resyncs);
                tracing::info!(
                    impi,
                    sqn = vector.sqn,
                    "s-cscf: SQN resynchronised from AUTS"
                );
                return vec![self.challenge(msg, src, &impi, rec, Some(vector))];
            }
            tracing::warn!(
                impi,
                "s-cscf: invalid AUTS counted as a failed authentication"
            );
            return self.failed(msg, src, &impi, rec);
        }
        let ok = self.verify(msg, answer, &pending);
        if !ok {
            return self.failed(msg, src, &impi, rec);
        }
        rec.failed = 0;
        self.accept(msg, src, &impi, rec)
    }

    fn verify(&self, msg: &Message<'_>, answer: &challenge::Digest, pending: &Pending) -> bool {
        let response = answer.param("response").unwrap_or("");
        if response.is_empty() {
            return false;
        }
        let qop = match answer.param("qop") {
            Some(q) => match Qop::parse(q) {
                Some(q) if self.cfg.qop.contains(&q) => Some((
                    q,
                    answer.param("nc").unwrap_or(""),
                    answer.param("cnonce").unwrap_or(""),
                )),
                _ => return false,
            },
            None if self.cfg.qop.is_empty() => None,
            None => return false,
        };
        let input = DigestInput {
            method: "REGISTER",
            uri: answer.param("uri").unwrap_or(""),
            username: answer.param("username").unwrap_or(""),
            realm: answer.param("realm").unwrap_or(&self.cfg.realm),
            nonce: &pending.nonce,
            qop,
            body: msg.body(),
        };
        digest::verify(&pending.vector.xres, &input, response)
    }

    fn failed(&self, msg: &Message<'_>, src: SocketAddr, impi: &str, rec: &mut Record) -> Out {
        rec.failed += 1;
        bump(&self.stats.auth_failures);
        let limit = self.cfg.reauth.max_failed_attempts;
        tracing::warn!(
            impi,
            failed = rec.failed,
            limit,
            "s-cscf: authentication failed"
        );
        if rec.failed < limit {
            return vec![self.challenge(msg, src, impi, rec, None)];
        }
        rec.failed = 0;
        bump(&self.stats.policy_actions);
        let action = self.cfg.reauth.on_exceeded;
        let mut out = vec![self.reply(msg, src, 403, "Forbidden")];
        match action {
            ExceededAction::Deregister => {
                let n = if rec.binding.is_some() {
                    rec.impus.len()
                } else {
                    0
                };
                tracing::warn!(
                    impi,
                    limit,
                    action = action.as_str(),
                    deregistered_impus = n,
                    "s-cscf: failed-attempt limit exceeded; policy applied"
                );
                if rec.binding.is_some() {
                    bump(&self.stats.deregistrations);
                    out.extend(self.notify_all(rec, RegEvent::Rejected, 0));
                    rec.binding = None;
                    rec.subs.clear();
                }
            }
            ExceededAction::Reject => {
                tracing::warn!(
                    impi,
                    limit,
                    action = action.as_str(),
                    "s-cscf: failed-attempt limit exceeded; policy applied"
                );
            }
        }
        out
    }

    fn accept(&self, msg: &Message<'_>, src: SocketAddr, impi: &str, rec: &mut Record) -> Out {
        let contact_value = header_values(msg, HeaderName::Contact)
            .into_iter()
            .next()
            .unwrap_or("");
        let contact_uri = compose::uri_of(contact_value).to_string();
        let asked = compose::param_of_name_addr(contact_value, "expires")
            .and_then(|e| e.parse::<u32>().ok())
            .or_else(|| msg.expires());
        let expires = match asked {
            Some(0) => 0,
            Some(e) => e.min(self.cfg.max_expires),
            None => self.cfg.default_expires,
        };
        let paths: Vec<String> = header_values(msg, HeaderName::Path)
            .iter()
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let mut b = Builder::reply(msg, 200, "OK", &compose::token());
        for p in header_values(msg, HeaderName::Path) {
            b = b.header("Path", p);
        }
        b = b
            .header("Service-Route", &format!("<sip:orig@{};lr>", self.addr))
            .header(
                "P-Associated-URI",
                &rec.impus
                    .iter()
                    .map(|u| format!("<{u}>"))
                    .collect::<Vec<_>>()
                    .join(", "),
            )
            .header("Contact", &format!("<{contact_uri}>;expires={expires}"))
            .header("Expires", &expires.to_string());
        let mut out = vec![(b.finish(), response_target(msg, src))];
        if expires == 0 || contact_value.trim() == "*" {
            if rec.binding.is_some() {
                bump(&self.stats.deregistrations);
                tracing::info!(impi, "s-cscf: de-registered by the UE");
                out.extend(self.notify_all(rec, RegEvent::Unregistered, 0));
            }
            rec.binding = None;
            rec.subs.clear();
            return out;
        }
        let event = if rec.binding.is_some() {
            RegEvent::Refreshed
        } else {
            RegEvent::Registered
        };
        rec.binding = Some(Binding {
            contact: contact_uri,
            path: paths,
            expires_at: Instant::now() + Duration::from_secs(u64::from(expires)),
        });
        bump(&self.stats.registrations);
        tracing::info!(impi, expires, "s-cscf: registered");
        out.extend(self.notify_all(rec, event, expires));
        out
    }

    fn on_subscribe(&self, msg: &Message<'_>, src: SocketAddr) -> Out {
        let event = msg
            .headers_by_name("Event")
            .next()
            .map(|h| msg.value(h))
            .unwrap_or("");
        if !event
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("reg")
        {
            return vec![(
                Builder::reply(msg, 489, "Bad Event", &compose::token())
                    .header("Allow-Events", "reg")
                    .finish(),
                response_target(msg, src),
            )];
        }
        let (Some(to), Some(from), Some(call_id)) = (msg.to(), msg.from(), msg.call_id()) else {
            return vec![self.reply(msg, src, 400, "Bad Request")];
        };
        let Some(impi) = self.hss.impi_of(to.uri).map(str::to_string) else {
            return vec![self.reply(msg, src, 404, "Not Found")];
        };
        let contact = header_values(msg, HeaderName::Contact)
            .into_iter()
            .next()
            .map(compose::uri_of)
            .unwrap_or("")
            .to_string();
        let expires = msg.expires().unwrap_or(600).min(self.cfg.max_expires);
        let mut recs = self.lock();
        let rec = recs.entry(impi.clone()).or_default();
        let Some(binding) = rec.binding.as_ref() else {
            return vec![self.reply(msg, src, 403, "Forbidden")];
        };
        let by_ue = rec.impus.iter().any(|u| u == from.uri);
        // NOTIFYs follow the dialog's route set (the SUBSCRIBE's Record-Route, RFC 3261
        // §12.1.1) when proxies asked to stay on the path; otherwise the UE is reached through
        // its P-CSCF (the registration's first Path) and anyone else at its Contact.
        let record_route: Vec<String> = msg
            .record_route()
            .iter()
            .map(|r| format!("<{}>", r.uri))
            .collect();
        let (dest, route) = match (record_route.first(), by_ue, binding.path.first()) {
            (Some(first), _, _) => (
                compose::uri_addr(compose::uri_of(first)).unwrap_or(src),
                record_route.clone(),
            ),
            (None, true, Some(p)) => (
                compose::uri_addr(compose::uri_of(p)).unwrap_or(src),
                vec![p.clone()],
            ),
            _ => (compose::uri_addr(&contact).unwrap_or(src), Vec::new()),
        };
        let existing = rec.subs.iter().position(|s| s.call_id == call_id);
        let local_tag = existing.map_or_else(compose::token, |i| rec.subs[i].local_tag.clone());
        let mut reply = Builder::reply(msg, 200, "OK", &local_tag);
        for rr in header_values(msg, HeaderName::RecordRoute) {
            reply = reply.header("Record-Route", rr);
        }
        let reply = reply
            .header("Expires", &expires.to_string())
            .header("Contact", &format!("<sip:scscf@{}>", self.addr))
            .finish();
        let mut out = vec![(reply, response_target(msg, src))];
        let sub = Subscription {
            call_id: call_id.to_string(),
            local_tag,
            remote_tag: from.tag.unwrap_or("").to_string(),
            remote_uri: from.uri.to_string(),
            target: contact,
            dest,
            route,
            cseq: existing.map_or(0, |i| rec.subs[i].cseq),
            expires_at: Instant::now() + Duration::from_secs(u64::from(expires)),
        };
        let idx = match existing {
            Some(i) => {
                rec.subs[i] = sub;
                i
            }
            None => {
                rec.subs.push(sub);
                rec.subs.len() - 1
            }
        };
        tracing::info!(impi, by_ue, expires, "s-cscf: reg-event subscription");
        let remaining = binding
            .expires_at
            .saturating_duration_since(Instant::now())
            .as_secs();
        let remaining = u32::try_from(remaining).unwrap_or(u32::MAX);
        if expires == 0 {
            out.push(self.notify(
                rec,
                idx,
                RegEvent::Registered,
                remaining,
                Some("terminated;reason=timeout"),
            ));
            rec.subs.remove(idx);
        } else {
            out.push(self.notify(rec, idx, RegEvent::Registered, remaining, None));
        }
        out
    }

    fn notify_all(&self, rec: &mut Record, event: RegEvent, expires: u32) -> Out {
        let state = event
            .terminates()
            .then_some("terminated;reason=deactivated");
        (0..rec.subs.len())
            .map(|i| self.notify(rec, i, event, expires, state))
            .collect()
    }

    fn notify(
        &self,
        rec: &mut Record,
        idx: usize,
        event: RegEvent,
        expires: u32,
        sub_state: Option<&str>,
    ) -> (Vec<u8>, SocketAddr) {
        rec.version += 1;
        let contact = rec
            .binding
            .as_ref()
            .map(|b| b.contact.clone())
            .unwrap_or_default();
        let (reg_state, contact_state) = if event.terminates() {
            ("terminated", "terminated")
        } else {
            ("active", "active")
        };
        let regs: Vec<Registration> = rec
            .impus
            .iter()
            .map(|aor| Registration {
                aor: aor.clone(),
                state: reg_state.into(),
                contacts: vec![ContactInfo {
                    state: contact_state.into(),
                    event: event.name().into(),
                    expires: (!event.terminates()).then_some(expires),
                    uri: contact.clone(),
                }],
            })
            .collect();
        let body = reginfo::write(rec.version, &regs);
        let sub = &mut rec.subs[idx];
        sub.cseq += 1;
        let left = sub
            .expires_at
            .saturating_duration_since(Instant::now())
            .as_secs();
        let state = sub_state.map_or_else(|| format!("active;expires={left}"), str::to_string);
        let mut b = Builder::request("NOTIFY", &sub.target)
            .header(
                "Via",
                &format!("SIP/2.0/UDP {};branch={}", self.addr, via::new_branch()),
            )
            .header("Max-Forwards", "70");
        for r in &sub.route {
            b = b.header("Route", r);
        }
        let from_uri = rec.impus.first().cloned().unwrap_or_default();
        let bytes = b
            .header("From", &format!("<{from_uri}>;tag={}", sub.local_tag))
            .header(
                "To",
                &format!("<{}>;tag={}", sub.remote_uri, sub.remote_tag),
            )
            .header("Call-ID", &sub.call_id)
            .header("CSeq", &format!("{} NOTIFY", sub.cseq))
            .header("Contact", &format!("<sip:scscf@{}>", self.addr))
            .header("Event", "reg")
            .header("Subscription-State", &state)
            .body(Some("application/reginfo+xml"), body.as_bytes());
        bump(&self.stats.notifies);
        (bytes, sub.dest)
    }

    /// Network-initiated re-authentication of `impi`: shortens its registration to
    /// `[reauth] shortened_expires` and NOTIFYs `event="shortened"` to every subscriber.
    pub async fn reauth(&self, impi: &str) -> Result<(), Error> {
        let out = {
            let mut recs = self.lock();
            let rec = recs
                .get_mut(impi)
                .filter(|r| r.binding.is_some())
                .ok_or(Error::NotRegistered)?;
            let secs = self.cfg.reauth.shortened_expires;
            if let Some(b) = rec.binding.as_mut() {
                b.expires_at = b
                    .expires_at
                    .min(Instant::now() + Duration::from_secs(u64::from(secs)));
            }
            bump(&self.stats.reauths);
            tracing::info!(
                impi,
                shortened_expires = secs,
                "s-cscf: network-initiated re-authentication"
            );
            self.notify_all(rec, RegEvent::Shortened, secs)
        };
        self.send_all(out).await;
        Ok(())
    }

    fn sweep(&self, now: Instant) -> Out {
        self.answered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, (a, _)| now.saturating_duration_since(a.1) < ANSWERED_TTL);
        let mut out = Vec::new();
        let mut recs = self.lock();
        for (impi, rec) in recs.iter_mut() {
            if rec.pending.as_ref().is_some_and(|p| p.deadline <= now) {
                rec.pending = None;
                bump(&self.stats.reg_await_auth_expired);
                tracing::info!(impi, "s-cscf: reg-await-auth expired; challenge dropped");
            }
            if rec.binding.as_ref().is_some_and(|b| b.expires_at <= now) {
                bump(&self.stats.deregistrations);
                tracing::info!(impi, "s-cscf: registration expired");
                out.extend(self.notify_all(rec, RegEvent::Expired, 0));
                rec.binding = None;
                rec.subs.clear();
            }
            rec.subs.retain(|s| s.expires_at > now);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SUBSCRIBER: &str = "[[subscriber]]\nimpi = \"u@ims.example.org\"\nimpus = [\"sip:u@ims.example.org\"]\nk = \"0396eb317b6d1c36f19c1c84cd6ffd16\"\nop = \"ff53bade17df5d4e793073ce9d7579fa\"\namf = \"af17\"\nsqn = \"000000000001\"\n";

    const REGISTER: &str = "REGISTER sip:ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKa;rport\r\nFrom: <sip:u@ims.example.org>;tag=1\r\nTo: <sip:u@ims.example.org>\r\nCall-ID: c1\r\nCSeq: 2 REGISTER\r\nContact: <sip:u@127.0.0.1:5999>;expires=600\r\nPath: <sip:term@127.0.0.1:5998;lr>\r\nAuthorization: Digest username=\"u@ims.example.org\", realm=\"ims.example.org\", uri=\"sip:ims.example.org\", nonce=\"NONCE\", response=\"00000000000000000000000000000000\", auts=\"AAAAAAAAAAAAAAAAAAA=\", qop=auth, nc=00000001, cnonce=\"x\"\r\nContent-Length: 0\r\n\r\n";

    fn scscf() -> (tokio::runtime::Runtime, Arc<Scscf>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let socket = rt.block_on(UdpSocket::bind("127.0.0.1:0")).unwrap();
        let hss = Arc::new(Hss::new(crate::hss::parse_subscribers(SUBSCRIBER).unwrap()));
        let s = Scscf::new(Arc::new(socket), hss, LabConfig::default()).unwrap();
        (rt, s)
    }

    fn src() -> SocketAddr {
        "127.0.0.1:5999".parse().unwrap()
    }

    #[test]
    fn challenge_is_in_kamailio_form_and_answers_go_back() {
        let (_rt, s) = scscf();
        let out = s.handle(
            REGISTER.replace("nonce=\"NONCE\"", "nonce=\"\"").as_bytes(),
            src(),
        );
        let text = String::from_utf8(out[0].0.clone()).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("WWW-Authenticate: "))
            .unwrap();
        let value = line.trim_start_matches("WWW-Authenticate: ");
        let d = challenge::parse(value).unwrap();
        let names: Vec<&str> = d.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["realm", "nonce", "algorithm", "ck", "ik", "qop"]);
        assert!(value.starts_with("Digest realm=\"ims.example.org\", nonce=\""));
        assert!(value.ends_with("\", qop=\"auth,auth-int\""));
        assert!(value.contains(", algorithm=AKAv1-MD5, ck=\""));
        assert!(
            d.param("ck")
                .unwrap()
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(B64.decode(d.param("nonce").unwrap()).unwrap().len(), 32);
        assert_eq!(out[0].1, src());
    }

    #[test]
    fn auts_is_accepted_as_base64_or_hex() {
        for hex_form in [false, true] {
            let (_rt, s) = scscf();
            let out = s.handle(
                REGISTER.replace("nonce=\"NONCE\"", "nonce=\"\"").as_bytes(),
                src(),
            );
            let text = String::from_utf8(out[0].0.clone()).unwrap();
            let line = text
                .lines()
                .find(|l| l.starts_with("WWW-Authenticate: "))
                .unwrap();
            let nonce = challenge::parse(line.trim_start_matches("WWW-Authenticate: "))
                .unwrap()
                .param("nonce")
                .unwrap()
                .to_string();
            let rand: [u8; 16] = B64.decode(&nonce).unwrap()[..16].try_into().unwrap();
            let p = crate::hss::parse_provisioning(SUBSCRIBER)
                .unwrap()
                .remove(0);
            let usim = crate::aka::Usim::new(
                p.operator_key.milenage(&p.k),
                1000,
                crate::aka::Usim::DEFAULT_DELTA,
            );
            let auts = usim.auts(&rand);
            let auts = if hex_form {
                crate::hex::encode(&auts)
            } else {
                B64.encode(auts)
            };
            let answer = REGISTER
                .replace("NONCE", &nonce)
                .replace("AAAAAAAAAAAAAAAAAAA=", &auts)
                .replace("branch=z9hG4bKa", "branch=z9hG4bKb");
            let out = s.handle(answer.as_bytes(), src());
            assert!(
                out[0].0.starts_with(b"SIP/2.0 401"),
                "{}",
                String::from_utf8_lossy(&out[0].0)
            );
            let c = s.stats().counts();
            assert_eq!((c.resyncs, c.auth_failures, c.challenges), (1, 0, 2));
            assert_eq!(s.hss.next_sqn("u@ims.example.org"), Some(1002));
        }
    }

    /// Runs a full registration against the S-CSCF and returns its 200.
    fn register(s: &Scscf) -> String {
        let out = s.handle(
            REGISTER.replace("nonce=\"NONCE\"", "nonce=\"\"").as_bytes(),
            src(),
        );
        let text = String::from_utf8(out[0].0.clone()).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("WWW-Authenticate: "))
            .unwrap();
        let nonce = challenge::parse(line.trim_start_matches("WWW-Authenticate: "))
            .unwrap()
            .param("nonce")
            .unwrap()
            .to_string();
        let rand: [u8; 16] = B64.decode(&nonce).unwrap()[..16].try_into().unwrap();
        let p = crate::hss::parse_provisioning(SUBSCRIBER)
            .unwrap()
            .remove(0);
        let res = p.operator_key.milenage(&p.k).f2345(&rand).res;
        let input = DigestInput {
            method: "REGISTER",
            uri: "sip:ims.example.org",
            username: "u@ims.example.org",
            realm: "ims.example.org",
            nonce: &nonce,
            qop: Some((Qop::Auth, "00000001", "x")),
            body: b"",
        };
        let response = digest::response(&res, &input);
        let answer = REGISTER
            .replace("NONCE", &nonce)
            .replace("00000000000000000000000000000000", &response)
            .replace(", auts=\"AAAAAAAAAAAAAAAAAAA=\"", "")
            .replace("branch=z9hG4bKa", "branch=z9hG4bKr");
        let out = s.handle(answer.as_bytes(), src());
        String::from_utf8(out[0].0.clone()).unwrap()
    }

    #[test]
    fn registration_200_and_subscription_route_set() {
        let (_rt, s) = scscf();
        let ok = register(&s);
        assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("\r\nPath: <sip:term@127.0.0.1:5998;lr>\r\n"),
            "{ok}"
        );
        assert!(
            ok.contains(&format!(
                "\r\nService-Route: <sip:orig@{};lr>\r\n",
                s.addr()
            )),
            "{ok}"
        );
        assert!(
            ok.contains("\r\nP-Associated-URI: <sip:u@ims.example.org>\r\n"),
            "{ok}"
        );
        assert!(
            ok.contains("\r\nContact: <sip:u@127.0.0.1:5999>;expires=600\r\n"),
            "{ok}"
        );
        assert!(s.is_registered("u@ims.example.org"));
        // A SUBSCRIBE through two record-routing proxies: the 200 echoes Record-Route and the
        // NOTIFY follows that route set.
        let subscribe = "SUBSCRIBE sip:u@ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKs\r\nRecord-Route: <sip:127.0.0.1:7001;lr>\r\nRecord-Route: <sip:127.0.0.1:7002;lr>\r\nFrom: <sip:pcscf@127.0.0.1:7003>;tag=p\r\nTo: <sip:u@ims.example.org>\r\nCall-ID: s1\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:pcscf@127.0.0.1:7003>\r\nEvent: reg\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n";
        let out = s.handle(subscribe.as_bytes(), "127.0.0.1:7001".parse().unwrap());
        let reply = String::from_utf8(out[0].0.clone()).unwrap();
        assert!(reply.starts_with("SIP/2.0 200 OK"));
        assert!(
            reply.contains(
                "Record-Route: <sip:127.0.0.1:7001;lr>\r\nRecord-Route: <sip:127.0.0.1:7002;lr>\r\n"
            ),
            "{reply}"
        );
        let (notify, to) = &out[1];
        let notify = String::from_utf8(notify.clone()).unwrap();
        assert_eq!(*to, "127.0.0.1:7001".parse().unwrap());
        assert!(
            notify.starts_with("NOTIFY sip:pcscf@127.0.0.1:7003 SIP/2.0\r\n"),
            "{notify}"
        );
        assert!(
            notify.contains("Route: <sip:127.0.0.1:7001;lr>\r\nRoute: <sip:127.0.0.1:7002;lr>\r\n"),
            "{notify}"
        );
        assert!(notify.contains("event=\"registered\""), "{notify}");
    }

    proptest! {
        #[test]
        fn arbitrary_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
            let (_rt, s) = scscf();
            let _ = s.handle(&bytes, src());
        }

        #[test]
        fn mutated_registers_never_panic(at in 0usize..REGISTER.len(), byte in any::<u8>(), cut in 0usize..REGISTER.len()) {
            let (_rt, s) = scscf();
            // Make a real challenge pending first, so answers reach the verification paths.
            let _ = s.handle(REGISTER.replace("nonce=\"NONCE\"", "nonce=\"\"").as_bytes(), src());
            let mut m = REGISTER.as_bytes().to_vec();
            m[at] = byte;
            let _ = s.handle(&m, src());
            let _ = s.handle(&REGISTER.as_bytes()[..cut], src());
            let sub = REGISTER.replace("REGISTER sip:ims.example.org", "SUBSCRIBE sip:u@ims.example.org").replace("2 REGISTER", "3 SUBSCRIBE").replace("Path:", "Event: reg\r\nX-Path:");
            let mut m = sub.into_bytes();
            let i = at.min(m.len() - 1);
            m[i] = byte;
            let _ = s.handle(&m, src());
        }
    }
}
