//! Serving a local gRPC API on a Unix socket, for proxies that integrate natively.
//!
//! The socket file is created with mode 0600 before the first connection can be accepted:
//! whoever can connect can inject keys (s-side) or read them (p-side).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio_stream::wrappers::UnixListenerStream;

/// Binds `path` (replacing a stale socket file), restricts it to the agent's user and serves
/// `routes` until `shutdown` turns true; the file is removed afterwards.
pub async fn serve_unix(
    path: PathBuf,
    routes: tonic::service::Routes,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    if path.exists() {
        std::fs::remove_file(&path)?;
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    tokio::spawn(async move {
        let result = tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async move {
                let _ = shutdown.wait_for(|v| *v).await;
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "local API stopped");
        }
        let _ = std::fs::remove_file(&path);
    });
    Ok(())
}
