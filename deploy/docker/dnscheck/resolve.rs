//! `resolve NAME[:PORT]...` prints what the C library's resolver returns for each name, so a
//! `FROM scratch` image can be checked for working name resolution inside a compose network.
//! `resolve --idle SECONDS` just stays up, as a named peer for the others to look up.
//! Built by deploy/docker/check-dns.sh with rustc alone (std only), statically like the agents.
#![forbid(unsafe_code)]

use std::net::ToSocketAddrs;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, secs] = args.as_slice() {
        if flag == "--idle" {
            let secs: u64 = secs.parse().unwrap_or(60);
            std::thread::sleep(std::time::Duration::from_secs(secs));
            return ExitCode::SUCCESS;
        }
    }
    let mut failed = false;
    for arg in args {
        let target = if arg.contains(':') { arg.clone() } else { format!("{arg}:0") };
        match target.to_socket_addrs() {
            Ok(addrs) => {
                let ips: Vec<String> = addrs.map(|a| a.ip().to_string()).collect();
                println!("{arg} -> {}", ips.join(" "));
                if ips.is_empty() {
                    failed = true;
                }
            }
            Err(e) => {
                println!("{arg} -> error: {e}");
                failed = true;
            }
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
