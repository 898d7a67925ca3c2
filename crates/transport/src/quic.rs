//! QUIC transport: quinn, ALPN `ikt/1`, TLS 1.3 with mutual authentication, no 0-RTT.
//!
//! The same protobuf messages as gRPC, varint length-delimited ([`crate::framing`]).
//! [`StreamMode::Bidi`] (the default, see the crate README for the measurement) sends bundles
//! on one bidirectional stream per connection and reads acks from its other half;
//! [`StreamMode::UniPerBundle`] opens one unidirectional stream per bundle and reads acks from
//! one unidirectional stream opened by the receiver. The receiver accepts both.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ikt_proto::{DeliveryAck, KeyBundle};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{ConnectionError, Endpoint, TransportConfig, VarInt};
use rustls_pki_types::CertificateDer;
use tokio::io::BufReader;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use zeroize::Zeroize;

use crate::framing;
use crate::receiver::{AckItem, Delivery, ReceiverConfig, ReceiverHandle, RecvShared};
use crate::sender::{Outbox, PeerSender, SenderConfig};
use crate::tls::{RefusalReason, TlsHandle};
use crate::{Error, now_ms};

/// ALPN protocol id of the key transport over QUIC.
pub const ALPN: &[u8] = b"ikt/1";

/// Concurrent bidirectional streams a receiver allows per connection.
const MAX_BIDI_STREAMS: u32 = 4;
/// Concurrent unidirectional streams a receiver allows per connection (uni-per-bundle mode).
const MAX_UNI_STREAMS: u32 = 1024;

/// How a sender maps bundles onto QUIC streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamMode {
    /// One bidirectional stream per connection: bundles one way, acks the other.
    #[default]
    Bidi,
    /// One unidirectional stream per bundle; acks on one receiver-opened unidirectional stream.
    UniPerBundle,
}

fn transport_config(keep_alive: bool) -> TransportConfig {
    let mut t = TransportConfig::default();
    t.max_concurrent_bidi_streams(VarInt::from_u32(MAX_BIDI_STREAMS));
    t.max_concurrent_uni_streams(VarInt::from_u32(MAX_UNI_STREAMS));
    // The smaller of both sides' idle timeouts applies; with keep-alives every second a silently
    // cut link is noticed within about 5 s even when no bundle is in flight.
    t.max_idle_timeout(Some(
        VarInt::from_u32(if keep_alive { 5_000 } else { 30_000 }).into(),
    ));
    if keep_alive {
        t.keep_alive_interval(Some(Duration::from_secs(1)));
    }
    t
}

fn server_config(tls: &TlsHandle) -> Result<quinn::ServerConfig, Error> {
    let crypto = QuicServerConfig::try_from(tls.server_config(&[ALPN])?)
        .map_err(|e| Error::Tls(e.to_string()))?;
    let mut sc = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    sc.transport_config(Arc::new(transport_config(false)));
    sc.migration(false);
    Ok(sc)
}

/// Starts a QUIC receiver on `cfg.listen` (UDP); deliveries arrive on the returned channel.
pub async fn serve(
    cfg: ReceiverConfig,
    tls: TlsHandle,
) -> Result<(ReceiverHandle, mpsc::Receiver<Delivery>), Error> {
    let addr = cfg.listen;
    let endpoint = Endpoint::server(server_config(&tls)?, addr)
        .map_err(|source| Error::Bind { addr, source })?;
    let local_addr = endpoint
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?;
    let (shared, rx) = RecvShared::new(cfg, tls);

    // Reload: swap the endpoint's server config for new handshakes when the material changes.
    let mut generation = shared.tls.generation();
    let reload_ep = endpoint.clone();
    let reload_shared = shared.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = reload_shared.shutdown_signal() => return,
                r = generation.changed() => if r.is_err() { return },
            }
            match server_config(&reload_shared.tls) {
                Ok(sc) => reload_ep.set_server_config(Some(sc)),
                Err(e) => tracing::error!(error = %e, "quic server config not reloaded"),
            }
        }
    });

    let task_shared = shared.clone();
    let task = tokio::spawn(async move {
        let shared = task_shared;
        loop {
            let incoming = tokio::select! {
                () = shared.shutdown_signal() => break,
                i = endpoint.accept() => match i { Some(i) => i, None => break },
            };
            let Ok(permit) = shared.connections.clone().try_acquire_owned() else {
                tracing::warn!(remote = %incoming.remote_address(), "connection limit reached; refusing");
                incoming.refuse();
                continue;
            };
            tokio::spawn(serve_connection(shared.clone(), incoming, permit));
        }
        endpoint.close(VarInt::from_u32(0), b"shutdown");
    });
    tracing::info!(%local_addr, "quic receiver listening");
    Ok((
        ReceiverHandle {
            local_addr,
            shared,
            task: Some(task),
        },
        rx,
    ))
}

/// Reason for a failed handshake, or `None` when the certificate verifier already counted it.
fn classify(e: &ConnectionError) -> Option<RefusalReason> {
    match e {
        ConnectionError::TransportError(t) => {
            let code = u64::from(t.code);
            // 0x100 + TLS alert: a crypto error detected locally.
            match code.checked_sub(0x100) {
                Some(116) => Some(RefusalReason::NoCertificate),
                Some(42..=49) => None,
                Some(120) => Some(RefusalReason::NotTls),
                _ => Some(RefusalReason::Other),
            }
        }
        ConnectionError::TimedOut => Some(RefusalReason::Timeout),
        _ => Some(RefusalReason::Other),
    }
}

async fn serve_connection(
    shared: Arc<RecvShared>,
    incoming: quinn::Incoming,
    _permit: OwnedSemaphorePermit,
) {
    let remote = incoming.remote_address();
    let connecting = match incoming.accept() {
        Ok(c) => c,
        Err(e) => {
            shared.tls.refusals().count(RefusalReason::Other);
            tracing::warn!(%remote, error = %e, "quic accept failed");
            return;
        }
    };
    let conn = match tokio::time::timeout(shared.cfg.handshake_timeout, connecting).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            if let Some(reason) = classify(&e) {
                shared.tls.refusals().count(reason);
                tracing::warn!(%remote, reason = reason.as_str(), error = %e, "handshake refused");
            }
            return;
        }
        Err(_) => {
            shared.tls.refusals().count(RefusalReason::Timeout);
            tracing::warn!(%remote, "handshake timed out");
            return;
        }
    };
    let peer = conn
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .and_then(|certs| certs.first().and_then(|c| shared.tls.peers().identify(c)));
    let Some(peer) = peer else {
        shared.tls.refusals().count(RefusalReason::UnknownPeer);
        conn.close(VarInt::from_u32(1), b"peer not authorised");
        return;
    };
    shared.stream_event(&peer, true, None);
    tracing::info!(%peer, %remote, "quic connection accepted");

    // Uni-per-bundle mode shares one ack stream and one in-flight bound per connection.
    let n = shared.cfg.max_in_flight_per_stream.max(1);
    let (uni_ack_tx, uni_ack_rx) = mpsc::channel::<AckItem>(n);
    let uni_permits = Arc::new(Semaphore::new(n));
    let uni_conn = conn.clone();
    let uni_shared = shared.clone();
    let uni_writer = tokio::spawn(async move {
        let mut rx = uni_ack_rx;
        let Some(first) = rx.recv().await else { return };
        match uni_conn.open_uni().await {
            Ok(send) => write_acks(uni_shared, send, rx, Some(first)).await,
            Err(e) => tracing::debug!(error = %e, "ack stream not opened"),
        }
    });

    let err = loop {
        tokio::select! {
            () = shared.shutdown_signal() => {
                conn.close(VarInt::from_u32(0), b"shutdown");
                break None;
            }
            bi = conn.accept_bi() => match bi {
                Ok((send, recv)) => {
                    let (shared, peer) = (shared.clone(), peer.clone());
                    tokio::spawn(async move { serve_bidi(shared, peer, send, recv).await });
                }
                Err(e) => break closed_error(e),
            },
            uni = conn.accept_uni() => match uni {
                Ok(recv) => {
                    let (shared, peer) = (shared.clone(), peer.clone());
                    let (tx, permits) = (uni_ack_tx.clone(), uni_permits.clone());
                    tokio::spawn(async move { serve_uni(shared, peer, recv, tx, permits).await });
                }
                Err(e) => break closed_error(e),
            },
        }
    };
    uni_writer.abort();
    shared.stream_event(&peer, false, err);
}

fn closed_error(e: ConnectionError) -> Option<String> {
    match e {
        ConnectionError::ApplicationClosed(_) | ConnectionError::LocallyClosed => None,
        e => Some(e.to_string()),
    }
}

async fn serve_bidi(
    shared: Arc<RecvShared>,
    peer: String,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
) {
    let n = shared.cfg.max_in_flight_per_stream.max(1);
    let max = shared.cfg.max_message_bytes;
    let (ack_tx, ack_rx) = mpsc::channel::<AckItem>(n);
    let permits = Arc::new(Semaphore::new(n));
    let writer = tokio::spawn(write_acks(shared.clone(), send, ack_rx, None));
    let mut r = BufReader::new(recv);
    let mut scratch = Vec::new();
    loop {
        match framing::read::<KeyBundle, _>(&mut r, max, &mut scratch).await {
            Ok(Some(bundle)) => {
                if shared
                    .accept_bundle(&peer, bundle, &ack_tx, &permits)
                    .await
                    .is_err()
                {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "bad frame on quic stream; closing it");
                let _ = r.get_mut().stop(VarInt::from_u32(2));
                break;
            }
        }
    }
    drop(ack_tx);
    // The writer ends once every responder of this stream has answered.
    let _ = writer.await;
}

async fn serve_uni(
    shared: Arc<RecvShared>,
    peer: String,
    recv: quinn::RecvStream,
    acks: mpsc::Sender<AckItem>,
    permits: Arc<Semaphore>,
) {
    let max = shared.cfg.max_message_bytes;
    let mut r = BufReader::new(recv);
    let mut scratch = Vec::new();
    match framing::read::<KeyBundle, _>(&mut r, max, &mut scratch).await {
        Ok(Some(bundle)) => {
            let _ = shared.accept_bundle(&peer, bundle, &acks, &permits).await;
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(%peer, error = %e, "bad frame on quic uni stream");
            let _ = r.get_mut().stop(VarInt::from_u32(2));
        }
    }
}

/// Writes acks as frames, batching whatever is already queued into one write.
async fn write_acks(
    shared: Arc<RecvShared>,
    mut send: quinn::SendStream,
    mut rx: mpsc::Receiver<AckItem>,
    first: Option<AckItem>,
) {
    let max = shared.cfg.max_message_bytes;
    let mut buf = Vec::new();
    let mut next = first;
    loop {
        let item = match next.take() {
            Some(i) => i,
            // Parked responders must not keep the stream (and the UDP socket) alive after shutdown.
            None => tokio::select! {
                i = rx.recv() => match i {
                    Some(i) => i,
                    None => break,
                },
                () = shared.shutdown_signal() => return,
            },
        };
        let mut push = |(ack, _permit): AckItem| {
            if let Err(e) = framing::encode(&ack, max, &mut buf) {
                tracing::warn!(error = %e, "ack not encodable");
            }
        };
        push(item);
        while let Ok(i) = rx.try_recv() {
            push(i);
        }
        if send.write_all(&buf).await.is_err() {
            return;
        }
        buf.clear();
    }
    let _ = send.finish();
}

/// Starts a QUIC sender toward one peer; it connects in the background and reconnects.
pub fn connect(cfg: SenderConfig, tls: TlsHandle, mode: StreamMode) -> Result<PeerSender, Error> {
    let bind: SocketAddr = if cfg.addr.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let endpoint = Endpoint::client(bind).map_err(|source| Error::Bind { addr: bind, source })?;
    let outbox = Outbox::new(
        &cfg.peer,
        cfg.window,
        cfg.max_message_bytes,
        cfg.ack_timeout,
    );
    let backoff = cfg.backoff;
    let cfg = Arc::new(cfg);
    Ok(PeerSender::spawn(outbox, backoff, move |ob| {
        let (cfg, tls, endpoint) = (cfg.clone(), tls.clone(), endpoint.clone());
        async move {
            match run(&cfg, &tls, &endpoint, &ob, mode).await {
                Ok(()) => Error::Closed,
                Err(e) => e,
            }
        }
    }))
}

async fn run(
    cfg: &SenderConfig,
    tls: &TlsHandle,
    endpoint: &Endpoint,
    ob: &Arc<Outbox>,
    mode: StreamMode,
) -> Result<(), Error> {
    tls.check_dial(&cfg.peer)?;
    let crypto = QuicClientConfig::try_from(tls.client_config(&[ALPN])?)
        .map_err(|e| Error::Tls(e.to_string()))?;
    let mut cc = quinn::ClientConfig::new(Arc::new(crypto));
    cc.transport_config(Arc::new(transport_config(true)));
    let connecting = endpoint
        .connect_with(cc, cfg.addr, &cfg.peer)
        .map_err(|e| Error::Connection(e.to_string()))?;
    let conn = tokio::time::timeout(cfg.connect_timeout, connecting)
        .await
        .map_err(|_| Error::Connection("connect timed out".into()))?
        .map_err(|e| Error::Connection(format!("QUIC handshake: {e}")))?;
    let max = cfg.max_message_bytes;
    match mode {
        StreamMode::Bidi => {
            let (send, recv) = conn
                .open_bi()
                .await
                .map_err(|e| Error::Connection(e.to_string()))?;
            ob.set_up();
            tokio::select! {
                e = read_acks(recv, ob, max) => Err(e),
                e = write_bidi(send, ob, max) => Err(e),
            }
        }
        StreamMode::UniPerBundle => {
            ob.set_up();
            let acks = async {
                match conn.accept_uni().await {
                    Ok(recv) => read_acks(recv, ob, max).await,
                    Err(e) => Error::Connection(e.to_string()),
                }
            };
            tokio::select! {
                e = acks => Err(e),
                e = write_uni(&conn, ob, max) => Err(e),
            }
        }
    }
}

async fn read_acks(recv: quinn::RecvStream, ob: &Outbox, max: usize) -> Error {
    let mut r = BufReader::new(recv);
    let mut scratch = Vec::new();
    loop {
        match framing::read::<DeliveryAck, _>(&mut r, max, &mut scratch).await {
            Ok(Some(ack)) => ob.ack(ack),
            Ok(None) => return Error::Connection("peer ended the ack stream".into()),
            Err(e) => return e,
        }
    }
}

async fn write_bidi(mut send: quinn::SendStream, ob: &Outbox, max: usize) -> Error {
    let mut cursor = 0u64;
    let mut buf = Vec::new();
    let mut tick = tokio::time::interval(crate::grpc::HOUSEKEEPING);
    loop {
        ob.for_unsent(&mut cursor, |b| {
            if let Err(e) = framing::encode(b, max, &mut buf) {
                tracing::warn!(seq = b.seq, error = %e, "bundle not encodable");
            }
        });
        if !buf.is_empty() {
            let r = send.write_all(&buf).await;
            // The buffer held key bytes.
            buf.zeroize();
            if let Err(e) = r {
                return Error::Connection(e.to_string());
            }
        }
        tokio::select! {
            () = ob.notify.notified() => {}
            _ = tick.tick() => if let Err(e) = ob.housekeep(now_ms()) { return e },
        }
    }
}

async fn write_uni(conn: &quinn::Connection, ob: &Outbox, max: usize) -> Error {
    let mut cursor = 0u64;
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(crate::grpc::HOUSEKEEPING);
    loop {
        ob.for_unsent(&mut cursor, |b| {
            let mut f = Vec::new();
            match framing::encode(b, max, &mut f) {
                Ok(()) => frames.push(f),
                Err(e) => tracing::warn!(seq = b.seq, error = %e, "bundle not encodable"),
            }
        });
        for mut frame in frames.drain(..) {
            let conn = conn.clone();
            tasks.spawn(async move {
                let r = async {
                    let mut s = conn.open_uni().await.map_err(|e| e.to_string())?;
                    s.write_all(&frame).await.map_err(|e| e.to_string())?;
                    s.finish().map_err(|e| e.to_string())
                }
                .await;
                frame.zeroize();
                r
            });
        }
        while let Some(done) = tasks.try_join_next() {
            if let Ok(Err(e)) = done {
                return Error::Connection(e);
            }
        }
        tokio::select! {
            () = ob.notify.notified() => {}
            _ = tick.tick() => if let Err(e) = ob.housekeep(now_ms()) { return e },
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(Err(e)) = done {
                    return Error::Connection(e);
                }
            }
        }
    }
}
