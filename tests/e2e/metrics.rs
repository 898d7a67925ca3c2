//! `/metrics` carries the DESIGN §7 series with the right counts after a run.
//!
//! The agents emit through the `metrics` facade. A recorder installed as the thread's default,
//! with every task on one current-thread runtime, captures exactly this test's run, so the counts
//! can be asserted exactly even when other tests run in the same process.

use std::time::Duration;

use ikt_agent::Mode;
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Chain, Opts, register};

/// The value of one series line (`name{labels} value`), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_after_a_grpc_run() {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
            &[0.001, 0.01, 0.1, 1.0],
        )
        .unwrap()
        .build_recorder();
    let handle = recorder.handle();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let text = rt.block_on(async {
        let chain = Chain::start(Opts::new(Mode::Grpc)).await;
        for i in 0..3 {
            let ue = chain.ue(i).await;
            register(&ue).await;
        }
        // Gauges of peer state are refreshed every 500 ms; acks are observed off the SIP path.
        tokio::time::sleep(Duration::from_millis(1200)).await;

        // Served by the admin endpoint exactly as a scraper sees it.
        let l = ikt_agent::admin::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = l.local_addr().unwrap();
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let health: ikt_agent::admin::HealthFn = std::sync::Arc::new(|| ikt_agent::admin::Health {
            ok: true,
            detail: vec![],
        });
        tokio::spawn(ikt_agent::admin::serve(l, Some(handle.clone()), health, rx));
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        drop(chain);
        out
    });
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    let v = |s: &str| value(&text, s).unwrap_or_else(|| panic!("missing {s} in\n{text}"));
    assert_eq!(
        v(r#"ikt_bundles_sent_total{peer="pcscf-1",mode="grpc"}"#),
        3.0
    );
    assert_eq!(
        v(r#"ikt_bundles_received_total{peer="scscf-1",mode="grpc"}"#),
        3.0
    );
    assert_eq!(v("ikt_delivery_seconds_count"), 3.0);
    assert_eq!(v("ikt_key_wait_seconds_count"), 3.0);
    assert_eq!(v("ikt_store_entries"), 3.0);
    assert_eq!(v("ikt_parked_401"), 0.0);
    assert_eq!(v(r#"ikt_peer_up{peer="pcscf-1"}"#), 1.0);
    assert_eq!(v(r#"ikt_peer_up{peer="scscf-1"}"#), 1.0);
    // Three 401s seen by each agent (one per registration).
    assert_eq!(
        v(r#"ikt_sip_messages_total{direction="response",kind="401"}"#),
        6.0
    );
    assert!(v(r#"ikt_sip_messages_total{direction="request",kind="REGISTER"}"#) >= 12.0);
    assert!(
        value(&text, "ikt_failclosed_total").is_none(),
        "nothing failed closed:\n{text}"
    );
    for key in ["ck=", "ik="] {
        assert!(!text.contains(key), "metrics must not carry key material");
    }
}
