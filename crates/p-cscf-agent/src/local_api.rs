//! `KeyStore.Take` and `KeyStore.Watch` on a Unix socket, for a P-CSCF that takes keys natively
//! instead of reading them from the restored 401.
//!
//! The socket file is created with mode 0600: whoever can read from it gets session keys.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use ikt_proto::v1::key_store_server::{KeyStore, KeyStoreServer};
use ikt_proto::{KeyBundle, TakeRequest, WatchRequest};
use tokio::sync::{broadcast, watch};
use tonic::{Request, Response, Status};

use crate::hub::KeyHub;

struct Service {
    hub: Arc<KeyHub>,
}

type BundleStream = Pin<Box<dyn Stream<Item = Result<KeyBundle, Status>> + Send>>;

#[tonic::async_trait]
impl KeyStore for Service {
    async fn take(&self, request: Request<TakeRequest>) -> Result<Response<KeyBundle>, Status> {
        let r = request.into_inner();
        if r.nonce.is_empty() {
            return Err(Status::invalid_argument("nonce is required"));
        }
        let call_id = (!r.call_id.is_empty()).then_some(r.call_id.as_str());
        match self.hub.take(&r.nonce, call_id) {
            Some(b) => Ok(Response::new(ikt_agent::wire::to_wire(&b))),
            None => Err(Status::not_found("no bundle for this nonce")),
        }
    }

    type WatchStream = BundleStream;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<BundleStream>, Status> {
        let filter = request.into_inner();
        let mut rx = self.hub.subscribe();
        let stream = async_stream(
            move |tx: tokio::sync::mpsc::Sender<Result<KeyBundle, Status>>| async move {
                loop {
                    match rx.recv().await {
                        Ok(b) => {
                            let wanted = (filter.nonce.is_empty() || filter.nonce == b.nonce)
                                && (filter.call_id.is_empty() || filter.call_id == b.call_id);
                            if wanted && tx.send(Ok(ikt_agent::wire::to_wire(&b))).await.is_err() {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            let _ = tx
                                .send(Err(Status::resource_exhausted(format!(
                                    "watcher too slow: {n} bundles skipped"
                                ))))
                                .await;
                            return;
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            },
        );
        Ok(Response::new(stream))
    }
}

/// A stream fed by a task, so the watcher's pace never blocks the hub.
fn async_stream<F, Fut>(f: F) -> BundleStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<KeyBundle, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// Binds the socket (mode 0600, replacing a stale file) and serves until shutdown.
pub async fn serve(
    path: PathBuf,
    hub: Arc<KeyHub>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let routes = tonic::service::Routes::new(KeyStoreServer::new(Service { hub }));
    ikt_agent::local_api::serve_unix(path, routes, shutdown).await
}
