//! The out-of-band receivers under hostile clients: garbage and oversized frames from a client
//! with a valid certificate, and handshakes with a certificate from another CA, an unknown SAN,
//! an expired certificate or none. Refused (and counted), and the agent keeps working.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ikt_agent::Mode;
use ikt_certs::{Ca, IssueOptions, Validity};
use ikt_transport::{KeySender, RefusalReason};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::record;
use crate::support::{Duo, POpts, Pki, SOpts, WAIT, key_hex, nonce, wire_bundle};

const H2: &[u8] = b"h2";
const IKT: &[u8] = b"ikt/1";

/// A TLS 1.3 client config trusting our CA, presenting `identity` (cert PEM, key PEM) if any.
fn client(pki: &Pki, identity: Option<(&str, &str)>, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(pki.path("ca.pem")).unwrap();
    for c in CertificateDer::pem_slice_iter(&ca) {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    let mut cfg = match identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .map(|c| c.unwrap())
                .collect();
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
            b.with_client_auth_cert(chain, key).unwrap()
        }
        None => b.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(cfg)
}

fn valid_identity(pki: &Pki) -> (String, String) {
    (
        std::fs::read_to_string(pki.path("scscf-1.pem")).unwrap(),
        std::fs::read_to_string(pki.path("scscf-1.key")).unwrap(),
    )
}

/// TLS over TCP to the gRPC port; writes `bytes` and reports whether the server closed the
/// connection (or refused the handshake) within the hang guard.
async fn tcp_tls_session(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>, bytes: &[u8]) -> bool {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("pcscf-1").unwrap();
    let Ok(mut tls) = tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
    else {
        return true;
    };
    let _ = tls.write_all(bytes).await;
    let _ = tls.flush().await;
    let mut buf = vec![0u8; 16_384];
    let closed = async {
        loop {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(WAIT, closed).await.unwrap_or(false)
}

fn quic_endpoint(cfg: Arc<rustls::ClientConfig>) -> quinn::Endpoint {
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(cfg).unwrap();
    ep.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    ep
}

/// What a QUIC receiver did with our bytes.
#[derive(Debug, PartialEq, Eq)]
enum QuicEnd {
    /// Handshake refused, or stream/connection closed.
    Closed,
    /// It answered with this ack (a well-formed but unacceptable bundle is rejected this way).
    Ack(ikt_transport::Status),
    /// Neither within the hang guard.
    Open,
}

/// A QUIC connection with `cfg`; on success opens a bidi stream, writes `bytes`, and reports
/// how the receiver ended it. A refused handshake counts as closed.
async fn quic_session(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>, bytes: &[u8]) -> bool {
    quic_exchange(addr, cfg, bytes).await == QuicEnd::Closed
}

async fn quic_exchange(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>, bytes: &[u8]) -> QuicEnd {
    let ep = quic_endpoint(cfg);
    let conn = match ep.connect(addr, "pcscf-1").unwrap().await {
        Ok(c) => c,
        Err(_) => return QuicEnd::Closed,
    };
    let run = async {
        let Ok((mut send, mut recv)) = conn.open_bi().await else {
            return QuicEnd::Closed;
        };
        if send.write_all(bytes).await.is_err() {
            return QuicEnd::Closed;
        }
        let mut got = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            match recv.read(&mut buf).await {
                Ok(None) | Err(_) => return QuicEnd::Closed,
                Ok(Some(n)) => got.extend_from_slice(&buf[..n]),
            }
            let mut r = got.as_slice();
            let mut scratch = Vec::new();
            if let Ok(Some(ack)) = ikt_transport::framing::read::<ikt_transport::DeliveryAck, _>(
                &mut r,
                4096,
                &mut scratch,
            )
            .await
            {
                return QuicEnd::Ack(ack.status());
            }
        }
    };
    let end = tokio::time::timeout(WAIT, run)
        .await
        .unwrap_or(QuicEnd::Open);
    conn.close(0u32.into(), b"done");
    ep.wait_idle().await;
    end
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_frames_on_grpc() {
    let duo = Duo::start(SOpts::new(Mode::Grpc), POpts::default(), false).await;
    let (cert, key) = valid_identity(&duo.pki);
    let cfg = client(&duo.pki, Some((&cert, &key)), H2);
    let mut preface_then_huge = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    preface_then_huge.extend_from_slice(&[0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01]);
    preface_then_huge.extend_from_slice(&[0x41; 4096]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "random bytes after the handshake",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(0x9E37_79B9) >> 7) as u8)
                .collect(),
        ),
        (
            "HTTP/2 preface then a 16 MB frame header",
            preface_then_huge,
        ),
        (
            "HTTP/1.1 request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
    ];
    for (name, bytes) in cases {
        let closed = tcp_tls_session(duo.grpc, cfg.clone(), &bytes).await;
        record::row(
            "hostile",
            &format!("grpc, valid client cert: {name}"),
            &format!("connection closed: {closed}; valid traffic served"),
        );
        assert!(closed, "grpc: {name}: connection left open");
        duo.assert_serves(name).await;
    }
    oversized_bundle(&duo, Mode::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_frames_on_quic() {
    let duo = Duo::start(SOpts::new(Mode::Quic), POpts::default(), false).await;
    let (cert, key) = valid_identity(&duo.pki);
    let cfg = client(&duo.pki, Some((&cert, &key)), IKT);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "length prefix of 2^35 bytes",
            vec![0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3],
        ),
        ("length prefix varint of 11 bytes", vec![0xff; 11]),
        (
            "length 4097 (one over the limit)",
            [vec![0x81, 0x20], vec![0u8; 4097]].concat(),
        ),
        (
            "valid length, invalid protobuf",
            [vec![10], vec![0xff; 10]].concat(),
        ),
    ];
    for (name, bytes) in cases {
        let closed = quic_session(duo.quic, cfg.clone(), &bytes).await;
        record::row(
            "hostile",
            &format!("quic, valid client cert: {name}"),
            &format!("stream or connection closed: {closed}; valid traffic served"),
        );
        assert!(closed, "quic: {name}: left open");
        duo.assert_serves(name).await;
    }
    // Well-formed protobuf with an unusable bundle (ck of 3 bytes): answered REJECTED.
    let body = [0x42, 3, 1, 2, 3, 0x1a, 1, b'n'];
    let end = quic_exchange(
        duo.quic,
        cfg.clone(),
        &[vec![body.len() as u8], body.to_vec()].concat(),
    )
    .await;
    record::row(
        "hostile",
        "quic, valid client cert: well-formed bundle with ck of 3 bytes",
        &format!("{end:?}"),
    );
    assert!(
        matches!(
            end,
            QuicEnd::Closed | QuicEnd::Ack(ikt_transport::Status::Rejected)
        ),
        "{end:?}"
    );
    duo.assert_serves("after a bundle with a short ck").await;
    oversized_bundle(&duo, Mode::Quic).await;
}

/// A bundle far over the receiver's 4 KiB limit from a sender that allows 1 MiB: refused, not
/// stored, and the agent keeps working.
async fn oversized_bundle(duo: &Duo, mode: Mode) {
    let inj = duo.injector(mode, |c| c.max_message_bytes = 1 << 20);
    let mut b = wire_bundle(&nonce(555), "oversized", &key_hex(555, 1), &key_hex(555, 2));
    b.impi = "x".repeat(100_000);
    let stored_before = duo.p().hub.stats().inserted;
    let res = match inj.send(b) {
        Ok(h) => tokio::time::timeout(Duration::from_secs(5), h).await.ok(),
        Err(e) => Some(Err(e)),
    };
    let delivered = matches!(&res, Some(Ok(a)) if a.is_delivered());
    record::row(
        "hostile",
        &format!("{mode}: 100 KB bundle from an authorised peer"),
        &format!("delivered: {delivered}"),
    );
    assert!(!delivered, "{mode}: oversized bundle stored");
    assert_eq!(duo.p().hub.stats().inserted, stored_before, "{mode}");
    // The refused frame stays in that sender's window (it resends it after each reconnect until
    // it expires): a real s-cscf-agent never sends it (its own limit is 4 KiB). A fresh sender
    // for the next cases.
    inj.close();
    let inj = duo.injector(mode, |_| {});
    // Well-formed but unusable: ck of 3 bytes, empty nonce.
    for (what, mut b) in [
        (
            "bundle with a 3-byte ck",
            wire_bundle(&nonce(556), "short-ck", &key_hex(556, 1), &key_hex(556, 2)),
        ),
        (
            "bundle with an empty nonce",
            wire_bundle("", "no-nonce", &key_hex(557, 1), &key_hex(557, 2)),
        ),
    ] {
        if what.contains("ck") {
            b.ck = vec![1, 2, 3];
        }
        let res = match inj.send(b) {
            Ok(h) => tokio::time::timeout(WAIT, h).await.ok(),
            Err(e) => Some(Err(e)),
        };
        let delivered = matches!(&res, Some(Ok(a)) if a.is_delivered());
        record::row(
            "hostile",
            &format!("{mode}: {what} from an authorised peer"),
            &format!("delivered: {delivered}"),
        );
        assert!(!delivered, "{mode}: {what} stored");
    }
    assert_eq!(duo.p().hub.stats().inserted, stored_before, "{mode}");
    inj.close();
    duo.assert_serves("after an oversized bundle").await;
}

struct BadClient {
    name: &'static str,
    identity: Option<(String, String)>,
    reason: RefusalReason,
}

fn bad_clients(pki: &Pki) -> Vec<BadClient> {
    let other = Ca::new("another CA", 2).unwrap();
    let forged = other.issue("scscf-1", &IssueOptions::default()).unwrap();
    let unknown = pki
        .ca
        .issue("intruder-9", &IssueOptions::default())
        .unwrap();
    let expired = pki
        .ca
        .issue(
            "scscf-1",
            &IssueOptions {
                validity: Validity::Expired,
                loopback_sans: true,
            },
        )
        .unwrap();
    let id = |c: &ikt_certs::AgentCert| Some((c.cert_pem.clone(), c.key_pem().to_owned()));
    vec![
        BadClient {
            name: "certificate from another CA",
            identity: id(&forged),
            reason: RefusalReason::UnknownCa,
        },
        BadClient {
            name: "valid certificate, SAN not a peer",
            identity: id(&unknown),
            reason: RefusalReason::UnknownPeer,
        },
        BadClient {
            name: "expired certificate",
            identity: id(&expired),
            reason: RefusalReason::Expired,
        },
        BadClient {
            name: "no client certificate",
            identity: None,
            reason: RefusalReason::NoCertificate,
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_refusals_are_counted() {
    for mode in [Mode::Grpc, Mode::Quic] {
        let duo = Duo::start(SOpts::new(mode), POpts::default(), false).await;
        for bad in bad_clients(&duo.pki) {
            let refusals = duo.p().tls.as_ref().unwrap().refusals().clone();
            let before = refusals.get(bad.reason);
            let identity = bad.identity.as_ref().map(|(c, k)| (c.as_str(), k.as_str()));
            let closed = match mode {
                Mode::Quic => {
                    quic_session(duo.quic, client(&duo.pki, identity, IKT), b"\x00").await
                }
                _ => {
                    tcp_tls_session(
                        duo.grpc,
                        client(&duo.pki, identity, H2),
                        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                    )
                    .await
                }
            };
            // The count is taken in the receiver's handshake task; give it the hang guard.
            let deadline = tokio::time::Instant::now() + WAIT;
            while refusals.get(bad.reason) == before && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let counted = refusals.get(bad.reason) - before;
            record::row(
                "hostile",
                &format!("{mode} TLS: {}", bad.name),
                &format!(
                    "refused: {closed}; counted as {}: {counted}",
                    bad.reason.as_str()
                ),
            );
            assert!(closed, "{mode}: {}: not refused", bad.name);
            assert!(
                counted >= 1,
                "{mode}: {}: refusal not counted as {}",
                bad.name,
                bad.reason.as_str()
            );
            duo.assert_serves(bad.name).await;
        }
    }
}
