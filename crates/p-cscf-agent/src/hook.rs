//! The relay hook of the p-cscf-agent: puts CK/IK back into AKA 401/407s before the P-CSCF sees
//! them, in the canonical form (DESIGN §2.3), or fails closed with a 503.
//!
//! For each AKA challenge of a 401/407 to REGISTER:
//! - `ck`/`ik` in clear: passed (3GPP baseline), or with `accept_plain = false` a downgrade,
//!   counted and handled by `downgrade_action`;
//! - `kt` present: opened (AES-256-GCM, bound to this 401) and restored;
//! - neither: the 401 is held until the out-of-band bundle for its nonce and Call-ID arrives, at
//!   most `key_wait`, then restored; past the deadline it becomes `503` with `Retry-After`.
//!
//! A retransmitted 401 finds its bundle still in the store (until `key_ttl`) and is restored
//! with the same keys. Keys of an IMPI are wiped when its registration ends: on the 200 to a
//! de-registration, and on a reg-event NOTIFY that reports the registration terminated.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ikt_agent::telemetry::{self as t, now_ms};
use ikt_agent::transaction::{DEFAULT_TTL, Transactions};
use ikt_keys::{AadContext, KeyBundle, Opener};
use ikt_relay::{Hook, Inbound, Verdict, response};
use ikt_sip::{Challenge, Message};

use crate::config::DowngradeAction;
use crate::hub::{KeyHub, Waiting};

/// Most de-registrations remembered while their 200 is awaited.
const MAX_TRANSACTIONS: usize = 65_536;

/// Policy knobs of the hook.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Longest hold of a 401 waiting for its keys.
    pub key_wait: Duration,
    /// Most 401s held at once.
    pub max_parked: usize,
    /// Accept clear ck/ik.
    pub accept_plain: bool,
    /// What a downgrade does.
    pub downgrade_action: DowngradeAction,
    /// `Retry-After` of the 503.
    pub retry_after_s: u32,
}

/// How one AKA challenge reached us.
enum Arrival<'a> {
    Clear,
    Sealed(&'a str),
    OutOfBand,
}

/// The p-cscf-agent's [`Hook`].
pub struct PcscfHook {
    policy: Policy,
    hub: Arc<KeyHub>,
    opener: Mutex<Opener>,
    parked: Arc<AtomicUsize>,
    deregistrations: Mutex<Transactions<String>>,
}

/// A held 401's wait for one nonce.
struct Pending {
    nonce: String,
    waiter: ikt_keys::WaiterId,
    rx: tokio::sync::oneshot::Receiver<()>,
}

impl PcscfHook {
    /// A hook over this hub, with the sealed-token opener.
    pub fn new(policy: Policy, hub: Arc<KeyHub>, opener: Opener) -> Self {
        Self {
            policy,
            hub,
            opener: Mutex::new(opener),
            parked: Arc::new(AtomicUsize::new(0)),
            deregistrations: Mutex::new(Transactions::new(MAX_TRANSACTIONS, DEFAULT_TTL)),
        }
    }

    /// Replaces the opener (SIGHUP: new or retired kids).
    pub fn set_opener(&self, opener: Opener) {
        *self.opener.lock().unwrap_or_else(|e| e.into_inner()) = opener;
    }

    /// 401s held now.
    pub fn parked(&self) -> usize {
        self.parked.load(Ordering::Relaxed)
    }

    fn fail_closed(&self, m: &Message<'_>, reason: &'static str, nonce: &str) -> Verdict {
        metrics::counter!(t::FAILCLOSED, "reason" => reason).increment(1);
        tracing::warn!(
            call_id = m.call_id().unwrap_or(""),
            nonce = nonce_prefix(nonce),
            reason,
            "keys not restored: 401 replaced by 503"
        );
        Verdict::Replace(service_unavailable(m, self.policy.retry_after_s))
    }

    fn open(
        &self,
        m: &Message<'_>,
        ch: &Challenge<'_>,
        token: &str,
    ) -> Result<KeyBundle, &'static str> {
        let (Some(realm), Some(nonce)) = (ch.param("realm"), ch.param("nonce")) else {
            return Err("no_realm_or_nonce");
        };
        let ctx = AadContext {
            realm: realm.value,
            nonce: nonce.value,
            call_id: m.call_id().unwrap_or(""),
            cseq: m.cseq().map_or(0, |c| c.num),
            to_uri: m.to().map(|t| t.uri).unwrap_or(""),
        };
        let opened =
            self.opener
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .open(token, &ctx, now_ms());
        opened.map_err(|e| {
            metrics::counter!(t::TOKEN_FAILURES, "reason" => e.kind()).increment(1);
            e.kind()
        })
    }

    fn on_challenge(&self, m: &Message<'_>) -> Verdict {
        let challenges = m.challenges();
        let call_id = m.call_id().unwrap_or("");
        let mut restore: Vec<(usize, KeyBundle)> = Vec::new();
        let mut pending: Vec<(usize, Pending)> = Vec::new();
        let mut any_aka = false;
        for (i, ch) in challenges.iter().enumerate() {
            if ch.malformed && (ch.is_aka() || ch.has_keys()) {
                // Could be read more than one way: neither restore into it nor pass keys on.
                return self.fail_closed(m, "malformed_challenge", "");
            }
            if !ch.is_aka() {
                if ch.has_keys() && !self.policy.accept_plain {
                    // Keys outside an AKA challenge are clear keys all the same.
                    metrics::counter!(t::DOWNGRADES, "action" => "reject").increment(1);
                    return self.fail_closed(m, "downgrade", "");
                }
                continue;
            }
            any_aka = true;
            let nonce = ch.param("nonce").map_or("", |n| n.value);
            let arrival = if ch.has_keys() {
                Arrival::Clear
            } else if let Some(kt) = ch.param("kt") {
                Arrival::Sealed(kt.value)
            } else {
                Arrival::OutOfBand
            };
            match arrival {
                Arrival::Clear if self.policy.accept_plain => {
                    metrics::counter!(t::BUNDLES_RECEIVED, "peer" => "-", "mode" => "plain")
                        .increment(1);
                }
                Arrival::Clear => {
                    let action = match self.policy.downgrade_action {
                        DowngradeAction::Reject => "reject",
                        DowngradeAction::Pass => "pass",
                    };
                    metrics::counter!(t::DOWNGRADES, "action" => action).increment(1);
                    tracing::warn!(
                        call_id,
                        nonce = nonce_prefix(nonce),
                        action,
                        "401 with clear ck/ik: downgrade"
                    );
                    if self.policy.downgrade_action == DowngradeAction::Reject {
                        return self.fail_closed(m, "downgrade", nonce);
                    }
                }
                Arrival::Sealed(token) => match self.open(m, ch, token) {
                    Ok(b) => {
                        metrics::counter!(t::BUNDLES_RECEIVED, "peer" => "-", "mode" => "sealed")
                            .increment(1);
                        // Keep a copy for the local API; a retransmission is a harmless duplicate.
                        if let Err(e) = self.hub.insert(b.clone()) {
                            tracing::debug!(call_id, error = %e, "sealed bundle not stored");
                        }
                        restore.push((i, b));
                    }
                    Err(reason) => {
                        tracing::warn!(
                            call_id,
                            nonce = nonce_prefix(nonce),
                            reason,
                            "sealed token refused"
                        );
                        return self.fail_closed(m, "token", nonce);
                    }
                },
                Arrival::OutOfBand => {
                    if nonce.is_empty() {
                        return self.fail_closed(m, "no_nonce", nonce);
                    }
                    let deadline = now_ms() + self.policy.key_wait.as_millis() as u64;
                    match self.hub.wait(nonce, call_id, deadline) {
                        Waiting::Ready(b) => restore.push((i, b)),
                        Waiting::Parked(waiter, rx) => pending.push((
                            i,
                            Pending {
                                nonce: nonce.to_owned(),
                                waiter,
                                rx,
                            },
                        )),
                        Waiting::Full => return self.fail_closed(m, "parked_full", nonce),
                    }
                }
            }
        }
        if !any_aka || (restore.is_empty() && pending.is_empty()) {
            return Verdict::Pass;
        }
        if pending.is_empty() {
            metrics::histogram!(t::KEY_WAIT_SECONDS).record(0.0);
            return match restored(m, &restore) {
                Some(b) => Verdict::Replace(b),
                None => self.fail_closed(m, "restore", ""),
            };
        }
        if self.parked.fetch_add(1, Ordering::Relaxed) >= self.policy.max_parked {
            self.parked.fetch_sub(1, Ordering::Relaxed);
            for (_, p) in pending {
                self.hub.cancel(p.waiter);
            }
            return self.fail_closed(m, "parked_full", "");
        }
        metrics::gauge!(t::PARKED_401).increment(1.0);
        let guard = ParkedGuard(self.parked.clone());
        let original = m.bytes().to_vec();
        let unavailable = service_unavailable(m, self.policy.retry_after_s);
        let hub = self.hub.clone();
        let key_wait = self.policy.key_wait;
        let call_id = call_id.to_owned();
        let started = Instant::now();
        Verdict::hold(async move {
            let _guard = guard;
            let deadline = tokio::time::Instant::from_std(started + key_wait);
            for (i, p) in pending {
                let woke = tokio::time::timeout_at(deadline, p.rx).await.is_ok();
                // Even when woken, read the store: it holds the authoritative copy.
                match woke.then(|| hub.get(&p.nonce, Some(&call_id))).flatten() {
                    Some(b) => restore.push((i, b)),
                    None => {
                        hub.cancel(p.waiter);
                        metrics::counter!(t::FAILCLOSED, "reason" => "key_wait").increment(1);
                        tracing::warn!(
                            call_id = %call_id,
                            nonce = nonce_prefix(&p.nonce),
                            waited_ms = started.elapsed().as_millis() as u64,
                            "keys did not arrive within key_wait: 401 replaced by 503"
                        );
                        return Verdict::Replace(unavailable);
                    }
                }
            }
            metrics::histogram!(t::KEY_WAIT_SECONDS).record(started.elapsed().as_secs_f64());
            let Ok(msg) = ikt_sip::scan(&original) else {
                return Verdict::Replace(unavailable);
            };
            match restored(&msg, &restore) {
                Some(b) => Verdict::Replace(b),
                None => {
                    metrics::counter!(t::FAILCLOSED, "reason" => "restore").increment(1);
                    Verdict::Replace(unavailable)
                }
            }
        })
    }
}

/// Decrements the parked count when a held 401 finishes, however it finishes.
struct ParkedGuard(Arc<AtomicUsize>);

impl Drop for ParkedGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!(t::PARKED_401).decrement(1.0);
    }
}

/// The 401 with each listed challenge rewritten into the canonical form with its keys.
fn restored(m: &Message<'_>, restore: &[(usize, KeyBundle)]) -> Option<Vec<u8>> {
    let challenges = m.challenges();
    let mut e = m.edit();
    for (i, b) in restore {
        let ch = challenges.get(*i)?;
        let (ck, ik) = (b.ck.to_hex(), b.ik.to_hex());
        ikt_sip::restore_keys_in(&mut e, ch, &ck, &ik).ok()?;
    }
    let mut out = e.finish();
    // The P-CSCF must read exactly what was restored: same challenges, keys where restored.
    let reads_back = ikt_sip::scan(&out).is_ok_and(|again| {
        let chs = again.challenges();
        chs.len() == challenges.len()
            && restore.iter().all(|(i, _)| {
                chs.get(*i).is_some_and(|c| {
                    !c.malformed && c.param("ck").is_some() && c.param("ik").is_some()
                })
            })
    });
    if reads_back {
        Some(out)
    } else {
        zeroize::Zeroize::zeroize(&mut out);
        None
    }
}

/// A 503 with Retry-After in place of a response, keeping only its routing headers.
pub fn service_unavailable(m: &Message<'_>, retry_after_s: u32) -> Vec<u8> {
    let retry = retry_after_s.to_string();
    response::rewrite_response(m, 503, "Service Unavailable", &[("Retry-After", &retry)])
}

/// The first 8 characters of a nonce: enough to correlate log lines, too little to matter.
pub fn nonce_prefix(nonce: &str) -> &str {
    nonce.get(..8).unwrap_or(nonce)
}

fn is_register(m: &Message<'_>) -> bool {
    m.cseq()
        .is_some_and(|c| c.method.eq_ignore_ascii_case("REGISTER"))
}

/// Whether a REGISTER removes its bindings (Expires: 0, or every Contact with expires=0).
fn is_deregistration(m: &Message<'_>) -> bool {
    let contacts = m.contacts();
    if contacts.iter().any(|c| c.uri == "*") {
        return true;
    }
    let header = m.expires();
    !contacts.is_empty() && contacts.iter().all(|c| c.expires().or(header) == Some(0))
}

/// The AORs a reg-event NOTIFY body reports as terminated (RFC 3680 reginfo).
pub fn terminated_aors(body: &[u8]) -> Vec<String> {
    let Ok(text) = std::str::from_utf8(body) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for chunk in text.split("<registration").skip(1) {
        let head = chunk.split('>').next().unwrap_or("");
        let attr = |name: &str| {
            let pat = format!("{name}=\"");
            head.find(&pat).and_then(|s| {
                let v = &head[s + pat.len()..];
                v.find('"').map(|e| v[..e].to_owned())
            })
        };
        if attr("state").as_deref() == Some("terminated")
            && let Some(aor) = attr("aor")
        {
            out.push(aor);
        }
    }
    out
}

impl Hook for PcscfHook {
    fn on_request(&self, msg: &Inbound<'_, '_>) -> Verdict {
        let m = msg.message;
        t::count_sip(m);
        match m.method() {
            Some(x) if x.eq_ignore_ascii_case("REGISTER") && is_deregistration(m) => {
                let impi = m
                    .credentials()
                    .iter()
                    .find_map(|c| c.unescaped("username"))
                    .unwrap_or_default();
                if let (Some(cid), Some(cseq), false) = (m.call_id(), m.cseq(), impi.is_empty()) {
                    self.deregistrations
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(cid, cseq.num, impi, Instant::now());
                }
            }
            Some(x) if x.eq_ignore_ascii_case("NOTIFY") => {
                let is_reg = m
                    .value_of(ikt_sip::HeaderName::Event)
                    .is_some_and(|e| e.trim().to_ascii_lowercase().starts_with("reg"));
                if is_reg {
                    for aor in terminated_aors(m.body()) {
                        let n = self.hub.purge_impu(&aor);
                        if n > 0 {
                            tracing::info!(aor = %aor, bundles = n, "registration terminated: keys wiped");
                        }
                    }
                }
            }
            _ => {}
        }
        Verdict::Pass
    }

    fn on_response(&self, msg: &Inbound<'_, '_>) -> Verdict {
        let m = msg.message;
        t::count_sip(m);
        if !is_register(m) {
            return Verdict::Pass;
        }
        match m.status() {
            Some(401 | 407) => self.on_challenge(m),
            Some(200..=299) => {
                if let (Some(cid), Some(cseq)) = (m.call_id(), m.cseq()) {
                    let impi = self
                        .deregistrations
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(cid, cseq.num, Instant::now());
                    if let Some(impi) = impi {
                        let n = self.hub.purge_impi(&impi);
                        tracing::info!(bundles = n, "de-registered: keys wiped");
                    }
                }
                Verdict::Pass
            }
            _ => Verdict::Pass,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminated_aors_from_reginfo() {
        let body = br#"<?xml version="1.0"?>
<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="1" state="full">
 <registration aor="sip:alice@ims.example.org" id="a1" state="terminated">
  <contact id="c1" state="terminated" event="deactivated"><uri>sip:alice@10.0.0.1</uri></contact>
 </registration>
 <registration aor="sip:bob@ims.example.org" id="a2" state="active"></registration>
</reginfo>"#;
        assert_eq!(
            terminated_aors(body),
            vec!["sip:alice@ims.example.org".to_owned()]
        );
        assert!(terminated_aors(b"\xff\xfe").is_empty());
    }

    #[test]
    fn nonce_prefix_is_short() {
        assert_eq!(nonce_prefix("abcdefghijkl"), "abcdefgh");
        assert_eq!(nonce_prefix("abc"), "abc");
    }
}
