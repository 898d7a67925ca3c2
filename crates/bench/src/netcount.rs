//! Byte counters on the agent-to-agent link, kept by nftables in the kernel.
//!
//! One table `ikt_load_<pid>` with an `output` chain counts every loopback packet between the
//! I-CSCF and the hop after it (SIP that crosses between the agents, or between I-CSCF and
//! S-CSCF in the baseline) and every packet to or from the p-cscf-agent's gRPC (TCP) or QUIC
//! (UDP) listener (the out-of-band channel, handshakes and acks included). Counts are IP packet
//! bytes: headers included. No proxy sits in the path, so counting adds no latency.
//!
//! Needs root (or CAP_NET_ADMIN); without it the run reports bytes as unavailable.

use std::io::Write;
use std::process::{Command, Stdio};

/// IPv4 + UDP header bytes per datagram.
pub const UDP_OVERHEAD: u64 = 28;
/// IPv4 + TCP header bytes per segment with the timestamp option Linux uses by default.
pub const TCP_OVERHEAD: u64 = 52;

/// What a counter matches.
#[derive(Debug, Clone)]
pub enum Match {
    /// UDP between two ports, both directions.
    UdpPair(u16, u16),
    /// TCP to or from a port.
    TcpPort(u16),
    /// UDP to or from a port.
    UdpPort(u16),
}

/// Packets and bytes of one counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    /// Packets.
    pub packets: u64,
    /// IP bytes (headers included).
    pub bytes: u64,
}

impl Count {
    /// Difference from an earlier reading.
    pub fn since(self, before: Count) -> Count {
        Count {
            packets: self.packets.saturating_sub(before.packets),
            bytes: self.bytes.saturating_sub(before.bytes),
        }
    }
}

/// The installed counters; the table is deleted on drop.
#[derive(Debug)]
pub struct Counters {
    table: String,
}

fn nft(script: &str) -> bool {
    let Ok(mut child) = Command::new("nft")
        .arg("-f")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(script.as_bytes());
    }
    child.wait().is_ok_and(|s| s.success())
}

impl Counters {
    /// Installs named counters; `None` when nftables is not usable here.
    pub fn install(counters: &[(String, Match)]) -> Option<Counters> {
        let table = format!("ikt_load_{}", std::process::id());
        let mut s = format!("table inet {table} {{\n");
        for (name, _) in counters {
            s.push_str(&format!("  counter {name} {{ }}\n"));
        }
        s.push_str("  chain out {\n    type filter hook output priority 0; policy accept;\n");
        for (name, m) in counters {
            let rules = match m {
                Match::UdpPair(a, b) => vec![
                    format!("udp sport {a} udp dport {b}"),
                    format!("udp sport {b} udp dport {a}"),
                ],
                Match::TcpPort(p) => vec![format!("tcp sport {p}"), format!("tcp dport {p}")],
                Match::UdpPort(p) => vec![format!("udp sport {p}"), format!("udp dport {p}")],
            };
            for r in rules {
                s.push_str(&format!("    oifname \"lo\" {r} counter name {name}\n"));
            }
        }
        s.push_str("  }\n}\n");
        nft(&s).then_some(Counters { table })
    }

    /// Reads one counter.
    pub fn read(&self, name: &str) -> Option<Count> {
        let out = Command::new("nft")
            .args(["list", "counter", "inet", &self.table, name])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut c = Count::default();
        let words: Vec<&str> = text.split_whitespace().collect();
        for w in words.windows(2) {
            match w[0] {
                "packets" => c.packets = w[1].parse().ok()?,
                "bytes" => c.bytes = w[1].parse().ok()?,
                _ => {}
            }
        }
        Some(c)
    }
}

impl Drop for Counters {
    fn drop(&mut self) {
        let _ = nft(&format!("delete table inet {}\n", self.table));
    }
}
