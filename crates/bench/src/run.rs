//! A load run: start a chain per mode, warm them up, hold challenges open to weigh pending
//! bundles, then rounds of (target-rate segment, saturation segment) over the modes in turn,
//! so that noise from the shared machine falls on every mode alike.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::chain::{Chain, Files, Mode};
use crate::latency;
use crate::netcount::{self, Count, Counters, Match};
use crate::process;
use crate::results::{
    Bundles, Bytes, Machine, Memory, ModeResult, Noise, PhaseResult, ProcCpu, Results, Settings,
};
use crate::ue::{LoadUe, Outcome, Pace};
use crate::{Error, Result};

/// Options of a run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Modes, in round order.
    pub modes: Vec<Mode>,
    /// Rounds.
    pub rounds: usize,
    /// Length of each segment.
    pub segment: Duration,
    /// Open-loop rate of the target-rate segments.
    pub rate: f64,
    /// In flight during saturation segments.
    pub window: usize,
    /// Subscribers to provision.
    pub subscribers: usize,
    /// 401s to hold open per agent mode (0: skip the hold phase).
    pub hold: usize,
    /// Where the binaries are.
    pub bin_dir: PathBuf,
    /// Scratch directory (removed at the end).
    pub scratch: PathBuf,
    /// Print progress to stderr.
    pub verbose: bool,
    /// Keep the scratch directory (configs and logs of every process) instead of removing it.
    pub keep: bool,
}

const REALM: &str = "ims.example.org";

struct Acc {
    rate: Vec<Outcome>,
    sat: Vec<Outcome>,
    cpu_rate: BTreeMap<&'static str, u64>,
    cpu_sat: BTreeMap<&'static str, u64>,
    sip: Count,
    oob: Count,
    regs_counted: u64,
}

/// Every process measured in a segment (the chain's and our own), with CPU ns now.
fn cpu_snapshot(chain: &Chain) -> Vec<(&'static str, u64)> {
    let mut v: Vec<(&'static str, u64)> = chain
        .processes()
        .into_iter()
        .map(|(n, pid)| (n, process::cpu_ns(pid).unwrap_or(0)))
        .collect();
    v.push(("ikt-load", process::cpu_ns(std::process::id()).unwrap_or(0)));
    v
}

fn log(verbose: bool, msg: &str) {
    if verbose {
        eprintln!("ikt-load: {msg}");
    }
}

/// Runs the load part (no anchor) and returns its results.
pub fn run(opts: &Options) -> Result<Results> {
    if opts.modes.is_empty() || opts.rounds == 0 || opts.rate <= 0.0 || opts.window == 0 {
        return Err(Error::Input(
            "modes, rounds, rate and window must be non-empty/positive".into(),
        ));
    }
    if opts.subscribers < opts.window {
        return Err(Error::Input(
            "subscribers must be at least the window".into(),
        ));
    }
    let (cpu, nproc, kernel, mem) = process::machine_description();
    let loadavg = || {
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let mut results = Results {
        machine: Machine {
            cpu,
            nproc,
            kernel,
            mem_bytes: mem,
            load_before: loadavg(),
            load_after: String::new(),
        },
        settings: Settings {
            rounds: opts.rounds,
            segment_s: opts.segment.as_secs_f64(),
            rate: opts.rate,
            window: opts.window,
            subscribers: opts.subscribers,
            hold: opts.hold,
        },
        ..Results::default()
    };
    std::fs::create_dir_all(&opts.scratch)?;
    let (text, subs) = crate::subscriber::generate(opts.subscribers, REALM)?;
    let sub_file = opts.scratch.join("subscribers.toml");
    crate::subscriber::write_file(&sub_file, &text)?;
    drop(text);
    let files = Files::prepare(&opts.scratch, &opts.bin_dir, sub_file)?;
    let ue = LoadUe::bind(REALM, Arc::new(subs))?;

    let mut chains: Vec<Chain> = Vec::new();
    for &m in &opts.modes {
        log(opts.verbose, &format!("starting chain {}", m.as_str()));
        chains.push(Chain::start(m, &files)?);
    }
    let mut specs = Vec::new();
    for c in &chains {
        specs.push((
            format!("sip_{}", c.mode.as_str()),
            Match::UdpPair(c.ports.icscf, c.after_icscf()),
        ));
        match c.mode {
            Mode::Grpc => specs.push(("oob_grpc".to_string(), Match::TcpPort(c.ports.grpc))),
            Mode::Quic => specs.push(("oob_quic".to_string(), Match::UdpPort(c.ports.quic))),
            _ => {}
        }
    }
    let counters = Counters::install(&specs);
    if counters.is_none() {
        log(
            opts.verbose,
            "nftables not usable: link bytes will be reported as unavailable",
        );
    }
    let read = |name: &str| {
        counters
            .as_ref()
            .and_then(|c| c.read(name))
            .unwrap_or_default()
    };

    // Warm-up: every subscriber registers once per chain, so the P-CSCF's one-time reg-event
    // SUBSCRIBE per subscriber is out of the way before anything is measured.
    for c in &chains {
        log(opts.verbose, &format!("warm-up {}", c.mode.as_str()));
        let o = ue.run(
            c.pcscf(),
            Pace::Window(opts.window),
            Duration::from_millis(200),
        );
        let need = opts.subscribers as u64;
        let mut done = o.completed;
        let until = Instant::now() + Duration::from_secs(60);
        while done < need && Instant::now() < until {
            let more = ue.run(
                c.pcscf(),
                Pace::Window(opts.window),
                Duration::from_millis(500),
            );
            done += more.completed;
            if more.completed == 0 {
                return Err(Error::Process {
                    name: format!("{} chain", c.mode.as_str()),
                    why: format!("no registration completed in warm-up ({:?})", more.statuses),
                });
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    // Hold phase: 401s left unanswered; their bundles sit in the p-cscf-agent's store.
    let mut memory: BTreeMap<Mode, Memory> = BTreeMap::new();
    if opts.hold > 0 {
        for c in chains
            .iter()
            .filter(|c| c.mode.has_agents() && c.mode != Mode::Plain)
        {
            let Some(p) = &c.p_agent else { continue };
            log(
                opts.verbose,
                &format!("hold {} challenges open in {}", opts.hold, c.mode.as_str()),
            );
            let entries = |c: &Chain| {
                c.agent_metrics()
                    .map_or(0.0, |(_, p)| p.sum("ikt_store_entries", &[]))
            };
            let e0 = entries(c);
            let r0 = process::status_bytes(p.pid(), "RssAnon").unwrap_or(0);
            let o = ue.run(
                c.pcscf(),
                Pace::Hold {
                    total: opts.hold,
                    window: opts.window,
                },
                Duration::from_secs(120),
            );
            std::thread::sleep(Duration::from_millis(300));
            let e1 = entries(c);
            let r1 = process::status_bytes(p.pid(), "RssAnon").unwrap_or(0);
            let de = e1 - e0;
            let dr = r1 as i64 - r0 as i64;
            memory.insert(
                c.mode,
                Memory {
                    held: o.challenged,
                    entries: de,
                    rss_growth: dr,
                    bytes_per_bundle: if de > 0.0 { dr as f64 / de } else { f64::NAN },
                },
            );
        }
    }

    let mut acc: BTreeMap<Mode, Acc> = BTreeMap::new();
    for c in &chains {
        acc.insert(
            c.mode,
            Acc {
                rate: Vec::new(),
                sat: Vec::new(),
                cpu_rate: BTreeMap::new(),
                cpu_sat: BTreeMap::new(),
                sip: Count::default(),
                oob: Count::default(),
                regs_counted: 0,
            },
        );
    }
    let mut foreign: Vec<f64> = Vec::new();
    for round in 0..opts.rounds {
        for c in chains.iter_mut() {
            log(
                opts.verbose,
                &format!("round {} {}", round + 1, c.mode.as_str()),
            );
            for (i, pace) in [Pace::Rate(opts.rate), Pace::Window(opts.window)]
                .into_iter()
                .enumerate()
            {
                let sip_name = format!("sip_{}", c.mode.as_str());
                let oob_name = format!("oob_{}", c.mode.as_str());
                let sip0 = read(&sip_name);
                let oob0 = read(&oob_name);
                let cpu0 = cpu_snapshot(c);
                let m0 = process::machine_jiffies();
                let o = ue.run(c.pcscf(), pace, opts.segment);
                let m1 = process::machine_jiffies();
                let cpu1 = cpu_snapshot(c);
                let sip1 = read(&sip_name);
                let oob1 = read(&oob_name);
                let a = acc
                    .get_mut(&c.mode)
                    .ok_or_else(|| Error::Input("mode".into()))?;
                let cpu_map = if i == 0 {
                    &mut a.cpu_rate
                } else {
                    &mut a.cpu_sat
                };
                let mut ours_ns = 0u64;
                for ((name, before), (_, after)) in cpu0.iter().zip(&cpu1) {
                    let d = after.saturating_sub(*before);
                    ours_ns += d;
                    *cpu_map.entry(name).or_default() += d;
                }
                if let (Some((b0, t0)), Some((b1, t1))) = (m0, m1) {
                    let total_ns = (t1 - t0) as f64 * 1e9 / process::USER_HZ as f64;
                    let busy_ns = (b1 - b0) as f64 * 1e9 / process::USER_HZ as f64;
                    if total_ns > 0.0 {
                        foreign.push(((busy_ns - ours_ns as f64) / total_ns).max(0.0));
                    }
                }
                a.sip.packets += sip1.since(sip0).packets;
                a.sip.bytes += sip1.since(sip0).bytes;
                a.oob.packets += oob1.since(oob0).packets;
                a.oob.bytes += oob1.since(oob0).bytes;
                a.regs_counted += o.completed;
                if i == 0 {
                    a.rate.push(o)
                } else {
                    a.sat.push(o)
                }
            }
            c.lab.check_alive()?;
        }
    }

    for c in &chains {
        let a = &acc[&c.mode];
        let bytes = counters.as_ref().map(|_| {
            let n = a.regs_counted.max(1) as f64;
            let oob_overhead = if c.mode == Mode::Grpc {
                netcount::TCP_OVERHEAD
            } else {
                netcount::UDP_OVERHEAD
            };
            Bytes {
                sip_ip: a.sip.bytes as f64 / n,
                sip_payload: a
                    .sip
                    .bytes
                    .saturating_sub(a.sip.packets * netcount::UDP_OVERHEAD)
                    as f64
                    / n,
                oob_ip: a.oob.bytes as f64 / n,
                oob_payload: a.oob.bytes.saturating_sub(a.oob.packets * oob_overhead) as f64 / n,
                oob_packets: a.oob.packets as f64 / n,
            }
        });
        let bundles = c.agent_metrics().map(|(s, p)| {
            let sent = s.sum("ikt_bundles_sent_total", &[]);
            let received = p.sum("ikt_bundles_received_total", &[("mode", c.mode.as_str())]);
            let failclosed =
                s.sum("ikt_failclosed_total", &[]) + p.sum("ikt_failclosed_total", &[]);
            let lost = if matches!(c.mode, Mode::Plain) {
                failclosed
            } else {
                (sent - received).max(0.0) + failclosed
            };
            let mean = |m: &crate::scrape::Metrics, name: &str| {
                let n = m.sum(&format!("{name}_count"), &[]);
                if n > 0.0 {
                    m.sum(&format!("{name}_sum"), &[]) / n * 1e6
                } else {
                    f64::NAN
                }
            };
            let waits = p.sum("ikt_key_wait_seconds_count", &[]);
            let quick = p.sum("ikt_key_wait_seconds_bucket", &[("le", "0.00005")]);
            Bundles {
                sent,
                received,
                failclosed,
                lost,
                key_wait_mean_us: mean(&p, "ikt_key_wait_seconds"),
                key_wait_parked_share: if waits > 0.0 {
                    1.0 - quick / waits
                } else {
                    f64::NAN
                },
                delivery_mean_us: mean(&s, "ikt_delivery_seconds"),
            }
        });
        let mut udp_drops = vec![
            ("p-cscf", c.ports.pcscf),
            ("i-cscf", c.ports.icscf),
            ("s-cscf", c.ports.scscf),
        ];
        if c.mode.has_agents() {
            udp_drops.push(("p-agent", c.ports.p_sip));
            udp_drops.push(("s-agent", c.ports.s_sip));
        }
        udp_drops.push(("ue", ue.local_addr().port()));
        let udp_drops = udp_drops
            .into_iter()
            .map(|(n, p)| format!("{n}:{}", process::udp_drops(p)))
            .collect();
        results.modes.push(ModeResult {
            udp_drops,
            mode: Some(c.mode),
            at_rate: phase(&a.rate, &a.cpu_rate),
            saturation: phase(&a.sat, &a.cpu_sat),
            bytes,
            memory: memory.get(&c.mode).cloned(),
            bundles,
        });
    }
    if !foreign.is_empty() {
        results.noise = Noise {
            foreign_cpu_share: foreign.iter().sum::<f64>() / foreign.len() as f64,
            foreign_cpu_share_max: foreign.iter().copied().fold(0.0, f64::max),
        };
    }
    drop(counters);
    for c in chains {
        c.stop();
    }
    results.machine.load_after = loadavg();
    if opts.keep {
        eprintln!(
            "ikt-load: logs and configs kept in {}",
            opts.scratch.display()
        );
    } else {
        let _ = std::fs::remove_dir_all(&opts.scratch);
    }
    Ok(results)
}

fn phase(outcomes: &[Outcome], cpu: &BTreeMap<&'static str, u64>) -> PhaseResult {
    let mut l401: Vec<u32> = outcomes
        .iter()
        .flat_map(|o| o.lat_401_us.iter().copied())
        .collect();
    let mut lreg: Vec<u32> = outcomes
        .iter()
        .flat_map(|o| o.lat_reg_us.iter().copied())
        .collect();
    let regs: u64 = outcomes.iter().map(|o| o.completed).sum();
    let mut rates: Vec<f64> = outcomes.iter().map(Outcome::rate).collect();
    let per_round = rates.clone();
    rates.sort_by(f64::total_cmp);
    let median = rates.get(rates.len() / 2).copied().unwrap_or(0.0);
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for o in outcomes {
        for (k, v) in &o.statuses {
            *statuses.entry(*k).or_default() += v;
        }
    }
    PhaseResult {
        registrations: regs,
        rate_per_round: per_round,
        rate: median,
        lat_401: latency::summarize(&mut l401),
        lat_reg: latency::summarize(&mut lreg),
        cpu: cpu
            .iter()
            .map(|(n, ns)| ProcCpu {
                process: (*n).to_string(),
                us_per_reg: *ns as f64 / 1000.0 / regs.max(1) as f64,
            })
            .collect(),
        failures: outcomes
            .iter()
            .map(|o| o.failed + o.timed_out + o.keys_seen + o.stray)
            .sum(),
        failure_statuses: statuses.iter().map(|(k, v)| format!("{k}:{v}")).collect(),
        pool_exhausted: outcomes.iter().map(|o| o.pool_exhausted).sum(),
        timed_out: outcomes.iter().map(|o| o.timed_out).sum(),
        stray: outcomes.iter().map(|o| o.stray).sum(),
        keys_seen: outcomes.iter().map(|o| o.keys_seen).sum(),
    }
}
