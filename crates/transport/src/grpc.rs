//! gRPC transport: tonic `KeyTransport.Deliver`, one long-lived bidirectional stream per peer.
//!
//! TLS is done by us (tokio-rustls) rather than by tonic's `ServerTlsConfig`, so that every
//! handshake uses the current [`TlsHandle`] material (reload without restart), accepted sockets
//! get `TCP_NODELAY`, and refused handshakes are classified and counted.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use ikt_proto::v1::key_transport_client::KeyTransportClient;
use ikt_proto::v1::key_transport_server::{KeyTransport, KeyTransportServer};
use ikt_proto::{DeliveryAck, KeyBundle};
use rustls_pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo, TlsConnectInfo};

use crate::receiver::{AckItem, Delivery, ReceiverConfig, ReceiverHandle, RecvShared};
use crate::sender::{Outbox, PeerSender, SenderConfig};
use crate::tls::{RefusalReason, TlsHandle};
use crate::{Error, now_ms};

const H2: &[u8] = b"h2";

/// How often a sender checks for expired bundles and overdue acks.
pub(crate) const HOUSEKEEPING: Duration = Duration::from_millis(250);

/// Starts a gRPC receiver on `cfg.listen`; deliveries arrive on the returned channel.
pub async fn serve(
    cfg: ReceiverConfig,
    tls: TlsHandle,
) -> Result<(ReceiverHandle, mpsc::Receiver<Delivery>), Error> {
    let addr = cfg.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?;
    let max = cfg.max_message_bytes;
    let (shared, rx) = RecvShared::new(cfg, tls);
    let (conn_tx, conn_rx) = mpsc::channel::<Result<ConnIo, io::Error>>(16);
    tokio::spawn(accept_loop(listener, shared.clone(), conn_tx));

    let svc = KeyTransportServer::new(Svc {
        shared: shared.clone(),
    })
    .max_decoding_message_size(max)
    .max_encoding_message_size(max);
    let signal_shared = shared.clone();
    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_concurrent_streams(Some(16))
        .add_service(svc);
    let task = tokio::spawn(async move {
        let signal = async move { signal_shared.shutdown_signal().await };
        if let Err(e) = router
            .serve_with_incoming_shutdown(ReceiverStream::new(conn_rx), signal)
            .await
        {
            tracing::warn!(error = %e, "grpc receiver stopped");
        }
    });
    tracing::info!(%local_addr, "grpc receiver listening");
    Ok((
        ReceiverHandle {
            local_addr,
            shared,
            task: Some(task),
        },
        rx,
    ))
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<RecvShared>,
    conn_tx: mpsc::Sender<Result<ConnIo, io::Error>>,
) {
    loop {
        let (sock, remote) = tokio::select! {
            () = shared.shutdown_signal() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Typically EMFILE: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Nagle would hold small acks back by up to 40 ms.
        let _ = sock.set_nodelay(true);
        let Ok(permit) = shared.connections.clone().try_acquire_owned() else {
            tracing::warn!(%remote, "connection limit reached; closing");
            continue;
        };
        let shared = shared.clone();
        let conn_tx = conn_tx.clone();
        tokio::spawn(async move {
            let config = match shared.tls.server_config(&[H2]) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "no usable TLS configuration");
                    return;
                }
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            match tokio::time::timeout(shared.cfg.handshake_timeout, acceptor.accept(sock)).await {
                Ok(Ok(stream)) => {
                    let _ = conn_tx
                        .send(Ok(ConnIo {
                            inner: stream,
                            _permit: permit,
                        }))
                        .await;
                }
                Ok(Err(e)) => {
                    if let Some(reason) = classify_io(&e) {
                        shared.tls.refusals().count(reason);
                        tracing::warn!(%remote, reason = reason.as_str(), error = %e, "handshake refused");
                    }
                }
                Err(_) => {
                    shared.tls.refusals().count(RefusalReason::Timeout);
                    tracing::warn!(%remote, "handshake timed out");
                }
            }
        });
    }
}

/// Reason for a failed handshake, or `None` when the certificate verifier already counted it.
fn classify_io(e: &io::Error) -> Option<RefusalReason> {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(_)) => None,
        Some(rustls::Error::NoCertificatesPresented) => Some(RefusalReason::NoCertificate),
        Some(
            rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. }
            | rustls::Error::PeerIncompatible(_)
            | rustls::Error::NoApplicationProtocol,
        ) => Some(RefusalReason::NotTls),
        Some(_) => Some(RefusalReason::Other),
        None if e.kind() == io::ErrorKind::InvalidData => Some(RefusalReason::NotTls),
        None => Some(RefusalReason::Other),
    }
}

/// An accepted TLS connection that holds one of the receiver's connection slots.
struct ConnIo {
    inner: tokio_rustls::server::TlsStream<TcpStream>,
    _permit: OwnedSemaphorePermit,
}

impl Connected for ConnIo {
    type ConnectInfo = TlsConnectInfo<TcpConnectInfo>;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl tokio::io::AsyncRead for ConnIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for ConnIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> std::task::Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

struct Svc {
    shared: Arc<RecvShared>,
}

type AckStream = Pin<Box<dyn Stream<Item = Result<DeliveryAck, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl KeyTransport for Svc {
    type DeliverStream = AckStream;

    async fn deliver(
        &self,
        req: tonic::Request<tonic::Streaming<KeyBundle>>,
    ) -> Result<tonic::Response<AckStream>, tonic::Status> {
        let shared = self.shared.clone();
        // Re-check against the current table: it may have changed since the handshake.
        let peer = req
            .peer_certs()
            .and_then(|certs| certs.first().and_then(|c| shared.tls.peers().identify(c)))
            .ok_or_else(|| tonic::Status::permission_denied("peer not in the peer table"))?;
        let mut inbound = req.into_inner();
        let n = shared.cfg.max_in_flight_per_stream.max(1);
        let (ack_tx, ack_rx) = mpsc::channel::<AckItem>(n);
        let permits = Arc::new(Semaphore::new(n));
        shared.stream_event(&peer, true, None);
        tracing::info!(%peer, "grpc stream opened");
        let reader_shared = shared.clone();
        tokio::spawn(async move {
            let shared = reader_shared;
            let mut err = None;
            loop {
                let msg = tokio::select! {
                    () = shared.shutdown_signal() => break,
                    m = inbound.message() => m,
                };
                match msg {
                    Ok(Some(bundle)) => {
                        if let Err(e) = shared.accept_bundle(&peer, bundle, &ack_tx, &permits).await
                        {
                            err = Some(e.to_string());
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(status) => {
                        tracing::warn!(%peer, code = ?status.code(), message = status.message(), "grpc stream failed");
                        err = Some(format!("{:?}: {}", status.code(), status.message()));
                        break;
                    }
                }
            }
            shared.stream_event(&peer, false, err);
        });
        let stop = async move { shared.shutdown_signal().await };
        let out = ReceiverStream::new(ack_rx)
            .map(|(ack, _permit)| Ok(ack))
            .take_until(Box::pin(stop));
        Ok(tonic::Response::new(Box::pin(out)))
    }
}

/// Starts a gRPC sender toward one peer; it connects in the background and reconnects.
pub fn connect(cfg: SenderConfig, tls: TlsHandle) -> PeerSender {
    let outbox = Outbox::new(
        &cfg.peer,
        cfg.window,
        cfg.max_message_bytes,
        cfg.ack_timeout,
    );
    let backoff = cfg.backoff;
    let cfg = Arc::new(cfg);
    PeerSender::spawn(outbox, backoff, move |ob| {
        let (cfg, tls) = (cfg.clone(), tls.clone());
        async move {
            match run(&cfg, &tls, &ob).await {
                Ok(()) => Error::Closed,
                Err(e) => e,
            }
        }
    })
}

/// TCP connect, `TCP_NODELAY`, TLS 1.3 handshake with the server name = the peer's agent id.
async fn connect_tls(
    cfg: &SenderConfig,
    tls: &TlsHandle,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
    let fut = async {
        let sock = TcpStream::connect(cfg.addr)
            .await
            .map_err(|e| Error::Connection(e.to_string()))?;
        let _ = sock.set_nodelay(true);
        let name = ServerName::try_from(cfg.peer.clone())
            .map_err(|_| Error::InvalidPeerId(cfg.peer.clone()))?;
        let connector = tokio_rustls::TlsConnector::from(tls.client_config(&[H2])?);
        connector
            .connect(name, sock)
            .await
            .map_err(|e| Error::Connection(format!("TLS handshake: {e}")))
    };
    tokio::time::timeout(cfg.connect_timeout, fut)
        .await
        .map_err(|_| Error::Connection("connect timed out".into()))?
}

async fn run(cfg: &Arc<SenderConfig>, tls: &TlsHandle, ob: &Arc<Outbox>) -> Result<(), Error> {
    tls.check_dial(&cfg.peer)?;
    let c = cfg.clone();
    let t = tls.clone();
    let connector = tower::service_fn(move |_uri: tonic::codegen::http::Uri| {
        let (c, t) = (c.clone(), t.clone());
        async move { connect_tls(&c, &t).await.map(hyper_util::rt::TokioIo::new) }
    });
    let channel = tonic::transport::Endpoint::from_static("http://ikt.invalid")
        // Pings find a silently cut link while no bundle is in flight (then the ack timeout does).
        .http2_keep_alive_interval(Duration::from_secs(2))
        .keep_alive_timeout(Duration::from_secs(2))
        .keep_alive_while_idle(true)
        .connect_with_connector(connector)
        .await
        .map_err(|e| Error::Connection(source_chain(&e)))?;
    let mut client = KeyTransportClient::new(channel)
        .max_decoding_message_size(cfg.max_message_bytes)
        .max_encoding_message_size(cfg.max_message_bytes);
    // Capacity above the window: each pending bundle is queued at most once per connection.
    let (tx, rx) = mpsc::channel::<KeyBundle>(cfg.window.max(1) + 1);
    let mut acks = client
        .deliver(ReceiverStream::new(rx))
        .await
        .map_err(|s| Error::Connection(format!("{:?}: {}", s.code(), s.message())))?
        .into_inner();
    ob.set_up();
    let mut cursor = 0u64;
    let mut tick = tokio::time::interval(HOUSEKEEPING);
    loop {
        ob.for_unsent(&mut cursor, |b| {
            // Cannot be full (see capacity); a closed channel surfaces as an ack-stream error.
            let _ = tx.try_send(b.clone());
        });
        tokio::select! {
            m = acks.message() => match m {
                Ok(Some(ack)) => ob.ack(ack),
                Ok(None) => return Err(Error::Connection("peer ended the stream".into())),
                Err(s) => return Err(Error::Connection(format!("{:?}: {}", s.code(), s.message()))),
            },
            () = ob.notify.notified() => {}
            _ = tick.tick() => ob.housekeep(now_ms())?,
        }
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
