//! The QUIC stream framing of `ikt_transport::framing`: varint length prefix then a protobuf
//! message, read from hostile bytes with a small frame limit.
#![no_main]

use ikt_proto::{DeliveryAck, KeyBundle};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 4096;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        let mut scratch = Vec::new();
        let mut r = data;
        // Read bundles until the stream ends or a frame is refused.
        for _ in 0..64 {
            match ikt_transport::framing::read::<KeyBundle, _>(&mut r, MAX, &mut scratch).await {
                Ok(Some(b)) => {
                    let mut out = Vec::new();
                    // What was read within the limit can be written within it.
                    ikt_transport::framing::encode(&b, MAX, &mut out).expect("re-encode");
                }
                Ok(None) | Err(_) => break,
            }
            assert!(
                scratch.capacity() <= 2 * MAX,
                "scratch grew past the frame limit"
            );
        }
        let mut r = data;
        let _ = ikt_transport::framing::read::<DeliveryAck, _>(&mut r, MAX, &mut scratch).await;
    });
});
