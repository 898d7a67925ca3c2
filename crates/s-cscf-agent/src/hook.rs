//! The relay hook of the s-cscf-agent: takes CK/IK out of AKA 401/407s and sends them on.
//!
//! Per peer mode (DESIGN §2):
//! - `plain`: the 401 goes on unchanged;
//! - `sealed`: `ck`/`ik` become one `kt="ikt1.<kid>.<token>"` auth-param;
//! - `grpc`/`quic`: a bundle goes to the peer's long-lived stream and `ck`/`ik` are removed;
//!   the 401 is forwarded without waiting for the ack unless `ack_before_forward`.
//!
//! When the keys cannot travel as the mode says, the fallback policy applies: `sealed` if the
//! peer has a sealing secret and the policy allows it, else `503` with `Retry-After` in place of
//! the 401; clear keys only with `allow_plain_fallback`. The 503 keeps nothing of the challenge.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use ikt_agent::Mode;
use ikt_agent::telemetry::{self as t, now_ms};
use ikt_agent::transaction::{DEFAULT_TTL, Transactions};
use ikt_keys::{KeyBundle, Sealer};
use ikt_relay::{Hook, Inbound, Verdict, response};
use ikt_sip::Message;
use ikt_transport::{KeySender, PeerSender};

use crate::config::{Fallback, UnknownPeer};
use crate::extract::{AkaKeys, Found, find_keys};

/// Most REGISTER transactions remembered (IMPI, Path-derived peer) while awaiting their 401.
const MAX_TRANSACTIONS: usize = 65_536;

/// One p-cscf-agent as the hook uses it.
pub struct Peer {
    /// The peer's agent id.
    pub id: String,
    /// How keys travel to it.
    pub mode: Mode,
    /// Out-of-band sender (modes grpc and quic).
    pub sender: Option<Arc<PeerSender>>,
    /// Sealer for mode sealed and the sealed fallback.
    pub sealer: Option<Sealer>,
    /// Hosts in a Path URI that identify this peer when no `ikt` Via names it.
    pub path_hosts: Vec<String>,
    /// Mode, server name and address, to tell on reload whether the connection can stay.
    pub endpoint: String,
}

impl Peer {
    /// Whether the out-of-band transport is connected now.
    pub fn is_up(&self) -> bool {
        self.sender.as_ref().is_some_and(|s| s.health().up)
    }
}

/// The failure policy in the form the hook uses.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Fallback when the out-of-band transport is down.
    pub fallback: Fallback,
    /// Whether clear keys are an allowed last resort.
    pub allow_plain_fallback: bool,
    /// Wait for the ack before forwarding.
    pub ack_before_forward: bool,
    /// Longest wait for that ack.
    pub ack_timeout: Duration,
    /// `Retry-After` of the 503.
    pub retry_after_s: u32,
    /// Handling of 401s for unknown peers.
    pub unknown_peer: UnknownPeer,
    /// Bundle lifetime.
    pub key_ttl_ms: u64,
}

#[derive(Debug, Clone, Default)]
struct TxInfo {
    impi: String,
    path_peer: Option<String>,
}

/// The peer table; replaced as a whole on reload so a 401 sees one consistent table.
pub type PeerMap = HashMap<String, Arc<Peer>>;

/// The s-cscf-agent's [`Hook`].
pub struct ScscfHook {
    policy: Policy,
    peers: RwLock<Arc<PeerMap>>,
    transactions: Mutex<Transactions<TxInfo>>,
}

/// What to do with one 401 that carries keys.
enum Plan {
    Pass,
    Seal(Arc<Peer>),
    Send(Arc<Peer>),
    Reject(&'static str),
}

impl ScscfHook {
    /// A hook with this policy and peer table.
    pub fn new(policy: Policy, peers: PeerMap) -> Self {
        Self {
            policy,
            peers: RwLock::new(Arc::new(peers)),
            transactions: Mutex::new(Transactions::new(MAX_TRANSACTIONS, DEFAULT_TTL)),
        }
    }

    /// Swaps in a new peer table (SIGHUP); 401s in progress finish with the old one.
    pub fn set_peers(&self, peers: PeerMap) {
        *self.peers.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(peers);
    }

    /// The current peer table.
    pub fn peers(&self) -> Arc<PeerMap> {
        self.peers.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn plan(&self, peer: Option<Arc<Peer>>) -> Plan {
        let Some(peer) = peer else {
            return match self.policy.unknown_peer {
                UnknownPeer::Plain => Plan::Pass,
                UnknownPeer::Reject => Plan::Reject("unknown_peer"),
            };
        };
        match peer.mode {
            Mode::Plain => Plan::Pass,
            Mode::Sealed => Plan::Seal(peer),
            Mode::Grpc | Mode::Quic if peer.is_up() => Plan::Send(peer),
            Mode::Grpc | Mode::Quic => self.fallback(peer, "peer_down"),
        }
    }

    fn fallback(&self, peer: Arc<Peer>, reason: &'static str) -> Plan {
        if self.policy.fallback == Fallback::Sealed && peer.sealer.is_some() {
            metrics::counter!("ikt_fallback_total", "peer" => peer.id.clone(), "to" => "sealed")
                .increment(1);
            Plan::Seal(peer)
        } else if self.policy.allow_plain_fallback {
            metrics::counter!("ikt_fallback_total", "peer" => peer.id.clone(), "to" => "plain")
                .increment(1);
            Plan::Pass
        } else {
            Plan::Reject(reason)
        }
    }

    fn reject(&self, msg: &Message<'_>, reason: &'static str) -> Verdict {
        metrics::counter!(t::FAILCLOSED, "reason" => reason).increment(1);
        tracing::warn!(
            call_id = msg.call_id().unwrap_or(""),
            reason,
            "keys cannot be carried: 401 replaced by 503"
        );
        Verdict::Replace(service_unavailable(msg, self.policy.retry_after_s))
    }

    fn bundle(&self, msg: &Message<'_>, k: &AkaKeys<'_>, impi: &str) -> KeyBundle {
        let now = now_ms();
        KeyBundle {
            seq: 0,
            realm: k.realm.to_owned(),
            nonce: k.nonce.to_owned(),
            call_id: msg.call_id().unwrap_or("").to_owned(),
            cseq: msg.cseq().map_or(0, |c| c.num),
            impu: msg.to().map(|t| t.uri.to_owned()).unwrap_or_default(),
            impi: impi.to_owned(),
            ck: k.ck.clone(),
            ik: k.ik.clone(),
            issued_at_ms: now,
            not_after_ms: now.saturating_add(self.policy.key_ttl_ms),
            algorithm: k.algorithm.to_owned(),
        }
    }

    /// The 401 with `kt` in place of ck/ik, or None when sealing failed.
    fn seal(
        &self,
        msg: &Message<'_>,
        peer: &Peer,
        keys: &[AkaKeys<'_>],
        impi: &str,
    ) -> Option<Vec<u8>> {
        let sealer = peer.sealer.as_ref()?;
        let to_uri = msg.to().map(|t| t.uri).unwrap_or("");
        let challenges = msg.challenges();
        let mut e = msg.edit();
        for k in keys {
            let token = match sealer.seal(&self.bundle(msg, k, impi), to_uri) {
                Ok(t) => t,
                Err(err) => {
                    tracing::warn!(call_id = msg.call_id().unwrap_or(""), error = %err, "sealing failed");
                    return None;
                }
            };
            let mut param = Vec::with_capacity(token.len() + 5);
            param.extend_from_slice(b"kt=\"");
            param.extend_from_slice(token.as_bytes());
            param.push(b'"');
            e.replace_auth_params(&challenges[k.index], &["ck", "ik"], &param);
        }
        metrics::counter!(t::BUNDLES_SENT, "peer" => peer.id.clone(), "mode" => "sealed")
            .increment(keys.len() as u64);
        let out = e.finish();
        if leaks_keys(&out, keys) {
            tracing::warn!(
                call_id = msg.call_id().unwrap_or(""),
                "a key survived sealing: refused"
            );
            return None;
        }
        Some(out)
    }
}

/// Whether `out` still holds any of the keys' hex text (any case): a last check that no edit
/// left a key behind, whatever the parser made of the challenge.
fn leaks_keys(out: &[u8], keys: &[AkaKeys<'_>]) -> bool {
    keys.iter().any(|k| {
        [k.ck.to_hex(), k.ik.to_hex()].iter().any(|hex| {
            let hex = hex.as_bytes();
            out.windows(hex.len()).any(|w| w.eq_ignore_ascii_case(hex))
        })
    })
}

/// The 401 with ck/ik removed from every challenge that had them.
fn strip_keys(msg: &Message<'_>, keys: &[AkaKeys<'_>]) -> Vec<u8> {
    let challenges = msg.challenges();
    let mut e = msg.edit();
    for k in keys {
        e.remove_auth_params(&challenges[k.index], &["ck", "ik"]);
    }
    e.finish()
}

/// A 503 with Retry-After in place of a response, keeping only its routing headers.
pub fn service_unavailable(msg: &Message<'_>, retry_after_s: u32) -> Vec<u8> {
    let retry = retry_after_s.to_string();
    response::rewrite_response(msg, 503, "Service Unavailable", &[("Retry-After", &retry)])
}

/// The username of the first Authorization/Proxy-Authorization credentials: the IMPI.
fn impi_of(msg: &Message<'_>) -> String {
    msg.credentials()
        .iter()
        .find_map(|c| c.unescaped("username"))
        .unwrap_or_default()
}

/// Host part of a SIP URI (`sip:user@host:port;params` → `host`).
fn uri_host(uri: &str) -> &str {
    let rest = uri.split_once(':').map_or(uri, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let end = rest.find([';', '?', '>']).unwrap_or(rest.len());
    let hostport = &rest[..end];
    if let Some(v6) = hostport.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    hostport.split(':').next().unwrap_or(hostport)
}

impl Hook for ScscfHook {
    fn on_request(&self, msg: &Inbound<'_, '_>) -> Verdict {
        let m = msg.message;
        t::count_sip(m);
        if !m
            .method()
            .is_some_and(|x| x.eq_ignore_ascii_case("REGISTER"))
        {
            return Verdict::Pass;
        }
        let (Some(call_id), Some(cseq)) = (m.call_id(), m.cseq()) else {
            return Verdict::Pass;
        };
        let path_peer = if msg.via_param("ikt").is_none() {
            let peers = self.peers();
            m.path().iter().find_map(|p| {
                let host = uri_host(p.uri);
                peers
                    .values()
                    .find(|peer| peer.path_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)))
                    .map(|peer| peer.id.clone())
            })
        } else {
            None
        };
        let info = TxInfo {
            impi: impi_of(m),
            path_peer,
        };
        self.transactions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(call_id, cseq.num, info, Instant::now());
        Verdict::Pass
    }

    fn on_response(&self, msg: &Inbound<'_, '_>) -> Verdict {
        let m = msg.message;
        t::count_sip(m);
        let keys = match find_keys(m) {
            Found::Nothing => return Verdict::Pass,
            Found::Malformed(why) => {
                tracing::warn!(
                    call_id = m.call_id().unwrap_or(""),
                    why,
                    "unusable keys in challenge"
                );
                return self.reject(m, "malformed_keys");
            }
            Found::Keys(k) => k,
        };
        let tx = match (m.call_id(), m.cseq()) {
            (Some(cid), Some(cseq)) => self
                .transactions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(cid, cseq.num, Instant::now())
                .cloned(),
            _ => None,
        }
        .unwrap_or_default();
        let peers = self.peers();
        let peer_id = msg.via_param("ikt").map(str::to_owned).or(tx.path_peer);
        let peer = peer_id.as_deref().and_then(|id| peers.get(id).cloned());
        if peer.is_none() {
            tracing::warn!(
                call_id = m.call_id().unwrap_or(""),
                peer = peer_id.as_deref().unwrap_or("-"),
                "401 for a p-cscf-agent not in the peer table"
            );
        }
        match self.plan(peer) {
            Plan::Pass => Verdict::Pass,
            Plan::Reject(reason) => self.reject(m, reason),
            Plan::Seal(peer) => match self.seal(m, &peer, &keys, &tx.impi) {
                Some(bytes) => Verdict::Replace(bytes),
                None => self.reject(m, "seal_failed"),
            },
            Plan::Send(peer) => self.send(m, peer, &keys, &tx.impi),
        }
    }
}

impl ScscfHook {
    fn send(&self, m: &Message<'_>, peer: Arc<Peer>, keys: &[AkaKeys<'_>], impi: &str) -> Verdict {
        let Some(sender) = peer.sender.clone() else {
            return self.reject(m, "no_sender");
        };
        let mut handles = Vec::with_capacity(keys.len());
        for k in keys {
            let wire = ikt_agent::wire::to_wire(&self.bundle(m, k, impi));
            match sender.send(wire) {
                Ok(h) => handles.push(h),
                Err(err) => {
                    tracing::warn!(peer = %peer.id, call_id = m.call_id().unwrap_or(""), error = %err, "cannot queue bundle");
                    // Bundles already queued stay queued (harmless: same keys, deduplicated).
                    return match self.fallback(peer.clone(), "send_failed") {
                        Plan::Seal(p) => match self.seal(m, &p, keys, impi) {
                            Some(b) => Verdict::Replace(b),
                            None => self.reject(m, "seal_failed"),
                        },
                        Plan::Pass => Verdict::Pass,
                        _ => self.reject(m, "send_failed"),
                    };
                }
            }
        }
        metrics::counter!(t::BUNDLES_SENT, "peer" => peer.id.clone(), "mode" => peer.mode.as_str())
            .increment(handles.len() as u64);
        let stripped = strip_keys(m, keys);
        if leaks_keys(&stripped, keys) {
            return self.reject(m, "residual_keys");
        }
        let started = Instant::now();
        if !self.policy.ack_before_forward {
            // Pipelined: forward now, observe the ack off the SIP path.
            for h in handles {
                let peer_id = peer.id.clone();
                tokio::spawn(async move { observe_ack(h, started, &peer_id).await });
            }
            return Verdict::Replace(stripped);
        }
        let timeout = self.policy.ack_timeout;
        let failed = match self.fallback(peer.clone(), "ack_timeout") {
            Plan::Seal(p) => self
                .seal(m, &p, keys, impi)
                .unwrap_or_else(|| service_unavailable(m, self.policy.retry_after_s)),
            Plan::Pass => m.bytes().to_vec(),
            _ => service_unavailable(m, self.policy.retry_after_s),
        };
        let peer_id = peer.id.clone();
        Verdict::hold(async move {
            let all = async {
                let mut ok = true;
                for h in handles {
                    ok &= observe_ack(h, started, &peer_id).await;
                }
                ok
            };
            match tokio::time::timeout(timeout, all).await {
                Ok(true) => Verdict::Replace(stripped),
                _ => {
                    metrics::counter!(t::FAILCLOSED, "reason" => "ack_timeout").increment(1);
                    Verdict::Replace(failed)
                }
            }
        })
    }
}

/// Waits for one ack and records its latency; true when the peer holds the keys.
async fn observe_ack(h: ikt_transport::DeliveryHandle, started: Instant, peer: &str) -> bool {
    match h.await {
        Ok(ack) if ack.is_delivered() => {
            metrics::histogram!(t::DELIVERY_SECONDS).record(started.elapsed().as_secs_f64());
            true
        }
        Ok(ack) => {
            tracing::warn!(peer, seq = ack.seq, reason = %ack.reason, "bundle rejected by peer");
            metrics::counter!("ikt_bundles_rejected_total", "peer" => peer.to_owned()).increment(1);
            false
        }
        Err(err) => {
            tracing::warn!(peer, error = %err, "bundle not delivered");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_hosts() {
        assert_eq!(
            uri_host("sip:term@pcscf.ims.example:5060;lr"),
            "pcscf.ims.example"
        );
        assert_eq!(uri_host("sip:127.0.0.1:5062;lr"), "127.0.0.1");
        assert_eq!(uri_host("sip:[::1]:5062"), "::1");
        assert_eq!(uri_host("sip:pcscf"), "pcscf");
    }
}
