//! Hot-path costs of the SIP crate: scanning a REGISTER and editing an AKA challenge.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ikt_sip::{Framer, Limits, remove_keys, remove_top_via, restore_keys, scan};

const REGISTER: &[u8] = include_bytes!("../../../tests/data/sip/register_via_agents.sip");
const K401: &[u8] = include_bytes!("../../../tests/data/sip/401_aka_kamailio.sip");
const CK: &str = "c4f1a5b0e3d2976f8a1b0c9d8e7f6a5b";
const IK: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";

fn scan_register(c: &mut Criterion) {
    let mut g = c.benchmark_group("scan_register");
    g.bench_function("scan", |b| {
        b.iter(|| scan(black_box(REGISTER)).map(|m| m.headers().len()))
    });
    g.bench_function("scan_top_via_call_id_cseq", |b| {
        b.iter(|| {
            let m = scan(black_box(REGISTER)).ok()?;
            let v = m.top_via()?;
            Some((
                v.branch().map(str::len),
                m.call_id().map(str::len),
                m.cseq().map(|c| c.num),
            ))
        })
    });
    g.bench_function("scan_remove_top_via", |b| {
        b.iter(|| scan(black_box(REGISTER)).map(|m| remove_top_via(&m).len()))
    });
    g.bench_function("framer_push_next", |b| {
        let mut f = Framer::new(Limits::DEFAULT);
        b.iter(|| {
            f.push(black_box(REGISTER));
            f.next_message().map(|m| m.map(|m| m.len()))
        })
    });
    g.finish();
}

fn edit_challenge(c: &mut Criterion) {
    let stripped = remove_keys(&scan(K401).expect("corpus 401 scans"), 0).expect("has keys");
    let mut g = c.benchmark_group("edit_challenge");
    g.bench_function("scan_remove_keys", |b| {
        b.iter(|| scan(black_box(K401)).map(|m| remove_keys(&m, 0).map(|v| v.len())))
    });
    g.bench_function("scan_restore_keys", |b| {
        b.iter(|| {
            scan(black_box(&stripped))
                .map(|m| restore_keys(&m, 0, black_box(CK), IK).map(|v| v.len()))
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
}

criterion_group! { name = benches; config = config(); targets = scan_register, edit_challenge }
criterion_main!(benches);
