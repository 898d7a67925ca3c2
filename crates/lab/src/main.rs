//! `ims-lab`: the reference IMS network.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    }
}
