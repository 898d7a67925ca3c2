//! The p-cscf-agent as a black box on loopback: a fake P-CSCF socket on one side, a fake core
//! socket on the other, and a gRPC sender playing the s-cscf-agent. Every forwarded message is
//! compared byte for byte with what the agent may change.
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ikt_keys::{Ck, Ik, KeyBundle, Sealer, SecretBytes};
use ikt_transport::{KeySender, PeerSender, PeerTable, SenderConfig, TlsHandle, TlsSource};
use p_cscf_agent::run::Agent;
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(10);
const CK: &str = "c4f1a5b0e3d2976f8a1b0c9d8e7f6a5b";
const IK: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const SECRET_HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

struct Rig {
    agent: Agent,
    sip: SocketAddr,
    pcscf: UdpSocket,
    core: UdpSocket,
    sender: PeerSender,
    sealer: Sealer,
    cfg: PathBuf,
    dir: PathBuf,
    _cleanup: Cleanup,
}

/// Removes the scratch directory when the test ends.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "ikt-pagent-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn rig(key_wait_ms: u64, accept_plain: bool) -> Rig {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = scratch();
    ikt_certs::init(&dir, &["pcscf-1".into(), "scscf-1".into()], 2, false).unwrap();
    std::fs::write(dir.join("pair.hex"), SECRET_HEX).unwrap();
    let pcscf = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let core = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let cfg = dir.join("p.toml");
    std::fs::write(
        &cfg,
        format!(
            "id = \"pcscf-1\"\n[sip]\nlisten = \"127.0.0.1:0\"\ncore = \"{core}\"\ntcp = false\n\
             [keys]\nkey_wait_ms = {key_wait_ms}\naccept_plain = {accept_plain}\n[admin]\nlisten = \"\"\n\
             [transport]\ngrpc_listen = \"127.0.0.1:0\"\nca = \"{d}/ca.pem\"\ncert = \"{d}/pcscf-1.pem\"\nkey = \"{d}/pcscf-1.key\"\n\
             [[peer]]\nid = \"scscf-1\"\n[[peer.sealing]]\nkid = \"k1\"\nsecret_file = \"{d}/pair.hex\"\n\
             [local_api]\nsocket = \"{d}/keystore.sock\"\n",
            core = core.local_addr().unwrap(),
            d = dir.display()
        ),
    )
    .unwrap();
    let conf = p_cscf_agent::config::load(&cfg).unwrap();
    let agent = Agent::start(&conf, None).await.unwrap();
    let tls = TlsHandle::new(
        Arc::new(rustls::crypto::ring::default_provider()),
        TlsSource::Files {
            cert: dir.join("scscf-1.pem"),
            key: dir.join("scscf-1.key"),
            ca: dir.join("ca.pem"),
        },
        PeerTable::new(["pcscf-1"]).unwrap(),
    )
    .unwrap();
    let sender =
        ikt_transport::grpc::connect(SenderConfig::new("pcscf-1", agent.grpc_addr.unwrap()), tls);
    let secret = SecretBytes::from_hex(SECRET_HEX).unwrap();
    let sealer = Sealer::new("k1", &secret, "scscf-1", "pcscf-1").unwrap();
    let sip = agent.relay.udp_addrs()[0];
    Rig {
        agent,
        sip,
        pcscf,
        core,
        sender,
        sealer,
        cfg,
        _cleanup: Cleanup(dir.clone()),
        dir,
    }
}

async fn recv(sock: &UdpSocket) -> Vec<u8> {
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("nothing received")
        .unwrap();
    buf.truncate(n);
    buf
}

fn register(pcscf: SocketAddr, call_id: &str) -> Vec<u8> {
    format!(
        "REGISTER sip:ims.example.org SIP/2.0\r\n\
         Via: SIP/2.0/UDP {pcscf};branch=z9hG4bK-pc-{call_id}\r\n\
         Max-Forwards: 69\r\n\
         Path: <sip:term@{pcscf};lr>\r\n\
         To: <sip:alice@ims.example.org>\r\n\
         From: <sip:alice@ims.example.org>;tag=1\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:alice@192.0.2.1:5060>;expires=600\r\n\
         Authorization: Digest username=\"alice@ims.example.org\", realm=\"ims.example.org\", nonce=\"\", uri=\"sip:ims.example.org\", response=\"\"\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The Via lines of a received request, in order.
fn via_lines(req: &str) -> Vec<&str> {
    req.split("\r\n")
        .filter(|l| l.starts_with("Via:"))
        .collect()
}

/// A 401 from the core to the REGISTER the core received, with this challenge.
fn challenge_401(req: &[u8], www: &str) -> Vec<u8> {
    let req = std::str::from_utf8(req).unwrap();
    let header = |name: &str| {
        req.split("\r\n")
            .find(|l| l.starts_with(name))
            .unwrap()
            .to_owned()
    };
    let mut out = String::from("SIP/2.0 401 Unauthorized\r\n");
    for v in via_lines(req) {
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str(&header("From:"));
    out.push_str("\r\n");
    out.push_str(&header("To:"));
    out.push_str(";tag=core\r\n");
    out.push_str(&header("Call-ID:"));
    out.push_str("\r\n");
    out.push_str(&header("CSeq:"));
    out.push_str(&format!(
        "\r\nWWW-Authenticate: {www}\r\nServer: test-core\r\nContent-Length: 0\r\n\r\n"
    ));
    out.into_bytes()
}

/// What the P-CSCF must receive: the 401 without the agent's Via and with `www` as challenge.
fn expected_at_pcscf(sent: &[u8], www: &str) -> Vec<u8> {
    let text = String::from_utf8(sent.to_vec()).unwrap();
    let mut lines: Vec<String> = text.split("\r\n").map(str::to_owned).collect();
    let first_via = lines.iter().position(|l| l.starts_with("Via:")).unwrap();
    lines.remove(first_via);
    for l in &mut lines {
        if l.starts_with("WWW-Authenticate:") {
            *l = format!("WWW-Authenticate: {www}");
        }
    }
    lines.join("\r\n").into_bytes()
}

const REALM: &str = "ims.example.org";

fn canonical(nonce: &str) -> String {
    format!(
        "Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm=AKAv1-MD5, ck=\"{CK}\", ik=\"{IK}\", qop=\"auth,auth-int\""
    )
}

fn bundle(nonce: &str, call_id: &str) -> KeyBundle {
    let now = ikt_agent::telemetry::now_ms();
    KeyBundle {
        seq: 0,
        realm: REALM.into(),
        nonce: nonce.into(),
        call_id: call_id.into(),
        cseq: 1,
        impu: "sip:alice@ims.example.org".into(),
        impi: "alice@ims.example.org".into(),
        ck: Ck::from_hex(CK).unwrap(),
        ik: Ik::from_hex(IK).unwrap(),
        issued_at_ms: now,
        not_after_ms: now + 64_000,
        algorithm: "AKAv1-MD5".into(),
    }
}

/// Sends a REGISTER through the agent and returns what the core received.
async fn register_through(r: &Rig, call_id: &str) -> Vec<u8> {
    let reg = register(r.pcscf.local_addr().unwrap(), call_id);
    r.pcscf.send_to(&reg, r.sip).await.unwrap();
    let got = recv(&r.core).await;
    let text = String::from_utf8(got.clone()).unwrap();
    // Byte preservation: only our Via added and Max-Forwards decremented.
    let vias = via_lines(&text);
    assert_eq!(vias.len(), 2, "{text}");
    assert!(vias[0].contains(";ikt=pcscf-1"), "{}", vias[0]);
    let expected = String::from_utf8(reg)
        .unwrap()
        .replace("Max-Forwards: 69", "Max-Forwards: 68");
    let without_ours = text.replacen(&format!("{}\r\n", vias[0]), "", 1);
    assert_eq!(
        without_ours, expected,
        "REGISTER changed beyond Via and Max-Forwards"
    );
    got
}

async fn deliver(r: &Rig, b: &KeyBundle) {
    let ack = r
        .sender
        .send_wait(ikt_agent::wire::to_wire(b))
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(ack.is_delivered(), "{ack:?}");
}

async fn wait_sender_up(r: &Rig) {
    let deadline = Instant::now() + WAIT;
    while !r.sender.health().up {
        assert!(Instant::now() < deadline, "sender never connected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn keys_that_arrive_after_their_401_are_restored_in_canonical_form() {
    let r = rig(2000, true).await;
    wait_sender_up(&r).await;
    let req = register_through(&r, "late-1").await;
    let nonce = "bGF0ZS1rZXlzLW5vbmNlLWJ5dGVzLTMyLWxvbmc=";
    let www = format!(
        "Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm=AKAv1-MD5, qop=\"auth,auth-int\""
    );
    let resp = challenge_401(&req, &www);
    r.core.send_to(&resp, r.sip).await.unwrap();
    // The 401 is held: nothing reaches the P-CSCF before the keys.
    let mut buf = [0u8; 100];
    assert!(
        tokio::time::timeout(Duration::from_millis(100), r.pcscf.recv_from(&mut buf))
            .await
            .is_err(),
        "a 401 left without keys"
    );
    assert_eq!(r.agent.hook.parked(), 1);
    deliver(&r, &bundle(nonce, "late-1")).await;
    let got = recv(&r.pcscf).await;
    assert_eq!(
        String::from_utf8(got).unwrap(),
        String::from_utf8(expected_at_pcscf(&resp, &canonical(nonce))).unwrap()
    );
    assert_eq!(r.agent.hook.parked(), 0);
}

#[tokio::test]
async fn keys_that_arrive_first_are_used_at_once_and_again_for_a_retransmission() {
    let r = rig(2000, true).await;
    wait_sender_up(&r).await;
    let req = register_through(&r, "early-1").await;
    let nonce = "ZWFybHkta2V5cw==extra-opaque-bytes";
    deliver(&r, &bundle(nonce, "early-1")).await;
    let www = format!(
        "Digest nonce=\"{nonce}\", realm=\"{REALM}\", qop=\"auth,auth-int\", algorithm=AKAv1-MD5"
    );
    let resp = challenge_401(&req, &www);
    r.core.send_to(&resp, r.sip).await.unwrap();
    let first = recv(&r.pcscf).await;
    assert_eq!(first, expected_at_pcscf(&resp, &canonical(nonce)));
    // Retransmission of the same 401: the same keys, byte for byte the same output.
    r.core.send_to(&resp, r.sip).await.unwrap();
    let second = recv(&r.pcscf).await;
    assert_eq!(first, second);
}

#[tokio::test]
async fn keys_that_never_arrive_give_503_after_key_wait() {
    let key_wait = Duration::from_millis(150);
    let r = rig(key_wait.as_millis() as u64, true).await;
    let req = register_through(&r, "never-1").await;
    let www = format!("Digest realm=\"{REALM}\", nonce=\"bmV2ZXI=\", algorithm=AKAv1-MD5");
    let resp = challenge_401(&req, &www);
    let sent = Instant::now();
    r.core.send_to(&resp, r.sip).await.unwrap();
    let got = String::from_utf8(recv(&r.pcscf).await).unwrap();
    let waited = sent.elapsed();
    assert!(
        got.starts_with("SIP/2.0 503 Service Unavailable\r\n"),
        "{got}"
    );
    assert!(got.contains("\r\nRetry-After: 5\r\n"), "{got}");
    assert!(!got.contains("WWW-Authenticate"), "{got}");
    assert!(got.contains("Call-ID: never-1\r\n"));
    // The deadline is honoured (never early); the upper bound is only a hang guard.
    assert!(waited >= key_wait, "503 came before key_wait: {waited:?}");
    assert!(waited < key_wait + Duration::from_secs(5), "{waited:?}");
}

#[tokio::test]
async fn sealed_token_is_opened_and_restored_and_a_pasted_one_is_refused() {
    let r = rig(200, true).await;
    let req = register_through(&r, "sealed-1").await;
    let nonce = "c2VhbGVkLW5vbmNl";
    let token = r
        .sealer
        .seal(&bundle(nonce, "sealed-1"), "sip:alice@ims.example.org")
        .unwrap();
    let www = format!(
        "Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm=AKAv1-MD5, kt=\"{token}\", qop=\"auth,auth-int\""
    );
    let resp = challenge_401(&req, &www);
    r.core.send_to(&resp, r.sip).await.unwrap();
    let got = recv(&r.pcscf).await;
    assert_eq!(
        String::from_utf8(got).unwrap(),
        String::from_utf8(expected_at_pcscf(&resp, &canonical(nonce))).unwrap()
    );

    // The same token pasted into another dialog's 401 (other Call-ID) must not open.
    let req2 = register_through(&r, "sealed-2").await;
    let resp2 = challenge_401(&req2, &www);
    r.core.send_to(&resp2, r.sip).await.unwrap();
    let got2 = String::from_utf8(recv(&r.pcscf).await).unwrap();
    assert!(got2.starts_with("SIP/2.0 503"), "{got2}");
    assert!(!got2.contains(CK) && !got2.contains(IK));
}

#[tokio::test]
async fn clear_keys_pass_when_accepted_and_fail_closed_when_not() {
    let www = format!(
        "Digest realm=\"{REALM}\", nonce=\"cGxhaW4=\", algorithm=AKAv1-MD5, ck=\"{CK}\", ik=\"{IK}\", qop=\"auth,auth-int\""
    );
    let r = rig(200, true).await;
    let req = register_through(&r, "plain-1").await;
    let resp = challenge_401(&req, &www);
    r.core.send_to(&resp, r.sip).await.unwrap();
    // Accepted: only the agent's Via goes; the challenge is untouched.
    assert_eq!(recv(&r.pcscf).await, expected_at_pcscf(&resp, &www));

    let r = rig(200, false).await;
    let req = register_through(&r, "plain-2").await;
    let resp = challenge_401(&req, &www);
    r.core.send_to(&resp, r.sip).await.unwrap();
    let got = String::from_utf8(recv(&r.pcscf).await).unwrap();
    assert!(got.starts_with("SIP/2.0 503"), "{got}");
    assert!(!got.contains(CK));
}

#[tokio::test]
async fn other_responses_pass_byte_identical_apart_from_our_via() {
    let r = rig(200, true).await;
    let req = register_through(&r, "ok-1").await;
    let text = String::from_utf8(req).unwrap();
    let mut resp = String::from("SIP/2.0 200 OK\r\n");
    for v in via_lines(&text) {
        resp.push_str(v);
        resp.push_str("\r\n");
    }
    resp.push_str("From: <sip:alice@ims.example.org>;tag=1\r\nTo: <sip:alice@ims.example.org>;tag=core\r\nCall-ID: ok-1\r\nCSeq: 1 REGISTER\r\nService-Route: <sip:orig@scscf.ims.example.org;lr>\r\nP-Associated-URI: <sip:alice@ims.example.org>\r\nContact: <sip:alice@192.0.2.1:5060>;expires=600\r\nContent-Length: 0\r\n\r\n");
    r.core.send_to(resp.as_bytes(), r.sip).await.unwrap();
    let got = recv(&r.pcscf).await;
    let first_via = format!("{}\r\n", via_lines(&text)[0]);
    assert_eq!(
        String::from_utf8(got).unwrap(),
        resp.replacen(&first_via, "", 1)
    );
}

fn grpc_sender(r: &Rig) -> PeerSender {
    let tls = TlsHandle::new(
        Arc::new(rustls::crypto::ring::default_provider()),
        TlsSource::Files {
            cert: r.dir.join("scscf-1.pem"),
            key: r.dir.join("scscf-1.key"),
            ca: r.dir.join("ca.pem"),
        },
        PeerTable::new(["pcscf-1"]).unwrap(),
    )
    .unwrap();
    ikt_transport::grpc::connect(
        SenderConfig::new("pcscf-1", r.agent.grpc_addr.unwrap()),
        tls,
    )
}

/// What SIGHUP does: the peer table and the sealing kids follow the config file.
#[tokio::test]
async fn reload_applies_the_peer_table_and_new_sealing_kids() {
    let r = rig(200, true).await;
    wait_sender_up(&r).await;
    let original = std::fs::read_to_string(&r.cfg).unwrap();

    // Peer removed: a new connection from scscf-1 is refused and counted.
    std::fs::write(
        &r.cfg,
        original.replace("id = \"scscf-1\"", "id = \"scscf-9\""),
    )
    .unwrap();
    r.agent.reload(&r.cfg).await.unwrap();
    let refused_before = r.agent.tls.as_ref().unwrap().refusals().total();
    let late = grpc_sender(&r);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!late.health().up, "a removed peer must not connect");
    assert!(r.agent.tls.as_ref().unwrap().refusals().total() > refused_before);
    late.close();

    // A second kid added for the rotation: tokens under it open after the reload.
    let secret2 = "6b".repeat(32);
    std::fs::write(r.dir.join("pair2.hex"), &secret2).unwrap();
    let rotated = format!(
        "{original}[[peer.sealing]]\nkid = \"k2\"\nsecret_file = \"{}\"\n",
        r.dir.join("pair2.hex").display()
    );
    std::fs::write(&r.cfg, rotated).unwrap();
    r.agent.reload(&r.cfg).await.unwrap();
    let sealer2 = Sealer::new(
        "k2",
        &SecretBytes::from_hex(&secret2).unwrap(),
        "scscf-1",
        "pcscf-1",
    )
    .unwrap();
    let req = register_through(&r, "rot-1").await;
    let nonce = "cm90YXRlZA==";
    let token = sealer2
        .seal(&bundle(nonce, "rot-1"), "sip:alice@ims.example.org")
        .unwrap();
    let www = format!(
        "Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm=AKAv1-MD5, kt=\"{token}\", qop=\"auth,auth-int\""
    );
    let resp = challenge_401(&req, &www);
    r.core.send_to(&resp, r.sip).await.unwrap();
    assert_eq!(
        recv(&r.pcscf).await,
        expected_at_pcscf(&resp, &canonical(nonce))
    );
    // And the peer is back: a new connection comes up.
    let back = grpc_sender(&r);
    let deadline = Instant::now() + WAIT;
    while !back.health().up {
        assert!(Instant::now() < deadline, "restored peer never connected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A broken config is refused and the running one stays.
    std::fs::write(&r.cfg, "id = \"pcscf-1\"\n[keys]\nkey_wait_ms = 0\n").unwrap();
    let err = r.agent.reload(&r.cfg).await.unwrap_err().to_string();
    assert!(err.contains("keys.key_wait_ms"), "{err}");
}

/// Graceful shutdown gives a held 401 its keys (or its 503) before SIP stops.
#[tokio::test]
async fn shutdown_releases_a_held_401() {
    let r = rig(300, true).await;
    let req = register_through(&r, "bye-1").await;
    let www = format!("Digest realm=\"{REALM}\", nonce=\"Ynll\", algorithm=AKAv1-MD5");
    r.core
        .send_to(&challenge_401(&req, &www), r.sip)
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while r.agent.hook.parked() == 0 {
        assert!(Instant::now() < deadline, "401 never parked");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let Rig { agent, pcscf, .. } = r;
    let stop = tokio::spawn(agent.shutdown());
    let got = String::from_utf8(recv(&pcscf).await).unwrap();
    assert!(got.starts_with("SIP/2.0 503"), "{got}");
    stop.await.unwrap();
}

/// `KeyStore.Watch` streams newly delivered bundles; `KeyStore.Take` hands one out once.
#[tokio::test]
async fn local_api_watch_and_take() {
    use ikt_proto::v1::key_store_client::KeyStoreClient;
    let r = rig(200, true).await;
    wait_sender_up(&r).await;
    let sock = r.dir.join("keystore.sock");
    let channel = tonic::transport::Endpoint::from_shared(format!("unix://{}", sock.display()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = KeyStoreClient::new(channel);
    let mut watch = client
        .watch(ikt_proto::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    deliver(&r, &bundle("d2F0Y2g=", "watch-1")).await;
    let seen = tokio::time::timeout(WAIT, watch.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(seen.call_id, "watch-1");
    assert_eq!(seen.ck, Ck::from_hex(CK).unwrap().expose_secret().to_vec());
    let take = |nonce: &str| ikt_proto::TakeRequest {
        nonce: nonce.into(),
        call_id: "watch-1".into(),
    };
    let got = client.take(take("d2F0Y2g=")).await.unwrap().into_inner();
    assert_eq!(got.ik, Ik::from_hex(IK).unwrap().expose_secret().to_vec());
    let again = client.take(take("d2F0Y2g=")).await.unwrap_err();
    assert_eq!(again.code(), tonic::Code::NotFound);
}

/// A bundle stamped in the future (clock skew beyond 5 s, or a forged time) is refused.
#[tokio::test]
async fn bundle_from_the_future_is_rejected() {
    let r = rig(200, true).await;
    wait_sender_up(&r).await;
    let mut b = bundle("ZnV0dXJl", "future-1");
    b.issued_at_ms += 600_000;
    b.not_after_ms += 600_000;
    let ack = r
        .sender
        .send_wait(ikt_agent::wire::to_wire(&b))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.status, ikt_transport::Status::Rejected, "{ack:?}");
    assert!(ack.reason.contains("future"), "{ack:?}");
    assert!(r.agent.hub.get("ZnV0dXJl", None).is_none());
}
