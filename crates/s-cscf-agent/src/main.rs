//! `s-cscf-agent`: the sidecar beside the S-CSCF.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use s_cscf_agent::{config, run::Agent};

/// Sidecar beside an S-CSCF: relays SIP between the core and the S-CSCF, takes CK/IK out of the
/// S-CSCF's AKA 401s and carries them to the P-CSCF's agent per peer mode (plain, sealed `kt`
/// header param, gRPC or QUIC over mutual TLS 1.3). SIGHUP reloads certificates and peers;
/// SIGINT/SIGTERM shut down gracefully.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// The TOML config file (see deploy/config/s-cscf-agent.toml for an annotated example).
    #[arg(long, short, default_value = "/etc/ikt/s-cscf-agent.toml")]
    config: PathBuf,
    /// Validate the config (including secret and certificate files), print a summary and exit.
    #[arg(long)]
    check_config: bool,
    /// Worker threads. 1 keeps every message on one thread from receive to send (lowest latency
    /// and CPU per message); more only helps when one core cannot carry the load.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("s-cscf-agent: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check_config {
        println!(
            "config ok: id={} listen={} scscf={} peers={}",
            cfg.id,
            cfg.sip.listen,
            cfg.sip.scscf,
            cfg.peers
                .values()
                .map(|p| format!("{}({})", p.id, p.mode))
                .collect::<Vec<_>>()
                .join(",")
        );
        return ExitCode::SUCCESS;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    ikt_agent::signals::run_main("s-cscf-agent", usize::from(cli.threads), async move {
        run(cli.config, cfg).await.map_err(|e| format!("{e:#}"))
    })
}

async fn run(path: PathBuf, cfg: config::Config) -> anyhow::Result<()> {
    let metrics = ikt_agent::telemetry::install_metrics()?;
    let signals = ikt_agent::signals::Signals::install()?;
    let agent = Agent::start(&cfg, Some(metrics)).await?;
    ikt_agent::signals::until_shutdown(&signals, || async {
        agent.reload(&path).await.map_err(|e| format!("{e:#}"))
    })
    .await;
    tracing::info!("shutting down");
    agent.shutdown(Duration::from_secs(2)).await;
    Ok(())
}
