//! Encode/decode cost of one `KeyBundle` (protobuf) and of one length-delimited QUIC frame.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ikt_transport::{KeyBundle, framing};
use prost::Message;
use std::hint::black_box;

fn bundle() -> KeyBundle {
    let mut b = KeyBundle::default();
    b.seq = 123_456;
    b.realm = "ims.mnc001.mcc001.3gppnetwork.org".into();
    b.nonce = "CjhbyS6ykNsXUoazCyVmQmXpX8OazGJlmFbYmuEvwNI=".into();
    b.call_id = "4a0b7e3c-58f1-4d6e-9a61-0cde2f8a9b10@10.0.0.1".into();
    b.cseq = 2;
    b.impu = "sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org".into();
    b.impi = "001010000000001@ims.mnc001.mcc001.3gppnetwork.org".into();
    b.ck = vec![0xb4; 16];
    b.ik = vec![0xf7; 16];
    b.issued_at_ms = 1_764_400_000_000;
    b.not_after_ms = 1_764_400_064_000;
    b.algorithm = "AKAv1-MD5".into();
    b
}

fn codec(c: &mut Criterion) {
    let b = bundle();
    let bytes = b.encode_to_vec();
    let mut g = c.benchmark_group("key_bundle");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_bundle", |bench| {
        let mut buf = Vec::with_capacity(512);
        bench.iter(|| {
            buf.clear();
            black_box(&b).encode(&mut buf).expect("encode");
            black_box(buf.len())
        });
    });
    g.bench_function("decode_bundle", |bench| {
        bench.iter(|| KeyBundle::decode(black_box(bytes.as_slice())).expect("decode"));
    });
    g.bench_function("encode_frame", |bench| {
        let mut buf = Vec::with_capacity(512);
        bench.iter(|| {
            buf.clear();
            framing::encode(black_box(&b), 4096, &mut buf).expect("frame");
            black_box(buf.len())
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(std::time::Duration::from_secs(3))
        .warm_up_time(std::time::Duration::from_secs(1));
    targets = codec
}
criterion_main!(benches);
