//! What a run produces, serialised to JSON beside the report so the report can be re-rendered.

use serde::{Deserialize, Serialize};

use crate::chain::Mode;
use crate::latency::Summary;

/// A whole run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    /// UTC date and time of the run.
    pub date: String,
    /// The command line that produced it.
    pub command: String,
    /// The machine.
    pub machine: Machine,
    /// Settings of the run.
    pub settings: Settings,
    /// Per mode, in round order.
    pub modes: Vec<ModeResult>,
    /// The relay-vs-Kamailio anchor, one per offered rate.
    #[serde(default)]
    pub anchors: Vec<AnchorResult>,
    /// How busy the machine was with other work.
    pub noise: Noise,
    /// Micro-benchmark figures (filled in by `report`).
    #[serde(default)]
    pub micro: Vec<MicroResult>,
}

/// The machine.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model from /proc/cpuinfo.
    pub cpu: String,
    /// CPUs online.
    pub nproc: usize,
    /// Kernel release.
    pub kernel: String,
    /// Memory, bytes.
    pub mem_bytes: u64,
    /// /proc/loadavg before the run.
    pub load_before: String,
    /// /proc/loadavg after the run.
    pub load_after: String,
}

/// Settings of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Settings {
    /// Rounds over all modes.
    pub rounds: usize,
    /// Seconds per segment.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub segment_s: f64,
    /// Open-loop rate of the target-rate segments, registrations/s.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub rate: f64,
    /// Registrations in flight in the saturation segments.
    pub window: usize,
    /// Subscribers provisioned.
    pub subscribers: usize,
    /// 401s held open in the memory phase.
    pub hold: usize,
}

/// Foreign load during the measured segments.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Noise {
    /// Share of all CPUs busy with processes other than ours during the segments (0..1).
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub foreign_cpu_share: f64,
    /// Same, the busiest segment.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub foreign_cpu_share_max: f64,
}

/// CPU of one process per registration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProcCpu {
    /// `lab`, `p-agent`, `s-agent`, `ikt-load`.
    pub process: String,
    /// µs of CPU per completed registration.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub us_per_reg: f64,
}

/// One load phase (target rate or saturation) of a mode, all rounds together.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PhaseResult {
    /// Registrations completed.
    pub registrations: u64,
    /// Completed per second within the segments, per round.
    pub rate_per_round: Vec<f64>,
    /// Median of `rate_per_round`.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub rate: f64,
    /// REGISTER → 401 at the UE, µs.
    pub lat_401: Summary,
    /// First REGISTER → 200 at the UE, µs.
    pub lat_reg: Summary,
    /// CPU per registration per process.
    pub cpu: Vec<ProcCpu>,
    /// Failed, timed out, stray or key-leaking registrations (0 for a clean phase).
    pub failures: u64,
    /// Registrations with no final answer in time.
    #[serde(default)]
    pub timed_out: u64,
    /// Responses that matched no registration in flight.
    #[serde(default)]
    pub stray: u64,
    /// 401s that reached the UE with ck/ik in them.
    #[serde(default)]
    pub keys_seen: u64,
    /// Failure statuses seen, `code:count`.
    pub failure_statuses: Vec<String>,
    /// Open-loop starts skipped for want of a free subscriber.
    pub pool_exhausted: u64,
}

/// Bytes per registration on the agent-to-agent link.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Bytes {
    /// SIP between I-CSCF and the next hop, IP bytes per registration.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub sip_ip: f64,
    /// Same, UDP payload only.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub sip_payload: f64,
    /// Out-of-band channel, IP bytes per registration (both directions, acks included).
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub oob_ip: f64,
    /// Same, TCP/UDP payload (TCP: IP bytes minus 52 per segment).
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub oob_payload: f64,
    /// Out-of-band packets per registration.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub oob_packets: f64,
}

/// The hold phase: memory per pending bundle in the p-cscf-agent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Memory {
    /// 401s held open (not answered).
    pub held: u64,
    /// Growth of `ikt_store_entries`.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub entries: f64,
    /// Growth of the p-cscf-agent's RssAnon, bytes.
    pub rss_growth: i64,
    /// `rss_growth / entries`.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub bytes_per_bundle: f64,
}

/// Bundles sent versus received, from the agents' /metrics at the end of the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Bundles {
    /// `ikt_bundles_sent_total` of the s-cscf-agent.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub sent: f64,
    /// `ikt_bundles_received_total` of the p-cscf-agent.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub received: f64,
    /// `ikt_failclosed_total` of both agents.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub failclosed: f64,
    /// sent − received, plus fail-closed.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub lost: f64,
    /// p-cscf-agent: mean time a 401 waited for its keys (`ikt_key_wait_seconds`), µs.
    #[serde(default)]
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub key_wait_mean_us: f64,
    /// p-cscf-agent: share of 401s that waited more than 50 µs for their keys.
    #[serde(default)]
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub key_wait_parked_share: f64,
    /// s-cscf-agent: mean send → ack time of a bundle (`ikt_delivery_seconds`), µs.
    #[serde(default)]
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub delivery_mean_us: f64,
}

/// Everything measured for one mode.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModeResult {
    /// The mode.
    pub mode: Option<Mode>,
    /// Target-rate segments.
    pub at_rate: PhaseResult,
    /// Saturation segments.
    pub saturation: PhaseResult,
    /// Link bytes (all segments).
    pub bytes: Option<Bytes>,
    /// Hold phase.
    pub memory: Option<Memory>,
    /// Bundle accounting (agent modes).
    pub bundles: Option<Bundles>,
    /// UDP receive-buffer drops per socket over the whole run (`element:count`), to tell where
    /// time-outs come from.
    #[serde(default)]
    pub udp_drops: Vec<String>,
}

/// One hop under SIPp load.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HopResult {
    /// `sip-relay` or `kamailio`.
    pub hop: String,
    /// Registrations SIPp completed, all rounds.
    pub registrations: u64,
    /// SIPp calls that failed, all rounds.
    pub failed: u64,
    /// Achieved registrations/s per round.
    pub rate_per_round: Vec<f64>,
    /// CPU µs per registration of the hop (all its processes), per round.
    pub cpu_us_per_round: Vec<f64>,
    /// Median of `cpu_us_per_round`.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub cpu_us_per_reg: f64,
    /// Share of the hop's CPU time spent in user space (rest: kernel), all rounds.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub user_share: f64,
    /// 401 path through the hop, µs (probe).
    pub lat_401: Summary,
    /// Added to the 401 path versus the UAS directly: p50, µs.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub added_p50_us: f64,
    /// Added p99, µs.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub added_p99_us: f64,
}

/// The anchor comparison.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AnchorResult {
    /// Offered SIPp rate, registrations/s.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub rate: f64,
    /// Seconds per round per hop.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub segment_s: f64,
    /// The probe straight to the UAS, µs.
    pub direct_401: Summary,
    /// Per hop.
    pub hops: Vec<HopResult>,
    /// Kamailio version line.
    pub kamailio_version: String,
}

/// One criterion figure.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MicroResult {
    /// Crate or group.
    pub group: String,
    /// Benchmark name.
    pub name: String,
    /// Mean time per iteration, ns.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub mean_ns: f64,
    /// Elements per iteration when the bench declares a throughput.
    pub elements: Option<u64>,
}
