//! `ikt-load`: registrations through the full chain per mode, the relay-vs-Kamailio anchor, and
//! the benchmark report (docs/benchmarks/latest.md and latest.svg).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ikt_bench::chain::Mode;
use ikt_bench::{anchor, micro, report, run};

/// Load tool for the IMS key transport agents (loopback only).
#[derive(Parser)]
#[command(name = "ikt-load", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs every mode and the anchor in one run, then writes the report.
    Run(RunArgs),
    /// Only the relay-vs-Kamailio anchor; merged into an existing latest.json if there is one.
    Anchor(RunArgs),
    /// Re-renders the report from latest.json, adding criterion figures from target/criterion.
    Report(Common),
}

#[derive(Args, Clone)]
struct Common {
    /// Output directory for latest.md, latest.svg and latest.json.
    #[arg(long, default_value = "docs/benchmarks")]
    out: PathBuf,
    /// Directory with ims-lab, s-cscf-agent, p-cscf-agent, sip-relay (default: next to ikt-load).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// criterion's output directory (default: ../criterion from the binaries).
    #[arg(long)]
    criterion: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// About 30 s: 2 short rounds, small hold, short anchor.
    #[arg(long)]
    quick: bool,
    /// Rounds over all modes.
    #[arg(long)]
    rounds: Option<usize>,
    /// Seconds per segment.
    #[arg(long)]
    seconds: Option<f64>,
    /// Target rate, registrations/s (open loop).
    #[arg(long)]
    rate: Option<f64>,
    /// Registrations in flight at saturation.
    #[arg(long)]
    window: Option<usize>,
    /// Subscribers to provision.
    #[arg(long)]
    subscribers: Option<usize>,
    /// 401s held open per agent mode for the memory figure (0 skips it).
    #[arg(long)]
    hold: Option<usize>,
    /// Modes, comma-separated, in round order.
    #[arg(long, default_value = "baseline,plain,sealed,grpc,quic")]
    modes: String,
    /// Skip the anchor comparison.
    #[arg(long)]
    no_anchor: bool,
    /// SIPp rates of the anchor, registrations/s, comma-separated (default 500,2000; quick 500).
    #[arg(long)]
    anchor_rates: Option<String>,
    /// Print progress.
    #[arg(long, short)]
    verbose: bool,
    /// Keep the scratch directory with every process's config and log.
    #[arg(long)]
    keep: bool,
}

fn bin_dir(c: &Common) -> anyhow::Result<PathBuf> {
    match &c.bin_dir {
        Some(d) => Ok(d.clone()),
        None => Ok(std::env::current_exe()?
            .parent()
            .context("binary has no directory")?
            .to_path_buf()),
    }
}

fn criterion_dir(c: &Common) -> anyhow::Result<PathBuf> {
    match &c.criterion {
        Some(d) => Ok(d.clone()),
        None => Ok(bin_dir(c)?
            .parent()
            .context("no target dir")?
            .join("criterion")),
    }
}

fn now_utc() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!(
        "cargo build --release --bins\n\
         cargo bench -p ikt-sip -p ikt-keys -p ikt-relay -p ikt-transport --bench '*' -- --quick\n\
         target/release/ikt-load {}",
        args.join(" ")
    )
}

fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!("ikt-load-{}", std::process::id()))
}

fn run_opts(a: &RunArgs) -> anyhow::Result<run::Options> {
    let modes = a
        .modes
        .split(',')
        .map(|m| Mode::parse(m.trim()).with_context(|| format!("unknown mode {m:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let q = a.quick;
    Ok(run::Options {
        modes,
        rounds: a.rounds.unwrap_or(if q { 2 } else { 5 }),
        segment: Duration::from_secs_f64(a.seconds.unwrap_or(if q { 1.0 } else { 3.0 })),
        rate: a.rate.unwrap_or(if q { 200.0 } else { 400.0 }),
        window: a.window.unwrap_or(32),
        subscribers: a.subscribers.unwrap_or(if q { 128 } else { 1024 }),
        hold: a.hold.unwrap_or(if q { 1000 } else { 20_000 }),
        bin_dir: bin_dir(&a.common)?,
        scratch: scratch(),
        verbose: a.verbose,
        keep: a.keep,
    })
}

fn anchor_rates(a: &RunArgs) -> anyhow::Result<Vec<f64>> {
    let text = a.anchor_rates.clone().unwrap_or_else(|| {
        if a.quick {
            "500".into()
        } else {
            "500,2000".into()
        }
    });
    text.split(',')
        .map(|r| {
            r.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| *v > 0.0)
                .with_context(|| format!("bad anchor rate {r:?}"))
        })
        .collect()
}

fn anchor_opts(a: &RunArgs, rate: f64) -> anyhow::Result<anchor::Options> {
    let q = a.quick;
    Ok(anchor::Options {
        rate,
        segment: Duration::from_secs(if q { 2 } else { 5 }),
        rounds: if q { 1 } else { 3 },
        probes: if q { 100 } else { 500 },
        bin_dir: bin_dir(&a.common)?,
        scratch: scratch(),
        verbose: a.verbose,
    })
}

fn finish(mut results: ikt_bench::results::Results, c: &Common) -> anyhow::Result<()> {
    results.micro = micro::collect(&criterion_dir(c)?);
    report::write(&results, &c.out)?;
    print!("{}", report::markdown(&results, "latest.svg"));
    Ok(())
}

fn main_inner(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(a) => {
            let opts = run_opts(&a)?;
            let mut results = run::run(&opts)?;
            results.date = now_utc();
            results.command = command_line();
            if !a.no_anchor {
                for rate in anchor_rates(&a)? {
                    match anchor::run(&anchor_opts(&a, rate)?) {
                        Ok(r) => results.anchors.push(r),
                        Err(e) => eprintln!("ikt-load: anchor comparison failed: {e}"),
                    }
                }
                if !a.keep {
                    let _ = std::fs::remove_dir_all(scratch());
                }
            }
            finish(results, &a.common)
        }
        Command::Anchor(a) => {
            let mut results = report::load(&a.common.out.join("latest.json")).unwrap_or_default();
            results.anchors.clear();
            for rate in anchor_rates(&a)? {
                results.anchors.push(anchor::run(&anchor_opts(&a, rate)?)?);
            }
            let _ = std::fs::remove_dir_all(scratch());
            finish(results, &a.common)
        }
        Command::Report(c) => {
            let results = report::load(&c.out.join("latest.json"))?;
            finish(results, &c)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match main_inner(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ikt-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}
