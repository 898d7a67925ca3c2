//! Hooks: hold and release, answer, edit, drop, hold by future, abandoned holds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ikt_relay::{Direction, DropReason, Hook, Inbound, Release, Transport, Verdict, response};
use tokio::sync::mpsc;

use crate::support::*;

/// Holds every 401 and hands its release handle (plus the scanned bytes) to the test.
struct Park401 {
    parked: mpsc::UnboundedSender<(Release, Vec<u8>, Option<String>)>,
}

impl Hook for Park401 {
    fn on_response(&self, msg: &Inbound<'_, '_>) -> Verdict {
        assert_eq!(msg.direction, Direction::Response);
        assert_eq!(msg.transport, Transport::Udp);
        if msg.message.status() != Some(401) {
            return Verdict::Pass;
        }
        let (verdict, release) = Verdict::held();
        let tag = msg.via_param("ikt").map(str::to_owned);
        assert_eq!(
            msg.via_param_values("ikt"),
            tag.as_deref().into_iter().collect::<Vec<_>>()
        );
        assert_eq!(msg.via_param("no-such-param"), None);
        self.parked
            .send((release, msg.bytes().to_vec(), tag))
            .unwrap();
        verdict
    }
}

#[tokio::test]
async fn held_response_is_released_later_while_other_traffic_flows() {
    let (tx, mut parked) = mpsc::unbounded_channel();
    let uas = UdpPeer::new().await;
    let uac = UdpPeer::new().await;
    let relay = relay(
        Some((uas.addr, None)),
        Arc::new(Park401 { parked: tx }),
        |c| c.via_params = "ikt=pcscf-1".into(),
    )
    .await;
    let r = relay.udp_addrs()[0];

    let req = register(
        "UDP",
        &uac.addr.to_string(),
        "z9hG4bKheld",
        "call-held",
        Some(70),
    );
    uac.send(req.as_bytes(), r).await;
    let fwd = text(&uas.recv().await.0);
    let (via_line, _) = relay_via(&fwd, "UDP", &r.to_string(), "ikt=pcscf-1");
    let challenge = response_to(&fwd, "401 Unauthorized", CHALLENGE);
    uas.send(challenge.as_bytes(), r).await;
    let (release, seen, tag) = tokio::time::timeout(GUARD, parked.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        text(&seen),
        challenge,
        "the hook sees the response as received"
    );
    assert_eq!(tag.as_deref(), Some("pcscf-1"));

    // While the 401 is parked, a whole other transaction crosses the relay.
    let other = register(
        "UDP",
        &uac.addr.to_string(),
        "z9hG4bKother",
        "call-other",
        Some(70),
    );
    uac.send(other.as_bytes(), r).await;
    let fwd2 = text(&uas.recv().await.0);
    let ok = response_to(&fwd2, "200 OK", "");
    uas.send(ok.as_bytes(), r).await;
    assert!(text(&uac.recv().await.0).starts_with("SIP/2.0 200 OK\r\n"));
    uac.assert_empty();

    // Release with an edit: the relay still pops its own Via.
    let edited = challenge.replace("qop=\"auth,auth-int\"", "qop=\"auth\"");
    release.release(Verdict::Replace(edited.clone().into_bytes()));
    assert_eq!(text(&uac.recv().await.0), without_line(&edited, &via_line));
    let s = wait_stats(&relay, "release", |s| s.released == 1).await;
    assert_eq!((s.held, s.forwarded_responses), (1, 2));
}

#[tokio::test]
async fn dropped_release_handle_drops_the_message_and_counts_it() {
    let (tx, mut parked) = mpsc::unbounded_channel();
    let uas = UdpPeer::new().await;
    let uac = UdpPeer::new().await;
    let relay = relay(
        Some((uas.addr, None)),
        Arc::new(Park401 { parked: tx }),
        |_| {},
    )
    .await;
    let r = relay.udp_addrs()[0];
    let req = register(
        "UDP",
        &uac.addr.to_string(),
        "z9hG4bKabandon",
        "call-abandon",
        Some(70),
    );
    uac.send(req.as_bytes(), r).await;
    let fwd = text(&uas.recv().await.0);
    uas.send(
        response_to(&fwd, "401 Unauthorized", CHALLENGE).as_bytes(),
        r,
    )
    .await;
    let (release, _, _) = tokio::time::timeout(GUARD, parked.recv())
        .await
        .unwrap()
        .unwrap();
    drop(release);
    wait_stats(&relay, "abandoned hold", |s| {
        s.dropped(DropReason::HoldAbandoned) == 1
    })
    .await;
    uac.assert_empty();
}

/// Turns 401s into 503 + Retry-After after a short wait (the fail-closed path of the agent).
struct FailClosed;

impl Hook for FailClosed {
    fn on_response(&self, msg: &Inbound<'_, '_>) -> Verdict {
        if msg.message.status() != Some(401) {
            return Verdict::Pass;
        }
        let unavailable = response::rewrite_response(
            msg.message,
            503,
            "Service Unavailable",
            &[("Retry-After", "5")],
        );
        Verdict::hold(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Verdict::Replace(unavailable)
        })
    }
}

#[tokio::test]
async fn future_hold_turns_401_into_503_keeping_routing_headers() {
    let uas = UdpPeer::new().await;
    let uac = UdpPeer::new().await;
    let relay = relay(Some((uas.addr, None)), Arc::new(FailClosed), |_| {}).await;
    let r = relay.udp_addrs()[0];
    let req = register(
        "UDP",
        &uac.addr.to_string(),
        "z9hG4bK503",
        "call-503",
        Some(70),
    );
    uac.send(req.as_bytes(), r).await;
    let fwd = text(&uas.recv().await.0);
    let (via_line, _) = relay_via(&fwd, "UDP", &r.to_string(), "");
    let challenge = response_to(&fwd, "401 Unauthorized", CHALLENGE);
    uas.send(challenge.as_bytes(), r).await;
    let back = text(&uac.recv().await.0);
    // Expected: the 401's Via/From/To/Call-ID/CSeq lines, minus our Via, then Retry-After.
    let mut expected = String::from("SIP/2.0 503 Service Unavailable\r\n");
    for line in challenge.split("\r\n").skip(1) {
        if ["Via:", "From:", "To:", "Call-ID:", "CSeq:"]
            .iter()
            .any(|p| line.starts_with(p))
            && format!("{line}\r\n") != via_line
        {
            expected.push_str(line);
            expected.push_str("\r\n");
        }
    }
    expected.push_str("Retry-After: 5\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(back, expected);
    assert!(!back.contains("ck="), "no keys toward the UE");
}

/// Answers REGISTERs from a barred user with 503 and drops OPTIONS.
struct Gate {
    seen: Mutex<Vec<String>>,
}

impl Hook for Gate {
    fn on_request(&self, msg: &Inbound<'_, '_>) -> Verdict {
        self.seen
            .lock()
            .unwrap()
            .push(msg.message.call_id().unwrap_or("").to_owned());
        match msg.message.method() {
            Some("OPTIONS") => Verdict::Drop,
            Some("REGISTER") if msg.message.call_id() == Some("barred") => {
                Verdict::Answer(response::response_to(
                    msg.message,
                    503,
                    "Service Unavailable",
                    &[("Retry-After", "30")],
                ))
            }
            _ => Verdict::Pass,
        }
    }
}

#[tokio::test]
async fn hook_answers_503_to_the_sender_and_drops() {
    let uas = UdpPeer::new().await;
    let uac = UdpPeer::new().await;
    let gate = Arc::new(Gate {
        seen: Mutex::new(Vec::new()),
    });
    let relay = relay(Some((uas.addr, None)), gate.clone(), |_| {}).await;
    let r = relay.udp_addrs()[0];
    let req = register(
        "UDP",
        &uac.addr.to_string(),
        "z9hG4bKbar",
        "barred",
        Some(70),
    );
    uac.send(req.as_bytes(), r).await;
    let (answer, from) = uac.recv().await;
    assert_eq!(from, r);
    let via = req.lines().find(|l| l.starts_with("Via:")).unwrap();
    let from_h = req.lines().find(|l| l.starts_with("From:")).unwrap();
    let to = req.lines().find(|l| l.starts_with("To:")).unwrap();
    let answer = text(&answer);
    let tag_at = answer.find(&format!("{to};tag=")).expect("To gets a tag") + to.len() + 5;
    let tag = &answer[tag_at..tag_at + answer[tag_at..].find("\r\n").unwrap()];
    assert!(!tag.is_empty() && tag.bytes().all(|b| b.is_ascii_alphanumeric()));
    let expected = format!(
        "SIP/2.0 503 Service Unavailable\r\n{via}\r\n{from_h}\r\n{to};tag={tag}\r\nCall-ID: barred\r\nCSeq: 1 REGISTER\r\nRetry-After: 30\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(answer, expected);

    // A retransmission gets the identical answer (deterministic To tag).
    uac.send(req.as_bytes(), r).await;
    assert_eq!(text(&uac.recv().await.0), expected);

    let options = req
        .replace("REGISTER sip:", "OPTIONS sip:")
        .replace("1 REGISTER", "1 OPTIONS")
        .replace("barred", "opt");
    uac.send(options.as_bytes(), r).await;
    let s = wait_stats(&relay, "hook drop", |s| s.dropped(DropReason::Hook) == 1).await;
    assert_eq!((s.answered, s.forwarded_requests), (2, 0));
    uas.assert_empty();
    assert_eq!(*gate.seen.lock().unwrap(), vec!["barred", "barred", "opt"]);
}

#[tokio::test]
async fn hold_overflow_and_timeout_are_bounded() {
    struct Forever;
    impl Hook for Forever {
        fn on_request(&self, _: &Inbound<'_, '_>) -> Verdict {
            Verdict::hold(std::future::pending())
        }
    }
    let uas = UdpPeer::new().await;
    let uac = UdpPeer::new().await;
    let relay = relay(Some((uas.addr, None)), Arc::new(Forever), |c| {
        c.max_held = 2;
        c.max_hold = Duration::from_millis(300);
    })
    .await;
    for i in 0..3 {
        let req = register(
            "UDP",
            &uac.addr.to_string(),
            &format!("z9hG4bKf{i}"),
            &format!("f-{i}"),
            Some(70),
        );
        uac.send(req.as_bytes(), relay.udp_addrs()[0]).await;
    }
    let s = wait_stats(&relay, "overflow and timeouts", |s| {
        s.dropped(DropReason::HoldOverflow) == 1 && s.dropped(DropReason::HoldTimeout) == 2
    })
    .await;
    assert_eq!(s.held, 2);
    uas.assert_empty();
}
