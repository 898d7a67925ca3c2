//! `KeyPublisher.Publish` on a Unix socket, for an S-CSCF that hands keys over natively instead
//! of putting them in the 401 for the agent to take out.
//!
//! The bundle goes to the peer named by the `ikt-peer` request metadata (or the only peer when
//! there is one) on its out-of-band transport; the answer is that peer's ack. The socket file is
//! created with mode 0600: whoever can write to it can inject keys.

use std::path::PathBuf;
use std::sync::Arc;

use ikt_proto::v1::key_publisher_server::{KeyPublisher, KeyPublisherServer};
use ikt_proto::{DeliveryAck, KeyBundle};
use ikt_transport::KeySender;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::hook::ScscfHook;

/// Metadata key naming the destination p-cscf-agent.
pub const PEER_METADATA: &str = "ikt-peer";

struct Publisher {
    hook: Arc<ScscfHook>,
}

#[tonic::async_trait]
impl KeyPublisher for Publisher {
    async fn publish(&self, request: Request<KeyBundle>) -> Result<Response<DeliveryAck>, Status> {
        let peers = self.hook.peers();
        let named = request
            .metadata()
            .get(PEER_METADATA)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let peer = match named {
            Some(id) => peers
                .get(&id)
                .cloned()
                .ok_or_else(|| Status::not_found(format!("no peer {id:?}")))?,
            None if peers.len() == 1 => peers.values().next().cloned().expect("one peer"),
            None => {
                return Err(Status::invalid_argument(format!(
                    "several peers: name one in the {PEER_METADATA} metadata"
                )));
            }
        };
        let bundle = request.into_inner();
        // Validate exactly as bundles received from the network are.
        ikt_agent::wire::from_wire(&bundle).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let Some(sender) = peer.sender.clone() else {
            return Err(Status::failed_precondition(format!(
                "peer {} uses mode {}: only grpc and quic peers take published keys",
                peer.id, peer.mode
            )));
        };
        let handle = sender
            .send(bundle)
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let ack = handle
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        metrics::counter!(ikt_agent::telemetry::BUNDLES_SENT, "peer" => peer.id.clone(), "mode" => peer.mode.as_str())
            .increment(1);
        Ok(Response::new(DeliveryAck {
            seq: ack.seq,
            status: ack.status as i32,
            reason: ack.reason,
        }))
    }
}

/// Binds the socket (mode 0600, replacing a stale file) and serves until shutdown.
pub async fn serve(
    path: PathBuf,
    hook: Arc<ScscfHook>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let routes = tonic::service::Routes::new(KeyPublisherServer::new(Publisher { hook }));
    ikt_agent::local_api::serve_unix(path, routes, shutdown).await
}
