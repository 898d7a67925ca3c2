//! The stateless proxy logic (RFC 3261 §16.11): one call per received message, from scan to send.
//!
//! Everything here is synchronous: sending a datagram is a non-blocking `try_send_to`, sending on
//! TCP pushes onto the connection's bounded queue. A message therefore stays on the task that
//! received it until it leaves (DESIGN §9), and nothing here can stall on a slow peer.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ikt_sip::{HeaderName, Message, StartLine};
use tokio::net::UdpSocket;
use tracing::debug;

use crate::branch::{self, BranchInput};
use crate::config::{NextHop, Transport};
use crate::hook::{ConnId, Direction, Held, Hook, Inbound, Verdict};
use crate::response::response_to;
use crate::shutdown::Shutdown;
use crate::stats::{DropReason, Stats};
use crate::tcp::TcpConns;
use crate::uri;

/// Via parameter naming the TCP connection a request arrived on, so its response can go back
/// on the same connection without the relay keeping any per-transaction state.
pub(crate) const CONN_PARAM: &str = "ikt-cid";

/// Host-name lookups allowed in flight at once; beyond that, messages are dropped (NoRoute).
const MAX_RESOLVING: usize = 64;

/// How long one host-name lookup may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a message came from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Origin {
    pub transport: Transport,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub conn: Option<ConnId>,
    /// Index of the receiving socket in `Core::udp` (UDP only).
    pub udp: usize,
}

/// One bound UDP socket and the sent-by we advertise for it.
pub(crate) struct UdpSide {
    pub sock: Arc<UdpSocket>,
    pub local: SocketAddr,
    pub sent_by: String,
}

/// One TCP listener's sent-by.
pub(crate) struct TcpSide {
    pub local: SocketAddr,
    pub sent_by: String,
}

/// A host:port this relay answers to (lower-case host without IPv6 brackets).
struct Name {
    host: String,
    port: Option<u16>,
}

/// Shared state of one relay.
pub(crate) struct Core {
    pub stats: Arc<Stats>,
    pub hook: Arc<dyn Hook>,
    pub limits: ikt_sip::Limits,
    pub next_hop: Option<NextHop>,
    pub via_params: String,
    pub udp: Vec<UdpSide>,
    pub tcp_sides: Vec<TcpSide>,
    names: Vec<Name>,
    pub tcp: TcpConns,
    pub shutdown: Shutdown,
    held_now: AtomicUsize,
    max_held: usize,
    /// Host-name resolutions in flight (bounded like everything else).
    resolving: AtomicUsize,
    max_hold: Duration,
}

/// Where to send an outgoing message.
enum Dest {
    Addr(SocketAddr),
    /// A host name still to be resolved (off the receiving task).
    Name(String, u16),
}

fn strip_brackets(h: &str) -> &str {
    h.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(h)
}

impl Core {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: &crate::Config,
        via_params: String,
        hook: Arc<dyn Hook>,
        udp: Vec<UdpSide>,
        tcp_sides: Vec<TcpSide>,
        shutdown: Shutdown,
    ) -> Core {
        let mut names: Vec<Name> = Vec::new();
        for side in udp
            .iter()
            .map(|u| (&u.sent_by, u.local))
            .chain(tcp_sides.iter().map(|t| (&t.sent_by, t.local)))
        {
            let (host, port) = split_host_port(side.0);
            names.push(Name {
                host: host.to_ascii_lowercase(),
                port,
            });
            names.push(Name {
                host: side.1.ip().to_string(),
                port: Some(side.1.port()),
            });
        }
        for alias in &config.aliases {
            let (host, port) = split_host_port(alias);
            names.push(Name {
                host: host.to_ascii_lowercase(),
                port,
            });
        }
        Core {
            stats: Arc::new(Stats::default()),
            hook,
            limits: config.limits,
            next_hop: config.next_hop,
            via_params,
            udp,
            tcp_sides,
            names,
            tcp: TcpConns::new(config),
            shutdown,
            held_now: AtomicUsize::new(0),
            resolving: AtomicUsize::new(0),
            max_held: config.max_held,
            max_hold: config.max_hold,
        }
    }

    /// Whether `host`/`port` (as in a Via sent-by or a Route URI) names this relay.
    fn is_us(&self, host: &str, port: Option<u16>, default_port: u16) -> bool {
        let host = strip_brackets(host);
        let port = port.unwrap_or(default_port);
        self.names
            .iter()
            .any(|n| n.host.eq_ignore_ascii_case(host) && n.port.unwrap_or(default_port) == port)
    }

    /// Entry point for every received message; `out` is a reusable output buffer.
    ///
    /// A panic while handling one message (a bug in a hook, say) is caught and counted, so it
    /// cannot take the socket's receive loop, and with it all other traffic, down.
    pub(crate) fn receive(self: &Arc<Self>, bytes: &[u8], origin: &Origin, out: &mut Vec<u8>) {
        let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.on_message(bytes, origin, out);
        }));
        if handled.is_err() {
            tracing::error!(peer = %origin.peer, "handling a message panicked; message dropped");
            self.stats.dropped(DropReason::Panic);
            out.clear();
        }
    }

    fn on_message(self: &Arc<Self>, bytes: &[u8], origin: &Origin, out: &mut Vec<u8>) {
        let msg = match ikt_sip::scan_with(bytes, &self.limits) {
            Ok(m) => m,
            Err(e) => {
                debug!(peer = %origin.peer, error = %e, "dropping unparsable message");
                self.stats.dropped(DropReason::Malformed);
                return;
            }
        };
        let request = msg.is_request();
        self.stats.received(request);
        if !request && !self.top_via_is_ours(&msg) {
            debug!(peer = %origin.peer, call_id = msg.call_id().unwrap_or(""), "response whose top Via is not ours");
            self.stats.dropped(DropReason::NotOurVia);
            return;
        }
        let inbound = Inbound {
            message: &msg,
            direction: if request {
                Direction::Request
            } else {
                Direction::Response
            },
            transport: origin.transport,
            peer: origin.peer,
            local: origin.local,
            conn: origin.conn,
        };
        let verdict = if request {
            self.hook.on_request(&inbound)
        } else {
            self.hook.on_response(&inbound)
        };
        match verdict {
            Verdict::Hold(held) => self.hold(held, bytes.to_vec(), *origin),
            other => self.apply(other, &msg, origin, out),
        }
    }

    fn top_via_is_ours(&self, msg: &Message<'_>) -> bool {
        msg.top_via().is_some_and(|v| {
            let default = if v.transport().eq_ignore_ascii_case("tls") {
                5061
            } else {
                5060
            };
            self.is_us(v.host(), v.port(), default)
        })
    }

    /// Carries out a non-hold verdict for `msg`.
    fn apply(
        self: &Arc<Self>,
        verdict: Verdict,
        msg: &Message<'_>,
        origin: &Origin,
        out: &mut Vec<u8>,
    ) {
        let request = msg.is_request();
        match verdict {
            Verdict::Pass if request => self.forward_request(msg, origin, out),
            Verdict::Pass => self.forward_response(msg, out),
            Verdict::Replace(new) => self.forward_replacement(&new, request, origin, out),
            Verdict::Answer(new) if request => self.answer(msg, new, origin),
            Verdict::Answer(new) => self.forward_replacement(&new, false, origin, out),
            Verdict::Drop => self.stats.dropped(DropReason::Hook),
            Verdict::Hold(held) => self.hold(held, msg.bytes().to_vec(), *origin),
        }
    }

    fn forward_replacement(
        self: &Arc<Self>,
        new: &[u8],
        request: bool,
        origin: &Origin,
        out: &mut Vec<u8>,
    ) {
        match ikt_sip::scan_with(new, &self.limits) {
            Ok(m) if m.is_request() == request => {
                if request {
                    self.forward_request(&m, origin, out);
                } else if self.top_via_is_ours(&m) {
                    self.forward_response(&m, out);
                } else {
                    debug!("hook replaced a response and removed our Via");
                    self.stats.dropped(DropReason::NotOurVia);
                }
            }
            _ => {
                debug!("hook returned bytes that are not a SIP message of the same kind");
                self.stats.dropped(DropReason::Malformed);
            }
        }
    }

    /// Parks a message whose hook returned `Verdict::Hold`; other traffic is not affected.
    fn hold(self: &Arc<Self>, held: Held, bytes: Vec<u8>, origin: Origin) {
        if self.held_now.fetch_add(1, Ordering::AcqRel) >= self.max_held {
            self.held_now.fetch_sub(1, Ordering::AcqRel);
            self.stats.dropped(DropReason::HoldOverflow);
            return;
        }
        self.stats.held();
        let core = Arc::clone(self);
        tokio::spawn(async move {
            let verdict = {
                // Frees the slot even if the hook's future panics.
                let _slot = HeldSlot(&core.held_now);
                core.wait_held(held).await
            };
            let verdict = match verdict {
                Ok(v) => v,
                Err(reason) => {
                    core.stats.dropped(reason);
                    return;
                }
            };
            core.stats.released();
            let applied =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(
                    || match ikt_sip::scan_with(&bytes, &core.limits) {
                        Ok(msg) => core.apply(verdict, &msg, &origin, &mut Vec::new()),
                        Err(_) => core.stats.dropped(DropReason::Malformed),
                    },
                ));
            if applied.is_err() {
                tracing::error!("applying a held verdict panicked; message dropped");
                core.stats.dropped(DropReason::Panic);
            }
        });
    }

    async fn wait_held(&self, mut held: Held) -> Result<Verdict, DropReason> {
        let deadline = tokio::time::Instant::now() + self.max_hold;
        loop {
            let next = tokio::select! {
                biased;
                () = self.shutdown.triggered() => return Err(DropReason::Shutdown),
                r = tokio::time::timeout_at(deadline, held.wait()) => r.map_err(|_| DropReason::HoldTimeout)?,
            };
            match next {
                Some(Verdict::Hold(h)) => held = h,
                Some(v) => return Ok(v),
                None => return Err(DropReason::HoldAbandoned),
            }
        }
    }

    /// Sends a response to `request` back toward its sender (hooks' answers, 483, 400).
    fn answer(&self, request: &Message<'_>, response: Vec<u8>, origin: &Origin) {
        self.stats.answered();
        match origin.transport {
            Transport::Tcp => {
                let sent = match origin.conn {
                    Some(id) => self.tcp.send_on(id, response),
                    None => Err(DropReason::SendError),
                };
                if let Err(reason) = sent {
                    self.stats.dropped(reason);
                }
            }
            Transport::Udp => {
                // RFC 3261 §18.2.2 and RFC 3581: the source IP, and the source port if rport asked.
                let via = request.top_via();
                let port = match via.as_ref().and_then(|v| v.rport()) {
                    Some(_) => origin.peer.port(),
                    None => via.and_then(|v| v.port()).unwrap_or(5060),
                };
                let dest = SocketAddr::new(origin.peer.ip(), port);
                let sock = &self.udp[origin.udp].sock;
                if let Err(reason) = udp_send(sock, &response, dest) {
                    self.stats.dropped(reason);
                }
            }
        }
    }

    fn forward_request(self: &Arc<Self>, msg: &Message<'_>, origin: &Origin, out: &mut Vec<u8>) {
        let bytes = msg.bytes();
        // Max-Forwards (RFC 3261 §16.6 step 3).
        let mf_header = msg.header(HeaderName::MaxForwards);
        let mf = match (mf_header, msg.max_forwards()) {
            (None, _) => None,
            (Some(h), Some(n)) => Some((h.value_range.clone(), n)),
            (Some(_), None) => {
                let r = response_to(msg, 400, "Bad Max-Forwards", &[]);
                self.answer(msg, r, origin);
                return;
            }
        };
        if let Some((_, 0)) = mf {
            self.stats.too_many_hops();
            let r = response_to(msg, 483, "Too Many Hops", &[]);
            self.answer(msg, r, origin);
            return;
        }

        // Route (RFC 3261 §16.4 and §16.6 step 6): pop a Route naming us, follow the next one.
        let routes = route_values(msg);
        let mut pop: Option<std::ops::Range<usize>> = None;
        let mut next_route = routes.first();
        if let Some(first) = routes.first()
            && let Some(u) = uri::parse(&text(bytes, &first.value))
            && self.is_us(u.host, u.port, u.port_or_default())
        {
            pop = Some(first.removal.clone());
            next_route = routes.get(1);
        }
        let target = match next_route {
            Some(r) => uri::parse(&text(bytes, &r.value)).map(|u| {
                (
                    dest_of(u.host, u.port_or_default()),
                    u.transport.unwrap_or(self.default_transport()),
                )
            }),
            None => match self.next_hop {
                Some(h) => Some((Dest::Addr(h.addr), h.transport.unwrap_or(origin.transport))),
                None => match msg.start_line() {
                    StartLine::Request { uri, .. } => uri::parse(uri)
                        .filter(|u| !self.is_us(u.host, u.port, u.port_or_default()))
                        .map(|u| {
                            (
                                dest_of(u.host, u.port_or_default()),
                                u.transport.unwrap_or(self.default_transport()),
                            )
                        }),
                    StartLine::Response { .. } => None,
                },
            },
        };
        let Some((dest, transport)) = target else {
            debug!(
                call_id = msg.call_id().unwrap_or(""),
                "no route for request"
            );
            self.stats.dropped(DropReason::NoRoute);
            return;
        };

        // Our Via: transport and sent-by of the socket the request will leave from.
        let family_v4 = match &dest {
            Dest::Addr(a) => Some(a.is_ipv4()),
            Dest::Name(..) => None,
        };
        let (udp_index, sent_by) = match transport {
            Transport::Udp => match self.pick_udp(origin, family_v4) {
                Some(i) => (Some(i), self.udp[i].sent_by.as_str()),
                None => {
                    self.stats.dropped(DropReason::NoTransport);
                    return;
                }
            },
            Transport::Tcp => match self.tcp_sent_by(family_v4) {
                Some(s) => (None, s),
                None => {
                    self.stats.dropped(DropReason::NoTransport);
                    return;
                }
            },
        };

        out.clear();
        out.reserve(bytes.len() + 160);
        let start_end = msg.headers().first().map_or(bytes.len(), |h| h.line.start);
        out.extend_from_slice(&bytes[..start_end]);
        out.extend_from_slice(b"Via: SIP/2.0/");
        out.extend_from_slice(transport.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(sent_by.as_bytes());
        out.extend_from_slice(b";branch=");
        let top = msg.top_via();
        let (from_tag, to_tag) = (
            msg.from().and_then(|f| f.tag).unwrap_or(""),
            msg.to().and_then(|t| t.tag).unwrap_or(""),
        );
        let input = BranchInput {
            top_branch: top.as_ref().and_then(|v| v.branch()),
            top_via: top.as_ref().map_or("", |v| text_ref(bytes, &v.range)),
            request_uri: match msg.start_line() {
                StartLine::Request { uri, .. } => uri,
                StartLine::Response { .. } => "",
            },
            call_id: msg.call_id().unwrap_or(""),
            cseq: msg.cseq().map_or(0, |c| c.num),
            from_tag,
            to_tag,
        };
        branch::compute(&input, sent_by, out);
        if !self.via_params.is_empty() {
            out.push(b';');
            out.extend_from_slice(self.via_params.as_bytes());
        }
        if let (Transport::Tcp, Some(id)) = (origin.transport, origin.conn) {
            out.push(b';');
            out.extend_from_slice(CONN_PARAM.as_bytes());
            out.push(b'=');
            // Writing into a Vec cannot fail.
            let _ = write!(out, "{}", id.0);
        }
        out.extend_from_slice(b"\r\n");
        if mf.is_none() {
            out.extend_from_slice(b"Max-Forwards: 70\r\n");
        }
        // The remaining edits (Max-Forwards value, popped Route) in byte order.
        let mut pos = start_end;
        let mf_edit = mf.map(|(range, n)| (range, Some(n - 1)));
        let pop_edit = pop.map(|range| (range, None));
        let mut edits = [mf_edit, pop_edit];
        edits.sort_by_key(|e| e.as_ref().map_or(usize::MAX, |(r, _)| r.start));
        for (range, replacement) in edits.into_iter().flatten() {
            out.extend_from_slice(&bytes[pos..range.start]);
            if let Some(n) = replacement {
                let _ = write!(out, "{n}");
            }
            pos = range.end;
        }
        out.extend_from_slice(&bytes[pos..]);

        self.send(transport, dest, None, udp_index, out, true);
    }

    fn forward_response(self: &Arc<Self>, msg: &Message<'_>, out: &mut Vec<u8>) {
        let bytes = msg.bytes();
        let vias = msg.vias();
        let (Some(ours), Some(next)) = (vias.first(), vias.get(1)) else {
            self.stats.dropped(DropReason::NoNextVia);
            return;
        };
        let Some(transport) = Transport::from_token(next.transport()) else {
            self.stats.dropped(DropReason::NoTransport);
            return;
        };
        let conn = ours
            .param(CONN_PARAM)
            .flatten()
            .and_then(|v| v.parse::<u64>().ok())
            .map(ConnId);
        // RFC 3261 §18.2.2 / RFC 3581: received overrides the host, rport=N the port.
        let host = next.received().unwrap_or_else(|| next.host());
        let port = match next.rport() {
            Some(Some(p)) => p,
            _ => next.port().unwrap_or(5060),
        };
        // Remove our Via: the whole line if it was alone, else our value and its comma.
        let removal = if next.header_index == ours.header_index {
            ours.range.start..next.range.start
        } else {
            msg.headers()[ours.header_index].line.clone()
        };
        out.clear();
        out.reserve(bytes.len());
        out.extend_from_slice(&bytes[..removal.start]);
        out.extend_from_slice(&bytes[removal.end..]);
        let family_v4 = host.parse::<IpAddr>().ok().map(|ip| ip.is_ipv4());
        let udp_index = match transport {
            Transport::Udp => match self.pick_udp_family(family_v4) {
                Some(i) => Some(i),
                None => {
                    self.stats.dropped(DropReason::NoTransport);
                    return;
                }
            },
            Transport::Tcp => None,
        };
        self.send(transport, dest_of(host, port), conn, udp_index, out, false);
    }

    fn default_transport(&self) -> Transport {
        if self.udp.is_empty() {
            Transport::Tcp
        } else {
            Transport::Udp
        }
    }

    fn pick_udp(&self, origin: &Origin, v4: Option<bool>) -> Option<usize> {
        if origin.transport == Transport::Udp && v4.is_none_or(|v4| origin.local.is_ipv4() == v4) {
            return Some(origin.udp);
        }
        self.pick_udp_family(v4)
    }

    fn pick_udp_family(&self, v4: Option<bool>) -> Option<usize> {
        self.udp
            .iter()
            .position(|u| v4.is_none_or(|v4| u.local.is_ipv4() == v4))
    }

    fn tcp_sent_by(&self, v4: Option<bool>) -> Option<&str> {
        self.tcp_sides
            .iter()
            .find(|t| v4.is_none_or(|v4| t.local.is_ipv4() == v4))
            .map(|t| t.sent_by.as_str())
            .or_else(|| self.udp.first().map(|u| u.sent_by.as_str()))
    }

    /// Sends `out` (leaving `out` reusable); name resolution happens on a separate task.
    fn send(
        self: &Arc<Self>,
        transport: Transport,
        dest: Dest,
        conn: Option<ConnId>,
        udp_index: Option<usize>,
        out: &mut Vec<u8>,
        request: bool,
    ) {
        let addr = match dest {
            Dest::Addr(a) => a,
            Dest::Name(host, port) => {
                if self.resolving.fetch_add(1, Ordering::AcqRel) >= MAX_RESOLVING {
                    self.resolving.fetch_sub(1, Ordering::AcqRel);
                    self.stats.dropped(DropReason::NoRoute);
                    return;
                }
                let core = Arc::clone(self);
                let bytes = std::mem::take(out);
                tokio::spawn(async move {
                    let resolved = {
                        let _slot = HeldSlot(&core.resolving);
                        tokio::time::timeout(
                            RESOLVE_TIMEOUT,
                            tokio::net::lookup_host((host.as_str(), port)),
                        )
                        .await
                    };
                    let resolved =
                        resolved.unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
                    let addr = resolved.ok().and_then(|mut it| {
                        it.find(|a| match (transport, udp_index) {
                            (Transport::Udp, Some(i)) => a.is_ipv4() == core.udp[i].local.is_ipv4(),
                            _ => true,
                        })
                    });
                    match addr {
                        Some(a) => {
                            let mut bytes = bytes;
                            core.send(
                                transport,
                                Dest::Addr(a),
                                conn,
                                udp_index,
                                &mut bytes,
                                request,
                            );
                        }
                        None => {
                            debug!(%host, "next hop did not resolve");
                            core.stats.dropped(DropReason::NoRoute);
                        }
                    }
                });
                return;
            }
        };
        let result = match transport {
            Transport::Udp => match udp_index {
                Some(i) => udp_send(&self.udp[i].sock, out, addr),
                None => Err(DropReason::NoTransport),
            },
            Transport::Tcp => {
                let bytes = std::mem::take(out);
                match conn.filter(|id| self.tcp.contains(*id)) {
                    Some(id) => self.tcp.send_on(id, bytes),
                    None => self.tcp_send_to(addr, bytes),
                }
            }
        };
        match result {
            Ok(()) => self.stats.forwarded(request),
            Err(reason) => self.stats.dropped(reason),
        }
    }
}

/// One slot of a bounded in-flight counter (`held_now`, `resolving`), released on drop.
struct HeldSlot<'a>(&'a AtomicUsize);

impl Drop for HeldSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn udp_send(sock: &UdpSocket, bytes: &[u8], dest: SocketAddr) -> Result<(), DropReason> {
    match sock.try_send_to(bytes, dest) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err(DropReason::QueueFull),
        Err(e) => {
            debug!(%dest, error = %e, "UDP send failed");
            Err(DropReason::SendError)
        }
    }
}

fn dest_of(host: &str, port: u16) -> Dest {
    match strip_brackets(host).parse::<IpAddr>() {
        Ok(ip) => Dest::Addr(SocketAddr::new(ip, port)),
        Err(_) => Dest::Name(host.to_owned(), port),
    }
}

/// `host[:port]` or `[v6][:port]` into its parts.
fn split_host_port(s: &str) -> (&str, Option<u16>) {
    if let Some(rest) = s.strip_prefix('[') {
        let close = rest.find(']').unwrap_or(rest.len());
        let port = rest
            .get(close + 1..)
            .and_then(|p| p.strip_prefix(':'))
            .and_then(|p| p.parse().ok());
        return (&rest[..close], port);
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()),
        _ => (s, None),
    }
}

/// One Route value: its text range and the range to delete to pop it.
struct RouteValue {
    value: std::ops::Range<usize>,
    removal: std::ops::Range<usize>,
}

/// The first two Route values in order (all we need: the top one and the one after it).
fn route_values(msg: &Message<'_>) -> Vec<RouteValue> {
    let bytes = msg.bytes();
    let mut found = Vec::new();
    for h in msg.headers_named(HeaderName::Route) {
        let value = text_ref(bytes, &h.value_range);
        let base = h.value_range.start;
        let parts: Vec<_> = uri::split_values(value).take(2).collect();
        for (i, r) in parts.iter().enumerate() {
            let value_range = base + r.start..base + r.end;
            let removal = match (i, parts.get(1)) {
                (0, Some(next)) => base + r.start..base + next.start,
                _ => h.line.clone(),
            };
            found.push(RouteValue {
                value: value_range,
                removal,
            });
            if found.len() == 2 {
                return found;
            }
        }
    }
    found
}

fn text_ref<'a>(bytes: &'a [u8], r: &std::ops::Range<usize>) -> &'a str {
    std::str::from_utf8(&bytes[r.clone()]).unwrap_or("")
}

fn text<'a>(bytes: &'a [u8], r: &std::ops::Range<usize>) -> std::borrow::Cow<'a, str> {
    String::from_utf8_lossy(&bytes[r.clone()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("10.0.0.1:5070"), ("10.0.0.1", Some(5070)));
        assert_eq!(split_host_port("pcscf.example"), ("pcscf.example", None));
        assert_eq!(split_host_port("[::1]:5060"), ("::1", Some(5060)));
        assert_eq!(split_host_port("[::1]"), ("::1", None));
        assert_eq!(split_host_port("::1"), ("::1", None));
    }
}
