//! The s-cscf-agent as a black box on loopback: a fake I-CSCF socket on the core side, a fake
//! S-CSCF socket behind it, and a gRPC receiver playing the p-cscf-agent. Forwarded 401s are
//! compared byte for byte: only the challenge (and the agent's own Via) may change.
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ikt_keys::{AadContext, Ck, Ik, Opener, OpenerConfig, SecretBytes};
use ikt_transport::{Delivery, PeerTable, ReceiverConfig, TlsHandle, TlsSource};
use s_cscf_agent::run::Agent;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);
const CK: &str = "c4f1a5b0e3d2976f8a1b0c9d8e7f6a5b";
const IK: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const SECRET_HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const REALM: &str = "ims.example.org";

struct Rig {
    _agent: Agent,
    sip: SocketAddr,
    icscf: UdpSocket,
    scscf: UdpSocket,
    deliveries: Option<mpsc::Receiver<Delivery>>,
    _receiver: Option<ikt_transport::ReceiverHandle>,
    dir: PathBuf,
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scratch() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "ikt-sagent-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn rig(mode: &str) -> Rig {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = scratch();
    ikt_certs::init(&dir, &["pcscf-1".into(), "scscf-1".into()], 2, false).unwrap();
    std::fs::write(dir.join("pair.hex"), SECRET_HEX).unwrap();
    let (deliveries, receiver, grpc) = if mode == "grpc" {
        let tls = TlsHandle::new(
            Arc::new(rustls::crypto::ring::default_provider()),
            TlsSource::Files {
                cert: dir.join("pcscf-1.pem"),
                key: dir.join("pcscf-1.key"),
                ca: dir.join("ca.pem"),
            },
            PeerTable::new(["scscf-1"]).unwrap(),
        )
        .unwrap();
        let (h, rx) =
            ikt_transport::grpc::serve(ReceiverConfig::new("127.0.0.1:0".parse().unwrap()), tls)
                .await
                .unwrap();
        let addr = h.local_addr();
        (Some(rx), Some(h), format!("grpc = \"{addr}\"\n"))
    } else {
        (None, None, String::new())
    };
    let icscf = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let scscf = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let cfg = dir.join("s.toml");
    std::fs::write(
        &cfg,
        format!(
            "id = \"scscf-1\"\n[sip]\nlisten = \"127.0.0.1:0\"\nscscf = \"{s}\"\ntcp = false\n[admin]\nlisten = \"\"\n\
             [tls]\nca = \"{d}/ca.pem\"\ncert = \"{d}/scscf-1.pem\"\nkey = \"{d}/scscf-1.key\"\n\
             [[peer]]\nid = \"pcscf-1\"\nmode = \"{mode}\"\n{grpc}path_hosts = [\"pcscf.ims.example.org\"]\n\
             [peer.sealing]\nkid = \"k1\"\nsecret_file = \"{d}/pair.hex\"\n\
             [local_api]\nsocket = \"{d}/publisher.sock\"\n",
            s = scscf.local_addr().unwrap(),
            d = dir.display()
        ),
    )
    .unwrap();
    let conf = s_cscf_agent::config::load(&cfg).unwrap();
    let agent = Agent::start(&conf, None).await.unwrap();
    if mode == "grpc" {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !agent.hook.peers().values().all(|p| p.is_up()) {
            assert!(tokio::time::Instant::now() < deadline, "peer never up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let sip = agent.relay.udp_addrs()[0];
    Rig {
        _agent: agent,
        sip,
        icscf,
        scscf,
        deliveries,
        _receiver: receiver,
        dir,
    }
}

async fn recv(sock: &UdpSocket) -> String {
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("nothing received")
        .unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

/// A REGISTER as the I-CSCF forwards it, with the p-cscf-agent's tagged Via (or not).
fn register(icscf: SocketAddr, call_id: &str, tagged: bool) -> String {
    let tag = if tagged { ";ikt=pcscf-1" } else { "" };
    format!(
        "REGISTER sip:ims.example.org SIP/2.0\r\n\
         Via: SIP/2.0/UDP {icscf};branch=z9hG4bK-ic-{call_id}\r\n\
         Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK-pa-{call_id}{tag}\r\n\
         Via: SIP/2.0/UDP 10.0.0.4:5060;branch=z9hG4bK-pc-{call_id}\r\n\
         Max-Forwards: 68\r\n\
         Path: <sip:term@pcscf.ims.example.org;lr>\r\n\
         To: <sip:alice@ims.example.org>\r\n\
         From: <sip:alice@ims.example.org>;tag=1\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 7 REGISTER\r\n\
         Authorization: Digest username=\"alice@ims.example.org\", realm=\"ims.example.org\", nonce=\"\", uri=\"sip:ims.example.org\", response=\"\"\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn vias(msg: &str) -> Vec<&str> {
    msg.split("\r\n")
        .filter(|l| l.starts_with("Via:"))
        .collect()
}

const NONCE: &str = "wA1gMQPc7lLER4EZSUIC6Dn5bNmAD68XXfWzGAfiWLA=";

fn www_with_keys() -> String {
    format!(
        "Digest realm=\"{REALM}\", nonce=\"{NONCE}\", algorithm=AKAv1-MD5, ck=\"{CK}\", ik=\"{IK}\", qop=\"auth,auth-int\""
    )
}

/// Sends REGISTER via the agent, answers it from the fake S-CSCF with `www`, returns
/// (the 401 the S-CSCF sent, what reached the I-CSCF).
async fn exchange(r: &Rig, call_id: &str, tagged: bool, www: &str) -> (String, String) {
    let reg = register(r.icscf.local_addr().unwrap(), call_id, tagged);
    r.icscf.send_to(reg.as_bytes(), r.sip).await.unwrap();
    let got = recv(&r.scscf).await;
    let mut resp = String::from("SIP/2.0 401 Unauthorized\r\n");
    for v in vias(&got) {
        resp.push_str(v);
        resp.push_str("\r\n");
    }
    resp.push_str(&format!(
        "To: <sip:alice@ims.example.org>;tag=s\r\nFrom: <sip:alice@ims.example.org>;tag=1\r\nCall-ID: {call_id}\r\nCSeq: 7 REGISTER\r\nWWW-Authenticate: {www}\r\nContent-Length: 0\r\n\r\n"
    ));
    r.scscf.send_to(resp.as_bytes(), r.sip).await.unwrap();
    let back = recv(&r.icscf).await;
    (resp, back)
}

/// The sent 401 without the agent's own (top) Via and with the challenge replaced by `www`.
fn expected(sent: &str, www: &str) -> String {
    let top = format!("{}\r\n", vias(sent)[0]);
    sent.replacen(&top, "", 1).replace(&www_with_keys(), www)
}

#[tokio::test]
async fn plain_forwards_unchanged() {
    let r = rig("plain").await;
    let (sent, back) = exchange(&r, "p1", true, &www_with_keys()).await;
    assert_eq!(back, expected(&sent, &www_with_keys()));
}

#[tokio::test]
async fn sealed_replaces_ck_ik_with_a_token_that_opens_to_the_same_keys() {
    let r = rig("sealed").await;
    let (sent, back) = exchange(&r, "s1", true, &www_with_keys()).await;
    assert!(!back.contains(CK) && !back.contains(IK), "{back}");
    let start = back.find("kt=\"").expect("kt param") + 4;
    let end = start + back[start..].find('"').unwrap();
    let token = &back[start..end];
    let www = format!(
        "Digest realm=\"{REALM}\", nonce=\"{NONCE}\", algorithm=AKAv1-MD5, kt=\"{token}\", qop=\"auth,auth-int\""
    );
    assert_eq!(back, expected(&sent, &www));
    let mut opener = Opener::new(OpenerConfig::default());
    opener
        .add_kid(
            "k1",
            &SecretBytes::from_hex(SECRET_HEX).unwrap(),
            "scscf-1",
            "pcscf-1",
        )
        .unwrap();
    let ctx = AadContext {
        realm: REALM,
        nonce: NONCE,
        call_id: "s1",
        cseq: 7,
        to_uri: "sip:alice@ims.example.org",
    };
    let b = opener
        .open(token, &ctx, ikt_agent::telemetry::now_ms())
        .unwrap();
    assert_eq!(b.ck, Ck::from_hex(CK).unwrap());
    assert_eq!(b.ik, Ik::from_hex(IK).unwrap());
    assert_eq!(b.impi, "alice@ims.example.org");
}

#[tokio::test]
async fn grpc_strips_keys_and_delivers_the_bundle() {
    let mut r = rig("grpc").await;
    let (sent, back) = exchange(&r, "g1", true, &www_with_keys()).await;
    let stripped = format!(
        "Digest realm=\"{REALM}\", nonce=\"{NONCE}\", algorithm=AKAv1-MD5, qop=\"auth,auth-int\""
    );
    assert_eq!(back, expected(&sent, &stripped));
    let mut rx = r.deliveries.take().unwrap();
    let d = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.peer, "scscf-1");
    let b = ikt_agent::wire::from_wire(&d.bundle).unwrap();
    assert_eq!(b.ck, Ck::from_hex(CK).unwrap());
    assert_eq!(b.ik, Ik::from_hex(IK).unwrap());
    assert_eq!(
        (b.nonce.as_str(), b.call_id.as_str(), b.cseq),
        (NONCE, "g1", 7)
    );
    assert_eq!(b.impi, "alice@ims.example.org");
    assert_eq!(b.impu, "sip:alice@ims.example.org");
    d.responder.stored();
}

#[tokio::test]
async fn path_identifies_the_peer_when_no_via_is_tagged() {
    let mut r = rig("grpc").await;
    let (_, back) = exchange(&r, "path1", false, &www_with_keys()).await;
    assert!(back.starts_with("SIP/2.0 401"), "{back}");
    assert!(!back.contains(CK));
    let mut rx = r.deliveries.take().unwrap();
    let d = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.bundle.call_id, "path1");
    d.responder.stored();
}

#[tokio::test]
async fn malformed_keys_fail_closed() {
    let r = rig("sealed").await;
    for (i, www) in [
        format!("Digest realm=\"{REALM}\", nonce=\"{NONCE}\", algorithm=AKAv1-MD5, ck=\"{}\", ik=\"{IK}\"", &CK[..30]),
        format!("Digest realm=\"{REALM}\", nonce=\"{NONCE}\", algorithm=AKAv1-MD5, ck=\"{CK}\", ck=\"{CK}\", ik=\"{IK}\""),
        format!("Digest realm=\"{REALM}\", nonce=\"{NONCE}\", algorithm=AKAv1-MD5, ck=\"x{}\", ik=\"{IK}\"", &CK[1..]),
    ]
    .iter()
    .enumerate()
    {
        let (_, back) = exchange(&r, &format!("m{i}"), true, www).await;
        assert!(back.starts_with("SIP/2.0 503 Service Unavailable\r\n"), "{back}");
        assert!(back.contains("Retry-After: 5\r\n"));
        assert!(!back.contains("WWW-Authenticate"), "{back}");
    }
}

#[tokio::test]
async fn unknown_peer_fails_closed_by_default() {
    let r = rig("sealed").await;
    let reg = register(r.icscf.local_addr().unwrap(), "u1", false)
        .replace("pcscf.ims.example.org", "other.example.org");
    r.icscf.send_to(reg.as_bytes(), r.sip).await.unwrap();
    let got = recv(&r.scscf).await;
    let mut resp = String::from("SIP/2.0 401 Unauthorized\r\n");
    for v in vias(&got) {
        resp.push_str(v);
        resp.push_str("\r\n");
    }
    resp.push_str(&format!(
        "To: <sip:alice@ims.example.org>;tag=s\r\nFrom: <sip:alice@ims.example.org>;tag=1\r\nCall-ID: u1\r\nCSeq: 7 REGISTER\r\nWWW-Authenticate: {}\r\nContent-Length: 0\r\n\r\n",
        www_with_keys()
    ));
    r.scscf.send_to(resp.as_bytes(), r.sip).await.unwrap();
    let back = recv(&r.icscf).await;
    assert!(back.starts_with("SIP/2.0 503"), "{back}");
    assert!(!back.contains(CK));
}

/// `KeyPublisher.Publish` on the Unix socket ships a bundle to the peer and returns its ack.
#[tokio::test]
async fn local_api_publishes_to_the_peer() {
    use ikt_proto::v1::key_publisher_client::KeyPublisherClient;
    let mut r = rig("grpc").await;
    let sock = r.dir.join("publisher.sock");
    let mode = std::fs::metadata(&sock).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("unix://{}", sock.display()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = KeyPublisherClient::new(channel);
    let mut b = ikt_proto::KeyBundle::default();
    b.realm = REALM.into();
    b.nonce = "bG9jYWw=".into();
    b.call_id = "local-1".into();
    b.cseq = 1;
    b.impi = "alice@ims.example.org".into();
    b.ck = Ck::from_hex(CK).unwrap().expose_secret().to_vec();
    b.ik = Ik::from_hex(IK).unwrap().expose_secret().to_vec();
    b.algorithm = "AKAv1-MD5".into();
    let mut req = tonic::Request::new(b);
    req.metadata_mut()
        .insert("ikt-peer", "pcscf-1".parse().unwrap());
    let mut rx = r.deliveries.take().unwrap();
    let publish = tokio::spawn(async move { client.publish(req).await });
    let d = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.bundle.call_id, "local-1");
    d.responder.stored();
    let ack = publish.await.unwrap().unwrap().into_inner();
    assert_eq!(ack.status, ikt_proto::Status::Stored as i32);

    // A malformed bundle (short ck) is refused before it reaches the network.
    let channel = tonic::transport::Endpoint::from_shared(format!("unix://{}", sock.display()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = KeyPublisherClient::new(channel);
    let mut bad = ikt_proto::KeyBundle::default();
    bad.nonce = "x".into();
    bad.ck = vec![1; 3];
    bad.ik = vec![2; 16];
    let err = client.publish(bad).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(!err.message().contains("0101"), "{}", err.message());
}
