//! The admin endpoint of `ims-lab serve`: one text command per UDP datagram, one reply.
//!
//! Commands: `reauth <impi>` (network-initiated re-authentication), `stats` (counters),
//! `fingerprint <impi>` (the P-CSCF's key fingerprint), `check <impi>` (the P-CSCF's keys
//! against the HSS). Replies start with `ok` or `error:`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::Error;
use crate::hss::Hss;
use crate::pcscf::Pcscf;
use crate::scscf::Scscf;

/// Serves admin commands until `shutdown` flips.
pub async fn run(
    socket: UdpSocket,
    hss: Arc<Hss>,
    scscf: Arc<Scscf>,
    pcscf: Arc<Pcscf>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 2048];
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            r = socket.recv_from(&mut buf) => {
                let Ok((n, src)) = r else { continue };
                let text = String::from_utf8_lossy(&buf[..n]).trim().to_string();
                let reply = command(&text, &hss, &scscf, &pcscf).await;
                let _ = socket.send_to(reply.as_bytes(), src).await;
            }
        }
    }
}

async fn command(text: &str, hss: &Hss, scscf: &Scscf, pcscf: &Pcscf) -> String {
    let mut words = text.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("reauth"), Some(impi), None) => match scscf.reauth(impi).await {
            Ok(()) => format!("ok reauth {impi}"),
            Err(e) => format!("error: {e}"),
        },
        (Some("fingerprint"), Some(impi), None) => match pcscf.fingerprint(impi) {
            Some(fp) => format!("ok {fp}"),
            None => "error: no keys for this IMPI".into(),
        },
        (Some("check"), Some(impi), None) => match pcscf.check_keys(impi, hss) {
            Some(true) => "ok keys match the HSS".into(),
            Some(false) => "error: the P-CSCF's keys differ from the HSS's".into(),
            None => "error: no keys for this IMPI".into(),
        },
        (Some("stats"), None, None) => {
            let c = scscf.stats().counts();
            let p = pcscf.stats();
            format!(
                "ok\nscscf_registrations {}\nscscf_deregistrations {}\nscscf_challenges {}\nscscf_auth_failures {}\nscscf_resyncs {}\nscscf_policy_actions {}\nscscf_reauths {}\nscscf_notifies {}\nscscf_reg_await_auth_expired {}\npcscf_keys_stored {}\npcscf_fail_closed {}\npcscf_registrations {}\npcscf_keys_dropped {}\n",
                c.registrations,
                c.deregistrations,
                c.challenges,
                c.auth_failures,
                c.resyncs,
                c.policy_actions,
                c.reauths,
                c.notifies,
                c.reg_await_auth_expired,
                p.keys_stored.load(Ordering::Relaxed),
                p.fail_closed.load(Ordering::Relaxed),
                p.registrations.load(Ordering::Relaxed),
                p.keys_dropped.load(Ordering::Relaxed),
            )
        }
        _ => {
            "error: commands are: reauth <impi> | fingerprint <impi> | check <impi> | stats".into()
        }
    }
}

/// Sends one admin command and returns the reply (the `ims-lab ctl` client).
pub async fn request(admin: SocketAddr, command: &str, limit: Duration) -> Result<String, Error> {
    let bind: SocketAddr = if admin.is_ipv4() {
        ([127, 0, 0, 1], 0).into()
    } else {
        (std::net::Ipv6Addr::LOCALHOST, 0).into()
    };
    let socket = UdpSocket::bind(bind).await?;
    socket.send_to(command.as_bytes(), admin).await?;
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(limit, socket.recv_from(&mut buf))
        .await
        .map_err(|_| Error::Timeout)??;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}
