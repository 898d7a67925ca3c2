//! Starting the lab network: S-CSCF, I-CSCF (an `ikt-relay` hop), P-CSCF and the admin endpoint,
//! with optional agent hops inserted between them.
//!
//! The chain is UE → P-CSCF → [p-cscf-agent] → I-CSCF → [s-cscf-agent] → S-CSCF. An agent needs
//! to know the address of the element after it, so the network starts from the core outwards:
//! [`Network::stage`] binds and starts the S-CSCF, [`CoreStage::start_icscf`] starts the I-CSCF
//! with its next hop, [`EdgeStage::start_pcscf`] starts the P-CSCF with its next hop. When the
//! agents' addresses are known up front, [`Network::start`] does all three at once.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Error;
use crate::config::LabConfig;
use crate::hss::Hss;
use crate::pcscf::Pcscf;
use crate::scscf::{Scscf, ScscfCounts};

/// What the I-CSCF saw of the keys on their way from the S-CSCF side to the P-CSCF side: the
/// I-CSCF is the hop between the two agents, so this is what an observer of the core path sees.
#[derive(Debug, Default)]
pub struct PathWatch {
    /// Responses whose challenges carried `ck` or `ik` in clear.
    pub keys_in_clear: std::sync::atomic::AtomicU64,
    /// Responses whose challenges carried a sealed `kt` token instead.
    pub sealed_tokens: std::sync::atomic::AtomicU64,
    /// AKA challenges that carried neither (keys out of band).
    pub keyless_challenges: std::sync::atomic::AtomicU64,
}

impl ikt_relay::Hook for PathWatch {
    fn on_response(&self, msg: &ikt_relay::Inbound<'_, '_>) -> ikt_relay::Verdict {
        use std::sync::atomic::Ordering::Relaxed;
        for ch in msg.message.challenges() {
            if !ch.is_aka() {
                continue;
            }
            if ch.has_keys() {
                self.keys_in_clear.fetch_add(1, Relaxed);
            } else if ch.param("kt").is_some() {
                self.sealed_tokens.fetch_add(1, Relaxed);
            } else {
                self.keyless_challenges.fetch_add(1, Relaxed);
            }
        }
        ikt_relay::Verdict::Pass
    }
}

/// Receive and send buffer of the elements' SIP sockets: the kernel's default drops datagrams
/// when a burst of registrations arrives at once (seen at 64 in flight in the load runs).
const SIP_SOCKET_BUFFER: usize = 4 << 20;

/// A UDP socket for a SIP element, with large buffers (the kernel may cap them).
fn bind_udp(addr: SocketAddr) -> Result<UdpSocket, Error> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let _ = s.set_recv_buffer_size(SIP_SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SIP_SOCKET_BUFFER);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(UdpSocket::from_std(s.into())?)
}

/// Where each element listens (port 0 picks a free port).
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Registrar and policy settings.
    pub lab: LabConfig,
    /// P-CSCF SIP address (what UEs use).
    pub pcscf: SocketAddr,
    /// I-CSCF SIP address.
    pub icscf: SocketAddr,
    /// S-CSCF SIP address.
    pub scscf: SocketAddr,
    /// Admin endpoint (UDP, one text command per datagram), if wanted.
    pub admin: Option<SocketAddr>,
}

impl NetworkConfig {
    /// Everything on 127.0.0.1 with free ports and an admin endpoint.
    pub fn loopback(lab: LabConfig) -> Self {
        let any: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            lab,
            pcscf: any,
            icscf: any,
            scscf: any,
            admin: Some(any),
        }
    }
}

/// Hops to insert into the chain; `None` connects the elements directly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentHops {
    /// Where the P-CSCF sends requests toward the core (a p-cscf-agent, which forwards to the
    /// I-CSCF). `None`: the I-CSCF.
    pub pcscf_next_hop: Option<SocketAddr>,
    /// Where the I-CSCF sends requests for the S-CSCF (an s-cscf-agent, which forwards to the
    /// S-CSCF). `None`: the S-CSCF.
    pub icscf_next_hop: Option<SocketAddr>,
}

/// The addresses of a running network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkAddrs {
    /// P-CSCF (UEs register here).
    pub pcscf: SocketAddr,
    /// I-CSCF.
    pub icscf: SocketAddr,
    /// S-CSCF.
    pub scscf: SocketAddr,
    /// Admin endpoint.
    pub admin: Option<SocketAddr>,
}

/// The network with only the S-CSCF running.
#[derive(Debug)]
pub struct CoreStage {
    cfg: NetworkConfig,
    hss: Arc<Hss>,
    scscf: Arc<Scscf>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// The network with S-CSCF and I-CSCF running.
#[derive(Debug)]
pub struct EdgeStage {
    core: CoreStage,
    icscf: ikt_relay::Relay,
    icscf_addr: SocketAddr,
    watch: Arc<PathWatch>,
}

/// A running lab network.
#[derive(Debug)]
pub struct Network {
    hss: Arc<Hss>,
    scscf: Arc<Scscf>,
    pcscf: Arc<Pcscf>,
    icscf: Option<ikt_relay::Relay>,
    watch: Arc<PathWatch>,
    addrs: NetworkAddrs,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Network {
    /// Binds and starts the S-CSCF; continue with [`CoreStage::start_icscf`].
    pub async fn stage(cfg: NetworkConfig, hss: Arc<Hss>) -> Result<CoreStage, Error> {
        let (stop, stop_rx) = watch::channel(false);
        let socket = Arc::new(bind_udp(cfg.scscf)?);
        let scscf = Scscf::new(socket, hss.clone(), cfg.lab.clone())?;
        let tasks = vec![tokio::spawn(scscf.clone().run(stop_rx))];
        tracing::info!(addr = %scscf.addr(), "s-cscf listening");
        Ok(CoreStage {
            cfg,
            hss,
            scscf,
            stop,
            tasks,
        })
    }

    /// Starts the whole network with these agent hops (their addresses known in advance).
    pub async fn start(
        cfg: NetworkConfig,
        hss: Arc<Hss>,
        hops: AgentHops,
    ) -> Result<Network, Error> {
        Self::stage(cfg, hss)
            .await?
            .start_icscf(hops.icscf_next_hop)
            .await?
            .start_pcscf(hops.pcscf_next_hop)
            .await
    }

    /// What crossed the I-CSCF, the hop between the agents.
    pub fn path_watch(&self) -> &PathWatch {
        &self.watch
    }

    /// The elements' addresses.
    pub fn addrs(&self) -> NetworkAddrs {
        self.addrs
    }

    /// The HSS.
    pub fn hss(&self) -> &Arc<Hss> {
        &self.hss
    }

    /// The S-CSCF.
    pub fn scscf(&self) -> &Arc<Scscf> {
        &self.scscf
    }

    /// The P-CSCF.
    pub fn pcscf(&self) -> &Arc<Pcscf> {
        &self.pcscf
    }

    /// S-CSCF counters.
    pub fn scscf_counts(&self) -> ScscfCounts {
        self.scscf.stats().counts()
    }

    /// Fingerprint of the keys the P-CSCF holds for `impi`'s registration.
    pub fn pcscf_fingerprint(&self, impi: &str) -> Option<String> {
        self.pcscf.fingerprint(impi)
    }

    /// Whether the P-CSCF's keys for `impi` are what the HSS derives for the challenge's RAND.
    pub fn pcscf_keys_check(&self, impi: &str) -> Option<bool> {
        self.pcscf.check_keys(impi, &self.hss)
    }

    /// Network-initiated re-authentication of `impi` (what `ims-lab ctl reauth` asks for).
    pub async fn reauth(&self, impi: &str) -> Result<(), Error> {
        self.scscf.reauth(impi).await
    }

    /// Stops every element and waits for their tasks.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(r) = self.icscf.take() {
            r.shutdown().await;
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl CoreStage {
    /// The S-CSCF's address (an s-cscf-agent forwards here).
    pub fn scscf_addr(&self) -> SocketAddr {
        self.scscf.addr()
    }

    /// Starts the I-CSCF, sending requests to `next_hop` (an s-cscf-agent) or to the S-CSCF.
    pub async fn start_icscf(self, next_hop: Option<SocketAddr>) -> Result<EdgeStage, Error> {
        let next = next_hop.unwrap_or(self.scscf.addr());
        let config = ikt_relay::Config {
            udp_listen: vec![self.cfg.icscf],
            next_hop: Some(ikt_relay::NextHop {
                addr: next,
                transport: None,
            }),
            ..ikt_relay::Config::default()
        };
        let watch = Arc::new(PathWatch::default());
        let icscf = ikt_relay::Relay::start(config, watch.clone())
            .await
            .map_err(|e| Error::Relay(e.to_string()))?;
        let icscf_addr = *icscf
            .udp_addrs()
            .first()
            .ok_or_else(|| Error::Relay("I-CSCF has no UDP address".into()))?;
        tracing::info!(addr = %icscf_addr, next_hop = %next, "i-cscf listening");
        Ok(EdgeStage {
            core: self,
            icscf,
            icscf_addr,
            watch,
        })
    }
}

impl EdgeStage {
    /// The I-CSCF's address (a p-cscf-agent forwards here).
    pub fn icscf_addr(&self) -> SocketAddr {
        self.icscf_addr
    }

    /// The S-CSCF's address.
    pub fn scscf_addr(&self) -> SocketAddr {
        self.core.scscf.addr()
    }

    /// Starts the P-CSCF, sending requests toward the core to `next_hop` (a p-cscf-agent) or to
    /// the I-CSCF, plus the admin endpoint.
    pub async fn start_pcscf(self, next_hop: Option<SocketAddr>) -> Result<Network, Error> {
        let EdgeStage {
            core,
            icscf,
            icscf_addr,
            watch,
        } = self;
        let CoreStage {
            cfg,
            hss,
            scscf,
            stop,
            mut tasks,
        } = core;
        let next = next_hop.unwrap_or(icscf_addr);
        let socket = Arc::new(bind_udp(cfg.pcscf)?);
        let pcscf = Pcscf::new(socket, next)?;
        tasks.push(tokio::spawn(pcscf.clone().run(stop.subscribe())));
        tracing::info!(addr = %pcscf.addr(), next_hop = %next, "p-cscf listening");
        let admin = match cfg.admin {
            Some(a) => {
                let socket = UdpSocket::bind(a).await?;
                let addr = socket.local_addr()?;
                tasks.push(tokio::spawn(crate::admin::run(
                    socket,
                    hss.clone(),
                    scscf.clone(),
                    pcscf.clone(),
                    stop.subscribe(),
                )));
                tracing::info!(addr = %addr, "admin endpoint listening");
                Some(addr)
            }
            None => None,
        };
        let addrs = NetworkAddrs {
            pcscf: pcscf.addr(),
            icscf: icscf_addr,
            scscf: scscf.addr(),
            admin,
        };
        Ok(Network {
            hss,
            scscf,
            pcscf,
            icscf: Some(icscf),
            watch,
            addrs,
            stop,
            tasks,
        })
    }
}
