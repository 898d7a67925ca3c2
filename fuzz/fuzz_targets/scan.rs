//! Scan arbitrary bytes and exercise every accessor and editing helper on what scans.
#![no_main]

use ikt_sip::{
    prepend_via, remove_keys, remove_top_via, replace_keys_with_param, restore_keys, scan,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = scan(data) else { return };
    let _ = (
        m.start_line(),
        m.call_id(),
        m.cseq(),
        m.max_forwards(),
        m.expires(),
        m.body(),
    );
    for h in m.headers() {
        let _ = (m.name(h), m.value(h));
    }
    for v in m.vias() {
        let _ = (
            v.host(),
            v.port(),
            v.transport(),
            v.branch(),
            v.received(),
            v.rport(),
        );
    }
    let _ = (
        m.from(),
        m.to(),
        m.contacts(),
        m.route(),
        m.path(),
        m.service_route(),
    );
    let _ = m.credentials();
    for (i, c) in m.challenges().iter().enumerate() {
        let _ = c.unescaped("nonce");
        let _ = remove_keys(&m, i);
        let _ = replace_keys_with_param(&m, i, "kt", "ikt1.k.x");
        let _ = restore_keys(
            &m,
            i,
            "00112233445566778899aabbccddeeff",
            "ffeeddccbbaa99887766554433221100",
        );
    }
    let _ = prepend_via(&m, b"SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKf");
    let _ = remove_top_via(&m);
    assert_eq!(m.edit().finish(), m.bytes());
});
