//! Running the two sidecar agents beside the lab, as separate processes, for `serve --mode` and
//! `demo --mode`.
//!
//! The lab never links the agents: it starts their binaries (found next to `ims-lab`, or in
//! `IKT_BIN_DIR`) with generated configs, a development PKI and a sealing secret in a scratch
//! directory, and talks to them only over loopback sockets, as a real core would. The chain is
//! UE → P-CSCF → p-cscf-agent → I-CSCF → s-cscf-agent → S-CSCF.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::Error;

/// The four key transport modes, as the agents' configs spell them.
pub const MODES: [&str; 4] = ["plain", "sealed", "grpc", "quic"];

/// Where the agent binaries are.
#[derive(Debug, Clone)]
pub struct AgentBins {
    /// `s-cscf-agent`.
    pub s_agent: PathBuf,
    /// `p-cscf-agent`.
    pub p_agent: PathBuf,
}

impl AgentBins {
    /// `dir`, else `$IKT_BIN_DIR`, else the directory of the running executable.
    pub fn locate(dir: Option<&Path>) -> Result<Self, Error> {
        let dir = match dir {
            Some(d) => d.to_owned(),
            None => match std::env::var_os("IKT_BIN_DIR") {
                Some(d) => PathBuf::from(d),
                None => std::env::current_exe()?
                    .parent()
                    .map(Path::to_owned)
                    .unwrap_or_default(),
            },
        };
        let bins = Self {
            s_agent: dir.join("s-cscf-agent"),
            p_agent: dir.join("p-cscf-agent"),
        };
        for b in [&bins.s_agent, &bins.p_agent] {
            if !b.is_file() {
                return Err(Error::Config(format!(
                    "agent binary {} not found: build with `cargo build --release --bins`, or set IKT_BIN_DIR",
                    b.display()
                )));
            }
        }
        Ok(bins)
    }
}

/// Settings of one agent pair.
#[derive(Debug, Clone)]
pub struct PairOptions {
    /// `plain`, `sealed`, `grpc` or `quic`.
    pub mode: String,
    /// p-cscf-agent `keys.key_wait_ms`.
    pub key_wait_ms: u64,
    /// `RUST_LOG` for the agents (their stderr goes to files in the scratch directory).
    pub log_filter: String,
}

impl PairOptions {
    /// Defaults for `mode`.
    pub fn new(mode: &str) -> Self {
        Self {
            mode: mode.to_owned(),
            key_wait_ms: 200,
            log_filter: "info".into(),
        }
    }
}

/// Ports picked before anything starts, because each agent's config names the next element.
#[derive(Debug, Clone, Copy)]
pub struct PairPorts {
    /// s-cscf-agent SIP (the I-CSCF's next hop).
    pub s_sip: SocketAddr,
    /// p-cscf-agent SIP (the P-CSCF's next hop).
    pub p_sip: SocketAddr,
    /// p-cscf-agent gRPC receiver.
    pub p_grpc: SocketAddr,
    /// p-cscf-agent QUIC receiver.
    pub p_quic: SocketAddr,
    /// s-cscf-agent admin endpoint.
    pub s_admin: SocketAddr,
    /// p-cscf-agent admin endpoint.
    pub p_admin: SocketAddr,
}

impl PairPorts {
    /// Free loopback ports for all of them.
    pub fn pick() -> Result<Self, Error> {
        let mut v = Vec::with_capacity(6);
        // Hold every socket until all are picked, so no port is handed out twice.
        let mut held = Vec::new();
        let mut tries = 0;
        while v.len() < 6 {
            tries += 1;
            let tcp = std::net::TcpListener::bind("127.0.0.1:0")?;
            let addr = tcp.local_addr()?;
            // The same port is used for UDP (SIP, QUIC): it must be free there too; if another
            // process holds it for UDP, draw again.
            match std::net::UdpSocket::bind(addr) {
                Ok(udp) => {
                    v.push(addr);
                    held.push((tcp, udp));
                }
                Err(e) if tries > 100 => return Err(e.into()),
                Err(_) => {}
            }
        }
        Ok(Self {
            s_sip: v[0],
            p_sip: v[1],
            p_grpc: v[2],
            p_quic: v[3],
            s_admin: v[4],
            p_admin: v[5],
        })
    }
}

/// A running agent pair; both processes are stopped when it is dropped.
#[derive(Debug)]
pub struct AgentPair {
    /// Ports in use.
    pub ports: PairPorts,
    /// Mode of the pair.
    pub mode: String,
    /// Scratch directory with configs, certificates, secret and logs.
    pub dir: PathBuf,
    s: Option<Child>,
    p: Option<Child>,
    bins: AgentBins,
    keep_dir: bool,
}

impl AgentPair {
    /// Writes configs and PKI, starts the s-cscf-agent (in front of `scscf`); the p-cscf-agent
    /// (toward `core`) is started by [`AgentPair::start_p`] once the I-CSCF's address is known.
    pub fn start_s(
        bins: &AgentBins,
        opts: &PairOptions,
        ports: PairPorts,
        scscf: SocketAddr,
    ) -> Result<Self, Error> {
        if !MODES.contains(&opts.mode.as_str()) {
            return Err(Error::Config(format!("unknown mode {:?}", opts.mode)));
        }
        let dir = std::env::temp_dir().join(format!(
            "ims-lab-agents-{}-{}-{}",
            opts.mode,
            std::process::id(),
            ports.s_sip.port()
        ));
        std::fs::create_dir_all(&dir)?;
        ikt_certs::init(&dir, &["pcscf-1".into(), "scscf-1".into()], 2, true)
            .map_err(|e| Error::Config(format!("dev PKI: {e}")))?;
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| Error::Config(format!("random: {e}")))?;
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        zeroize::Zeroize::zeroize(&mut secret);
        write_secret(&dir.join("pair.seal"), &hex)?;
        let d = dir.display();
        let peer_addr = match opts.mode.as_str() {
            "grpc" => format!("grpc = \"{}\"\n", ports.p_grpc),
            "quic" => format!("quic = \"{}\"\n", ports.p_quic),
            _ => String::new(),
        };
        let s_cfg = format!(
            "# generated by ims-lab for mode {mode}\n\
             id = \"scscf-1\"\n\
             [sip]\nlisten = \"{s_sip}\"\nscscf = \"{scscf}\"\ntcp = false\n\
             [policy]\nfallback = \"reject\"\n\
             [admin]\nlisten = \"{s_admin}\"\n\
             [tls]\nca = \"{d}/ca.pem\"\ncert = \"{d}/scscf-1.pem\"\nkey = \"{d}/scscf-1.key\"\n\
             [[peer]]\nid = \"pcscf-1\"\nmode = \"{mode}\"\n{peer_addr}\
             [peer.sealing]\nkid = \"lab\"\nsecret_file = \"{d}/pair.seal\"\n",
            mode = opts.mode,
            s_sip = ports.s_sip,
            s_admin = ports.s_admin,
        );
        std::fs::write(dir.join("s-cscf-agent.toml"), s_cfg)?;
        let mut pair = Self {
            ports,
            mode: opts.mode.clone(),
            dir,
            s: None,
            p: None,
            bins: bins.clone(),
            keep_dir: false,
        };
        pair.s = Some(pair.spawn(&bins.s_agent, "s-cscf-agent", &opts.log_filter)?);
        Ok(pair)
    }

    /// Starts the p-cscf-agent, forwarding toward `core` (the I-CSCF).
    pub fn start_p(&mut self, opts: &PairOptions, core: SocketAddr) -> Result<(), Error> {
        let d = self.dir.display();
        let p_cfg = format!(
            "# generated by ims-lab for mode {mode}\n\
             id = \"pcscf-1\"\n\
             [sip]\nlisten = \"{p_sip}\"\ncore = \"{core}\"\ntcp = false\n\
             [keys]\nkey_wait_ms = {kw}\naccept_plain = {ap}\n\
             [admin]\nlisten = \"{p_admin}\"\n\
             [transport]\ngrpc_listen = \"{grpc}\"\nquic_listen = \"{quic}\"\n\
             ca = \"{d}/ca.pem\"\ncert = \"{d}/pcscf-1.pem\"\nkey = \"{d}/pcscf-1.key\"\n\
             [[peer]]\nid = \"scscf-1\"\n[[peer.sealing]]\nkid = \"lab\"\nsecret_file = \"{d}/pair.seal\"\n",
            mode = self.mode,
            p_sip = self.ports.p_sip,
            kw = opts.key_wait_ms,
            // Protected modes refuse clear keys: a downgrade would show up as a failure.
            ap = self.mode == "plain",
            p_admin = self.ports.p_admin,
            grpc = self.ports.p_grpc,
            quic = self.ports.p_quic,
        );
        std::fs::write(self.dir.join("p-cscf-agent.toml"), p_cfg)?;
        let bin = self.bins.p_agent.clone();
        self.p = Some(self.spawn(&bin, "p-cscf-agent", &opts.log_filter)?);
        Ok(())
    }

    fn spawn(&self, bin: &Path, name: &str, filter: &str) -> Result<Child, Error> {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log")))?;
        let child = Command::new(bin)
            .arg("--config")
            .arg(self.dir.join(format!("{name}.toml")))
            .env("RUST_LOG", filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| Error::Config(format!("cannot start {}: {e}", bin.display())))?;
        Ok(child)
    }

    /// Waits until both agents answer `/readyz` with 200 (for grpc/quic: the peer link is up).
    pub async fn wait_ready(&mut self, limit: Duration) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            for (name, child) in [("s-cscf-agent", &mut self.s), ("p-cscf-agent", &mut self.p)] {
                if let Some(c) = child
                    && let Ok(Some(status)) = c.try_wait()
                {
                    let log = std::fs::read_to_string(self.dir.join(format!("{name}.log")))
                        .unwrap_or_default();
                    return Err(Error::Config(format!(
                        "{name} exited with {status}: {}",
                        log.lines().last().unwrap_or("")
                    )));
                }
            }
            let s_ok = http_get(self.ports.s_admin, "/readyz")
                .await
                .is_some_and(|r| r.starts_with("HTTP/1.1 200"));
            let p_ok = http_get(self.ports.p_admin, "/readyz")
                .await
                .is_some_and(|r| r.starts_with("HTTP/1.1 200"));
            if s_ok && p_ok {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Config(format!(
                    "agents not ready within {limit:?} (logs in {})",
                    self.dir.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The Prometheus text of both agents (s-cscf-agent first).
    pub async fn metrics(&self) -> (String, String) {
        let s = http_get(self.ports.s_admin, "/metrics")
            .await
            .unwrap_or_default();
        let p = http_get(self.ports.p_admin, "/metrics")
            .await
            .unwrap_or_default();
        (s, p)
    }

    /// Keeps the scratch directory (configs, logs) after the pair stops.
    pub fn keep_dir(&mut self) {
        self.keep_dir = true;
    }

    /// Stops both agents (SIGTERM, then SIGKILL after a grace period).
    pub fn stop(&mut self) {
        for child in [self.p.take(), self.s.take()].into_iter().flatten() {
            stop_child(child);
        }
    }
}

impl Drop for AgentPair {
    fn drop(&mut self) {
        self.stop();
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn stop_child(mut child: Child) {
    // SIGTERM lets the agent flush streams and finish held 401s.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    for _ in 0..50 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn write_secret(path: &Path, hex: &str) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(hex.as_bytes())?;
    Ok(())
}

/// One HTTP GET to an agent's admin endpoint; `None` when it does not answer.
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: lab\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        Some(out)
    };
    tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .ok()
        .flatten()
}

/// The value of one Prometheus series line (`name{labels} value`), or 0 when absent.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The sum of every series of a metric family (all label sets).
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b'{' | b' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lines() {
        let t = "# TYPE x counter\nikt_failclosed_total{reason=\"a\"} 2\nikt_failclosed_total{reason=\"b\"} 3\nikt_store_entries 4\n";
        assert_eq!(metric(t, "ikt_store_entries"), 4.0);
        assert_eq!(metric(t, "ikt_missing"), 0.0);
        assert_eq!(metric_sum(t, "ikt_failclosed_total"), 5.0);
    }

    #[test]
    fn ports_are_distinct() {
        let p = PairPorts::pick().unwrap();
        let all = [p.s_sip, p.p_sip, p.p_grpc, p.p_quic, p.s_admin, p.p_admin];
        for (i, a) in all.iter().enumerate() {
            assert!(!all[i + 1..].contains(a));
        }
    }
}
