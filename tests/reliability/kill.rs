//! Each agent as its own process, SIGKILLed under load and started again: no state survives,
//! nothing is flushed. Invariants: no keyless or wrong-keyed 401 reaches the P-CSCF side at
//! any moment, and the pair serves again by itself after each restart.
//!
//! Needs the agent binaries (`cargo build -p s-cscf-agent -p p-cscf-agent --bins`, which
//! scripts/test.sh, leak-check.sh and reliability-report.sh run first); `IKT_BIN_DIR` overrides
//! where they are looked for (default: the target directory of this test binary).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ikt_agent::Mode;

use crate::faults::{Tally, auto_core_at, load_at, transaction};
use crate::record;
use crate::support::{Endpoint, POpts, Pki, SOpts, WAIT, free_addr, p_config, s_config, tap_relay};

fn bin_dir() -> PathBuf {
    std::env::var_os("IKT_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // target/debug/deps/reliability-… → target/debug
            let exe = std::env::current_exe().unwrap();
            exe.parent().and_then(Path::parent).unwrap().to_owned()
        })
}

/// An agent process (killed with SIGKILL on drop).
struct Proc {
    child: Child,
}

impl Proc {
    fn spawn(bin: &str, config: &Path, log: &Path) -> Proc {
        let path = bin_dir().join(bin);
        assert!(
            path.is_file(),
            "{} not found: build the agent binaries first (cargo build --workspace --bins) or set IKT_BIN_DIR",
            path.display()
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(path)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        Proc { child }
    }

    /// SIGKILL: no shutdown path runs.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs transactions from a fresh edge until one is served (the pair is back), within the hang guard.
async fn until_served(p_sip: std::net::SocketAddr, what: &str) {
    let edge = Endpoint::bind().await;
    let t = Tally::default();
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut i = 0;
    while t.served.load(Ordering::Relaxed) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not serving again"
        );
        transaction(&edge, p_sip, &format!("probe-{what}-{i}"), &t).await;
        assert_eq!(t.violations.load(Ordering::Relaxed), 0, "{what}");
        i += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_processes_sigkilled_under_load() {
    crate::leaks::init_logging();
    for mode in [Mode::Grpc, Mode::Quic, Mode::Sealed] {
        let pki = Pki::new();
        let core = Arc::new(Endpoint::bind().await);
        let (p_sip, s_sip, grpc, quic) = (free_addr(), free_addr(), free_addr(), free_addr());
        let peer = if mode == Mode::Quic { quic } else { grpc };
        let s_cfg = s_config(&pki, &SOpts::new(mode), s_sip, core.addr, peer);
        let (_tap, tap) = tap_relay(s_sip).await;
        let p_cfg = p_config(
            &pki,
            &POpts::default(),
            p_sip,
            _tap.udp_addrs()[0],
            grpc,
            quic,
        );
        let log = pki.path("agents.log");
        let mut s = Some(Proc::spawn("s-cscf-agent", &s_cfg, &log));
        let mut p = Some(Proc::spawn("p-cscf-agent", &p_cfg, &log));
        let responder = auto_core_at(core.clone(), s_sip);
        until_served(p_sip, &format!("{mode} start")).await;

        let stop = Arc::new(AtomicBool::new(false));
        let t = Arc::new(Tally::default());
        let tasks = load_at(p_sip, 4, stop.clone(), t.clone(), "kill");
        tokio::time::sleep(Duration::from_millis(300)).await;
        p.take().unwrap().kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        p = Some(Proc::spawn("p-cscf-agent", &p_cfg, &log));
        until_served(p_sip, &format!("{mode} after p kill")).await;
        s.take().unwrap().kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        s = Some(Proc::spawn("s-cscf-agent", &s_cfg, &log));
        until_served(p_sip, &format!("{mode} after s kill")).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            task.await.unwrap();
        }
        responder.abort();
        drop((p, s));
        let clear = tap.with_clear_keys();
        record::row(
            "fault",
            &format!(
                "{mode}: agent processes SIGKILLed under load (p-cscf-agent, then s-cscf-agent), restarted"
            ),
            &format!("{}; clear keys on the path: {clear}", t.line()),
        );
        assert_eq!(
            t.violations.load(Ordering::Relaxed),
            0,
            "{mode}: {}",
            t.line()
        );
        assert!(t.served.load(Ordering::Relaxed) > 0, "{mode}: {}", t.line());
        assert_eq!(clear, 0, "{mode}");
    }
}
