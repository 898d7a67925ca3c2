//! Wiring: from a validated [`Config`] to a running agent (relay, senders, admin, local API).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use ikt_agent::Mode;
use ikt_agent::admin::{self, Health, HealthFn};
use ikt_agent::telemetry as t;
use ikt_keys::{Sealer, SecretBytes};
use ikt_relay::{NextHop, Relay};
use ikt_transport::quic::StreamMode;
use ikt_transport::{KeySender, PeerTable, SenderConfig, TlsHandle, TlsSource, grpc, quic};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

use crate::config::{Config, PeerFile};
use crate::hook::{Peer, PeerMap, Policy, ScscfHook};

/// A running s-cscf-agent.
pub struct Agent {
    /// The SIP relay hop.
    pub relay: Relay,
    /// The hook (peer table, policy).
    pub hook: Arc<ScscfHook>,
    /// Mutual TLS material, when a peer uses grpc or quic.
    pub tls: Option<TlsHandle>,
    /// Bound admin address, if enabled.
    pub admin_addr: Option<SocketAddr>,
    id: String,
    shutdown_tx: watch::Sender<bool>,
}

fn policy(c: &Config) -> Policy {
    Policy {
        fallback: c.policy.fallback,
        allow_plain_fallback: c.policy.allow_plain_fallback,
        ack_before_forward: c.policy.ack_before_forward,
        ack_timeout: c.ack_timeout(),
        retry_after_s: c.policy.retry_after_s,
        unknown_peer: c.policy.unknown_peer,
        key_ttl_ms: c.policy.key_ttl_s.saturating_mul(1000),
    }
}

async fn resolve(addr: &str, field: &str) -> Result<SocketAddr> {
    tokio::net::lookup_host(addr)
        .await
        .with_context(|| format!("{field}: cannot resolve {addr:?}"))?
        .next()
        .with_context(|| format!("{field}: {addr:?} has no address"))
}

/// Builds one peer: its sealer and, for grpc/quic, a sender that connects in the background.
/// `reuse` keeps an existing connection when the peer's transport settings did not change.
async fn build_peer(
    id: &str,
    p: &PeerFile,
    tls: Option<&TlsHandle>,
    reuse: Option<&Peer>,
) -> Result<Peer> {
    let sealer = match &p.sealing {
        Some(s) => {
            let secret = ikt_agent::secret::read_hex_secret(&s.secret_file)?;
            let secret = SecretBytes::from_slice(&secret)
                .map_err(|e| anyhow::anyhow!("peer {}: sealing secret: {e}", p.id))?;
            Some(
                Sealer::new(&s.kid, &secret, id, &p.id)
                    .map_err(|e| anyhow::anyhow!("peer {}: sealing: {e}", p.id))?,
            )
        }
        None => None,
    };
    let server_name = p.server_name.clone().unwrap_or_else(|| p.id.clone());
    let endpoint = format!(
        "{}|{}|{}",
        p.mode,
        server_name,
        match p.mode {
            Mode::Grpc => p.grpc.as_deref().unwrap_or(""),
            Mode::Quic => p.quic.as_deref().unwrap_or(""),
            _ => "",
        }
    );
    let sender = match p.mode {
        Mode::Grpc | Mode::Quic if reuse.is_some_and(|r| r.endpoint == endpoint) => {
            reuse.and_then(|r| r.sender.clone())
        }
        Mode::Grpc | Mode::Quic => {
            let tls = tls.context("tls is required for grpc and quic peers")?;
            let addr_text = if p.mode == Mode::Grpc {
                &p.grpc
            } else {
                &p.quic
            };
            let addr_text = addr_text.as_deref().context("peer address missing")?;
            let addr = resolve(addr_text, &format!("peer {}", p.id)).await?;
            let cfg = SenderConfig::new(server_name, addr);
            let s = if p.mode == Mode::Grpc {
                grpc::connect(cfg, tls.clone())
            } else {
                quic::connect(cfg, tls.clone(), StreamMode::default())
                    .map_err(|e| anyhow::anyhow!("peer {}: quic: {e}", p.id))?
            };
            Some(Arc::new(s))
        }
        Mode::Plain | Mode::Sealed => None,
    };
    Ok(Peer {
        id: p.id.clone(),
        mode: p.mode,
        sender,
        sealer,
        path_hosts: p.path_hosts.clone(),
        endpoint,
    })
}

async fn build_peers(c: &Config, tls: Option<&TlsHandle>) -> Result<PeerMap> {
    let mut map = HashMap::new();
    for (id, p) in &c.peers {
        map.insert(id.clone(), Arc::new(build_peer(&c.id, p, tls, None).await?));
    }
    Ok(map)
}

impl Agent {
    /// Starts everything the config asks for. `metrics` is the installed recorder's handle.
    pub async fn start(c: &Config, metrics: Option<PrometheusHandle>) -> Result<Agent> {
        let tls = match &c.tls {
            Some(t) => {
                let oob: Vec<String> = c
                    .peers
                    .values()
                    .filter(|p| p.mode.out_of_band())
                    .map(|p| p.server_name.clone().unwrap_or_else(|| p.id.clone()))
                    .collect();
                let table = PeerTable::new(oob).map_err(|e| anyhow::anyhow!("peer table: {e}"))?;
                let source = TlsSource::Files {
                    cert: t.cert.clone(),
                    key: t.key.clone(),
                    ca: t.ca.clone(),
                };
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                Some(
                    TlsHandle::new(provider, source, table)
                        .map_err(|e| anyhow::anyhow!("tls: {e}"))?,
                )
            }
            None => None,
        };
        let peers = build_peers(c, tls.as_ref()).await?;
        let hook = Arc::new(ScscfHook::new(policy(c), peers));
        let mut udp = vec![c.sip.listen];
        let tcp = if c.sip.tcp {
            vec![c.sip.listen]
        } else {
            vec![]
        };
        udp.dedup();
        let relay_cfg = ikt_relay::Config {
            udp_listen: udp,
            tcp_listen: tcp,
            next_hop: Some(NextHop {
                addr: ikt_agent::config::resolve(&c.sip.scscf, "sip.scscf").await?,
                transport: None,
            }),
            via_host: c.sip.via_host.clone(),
            ..ikt_relay::Config::default()
        };
        let relay = Relay::start(relay_cfg, hook.clone())
            .await
            .map_err(|e| anyhow::anyhow!("sip: {e}"))?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let admin_addr = match c.admin {
            Some(addr) => {
                let l = admin::bind(addr)
                    .await
                    .with_context(|| format!("admin.listen {addr}"))?;
                let bound = l.local_addr()?;
                tokio::spawn(admin::serve(
                    l,
                    metrics,
                    health_fn(hook.clone()),
                    shutdown_rx.clone(),
                ));
                Some(bound)
            }
            None => None,
        };
        tokio::spawn(peer_gauges(hook.clone(), shutdown_rx.clone()));
        if let Some(path) = &c.local_api {
            crate::local_api::serve(path.clone(), hook.clone(), shutdown_rx)
                .await
                .with_context(|| format!("local_api.socket {}", path.display()))?;
        }
        tracing::info!(
            id = %c.id,
            sip = ?relay.udp_addrs(),
            scscf = %c.sip.scscf,
            peers = c.peers.len(),
            "s-cscf-agent started"
        );
        Ok(Agent {
            relay,
            hook,
            tls,
            admin_addr,
            id: c.id.clone(),
            shutdown_tx,
        })
    }

    /// SIGHUP: reloads the certificates and the peer table from `path`.
    pub async fn reload(&self, path: &Path) -> Result<()> {
        let c = crate::config::load(path)?;
        if c.id != self.id {
            anyhow::bail!(
                "id changed from {} to {}: restart to change identity",
                self.id,
                c.id
            );
        }
        if let Some(tls) = &self.tls {
            tls.reload()
                .map_err(|e| anyhow::anyhow!("tls reload: {e}"))?;
            let oob: Vec<String> = c
                .peers
                .values()
                .filter(|p| p.mode.out_of_band())
                .map(|p| p.server_name.clone().unwrap_or_else(|| p.id.clone()))
                .collect();
            tls.peers()
                .set(oob)
                .map_err(|e| anyhow::anyhow!("peer table: {e}"))?;
        }
        // Peers whose transport settings did not change keep their connection; sealing
        // secrets are re-read so a rotated secret file takes effect.
        let old = self.hook.peers();
        let mut map = HashMap::new();
        for (id, p) in &c.peers {
            let peer =
                build_peer(&self.id, p, self.tls.as_ref(), old.get(id).map(|o| &**o)).await?;
            map.insert(id.clone(), Arc::new(peer));
        }
        // Connections of removed or changed peers close once no 401 in progress holds them.
        for (id, o) in old.iter() {
            let kept = map.get(id).is_some_and(
                |n| matches!((&n.sender, &o.sender), (Some(a), Some(b)) if Arc::ptr_eq(a, b)),
            );
            if let (false, Some(s)) = (kept, &o.sender) {
                s.close();
            }
        }
        self.hook.set_peers(map);
        tracing::info!(peers = c.peers.len(), "configuration reloaded");
        Ok(())
    }

    /// Graceful shutdown: stops taking SIP, gives queued bundles up to `flush` to be acked.
    pub async fn shutdown(self, flush: Duration) {
        let _ = self.shutdown_tx.send(true);
        self.relay.shutdown().await;
        let deadline = tokio::time::Instant::now() + flush;
        for p in self.hook.peers().values() {
            if let Some(s) = &p.sender {
                while s.health().in_flight > 0 && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                s.close();
            }
        }
    }
}

fn health_fn(hook: Arc<ScscfHook>) -> HealthFn {
    Arc::new(move || {
        let peers = hook.peers();
        let mut detail = Vec::new();
        let mut ok = true;
        for p in peers.values() {
            if p.mode.out_of_band() {
                let up = p.is_up();
                ok &= up;
                detail.push(format!(
                    "peer {} {} {}",
                    p.id,
                    p.mode,
                    if up { "up" } else { "down" }
                ));
            } else {
                detail.push(format!("peer {} {}", p.id, p.mode));
            }
        }
        Health { ok, detail }
    })
}

async fn peer_gauges(hook: Arc<ScscfHook>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|v| *v) => return,
            _ = tick.tick() => {}
        }
        for p in hook.peers().values() {
            if let Some(s) = &p.sender {
                let up = s.health().up;
                metrics::gauge!(t::PEER_UP, "peer" => p.id.clone()).set(if up { 1.0 } else { 0.0 });
            }
        }
    }
}
