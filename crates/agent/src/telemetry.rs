//! Logs and metrics: the names of DESIGN §7 and the one place that installs global recorders.
//!
//! Libraries only emit through the `tracing` and `metrics` facades; a binary calls [`init_tracing`]
//! and [`install_metrics`] once at start.

use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::Error;

/// Bundles sent to a peer, labels `peer`, `mode`.
pub const BUNDLES_SENT: &str = "ikt_bundles_sent_total";
/// Bundles received from a peer, labels `peer`, `mode`.
pub const BUNDLES_RECEIVED: &str = "ikt_bundles_received_total";
/// Time from sending a bundle to its ack.
pub const DELIVERY_SECONDS: &str = "ikt_delivery_seconds";
/// Time a 401 waited for its keys at the p-cscf-agent.
pub const KEY_WAIT_SECONDS: &str = "ikt_key_wait_seconds";
/// 401s currently held waiting for keys.
pub const PARKED_401: &str = "ikt_parked_401";
/// Responses failed closed (503), label `reason`.
pub const FAILCLOSED: &str = "ikt_failclosed_total";
/// 1 when the key transport to a peer is up, label `peer`.
pub const PEER_UP: &str = "ikt_peer_up";
/// SIP messages seen, labels `direction`, `kind`.
pub const SIP_MESSAGES: &str = "ikt_sip_messages_total";
/// Bundles currently held in the key store.
pub const STORE_ENTRIES: &str = "ikt_store_entries";
/// 401s that arrived with ck/ik in clear where protection was required, label `action`.
pub const DOWNGRADES: &str = "ikt_downgrade_total";
/// Sealed tokens that failed to open, label `reason`.
pub const TOKEN_FAILURES: &str = "ikt_token_failures_total";
/// Handshakes refused by the key transport, label `reason`.
pub const REFUSED_HANDSHAKES: &str = "ikt_refused_handshakes_total";

/// Installs the global tracing subscriber: `RUST_LOG` if set, else `default_filter`; logs to stderr.
pub fn init_tracing(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Installs the global Prometheus recorder and starts its upkeep task (needs a tokio runtime).
pub fn install_metrics() -> Result<PrometheusHandle, Error> {
    // Loopback hops take tens of microseconds; key waits are bounded by key_wait (200 ms default).
    let buckets = [
        0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
        0.5, 1.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
        .map_err(|e| Error::Metrics(e.to_string()))?
        .install_recorder()
        .map_err(|e| Error::Metrics(e.to_string()))?;
    describe();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(BUNDLES_SENT, "Key bundles sent to a peer agent.");
    describe_counter!(BUNDLES_RECEIVED, "Key bundles received from a peer agent.");
    describe_histogram!(
        DELIVERY_SECONDS,
        "Time from sending a key bundle to its ack."
    );
    describe_histogram!(
        KEY_WAIT_SECONDS,
        "Time a 401 was held waiting for its keys."
    );
    describe_gauge!(PARKED_401, "401 responses currently held waiting for keys.");
    describe_counter!(
        FAILCLOSED,
        "Responses turned into 503 because keys could not be carried."
    );
    describe_gauge!(
        PEER_UP,
        "1 when the key transport to the peer is connected."
    );
    describe_counter!(SIP_MESSAGES, "SIP messages handled, by direction and kind.");
    describe_gauge!(STORE_ENTRIES, "Key bundles held in the key store.");
    describe_counter!(
        DOWNGRADES,
        "401s with clear ck/ik where protected transport was required."
    );
    describe_counter!(
        TOKEN_FAILURES,
        "Sealed kt tokens that failed to open, by reason."
    );
    describe_counter!(
        REFUSED_HANDSHAKES,
        "Key transport handshakes refused, by reason."
    );
}

/// Counts one SIP message in [`SIP_MESSAGES`] with low-cardinality labels: the direction
/// (`request`/`response`) and a kind (`REGISTER`, `NOTIFY`, `SUBSCRIBE`, `other` for requests;
/// `401`, `407`, `2xx`, `other` for responses).
pub fn count_sip(msg: &ikt_sip::Message<'_>) {
    let (direction, kind) = sip_labels(msg);
    metrics::counter!(SIP_MESSAGES, "direction" => direction, "kind" => kind).increment(1);
}

/// The labels [`count_sip`] uses for a message.
pub fn sip_labels(msg: &ikt_sip::Message<'_>) -> (&'static str, &'static str) {
    match msg.status() {
        Some(401) => ("response", "401"),
        Some(407) => ("response", "407"),
        Some(200..=299) => ("response", "2xx"),
        Some(_) => ("response", "other"),
        None => {
            let m = msg.method().unwrap_or("");
            let kind = ["REGISTER", "NOTIFY", "SUBSCRIBE"]
                .into_iter()
                .find(|k| m.eq_ignore_ascii_case(k))
                .unwrap_or("other");
            ("request", kind)
        }
    }
}

/// Milliseconds since the Unix epoch: the time base of bundles and tokens.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
