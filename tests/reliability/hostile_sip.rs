//! Malformed and oversized SIP into both agents over UDP and TCP, from either side: after each
//! the agents still serve a valid transaction, and nothing crashes or hangs.

use std::net::SocketAddr;
use std::time::Duration;

use ikt_agent::Mode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::record;
use crate::support::{Duo, Outcome, POpts, REALM, SOpts, WAIT, key_hex, nonce, outcome, register};

fn with_header(base: &[u8], line: &[u8]) -> Vec<u8> {
    // Insert `line` right after the start line.
    let at = base.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let mut v = base[..at].to_vec();
    v.extend_from_slice(line);
    v.extend_from_slice(b"\r\n");
    v.extend_from_slice(&base[at..]);
    v
}

fn hostile(from: SocketAddr) -> Vec<(&'static str, Vec<u8>)> {
    let ok = register(from, "mallory", "hostile-1", 1);
    let text = String::from_utf8(ok.clone()).unwrap();
    let mut many = Vec::new();
    for i in 0..5000 {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    let many = with_header(&ok, &many[..many.len() - 2]);
    vec![
        ("empty datagram", Vec::new()),
        ("CRLF keep-alive only", b"\r\n\r\n".to_vec()),
        ("random binary", (0..1500u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()),
        ("truncated mid-header", ok[..ok.len() / 2].to_vec()),
        ("truncated start line", b"REGISTER sip:ims.exa".to_vec()),
        ("Content-Length larger than body", text.replace("Content-Length: 0", "Content-Length: 500").into_bytes()),
        ("Content-Length negative", text.replace("Content-Length: 0", "Content-Length: -5").into_bytes()),
        ("Content-Length 2^64", text.replace("Content-Length: 0", "Content-Length: 18446744073709551616").into_bytes()),
        ("two different Content-Lengths", text.replace("Content-Length: 0", "Content-Length: 0\r\nContent-Length: 7").into_bytes()),
        ("60 KB header line", with_header(&ok, format!("X-Big: {}", "a".repeat(60_000)).as_bytes())),
        ("5000 headers", many),
        ("NUL bytes in a header", with_header(&ok, b"X-Nul: a\0b\0\0c")),
        ("NUL in the start line", text.replacen("REGISTER sip:", "REGISTER\0sip:", 1).into_bytes()),
        ("bad UTF-8 in a header", with_header(&ok, b"X-Bad: \xff\xfe\xc3\x28")),
        ("bad UTF-8 in Call-ID", {
            let at = text.find("hostile-1").unwrap();
            [&ok[..at], b"\xc3\x28\xa0\xa1".as_slice(), &ok[at + 9..]].concat()
        }),
        ("no Via", text.lines().filter(|l| !l.starts_with("Via")).collect::<Vec<_>>().join("\r\n").into_bytes()),
        ("Via with garbage", text.replacen("Via: SIP/2.0/UDP", "Via: SIP/9.9/\u{1}\u{2}", 1).into_bytes()),
        ("CSeq garbage", text.replace("CSeq: 1 REGISTER", "CSeq: 99999999999999999999 REGISTER").into_bytes()),
        ("status line as request", b"SIP/2.0 99999 Nope\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx\r\n\r\n".to_vec()),
        ("401 response nobody asked for", format!("SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKq\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\nFrom: <sip:a@{REALM}>;tag=1\r\nTo: <sip:a@{REALM}>;tag=2\r\nWWW-Authenticate: Digest realm=\"{REALM}\", nonce=\"bm9uY2U=\", algorithm=AKAv1-MD5\r\nContent-Length: 0\r\n\r\n").into_bytes()),
        ("folded header continuation first", b"REGISTER sip:x SIP/2.0\r\n continuation\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKy\r\n\r\n".to_vec()),
    ]
}

async fn udp_round(duo: &Duo, target: SocketAddr, side: &str) {
    for (name, bytes) in hostile(duo.edge.addr) {
        if bytes.len() > 65_000 {
            continue;
        }
        let _ = duo.edge.sock.send_to(&bytes, target).await;
        record::row(
            "hostile",
            &format!("SIP over UDP into the {side}: {name}"),
            "survived, valid traffic served",
        );
        duo.assert_serves(name).await;
    }
}

/// Writes `bytes` on a fresh TCP connection; returns whether the agent closed it (rather than
/// keep waiting for more) within `limit`. Either is acceptable for most inputs (a short probe);
/// the oversized ones must close (the hang guard).
async fn tcp_send(target: SocketAddr, bytes: &[u8], limit: Duration) -> bool {
    let Ok(mut s) = TcpStream::connect(target).await else {
        return true;
    };
    let _ = s.write_all(bytes).await;
    let mut buf = vec![0u8; 4096];
    let wait = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, wait).await.unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_sip_over_udp() {
    let duo = Duo::start(SOpts::new(Mode::Grpc), POpts::default(), false).await;
    udp_round(&duo, duo.p_sip, "p-cscf-agent").await;
    udp_round(&duo, duo.s_sip, "s-cscf-agent").await;
    assert_eq!(duo.tap.with_clear_keys(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_sip_over_tcp() {
    let duo = Duo::start(SOpts::new(Mode::Sealed), POpts::default(), false).await;
    for (side, target) in [("p-cscf-agent", duo.p_sip), ("s-cscf-agent", duo.s_sip)] {
        for (name, bytes) in hostile(duo.edge.addr) {
            let closed = tcp_send(target, &bytes, Duration::from_millis(300)).await;
            record::row(
                "hostile",
                &format!("SIP over TCP into the {side}: {name}"),
                if closed {
                    "connection closed; valid traffic served"
                } else {
                    "connection kept open (waiting for more); valid traffic served"
                },
            );
            duo.assert_serves(name).await;
        }
        // Unbounded inputs must be cut off, not buffered.
        let endless = vec![b'a'; 2 * 1024 * 1024];
        let closed = tcp_send(
            target,
            &[
                b"REGISTER sip:x SIP/2.0\r\nX-Endless: ".as_slice(),
                &endless,
            ]
            .concat(),
            WAIT,
        )
        .await;
        record::row(
            "hostile",
            &format!("SIP over TCP into the {side}: 2 MB header without end"),
            &format!("closed: {closed}"),
        );
        assert!(
            closed,
            "{side}: a 2 MB header line did not close the connection"
        );
        let huge_body = format!(
            "REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKz\r\nContent-Length: 999999999\r\n\r\n"
        );
        let closed = tcp_send(target, huge_body.as_bytes(), WAIT).await;
        record::row(
            "hostile",
            &format!("SIP over TCP into the {side}: Content-Length 999999999"),
            &format!("closed: {closed}"),
        );
        assert!(
            closed,
            "{side}: a 1 GB Content-Length did not close the connection"
        );
        duo.assert_serves("after oversized TCP").await;
    }
}

/// A hostile S-CSCF side: huge and repetitive challenges in the 401 itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_challenges_from_the_core() {
    let duo = Duo::start(SOpts::new(Mode::Sealed), POpts::default(), false).await;
    let (ck, ik) = (key_hex(77, 1), key_hex(77, 2));
    let n = nonce(77);
    let mut params = String::new();
    for i in 0..2000 {
        params.push_str(&format!(", p{i}=\"v\""));
    }
    let cases = vec![
        (
            "2000 auth-params after the keys",
            format!("WWW-Authenticate: Digest realm=\"{REALM}\", nonce=\"{n}\", algorithm=AKAv1-MD5, ck=\"{ck}\", ik=\"{ik}\"{params}"),
        ),
        (
            "nonce of 20 KB",
            format!("WWW-Authenticate: Digest realm=\"{REALM}\", nonce=\"{}\", algorithm=AKAv1-MD5, ck=\"{ck}\", ik=\"{ik}\"", "A".repeat(20_000)),
        ),
        (
            "300 WWW-Authenticate headers with keys",
            (0..300)
                .map(|i| format!("WWW-Authenticate: Digest realm=\"{REALM}\", nonce=\"{}\", algorithm=AKAv1-MD5, ck=\"{ck}\", ik=\"{ik}\"", nonce(1000 + i)))
                .collect::<Vec<_>>()
                .join("\r\n"),
        ),
    ];
    for (name, header) in cases {
        let before = duo.tap.with_clear_keys();
        let dropped_before = duo.s.as_ref().unwrap().relay.stats().dropped_total();
        let call_id = duo.call_id("big");
        let req = duo.register(&call_id).await;
        duo.answer(&req, "401 Unauthorized", &[header]).await;
        // Over the relay's size limits the response is dropped and counted (a response cannot
        // be answered with an error); the UE's retransmission timer takes over.
        let got = duo
            .edge
            .try_recv(Duration::from_secs(3))
            .await
            .map(|(b, _)| b);
        let dropped = duo.s.as_ref().unwrap().relay.stats().dropped_total() - dropped_before;
        let o = got.as_deref().map(outcome);
        let shown = format!("{o:?}; dropped and counted by the s-cscf-agent: {dropped}")
            .replace(&ck, "<CK>")
            .replace(&ik, "<IK>");
        record::row(
            "hostile",
            &format!("challenge from the core: {name}"),
            &shown,
        );
        assert!(
            o == Some(Outcome::Status(503))
                || o == Some(Outcome::Keys(ck.clone(), ik.clone()))
                || (o.is_none() && dropped > 0),
            "{name}: {shown}"
        );
        assert_eq!(
            duo.tap.with_clear_keys(),
            before,
            "{name}: clear keys on the path"
        );
        duo.assert_serves(name).await;
    }
}
