//! The chain under test: UE → P-CSCF → p-cscf-agent → tap → I-CSCF → s-cscf-agent → S-CSCF.
//!
//! The lab elements and the agents run in this process but talk only over loopback sockets, as
//! they would on a network. The tap is a plain relay hop whose hook records every message that
//! crosses the SIP path between the agents, so tests can check that no key crossed it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ikt_agent::Mode;
use ikt_lab::config::LabConfig;
use ikt_lab::hss::{self, Hss, Provisioned};
use ikt_lab::network::{Network, NetworkConfig};
use ikt_lab::ue::{Ue, UeConfig, UeEvent};
use ikt_relay::{Hook, Inbound, NextHop, Relay, Verdict};

#[path = "../common/mod.rs"]
mod common;
pub use common::{Scratch, free_port, subscriber_file};

/// Hang guard for any single wait; generous for a loaded 2-core machine.
pub const WAIT: Duration = Duration::from_secs(20);

/// The shared MILENAGE sets SIPp can also use, as subscribers.
pub const SETS: [&str; 3] = ["2", "3", "5"];

/// Options of one chain.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Mode of the one peer pair.
    pub mode: Mode,
    /// p-cscf-agent `keys.key_wait_ms`.
    pub key_wait_ms: u64,
    /// p-cscf-agent `keys.accept_plain`.
    pub accept_plain: bool,
    /// s-cscf-agent `policy.ack_before_forward`.
    pub ack_before_forward: bool,
    /// s-cscf-agent `policy.fallback` (`sealed` or `reject`).
    pub fallback: &'static str,
    /// Lab config TOML.
    pub lab: &'static str,
    /// Point the s-cscf-agent's out-of-band transport at a port nobody listens on.
    pub unreachable_peer: bool,
}

impl Opts {
    /// Defaults for `mode`.
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            // Generous: these tests are about where keys go, not timing, and they run in
            // parallel (under trace logging in the leak check) on two cores.
            key_wait_ms: 2000,
            accept_plain: true,
            ack_before_forward: false,
            fallback: "reject",
            lab: "",
            unreachable_peer: false,
        }
    }
}

/// Records what crosses the SIP path between the agents.
#[derive(Default)]
pub struct Tap {
    messages: Mutex<Vec<Vec<u8>>>,
}

impl Tap {
    /// Every message seen so far.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        self.messages.lock().unwrap().clone()
    }

    /// Messages whose challenges carry a `ck` or `ik` auth-param.
    pub fn with_clear_keys(&self) -> usize {
        self.messages()
            .iter()
            .filter(|m| {
                ikt_sip::scan(m)
                    .map(|s| s.challenges().iter().any(|c| c.has_keys()))
                    .unwrap_or(false)
            })
            .count()
    }

    /// Messages whose challenges carry a sealed `kt`.
    pub fn with_tokens(&self) -> usize {
        self.messages()
            .iter()
            .filter(|m| {
                ikt_sip::scan(m)
                    .map(|s| s.challenges().iter().any(|c| c.param("kt").is_some()))
                    .unwrap_or(false)
            })
            .count()
    }
}

struct TapHook(Arc<Tap>);

impl Hook for TapHook {
    fn on_request(&self, msg: &Inbound<'_, '_>) -> Verdict {
        self.0.messages.lock().unwrap().push(msg.bytes().to_vec());
        Verdict::Pass
    }
    fn on_response(&self, msg: &Inbound<'_, '_>) -> Verdict {
        self.0.messages.lock().unwrap().push(msg.bytes().to_vec());
        Verdict::Pass
    }
}

/// The running chain.
pub struct Chain {
    /// Lab network (S-CSCF, I-CSCF, P-CSCF).
    pub net: Network,
    /// Subscribers.
    pub provisioned: Vec<Provisioned>,
    /// Lab settings.
    pub lab: LabConfig,
    /// The s-cscf-agent.
    pub s_agent: s_cscf_agent::run::Agent,
    /// The p-cscf-agent (None while stopped).
    pub p_agent: Option<p_cscf_agent::run::Agent>,
    /// What crossed the path between the agents.
    pub tap: Arc<Tap>,
    /// The p-cscf-agent config file, for restarts.
    pub p_config: PathBuf,
    _tap_relay: Relay,
    _scratch: Scratch,
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

impl Chain {
    /// Builds and starts the chain for `opts`.
    pub async fn start(opts: Opts) -> Chain {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let scratch = Scratch::new();
        let dir = scratch.0.clone();
        ikt_certs::init(&dir, &["pcscf-1".into(), "scscf-1".into()], 2, false).unwrap();
        let secret = dir.join("pair.hex");
        write(&secret, &format!("{}\n", "5a".repeat(32)));
        let lab = LabConfig::from_toml(opts.lab).unwrap();
        let text = subscriber_file(&SETS);
        let provisioned = hss::parse_provisioning(&text).unwrap();
        let hss = Arc::new(Hss::new(provisioned.iter().map(Into::into).collect()));
        let mut ncfg = NetworkConfig::loopback(lab.clone());
        ncfg.admin = None;
        let core = Network::stage(ncfg, hss).await.unwrap();

        let grpc_port = free_port();
        let quic_port = free_port();
        let (to_grpc, to_quic) = if opts.unreachable_peer {
            (free_port(), free_port())
        } else {
            (grpc_port, quic_port)
        };
        let peer_addr = match opts.mode {
            Mode::Grpc => format!("grpc = \"127.0.0.1:{to_grpc}\"\n"),
            Mode::Quic => format!("quic = \"127.0.0.1:{to_quic}\"\n"),
            _ => String::new(),
        };
        let s_cfg = dir.join("s-cscf-agent.toml");
        write(
            &s_cfg,
            &format!(
                "id = \"scscf-1\"\n\
                 [sip]\nlisten = \"127.0.0.1:0\"\nscscf = \"{scscf}\"\ntcp = false\n\
                 [policy]\nfallback = \"{fallback}\"\nack_before_forward = {abf}\nack_timeout_ms = 1000\n\
                 [admin]\nlisten = \"\"\n\
                 [tls]\nca = \"{d}/ca.pem\"\ncert = \"{d}/scscf-1.pem\"\nkey = \"{d}/scscf-1.key\"\n\
                 [[peer]]\nid = \"pcscf-1\"\nmode = \"{mode}\"\n{peer_addr}\
                 [peer.sealing]\nkid = \"k1\"\nsecret_file = \"{secret}\"\n",
                scscf = core.scscf_addr(),
                fallback = opts.fallback,
                abf = opts.ack_before_forward,
                d = dir.display(),
                mode = opts.mode,
                secret = secret.display(),
            ),
        );
        let s_conf = s_cscf_agent::config::load(&s_cfg).unwrap();
        let s_agent = s_cscf_agent::run::Agent::start(&s_conf, None)
            .await
            .unwrap();
        let edge = core
            .start_icscf(Some(s_agent.relay.udp_addrs()[0]))
            .await
            .unwrap();

        let tap = Arc::new(Tap::default());
        let tap_relay = Relay::start(
            ikt_relay::Config {
                udp_listen: vec!["127.0.0.1:0".parse().unwrap()],
                next_hop: Some(NextHop {
                    addr: edge.icscf_addr(),
                    transport: None,
                }),
                ..ikt_relay::Config::default()
            },
            Arc::new(TapHook(tap.clone())),
        )
        .await
        .unwrap();

        let p_sip = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let p_cfg = dir.join("p-cscf-agent.toml");
        write(
            &p_cfg,
            &format!(
                "id = \"pcscf-1\"\n\
                 [sip]\nlisten = \"{p_sip}\"\ncore = \"{core}\"\ntcp = false\n\
                 [keys]\nkey_wait_ms = {kw}\naccept_plain = {ap}\n\
                 [admin]\nlisten = \"\"\n\
                 [transport]\ngrpc_listen = \"127.0.0.1:{grpc_port}\"\nquic_listen = \"127.0.0.1:{quic_port}\"\n\
                 ca = \"{d}/ca.pem\"\ncert = \"{d}/pcscf-1.pem\"\nkey = \"{d}/pcscf-1.key\"\n\
                 [[peer]]\nid = \"scscf-1\"\n[[peer.sealing]]\nkid = \"k1\"\nsecret_file = \"{secret}\"\n",
                core = tap_relay.udp_addrs()[0],
                kw = opts.key_wait_ms,
                ap = opts.accept_plain,
                d = dir.display(),
                secret = secret.display(),
            ),
        );
        let p_agent = start_p_agent(&p_cfg).await;
        let net = edge.start_pcscf(Some(p_sip)).await.unwrap();
        let chain = Chain {
            net,
            provisioned,
            lab,
            s_agent,
            p_agent: Some(p_agent),
            tap,
            p_config: p_cfg,
            _tap_relay: tap_relay,
            _scratch: scratch,
        };
        if opts.mode.out_of_band() && !opts.unreachable_peer {
            chain.wait_peer_up().await;
        }
        chain
    }

    /// Waits until the s-cscf-agent's transport to the peer is connected.
    pub async fn wait_peer_up(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.s_agent.hook.peers().values().all(|p| p.is_up()) {
            assert!(tokio::time::Instant::now() < deadline, "peer never came up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A UE for subscriber `i`.
    pub async fn ue(&self, i: usize) -> Ue {
        let cfg = UeConfig::from_provisioned(
            &self.provisioned[i],
            &self.lab.realm,
            self.net.addrs().pcscf,
        );
        Ue::spawn(cfg).await.unwrap()
    }

    /// Stops the p-cscf-agent (its ports close).
    pub async fn stop_p_agent(&mut self) {
        if let Some(a) = self.p_agent.take() {
            a.shutdown().await;
        }
    }

    /// Starts the p-cscf-agent again from its config, on the same ports.
    pub async fn restart_p_agent(&mut self) {
        self.stop_p_agent().await;
        self.p_agent = Some(start_p_agent(&self.p_config).await);
    }
}

async fn start_p_agent(path: &Path) -> p_cscf_agent::run::Agent {
    let conf = p_cscf_agent::config::load(path).unwrap();
    // A just-closed port may take a moment to be free again.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match p_cscf_agent::run::Agent::start(&conf, None).await {
            Ok(a) => return a,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("p-cscf-agent start retry: {e:#}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("p-cscf-agent did not start: {e:#}"),
        }
    }
}

/// Registers `ue` and returns its fingerprint; panics on anything but success.
pub async fn register(ue: &Ue) -> String {
    match ue.register_and_wait(WAIT).await {
        Ok(UeEvent::Registered { fingerprint, .. }) => fingerprint,
        other => panic!("registration of {} failed: {other:?}", ue.impi()),
    }
}
