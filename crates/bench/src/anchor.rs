//! The anchor comparison: the bare relay hop (`sip-relay`) against Debian's Kamailio
//! (`children=1`, stateless `forward()`, docs/benchmarks/kamailio-anchor.cfg), each as the one hop
//! between a SIPp UAC and a SIPp UAS running REGISTER → 401 → REGISTER → 200, alternating hops
//! round by round in one run.
//!
//! - rate: SIPp offers a fixed rate for a fixed time; the achieved rate is SIPp's successful
//!   registrations divided by the time.
//! - CPU: nanoseconds on CPU of the hop (all its processes and threads, `/proc/*/task/*/schedstat`)
//!   over the SIPp run, divided by the registrations.
//! - added latency: a probe of ours sends one registration at a time (REGISTER → 401 timed with
//!   the monotonic clock) through the hop and straight to the UAS; the difference is the hop's.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::chain::{Proc, free_port};
use crate::latency;
use crate::process;
use crate::results::{AnchorResult, HopResult};
use crate::{Error, Result};

/// The UAC scenario (also in docs/benchmarks/).
pub const UAC_XML: &str = include_str!("../../../docs/benchmarks/sipp-anchor-uac.xml");
/// The UAS scenario (also in docs/benchmarks/).
pub const UAS_XML: &str = include_str!("../../../docs/benchmarks/sipp-anchor-uas.xml");
/// The Kamailio config (also in docs/benchmarks/).
pub const KAMAILIO_CFG: &str = include_str!("../../../docs/benchmarks/kamailio-anchor.cfg");

/// Options of the anchor run.
#[derive(Debug, Clone)]
pub struct Options {
    /// SIPp rate, registrations/s.
    pub rate: f64,
    /// Seconds per hop per round.
    pub segment: Duration,
    /// Rounds (relay, kamailio, relay, kamailio, ...).
    pub rounds: usize,
    /// Sequential probe registrations per hop per round.
    pub probes: usize,
    /// Directory holding `sip-relay`.
    pub bin_dir: std::path::PathBuf,
    /// Scratch directory.
    pub scratch: std::path::PathBuf,
    /// Progress on stderr.
    pub verbose: bool,
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Waits until something answers UDP on `port` (any SIP reply to an OPTIONS) or time runs out.
fn wait_udp(port: u16, limit: Duration) -> bool {
    let Ok(s) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    let until = Instant::now() + limit;
    let local = s.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let mut buf = [0u8; 4096];
    while Instant::now() < until {
        // Max-Forwards 0: both hops answer 483 themselves without forwarding.
        let msg = format!(
            "OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-ping{}\r\n\
             Max-Forwards: 0\r\nFrom: <sip:ping@127.0.0.1>;tag=p\r\nTo: <sip:ping@127.0.0.1>\r\n\
             Call-ID: ping-{}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            Instant::now().elapsed().as_nanos(),
            std::process::id()
        );
        let _ = s.send_to(msg.as_bytes(), addr(port));
        if s.recv_from(&mut buf).is_ok() {
            return true;
        }
    }
    false
}

/// One registration at a time through `target`; 401 round trips in µs.
fn probe(target: SocketAddr, n: usize, tag: &str) -> Result<Vec<u32>> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let local = s.local_addr()?;
    let mut buf = vec![0u8; 65_535];
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let call_id = format!("probe-{tag}-{}-{i}", std::process::id());
        let reg = |cseq: u32| {
            format!(
                "REGISTER sip:ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{call_id}-{cseq};rport\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:probe@ims.example.org>;tag={i}\r\nTo: <sip:probe@ims.example.org>\r\n\
                 Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:probe@{local}>\r\n\
                 Authorization: Digest username=\"probe@ims.example.org\", realm=\"ims.example.org\", uri=\"sip:ims.example.org\", nonce=\"\", response=\"\"\r\n\
                 Expires: 600\r\nContent-Length: 0\r\n\r\n"
            )
        };
        let t0 = Instant::now();
        s.send_to(reg(1).as_bytes(), target)?;
        loop {
            let (len, _) = s.recv_from(&mut buf)?;
            let at = Instant::now();
            if let Ok(m) = ikt_sip::scan(&buf[..len])
                && m.call_id() == Some(call_id.as_str())
                && m.status() == Some(401)
            {
                out.push(u32::try_from(at.duration_since(t0).as_micros()).unwrap_or(u32::MAX));
                break;
            }
        }
        s.send_to(reg(2).as_bytes(), target)?;
        loop {
            let (len, _) = s.recv_from(&mut buf)?;
            if let Ok(m) = ikt_sip::scan(&buf[..len])
                && m.call_id() == Some(call_id.as_str())
                && m.status() == Some(200)
            {
                break;
            }
        }
    }
    Ok(out)
}

/// SIPp's final successful and failed call counts from its `-trace_stat` CSV.
fn sipp_counts(csv: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(csv).ok()?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next()?.split(';').collect();
    let last: Vec<&str> = lines.next_back()?.split(';').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let ok = last.get(col("SuccessfulCall(C)")?)?.trim().parse().ok()?;
    let failed = last.get(col("FailedCall(C)")?)?.trim().parse().ok()?;
    Some((ok, failed))
}

struct Hop {
    name: &'static str,
    proc: Proc,
    port: u16,
    res: HopResult,
    probes: Vec<u32>,
    user_ticks: u64,
    sys_ticks: u64,
}

/// Runs the anchor comparison.
pub fn run(opts: &Options) -> Result<AnchorResult> {
    let dir = opts.scratch.join("anchor");
    std::fs::create_dir_all(&dir)?;
    let uac = dir.join("uac.xml");
    let uas = dir.join("uas.xml");
    let cfg = dir.join("kamailio-anchor.cfg");
    std::fs::write(&uac, UAC_XML)?;
    std::fs::write(&uas, UAS_XML)?;
    std::fs::write(&cfg, KAMAILIO_CFG)?;
    let version = Command::new("kamailio")
        .arg("-v")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default();

    let uas_port = free_port()?;
    let mut uas_cmd = Command::new("sipp");
    uas_cmd.args(["-sf"]).arg(&uas).args([
        "-i",
        "127.0.0.1",
        "-p",
        &uas_port.to_string(),
        "-nostdin",
        "-nr",
        "-buff_size",
        "8388608",
    ]);
    let _uas = Proc::spawn("sipp-uas", uas_cmd, &dir.join("uas.log"))?;

    let relay_port = free_port()?;
    let mut relay_cmd = Command::new(opts.bin_dir.join("sip-relay"));
    relay_cmd
        .arg("--listen")
        .arg(addr(relay_port).to_string())
        .arg("--next")
        .arg(addr(uas_port).to_string());
    let relay = Proc::spawn("sip-relay", relay_cmd, &dir.join("relay.log"))?;

    let kam_port = free_port()?;
    let mut kam_cmd = Command::new("kamailio");
    kam_cmd
        .arg("-f")
        .arg(&cfg)
        .args(["-DD", "-E", "-x", "tlsf", "-m", "64", "-M", "8", "-Y"])
        .arg(&dir)
        .env("IKT_ANCHOR_LISTEN", addr(kam_port).to_string())
        .env("IKT_ANCHOR_NEXT", format!("sip:127.0.0.1:{uas_port}"));
    let kam = Proc::spawn("kamailio", kam_cmd, &dir.join("kamailio.log"))?;

    for (name, port) in [("sip-relay", relay_port), ("kamailio", kam_port)] {
        if !wait_udp(port, Duration::from_secs(15)) {
            return Err(Error::Process {
                name: name.into(),
                why: "did not answer on its SIP port".into(),
            });
        }
    }
    // The UAS is ready when a probe registration goes through it.
    let direct_warm = probe(addr(uas_port), 5, "warm");
    if direct_warm.is_err() {
        return Err(Error::Process {
            name: "sipp-uas".into(),
            why: "did not answer a probe REGISTER".into(),
        });
    }

    let mut hops = vec![
        Hop {
            name: "sip-relay",
            proc: relay,
            port: relay_port,
            res: HopResult::default(),
            probes: Vec::new(),
            user_ticks: 0,
            sys_ticks: 0,
        },
        Hop {
            name: "kamailio",
            proc: kam,
            port: kam_port,
            res: HopResult::default(),
            probes: Vec::new(),
            user_ticks: 0,
            sys_ticks: 0,
        },
    ];
    let mut direct: Vec<u32> = Vec::new();
    let calls = (opts.rate * opts.segment.as_secs_f64()).round().max(1.0) as u64;
    for round in 0..opts.rounds {
        direct.extend(probe(addr(uas_port), opts.probes, &format!("d{round}"))?);
        for h in hops.iter_mut() {
            if opts.verbose {
                eprintln!("ikt-load: anchor round {} {}", round + 1, h.name);
            }
            h.probes.extend(probe(
                addr(h.port),
                opts.probes,
                &format!("{}{round}", h.name),
            )?);
            let stat = dir.join(format!("sipp-{}-{round}.csv", h.name));
            let _ = std::fs::remove_file(&stat);
            let uac_port = free_port()?;
            let pid = h.proc.pid();
            let c0 = process::tree_cpu_ns(pid).unwrap_or(0);
            let (u0, s0) = process::tree_user_sys_ticks(pid);
            let t0 = Instant::now();
            let status = Command::new("sipp")
                .arg(addr(h.port).to_string())
                .arg("-sf")
                .arg(&uac)
                .args([
                    "-i",
                    "127.0.0.1",
                    "-p",
                    &uac_port.to_string(),
                    "-nostdin",
                    "-buff_size",
                    "8388608",
                ])
                .args([
                    "-r",
                    &format!("{}", opts.rate.round() as u64),
                    "-rp",
                    "1000",
                ])
                .args(["-m", &calls.to_string(), "-l", "2000"])
                .args([
                    "-timeout",
                    &format!("{}s", opts.segment.as_secs() + 20),
                    "-recv_timeout",
                    "5000",
                ])
                .args(["-trace_stat", "-fd", "3600", "-stf"])
                .arg(&stat)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()?;
            let took = t0.elapsed().as_secs_f64();
            let c1 = process::tree_cpu_ns(pid).unwrap_or(0);
            let (u1, s1) = process::tree_user_sys_ticks(pid);
            h.user_ticks += u1.saturating_sub(u0);
            h.sys_ticks += s1.saturating_sub(s0);
            h.proc.check_alive()?;
            let (ok, failed) = sipp_counts(&stat).unwrap_or(if status.success() {
                (calls, 0)
            } else {
                (0, calls)
            });
            h.res.registrations += ok;
            h.res.failed += failed;
            h.res.rate_per_round.push(ok as f64 / took);
            h.res
                .cpu_us_per_round
                .push((c1 - c0) as f64 / 1000.0 / ok.max(1) as f64);
        }
    }
    let direct_s = latency::summarize(&mut direct);
    let mut out = AnchorResult {
        rate: opts.rate,
        segment_s: opts.segment.as_secs_f64(),
        direct_401: direct_s,
        hops: Vec::new(),
        kamailio_version: version,
    };
    for mut h in hops {
        h.res.hop = h.name.to_string();
        let ticks = (h.user_ticks + h.sys_ticks).max(1);
        h.res.user_share = h.user_ticks as f64 / ticks as f64;
        let mut c = h.res.cpu_us_per_round.clone();
        c.sort_by(f64::total_cmp);
        h.res.cpu_us_per_reg = c.get(c.len() / 2).copied().unwrap_or(f64::NAN);
        h.res.lat_401 = latency::summarize(&mut h.probes);
        h.res.added_p50_us = h.res.lat_401.p50 - direct_s.p50;
        h.res.added_p99_us = h.res.lat_401.p99 - direct_s.p99;
        h.proc.stop(Duration::from_secs(3));
        out.hops.push(h.res);
    }
    Ok(out)
}
