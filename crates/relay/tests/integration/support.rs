//! Shared helpers: relays on ephemeral ports, UDP/TCP peers, messages and expected edits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ikt_relay::{Config, Hook, NextHop, Relay, StatsSnapshot, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Hang guard for every wait in these tests (never a performance assertion).
pub const GUARD: Duration = Duration::from_secs(10);

pub fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A relay listening on UDP and TCP on 127.0.0.1 with ephemeral ports.
pub async fn relay(
    next: Option<(SocketAddr, Option<Transport>)>,
    hook: Arc<dyn Hook>,
    tweak: impl FnOnce(&mut Config),
) -> Relay {
    let mut config = Config {
        udp_listen: vec![localhost()],
        tcp_listen: vec![localhost()],
        next_hop: next.map(|(addr, transport)| NextHop { addr, transport }),
        ..Config::default()
    };
    tweak(&mut config);
    Relay::start(config, hook).await.expect("relay starts")
}

/// Polls the relay's counters until `pred` holds (hang-guarded).
pub async fn wait_stats(
    relay: &Relay,
    what: &str,
    pred: impl Fn(&StatsSnapshot) -> bool,
) -> StatsSnapshot {
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        let s = relay.stats();
        if pred(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A UDP endpoint on 127.0.0.1.
pub struct UdpPeer {
    pub sock: UdpSocket,
    pub addr: SocketAddr,
}

impl UdpPeer {
    pub async fn new() -> UdpPeer {
        let sock = UdpSocket::bind(localhost()).await.unwrap();
        let addr = sock.local_addr().unwrap();
        UdpPeer { sock, addr }
    }

    pub async fn send(&self, bytes: &[u8], to: SocketAddr) {
        self.sock.send_to(bytes, to).await.unwrap();
    }

    /// Next datagram and its source (hang-guarded).
    pub async fn recv(&self) -> (Vec<u8>, SocketAddr) {
        let mut buf = vec![0u8; 65536];
        let (n, from) = tokio::time::timeout(GUARD, self.sock.recv_from(&mut buf))
            .await
            .expect("a datagram within the hang guard")
            .unwrap();
        buf.truncate(n);
        (buf, from)
    }

    /// Asserts no datagram is waiting right now.
    pub fn assert_empty(&self) {
        let mut buf = [0u8; 16];
        match self.sock.try_recv_from(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("expected no datagram, got {other:?}"),
        }
    }
}

/// Reads exactly one Content-Length framed SIP message from a TCP stream (test-side framing,
/// written independently of the crate's).
pub async fn read_sip(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Vec<u8> {
    tokio::time::timeout(GUARD, async {
        loop {
            if let Some(head_end) = find(pending, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&pending[..head_end]).to_string();
                let cl = head
                    .lines()
                    .find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        (n.trim().eq_ignore_ascii_case("content-length")
                            || n.trim().eq_ignore_ascii_case("l"))
                        .then(|| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                let total = head_end + 4 + cl;
                if pending.len() >= total {
                    let rest = pending.split_off(total);
                    return std::mem::replace(pending, rest);
                }
            }
            let mut buf = [0u8; 65536];
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed while waiting for a message");
            pending.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("a TCP message within the hang guard")
}

pub async fn write_all(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).await.unwrap();
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A REGISTER as a UE would send it (empty Authorization, IMS style).
pub fn register(
    transport: &str,
    sent_by: &str,
    branch: &str,
    call_id: &str,
    max_forwards: Option<u32>,
) -> String {
    let mf = max_forwards
        .map(|n| format!("Max-Forwards: {n}\r\n"))
        .unwrap_or_default();
    format!(
        "REGISTER sip:ims.example.com SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {sent_by};branch={branch};rport\r\n\
         {mf}\
         From: <sip:alice@ims.example.com>;tag=4fa3\r\n\
         To: <sip:alice@ims.example.com>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 REGISTER\r\n\
         Authorization: Digest username=\"alice@ims.example.com\", realm=\"ims.example.com\", nonce=\"\", uri=\"sip:ims.example.com\", response=\"\"\r\n\
         Contact: <sip:alice@{sent_by}>;expires=600000\r\n\
         Supported: path\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The relay's Via line in `forwarded` (the first header line), checked for shape; returns
/// (the line, its branch).
pub fn relay_via(forwarded: &str, transport: &str, sent_by: &str, extra: &str) -> (String, String) {
    let line_start = forwarded.find("\r\n").unwrap() + 2;
    let line_end = line_start + forwarded[line_start..].find("\r\n").unwrap() + 2;
    let line = &forwarded[line_start..line_end];
    let prefix = format!("Via: SIP/2.0/{transport} {sent_by};branch=");
    assert!(
        line.starts_with(&prefix),
        "relay Via {line:?} does not start with {prefix:?}"
    );
    let rest = &line[prefix.len()..line.len() - 2];
    let (branch, params) = rest.split_once(';').map_or((rest, ""), |(b, p)| (b, p));
    assert!(
        branch.starts_with("z9hG4bK") && branch.len() == 27,
        "branch {branch:?}"
    );
    assert!(
        branch[7..].bytes().all(|b| b.is_ascii_hexdigit()),
        "branch {branch:?}"
    );
    if extra.is_empty() {
        assert!(params.is_empty(), "unexpected Via params {params:?}");
    } else {
        assert!(
            params.starts_with(extra),
            "Via params {params:?} lack {extra:?}"
        );
    }
    (line.to_string(), branch.to_string())
}

/// `msg` with `via_line` inserted after the start line and `Max-Forwards: n` rewritten to `n-1`
/// (or `Max-Forwards: 70` inserted after our Via when absent).
pub fn expected_request(msg: &str, via_line: &str) -> String {
    let first = msg.find("\r\n").unwrap() + 2;
    let mut out = String::new();
    out.push_str(&msg[..first]);
    out.push_str(via_line);
    let rest = &msg[first..];
    match rest.find("Max-Forwards: ") {
        Some(at) => {
            let end = at + rest[at..].find("\r\n").unwrap();
            let n: u32 = rest[at + "Max-Forwards: ".len()..end].parse().unwrap();
            out.push_str(&rest[..at]);
            out.push_str(&format!("Max-Forwards: {}", n - 1));
            out.push_str(&rest[end..]);
        }
        None => {
            out.push_str("Max-Forwards: 70\r\n");
            out.push_str(rest);
        }
    }
    out
}

/// A response to the forwarded request `req` (all its Vias in order), as the next hop sends it.
pub fn response_to(req: &str, status: &str, extra: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for line in req.split("\r\n").skip(1) {
        if line.starts_with("Via:")
            || line.starts_with("From:")
            || line.starts_with("Call-ID:")
            || line.starts_with("CSeq:")
        {
            out.push_str(line);
            out.push_str("\r\n");
        } else if line.starts_with("To:") {
            out.push_str(line);
            out.push_str(";tag=srv1\r\n");
        }
    }
    out.push_str(extra);
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// Kamailio-style 401 challenge header (ck/ik in their exact form).
pub const CHALLENGE: &str = "WWW-Authenticate: Digest realm=\"ims.example.com\", nonce=\"3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\", algorithm=AKAv1-MD5, ck=\"00112233445566778899aabbccddeeff\", ik=\"ffeeddccbbaa99887766554433221100\", qop=\"auth,auth-int\"\r\n";

/// `msg` with the exact line `line` removed.
pub fn without_line(msg: &str, line: &str) -> String {
    let at = msg
        .find(line)
        .unwrap_or_else(|| panic!("{line:?} not in {msg:?}"));
    format!("{}{}", &msg[..at], &msg[at + line.len()..])
}

/// A free UDP port on 127.0.0.1 with nothing bound to it (best effort).
pub async fn dead_udp_addr() -> SocketAddr {
    let s = UdpSocket::bind(localhost()).await.unwrap();
    s.local_addr().unwrap()
}
