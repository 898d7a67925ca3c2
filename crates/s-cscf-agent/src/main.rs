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
    ikt_agent::telemetry::init_tracing("info");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("s-cscf-agent: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.config, cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("s-cscf-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(path: PathBuf, cfg: config::Config) -> anyhow::Result<()> {
    let metrics = ikt_agent::telemetry::install_metrics()?;
    let signals = ikt_agent::signals::Signals::install()?;
    let agent = Agent::start(&cfg, Some(metrics)).await?;
    let mut shutdown = signals.shutdown();
    let mut reload = signals.reload();
    loop {
        tokio::select! {
            _ = ikt_agent::signals::wait_shutdown(&mut shutdown) => break,
            changed = reload.changed() => {
                if changed.is_err() { break; }
                if let Err(e) = agent.reload(&path).await {
                    tracing::error!("reload failed, keeping the running configuration: {e:#}");
                }
            }
        }
    }
    tracing::info!("shutting down");
    agent.shutdown(Duration::from_secs(2)).await;
    Ok(())
}
