//! UDP: socket setup (large kernel buffers) and the receive loop.
//!
//! One task per socket receives a datagram, runs the whole proxy path on it and sends the
//! result with a non-blocking `try_send_to` before reading the next: no hand-off between tasks
//! (DESIGN §9), no allocation beyond the reused receive and output buffers on the plain path.

use std::net::SocketAddr;
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tracing::debug;

use crate::config::Transport;
use crate::proxy::{Core, Origin};

/// Binds a non-blocking UDP socket with `buffer` bytes of SO_RCVBUF and SO_SNDBUF.
pub(crate) fn bind(addr: SocketAddr, buffer: usize) -> std::io::Result<UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // The kernel caps these at net.core.{r,w}mem_max; a smaller buffer still works, so only log.
    if let Err(e) = sock.set_recv_buffer_size(buffer) {
        debug!(error = %e, "SO_RCVBUF not set");
    }
    if let Err(e) = sock.set_send_buffer_size(buffer) {
        debug!(error = %e, "SO_SNDBUF not set");
    }
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    UdpSocket::from_std(sock.into())
}

impl Core {
    /// Receive loop of UDP socket `index` until shutdown.
    pub(crate) async fn run_udp(self: Arc<Self>, index: usize) {
        let sock = Arc::clone(&self.udp[index].sock);
        let local = self.udp[index].local;
        // 64 KiB covers the largest datagram; the output buffer grows once and is reused.
        let mut buf = vec![0u8; 65536];
        let mut out = Vec::with_capacity(65536);
        let stop = self.shutdown.triggered();
        tokio::pin!(stop);
        loop {
            let received = tokio::select! {
                biased;
                () = &mut stop => break,
                r = sock.recv_from(&mut buf) => r,
            };
            match received {
                Ok((n, peer)) => {
                    let origin = Origin {
                        transport: Transport::Udp,
                        peer,
                        local,
                        conn: None,
                        udp: index,
                    };
                    self.receive(&buf[..n], &origin, &mut out);
                }
                // ICMP errors from earlier sends (ECONNREFUSED from a dead next hop) surface
                // here on Linux; they concern another peer, so keep reading.
                Err(e) => debug!(error = %e, "UDP receive error"),
            }
        }
    }
}
