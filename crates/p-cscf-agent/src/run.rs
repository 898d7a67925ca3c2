//! Wiring: from a validated [`Config`] to a running agent (relay, receivers, admin, local API).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use ikt_agent::admin::{self, Health, HealthFn};
use ikt_agent::telemetry as t;
use ikt_keys::{InsertOutcome, Opener, OpenerConfig, SecretBytes, StoreConfig};
use ikt_relay::{NextHop, Relay};
use ikt_transport::{Delivery, PeerTable, ReceiverConfig, ReceiverHandle, TlsHandle, TlsSource};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::{mpsc, watch};

use crate::config::{Config, PeerFile};
use crate::hook::{PcscfHook, Policy};
use crate::hub::KeyHub;

/// A running p-cscf-agent.
pub struct Agent {
    /// The SIP relay hop.
    pub relay: Relay,
    /// The hook (restores keys).
    pub hook: Arc<PcscfHook>,
    /// The key store shared by hook, receivers and local API.
    pub hub: Arc<KeyHub>,
    /// Mutual TLS material of the receivers.
    pub tls: Option<TlsHandle>,
    /// Bound gRPC receiver address.
    pub grpc_addr: Option<SocketAddr>,
    /// Bound QUIC receiver address.
    pub quic_addr: Option<SocketAddr>,
    /// Bound admin address.
    pub admin_addr: Option<SocketAddr>,
    receivers: Receivers,
    key_wait: Duration,
    id: String,
    shutdown_tx: watch::Sender<bool>,
}

/// The opener with every kid of every peer; kids must be unique across peers.
pub fn build_opener(
    id: &str,
    max_age_s: u64,
    peers: &BTreeMap<String, PeerFile>,
) -> Result<Opener> {
    let mut opener = Opener::new(OpenerConfig {
        max_age_ms: max_age_s.saturating_mul(1000),
        ..OpenerConfig::default()
    });
    let mut seen = BTreeMap::new();
    for p in peers.values() {
        for s in &p.sealing {
            if let Some(other) = seen.insert(s.kid.clone(), p.id.clone()) {
                anyhow::bail!(
                    "sealing kid {:?} is used by peers {other} and {}: kids must be unique",
                    s.kid,
                    p.id
                );
            }
            let secret = ikt_agent::secret::read_hex_secret(&s.secret_file)?;
            let secret = SecretBytes::from_slice(&secret)
                .map_err(|e| anyhow::anyhow!("peer {}: sealing secret: {e}", p.id))?;
            opener
                .add_kid(&s.kid, &secret, &p.id, id)
                .map_err(|e| anyhow::anyhow!("peer {} kid {}: {e}", p.id, s.kid))?;
        }
    }
    Ok(opener)
}

impl Agent {
    /// Starts everything the config asks for. `metrics` is the installed recorder's handle.
    pub async fn start(c: &Config, metrics: Option<PrometheusHandle>) -> Result<Agent> {
        let hub = Arc::new(KeyHub::new(StoreConfig {
            ttl_ms: c.keys.key_ttl_s.saturating_mul(1000),
            capacity: c.keys.store_capacity,
            max_waiters: c.keys.max_parked,
        }));
        let opener = build_opener(&c.id, c.keys.max_age_s, &c.peers)?;
        let hook = Arc::new(PcscfHook::new(
            Policy {
                key_wait: c.key_wait(),
                max_parked: c.keys.max_parked,
                accept_plain: c.keys.accept_plain,
                downgrade_action: c.keys.downgrade_action,
                retry_after_s: c.keys.retry_after_s,
            },
            hub.clone(),
            opener,
        ));
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        // Present from the start, so dashboards see 0 rather than a missing series.
        metrics::gauge!(t::PARKED_401).set(0.0);
        metrics::gauge!(t::STORE_ENTRIES).set(0.0);

        let mut started = Vec::new();
        let (mut grpc_addr, mut quic_addr) = (None, None);
        let tls = match &c.transport {
            Some(tr) => {
                let table = PeerTable::new(c.peers.keys().cloned())
                    .map_err(|e| anyhow::anyhow!("peer table: {e}"))?;
                let source = TlsSource::Files {
                    cert: tr.cert.clone(),
                    key: tr.key.clone(),
                    ca: tr.ca.clone(),
                };
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let tls = TlsHandle::new(provider, source, table)
                    .map_err(|e| anyhow::anyhow!("transport tls: {e}"))?;
                if let Some(addr) = tr.grpc_listen {
                    let (h, rx) =
                        ikt_transport::grpc::serve(ReceiverConfig::new(addr), tls.clone())
                            .await
                            .map_err(|e| anyhow::anyhow!("transport.grpc_listen {addr}: {e}"))?;
                    grpc_addr = Some(h.local_addr());
                    tokio::spawn(deliveries(rx, hub.clone(), "grpc"));
                    started.push(("grpc", h));
                }
                if let Some(addr) = tr.quic_listen {
                    let (h, rx) =
                        ikt_transport::quic::serve(ReceiverConfig::new(addr), tls.clone())
                            .await
                            .map_err(|e| anyhow::anyhow!("transport.quic_listen {addr}: {e}"))?;
                    quic_addr = Some(h.local_addr());
                    tokio::spawn(deliveries(rx, hub.clone(), "quic"));
                    started.push(("quic", h));
                }
                Some(tls)
            }
            None => None,
        };

        let receivers: Receivers = Arc::new(Mutex::new(started));
        let relay_cfg = ikt_relay::Config {
            udp_listen: vec![c.sip.listen],
            tcp_listen: if c.sip.tcp {
                vec![c.sip.listen]
            } else {
                vec![]
            },
            next_hop: Some(NextHop {
                addr: ikt_agent::config::resolve(&c.sip.core, "sip.core").await?,
                transport: None,
            }),
            via_host: c.sip.via_host.clone(),
            via_params: format!("ikt={}", c.id),
            // The hook bounds parked 401s itself and fails closed beyond; keep headroom here.
            max_held: c.keys.max_parked.saturating_add(64),
            max_hold: c.key_wait() + Duration::from_secs(1),
            ..ikt_relay::Config::default()
        };
        let relay = Relay::start(relay_cfg, hook.clone())
            .await
            .map_err(|e| anyhow::anyhow!("sip: {e}"))?;

        let admin_addr = match c.admin {
            Some(addr) => {
                let l = admin::bind(addr)
                    .await
                    .with_context(|| format!("admin.listen {addr}"))?;
                let bound = l.local_addr()?;
                let health = health_fn(hub.clone(), receivers.clone());
                tokio::spawn(admin::serve(l, metrics, health, shutdown_rx.clone()));
                Some(bound)
            }
            None => None,
        };
        tokio::spawn(housekeeping(
            hub.clone(),
            receivers.clone(),
            shutdown_rx.clone(),
        ));
        if let Some(path) = &c.local_api {
            crate::local_api::serve(path.clone(), hub.clone(), shutdown_rx)
                .await
                .with_context(|| format!("local_api.socket {}", path.display()))?;
        }
        tracing::info!(
            id = %c.id,
            sip = ?relay.udp_addrs(),
            core = %c.sip.core,
            grpc = ?grpc_addr,
            quic = ?quic_addr,
            "p-cscf-agent started"
        );
        Ok(Agent {
            relay,
            hook,
            hub,
            tls,
            grpc_addr,
            quic_addr,
            admin_addr,
            receivers,
            key_wait: c.key_wait(),
            id: c.id.clone(),
            shutdown_tx,
        })
    }

    /// SIGHUP: reloads certificates, the peer table and the sealing kids from `path`.
    pub async fn reload(&self, path: &Path) -> Result<()> {
        let c = crate::config::load(path)?;
        if c.id != self.id {
            anyhow::bail!(
                "id changed from {} to {}: restart to change identity",
                self.id,
                c.id
            );
        }
        let opener = build_opener(&c.id, c.keys.max_age_s, &c.peers)?;
        if let Some(tls) = &self.tls {
            tls.reload()
                .map_err(|e| anyhow::anyhow!("tls reload: {e}"))?;
            tls.peers()
                .set(c.peers.keys().cloned())
                .map_err(|e| anyhow::anyhow!("peer table: {e}"))?;
        }
        self.hook.set_opener(opener);
        tracing::info!(peers = c.peers.len(), "configuration reloaded");
        Ok(())
    }

    /// Graceful shutdown: held 401s get their keys or their 503 (up to `key_wait`) while the
    /// receivers still run; then SIP stops, then the receivers.
    pub async fn shutdown(self) {
        let deadline = tokio::time::Instant::now() + self.key_wait + Duration::from_millis(100);
        while self.hook.parked() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = self.shutdown_tx.send(true);
        self.relay.shutdown().await;
        let handles =
            std::mem::take(&mut *self.receivers.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, r) in handles {
            r.shutdown().await;
        }
    }
}

/// How far ahead of our clock a bundle's `issued_at_ms` may be (clock skew between the agents).
const MAX_CLOCK_SKEW_MS: u64 = 5_000;

/// Stores each delivered bundle and answers the sender.
async fn deliveries(mut rx: mpsc::Receiver<Delivery>, hub: Arc<KeyHub>, mode: &'static str) {
    while let Some(d) = rx.recv().await {
        metrics::counter!(t::BUNDLES_RECEIVED, "peer" => d.peer.clone(), "mode" => mode)
            .increment(1);
        let bundle = match ikt_agent::wire::from_wire(&d.bundle) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(peer = %d.peer, error = %e, "malformed bundle refused");
                d.responder.reject(&e.to_string());
                continue;
            }
        };
        // A bundle from the future means a clock that is off (or a forged timestamp): its
        // lifetime cannot be trusted.
        if bundle.issued_at_ms > t::now_ms().saturating_add(MAX_CLOCK_SKEW_MS) {
            tracing::warn!(peer = %d.peer, nonce = crate::hook::nonce_prefix(&bundle.nonce), "bundle issued in the future: clock skew between the agents");
            d.responder.reject("issued in the future (clock skew)");
            continue;
        }
        match hub.insert(bundle) {
            Ok(InsertOutcome::Stored) => d.responder.stored(),
            Ok(InsertOutcome::Duplicate) => d.responder.duplicate(),
            Err(e) => {
                tracing::warn!(peer = %d.peer, nonce = crate::hook::nonce_prefix(&d.bundle.nonce), error = %e, "bundle refused");
                d.responder.reject(e.kind());
            }
        }
    }
}

/// The running receivers, shared with the health endpoint and the gauges.
type Receivers = Arc<Mutex<Vec<(&'static str, ReceiverHandle)>>>;

/// Per peer, merged over the receivers (grpc and quic): up when any of them has a stream.
fn peer_health(receivers: &Receivers) -> Vec<ikt_transport::PeerHealth> {
    let mut merged: BTreeMap<String, ikt_transport::PeerHealth> = BTreeMap::new();
    for (_, h) in receivers.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        for p in h.health() {
            match merged.get_mut(&p.peer) {
                Some(m) => {
                    m.up |= p.up;
                    m.delivered += p.delivered;
                    m.refused += p.refused;
                    m.duplicates += p.duplicates;
                    m.connects += p.connects;
                    m.in_flight += p.in_flight;
                }
                None => {
                    merged.insert(p.peer.clone(), p);
                }
            }
        }
    }
    merged.into_values().collect()
}

fn health_fn(hub: Arc<KeyHub>, receivers: Receivers) -> HealthFn {
    Arc::new(move || {
        let mut detail = vec![format!("store entries {}", hub.len())];
        {
            for p in peer_health(&receivers) {
                detail.push(format!(
                    "peer {} {} delivered {} refused {}",
                    p.peer,
                    if p.up { "up" } else { "down" },
                    p.delivered,
                    p.refused
                ));
            }
        }
        Health { ok: true, detail }
    })
}

async fn housekeeping(hub: Arc<KeyHub>, receivers: Receivers, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|v| *v) => return,
            _ = tick.tick() => {}
        }
        hub.expire();
        for p in peer_health(&receivers) {
            metrics::gauge!(t::PEER_UP, "peer" => p.peer.clone()).set(if p.up { 1.0 } else { 0.0 });
        }
    }
}
