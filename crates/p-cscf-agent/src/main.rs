//! `p-cscf-agent`: the sidecar beside the S-CSCF.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use p_cscf_agent::{config, run::Agent};

/// Sidecar beside a P-CSCF: relays SIP between the P-CSCF and the core, and puts CK/IK back
/// into AKA 401s in the exact form Kamailio's S-CSCF emits, from a sealed `kt` header param or
/// from bundles received over gRPC or QUIC (mutual TLS 1.3). A 401 whose keys do not arrive in
/// `key_wait` becomes 503 with Retry-After. SIGHUP reloads certificates, peers and sealing kids;
/// SIGINT/SIGTERM shut down gracefully.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// The TOML config file (see deploy/config/p-cscf-agent.toml for an annotated example).
    #[arg(long, short, default_value = "/etc/ikt/p-cscf-agent.toml")]
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
            eprintln!("p-cscf-agent: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check_config {
        println!(
            "config ok: id={} listen={} core={} grpc={} quic={} peers={}",
            cfg.id,
            cfg.sip.listen,
            cfg.sip.core,
            cfg.transport
                .as_ref()
                .and_then(|t| t.grpc_listen)
                .map_or("-".into(), |a| a.to_string()),
            cfg.transport
                .as_ref()
                .and_then(|t| t.quic_listen)
                .map_or("-".into(), |a| a.to_string()),
            cfg.peers.keys().cloned().collect::<Vec<_>>().join(",")
        );
        return ExitCode::SUCCESS;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    ikt_agent::signals::run_main("p-cscf-agent", usize::from(cli.threads), async move {
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
    agent.shutdown().await;
    Ok(())
}
