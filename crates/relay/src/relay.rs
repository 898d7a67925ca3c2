//! Starting and stopping a relay.

use std::net::SocketAddr;
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::config::{Config, Transport};
use crate::error::Error;
use crate::hook::Hook;
use crate::proxy::{Core, TcpSide, UdpSide};
use crate::shutdown::Shutdown;
use crate::stats::{Stats, StatsSnapshot};

/// A running relay: its sockets are bound and its tasks spawned on the current Tokio runtime.
pub struct Relay {
    core: Arc<Core>,
    tasks: JoinSet<()>,
    udp_addrs: Vec<SocketAddr>,
    tcp_addrs: Vec<SocketAddr>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("udp_addrs", &self.udp_addrs)
            .field("tcp_addrs", &self.tcp_addrs)
            .finish_non_exhaustive()
    }
}

fn sent_by(via_host: Option<&str>, local: SocketAddr) -> String {
    match via_host {
        Some(h) if h.contains(':') && !h.starts_with('[') => format!("[{h}]:{}", local.port()),
        Some(h) => format!("{h}:{}", local.port()),
        None => local.to_string(),
    }
}

fn bind_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    TcpListener::from_std(sock.into())
}

impl Relay {
    /// Validates `config`, binds every listener and starts serving with `hook`.
    ///
    /// Must be called inside a Tokio runtime (any flavour); the relay's tasks run on it.
    pub async fn start(config: Config, hook: Arc<dyn Hook>) -> Result<Relay, Error> {
        Self::start_with_shutdown(config, hook, Shutdown::new()).await
    }

    /// Like [`Relay::start`], also stopping when `shutdown` is triggered (e.g. the agent's).
    pub async fn start_with_shutdown(
        config: Config,
        hook: Arc<dyn Hook>,
        shutdown: Shutdown,
    ) -> Result<Relay, Error> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::NoRuntime);
        }
        let via_params = config.validate()?;
        let via_host = config.via_host.as_deref();
        let mut udp = Vec::new();
        for &addr in &config.udp_listen {
            let sock =
                crate::udp::bind(addr, config.udp_socket_buffer).map_err(|source| Error::Bind {
                    addr,
                    transport: Transport::Udp,
                    source,
                })?;
            let local = sock.local_addr().map_err(|source| Error::Bind {
                addr,
                transport: Transport::Udp,
                source,
            })?;
            udp.push(UdpSide {
                sock: Arc::new(sock),
                local,
                sent_by: sent_by(via_host, local),
            });
        }
        let mut listeners = Vec::new();
        let mut tcp_sides = Vec::new();
        for &addr in &config.tcp_listen {
            let bind_err = |source| Error::Bind {
                addr,
                transport: Transport::Tcp,
                source,
            };
            let listener = bind_tcp(addr).map_err(bind_err)?;
            let local = listener.local_addr().map_err(bind_err)?;
            tcp_sides.push(TcpSide {
                local,
                sent_by: sent_by(via_host, local),
            });
            listeners.push(listener);
        }
        // The relay's own signal: the caller's `shutdown` stops it, but stopping (or dropping)
        // the relay never triggers the caller's signal.
        let external = shutdown;
        let own = Shutdown::new();
        let udp_addrs = udp.iter().map(|u| u.local).collect();
        let tcp_addrs = tcp_sides.iter().map(|t| t.local).collect();
        let core = Arc::new(Core::new(
            &config,
            via_params,
            hook,
            udp,
            tcp_sides,
            own.clone(),
        ));
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            tokio::select! {
                () = external.triggered() => own.trigger(),
                () = own.triggered() => {}
            }
        });
        for i in 0..core.udp.len() {
            tasks.spawn(Arc::clone(&core).run_udp(i));
        }
        for l in listeners {
            tasks.spawn(Arc::clone(&core).run_tcp_listener(l));
        }
        Ok(Relay {
            core,
            tasks,
            udp_addrs,
            tcp_addrs,
        })
    }

    /// The bound UDP addresses, in `Config::udp_listen` order (ports resolved).
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// The bound TCP addresses, in `Config::tcp_listen` order (ports resolved).
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    /// A copy of the counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.core.stats.snapshot()
    }

    /// The live counters (cheap to clone and read from a metrics exporter).
    pub fn stats_handle(&self) -> Arc<Stats> {
        Arc::clone(&self.core.stats)
    }

    /// Open TCP connections (accepted plus opened).
    pub fn tcp_connections(&self) -> usize {
        self.core.tcp.len()
    }

    /// This relay's own shutdown signal; triggering any clone stops the relay (only).
    pub fn shutdown_signal(&self) -> Shutdown {
        self.core.shutdown.clone()
    }

    /// Runs until the shutdown signal fires, then waits for the listener tasks to end.
    pub async fn wait(mut self) {
        self.core.shutdown.triggered().await;
        self.core.tcp.clear();
        while self.tasks.join_next().await.is_some() {}
    }

    /// Stops listening, drops held messages and closes TCP connections, then returns.
    pub async fn shutdown(self) {
        self.core.shutdown.trigger();
        self.wait().await;
    }
}

impl Drop for Relay {
    /// Dropping the handle stops the relay (its listener tasks would be aborted anyway; this
    /// also ends connection and held-message tasks instead of leaving them orphaned).
    fn drop(&mut self) {
        self.core.shutdown.trigger();
        self.core.tcp.clear();
    }
}
