//! The admin endpoint: `GET /metrics` (Prometheus text), `GET /healthz` (liveness) and
//! `GET /readyz` (readiness).
//!
//! Liveness and readiness are separate on purpose: an s-cscf-agent whose p-cscf-agent peer is
//! down is alive and still useful (it seals or fails closed by policy), so a liveness probe must
//! not restart it, while a readiness probe or a deploy script may want to wait for the peer.
//!
//! A deliberately tiny HTTP/1.1 responder: one request per connection, bounded request size and read
//! time, so a scraper or a port scanner cannot hold resources. It binds its own port, separate from
//! SIP and key transport, so operators can firewall it apart.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Largest request head accepted.
const MAX_REQUEST: usize = 8192;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What `/healthz` and `/readyz` report: readiness plus detail lines.
#[derive(Debug, Clone)]
pub struct Health {
    /// Ready: every configured peer link is up (`/readyz` answers 200, else 503). `/healthz`
    /// answers 200 whenever the agent serves requests at all.
    pub ok: bool,
    /// One line per component, e.g. `peer pcscf-1 up`.
    pub detail: Vec<String>,
}

/// Produces the current health on demand.
pub type HealthFn = Arc<dyn Fn() -> Health + Send + Sync>;

/// Serves the admin endpoint until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    metrics: Option<PrometheusHandle>,
    health: HealthFn,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|v| *v) => return,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let metrics = metrics.clone();
                let health = health.clone();
                tokio::spawn(async move {
                    if let Err(e) = handle(stream, metrics, health).await {
                        tracing::debug!(%peer, error = %e, "admin request failed");
                    }
                });
            }
        }
    }
}

/// Binds the admin listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

async fn handle(
    mut stream: TcpStream,
    metrics: Option<PrometheusHandle>,
    health: HealthFn,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    let read = async {
        loop {
            let n = stream.read(&mut buf[len..]).await?;
            if n == 0 {
                break;
            }
            len += n;
            if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") || len == buf.len() {
                break;
            }
        }
        Ok::<_, std::io::Error>(())
    };
    if tokio::time::timeout(READ_TIMEOUT, read).await.is_err() {
        return Ok(());
    }
    let head = &buf[..len];
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    let method = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    let (status, ctype, body) = match (method, path) {
        (b"GET", b"/metrics") => match metrics {
            Some(h) => ("200 OK", "text/plain; version=0.0.4", h.render()),
            None => ("404 Not Found", "text/plain", "metrics disabled\n".into()),
        },
        (b"GET", b"/healthz" | b"/readyz") => {
            let h = health();
            let live = path == b"/healthz";
            let mut body = String::from(match (live, h.ok) {
                (true, _) => "alive\n",
                (false, true) => "ready\n",
                (false, false) => "not ready\n",
            });
            for d in &h.detail {
                body.push_str(d);
                body.push('\n');
            }
            let status = if live || h.ok {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            (status, "text/plain", body)
        }
        (b"GET", _) => ("404 Not Found", "text/plain", "not found\n".into()),
        _ => ("405 Method Not Allowed", "text/plain", "GET only\n".into()),
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: SocketAddr, req: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn healthz_and_errors() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = watch::channel(false);
        let health: HealthFn = Arc::new(|| Health {
            ok: false,
            detail: vec!["peer pcscf-1 down".into()],
        });
        let task = tokio::spawn(serve(l, None, health, rx));
        let r = get(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(
            r.starts_with("HTTP/1.1 200"),
            "alive even with a peer down: {r}"
        );
        assert!(r.ends_with("alive\npeer pcscf-1 down\n"), "{r}");
        let r = get(addr, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 503"), "{r}");
        assert!(r.ends_with("not ready\npeer pcscf-1 down\n"), "{r}");
        let r = get(addr, "GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 404"), "{r}");
        let r = get(addr, "POST /healthz HTTP/1.1\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 405"), "{r}");
        tx.send(true).unwrap();
        task.await.unwrap();
    }
}
