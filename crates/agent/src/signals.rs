//! Process signals: SIGINT/SIGTERM start a graceful shutdown, SIGHUP asks for a reload of
//! certificates and the peer table.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// Watches the process signals an agent reacts to.
pub struct Signals {
    shutdown: watch::Receiver<bool>,
    reload: watch::Receiver<u64>,
}

impl Signals {
    /// Installs the handlers; must run inside a tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        let (shutdown_tx, shutdown) = watch::channel(false);
        let (reload_tx, reload) = watch::channel(0u64);
        tokio::spawn(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            let _ = shutdown_tx.send(true);
        });
        tokio::spawn(async move {
            let mut n = 0u64;
            while hup.recv().await.is_some() {
                n += 1;
                if reload_tx.send(n).is_err() {
                    break;
                }
            }
        });
        Ok(Self { shutdown, reload })
    }

    /// A receiver that turns `true` once shutdown was requested.
    pub fn shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// A receiver whose value increases on every SIGHUP.
    pub fn reload(&self) -> watch::Receiver<u64> {
        self.reload.clone()
    }
}

/// Resolves once the shutdown flag turns true (or its sender is gone).
pub async fn wait_shutdown(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// Runs until SIGINT/SIGTERM, calling `reload` on every SIGHUP; a failed reload is logged and the
/// running configuration stays.
pub async fn until_shutdown<F, Fut, E>(signals: &Signals, mut reload: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut shutdown = signals.shutdown();
    let mut hup = signals.reload();
    loop {
        tokio::select! {
            _ = wait_shutdown(&mut shutdown) => return,
            changed = hup.changed() => {
                if changed.is_err() {
                    return;
                }
                match reload().await {
                    Ok(()) => {}
                    Err(e) => tracing::error!("reload failed, keeping the running configuration: {e}"),
                }
            }
        }
    }
}

/// An agent binary's `main` after config checks: installs the tracing subscriber, runs `f` on a
/// runtime with `threads` workers and turns its error into an exit code.
///
/// One thread (the default of both agents) runs everything on the thread that received the
/// datagram: no cross-core wake-ups on the 401 path, and no idle workers spinning for work
/// between messages, which on a quiet link cost more CPU than the messages themselves.
pub fn run_main<F>(name: &str, threads: usize, f: F) -> std::process::ExitCode
where
    F: std::future::Future<Output = Result<(), String>>,
{
    crate::telemetry::init_tracing("info");
    let built = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let rt = match built {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(f) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("{name}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
