//! Untrusted input and buggy hooks: the relay keeps relaying, and counts what it dropped.

use std::sync::Arc;

use ikt_relay::{DropReason, Hook, Inbound, NoHook, Verdict};

use crate::support::*;

/// xorshift64*: deterministic pseudo-random numbers, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Flips, deletes, duplicates and inserts SIP-significant bytes.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    const SPICE: &[u8] = b",;:<>\"\\ \t\r\n=@[]0123456789z";
    let mut m = seed.to_vec();
    for _ in 0..1 + rng.below(6) {
        if m.is_empty() {
            break;
        }
        let at = rng.below(m.len());
        match rng.below(5) {
            0 => m[at] = SPICE[rng.below(SPICE.len())],
            1 => {
                m.remove(at);
            }
            2 => m.insert(at, SPICE[rng.below(SPICE.len())]),
            3 => m.truncate(at),
            _ => {
                let end = (at + rng.below(40)).min(m.len());
                let chunk = m[at..end].to_vec();
                m.splice(at..at, chunk);
            }
        }
    }
    m
}

#[tokio::test]
async fn mutated_messages_never_panic_the_relay() {
    let uas = UdpPeer::new().await;
    let uac = UdpPeer::new().await;
    let relay = relay(Some((uas.addr, None)), Arc::new(NoHook), |_| {}).await;
    let r = relay.udp_addrs()[0];
    let req = register("UDP", &uac.addr.to_string(), "z9hG4bKfuzz", "fuzz", Some(3));
    let routed = req.replacen(
        "From:",
        &format!(
            "Route: <sip:{r};lr>, \"x\" <sip:{};lr;transport=udp>\r\nFrom:",
            uas.addr
        ),
        1,
    );
    let ours = format!("Via: SIP/2.0/UDP {r};branch=z9hG4bKrelay;ikt-cid=7\r\n");
    let resp = format!(
        "SIP/2.0 401 Unauthorized\r\n{ours}{}",
        &response_to(&req, "200 OK", CHALLENGE)[17..]
    );
    let seeds = [req.into_bytes(), routed.into_bytes(), resp.into_bytes()];

    let mut rng = Rng(0x5eed_1e55_u64);
    const ROUNDS: u64 = 3000;
    for i in 0..ROUNDS {
        let m = mutate(&mut rng, &seeds[(i % 3) as usize]);
        uac.send(&m, r).await;
        if i % 100 == 99 {
            // Pace the flood so the kernel does not drop datagrams before the relay sees them.
            wait_stats(&relay, "relay caught up", |s| {
                s.received_requests + s.received_responses + s.dropped(DropReason::Malformed) > i
            })
            .await;
        }
    }
    let s = wait_stats(&relay, "every datagram handled", |s| {
        // `>=`: a mutated Via or Route may point back at the relay itself (bounded by
        // Max-Forwards), so it can see a few more messages than were sent.
        s.received_requests + s.received_responses + s.dropped(DropReason::Malformed) >= ROUNDS
    })
    .await;
    assert_eq!(s.dropped(DropReason::Panic), 0, "{s:?}");
    assert!(
        s.dropped(DropReason::Malformed) > 0 && s.forwarded_requests > 0,
        "mutations too mild: {s:?}"
    );

    // Drain what was forwarded, then a clean request still goes through.
    while tokio::time::timeout(std::time::Duration::from_millis(50), uas.recv())
        .await
        .is_ok()
    {}
    let clean = register(
        "UDP",
        &uac.addr.to_string(),
        "z9hG4bKclean",
        "clean",
        Some(70),
    );
    uac.send(clean.as_bytes(), r).await;
    loop {
        let got = text(&uas.recv().await.0);
        if got.contains("Call-ID: clean\r\n") {
            break;
        }
    }
}

/// A hook with a bug: it panics on one Call-ID.
struct Buggy;

impl Hook for Buggy {
    fn on_request(&self, msg: &Inbound<'_, '_>) -> Verdict {
        assert_ne!(msg.message.call_id(), Some("boom"), "hook bug");
        Verdict::Pass
    }
}

#[tokio::test]
async fn a_panicking_hook_loses_one_message_not_the_relay() {
    let uas = UdpPeer::new().await;
    let uac = UdpPeer::new().await;
    let relay = relay(Some((uas.addr, None)), Arc::new(Buggy), |_| {}).await;
    let r = relay.udp_addrs()[0];
    let boom = register(
        "UDP",
        &uac.addr.to_string(),
        "z9hG4bKboom",
        "boom",
        Some(70),
    );
    uac.send(boom.as_bytes(), r).await;
    wait_stats(&relay, "panic counted", |s| {
        s.dropped(DropReason::Panic) == 1
    })
    .await;
    let fine = register(
        "UDP",
        &uac.addr.to_string(),
        "z9hG4bKfine",
        "fine",
        Some(70),
    );
    uac.send(fine.as_bytes(), r).await;
    assert!(text(&uas.recv().await.0).contains("Call-ID: fine\r\n"));
}
