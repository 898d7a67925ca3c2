//! Reading the agents' Prometheus `/metrics` and the lab's `stats` admin command.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

/// `GET /metrics` over plain HTTP/1.1; the body, or `None` when unreachable or not 200.
pub fn get(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut buf = Vec::new();
    s.take(16 << 20).read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// One sample: metric name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// Parsed samples.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    samples: Vec<Sample>,
}

impl Metrics {
    /// Parses Prometheus text exposition (comments skipped).
    pub fn parse(text: &str) -> Self {
        let mut samples = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, parse_labels(rest.trim_end_matches('}'))),
                None => (series, Vec::new()),
            };
            samples.push((name.to_string(), labels, value));
        }
        Self { samples }
    }

    /// Sum of every sample of `name` whose labels include all of `with`.
    pub fn sum(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, labels, _)| {
                n == name
                    && with
                        .iter()
                        .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, _, v)| v)
            .sum()
    }
}

fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in text.split("\",") {
        if let Some((k, v)) = part.split_once('=') {
            out.push((
                k.trim().trim_start_matches(',').to_string(),
                v.trim().trim_matches('"').to_string(),
            ));
        }
    }
    out
}

/// The lab's `stats` counters (`name value` lines), or `None` when it does not answer.
pub fn lab_stats(admin: SocketAddr) -> Option<Vec<(String, u64)>> {
    let s = UdpSocket::bind("127.0.0.1:0").ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    s.send_to(b"stats", admin).ok()?;
    let mut buf = [0u8; 4096];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    let body = text.strip_prefix("ok")?;
    Some(
        body.lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_string(), v.trim().parse().ok()?))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_by_label() {
        let m = Metrics::parse(
            "# HELP x y\nikt_bundles_sent_total{peer=\"pcscf-1\",mode=\"grpc\"} 12\n\
             ikt_bundles_sent_total{peer=\"pcscf-2\",mode=\"quic\"} 3\nikt_store_entries 7\n",
        );
        assert_eq!(m.sum("ikt_bundles_sent_total", &[]), 15.0);
        assert_eq!(m.sum("ikt_bundles_sent_total", &[("mode", "grpc")]), 12.0);
        assert_eq!(m.sum("ikt_store_entries", &[]), 7.0);
        assert_eq!(m.sum("missing", &[]), 0.0);
    }
}
