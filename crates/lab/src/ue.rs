//! UE: registers with IMS-AKA through a P-CSCF (empty-response Authorization first, then the
//! AKAv1-MD5 digest), verifies AUTN, answers an SQN failure with AUTS, subscribes to its reg
//! event and follows network-initiated re-authentication. Can run with a wrong K.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ikt_sip::{HeaderName, Message};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, watch};

use crate::Error;
use crate::aka::{Outcome, Usim};
use crate::challenge;
use crate::compose::{self, Builder};
use crate::digest::{self, DigestInput, Qop};
use crate::hss::{OperatorKey, Provisioned};
use crate::milenage::Milenage;
use crate::reginfo;
use crate::secret::{self, Ck, Ik, K};
use crate::via;

/// How to build a UE.
#[derive(Debug, Clone)]
pub struct UeConfig {
    /// Private identity (digest username).
    pub impi: String,
    /// Public identity to register.
    pub impu: String,
    /// Subscriber key K (give a wrong one to exercise the failed-attempt policy).
    pub k: K,
    /// OP or OPc.
    pub operator_key: OperatorKey,
    /// Highest SQN the USIM has accepted.
    pub sqn_ms: u64,
    /// Realm (the REGISTER's Request-URI domain and digest realm).
    pub realm: String,
    /// The P-CSCF's address.
    pub pcscf: SocketAddr,
    /// Local address to bind (port 0 picks one).
    pub bind: SocketAddr,
    /// Expires to ask for.
    pub expires: u32,
    /// qop to answer with when offered.
    pub qop: Qop,
    /// Whether to subscribe to the reg event after registering.
    pub subscribe: bool,
}

/// Something the UE observed; tests and the demo wait on these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UeEvent {
    /// A 401 with an AKA challenge arrived.
    Challenged,
    /// AUTN's MAC did not verify (wrong K, or a false network): an empty response was sent.
    MacFailure,
    /// AUTN's SQN was not fresh: AUTS was sent.
    ResyncSent,
    /// 200 to a REGISTER: registered with keys of this fingerprint.
    Registered {
        /// First 8 hex of SHA-256(CK || IK).
        fingerprint: String,
        /// Granted expiry.
        expires: u32,
        /// From the first REGISTER of this registration to its 200 (monotonic clock).
        took: Duration,
    },
    /// 200 to a de-registration.
    Deregistered,
    /// 200 to the reg-event SUBSCRIBE.
    Subscribed,
    /// NOTIFY `event="shortened"`: the network asked for re-authentication; re-registering.
    Shortened,
    /// NOTIFY with the registration terminated (contact event given).
    NetworkDeregistered(String),
    /// A final error response to a REGISTER (403, 503, ...).
    Rejected(u16),
}

/// Counters and facts a UE reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UeStatus {
    /// Currently registered.
    pub registered: bool,
    /// AKA challenges received.
    pub challenges: u32,
    /// 401s that arrived with ck or ik still in them (must stay 0 behind a P-CSCF).
    pub keys_seen_in_401: u32,
    /// Fingerprint of the keys of the current registration.
    pub fingerprint: Option<String>,
    /// The reg-event subscription is in place.
    pub subscribed: bool,
}

enum Cmd {
    Register,
    Deregister,
    SetK(K),
}

/// A running UE (its task stops when the handle is dropped or on `shutdown`).
#[derive(Debug)]
pub struct Ue {
    cmd: mpsc::Sender<Cmd>,
    events: broadcast::Sender<UeEvent>,
    status: Arc<Mutex<UeStatus>>,
    addr: SocketAddr,
    impi: String,
    subscribe: bool,
    _stop: watch::Sender<bool>,
}

/// RFC 3261 T1: the first retransmission interval of a request over UDP.
const T1: Duration = Duration::from_millis(500);
/// T2: the cap of the retransmission interval.
const T2: Duration = Duration::from_secs(4);
/// Retransmissions before giving up (500 ms doubling to 4 s: about 32 s, Timer F).
const MAX_RETRANSMISSIONS: u32 = 10;

/// A REGISTER awaiting its final response (retransmitted until one arrives).
struct Outstanding {
    bytes: Vec<u8>,
    cseq: u32,
    next: Instant,
    interval: Duration,
    tries: u32,
}

struct Task {
    cfg: UeConfig,
    socket: UdpSocket,
    addr: SocketAddr,
    usim: Usim,
    call_id: String,
    tag: String,
    cseq: u32,
    deregistering: bool,
    pending: Option<(Ck, Ik)>,
    subscribed: bool,
    sub_call_id: String,
    outstanding: Option<Outstanding>,
    reg_started: Option<Instant>,
    refresh_at: Option<Instant>,
    events: broadcast::Sender<UeEvent>,
    status: Arc<Mutex<UeStatus>>,
}

fn milenage(k: &K, key: &OperatorKey) -> Milenage {
    key.milenage(k)
}

impl UeConfig {
    /// A UE for a provisioned subscription (first IMPU), with the USIM's SQN just below the
    /// HSS's so the first challenge is fresh.
    pub fn from_provisioned(p: &Provisioned, realm: &str, pcscf: SocketAddr) -> Self {
        UeConfig {
            impi: p.impi.clone(),
            impu: p.impus.first().cloned().unwrap_or_default(),
            k: p.k.clone(),
            operator_key: p.operator_key.clone(),
            sqn_ms: p.sqn.saturating_sub(1),
            realm: realm.to_string(),
            pcscf,
            bind: SocketAddr::new(pcscf.ip(), 0),
            expires: 600,
            qop: Qop::Auth,
            subscribe: true,
        }
    }
}

impl Ue {
    /// Binds the UE's socket and starts its task.
    pub async fn spawn(cfg: UeConfig) -> Result<Ue, Error> {
        let socket = UdpSocket::bind(cfg.bind).await?;
        let addr = socket.local_addr()?;
        let (cmd_tx, cmd_rx) = mpsc::channel(16);
        let (events, _) = broadcast::channel(256);
        let status = Arc::new(Mutex::new(UeStatus::default()));
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = Task {
            usim: Usim::new(
                milenage(&cfg.k, &cfg.operator_key),
                cfg.sqn_ms,
                Usim::DEFAULT_DELTA,
            ),
            call_id: format!("ue-{}", compose::token()),
            tag: compose::token(),
            cseq: 0,
            deregistering: false,
            pending: None,
            subscribed: false,
            sub_call_id: format!("ue-reg-{}", compose::token()),
            outstanding: None,
            reg_started: None,
            refresh_at: None,
            events: events.clone(),
            status: status.clone(),
            socket,
            addr,
            cfg: cfg.clone(),
        };
        tokio::spawn(task.run(cmd_rx, stop_rx));
        Ok(Ue {
            cmd: cmd_tx,
            events,
            status,
            addr,
            impi: cfg.impi,
            subscribe: cfg.subscribe,
            _stop: stop_tx,
        })
    }

    /// The UE's SIP address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its IMPI.
    pub fn impi(&self) -> &str {
        &self.impi
    }

    /// Subscribes to events (subscribe before triggering what you wait for).
    pub fn events(&self) -> broadcast::Receiver<UeEvent> {
        self.events.subscribe()
    }

    /// Current status.
    pub fn status(&self) -> UeStatus {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Fingerprint of the keys of the current registration.
    pub fn fingerprint(&self) -> Option<String> {
        self.status().fingerprint
    }

    /// Starts a registration.
    pub async fn register(&self) -> Result<(), Error> {
        self.cmd
            .send(Cmd::Register)
            .await
            .map_err(|_| Error::Stopped)
    }

    /// Starts a de-registration (expires=0).
    pub async fn deregister(&self) -> Result<(), Error> {
        self.cmd
            .send(Cmd::Deregister)
            .await
            .map_err(|_| Error::Stopped)
    }

    /// Replaces K (e.g. with a wrong one to exercise the failed-attempt policy).
    pub async fn set_k(&self, k: K) -> Result<(), Error> {
        self.cmd
            .send(Cmd::SetK(k))
            .await
            .map_err(|_| Error::Stopped)
    }

    /// Registers and waits for the outcome: `Registered`, or `Rejected`/`NetworkDeregistered`
    /// after failed attempts; `Error::Timeout` when nothing final arrives within `limit`.
    pub async fn register_and_wait(&self, limit: Duration) -> Result<UeEvent, Error> {
        let mut rx = self.events();
        self.register().await?;
        let outcome = wait_for(&mut rx, limit, |e| {
            matches!(e, UeEvent::Registered { .. } | UeEvent::Rejected(_))
        })
        .await?;
        // A caller that goes on to trigger re-authentication needs the reg-event subscription
        // in place, so a first registration also waits for it.
        if matches!(outcome, UeEvent::Registered { .. })
            && self.subscribe
            && !self.status().subscribed
        {
            wait_for(&mut rx, limit, |e| matches!(e, UeEvent::Subscribed)).await?;
        }
        Ok(outcome)
    }
}

/// Waits until an event satisfies `pred` (events before it are skipped).
pub async fn wait_for(
    rx: &mut broadcast::Receiver<UeEvent>,
    limit: Duration,
    mut pred: impl FnMut(&UeEvent) -> bool,
) -> Result<UeEvent, Error> {
    let fut = async {
        loop {
            match rx.recv().await {
                Ok(e) if pred(&e) => return Ok(e),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return Err(Error::Stopped),
            }
        }
    };
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| Error::Timeout)?
}

impl Task {
    async fn run(mut self, mut cmds: mpsc::Receiver<Cmd>, mut stop: watch::Receiver<bool>) {
        let mut buf = vec![0u8; 65_535];
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = tick.tick() => {
                    self.retransmit().await;
                    self.refresh().await;
                }
                c = cmds.recv() => match c {
                    None => break,
                    Some(Cmd::Register) => { self.deregistering = false; self.send_register(None).await; }
                    Some(Cmd::Deregister) => { self.deregistering = true; self.send_register(None).await; }
                    Some(Cmd::SetK(k)) => {
                        self.usim = Usim::new(milenage(&k, &self.cfg.operator_key), self.usim.sqn_ms(), Usim::DEFAULT_DELTA);
                    }
                },
                r = self.socket.recv_from(&mut buf) => {
                    let Ok((n, src)) = r else { continue };
                    let data = buf[..n].to_vec();
                    self.on_datagram(&data, src).await;
                }
            }
        }
    }

    fn emit(&self, e: UeEvent) {
        tracing::debug!(impi = self.cfg.impi, event = ?e, "ue: event");
        let _ = self.events.send(e);
    }

    fn status(&self) -> std::sync::MutexGuard<'_, UeStatus> {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn expires(&self) -> u32 {
        if self.deregistering {
            0
        } else {
            self.cfg.expires
        }
    }

    fn user(&self) -> &str {
        let u = self
            .cfg
            .impu
            .split_once(':')
            .map_or(self.cfg.impu.as_str(), |(_, r)| r);
        u.split('@').next().unwrap_or("ue")
    }

    async fn send(&self, bytes: Vec<u8>, to: SocketAddr) {
        if let Err(e) = self.socket.send_to(&bytes, to).await {
            tracing::warn!(impi = self.cfg.impi, error = %e, "ue: send failed");
        }
    }

    /// Re-registers before the registration runs out (TS 24.229 §5.1.1.4: 600 s before expiry
    /// when it was granted for more than 1200 s, otherwise at half of it).
    async fn refresh(&mut self) {
        if self.refresh_at.is_some_and(|t| t <= Instant::now()) && self.outstanding.is_none() {
            self.refresh_at = None;
            tracing::debug!(impi = self.cfg.impi, "ue: refreshing the registration");
            self.deregistering = false;
            self.send_register(None).await;
        }
    }

    fn schedule_refresh(&mut self, expires: u32) {
        let secs = if expires > 1200 {
            expires - 600
        } else {
            expires / 2
        };
        self.refresh_at =
            (expires > 0).then(|| Instant::now() + Duration::from_secs(u64::from(secs.max(1))));
    }

    async fn retransmit(&mut self) {
        let now = Instant::now();
        let Some(o) = self.outstanding.as_mut().filter(|o| o.next <= now) else {
            return;
        };
        if o.tries >= MAX_RETRANSMISSIONS {
            self.outstanding = None;
            tracing::warn!(
                impi = self.cfg.impi,
                "ue: no response to REGISTER; giving up"
            );
            self.emit(UeEvent::Rejected(408));
            return;
        }
        o.tries += 1;
        o.interval = (o.interval * 2).min(T2);
        o.next = now + o.interval;
        let bytes = o.bytes.clone();
        tracing::debug!(impi = self.cfg.impi, "ue: retransmitting REGISTER");
        self.send(bytes, self.cfg.pcscf).await;
    }

    async fn send_register(&mut self, authorization: Option<String>) {
        if authorization.is_none() {
            self.reg_started = Some(Instant::now());
        }
        self.cseq += 1;
        let realm = &self.cfg.realm;
        let auth = authorization.unwrap_or_else(|| {
            format!("Digest username=\"{}\", realm=\"{realm}\", uri=\"sip:{realm}\", nonce=\"\", response=\"\"", self.cfg.impi)
        });
        let e = self.expires();
        let bytes = Builder::request("REGISTER", &format!("sip:{realm}"))
            .header(
                "Via",
                &format!(
                    "SIP/2.0/UDP {};branch={};rport",
                    self.addr,
                    via::new_branch()
                ),
            )
            .header("Max-Forwards", "70")
            .header("From", &format!("<{}>;tag={}", self.cfg.impu, self.tag))
            .header("To", &format!("<{}>", self.cfg.impu))
            .header("Call-ID", &self.call_id)
            .header("CSeq", &format!("{} REGISTER", self.cseq))
            .header(
                "Contact",
                &format!("<sip:{}@{}>;expires={e}", self.user(), self.addr),
            )
            .header("Authorization", &auth)
            .header("Supported", "path")
            .header("Expires", &e.to_string())
            .finish();
        self.outstanding = Some(Outstanding {
            bytes: bytes.clone(),
            cseq: self.cseq,
            next: Instant::now() + T1,
            interval: T1,
            tries: 0,
        });
        self.send(bytes, self.cfg.pcscf).await;
    }

    async fn send_subscribe(&mut self) {
        self.cseq += 1;
        let bytes = Builder::request("SUBSCRIBE", &self.cfg.impu)
            .header(
                "Via",
                &format!(
                    "SIP/2.0/UDP {};branch={};rport",
                    self.addr,
                    via::new_branch()
                ),
            )
            .header("Max-Forwards", "70")
            .header("From", &format!("<{}>;tag={}", self.cfg.impu, self.tag))
            .header("To", &format!("<{}>", self.cfg.impu))
            .header("Call-ID", &self.sub_call_id)
            .header("CSeq", &format!("{} SUBSCRIBE", self.cseq))
            .header("Contact", &format!("<sip:{}@{}>", self.user(), self.addr))
            .header("Event", "reg")
            .header("Expires", &self.cfg.expires.to_string())
            .finish();
        self.send(bytes, self.cfg.pcscf).await;
    }

    async fn on_datagram(&mut self, data: &[u8], src: SocketAddr) {
        let Ok(msg) = ikt_sip::scan(data) else { return };
        if msg.method() == Some("NOTIFY") {
            self.on_notify(&msg, src).await;
            return;
        }
        if msg.is_request() {
            return;
        }
        let Some(cseq) = msg.cseq() else { return };
        let status = msg.status().unwrap_or(0);
        if cseq.method == "REGISTER" {
            match &self.outstanding {
                Some(o) if o.cseq == cseq.num && status >= 200 => self.outstanding = None,
                // A response to an older REGISTER (a late answer to a retransmission): ignore.
                _ if status >= 200 => return,
                _ => {}
            }
        }
        match (cseq.method, status) {
            ("SUBSCRIBE", 200..=299) => {
                self.subscribed = true;
                self.status().subscribed = true;
                self.emit(UeEvent::Subscribed);
            }
            ("REGISTER", 401) => self.on_challenge(&msg).await,
            ("REGISTER", 200..=299) => self.on_ok(&msg).await,
            ("REGISTER", 300..) => {
                self.status().registered = false;
                self.refresh_at = None;
                self.emit(UeEvent::Rejected(status));
            }
            _ => {}
        }
    }

    async fn on_challenge(&mut self, msg: &Message<'_>) {
        let Some(d) = msg
            .headers_named(HeaderName::WwwAuthenticate)
            .find_map(|h| challenge::parse(msg.value(h)))
        else {
            return;
        };
        {
            let mut st = self.status();
            st.challenges += 1;
            if d.param("ck").is_some() || d.param("ik").is_some() {
                st.keys_seen_in_401 += 1;
            }
        }
        self.emit(UeEvent::Challenged);
        let nonce = d.param("nonce").unwrap_or("").to_string();
        let realm = d.param("realm").unwrap_or(&self.cfg.realm).to_string();
        let raw = B64.decode(&nonce).unwrap_or_default();
        if raw.len() < 32 {
            tracing::warn!(impi = self.cfg.impi, "ue: nonce too short for RAND||AUTN");
            self.emit(UeEvent::Rejected(401));
            return;
        }
        let mut rand = [0u8; 16];
        let mut autn = [0u8; 16];
        rand.copy_from_slice(&raw[..16]);
        autn.copy_from_slice(&raw[16..32]);
        let uri = format!("sip:{}", self.cfg.realm);
        let base = format!(
            "Digest username=\"{}\", realm=\"{realm}\", uri=\"{uri}\", nonce=\"{nonce}\", algorithm=AKAv1-MD5",
            self.cfg.impi
        );
        let auth = match self.usim.authenticate(&rand, &autn) {
            Outcome::Ok { res, ck, ik } => {
                let offered: Vec<Qop> = d
                    .param("qop")
                    .map(|q| q.split(',').filter_map(|t| Qop::parse(t.trim())).collect())
                    .unwrap_or_default();
                let qop = if offered.contains(&self.cfg.qop) {
                    Some(self.cfg.qop)
                } else {
                    offered.first().copied()
                };
                let cnonce = compose::token();
                // The REGISTER we are about to send has no body, and auth-int covers that empty body.
                let input = DigestInput {
                    method: "REGISTER",
                    uri: &uri,
                    username: &self.cfg.impi,
                    realm: &realm,
                    nonce: &nonce,
                    qop: qop.map(|q| (q, "00000001", cnonce.as_str())),
                    body: b"",
                };
                let response = digest::response(&res, &input);
                self.pending = Some((ck, ik));
                match qop {
                    Some(q) => format!(
                        "{base}, response=\"{response}\", qop={}, nc=00000001, cnonce=\"{cnonce}\"",
                        q.as_str()
                    ),
                    None => format!("{base}, response=\"{response}\""),
                }
            }
            Outcome::SyncFailure { auts } => {
                self.emit(UeEvent::ResyncSent);
                tracing::info!(impi = self.cfg.impi, "ue: SQN out of range; sending AUTS");
                format!("{base}, response=\"\", auts=\"{}\"", B64.encode(auts))
            }
            Outcome::MacFailure => {
                self.emit(UeEvent::MacFailure);
                tracing::info!(
                    impi = self.cfg.impi,
                    "ue: AUTN MAC failure; sending an empty response"
                );
                format!("{base}, response=\"\"")
            }
        };
        self.send_register(Some(auth)).await;
    }

    async fn on_ok(&mut self, msg: &Message<'_>) {
        if self.deregistering {
            {
                let mut st = self.status();
                st.registered = false;
                st.fingerprint = None;
            }
            self.subscribed = false;
            self.status().subscribed = false;
            self.refresh_at = None;
            self.emit(UeEvent::Deregistered);
            return;
        }
        let expires = msg
            .contacts()
            .first()
            .and_then(|c| c.expires())
            .or_else(|| msg.expires())
            .unwrap_or(self.cfg.expires);
        let fp = self
            .pending
            .take()
            .map(|(ck, ik)| secret::fingerprint(&ck, &ik));
        let fingerprint = {
            let mut st = self.status();
            st.registered = true;
            if fp.is_some() {
                st.fingerprint = fp;
            }
            st.fingerprint.clone().unwrap_or_default()
        };
        tracing::info!(impi = self.cfg.impi, fingerprint, expires, "ue: registered");
        self.schedule_refresh(expires);
        let took = self.reg_started.map_or(Duration::ZERO, |t| t.elapsed());
        self.emit(UeEvent::Registered {
            fingerprint,
            expires,
            took,
        });
        if self.cfg.subscribe && !self.subscribed {
            self.send_subscribe().await;
        }
    }

    async fn on_notify(&mut self, msg: &Message<'_>, src: SocketAddr) {
        let target = via::top(msg)
            .and_then(|v| v.response_target())
            .unwrap_or(src);
        self.send(
            Builder::reply(msg, 200, "OK", &compose::token()).finish(),
            target,
        )
        .await;
        let regs = reginfo::read(&String::from_utf8_lossy(msg.body()));
        let mine: Vec<&reginfo::ContactInfo> = regs
            .iter()
            .filter(|r| r.aor == self.cfg.impu)
            .flat_map(|r| r.contacts.iter())
            .collect();
        let contacts = if mine.is_empty() {
            regs.iter().flat_map(|r| r.contacts.iter()).collect()
        } else {
            mine
        };
        let Some(c) = contacts.first() else { return };
        if c.event == "shortened" {
            self.emit(UeEvent::Shortened);
            tracing::info!(
                impi = self.cfg.impi,
                "ue: registration shortened by the network; re-registering"
            );
            self.deregistering = false;
            self.send_register(None).await;
        } else if c.state == "terminated" {
            {
                let mut st = self.status();
                st.registered = false;
                st.fingerprint = None;
            }
            self.subscribed = false;
            self.status().subscribed = false;
            self.refresh_at = None;
            self.emit(UeEvent::NetworkDeregistered(c.event.clone()));
        }
    }
}
