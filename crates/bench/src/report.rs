//! The report: a Markdown file with the machine, the command, every table and the targets, and
//! an SVG chart (plotters, SVG backend only).

use std::fmt::Write;
use std::path::Path;

use plotters::prelude::*;

use crate::chain::Mode;
use crate::results::{ModeResult, Results};
use crate::{Error, Result};

fn f0(v: f64) -> String {
    if v.is_finite() {
        // Rounding -0.4 or summing nothing gives a negative zero; `+ 0.0` prints it as 0.
        format!("{:.0}", v.round() + 0.0)
    } else {
        "n/a".into()
    }
}

fn f1(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "n/a".into()
    }
}

fn signed(v: f64) -> String {
    if v.is_finite() {
        format!("{v:+.0}")
    } else {
        "n/a".into()
    }
}

/// Failed registrations with their statuses, e.g. `1 (503:1)`.
fn failures(x: &ModeResult) -> String {
    let n = x.at_rate.failures + x.saturation.failures;
    let mut st: Vec<String> = Vec::new();
    for (label, p) in [("rate", &x.at_rate), ("sat", &x.saturation)] {
        if p.timed_out > 0 {
            st.push(format!("{label} timeout:{}", p.timed_out));
        }
        if p.stray > 0 {
            st.push(format!("{label} stray:{}", p.stray));
        }
        if p.keys_seen > 0 {
            st.push(format!("{label} KEYS SEEN:{}", p.keys_seen));
        }
        st.extend(p.failure_statuses.iter().map(|f| format!("{label} {f}")));
    }
    if st.is_empty() {
        n.to_string()
    } else {
        format!("{n} ({})", st.join(", "))
    }
}

fn mode_of(r: &ModeResult) -> &'static str {
    r.mode.map_or("?", Mode::as_str)
}

fn find(r: &Results, m: Mode) -> Option<&ModeResult> {
    r.modes.iter().find(|x| x.mode == Some(m))
}

fn cpu_of(p: &crate::results::PhaseResult, name: &str) -> f64 {
    p.cpu
        .iter()
        .find(|c| c.process == name)
        .map_or(f64::NAN, |c| c.us_per_reg)
}

/// Bundles per second on one core of a delivery micro-benchmark, if it ran.
pub fn delivery_rate(r: &Results, name: &str) -> Option<f64> {
    r.micro
        .iter()
        .find(|m| m.group == "delivery_window_256" && m.name == name)
        .map(|m| m.elements.unwrap_or(1) as f64 * 1e9 / m.mean_ns)
}

/// One target: what it asks, what was measured, whether it was met (`None`: not measured).
#[derive(Debug, Clone)]
pub struct Target {
    /// The goal.
    pub goal: String,
    /// The figure.
    pub measured: String,
    /// Met?
    pub met: Option<bool>,
}

/// The issue's targets against this run.
pub fn targets(r: &Results) -> Vec<Target> {
    let mut t = Vec::new();
    for a in &r.anchors {
        let hop = |n: &str| a.hops.iter().find(|h| h.hop == n);
        if let (Some(s), Some(k)) = (hop("sip-relay"), hop("kamailio"))
            && k.cpu_us_per_reg > 0.0
        {
            let ratio = s.cpu_us_per_reg / k.cpu_us_per_reg;
            t.push(Target {
                goal: format!(
                    "relay hop CPU per registration ≤ Kamailio's (ratio ≤ 1.0), {:.0} registrations/s",
                    a.rate
                ),
                measured: format!(
                    "{:.1} µs vs {:.1} µs: ratio {ratio:.2}",
                    s.cpu_us_per_reg, k.cpu_us_per_reg
                ),
                met: Some(ratio <= 1.0),
            });
        }
    }
    if r.anchors.is_empty() {
        t.push(Target {
            goal: "relay hop CPU per registration ≤ Kamailio's".into(),
            measured: "anchor not run".into(),
            met: None,
        });
    }
    let plain = find(r, Mode::Plain).map(|p| p.at_rate.lat_401);
    for m in [Mode::Grpc, Mode::Quic] {
        match (find(r, m), plain) {
            (Some(x), Some(p)) => {
                let d50 = x.at_rate.lat_401.p50 - p.p50;
                let d99 = x.at_rate.lat_401.p99 - p.p99;
                t.push(Target {
                    goal: format!(
                        "{} adds ≤ 100 µs p50 and ≤ 500 µs p99 to the 401 path vs plain",
                        m.as_str()
                    ),
                    measured: format!("{} µs p50, {} µs p99", signed(d50), signed(d99)),
                    met: Some(d50 <= 100.0 && d99 <= 500.0),
                });
            }
            _ => t.push(Target {
                goal: format!("{} latency added vs plain", m.as_str()),
                measured: "mode not run".into(),
                met: None,
            }),
        }
    }
    for (label, name) in [
        ("one gRPC stream", "grpc_stream"),
        ("one QUIC connection", "quic_bidi_stream"),
    ] {
        match delivery_rate(r, name) {
            Some(v) => t.push(Target {
                goal: format!("≥ 50,000 bundles/s on one core, {label}"),
                measured: format!("{v:.0} bundles/s (delivery_window_256/{name})"),
                met: Some(v >= 50_000.0),
            }),
            None => t.push(Target {
                goal: format!("≥ 50,000 bundles/s on one core, {label}"),
                measured: "micro-benchmark not collected".into(),
                met: None,
            }),
        }
    }
    for m in [Mode::Grpc, Mode::Quic, Mode::Sealed] {
        if let Some(mem) = find(r, m).and_then(|x| x.memory.as_ref()) {
            let ok = mem.bytes_per_bundle.is_finite() && mem.bytes_per_bundle <= 512.0;
            t.push(Target {
                goal: format!("≤ 512 B per pending bundle ({})", m.as_str()),
                measured: format!(
                    "{} B ({} entries, RSS +{} kB)",
                    f0(mem.bytes_per_bundle),
                    f0(mem.entries),
                    mem.rss_growth / 1024
                ),
                met: if mem.entries > 0.0 { Some(ok) } else { None },
            });
        }
    }
    let lost: f64 = r
        .modes
        .iter()
        .filter_map(|m| m.bundles.as_ref())
        .map(|b| b.lost)
        .sum();
    let failures: u64 = r
        .modes
        .iter()
        .map(|m| m.saturation.failures + m.at_rate.failures)
        .sum();
    t.push(Target {
        goal: "0 bundles lost at saturation".into(),
        measured: format!(
            "{lost:.0} lost (sent = received, no fail-closed); {failures} failed registrations, see the failures column"
        ),
        met: Some(lost == 0.0),
    });
    t
}

/// Renders the Markdown report.
pub fn markdown(r: &Results, svg_name: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Benchmarks: latest run\n");
    let _ = writeln!(
        s,
        "Generated by `ikt-load` (crates/bench). Date: {} (UTC).\n",
        r.date
    );
    let m = &r.machine;
    let _ = writeln!(
        s,
        "Machine: {} × {} ({} CPUs online), Linux {}, {:.1} GiB RAM. Load average before: `{}`, after: `{}`. \
         Other processes used on average {:.0}% (at most {:.0}%) of all CPUs during the measured segments.\n",
        m.nproc,
        m.cpu,
        m.nproc,
        m.kernel,
        m.mem_bytes as f64 / (1u64 << 30) as f64,
        m.load_before,
        m.load_after,
        r.noise.foreign_cpu_share * 100.0,
        r.noise.foreign_cpu_share_max * 100.0
    );
    let _ = writeln!(s, "Reproduce:\n\n```sh\n{}\n```\n", r.command);
    let st = &r.settings;
    let _ = writeln!(
        s,
        "Each mode is its own chain of processes (`ims-lab serve` holding P-CSCF, I-CSCF, S-CSCF and HSS; \
         `p-cscf-agent`; `s-cscf-agent`), all on loopback. {} rounds; in each round every mode in turn runs a \
         {:.0} s target-rate segment ({:.0} registrations/s, open loop) and a {:.0} s saturation segment \
         ({} registrations in flight, closed loop). {} subscribers with random K/OP. A registration is \
         REGISTER → 401 → REGISTER (AKAv1-MD5) → 200; nothing is retransmitted. Latency is taken in the load \
         tool with the monotonic clock (REGISTER sent → 401 received). CPU is each process's time on CPU \
         (`/proc/<pid>/task/*/schedstat`) over the segment, divided by completed registrations; `lab` is the \
         whole core (P-CSCF + I-CSCF + S-CSCF + HSS/Milenage), `ikt-load` the UE side.\n",
        st.rounds, st.segment_s, st.rate, st.segment_s, st.window, st.subscribers
    );
    let base = find(r, Mode::Baseline).map(|b| b.at_rate.lat_401);
    let plain = find(r, Mode::Plain).map(|b| b.at_rate.lat_401);
    let _ = writeln!(s, "## Registrations through the full chain\n");
    let _ = writeln!(
        s,
        "| mode | reg/s at saturation (per round) | 401 p50 µs | 401 p99 µs | 401 p99.9 µs | added p50 / p99 vs baseline µs | added p50 / p99 vs plain µs | registration p50 µs | 401 p50 / p99 µs at saturation | failures |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for x in &r.modes {
        let l = x.at_rate.lat_401;
        let vs = |b: Option<crate::latency::Summary>| {
            b.map_or("n/a".into(), |b| {
                format!("{} / {}", signed(l.p50 - b.p50), signed(l.p99 - b.p99))
            })
        };
        let rounds: Vec<String> = x.saturation.rate_per_round.iter().map(|v| f0(*v)).collect();
        let _ = writeln!(
            s,
            "| {} | **{}** ({}) | {} | {} | {} | {} | {} | {} | {} / {} | {} |",
            mode_of(x),
            f0(x.saturation.rate),
            rounds.join(", "),
            f0(l.p50),
            f0(l.p99),
            f0(l.p999),
            vs(base),
            vs(plain),
            f0(x.at_rate.lat_reg.p50),
            f0(x.saturation.lat_401.p50),
            f0(x.saturation.lat_401.p99),
            failures(x),
        );
    }
    let _ = writeln!(
        s,
        "\nTime-outs are registrations that got no final answer within 3 s (nothing is retransmitted). \
         UDP receive-buffer drops over the whole run (from `/proc/net/udp`), per socket:\n"
    );
    for x in &r.modes {
        let _ = writeln!(s, "- {}: {}", mode_of(x), x.udp_drops.join(", "));
    }
    let _ = writeln!(
        s,
        "\n![Median latency at the target rate and CPU per registration at saturation]({svg_name})\n"
    );
    let _ = writeln!(s, "### CPU µs per registration, per process\n");
    let _ = writeln!(
        s,
        "| mode | phase | lab (core) | p-cscf-agent | s-cscf-agent | agents together | ikt-load (UE) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for x in &r.modes {
        for (ph, p) in [("target rate", &x.at_rate), ("saturation", &x.saturation)] {
            let pa = cpu_of(p, "p-agent");
            let sa = cpu_of(p, "s-agent");
            let both = if pa.is_finite() { pa + sa } else { f64::NAN };
            let _ = writeln!(
                s,
                "| {} | {ph} | {} | {} | {} | {} | {} |",
                mode_of(x),
                f1(cpu_of(p, "lab")),
                f1(pa),
                f1(sa),
                f1(both),
                f1(cpu_of(p, "ikt-load"))
            );
        }
    }
    let _ = writeln!(
        s,
        "\n### Bytes per registration on the agent-to-agent link\n"
    );
    let _ = writeln!(
        s,
        "Counted by nftables on loopback (no proxy in the path): SIP is every datagram between the I-CSCF and the hop \
         after it (the s-cscf-agent; the S-CSCF in the baseline), both directions; out of band is every packet to or \
         from the p-cscf-agent's gRPC (TCP) or QUIC (UDP) port, handshakes, acks and keep-alives included. \
         IP bytes include headers; payload subtracts 28 B per UDP datagram and 52 B per TCP segment.\n"
    );
    let _ = writeln!(
        s,
        "| mode | SIP IP B | SIP payload B | out-of-band IP B | out-of-band payload B | out-of-band packets | total IP B |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for x in &r.modes {
        match &x.bytes {
            Some(b) => {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    mode_of(x),
                    f0(b.sip_ip),
                    f0(b.sip_payload),
                    f0(b.oob_ip),
                    f0(b.oob_payload),
                    f1(b.oob_packets),
                    f0(b.sip_ip + b.oob_ip)
                );
            }
            None => {
                let _ = writeln!(s, "| {} | n/a | n/a | n/a | n/a | n/a | n/a |", mode_of(x));
            }
        }
    }
    let _ = writeln!(s, "\n### Pending bundles and bundle accounting\n");
    let _ = writeln!(
        s,
        "Memory: the load UE sends initial REGISTERs and never answers the 401s, so every bundle stays in the \
         p-cscf-agent's store until its TTL; bytes per bundle = growth of the agent's RssAnon / growth of \
         `ikt_store_entries`. Lost: `ikt_bundles_sent_total` (s-cscf-agent) − `ikt_bundles_received_total` \
         (p-cscf-agent) + `ikt_failclosed_total` (both), over the whole run.\n"
    );
    let _ = writeln!(
        s,
        "| mode | 401s held | store entries added | RSS growth kB | B per pending bundle | bundles sent | received | fail-closed | lost | 401s that waited for keys | mean key wait µs | mean bundle ack µs |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for x in r
        .modes
        .iter()
        .filter(|x| x.mode.is_some_and(Mode::has_agents))
    {
        let (h, e, g, b) =
            x.memory
                .as_ref()
                .map_or(("-".into(), "-".into(), "-".into(), "-".into()), |m| {
                    (
                        m.held.to_string(),
                        f0(m.entries),
                        (m.rss_growth / 1024).to_string(),
                        f0(m.bytes_per_bundle),
                    )
                });
        let (bs, br, bf, bl) = x.bundles.as_ref().map_or(
            ("n/a".into(), "n/a".into(), "n/a".into(), "n/a".into()),
            |b| (f0(b.sent), f0(b.received), f0(b.failclosed), f0(b.lost)),
        );
        let (kw, km, da) =
            x.bundles
                .as_ref()
                .map_or(("n/a".into(), "n/a".into(), "n/a".into()), |b| {
                    let share = if b.key_wait_parked_share.is_finite() {
                        format!("{:.1}%", b.key_wait_parked_share * 100.0)
                    } else {
                        "n/a".into()
                    };
                    (share, f0(b.key_wait_mean_us), f0(b.delivery_mean_us))
                });
        let _ = writeln!(
            s,
            "| {} | {h} | {e} | {g} | {b} | {bs} | {br} | {bf} | {bl} | {kw} | {km} | {da} |",
            mode_of(x)
        );
    }
    for a in &r.anchors {
        let _ = writeln!(
            s,
            "\n## Anchor: one relay hop versus Kamailio at {:.0} registrations/s\n",
            a.rate
        );
        let _ = writeln!(
            s,
            "SIPp UAC → hop → SIPp UAS (docs/benchmarks/sipp-anchor-*.xml), REGISTER → 401 → REGISTER → 200 at {:.0} \
             registrations/s offered for {:.0} s per hop per round, hops alternating. Kamailio: {} with \
             docs/benchmarks/kamailio-anchor.cfg (`children=1`, stateless `forward()`, TLSF allocator). CPU: all \
             processes and threads of the hop. Latency: a sequential probe (one registration at a time, monotonic \
             clock) through the hop versus straight to the UAS (direct 401 p50 {} µs, p99 {} µs).\n",
            a.rate,
            a.segment_s,
            a.kamailio_version,
            f0(a.direct_401.p50),
            f0(a.direct_401.p99)
        );
        let kam = a
            .hops
            .iter()
            .find(|h| h.hop == "kamailio")
            .map(|h| h.cpu_us_per_reg);
        let _ = writeln!(
            s,
            "| hop | reg/s sustained (per round) | CPU µs / registration (per round) | of it in user space | ratio to Kamailio | 401 p50 µs | added p50 µs | added p99 µs | failed |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
        for h in &a.hops {
            let rates: Vec<String> = h.rate_per_round.iter().map(|v| f0(*v)).collect();
            let cpus: Vec<String> = h.cpu_us_per_round.iter().map(|v| f1(*v)).collect();
            let ratio = kam.map_or(f64::NAN, |k| h.cpu_us_per_reg / k);
            let _ = writeln!(
                s,
                "| {} | {} | **{}** ({}) | {:.0}% | {:.2} | {} | {} | {} | {} |",
                h.hop,
                rates.join(", "),
                f1(h.cpu_us_per_reg),
                cpus.join(", "),
                h.user_share * 100.0,
                ratio,
                f0(h.lat_401.p50),
                signed(h.added_p50_us),
                signed(h.added_p99_us),
                h.failed
            );
        }
    }
    if !r.micro.is_empty() {
        let _ = writeln!(s, "\n## Micro-benchmarks (criterion)\n");
        let _ = writeln!(
            s,
            "`cargo bench -p ikt-sip -p ikt-keys -p ikt-relay -p ikt-transport --bench '*' -- --quick`; mean time per iteration.\n"
        );
        let _ = writeln!(s, "| benchmark | mean | per second |");
        let _ = writeln!(s, "|---|---|---|");
        for m in &r.micro {
            let name = if m.name.is_empty() {
                m.group.clone()
            } else {
                format!("{}/{}", m.group, m.name)
            };
            let t = if m.mean_ns >= 1e6 {
                format!("{:.2} ms", m.mean_ns / 1e6)
            } else if m.mean_ns >= 1e3 {
                format!("{:.2} µs", m.mean_ns / 1e3)
            } else {
                format!("{:.0} ns", m.mean_ns)
            };
            let per = m.elements.unwrap_or(1) as f64 * 1e9 / m.mean_ns;
            let _ = writeln!(s, "| {name} | {t} | {} |", f0(per));
        }
    }
    let _ = writeln!(s, "\n## Targets\n");
    let _ = writeln!(s, "| target | measured | met |");
    let _ = writeln!(s, "|---|---|---|");
    for t in targets(r) {
        let met = match t.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not measured",
        };
        let _ = writeln!(s, "| {} | {} | {met} |", t.goal, t.measured);
    }
    let _ = writeln!(
        s,
        "\nProfiles behind the missed targets (callgrind, strace, massif): [profiles.md](profiles.md).\n\n\
         Anchor alone: `target/release/ikt-load anchor`; smaller run: `target/release/ikt-load run --quick`; \
         re-render after new micro-benchmarks: `target/release/ikt-load report`."
    );
    s
}

/// Draws the SVG: 401-path latency (p50, p99) per mode and CPU per registration by process.
pub fn svg(r: &Results, path: &Path) -> Result<()> {
    draw(r, path).map_err(|e| Error::Report(format!("svg: {e}")))
}

fn draw(r: &Results, path: &Path) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1100, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(550);
    let names: Vec<&str> = r.modes.iter().map(mode_of).collect();
    let n = names.len().max(1) as f64;
    let label = |v: &f64| {
        names
            .get(v.floor() as usize)
            .map_or(String::new(), |s| (*s).to_string())
    };

    let max_lat = r
        .modes
        .iter()
        .map(|m| m.at_rate.lat_reg.p50)
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max)
        * 1.15;
    let mut c = ChartBuilder::on(&left)
        .caption("Median latency at target rate (µs)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..n, 0.0..max_lat)?;
    c.configure_mesh()
        .disable_x_mesh()
        .x_labels(names.len() * 2 + 1)
        .x_label_formatter(&|v| {
            if (v.fract() - 0.5).abs() < 0.01 {
                label(v)
            } else {
                String::new()
            }
        })
        .y_desc("µs")
        .draw()?;
    let p50 = RGBColor(52, 101, 164);
    let p99 = RGBColor(245, 121, 0);
    for (i, m) in r.modes.iter().enumerate() {
        let x = i as f64;
        let l = m.at_rate.lat_401;
        let reg = m.at_rate.lat_reg.p50;
        if l.p50.is_finite() {
            c.draw_series(std::iter::once(Rectangle::new(
                [(x + 0.12, 0.0), (x + 0.48, l.p50)],
                p50.filled(),
            )))?;
        }
        if reg.is_finite() {
            c.draw_series(std::iter::once(Rectangle::new(
                [(x + 0.52, 0.0), (x + 0.88, reg)],
                p99.filled(),
            )))?;
        }
    }
    c.draw_series(std::iter::once(Rectangle::new(
        [(0.0, 0.0), (0.0, 0.0)],
        p50.filled(),
    )))?
    .label("REGISTER → 401")
    .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], p50.filled()));
    c.draw_series(std::iter::once(Rectangle::new(
        [(0.0, 0.0), (0.0, 0.0)],
        p99.filled(),
    )))?
    .label("REGISTER → 200 (whole registration)")
    .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], p99.filled()));
    c.configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;

    let procs = ["lab", "p-agent", "s-agent"];
    let colors = [
        RGBColor(115, 210, 22),
        RGBColor(117, 80, 123),
        RGBColor(204, 0, 0),
    ];
    let total = |m: &ModeResult| {
        procs
            .iter()
            .map(|p| cpu_of(&m.saturation, p))
            .filter(|v| v.is_finite())
            .sum::<f64>()
    };
    let max_cpu = r.modes.iter().map(total).fold(1.0, f64::max) * 1.15;
    let mut c2 = ChartBuilder::on(&right)
        .caption(
            "CPU per registration at saturation (µs)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..n, 0.0..max_cpu)?;
    c2.configure_mesh()
        .disable_x_mesh()
        .x_labels(names.len() * 2 + 1)
        .x_label_formatter(&|v| {
            if (v.fract() - 0.5).abs() < 0.01 {
                label(v)
            } else {
                String::new()
            }
        })
        .y_desc("µs")
        .draw()?;
    for (i, m) in r.modes.iter().enumerate() {
        let x = i as f64;
        let mut y = 0.0;
        for (p, col) in procs.iter().zip(colors) {
            let v = cpu_of(&m.saturation, p);
            if v.is_finite() && v > 0.0 {
                c2.draw_series(std::iter::once(Rectangle::new(
                    [(x + 0.2, y), (x + 0.8, y + v)],
                    col.filled(),
                )))?;
                y += v;
            }
        }
    }
    for (p, col) in procs.iter().zip(colors) {
        c2.draw_series(std::iter::once(Rectangle::new(
            [(0.0, 0.0), (0.0, 0.0)],
            col.filled(),
        )))?
        .label(*p)
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], col.filled()));
    }
    c2.configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    root.present()?;
    Ok(())
}

/// Reads results JSON.
pub fn load(path: &Path) -> Result<Results> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Report(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Error::Report(format!("{}: {e}", path.display())))
}

/// Writes results JSON, the Markdown and the SVG into `dir` as `latest.*`.
pub fn write(r: &Results, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(r).map_err(|e| Error::Report(e.to_string()))?;
    std::fs::write(dir.join("latest.json"), json)?;
    svg(r, &dir.join("latest.svg"))?;
    std::fs::write(dir.join("latest.md"), markdown(r, "latest.svg"))?;
    Ok(())
}
