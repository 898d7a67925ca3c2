//! SIPp (Debian package sip-tester) registers through the relay: UAC -> relay -> UAS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use ikt_relay::NoHook;

use crate::support::*;

const CALLS: u32 = 50;

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// A port free for UDP and TCP a moment ago (SIPp needs a fixed port on its command line).
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn sipp(dir: &Path, role: &str, args: &[String]) -> Command {
    let mut c = Command::new("sipp");
    c.current_dir(dir)
        .args([
            "-nostdin",
            "-nd",
            "-i",
            "127.0.0.1",
            "-timeout",
            "30s",
            "-timeout_error",
            "-max_recv_loops",
            "1000",
        ])
        .args([
            "-trace_stat",
            "-stf",
            &format!("{role}.csv"),
            "-trace_err",
            "-error_file",
            &format!("{role}.err"),
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Reads the last row of a SIPp `-trace_stat` CSV file as (column -> value).
fn final_stats(path: &Path) -> Vec<(String, String)> {
    let csv = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .expect("CSV header")
        .split(';')
        .map(str::to_owned)
        .collect();
    let last: Vec<String> = lines
        .next_back()
        .expect("CSV data row")
        .split(';')
        .map(str::to_owned)
        .collect();
    header.into_iter().zip(last).collect()
}

fn stat(stats: &[(String, String)], name: &str) -> u64 {
    stats
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .1
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_registers_through_the_relay_over_udp() {
    register_through_relay("u1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_registers_through_the_relay_over_tcp() {
    register_through_relay("t1").await;
}

/// Runs UAS and UAC scenarios with SIPp transport mode `mode` (`u1` UDP, `t1` TCP).
async fn register_through_relay(mode: &str) {
    let found = Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        found.is_ok(),
        "sipp is not installed: apt-get install -y sip-tester"
    );

    let dir = std::env::temp_dir().join(format!("ikt-relay-sipp-{mode}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let uas_port = free_port();
    let uas_addr: SocketAddr = format!("127.0.0.1:{uas_port}").parse().unwrap();
    let relay = relay(Some((uas_addr, None)), Arc::new(NoHook), |_| {}).await;
    let r = if mode == "t1" {
        relay.tcp_addrs()[0]
    } else {
        relay.udp_addrs()[0]
    };

    let calls = CALLS.to_string();
    let uas_args = vec![
        "-sf".into(),
        scenario("uas_register.xml").display().to_string(),
        "-t".into(),
        mode.into(),
        "-p".into(),
        uas_port.to_string(),
        "-m".into(),
        calls.clone(),
    ];
    let uas = sipp(&dir, "uas", &uas_args)
        .spawn()
        .expect("start sipp uas");
    // Start the UAC only once the UAS holds its port (SIPp does not retransmit over TCP).
    let deadline = std::time::Instant::now() + GUARD;
    while if mode == "t1" {
        std::net::TcpListener::bind(uas_addr).is_ok()
    } else {
        std::net::UdpSocket::bind(uas_addr).is_ok()
    } {
        assert!(
            std::time::Instant::now() < deadline,
            "sipp uas did not bind {uas_addr}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let uac_args = vec![
        "-sf".into(),
        scenario("uac_register.xml").display().to_string(),
        r.to_string(),
        "-t".into(),
        mode.into(),
        "-p".into(),
        free_port().to_string(),
        "-m".into(),
        calls.clone(),
        "-r".into(),
        calls.clone(),
    ];
    let uac_dir = dir.clone();
    let uac = tokio::task::spawn_blocking(move || {
        sipp(&uac_dir, "uac", &uac_args)
            .output()
            .expect("run sipp uac")
    })
    .await
    .unwrap();
    let uas_out =
        tokio::task::spawn_blocking(move || uas.wait_with_output().expect("sipp uas exits"))
            .await
            .unwrap();

    let uac_stats = final_stats(&dir.join("uac.csv"));
    let uas_stats = final_stats(&dir.join("uas.csv"));
    let err =
        |who: &str| std::fs::read_to_string(dir.join(format!("{who}.err"))).unwrap_or_default();
    assert!(
        uac.status.success(),
        "sipp uac failed ({}): {} {}",
        uac.status,
        String::from_utf8_lossy(&uac.stderr),
        err("uac")
    );
    assert!(
        uas_out.status.success(),
        "sipp uas failed ({}): {}",
        uas_out.status,
        err("uas")
    );
    assert_eq!(
        stat(&uac_stats, "SuccessfulCall(C)"),
        u64::from(CALLS),
        "{uac_stats:?}"
    );
    assert_eq!(stat(&uac_stats, "FailedCall(C)"), 0);
    assert_eq!(
        stat(&uas_stats, "SuccessfulCall(C)"),
        u64::from(CALLS),
        "{uas_stats:?}"
    );
    assert_eq!(stat(&uas_stats, "FailedCall(C)"), 0);

    let s = relay.stats();
    assert!(s.forwarded_requests >= 2 * u64::from(CALLS), "{s:?}");
    assert!(s.forwarded_responses >= 2 * u64::from(CALLS), "{s:?}");
    assert_eq!(s.dropped_total(), 0, "{s:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
