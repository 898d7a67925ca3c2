//! The harness: both agents wired between a fake P-CSCF and a fake S-CSCF whose 401s the test
//! writes byte by byte, with a recording relay hop between the agents (the "path").
//!
//! ```text
//! Edge (fake P-CSCF) → p-cscf-agent → tap relay → s-cscf-agent → Core (fake S-CSCF)
//!                          ▲                                        │
//!                          └────── grpc / quic (optionally via a proxy) ──┘
//! ```
//! Everything runs in this process and talks over loopback sockets only. The test is also able
//! to play the s-cscf-agent on the out-of-band link (`injector`), with the real `scscf-1`
//! certificate, to deliver bundles at chosen moments or with hostile content.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ikt_agent::Mode;
use ikt_relay::{Hook, Inbound, NextHop, Relay, Verdict};
use ikt_transport::{SenderConfig, TlsHandle, TlsSource};
use tokio::net::UdpSocket;

use crate::netproxy::Proxy;

#[path = "../common/mod.rs"]
mod common;
pub use common::{Scratch, free_port, subscriber_file};

/// Hang guard for any single wait; generous for a loaded 2-core machine.
pub const WAIT: Duration = Duration::from_secs(20);

/// Realm of every fake challenge.
pub const REALM: &str = "ims.example.org";

/// The pair's sealing secret (hex file content), kid `k1`.
pub const SECRET_HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// Loopback address with a free port.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Certificates (CA, `pcscf-1`, `scscf-1`) and the sealing secret in a scratch directory.
pub struct Pki {
    /// The directory.
    pub dir: PathBuf,
    /// The CA, to issue more (hostile) certificates.
    pub ca: ikt_certs::Ca,
    _scratch: Scratch,
}

impl Pki {
    /// Generates everything.
    pub fn new() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let scratch = Scratch::new();
        let dir = scratch.0.clone();
        let ca = ikt_certs::Ca::new("reliability test CA", 2).unwrap();
        let opts = ikt_certs::IssueOptions::default();
        let certs = [
            ca.issue("pcscf-1", &opts).unwrap(),
            ca.issue("scscf-1", &opts).unwrap(),
        ];
        ikt_certs::write_pki(&dir, &ca, &certs, false).unwrap();
        std::fs::write(dir.join("pair.hex"), format!("{SECRET_HEX}\n")).unwrap();
        Self {
            dir,
            ca,
            _scratch: scratch,
        }
    }

    /// Path of a file in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// TLS material of agent `id` (the test uses `scscf-1` to play the s-cscf-agent).
    pub fn tls(&self, id: &str, peer: &str) -> TlsHandle {
        self.tls_files(&format!("{id}.pem"), &format!("{id}.key"), peer)
    }

    /// TLS material from these files of the directory, trusting our CA.
    pub fn tls_files(&self, cert: &str, key: &str, peer: &str) -> TlsHandle {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        TlsHandle::new(
            provider,
            TlsSource::Files {
                cert: self.path(cert),
                key: self.path(key),
                ca: self.path("ca.pem"),
            },
            ikt_transport::PeerTable::new([peer]).unwrap(),
        )
        .unwrap()
    }
}

/// Records every message that crosses the path between the agents.
#[derive(Default)]
pub struct Tap {
    messages: Mutex<Vec<Vec<u8>>>,
}

impl Tap {
    /// Every message seen so far.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        self.messages.lock().unwrap().clone()
    }

    /// Messages with a `ck` or `ik` auth-param in any challenge.
    pub fn with_clear_keys(&self) -> usize {
        self.messages().iter().filter(|m| has_clear_keys(m)).count()
    }
}

/// Whether any challenge of `raw` carries `ck` or `ik` (unparseable bytes count if they even
/// contain the text `ck=`/`ik=`, to err on the side of a finding).
pub fn has_clear_keys(raw: &[u8]) -> bool {
    match ikt_sip::scan(raw) {
        Ok(m) => m.challenges().iter().any(|c| c.has_keys()),
        Err(_) => {
            let t = String::from_utf8_lossy(raw).to_ascii_lowercase();
            t.contains("ck=") || t.contains("ik=")
        }
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

/// A recording relay hop from `listen` toward `next`.
pub async fn tap_relay(next: SocketAddr) -> (Relay, Arc<Tap>) {
    let tap = Arc::new(Tap::default());
    let relay = Relay::start(
        ikt_relay::Config {
            udp_listen: vec!["127.0.0.1:0".parse().unwrap()],
            next_hop: Some(NextHop {
                addr: next,
                transport: None,
            }),
            ..ikt_relay::Config::default()
        },
        Arc::new(TapHook(tap.clone())),
    )
    .await
    .unwrap();
    (relay, tap)
}

/// Options of the p-cscf-agent.
#[derive(Debug, Clone)]
pub struct POpts {
    /// `keys.key_wait_ms`.
    pub key_wait_ms: u64,
    /// `keys.accept_plain`.
    pub accept_plain: bool,
    /// `keys.max_parked`.
    pub max_parked: usize,
    /// `keys.store_capacity`.
    pub store_capacity: usize,
    /// `keys.max_age_s`.
    pub max_age_s: u64,
    /// `sip.tcp`.
    pub tcp: bool,
}

impl Default for POpts {
    fn default() -> Self {
        Self {
            key_wait_ms: 300,
            accept_plain: true,
            max_parked: 64,
            store_capacity: 1024,
            max_age_s: 32,
            tcp: true,
        }
    }
}

/// Writes the p-cscf-agent config; the receivers listen on fixed ports so restarts keep them.
pub fn p_config(
    pki: &Pki,
    o: &POpts,
    sip: SocketAddr,
    core: SocketAddr,
    grpc: SocketAddr,
    quic: SocketAddr,
) -> PathBuf {
    let d = pki.dir.display();
    let path = pki.path(&format!("p-{}.toml", sip.port()));
    std::fs::write(
        &path,
        format!(
            "id = \"pcscf-1\"\n\
             [sip]\nlisten = \"{sip}\"\ncore = \"{core}\"\ntcp = {tcp}\n\
             [keys]\nkey_wait_ms = {kw}\naccept_plain = {ap}\nmax_parked = {mp}\n\
             store_capacity = {sc}\nmax_age_s = {ma}\n\
             [admin]\nlisten = \"\"\n\
             [transport]\ngrpc_listen = \"{grpc}\"\nquic_listen = \"{quic}\"\n\
             ca = \"{d}/ca.pem\"\ncert = \"{d}/pcscf-1.pem\"\nkey = \"{d}/pcscf-1.key\"\n\
             [[peer]]\nid = \"scscf-1\"\n[[peer.sealing]]\nkid = \"k1\"\nsecret_file = \"{d}/pair.hex\"\n",
            tcp = o.tcp,
            kw = o.key_wait_ms,
            ap = o.accept_plain,
            mp = o.max_parked,
            sc = o.store_capacity,
            ma = o.max_age_s,
        ),
    )
    .unwrap();
    path
}

/// Starts a p-cscf-agent from `path`, retrying while a just-closed port is still busy.
pub async fn start_p(path: &Path) -> p_cscf_agent::run::Agent {
    let conf = p_cscf_agent::config::load(path).unwrap();
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

/// Options of the s-cscf-agent.
#[derive(Debug, Clone)]
pub struct SOpts {
    /// Mode toward `pcscf-1`.
    pub mode: Mode,
    /// `policy.fallback`.
    pub fallback: &'static str,
    /// `policy.ack_before_forward`.
    pub ack_before_forward: bool,
    /// `policy.ack_timeout_ms`.
    pub ack_timeout_ms: u64,
}

impl SOpts {
    /// Defaults for `mode`: reject fallback, pipelined.
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            fallback: "reject",
            ack_before_forward: false,
            ack_timeout_ms: 1000,
        }
    }
}

/// Writes the s-cscf-agent config; `peer` is where it reaches the p-cscf-agent's receiver.
pub fn s_config(
    pki: &Pki,
    o: &SOpts,
    sip: SocketAddr,
    scscf: SocketAddr,
    peer: SocketAddr,
) -> PathBuf {
    let d = pki.dir.display();
    let path = pki.path(&format!("s-{}.toml", sip.port()));
    let peer_addr = match o.mode {
        Mode::Grpc => format!("grpc = \"{peer}\"\n"),
        Mode::Quic => format!("quic = \"{peer}\"\n"),
        _ => String::new(),
    };
    std::fs::write(
        &path,
        format!(
            "id = \"scscf-1\"\n\
             [sip]\nlisten = \"{sip}\"\nscscf = \"{scscf}\"\ntcp = true\n\
             [policy]\nfallback = \"{fb}\"\nack_before_forward = {abf}\nack_timeout_ms = {at}\n\
             [admin]\nlisten = \"\"\n\
             [tls]\nca = \"{d}/ca.pem\"\ncert = \"{d}/scscf-1.pem\"\nkey = \"{d}/scscf-1.key\"\n\
             [[peer]]\nid = \"pcscf-1\"\nmode = \"{mode}\"\n{peer_addr}\
             [peer.sealing]\nkid = \"k1\"\nsecret_file = \"{d}/pair.hex\"\n",
            fb = o.fallback,
            abf = o.ack_before_forward,
            at = o.ack_timeout_ms,
            mode = o.mode,
        ),
    )
    .unwrap();
    path
}

/// Starts an s-cscf-agent from `path`, retrying while a just-closed port is still busy.
pub async fn start_s(path: &Path) -> s_cscf_agent::run::Agent {
    let conf = s_cscf_agent::config::load(path).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match s_cscf_agent::run::Agent::start(&conf, None).await {
            Ok(a) => return a,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("s-cscf-agent start retry: {e:#}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("s-cscf-agent did not start: {e:#}"),
        }
    }
}

/// A UDP SIP endpoint played by the test (fake P-CSCF or fake S-CSCF).
pub struct Endpoint {
    /// Its socket.
    pub sock: UdpSocket,
    /// Its address.
    pub addr: SocketAddr,
}

impl Endpoint {
    /// Binds on loopback.
    pub async fn bind() -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        Self { sock, addr }
    }

    /// Sends one datagram.
    pub async fn send(&self, to: SocketAddr, bytes: &[u8]) {
        self.sock.send_to(bytes, to).await.unwrap();
    }

    /// The next datagram within `limit`, if any.
    pub async fn try_recv(&self, limit: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        let mut buf = vec![0u8; 65_536];
        match tokio::time::timeout(limit, self.sock.recv_from(&mut buf)).await {
            Ok(Ok((n, from))) => {
                buf.truncate(n);
                Some((buf, from))
            }
            _ => None,
        }
    }

    /// The next datagram, however long it takes (for background responders).
    pub async fn recv_forever(&self) -> (Vec<u8>, SocketAddr) {
        let mut buf = vec![0u8; 65_536];
        let (n, from) = self.sock.recv_from(&mut buf).await.unwrap();
        buf.truncate(n);
        (buf, from)
    }

    /// Next datagram whose Call-ID is `call_id` (others are dropped).
    pub async fn recv_call(&self, call_id: &str) -> (Vec<u8>, SocketAddr) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (b, from) = self
                .try_recv(left)
                .await
                .unwrap_or_else(|| panic!("nothing for Call-ID {call_id}"));
            if ikt_sip::scan(&b)
                .ok()
                .and_then(|m| m.call_id().map(str::to_owned))
                .as_deref()
                == Some(call_id)
            {
                return (b, from);
            }
        }
    }
}

/// A REGISTER from the fake P-CSCF at `from`, for user `user`.
pub fn register(from: SocketAddr, user: &str, call_id: &str, cseq: u32) -> Vec<u8> {
    static BRANCH: AtomicU64 = AtomicU64::new(1);
    let b = BRANCH.fetch_add(1, Ordering::Relaxed);
    format!(
        "REGISTER sip:{REALM} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bKrel{b};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@{REALM}>;tag=f{b}\r\n\
         To: <sip:{user}@{REALM}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Authorization: Digest username=\"{user}@{REALM}\", realm=\"{REALM}\", nonce=\"\", uri=\"sip:{REALM}\", response=\"\"\r\n\
         Contact: <sip:{user}@{from}>;expires=600000\r\n\
         Expires: 600000\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// A response to `request` as a registrar writes it: its Vias, From, To (with a tag), Call-ID
/// and CSeq, then `extra` header lines (each without CRLF).
pub fn response_to(request: &[u8], status: &str, extra: &[String]) -> Vec<u8> {
    let m = ikt_sip::scan(request).expect("request scans");
    let mut out = format!("SIP/2.0 {status}\r\n");
    for h in m.headers() {
        let name = m.name(h);
        let keep = ["via", "v", "from", "f", "call-id", "i", "cseq"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n));
        if keep {
            out.push_str(&format!("{name}: {}\r\n", m.value(h)));
        } else if name.eq_ignore_ascii_case("to") || name.eq_ignore_ascii_case("t") {
            out.push_str(&format!("{name}: {};tag=scscf\r\n", m.value(h)));
        }
    }
    for e in extra {
        out.push_str(e);
        out.push_str("\r\n");
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out.into_bytes()
}

/// The Kamailio-form AKA challenge header with these keys.
pub fn www(nonce: &str, ck: &str, ik: &str) -> String {
    format!(
        "WWW-Authenticate: Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm=AKAv1-MD5, \
         ck=\"{ck}\", ik=\"{ik}\", qop=\"auth,auth-int\""
    )
}

/// A keyless AKA challenge header (what the s-cscf-agent forwards in out-of-band modes).
pub fn www_keyless(nonce: &str) -> String {
    format!(
        "WWW-Authenticate: Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm=AKAv1-MD5, \
         qop=\"auth,auth-int\""
    )
}

/// A fresh base64 nonce (RAND||AUTN shaped: 32 bytes) unique in this process.
pub fn nonce(tag: u64) -> String {
    use base64::Engine;
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let mut raw = [0u8; 32];
    raw[..8].copy_from_slice(&n.to_be_bytes());
    raw[8..16].copy_from_slice(&tag.to_be_bytes());
    raw[16..24].copy_from_slice(&u64::from(std::process::id()).to_be_bytes());
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// 32 lowercase hex digits derived from `seed` (distinct keys per test, recognisable in logs).
pub fn key_hex(seed: u64, which: u8) -> String {
    let mut s = String::with_capacity(32);
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(which) << 56;
    for _ in 0..16 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&format!("{:02x}", x as u8));
    }
    s
}

/// How the p-side answered one 401 as seen by the fake P-CSCF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 401 carrying exactly these (ck, ik) in the challenge (canonical, lowercase).
    Keys(String, String),
    /// A 401 without ck/ik.
    Keyless,
    /// Another status (503 expected for fail-closed).
    Status(u16),
}

/// Classifies what the fake P-CSCF received.
pub fn outcome(raw: &[u8]) -> Outcome {
    let m = ikt_sip::scan(raw).expect("the agent forwarded something unparseable");
    match m.status() {
        Some(401 | 407) => {
            let ch = m.challenges();
            match ch.iter().find(|c| c.has_keys()) {
                Some(c) => Outcome::Keys(
                    c.param("ck")
                        .map(|p| p.value.to_owned())
                        .unwrap_or_default(),
                    c.param("ik")
                        .map(|p| p.value.to_owned())
                        .unwrap_or_default(),
                ),
                None => Outcome::Keyless,
            }
        }
        Some(s) => Outcome::Status(s),
        None => panic!("a request came back"),
    }
}

/// Both agents between a fake P-CSCF (`edge`) and a fake S-CSCF (`core`).
pub struct Duo {
    /// Certificates, secret, configs.
    pub pki: Pki,
    /// The fake P-CSCF.
    pub edge: Endpoint,
    /// The fake S-CSCF.
    pub core: Arc<Endpoint>,
    /// The p-cscf-agent (None while stopped).
    pub p: Option<p_cscf_agent::run::Agent>,
    /// The s-cscf-agent (None while stopped).
    pub s: Option<s_cscf_agent::run::Agent>,
    /// The p-cscf-agent's SIP address.
    pub p_sip: SocketAddr,
    /// The s-cscf-agent's SIP address.
    pub s_sip: SocketAddr,
    /// The p-cscf-agent's gRPC receiver.
    pub grpc: SocketAddr,
    /// The p-cscf-agent's QUIC receiver.
    pub quic: SocketAddr,
    /// What crossed the path between the agents.
    pub tap: Arc<Tap>,
    /// The proxy on the out-of-band link, if asked for.
    pub proxy: Option<Proxy>,
    /// Config files for restarts.
    pub p_config: PathBuf,
    /// Config files for restarts.
    pub s_config: PathBuf,
    _tap_relay: Relay,
    n: AtomicU64,
}

impl Duo {
    /// Starts the whole thing; `proxied` puts a [`Proxy`] on the out-of-band link.
    pub async fn start(s: SOpts, p: POpts, proxied: bool) -> Duo {
        crate::leaks::init_logging();
        let pki = Pki::new();
        let edge = Endpoint::bind().await;
        let core = Arc::new(Endpoint::bind().await);
        let (p_sip, s_sip, grpc, quic) = (free_addr(), free_addr(), free_addr(), free_addr());
        let proxy = if proxied {
            Some(match s.mode {
                Mode::Quic => Proxy::udp(quic).await,
                _ => Proxy::tcp(grpc).await,
            })
        } else {
            None
        };
        let peer = match (&proxy, s.mode) {
            (Some(px), _) => px.addr,
            (None, Mode::Quic) => quic,
            (None, _) => grpc,
        };
        let s_config = s_config(&pki, &s, s_sip, core.addr, peer);
        let s_agent = start_s(&s_config).await;
        let (tap_relay, tap) = tap_relay(s_sip).await;
        let p_config = p_config(&pki, &p, p_sip, tap_relay.udp_addrs()[0], grpc, quic);
        let p_agent = start_p(&p_config).await;
        let duo = Duo {
            pki,
            edge,
            core,
            p: Some(p_agent),
            s: Some(s_agent),
            p_sip,
            s_sip,
            grpc,
            quic,
            tap,
            proxy,
            p_config,
            s_config,
            _tap_relay: tap_relay,
            n: AtomicU64::new(1),
        };
        if s.mode.out_of_band() {
            duo.wait_peer_up().await;
        }
        duo
    }

    /// Waits until the s-cscf-agent's link to the p-cscf-agent is up.
    pub async fn wait_peer_up(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.peer_up() {
            assert!(tokio::time::Instant::now() < deadline, "peer never came up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the s-cscf-agent's link is up now.
    pub fn peer_up(&self) -> bool {
        self.s
            .as_ref()
            .is_some_and(|s| s.hook.peers().values().all(|p| p.is_up()))
    }

    /// Health of the s-cscf-agent's sender (out-of-band modes).
    pub fn sender_health(&self) -> ikt_transport::PeerHealth {
        let s = self.s.as_ref().expect("s-cscf-agent running");
        let peers = s.hook.peers();
        let peer = peers.get("pcscf-1").expect("peer pcscf-1");
        peer.sender
            .as_ref()
            .map(|x| ikt_transport::KeySender::health(&**x))
            .unwrap_or_default()
    }

    /// The running p-cscf-agent.
    pub fn p(&self) -> &p_cscf_agent::run::Agent {
        self.p.as_ref().expect("p-cscf-agent running")
    }

    /// A fresh Call-ID.
    pub fn call_id(&self, what: &str) -> String {
        format!("{what}-{}", self.n.fetch_add(1, Ordering::Relaxed))
    }

    /// Sends a REGISTER from the edge and returns it as the fake S-CSCF received it.
    pub async fn register(&self, call_id: &str) -> Vec<u8> {
        let req = register(self.edge.addr, "alice", call_id, 1);
        self.edge.send(self.p_sip, &req).await;
        let (got, _) = self.core.recv_call(call_id).await;
        got
    }

    /// Answers `request` (as received by the core) with `status` and `extra` headers, toward
    /// the s-cscf-agent.
    pub async fn answer(&self, request: &[u8], status: &str, extra: &[String]) {
        let resp = response_to(request, status, extra);
        self.core.send(self.s_sip, &resp).await;
    }

    /// One whole transaction: REGISTER, the core's answer with `challenge`, what the edge gets.
    pub async fn challenge(&self, challenge: &str) -> Vec<u8> {
        let call_id = self.call_id("ch");
        let req = self.register(&call_id).await;
        self.answer(&req, "401 Unauthorized", &[challenge.to_owned()])
            .await;
        self.edge.recv_call(&call_id).await.0
    }

    /// A valid transaction with fresh keys; asserts they come back exactly (the agents still
    /// serve valid traffic).
    pub async fn assert_serves(&self, what: &str) {
        let seed = self.n.fetch_add(1, Ordering::Relaxed) + 0x5e5e;
        let (ck, ik) = (key_hex(seed, 1), key_hex(seed, 2));
        let got = self.challenge(&www(&nonce(seed), &ck, &ik)).await;
        assert_eq!(
            outcome(&got),
            Outcome::Keys(ck, ik),
            "{what}: valid traffic not served"
        );
    }

    /// Stops the p-cscf-agent.
    pub async fn stop_p(&mut self) {
        if let Some(a) = self.p.take() {
            a.shutdown().await;
        }
    }

    /// Starts the p-cscf-agent again on the same ports.
    pub async fn start_p(&mut self) {
        self.stop_p().await;
        self.p = Some(start_p(&self.p_config).await);
    }

    /// Stops the s-cscf-agent.
    pub async fn stop_s(&mut self) {
        if let Some(a) = self.s.take() {
            a.shutdown(Duration::from_millis(100)).await;
        }
    }

    /// Starts the s-cscf-agent again on the same ports.
    pub async fn start_s(&mut self) {
        self.stop_s().await;
        self.s = Some(start_s(&self.s_config).await);
    }

    /// A sender with `scscf-1`'s certificate toward the p-cscf-agent (the test playing the
    /// s-cscf-agent on the out-of-band link).
    pub fn injector(
        &self,
        mode: Mode,
        cfg: impl FnOnce(&mut SenderConfig),
    ) -> ikt_transport::PeerSender {
        let tls = self.pki.tls("scscf-1", "pcscf-1");
        let addr = if mode == Mode::Quic {
            self.quic
        } else {
            self.grpc
        };
        let mut c = SenderConfig::new("pcscf-1", addr);
        cfg(&mut c);
        match mode {
            Mode::Quic => {
                ikt_transport::quic::connect(c, tls, ikt_transport::quic::StreamMode::default())
                    .expect("quic sender")
            }
            _ => ikt_transport::grpc::connect(c, tls),
        }
    }
}

/// A wire bundle for `nonce`/`call_id` with these keys, valid for a minute from now.
pub fn wire_bundle(nonce: &str, call_id: &str, ck: &str, ik: &str) -> ikt_transport::KeyBundle {
    let now = now_ms();
    let b = ikt_keys::KeyBundle {
        seq: 0,
        realm: REALM.into(),
        nonce: nonce.into(),
        call_id: call_id.into(),
        cseq: 1,
        impu: format!("sip:alice@{REALM}"),
        impi: format!("alice@{REALM}"),
        ck: ikt_keys::Ck::from_hex(ck).unwrap(),
        ik: ikt_keys::Ik::from_hex(ik).unwrap(),
        issued_at_ms: now,
        not_after_ms: now + 60_000,
        algorithm: "AKAv1-MD5".into(),
    };
    ikt_agent::wire::to_wire(&b)
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Resident set size of this process in KiB (Linux).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The lab core (HSS, S-CSCF, I-CSCF, P-CSCF) with both agents and a recording hop between
/// them: UE → P-CSCF → p-cscf-agent → tap → I-CSCF → s-cscf-agent → S-CSCF.
pub struct LabChain {
    /// The lab network.
    pub net: ikt_lab::network::Network,
    /// Subscribers (shared MILENAGE sets 2, 3 and 5).
    pub provisioned: Vec<ikt_lab::hss::Provisioned>,
    /// Realm and lab settings.
    pub lab: ikt_lab::config::LabConfig,
    /// What crossed the path between the agents.
    pub tap: Arc<Tap>,
    _s: s_cscf_agent::run::Agent,
    _p: p_cscf_agent::run::Agent,
    _tap_relay: Relay,
    _pki: Pki,
}

impl LabChain {
    /// Starts the chain with both agents in `mode`.
    pub async fn start(mode: Mode) -> LabChain {
        crate::leaks::init_logging();
        let pki = Pki::new();
        let lab = ikt_lab::config::LabConfig::from_toml("").unwrap();
        let provisioned =
            ikt_lab::hss::parse_provisioning(&subscriber_file(&["2", "3", "5"])).unwrap();
        let hss = Arc::new(ikt_lab::hss::Hss::new(
            provisioned.iter().map(Into::into).collect(),
        ));
        let mut ncfg = ikt_lab::network::NetworkConfig::loopback(lab.clone());
        ncfg.admin = None;
        let core = ikt_lab::network::Network::stage(ncfg, hss).await.unwrap();
        let (p_sip, s_sip, grpc, quic) = (free_addr(), free_addr(), free_addr(), free_addr());
        let peer = if mode == Mode::Quic { quic } else { grpc };
        let s_agent = start_s(&s_config(
            &pki,
            &SOpts::new(mode),
            s_sip,
            core.scscf_addr(),
            peer,
        ))
        .await;
        let edge = core.start_icscf(Some(s_sip)).await.unwrap();
        let (tap_relay, tap) = tap_relay(edge.icscf_addr()).await;
        let p_opts = POpts {
            tcp: false,
            ..POpts::default()
        };
        let p_agent = start_p(&p_config(
            &pki,
            &p_opts,
            p_sip,
            tap_relay.udp_addrs()[0],
            grpc,
            quic,
        ))
        .await;
        let net = edge.start_pcscf(Some(p_sip)).await.unwrap();
        if mode.out_of_band() {
            let deadline = tokio::time::Instant::now() + WAIT;
            while !s_agent.hook.peers().values().all(|p| p.is_up()) {
                assert!(tokio::time::Instant::now() < deadline, "peer never came up");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        LabChain {
            net,
            provisioned,
            lab,
            tap,
            _s: s_agent,
            _p: p_agent,
            _tap_relay: tap_relay,
            _pki: pki,
        }
    }
}
