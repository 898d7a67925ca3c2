//! The load UE: one UDP socket, many registrations in flight, IMS-AKA from the lab library.
//!
//! Each registration is REGISTER → 401 → REGISTER (AKAv1-MD5 digest from RES) → 200, on its own
//! Call-ID, for a subscriber that has no other registration in flight (the S-CSCF keeps one
//! pending challenge per IMPI). A sender thread paces new registrations; a receiver thread
//! timestamps every response the moment `recv_from` returns (monotonic clock), answers 401s at
//! once and, in closed-loop mode, starts the next registration when one completes. Nothing is
//! retransmitted: a registration that gets no answer within the timeout counts as timed out.
//!
//! Only RES is derived from the challenge (MILENAGE f2); AUTN is not verified, because the HSS's
//! SQN moves with every challenge and the UE side would only spend CPU tracking it.

use std::collections::{BTreeMap, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ikt_lab::digest::{self, DigestInput, Qop};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::subscriber::Subscriber;

/// How new registrations are started in a segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Open loop: this many new registrations per second, whatever the chain does.
    Rate(f64),
    /// Closed loop: keep this many registrations in flight (saturation).
    Window(usize),
    /// Send `total` initial REGISTERs, at most `window` awaiting their 401, and never answer
    /// the 401s: their key bundles stay in the p-cscf-agent's store.
    Hold {
        /// Initial REGISTERs to send.
        total: usize,
        /// Most awaiting a 401 at once.
        window: usize,
    },
}

/// What one segment measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outcome {
    /// Registrations started (first REGISTER sent).
    pub started: u64,
    /// Registrations that got their 200.
    pub completed: u64,
    /// Of those, completed before the segment's end (the rate's numerator).
    pub completed_in_window: u64,
    /// 401s received.
    pub challenged: u64,
    /// Registrations ended by another final response (403, 500, 503, ...).
    pub failed: u64,
    /// Registrations with no final answer within the timeout.
    pub timed_out: u64,
    /// 401s that reached the UE with `ck`/`ik` still in them (must stay 0).
    pub keys_seen: u64,
    /// Open-loop starts skipped because every subscriber had a registration in flight.
    pub pool_exhausted: u64,
    /// Responses matching no registration in flight (late or duplicated).
    pub stray: u64,
    /// Final error statuses seen, by code.
    pub statuses: BTreeMap<u16, u64>,
    /// REGISTER sent → 401 received, µs.
    #[serde(skip)]
    pub lat_401_us: Vec<u32>,
    /// First REGISTER sent → 200 received, µs.
    #[serde(skip)]
    pub lat_reg_us: Vec<u32>,
    /// The segment's length (starts allowed), seconds.
    pub window_s: f64,
    /// Including the drain of registrations still in flight, seconds.
    pub elapsed_s: f64,
}

impl Outcome {
    /// Registrations per second completed within the window.
    pub fn rate(&self) -> f64 {
        if self.window_s > 0.0 {
            self.completed_in_window as f64 / self.window_s
        } else {
            0.0
        }
    }

    /// Whether nothing went wrong (no failure, time-out, key leak or stray answer).
    pub fn clean(&self) -> bool {
        self.failed == 0 && self.timed_out == 0 && self.keys_seen == 0 && self.stray == 0
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Await401,
    Await200,
}

#[derive(Clone, Copy)]
struct Flight {
    seq: u32,
    started: Instant,
    phase: Phase,
}

struct State {
    flights: Vec<Option<Flight>>,
    free: VecDeque<usize>,
    in_flight: usize,
    next_seq: u32,
    stopping: bool,
    window_end: Option<Instant>,
    hold_left: usize,
    out: Outcome,
}

/// The load UE bound to its socket.
pub struct LoadUe {
    socket: UdpSocket,
    local: SocketAddr,
    realm: String,
    subs: Arc<Vec<Subscriber>>,
    generation: AtomicU32,
    /// A registration with no final answer after this long counts as timed out.
    pub timeout: Duration,
}

impl std::fmt::Debug for LoadUe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadUe")
            .field("local", &self.local)
            .field("subscribers", &self.subs.len())
            .finish_non_exhaustive()
    }
}

fn parse_call_id(call_id: &str) -> Option<(u32, usize, u32)> {
    let mut it = call_id.strip_prefix("ld.")?.split('.');
    let g = it.next()?.parse().ok()?;
    let s = it.next()?.parse().ok()?;
    let q = it.next()?.parse().ok()?;
    Some((g, s, q))
}

impl LoadUe {
    /// Binds on 127.0.0.1 with a large receive buffer.
    pub fn bind(realm: &str, subs: Arc<Vec<Subscriber>>) -> Result<Self> {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
        // Bursts of answers must not overflow the default ~200 kB buffer.
        let _ = s.set_recv_buffer_size(8 << 20);
        let _ = s.set_send_buffer_size(8 << 20);
        s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
        let socket: UdpSocket = s.into();
        socket.set_read_timeout(Some(Duration::from_millis(10)))?;
        let local = socket.local_addr()?;
        Ok(Self {
            socket,
            local,
            realm: realm.to_string(),
            subs,
            generation: AtomicU32::new(0),
            timeout: Duration::from_secs(3),
        })
    }

    /// The UE's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn register(&self, g: u32, sub: usize, seq: u32, cseq: u32, auth: &str) -> Vec<u8> {
        let s = &self.subs[sub];
        let realm = &self.realm;
        let local = self.local;
        format!(
            "REGISTER sip:{realm} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK-ld{g}.{sub}.{seq}.{cseq};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <{impu}>;tag=ld{sub}x{seq}\r\n\
             To: <{impu}>\r\n\
             Call-ID: ld.{g}.{sub}.{seq}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: <sip:{user}@{local}>;expires=600\r\n\
             Authorization: {auth}\r\n\
             Supported: path\r\n\
             Expires: 600\r\n\
             Content-Length: 0\r\n\r\n",
            impu = s.impu,
            user = s.user,
        )
        .into_bytes()
    }

    fn first_register(&self, g: u32, sub: usize, seq: u32) -> Vec<u8> {
        let s = &self.subs[sub];
        let realm = &self.realm;
        let auth = format!(
            "Digest username=\"{}\", realm=\"{realm}\", uri=\"sip:{realm}\", nonce=\"\", response=\"\"",
            s.impi
        );
        self.register(g, sub, seq, 1, &auth)
    }

    /// The second REGISTER answering the challenge `nonce`, or `None` when the nonce is not
    /// base64 of at least RAND || AUTN.
    fn answer(&self, g: u32, sub: usize, seq: u32, nonce: &str) -> Option<Vec<u8>> {
        let raw = B64.decode(nonce).ok()?;
        let rand: [u8; 16] = raw.get(..16)?.try_into().ok()?;
        let s = &self.subs[sub];
        let keys = s.milenage.f2345(&rand);
        let realm = &self.realm;
        let uri = format!("sip:{realm}");
        let cnonce = format!("{seq:08x}{sub:08x}");
        let response = digest::response(
            &keys.res,
            &DigestInput {
                method: "REGISTER",
                uri: &uri,
                username: &s.impi,
                realm,
                nonce,
                qop: Some((Qop::Auth, "00000001", &cnonce)),
                body: b"",
            },
        );
        let auth = format!(
            "Digest username=\"{}\", realm=\"{realm}\", uri=\"{uri}\", nonce=\"{nonce}\", \
             algorithm=AKAv1-MD5, response=\"{response}\", qop=auth, nc=00000001, cnonce=\"{cnonce}\"",
            s.impi
        );
        Some(self.register(g, sub, seq, 2, &auth))
    }

    /// Starts a registration if a subscriber is free: the bytes to send. Records the start time.
    fn start(&self, st: &mut State, g: u32) -> Option<Vec<u8>> {
        let sub = st.free.pop_front()?;
        let seq = st.next_seq;
        st.next_seq = st.next_seq.wrapping_add(1);
        let bytes = self.first_register(g, sub, seq);
        st.flights[sub] = Some(Flight {
            seq,
            started: Instant::now(),
            phase: Phase::Await401,
        });
        st.in_flight += 1;
        st.out.started += 1;
        Some(bytes)
    }

    fn finish(st: &mut State, sub: usize) {
        if st.flights[sub].take().is_some() {
            st.in_flight -= 1;
            st.free.push_back(sub);
        }
    }

    fn send(&self, bytes: &[u8], to: SocketAddr) {
        // A failed send shows up as a time-out; the socket buffer is large enough that it
        // does not happen at the rates a 2-core machine reaches.
        let _ = self.socket.send_to(bytes, to);
    }

    /// Runs one segment against `target` (a P-CSCF) for `length`, then drains what is in flight.
    pub fn run(&self, target: SocketAddr, pace: Pace, length: Duration) -> Outcome {
        let g = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let n = self.subs.len();
        let state = Mutex::new(State {
            flights: vec![None; n],
            free: (0..n).collect(),
            in_flight: 0,
            next_seq: 0,
            stopping: false,
            window_end: None,
            hold_left: match pace {
                Pace::Hold { total, .. } => total,
                _ => 0,
            },
            out: Outcome::default(),
        });
        let done = AtomicBool::new(false);
        let lock = || {
            state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        // Drain anything left over from an earlier segment.
        let mut scratch = [0u8; 2048];
        while self.socket.recv_from(&mut scratch).is_ok() {}
        let begun = Instant::now();
        std::thread::scope(|scope| {
            scope.spawn(|| self.receive(target, g, pace, &state, &done));
            let window_end = begun + length;
            lock().window_end = Some(window_end);
            let initial = match pace {
                Pace::Window(w) => w.min(n),
                Pace::Hold { window, total } => window.min(n).min(total),
                Pace::Rate(_) => 0,
            };
            for _ in 0..initial {
                let bytes = {
                    let mut st = lock();
                    if let Pace::Hold { .. } = pace {
                        st.hold_left -= 1;
                    }
                    self.start(&mut st, g)
                };
                if let Some(b) = bytes {
                    self.send(&b, target);
                }
            }
            let mut i: u64 = 0;
            let mut last_sweep = Instant::now();
            loop {
                let now = Instant::now();
                let hold_done = matches!(pace, Pace::Hold { .. }) && {
                    let st = lock();
                    st.hold_left == 0 && st.in_flight == 0
                };
                if now >= window_end || hold_done {
                    break;
                }
                if let Pace::Rate(r) = pace {
                    let due = begun + Duration::from_secs_f64(i as f64 / r);
                    if due > now {
                        // Sleeping (not spinning) keeps the UE's CPU off the two cores the
                        // chain needs; the start time is taken at the send, so the timer's
                        // slack shifts starts but not the measured latency.
                        std::thread::sleep(due - now);
                        continue;
                    }
                    i += 1;
                    let bytes = {
                        let mut st = lock();
                        let b = self.start(&mut st, g);
                        if b.is_none() {
                            st.out.pool_exhausted += 1;
                        }
                        b
                    };
                    if let Some(b) = bytes {
                        self.send(&b, target);
                    }
                } else {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if now.duration_since(last_sweep) > Duration::from_millis(100) {
                    last_sweep = now;
                    self.sweep(&mut lock(), pace, g, target);
                }
            }
            lock().stopping = true;
            let drain_until = Instant::now() + self.timeout;
            loop {
                let left = lock().in_flight;
                if left == 0 || Instant::now() >= drain_until {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            let mut st = lock();
            let left = st.in_flight as u64;
            st.out.timed_out += left;
            done.store(true, Ordering::Relaxed);
        });
        let mut st = state
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        st.out.window_s = length.min(begun.elapsed()).as_secs_f64();
        if let Pace::Hold { .. } = pace {
            st.out.window_s = begun.elapsed().as_secs_f64();
        }
        st.out.elapsed_s = begun.elapsed().as_secs_f64();
        st.out
    }

    /// Ends registrations older than the timeout (counted as timed out).
    fn sweep(&self, st: &mut State, pace: Pace, g: u32, target: SocketAddr) {
        let now = Instant::now();
        let old: Vec<usize> = st
            .flights
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                f.filter(|f| now.duration_since(f.started) > self.timeout)
                    .map(|_| i)
            })
            .collect();
        for sub in old {
            Self::finish(st, sub);
            st.out.timed_out += 1;
            if let Pace::Window(_) = pace
                && !st.stopping
                && let Some(b) = self.start(st, g)
            {
                self.send(&b, target);
            }
        }
    }

    fn receive(
        &self,
        target: SocketAddr,
        g: u32,
        pace: Pace,
        state: &Mutex<State>,
        done: &AtomicBool,
    ) {
        let lock = || {
            state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let mut buf = vec![0u8; 65_535];
        while !done.load(Ordering::Relaxed) {
            let Ok((len, _src)) = self.socket.recv_from(&mut buf) else {
                continue;
            };
            let at = Instant::now();
            let Ok(msg) = ikt_sip::scan(&buf[..len]) else {
                lock().out.stray += 1;
                continue;
            };
            let Some(status) = msg.status() else { continue };
            if status < 200 {
                continue;
            }
            let ids = msg
                .call_id()
                .and_then(parse_call_id)
                .filter(|(gg, s, _)| *gg == g && *s < self.subs.len());
            let cseq = msg.cseq().map_or(0, |c| c.num);
            let Some((_, sub, seq)) = ids else {
                lock().out.stray += 1;
                continue;
            };
            let mut send: Option<Vec<u8>> = None;
            let mut answer_nonce: Option<String> = None;
            {
                let mut st = lock();
                let Some(f) = st.flights[sub].filter(|f| f.seq == seq) else {
                    st.out.stray += 1;
                    continue;
                };
                let us =
                    u32::try_from(at.duration_since(f.started).as_micros()).unwrap_or(u32::MAX);
                match (status, cseq, f.phase) {
                    (401, 1, Phase::Await401) => {
                        st.out.challenged += 1;
                        st.out.lat_401_us.push(us);
                        let ch = msg.challenges();
                        if ch.iter().any(|c| c.has_keys()) {
                            st.out.keys_seen += 1;
                        }
                        let nonce = ch
                            .iter()
                            .find_map(|c| c.param("nonce").map(|p| p.value.to_string()));
                        if let Pace::Hold { .. } = pace {
                            Self::finish(&mut st, sub);
                            if st.hold_left > 0 && !st.stopping {
                                st.hold_left -= 1;
                                send = self.start(&mut st, g);
                            }
                        } else {
                            match nonce {
                                Some(n) => {
                                    if let Some(fl) = st.flights[sub].as_mut() {
                                        fl.phase = Phase::Await200;
                                    }
                                    answer_nonce = Some(n);
                                }
                                None => {
                                    st.out.failed += 1;
                                    *st.out.statuses.entry(401).or_default() += 1;
                                    Self::finish(&mut st, sub);
                                }
                            }
                        }
                    }
                    (200..=299, 2, Phase::Await200) => {
                        st.out.completed += 1;
                        if st.window_end.is_some_and(|e| at <= e) {
                            st.out.completed_in_window += 1;
                        }
                        let reg = u32::try_from(at.duration_since(f.started).as_micros())
                            .unwrap_or(u32::MAX);
                        st.out.lat_reg_us.push(reg);
                        Self::finish(&mut st, sub);
                        if let Pace::Window(_) = pace
                            && !st.stopping
                        {
                            send = self.start(&mut st, g);
                        }
                    }
                    _ => {
                        st.out.failed += 1;
                        *st.out.statuses.entry(status).or_default() += 1;
                        Self::finish(&mut st, sub);
                        if let Pace::Window(_) = pace
                            && !st.stopping
                        {
                            send = self.start(&mut st, g);
                        }
                    }
                }
            }
            if let Some(nonce) = answer_nonce {
                match self.answer(g, sub, seq, &nonce) {
                    Some(b) => self.send(&b, target),
                    None => {
                        let mut st = lock();
                        st.out.failed += 1;
                        Self::finish(&mut st, sub);
                    }
                }
            }
            if let Some(b) = send {
                self.send(&b, target);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_round_trip() {
        assert_eq!(parse_call_id("ld.3.17.99"), Some((3, 17, 99)));
        assert_eq!(parse_call_id("pcscf-reg-1"), None);
        assert_eq!(parse_call_id("ld.x.1.2"), None);
    }

    #[test]
    fn registers_scan_and_answer_digest() {
        let (_, subs) = crate::subscriber::generate(2, "ims.example.org").unwrap();
        let ue = LoadUe::bind("ims.example.org", Arc::new(subs)).unwrap();
        let first = ue.first_register(1, 1, 5);
        let m = ikt_sip::scan(&first).unwrap();
        assert_eq!(m.call_id(), Some("ld.1.1.5"));
        assert_eq!(m.cseq().map(|c| c.num), Some(1));
        let nonce = B64.encode([7u8; 32]);
        let second = ue.answer(1, 1, 5, &nonce).unwrap();
        let m2 = ikt_sip::scan(&second).unwrap();
        let cred = m2.credentials();
        let resp = cred[0].param("response").unwrap().value;
        assert_eq!(resp.len(), 32);
        assert!(ue.answer(1, 1, 5, "short").is_none());
    }
}
