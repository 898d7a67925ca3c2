//! `sip-relay`: a bare stateless SIP relay hop.
//!
//! The baseline the agents are compared with, and the first demo: run it between a UAC and a
//! UAS with `--print` to see every message that crosses it.
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use ikt_relay::{Config, Direction, Hook, Inbound, NextHop, NoHook, Relay, Transport, Verdict};
use tracing_subscriber::EnvFilter;

/// A stateless SIP proxy hop (RFC 3261 §16.11) over UDP and TCP.
///
/// Requests received on --listen go to --next (or along a Route that names another hop) with
/// this relay's Via on top and Max-Forwards decremented; responses come back the same way with
/// the Via removed. Every other byte is forwarded untouched.
///
/// Example: sip-relay --listen 127.0.0.1:5060 --next 127.0.0.1:5070 --print
#[derive(Parser, Debug)]
#[command(name = "sip-relay", version, about, long_about)]
struct Args {
    /// Address to listen on for UDP (repeatable); with --tcp also for TCP.
    #[arg(long, required = true, value_name = "ADDR")]
    listen: Vec<SocketAddr>,

    /// Next hop for requests that carry no Route to another hop.
    #[arg(long, value_name = "ADDR")]
    next: Option<SocketAddr>,

    /// Transport toward --next; by default the one the request arrived on.
    #[arg(long, value_enum, value_name = "PROTO")]
    next_transport: Option<Proto>,

    /// Also listen on TCP on every --listen address.
    #[arg(long)]
    tcp: bool,

    /// Host written in this relay's Via (default: the listen IP; required for 0.0.0.0).
    #[arg(long, value_name = "HOST")]
    via_host: Option<String>,

    /// Extra Via parameter(s), e.g. `ikt=relay-1` (repeatable).
    #[arg(long, value_name = "PARAM")]
    via_param: Vec<String>,

    /// Another `host[:port]` that Route headers may use to name this relay (repeatable).
    #[arg(long, value_name = "HOST[:PORT]")]
    alias: Vec<String>,

    /// Print one line per message crossing the relay: direction, method or status, Call-ID.
    #[arg(long, short = 'p')]
    print: bool,

    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Close TCP connections idle for this many seconds.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    idle_timeout: u64,

    /// Messages queued per TCP connection before further ones are dropped.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    tcp_queue: usize,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Proto {
    Udp,
    Tcp,
}

/// Prints every received message that the relay handles.
struct PrintHook;

impl PrintHook {
    fn line(msg: &Inbound<'_, '_>) {
        let m = msg.message;
        let what = match msg.direction {
            Direction::Request => format!("--> {}", m.method().unwrap_or("?")),
            Direction::Response => format!(
                "<-- {} {}",
                m.status().unwrap_or(0),
                m.reason().unwrap_or("")
            ),
        };
        let cseq = m
            .cseq()
            .map(|c| format!("{} {}", c.num, c.method))
            .unwrap_or_default();
        let mut stdout = std::io::stdout().lock();
        // A closed stdout must not stop the relay.
        let _ = writeln!(
            stdout,
            "{what:<28} call-id={} cseq={cseq} from={}/{}",
            m.call_id().unwrap_or("-"),
            msg.peer,
            msg.transport,
        );
    }
}

impl Hook for PrintHook {
    fn on_request(&self, msg: &Inbound<'_, '_>) -> Verdict {
        Self::line(msg);
        Verdict::Pass
    }

    fn on_response(&self, msg: &Inbound<'_, '_>) -> Verdict {
        Self::line(msg);
        Verdict::Pass
    }
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let level = match args.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let config = Config {
        udp_listen: args.listen.clone(),
        tcp_listen: if args.tcp {
            args.listen.clone()
        } else {
            Vec::new()
        },
        next_hop: args.next.map(|addr| NextHop {
            addr,
            transport: args.next_transport.map(|p| match p {
                Proto::Udp => Transport::Udp,
                Proto::Tcp => Transport::Tcp,
            }),
        }),
        via_host: args.via_host.clone(),
        via_params: args.via_param.join(";"),
        aliases: args.alias.clone(),
        tcp_idle_timeout: Duration::from_secs(args.idle_timeout),
        tcp_queue: args.tcp_queue,
        ..Config::default()
    };
    let hook: Arc<dyn Hook> = if args.print {
        Arc::new(PrintHook)
    } else {
        Arc::new(NoHook)
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the Tokio runtime")?;
    runtime.block_on(async move {
        let relay = Relay::start(config, hook).await.context("starting the relay")?;
        tracing::info!(udp = ?relay.udp_addrs(), tcp = ?relay.tcp_addrs(), next = ?args.next, "sip-relay running");
        let shutdown = relay.shutdown_signal();
        let stats = relay.stats_handle();
        tokio::spawn(async move {
            stop_signal().await;
            shutdown.trigger();
        });
        relay.wait().await;
        let s = stats.snapshot();
        tracing::info!(
            received_requests = s.received_requests,
            received_responses = s.received_responses,
            forwarded_requests = s.forwarded_requests,
            forwarded_responses = s.forwarded_responses,
            answered = s.answered,
            dropped = s.dropped_total(),
            "sip-relay stopped"
        );
        Ok(())
    })
}
