//! `ims-lab demo`: the network and its UEs in one process on loopback. Registers every UE,
//! re-authenticates one on command, runs one failed-attempt sequence with a wrong K, and reports.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use crate::Error;
use crate::agents::{AgentBins, AgentPair, PairOptions, PairPorts, metric, metric_sum};
use crate::config::LabConfig;
use crate::hss::{Hss, Provisioned, Subscriber};
use crate::network::{AgentHops, Network, NetworkConfig};
use crate::secret::K;
use crate::ue::{self, Ue, UeConfig, UeEvent};

/// The subscribers the demo uses when given none (MILENAGE sets 2, 3 and 5).
pub const EXAMPLE_SUBSCRIBERS: &str = include_str!("../subscribers.example.toml");

/// `n` subscribers `ue<i>@ims.example.org` whose keys cycle through the example sets 2, 3 and 5
/// (a lab may share keys between subscribers; each still has its own SQN and registration).
pub fn generated_subscribers(n: usize) -> Result<Vec<Provisioned>, Error> {
    let base = crate::hss::parse_provisioning(EXAMPLE_SUBSCRIBERS)?;
    Ok((0..n)
        .map(|i| {
            let mut p = base[i % base.len()].clone();
            p.impi = format!("ue{i}@ims.example.org");
            p.impus = vec![format!("sip:ue{i}@ims.example.org")];
            p
        })
        .collect())
}

/// How long any single step may take before the demo reports it as failed.
const STEP: Duration = Duration::from_secs(10);

/// What the demo saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoReport {
    /// UEs started.
    pub ues: usize,
    /// UEs that registered.
    pub registered: usize,
    /// UEs whose key fingerprint equals the P-CSCF's.
    pub keys_matched: usize,
    /// 401s the UEs saw with ck/ik still present (must be 0).
    pub keys_seen_by_ues: u32,
    /// Challenges the S-CSCF sent.
    pub challenges: u64,
    /// The re-authenticated IMPI and whether it re-registered with new, matching keys.
    pub reauth: Option<(String, bool)>,
    /// Policy limit in force.
    pub max_failed_attempts: u32,
    /// Policy action in force.
    pub action: String,
    /// The IMPI run with a wrong K, failed responses counted and whether the UE was rejected.
    pub wrong_k: Option<(String, u64, bool)>,
    /// Times the policy acted.
    pub policy_actions: u64,
    /// UEs deregistered by the network (NOTIFY terminated).
    pub network_deregistrations: usize,
    /// Time of each initial registration (first REGISTER to 200), sorted.
    pub registration_times: Vec<Duration>,
    /// Initial registrations answered 503 (keys could not be carried: fail closed).
    pub rejected_503: usize,
}

impl DemoReport {
    /// The `q` quantile (0..=1, nearest rank) of the registration times.
    pub fn registration_quantile(&self, q: f64) -> Option<Duration> {
        let n = self.registration_times.len();
        if n == 0 {
            return None;
        }
        let rank = (q * n as f64).ceil() as usize;
        Some(self.registration_times[rank.clamp(1, n) - 1])
    }

    /// The report as printed.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if let (Some(p50), Some(p99)) = (
            self.registration_quantile(0.5),
            self.registration_quantile(0.99),
        ) {
            let _ = writeln!(
                s,
                "registration time: median {:.2} ms, p99 {:.2} ms",
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3
            );
        }
        let _ = writeln!(
            s,
            "registrations: {}/{} UEs registered",
            self.registered, self.ues
        );
        let _ = writeln!(s, "challenges: {} sent by the S-CSCF", self.challenges);
        let _ = writeln!(
            s,
            "keys matched UE<->P-CSCF: {}/{}",
            self.keys_matched, self.registered
        );
        let _ = writeln!(
            s,
            "401s reaching a UE with ck/ik: {}",
            self.keys_seen_by_ues
        );
        match &self.reauth {
            Some((impi, ok)) => {
                let _ = writeln!(
                    s,
                    "network-initiated re-authentication: {impi}: {}",
                    if *ok {
                        "re-registered with new keys, matched"
                    } else {
                        "FAILED"
                    }
                );
            }
            None => {
                let _ = writeln!(s, "network-initiated re-authentication: not run");
            }
        }
        match &self.wrong_k {
            Some((impi, failures, rejected)) => {
                let _ = writeln!(
                    s,
                    "failed-attempt policy: {impi} with a wrong K: {failures} failed responses, limit {}, action {}, {}",
                    self.max_failed_attempts,
                    self.action,
                    if *rejected {
                        "rejected"
                    } else {
                        "NOT rejected"
                    }
                );
            }
            None => {
                let _ = writeln!(s, "failed-attempt policy: not run");
            }
        }
        let _ = writeln!(
            s,
            "policy actions: {}; deregistered by the network: {}",
            self.policy_actions, self.network_deregistrations
        );
        s
    }
}

/// Runs the demo with these subscribers and lab settings; `hops` inserts agents.
pub async fn run(
    provisioned: &[Provisioned],
    lab: LabConfig,
    hops: AgentHops,
) -> Result<DemoReport, Error> {
    let hss = Arc::new(Hss::new(provisioned.iter().map(Subscriber::from).collect()));
    let mut cfg = NetworkConfig::loopback(lab.clone());
    cfg.admin = None;
    let net = Network::start(cfg, hss, hops).await?;
    let result = scenario(&net, provisioned, &lab).await;
    net.shutdown().await;
    result
}

async fn scenario(
    net: &Network,
    provisioned: &[Provisioned],
    lab: &LabConfig,
) -> Result<DemoReport, Error> {
    let pcscf = net.addrs().pcscf;
    let mut ues = Vec::new();
    for p in provisioned {
        ues.push(Ue::spawn(UeConfig::from_provisioned(p, &lab.realm, pcscf)).await?);
    }
    let mut report = DemoReport {
        ues: ues.len(),
        max_failed_attempts: lab.reauth.max_failed_attempts,
        action: lab.reauth.on_exceeded.as_str().into(),
        ..DemoReport::default()
    };
    let outcomes = register_all(&ues).await;
    for (ue, outcome) in ues.iter().zip(&outcomes) {
        if let Ok(UeEvent::Rejected(503)) = outcome {
            report.rejected_503 += 1;
        }
        if let Ok(UeEvent::Registered {
            fingerprint, took, ..
        }) = outcome
        {
            report.registered += 1;
            report.registration_times.push(*took);
            if net.pcscf_fingerprint(ue.impi()).as_deref() == Some(fingerprint.as_str()) {
                report.keys_matched += 1;
            }
        }
    }
    report.registration_times.sort();
    if let Some(ue) = ues.first().filter(|u| u.status().registered) {
        let before = ue.fingerprint();
        let mut rx = ue.events();
        net.reauth(ue.impi()).await?;
        let ok = match ue::wait_for(&mut rx, STEP, |e| {
            matches!(e, UeEvent::Registered { .. } | UeEvent::Rejected(_))
        })
        .await
        {
            Ok(UeEvent::Registered { fingerprint, .. }) => {
                Some(fingerprint.clone()) != before
                    && net.pcscf_fingerprint(ue.impi()) == Some(fingerprint)
            }
            _ => false,
        };
        report.reauth = Some((ue.impi().to_string(), ok));
    }
    if let Some((ue, p)) = ues
        .last()
        .zip(provisioned.last())
        .filter(|(u, _)| u.status().registered)
    {
        let failures_before = net.scscf_counts().auth_failures;
        ue.set_k(wrong_k(&p.k)).await?;
        let mut rx = ue.events();
        net.reauth(ue.impi()).await?;
        // The 403 and the NOTIFY terminated travel different paths and may arrive in either order.
        let want_notify = lab.reauth.on_exceeded == crate::config::ExceededAction::Deregister;
        let (mut code, mut notified) = (None, !want_notify);
        let _ = ue::wait_for(&mut rx, STEP, |e| {
            match e {
                UeEvent::Rejected(c) => code = Some(*c),
                UeEvent::NetworkDeregistered(_) => notified = true,
                _ => {}
            }
            code.is_some() && notified
        })
        .await;
        let rejected = code == Some(403);
        report.wrong_k = Some((
            ue.impi().to_string(),
            net.scscf_counts().auth_failures - failures_before,
            rejected,
        ));
    }
    let counts = net.scscf_counts();
    report.challenges = counts.challenges;
    report.policy_actions = counts.policy_actions;
    report.keys_seen_by_ues = ues.iter().map(|u| u.status().keys_seen_in_401).sum();
    report.network_deregistrations = ues
        .iter()
        .filter(|u| !u.status().registered)
        .count()
        .min(report.registered);
    Ok(report)
}

/// One mode's demo run through both agents, and what the agents and the path between them saw.
#[derive(Debug, Clone, Default)]
pub struct ModeReport {
    /// `plain`, `sealed`, `grpc` or `quic`.
    pub mode: String,
    /// The lab's own report (registrations, keys matched, policy).
    pub report: DemoReport,
    /// AKA challenges that crossed the I-CSCF (between the agents) with ck/ik in clear.
    pub keys_in_clear_between_agents: u64,
    /// AKA challenges that crossed it with a sealed `kt` instead.
    pub sealed_tokens_between_agents: u64,
    /// AKA challenges that crossed it with neither (keys out of band).
    pub keyless_between_agents: u64,
    /// Bundles the s-cscf-agent sent (any mode but plain).
    pub bundles_sent: u64,
    /// Bundles the p-cscf-agent received.
    pub bundles_received: u64,
    /// 401s the agents turned into 503 (`ikt_failclosed_total`, both agents).
    pub failclosed: u64,
}

impl ModeReport {
    /// The report as printed for one mode.
    pub fn render(&self) -> String {
        let mut s = format!("== mode {} ==\n", self.mode);
        s.push_str(&self.report.render());
        let _ = writeln!(
            s,
            "keys seen in clear on the SIP path between the agents: {} (kt tokens: {}, keyless challenges: {})",
            self.keys_in_clear_between_agents,
            self.sealed_tokens_between_agents,
            self.keyless_between_agents
        );
        let _ = writeln!(
            s,
            "bundles sent/received by the agents: {}/{}; 503s: {} to UEs, {} failed closed by the agents",
            self.bundles_sent, self.bundles_received, self.report.rejected_503, self.failclosed
        );
        s
    }

    /// Whether the mode did what it promises: everyone registered with matching keys, no key
    /// reached a UE, and keys crossed the path between the agents in clear only in `plain`.
    pub fn ok(&self) -> bool {
        let r = &self.report;
        r.registered == r.ues
            && r.keys_matched == r.registered
            && r.keys_seen_by_ues == 0
            && (self.mode == "plain" || self.keys_in_clear_between_agents == 0)
            && r.reauth.as_ref().is_none_or(|(_, ok)| *ok)
            && r.wrong_k.as_ref().is_none_or(|(_, _, rejected)| *rejected)
    }
}

/// A table comparing the modes, one row each.
pub fn render_summary(reports: &[ModeReport]) -> String {
    let mut s = String::from(
        "mode    registered  keys matched  clear keys between agents  503s  median ms  p99 ms\n",
    );
    for m in reports {
        let r = &m.report;
        let ms = |q| {
            r.registration_quantile(q)
                .map_or("-".to_string(), |d| format!("{:.2}", d.as_secs_f64() * 1e3))
        };
        let _ = writeln!(
            s,
            "{:<7} {:>5}/{:<5} {:>6}/{:<6} {:>26} {:>5} {:>10} {:>7}",
            m.mode,
            r.registered,
            r.ues,
            r.keys_matched,
            r.registered,
            m.keys_in_clear_between_agents,
            r.rejected_503,
            ms(0.5),
            ms(0.99)
        );
    }
    s
}

/// Starts the network with both agents in its chain (S-CSCF, s-cscf-agent, I-CSCF, p-cscf-agent,
/// P-CSCF, in that order) and waits until the agents are ready.
///
/// The agents' ports are picked before they start (each config names the next element), so
/// another socket can take one in between; an agent that then fails to start is retried on
/// fresh ports, up to three times, before the error is returned.
pub async fn start_with_agents(
    cfg: NetworkConfig,
    hss: impl Fn() -> Arc<Hss>,
    bins: &AgentBins,
    opts: &PairOptions,
) -> Result<(Network, AgentPair), Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let core = Network::stage(cfg.clone(), hss()).await?;
        let ports = PairPorts::pick()?;
        let mut pair = AgentPair::start_s(bins, opts, ports, core.scscf_addr())?;
        let edge = core.start_icscf(Some(ports.s_sip)).await?;
        pair.start_p(opts, edge.icscf_addr())?;
        let net = edge.start_pcscf(Some(ports.p_sip)).await?;
        match pair.wait_ready(Duration::from_secs(30)).await {
            Ok(()) => return Ok((net, pair)),
            Err(e) if attempt < 3 => {
                tracing::warn!(error = %e, attempt, "agents did not start; retrying on fresh ports");
                net.shutdown().await;
                drop(pair);
            }
            Err(e) => {
                pair.keep_dir();
                net.shutdown().await;
                return Err(e);
            }
        }
    }
}

/// Runs the demo with both agents in the chain in `opts.mode`, as separate processes.
pub async fn run_mode(
    provisioned: &[Provisioned],
    lab: LabConfig,
    bins: &AgentBins,
    opts: &PairOptions,
) -> Result<ModeReport, Error> {
    let mut cfg = NetworkConfig::loopback(lab.clone());
    cfg.admin = None;
    let hss = || Arc::new(Hss::new(provisioned.iter().map(Subscriber::from).collect()));
    let (net, pair) = start_with_agents(cfg, hss, bins, opts).await?;
    let result = scenario(&net, provisioned, &lab).await;
    let (s_metrics, p_metrics) = pair.metrics().await;
    use std::sync::atomic::Ordering::Relaxed;
    let watch = net.path_watch();
    let out = result.map(|report| ModeReport {
        mode: opts.mode.clone(),
        report,
        keys_in_clear_between_agents: watch.keys_in_clear.load(Relaxed),
        sealed_tokens_between_agents: watch.sealed_tokens.load(Relaxed),
        keyless_between_agents: watch.keyless_challenges.load(Relaxed),
        bundles_sent: metric_sum(&s_metrics, "ikt_bundles_sent_total") as u64,
        bundles_received: (metric_sum(&p_metrics, "ikt_bundles_received_total")
            - metric(
                &p_metrics,
                r#"ikt_bundles_received_total{peer="-",mode="plain"}"#,
            )) as u64,
        failclosed: (metric_sum(&s_metrics, "ikt_failclosed_total")
            + metric_sum(&p_metrics, "ikt_failclosed_total")) as u64,
    });
    net.shutdown().await;
    drop(pair);
    out
}

/// The wrong K the demo uses: every bit of the right one flipped (so a log scan can recompute it).
pub fn wrong_k(k: &K) -> K {
    let mut bytes = *k.expose();
    for b in &mut bytes {
        *b = !*b;
    }
    let out = K::new(bytes);
    zeroize::Zeroize::zeroize(&mut bytes);
    out
}

async fn register_all(ues: &[Ue]) -> Vec<Result<UeEvent, Error>> {
    // One after another: each UE's outcome is then attributable in the log.
    let mut out = Vec::new();
    for ue in ues {
        out.push(ue.register_and_wait(STEP).await);
    }
    out
}
