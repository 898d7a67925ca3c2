//! One chain per mode, every element a separate process:
//! `ims-lab serve` (P-CSCF, I-CSCF, S-CSCF, HSS) and, except for the baseline, an
//! `s-cscf-agent` and a `p-cscf-agent` wired as in `tests/e2e/support.rs`:
//! UE → P-CSCF → p-cscf-agent → I-CSCF → s-cscf-agent → S-CSCF.
//!
//! Ports are picked up front so every process can be given its neighbours on the command line.
//! All logs go to files in the scratch directory at `warn`, so logging costs nothing per message.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A chain variant: the baseline without agents, or a transport mode of the agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// P-CSCF → I-CSCF → S-CSCF, no agents.
    Baseline,
    /// Agents relay only; ck/ik stay in the 401.
    Plain,
    /// ck/ik sealed into the `kt` auth-param.
    Sealed,
    /// Keys over gRPC (HTTP/2, mutual TLS 1.3).
    Grpc,
    /// Keys over QUIC (mutual TLS 1.3).
    Quic,
}

impl Mode {
    /// Every mode, in round order.
    pub const ALL: [Mode; 5] = [
        Mode::Baseline,
        Mode::Plain,
        Mode::Sealed,
        Mode::Grpc,
        Mode::Quic,
    ];

    /// Name as in the agents' config.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Baseline => "baseline",
            Mode::Plain => "plain",
            Mode::Sealed => "sealed",
            Mode::Grpc => "grpc",
            Mode::Quic => "quic",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Whether agents run in this chain.
    pub fn has_agents(self) -> bool {
        self != Mode::Baseline
    }

    /// Whether keys travel out of band.
    pub fn out_of_band(self) -> bool {
        matches!(self, Mode::Grpc | Mode::Quic)
    }
}

/// The ports of one chain (all on 127.0.0.1).
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// P-CSCF (UEs register here).
    pub pcscf: u16,
    /// I-CSCF.
    pub icscf: u16,
    /// S-CSCF.
    pub scscf: u16,
    /// Lab admin endpoint.
    pub lab_admin: u16,
    /// p-cscf-agent SIP.
    pub p_sip: u16,
    /// s-cscf-agent SIP.
    pub s_sip: u16,
    /// p-cscf-agent gRPC listener.
    pub grpc: u16,
    /// p-cscf-agent QUIC listener.
    pub quic: u16,
    /// p-cscf-agent /metrics.
    pub p_admin: u16,
    /// s-cscf-agent /metrics.
    pub s_admin: u16,
}

/// A loopback port free for both TCP and UDP right now.
pub fn free_port() -> Result<u16> {
    for _ in 0..64 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = tcp.local_addr()?.port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(Error::Input("no free loopback port".into()))
}

impl Ports {
    /// Fresh free ports.
    pub fn pick() -> Result<Self> {
        let mut seen = Vec::new();
        let mut next = || -> Result<u16> {
            loop {
                let p = free_port()?;
                if !seen.contains(&p) {
                    seen.push(p);
                    return Ok(p);
                }
            }
        };
        Ok(Ports {
            pcscf: next()?,
            icscf: next()?,
            scscf: next()?,
            lab_admin: next()?,
            p_sip: next()?,
            s_sip: next()?,
            grpc: next()?,
            quic: next()?,
            p_admin: next()?,
            s_admin: next()?,
        })
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A child process killed (by its own pid) when dropped.
#[derive(Debug)]
pub struct Proc {
    /// Short name for reports (`lab`, `p-agent`, `s-agent`).
    pub name: &'static str,
    child: Child,
}

impl Proc {
    /// Spawns `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &'static str, mut cmd: Command, log: &Path) -> Result<Self> {
        let out = std::fs::File::create(log)?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .env("RUST_LOG", "warn");
        let child = cmd.spawn().map_err(|e| Error::Process {
            name: name.into(),
            why: format!("{:?}: {e}", cmd.get_program()),
        })?;
        Ok(Self { name, child })
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails when it has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(st)) => Err(Error::Process {
                name: self.name.into(),
                why: format!("exited: {st}"),
            }),
            Err(e) => Err(Error::Io(e)),
        }
    }

    /// Asks it to stop (SIGTERM via `kill`), then kills it after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Shared files of a run: certificates, the pair secret, the subscriber file.
#[derive(Debug, Clone)]
pub struct Files {
    /// Scratch directory.
    pub dir: PathBuf,
    /// Directory holding the binaries (`ims-lab`, `s-cscf-agent`, `p-cscf-agent`, `sip-relay`).
    pub bin_dir: PathBuf,
    /// Subscriber provisioning file.
    pub subscribers: PathBuf,
}

impl Files {
    /// Makes the dev PKI and the sealing secret in `dir`.
    pub fn prepare(dir: &Path, bin_dir: &Path, subscribers: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        ikt_certs::init(dir, &["pcscf-1".into(), "scscf-1".into()], 2, true)
            .map_err(|e| Error::Lab(format!("certificates: {e}")))?;
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| Error::Lab(format!("random source: {e}")))?;
        crate::subscriber::write_file(
            &dir.join("pair.hex"),
            &format!("{}\n", crate::hex(&secret)),
        )?;
        Ok(Self {
            dir: dir.to_path_buf(),
            bin_dir: bin_dir.to_path_buf(),
            subscribers,
        })
    }

    /// Path of a binary.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }
}

/// A running chain.
#[derive(Debug)]
pub struct Chain {
    /// Its mode.
    pub mode: Mode,
    /// Its ports.
    pub ports: Ports,
    /// `ims-lab serve`.
    pub lab: Proc,
    /// The p-cscf-agent (not in the baseline).
    pub p_agent: Option<Proc>,
    /// The s-cscf-agent (not in the baseline).
    pub s_agent: Option<Proc>,
}

impl Chain {
    /// Where the UE sends.
    pub fn pcscf(&self) -> SocketAddr {
        addr(self.ports.pcscf)
    }

    /// The port the I-CSCF forwards REGISTERs to: the s-cscf-agent, or the S-CSCF itself.
    pub fn after_icscf(&self) -> u16 {
        if self.mode.has_agents() {
            self.ports.s_sip
        } else {
            self.ports.scscf
        }
    }

    /// The processes, named.
    pub fn processes(&self) -> Vec<(&'static str, u32)> {
        let mut v = vec![(self.lab.name, self.lab.pid())];
        if let Some(p) = &self.p_agent {
            v.push((p.name, p.pid()));
        }
        if let Some(s) = &self.s_agent {
            v.push((s.name, s.pid()));
        }
        v
    }

    /// Starts the chain and waits until it is ready (agents answer /metrics, out-of-band peer up).
    pub fn start(mode: Mode, files: &Files) -> Result<Chain> {
        let ports = Ports::pick()?;
        let dir = files.dir.join(mode.as_str());
        std::fs::create_dir_all(&dir)?;
        let mut lab = Command::new(files.bin("ims-lab"));
        lab.arg("serve")
            .arg("--subscribers")
            .arg(&files.subscribers)
            .arg("--pcscf")
            .arg(addr(ports.pcscf).to_string())
            .arg("--icscf")
            .arg(addr(ports.icscf).to_string())
            .arg("--scscf")
            .arg(addr(ports.scscf).to_string())
            .arg("--admin")
            .arg(addr(ports.lab_admin).to_string());
        if mode.has_agents() {
            lab.arg("--pcscf-next-hop")
                .arg(addr(ports.p_sip).to_string())
                .arg("--icscf-next-hop")
                .arg(addr(ports.s_sip).to_string());
        }
        let lab = Proc::spawn("lab", lab, &dir.join("lab.log"))?;
        let mut chain = Chain {
            mode,
            ports,
            lab,
            p_agent: None,
            s_agent: None,
        };
        if mode.has_agents() {
            let d = files.dir.display();
            let secret = files.dir.join("pair.hex");
            let secret = secret.display();
            let peer_addr = match mode {
                Mode::Grpc => format!("grpc = \"127.0.0.1:{}\"\n", ports.grpc),
                Mode::Quic => format!("quic = \"127.0.0.1:{}\"\n", ports.quic),
                _ => String::new(),
            };
            let s_cfg = dir.join("s-cscf-agent.toml");
            std::fs::write(
                &s_cfg,
                format!(
                    "id = \"scscf-1\"\n\
                     [sip]\nlisten = \"127.0.0.1:{s_sip}\"\nscscf = \"127.0.0.1:{scscf}\"\ntcp = false\n\
                     [policy]\nfallback = \"reject\"\n\
                     [admin]\nlisten = \"127.0.0.1:{s_admin}\"\n\
                     [tls]\nca = \"{d}/ca.pem\"\ncert = \"{d}/scscf-1.pem\"\nkey = \"{d}/scscf-1.key\"\n\
                     [[peer]]\nid = \"pcscf-1\"\nmode = \"{mode}\"\n{peer_addr}\
                     [peer.sealing]\nkid = \"k1\"\nsecret_file = \"{secret}\"\n",
                    s_sip = ports.s_sip,
                    scscf = ports.scscf,
                    s_admin = ports.s_admin,
                    mode = mode.as_str(),
                ),
            )?;
            let p_cfg = dir.join("p-cscf-agent.toml");
            std::fs::write(
                &p_cfg,
                format!(
                    "id = \"pcscf-1\"\n\
                     [sip]\nlisten = \"127.0.0.1:{p_sip}\"\ncore = \"127.0.0.1:{icscf}\"\ntcp = false\n\
                     [admin]\nlisten = \"127.0.0.1:{p_admin}\"\n\
                     [transport]\ngrpc_listen = \"127.0.0.1:{grpc}\"\nquic_listen = \"127.0.0.1:{quic}\"\n\
                     ca = \"{d}/ca.pem\"\ncert = \"{d}/pcscf-1.pem\"\nkey = \"{d}/pcscf-1.key\"\n\
                     [[peer]]\nid = \"scscf-1\"\n[[peer.sealing]]\nkid = \"k1\"\nsecret_file = \"{secret}\"\n",
                    p_sip = ports.p_sip,
                    icscf = ports.icscf,
                    p_admin = ports.p_admin,
                    grpc = ports.grpc,
                    quic = ports.quic,
                ),
            )?;
            let mut p = Command::new(files.bin("p-cscf-agent"));
            p.arg("--config").arg(&p_cfg);
            chain.p_agent = Some(Proc::spawn("p-agent", p, &dir.join("p-cscf-agent.log"))?);
            let mut s = Command::new(files.bin("s-cscf-agent"));
            s.arg("--config").arg(&s_cfg);
            chain.s_agent = Some(Proc::spawn("s-agent", s, &dir.join("s-cscf-agent.log"))?);
        }
        chain.wait_ready(Duration::from_secs(30))?;
        Ok(chain)
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let until = Instant::now() + limit;
        loop {
            self.lab.check_alive()?;
            let lab_up = crate::scrape::lab_stats(addr(self.ports.lab_admin)).is_some();
            let agents_up = !self.mode.has_agents() || {
                if let Some(p) = self.p_agent.as_mut() {
                    p.check_alive()?;
                }
                if let Some(s) = self.s_agent.as_mut() {
                    s.check_alive()?;
                }
                let p = crate::scrape::get(addr(self.ports.p_admin));
                let s = crate::scrape::get(addr(self.ports.s_admin));
                match (p, s) {
                    (Some(_), Some(s)) => {
                        !self.mode.out_of_band()
                            || crate::scrape::Metrics::parse(&s).sum("ikt_peer_up", &[]) >= 1.0
                    }
                    _ => false,
                }
            };
            if lab_up && agents_up {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(Error::Process {
                    name: format!("{} chain", self.mode.as_str()),
                    why: "not ready in time (see the logs in the scratch directory)".into(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The s-cscf-agent's and p-cscf-agent's metrics, if they run.
    pub fn agent_metrics(&self) -> Option<(crate::scrape::Metrics, crate::scrape::Metrics)> {
        if !self.mode.has_agents() {
            return None;
        }
        let s = crate::scrape::get(addr(self.ports.s_admin))?;
        let p = crate::scrape::get(addr(self.ports.p_admin))?;
        Some((
            crate::scrape::Metrics::parse(&s),
            crate::scrape::Metrics::parse(&p),
        ))
    }

    /// Stops every process of the chain.
    pub fn stop(mut self) {
        for p in [self.p_agent.as_mut(), self.s_agent.as_mut()]
            .into_iter()
            .flatten()
        {
            p.stop(Duration::from_secs(10));
        }
        self.lab.stop(Duration::from_secs(3));
    }
}
