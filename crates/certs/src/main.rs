//! `ikt-certs`: makes the development PKI (a private CA and one certificate per agent).
#![forbid(unsafe_code)]

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Development PKI for the IMS key transport agents.
///
/// The agents authenticate each other with mutual TLS 1.3 against one private CA and authorise
/// the peer by the certificate's DNS SAN, which must equal the agent id configured in the peer
/// table (e.g. `pcscf-1`). This tool makes such a CA and per-agent certificates for the demo,
/// tests and compose files. It is not a production CA: keep ca.key offline or delete it.
#[derive(Parser, Debug)]
#[command(name = "ikt-certs", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Make a new CA and one certificate per agent.
    ///
    /// Writes DIR/ca.pem, DIR/ca.key and, per agent, DIR/AGENT.pem and DIR/AGENT.key.
    /// Key files get mode 0600. Each agent certificate has SAN DNS:AGENT (plus DNS:localhost
    /// and IP:127.0.0.1 for loopback use) and is valid as TLS client and server.
    Init {
        /// Output directory (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Agent id, repeatable (e.g. --agent pcscf-1 --agent scscf-1): a-z, 0-9, '-', '.'.
        #[arg(long = "agent", value_name = "AGENT", required = true)]
        agents: Vec<String>,
        /// Validity in days of the CA and the agent certificates.
        #[arg(long, default_value_t = 365, value_name = "N")]
        days: u32,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Init {
            out,
            agents,
            days,
            force,
        } => {
            let written = ikt_certs::init(&out, &agents, days, force)?;
            for f in written.files {
                println!("{}", f.display());
            }
        }
    }
    Ok(())
}
