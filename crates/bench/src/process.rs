//! CPU time and memory of processes, read from `/proc`.
//!
//! CPU comes from `/proc/<pid>/task/*/schedstat` (nanoseconds on CPU per thread), which is far
//! finer than the 10 ms ticks of `/proc/<pid>/stat`. Threads that exit take their time with
//! them; the processes measured here keep their worker threads for their whole life.

use std::path::Path;

/// Nanoseconds on CPU of every live thread of `pid`; `None` when the process is gone.
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    for t in dir.flatten() {
        if let Ok(text) = std::fs::read_to_string(t.path().join("schedstat"))
            && let Some(v) = text
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
        {
            total += v;
        }
    }
    Some(total)
}

/// CPU nanoseconds of `pid` and every descendant (Kamailio forks its workers).
pub fn tree_cpu_ns(pid: u32) -> Option<u64> {
    let mut total = cpu_ns(pid)?;
    for d in descendants(pid) {
        total += cpu_ns(d).unwrap_or(0);
    }
    Some(total)
}

/// User and system clock ticks of every live thread of `pid` and its descendants
/// (`utime`, `stime` of `/proc/<pid>/task/*/stat`; 10 ms ticks, so only for long intervals).
pub fn tree_user_sys_ticks(pid: u32) -> (u64, u64) {
    let mut pids = vec![pid];
    pids.extend(descendants(pid));
    let mut user = 0;
    let mut sys = 0;
    for p in pids {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in dir.flatten() {
            let Ok(text) = std::fs::read_to_string(t.path().join("stat")) else {
                continue;
            };
            let Some(close) = text.rfind(')') else {
                continue;
            };
            let f: Vec<&str> = text[close + 1..].split_whitespace().collect();
            // After the name: state(0) ppid(1) ... utime(11) stime(12).
            user += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            sys += f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    (user, sys)
}

/// Parent pid from `/proc/<pid>/stat` (the field after the parenthesised name).
fn parent_of(pid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Every descendant of `pid` alive now.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut all: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok())
                && let Some(pp) = parent_of(p)
            {
                all.push((p, pp));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for &(c, pp) in &all {
            if pp == p && !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

/// A `kB` field of `/proc/<pid>/status` (e.g. `RssAnon`, `VmRSS`), in bytes.
pub fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// Busy and total jiffies of the whole machine from `/proc/stat` (all CPUs).
pub fn machine_jiffies() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let idle = v.get(3).copied()? + v.get(4).copied().unwrap_or(0);
    let total: u64 = v.iter().take(8).sum();
    Some((total - idle, total))
}

/// Receive-buffer drops of the loopback UDP sockets bound to `port`, from `/proc/net/udp`
/// (the last column); summed over sockets on that port.
pub fn udp_drops(port: u16) -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/net/udp") else {
        return 0;
    };
    let want = format!(":{port:04X}");
    text.lines()
        .skip(1)
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| a.ends_with(&want))
        })
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

/// Clock ticks per second of `/proc/stat` (USER_HZ; 100 on Linux).
pub const USER_HZ: u64 = 100;

/// A short description of the machine: CPU model, CPUs online, kernel, memory.
pub fn machine_description() -> (String, usize, String, u64) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown".into());
    let nproc = std::thread::available_parallelism().map_or(1, usize::from);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        })
        .unwrap_or(0)
        * 1024;
    (cpu, nproc, kernel, mem)
}

/// Whether `/proc` is there at all (the tool needs it for CPU and memory figures).
pub fn available() -> bool {
    Path::new("/proc/self/task").is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_readable() {
        let me = std::process::id();
        assert!(cpu_ns(me).is_some());
        assert!(status_bytes(me, "VmRSS").unwrap() > 0);
        let (busy, total) = machine_jiffies().unwrap();
        assert!(busy <= total);
        assert!(descendants(me).iter().all(|&p| p != me));
    }
}
