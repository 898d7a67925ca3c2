//! Delivery throughput on loopback, bundles/s, with a fixed in-flight window of 256, sender and
//! receiver sharing one single-threaded runtime (so both ends together on one core).
#![allow(missing_docs)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ikt_certs::{Ca, IssueOptions};
use ikt_transport::quic::StreamMode;
use ikt_transport::{
    KeyBundle, PeerSender, PeerTable, ReceiverConfig, ReceiverHandle, SenderConfig, TlsHandle,
    TlsSource, grpc, quic,
};

const WINDOW: usize = 256;

#[derive(Clone, Copy)]
enum Kind {
    Grpc,
    Quic(StreamMode),
}

fn tls(ca: &Ca, me: &str, peer: &str) -> TlsHandle {
    let leaf = ca.issue(me, &IssueOptions::default()).expect("leaf");
    TlsHandle::new(
        Arc::new(rustls::crypto::ring::default_provider()),
        TlsSource::Pem {
            cert: leaf.cert_pem.clone(),
            key: zeroize::Zeroizing::new(leaf.key_pem().to_owned()),
            ca: ca.cert_pem().to_owned(),
        },
        PeerTable::new([peer]).expect("peers"),
    )
    .expect("tls")
}

fn bundle() -> KeyBundle {
    let mut b = KeyBundle::default();
    b.realm = "ims.mnc001.mcc001.3gppnetwork.org".into();
    b.nonce = "CjhbyS6ykNsXUoazCyVmQmXpX8OazGJlmFbYmuEvwNI=".into();
    b.call_id = "4a0b7e3c-58f1-4d6e-9a61-0cde2f8a9b10@10.0.0.1".into();
    b.cseq = 2;
    b.impu = "sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org".into();
    b.impi = "001010000000001@ims.mnc001.mcc001.3gppnetwork.org".into();
    b.ck = vec![0xb4; 16];
    b.ik = vec![0xf7; 16];
    b.algorithm = "AKAv1-MD5".into();
    b
}

async fn setup(kind: Kind) -> (ReceiverHandle, PeerSender) {
    let ca = Ca::new("bench", 1).expect("ca");
    let mut rc = ReceiverConfig::new("127.0.0.1:0".parse().expect("addr"));
    rc.max_in_flight_per_stream = WINDOW * 2;
    let server = tls(&ca, "pcscf-1", "scscf-1");
    let (rh, mut rx) = match kind {
        Kind::Grpc => grpc::serve(rc, server).await.expect("serve"),
        Kind::Quic(_) => quic::serve(rc, server).await.expect("serve"),
    };
    tokio::spawn(async move {
        while let Some(d) = rx.recv().await {
            d.responder.stored();
        }
    });
    let mut sc = SenderConfig::new("pcscf-1", rh.local_addr());
    sc.window = WINDOW;
    let client = tls(&ca, "scscf-1", "pcscf-1");
    let sender = match kind {
        Kind::Grpc => grpc::connect(sc, client),
        Kind::Quic(mode) => quic::connect(sc, client, mode).expect("sender"),
    };
    // Warm the connection up so the handshake is not measured.
    let h = sender.send_wait(bundle()).await.expect("send");
    tokio::time::timeout(Duration::from_secs(30), h)
        .await
        .expect("guard")
        .expect("ack");
    (rh, sender)
}

async fn pump(sender: &PeerSender, n: u64, template: &KeyBundle) -> Duration {
    let start = Instant::now();
    let mut inflight: VecDeque<ikt_transport::DeliveryHandle> = VecDeque::with_capacity(WINDOW);
    for _ in 0..n {
        if inflight.len() >= WINDOW
            && let Some(h) = inflight.pop_front()
        {
            h.await.expect("ack");
        }
        inflight.push_back(sender.send_wait(template.clone()).await.expect("send"));
    }
    for h in inflight {
        h.await.expect("ack");
    }
    start.elapsed()
}

fn delivery(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let template = bundle();
    let mut g = c.benchmark_group("delivery_window_256");
    g.throughput(Throughput::Elements(1));
    for (name, kind) in [
        ("grpc_stream", Kind::Grpc),
        ("quic_bidi_stream", Kind::Quic(StreamMode::Bidi)),
        ("quic_uni_per_bundle", Kind::Quic(StreamMode::UniPerBundle)),
    ] {
        let (rh, sender) = rt.block_on(setup(kind));
        g.bench_function(name, |b| {
            b.iter_custom(|iters| rt.block_on(pump(&sender, iters, &template)));
        });
        drop(sender);
        rt.block_on(rh.shutdown());
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .measurement_time(std::time::Duration::from_secs(5))
        .warm_up_time(std::time::Duration::from_secs(1));
    targets = delivery
}
criterion_main!(benches);
