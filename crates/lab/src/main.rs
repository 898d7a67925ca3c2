//! `ims-lab`: the reference IMS network.
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ikt_lab::config::LabConfig;
use ikt_lab::hss::{self, Hss};
use ikt_lab::network::{AgentHops, Network, NetworkConfig};

/// Reference IMS network: HSS, S-CSCF, I-CSCF, P-CSCF and UEs on loopback.
#[derive(Parser)]
#[command(name = "ims-lab", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Computes MILENAGE (TS 35.206) outputs and AUTN.
    Milenage {
        /// Subscriber key K, 32 hex digits.
        #[arg(long)]
        k: String,
        /// Operator variant OP, 32 hex digits (or give --opc).
        #[arg(long)]
        op: Option<String>,
        /// OPc, 32 hex digits (or give --op).
        #[arg(long)]
        opc: Option<String>,
        /// RAND, 32 hex digits.
        #[arg(long)]
        rand: String,
        /// SQN, 12 hex digits.
        #[arg(long)]
        sqn: String,
        /// AMF, 4 hex digits.
        #[arg(long)]
        amf: String,
    },
    /// Runs HSS, S-CSCF, I-CSCF and P-CSCF until SIGINT/SIGTERM; prints the P-CSCF's address.
    Serve {
        /// Subscriber file (TOML, `[[subscriber]]` tables).
        #[arg(long)]
        subscribers: PathBuf,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        listen: Listen,
    },
    /// Runs the network and a UE per subscriber in one process and prints a report.
    Demo {
        /// Subscriber file; default: the built-in example (MILENAGE sets 2, 3 and 5).
        #[arg(long, conflicts_with = "ues")]
        subscribers: Option<PathBuf>,
        /// Number of UEs (generated subscribers `ue<i>@ims.example.org` with the example keys).
        #[arg(long)]
        ues: Option<usize>,
        #[command(flatten)]
        common: Common,
        /// Insert a hop between P-CSCF and I-CSCF (a p-cscf-agent already running).
        #[arg(long)]
        pcscf_next_hop: Option<SocketAddr>,
        /// Insert a hop between I-CSCF and S-CSCF (an s-cscf-agent already running).
        #[arg(long)]
        icscf_next_hop: Option<SocketAddr>,
        /// Run both agents in the chain in this key transport mode (`all`: each mode in turn,
        /// then a comparison table); `none`: the lab alone.
        #[arg(long, default_value = "none", value_parser = ["none", "plain", "sealed", "grpc", "quic", "all"])]
        mode: String,
        #[command(flatten)]
        agents: AgentArgs,
    },
    /// Sends a command to a running `ims-lab serve`.
    Ctl {
        /// The admin endpoint `serve` printed.
        #[arg(long, default_value = "127.0.0.1:5099")]
        admin: SocketAddr,
        #[command(subcommand)]
        action: CtlAction,
    },
}

#[derive(clap::Args)]
struct AgentArgs {
    /// Directory holding the `s-cscf-agent` and `p-cscf-agent` binaries (default: $IKT_BIN_DIR,
    /// else the directory of `ims-lab`).
    #[arg(long)]
    agents_dir: Option<PathBuf>,
    /// How long the p-cscf-agent holds a 401 for its keys (`keys.key_wait_ms`).
    #[arg(long, default_value_t = 200)]
    key_wait_ms: u64,
    /// RUST_LOG filter for the agents; their logs go to files in their scratch directory.
    #[arg(long, default_value = "info")]
    agent_log: String,
}

#[derive(clap::Args)]
struct Common {
    /// Lab config (realm, [registrar], [reauth]); defaults apply without it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overrides `[reauth] max_failed_attempts`.
    #[arg(long)]
    max_failed_attempts: Option<u32>,
}

#[derive(clap::Args)]
struct Listen {
    /// P-CSCF SIP address (UEs register here).
    #[arg(long, default_value = "127.0.0.1:5060")]
    pcscf: SocketAddr,
    /// I-CSCF SIP address.
    #[arg(long, default_value = "127.0.0.1:5070")]
    icscf: SocketAddr,
    /// S-CSCF SIP address.
    #[arg(long, default_value = "127.0.0.1:5080")]
    scscf: SocketAddr,
    /// Admin endpoint (UDP) for `ims-lab ctl`.
    #[arg(long, default_value = "127.0.0.1:5099")]
    admin: SocketAddr,
    /// Where the P-CSCF sends requests toward the core (a p-cscf-agent); default the I-CSCF.
    #[arg(long)]
    pcscf_next_hop: Option<SocketAddr>,
    /// Where the I-CSCF sends requests for the S-CSCF (an s-cscf-agent); default the S-CSCF.
    #[arg(long)]
    icscf_next_hop: Option<SocketAddr>,
    /// Draw only RANDs whose RES has no zero byte: SIPp cuts RES at the first zero byte, so
    /// about 3% of ordinary challenges fail in SIPp itself. Use it when SIPp plays the UE.
    #[arg(long)]
    sipp_compat: bool,
    /// Start both agents in the chain in this key transport mode (separate processes on free
    /// loopback ports; overrides the next-hop options).
    #[arg(long, default_value = "none", value_parser = ["none", "plain", "sealed", "grpc", "quic"])]
    mode: String,
    #[command(flatten)]
    agents: AgentArgs,
}

#[derive(Subcommand)]
enum CtlAction {
    /// Network-initiated re-authentication of an IMPI.
    Reauth {
        /// The private identity.
        impi: String,
    },
    /// Prints the counters.
    Stats,
    /// Prints the P-CSCF's key fingerprint for an IMPI.
    Fingerprint {
        /// The private identity.
        impi: String,
    },
    /// Checks the P-CSCF's keys for an IMPI against the HSS.
    Check {
        /// The private identity.
        impi: String,
    },
}

fn lab_config(common: &Common) -> anyhow::Result<LabConfig> {
    let mut cfg = match &common.config {
        Some(p) => LabConfig::from_toml(
            &std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        )?,
        None => LabConfig::default(),
    };
    if let Some(n) = common.max_failed_attempts {
        // Same validation as the file: build a one-line config and let it check the value.
        let checked = LabConfig::from_toml(&format!("[reauth]\nmax_failed_attempts = {n}\n"))?;
        cfg.reauth.max_failed_attempts = checked.reauth.max_failed_attempts;
    }
    Ok(cfg)
}

fn init_tracing(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}

async fn serve(subscribers: PathBuf, common: Common, listen: Listen) -> anyhow::Result<()> {
    let lab = lab_config(&common)?;
    let hss = Arc::new(Hss::load(&subscribers)?.with_nul_free_res(listen.sipp_compat));
    let cfg = NetworkConfig {
        lab,
        pcscf: listen.pcscf,
        icscf: listen.icscf,
        scscf: listen.scscf,
        admin: Some(listen.admin),
    };
    let mut pair = None;
    let net = if listen.mode == "none" {
        let hops = AgentHops {
            pcscf_next_hop: listen.pcscf_next_hop,
            icscf_next_hop: listen.icscf_next_hop,
        };
        Network::start(cfg, hss, hops).await?
    } else {
        use ikt_lab::agents::{AgentBins, PairOptions};
        let bins = AgentBins::locate(listen.agents.agents_dir.as_deref())?;
        let opts = PairOptions {
            mode: listen.mode.clone(),
            key_wait_ms: listen.agents.key_wait_ms,
            log_filter: listen.agents.agent_log.clone(),
        };
        // The agents get fresh ports on a retry; the lab keeps the addresses given here.
        let (net, p) = ikt_lab::demo::start_with_agents(cfg, || hss.clone(), &bins, &opts).await?;
        pair = Some(p);
        net
    };
    let a = net.addrs();
    let mut out = std::io::stdout().lock();
    if let Some(p) = &pair {
        writeln!(out, "mode={}", p.mode)?;
        writeln!(
            out,
            "p-cscf-agent={} admin=http://{}/metrics",
            p.ports.p_sip, p.ports.p_admin
        )?;
        writeln!(
            out,
            "s-cscf-agent={} admin=http://{}/metrics",
            p.ports.s_sip, p.ports.s_admin
        )?;
        writeln!(out, "agent-logs={}", p.dir.display())?;
    }
    writeln!(out, "pcscf={}", a.pcscf)?;
    writeln!(out, "icscf={}", a.icscf)?;
    writeln!(out, "scscf={}", a.scscf)?;
    if let Some(admin) = a.admin {
        writeln!(out, "admin={admin}")?;
    }
    out.flush()?;
    drop(out);
    shutdown_signal().await;
    tracing::info!("shutting down");
    net.shutdown().await;
    drop(pair);
    Ok(())
}

async fn demo(
    subscribers: Option<PathBuf>,
    ues: Option<usize>,
    common: Common,
    hops: AgentHops,
    mode: String,
    agents: AgentArgs,
) -> anyhow::Result<()> {
    let lab = lab_config(&common)?;
    let provisioned = match (subscribers, ues) {
        (Some(p), _) => hss::parse_provisioning(
            &std::fs::read_to_string(&p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        )?,
        (None, Some(0)) => anyhow::bail!("--ues must be at least 1"),
        (None, Some(n)) => ikt_lab::demo::generated_subscribers(n)?,
        (None, None) => hss::parse_provisioning(ikt_lab::demo::EXAMPLE_SUBSCRIBERS)?,
    };
    if mode != "none" {
        let bins = ikt_lab::agents::AgentBins::locate(agents.agents_dir.as_deref())?;
        let modes: Vec<&str> = if mode == "all" {
            ikt_lab::agents::MODES.to_vec()
        } else {
            vec![mode.as_str()]
        };
        let mut reports = Vec::new();
        for m in modes {
            let opts = ikt_lab::agents::PairOptions {
                mode: m.to_owned(),
                key_wait_ms: agents.key_wait_ms,
                log_filter: agents.agent_log.clone(),
            };
            let r = ikt_lab::demo::run_mode(&provisioned, lab.clone(), &bins, &opts).await?;
            println!("{}", r.render());
            reports.push(r);
        }
        print!("{}", ikt_lab::demo::render_summary(&reports));
        let bad: Vec<&str> = reports
            .iter()
            .filter(|r| !r.ok())
            .map(|r| r.mode.as_str())
            .collect();
        if !bad.is_empty() {
            anyhow::bail!(
                "the demo did not run as expected in mode(s): {}",
                bad.join(", ")
            );
        }
        println!(
            "all modes ok: keys reached the P-CSCF, never a UE, and crossed the core in clear only in plain"
        );
        return Ok(());
    }
    let report = ikt_lab::demo::run(&provisioned, lab, hops).await?;
    print!("{}", report.render());
    let ok = report.registered == report.ues
        && report.keys_matched == report.registered
        && report.keys_seen_by_ues == 0
        && report.reauth.as_ref().is_none_or(|(_, ok)| *ok)
        && report
            .wrong_k
            .as_ref()
            .is_none_or(|(_, _, rejected)| *rejected);
    if !ok {
        anyhow::bail!("the demo did not run as expected");
    }
    Ok(())
}

async fn ctl(admin: SocketAddr, action: CtlAction) -> anyhow::Result<()> {
    let command = match action {
        CtlAction::Reauth { impi } => format!("reauth {impi}"),
        CtlAction::Stats => "stats".into(),
        CtlAction::Fingerprint { impi } => format!("fingerprint {impi}"),
        CtlAction::Check { impi } => format!("check {impi}"),
    };
    let reply = ikt_lab::admin::request(admin, &command, Duration::from_secs(5)).await?;
    if let Some(rest) = reply.strip_prefix("error: ") {
        anyhow::bail!("{}", rest.trim());
    }
    print!(
        "{}",
        reply
            .strip_prefix("ok")
            .unwrap_or(&reply)
            .trim_start_matches([' ', '\n'])
    );
    if !reply.ends_with('\n') {
        println!();
    }
    Ok(())
}

/// `default_filter` applies when RUST_LOG is unset: the demo prints a report, so only warnings.
fn run_async(
    default_filter: &str,
    f: impl std::future::Future<Output = anyhow::Result<()>>,
) -> ExitCode {
    init_tracing(default_filter);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(f) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Usage errors exit with 2, like clap's own.
const USAGE_EXIT: u8 = 2;

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(USAGE_EXIT)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            // One line: clap's first line names the problem; usage hints follow on later lines.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            return usage_error(first.trim_start_matches("error: "));
        }
    };
    match cli.command {
        Command::Milenage {
            k,
            op,
            opc,
            rand,
            sqn,
            amf,
        } => {
            match ikt_lab::cli_milenage::report(
                &k,
                op.as_deref(),
                opc.as_deref(),
                &rand,
                &sqn,
                &amf,
            ) {
                Ok(text) => {
                    let mut out = std::io::stdout().lock();
                    if out
                        .write_all(text.as_bytes())
                        .and_then(|()| out.flush())
                        .is_err()
                    {
                        return ExitCode::FAILURE;
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => usage_error(&e.to_string()),
            }
        }
        Command::Serve {
            subscribers,
            common,
            listen,
        } => run_async("info", serve(subscribers, common, listen)),
        Command::Demo {
            subscribers,
            ues,
            common,
            pcscf_next_hop,
            icscf_next_hop,
            mode,
            agents,
        } => run_async(
            "warn",
            demo(
                subscribers,
                ues,
                common,
                AgentHops {
                    pcscf_next_hop,
                    icscf_next_hop,
                },
                mode,
                agents,
            ),
        ),
        Command::Ctl { admin, action } => run_async("warn", ctl(admin, action)),
    }
}
