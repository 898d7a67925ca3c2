//! Benchmarks of the per-401 key operations: sealing, opening, and a store round trip.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ikt_keys::{
    AadContext, Ck, Ik, KeyBundle, KeyStore, Opener, OpenerConfig, Sealer, SecretBytes, StoreConfig,
};

const TO: &str = "sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org";

fn bundle(i: u32) -> KeyBundle {
    KeyBundle {
        seq: u64::from(i),
        realm: "ims.mnc001.mcc001.3gppnetwork.org".into(),
        nonce: format!("q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83v{i:08}="),
        call_id: format!("{i:08}-a84b4c76e66710@pc33.example"),
        cseq: 1,
        impu: TO.into(),
        impi: "001010000000001@ims.mnc001.mcc001.3gppnetwork.org".into(),
        ck: Ck::from_bytes([0x11; 16]),
        ik: Ik::from_bytes([0x22; 16]),
        issued_at_ms: 1_000_000,
        not_after_ms: 1_064_000,
        algorithm: "AKAv1-MD5".into(),
    }
}

fn pair() -> (Sealer, Opener) {
    let secret = SecretBytes::from_slice(&[7; 32]).expect("secret");
    let sealer = Sealer::new("k1", &secret, "scscf-1", "pcscf-1").expect("sealer");
    let mut opener = Opener::new(OpenerConfig::default());
    opener
        .add_kid("k1", &secret, "scscf-1", "pcscf-1")
        .expect("kid");
    (sealer, opener)
}

fn seal_bundle(c: &mut Criterion) {
    let (sealer, _) = pair();
    let b = bundle(1);
    c.bench_function("seal_bundle", |bench| {
        bench.iter(|| black_box(sealer.seal(black_box(&b), TO).expect("seal")));
    });
}

fn seal_bundle_fixed_nonce(c: &mut Criterion) {
    // Same as seal_bundle without the getrandom system call, to separate its cost.
    let (sealer, _) = pair();
    let b = bundle(1);
    c.bench_function("seal_bundle_fixed_nonce", |bench| {
        bench.iter(|| {
            black_box(
                sealer
                    .seal_with_nonce(black_box(&b), TO, [1; 12])
                    .expect("seal"),
            )
        });
    });
}

fn open_bundle(c: &mut Criterion) {
    let (sealer, mut opener) = pair();
    let b = bundle(1);
    let token = sealer.seal(&b, TO).expect("seal");
    let ctx = AadContext::for_bundle(&b, TO);
    c.bench_function("open_bundle", |bench| {
        // After the first open the nonce is in the replay cache: each further open is an
        // identical retransmission, the same crypto plus one cache look-up.
        bench.iter(|| {
            black_box(
                opener
                    .open(black_box(&token), &ctx, 1_000_100)
                    .expect("open"),
            )
        });
    });
}

fn store_insert_take(c: &mut Criterion) {
    let mut store: KeyStore<()> = KeyStore::new(StoreConfig::default());
    // A realistic background population, so hashing and probing are not measured on an empty table.
    for i in 0..10_000 {
        store.insert(bundle(100_000 + i), 0).expect("insert");
    }
    let b = bundle(1);
    let nonce = b.nonce.clone();
    c.bench_function("store_insert_take", |bench| {
        bench.iter_batched(
            || b.clone(),
            |b| {
                store.insert(b, 1).expect("insert");
                black_box(store.take(&nonce, None, 2).expect("take"))
            },
            BatchSize::SmallInput,
        );
    });
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
}

criterion_group! {
    name = benches;
    config = config();
    targets = seal_bundle, seal_bundle_fixed_nonce, open_bundle, store_insert_take
}
criterion_main!(benches);
