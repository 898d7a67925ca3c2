//! Test PKI, receivers with a scripted "agent", and wait helpers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ikt_certs::{AgentCert, Ca, IssueOptions, Validity};
use ikt_transport::quic::StreamMode;
use ikt_transport::{
    Backoff, Delivery, KeyBundle, PeerSender, PeerTable, ReceiverConfig, ReceiverHandle,
    SenderConfig, Status, TlsHandle, TlsSource, grpc, quic,
};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

/// Hang guard for anything awaited in a test; never a performance assertion.
pub const GUARD: Duration = Duration::from_secs(30);

/// The p-side agent id (server) and the s-side agent id (client).
pub const P: &str = "pcscf-1";
/// The s-side agent id.
pub const S: &str = "scscf-1";

/// Which transport a scenario runs on.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// tonic gRPC.
    Grpc,
    /// quinn QUIC with a stream mode.
    Quic(StreamMode),
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn leaf(ca: &Ca, agent: &str) -> AgentCert {
    ca.issue(agent, &IssueOptions::default()).expect("issue")
}

pub fn expired_leaf(ca: &Ca, agent: &str) -> AgentCert {
    ca.issue(
        agent,
        &IssueOptions {
            validity: Validity::Expired,
            loopback_sans: true,
        },
    )
    .expect("issue")
}

/// In-memory TLS handle: `cert` presented, `trust` as CA, `peers` authorised.
pub fn tls(cert: &AgentCert, trust: &Ca, peers: &[&str]) -> TlsHandle {
    TlsHandle::new(
        provider(),
        TlsSource::Pem {
            cert: cert.cert_pem.clone(),
            key: Zeroizing::new(cert.key_pem().to_owned()),
            ca: trust.cert_pem().to_owned(),
        },
        PeerTable::new(peers.iter().copied()).expect("peers"),
    )
    .expect("tls handle")
}

pub fn bundle(nonce: &str) -> KeyBundle {
    let mut b = KeyBundle::default();
    b.realm = "ims.example".into();
    b.nonce = nonce.into();
    b.call_id = format!("{nonce}@ue");
    b.cseq = 1;
    b.impi = "alice@ims.example".into();
    b.impu = "sip:alice@ims.example".into();
    b.ck = vec![0xc1; 16];
    b.ik = vec![0x1c; 16];
    b.algorithm = "AKAv1-MD5".into();
    b
}

pub fn receiver_config(listen: SocketAddr) -> ReceiverConfig {
    let mut c = ReceiverConfig::new(listen);
    c.handshake_timeout = Duration::from_secs(10);
    c
}

pub async fn serve(
    kind: Kind,
    cfg: ReceiverConfig,
    tls: TlsHandle,
) -> (ReceiverHandle, mpsc::Receiver<Delivery>) {
    match kind {
        Kind::Grpc => grpc::serve(cfg, tls).await.expect("serve grpc"),
        Kind::Quic(_) => quic::serve(cfg, tls).await.expect("serve quic"),
    }
}

/// Serves on `addr`, retrying while the previous socket on that port is still going away.
pub async fn serve_again(
    kind: Kind,
    addr: SocketAddr,
    tls: TlsHandle,
) -> (ReceiverHandle, mpsc::Receiver<Delivery>) {
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        let r = match kind {
            Kind::Grpc => grpc::serve(receiver_config(addr), tls.clone()).await,
            Kind::Quic(_) => quic::serve(receiver_config(addr), tls.clone()).await,
        };
        match r {
            Ok(x) => return x,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("rebind {addr}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("rebind {addr}: {e}"),
        }
    }
}

pub fn sender_config(addr: SocketAddr) -> SenderConfig {
    let mut c = SenderConfig::new(P, addr);
    c.backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
    };
    c.connect_timeout = Duration::from_secs(10);
    c
}

pub fn connect(kind: Kind, cfg: SenderConfig, tls: TlsHandle) -> PeerSender {
    match kind {
        Kind::Grpc => grpc::connect(cfg, tls),
        Kind::Quic(mode) => quic::connect(cfg, tls, mode).expect("quic sender"),
    }
}

/// A scripted p-side agent with a store that outlives receivers (as the agent's store would):
/// new nonce -> STORED, same nonce and keys -> DUPLICATE, different keys -> REJECTED.
#[derive(Clone, Default)]
pub struct Agent {
    /// nonce -> ck of stored bundles.
    pub store: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    /// Every (nonce, seq) handed to the agent, in arrival order, per receiver generation.
    pub seen: Arc<Mutex<Vec<(String, u64)>>>,
}

impl Agent {
    /// Answers deliveries until the channel closes; nonces starting with `hold-` are stored but
    /// never answered (their responders are parked until the receiver goes away).
    pub fn run(&self, mut rx: mpsc::Receiver<Delivery>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut parked = Vec::new();
            while let Some(d) = rx.recv().await {
                let nonce = d.bundle.nonce.clone();
                me.seen
                    .lock()
                    .expect("seen")
                    .push((nonce.clone(), d.bundle.seq));
                let verdict = {
                    let mut store = me.store.lock().expect("store");
                    match store.get(&nonce) {
                        None => {
                            store.insert(nonce.clone(), d.bundle.ck.clone());
                            Status::Stored
                        }
                        Some(ck) if *ck == d.bundle.ck => Status::Duplicate,
                        Some(_) => Status::Rejected,
                    }
                };
                if nonce.starts_with("hold-") && verdict == Status::Stored {
                    parked.push(d.responder);
                    continue;
                }
                d.responder.respond(
                    verdict,
                    if verdict == Status::Rejected {
                        "different keys"
                    } else {
                        ""
                    },
                );
            }
            // Parked responders drop here with the channel: answered REJECTED into a dead stream.
            drop(parked);
        })
    }

    pub fn seen_nonces(&self) -> Vec<String> {
        self.seen
            .lock()
            .expect("seen")
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// Polls `f` every 20 ms until it holds; panics after [`GUARD`].
pub async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + GUARD;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).expect("random");
        let p = std::env::temp_dir().join(format!(
            "ikt-{tag}-{}-{:x}",
            std::process::id(),
            u64::from_le_bytes(r)
        ));
        std::fs::create_dir_all(&p).expect("mkdir");
        Self(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `cert`/`key`/`ca` PEM files for `agent` into `dir`, replacing old ones.
pub fn write_files(dir: &Path, agent: &AgentCert, ca: &Ca) -> TlsSource {
    let cert = dir.join(format!("{}.pem", agent.agent));
    let key = dir.join(format!("{}.key", agent.agent));
    let ca_path = dir.join("ca.pem");
    std::fs::write(&cert, &agent.cert_pem).expect("write cert");
    std::fs::write(&key, agent.key_pem()).expect("write key");
    std::fs::write(&ca_path, ca.cert_pem()).expect("write ca");
    TlsSource::Files {
        cert,
        key,
        ca: ca_path,
    }
}
