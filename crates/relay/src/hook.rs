//! Hooks: the extension point the agents use to inspect, edit, answer or hold messages.
//!
//! A hook is called once per received message, on the task that received it, before the relay
//! does its own work (Max-Forwards, Route, Via). It returns a [`Verdict`] synchronously; anything
//! that must wait (keys that have not arrived yet, a remote lookup) returns [`Verdict::Hold`]
//! with a future, or [`Verdict::held`] with a [`Release`] handle. The relay parks the message in
//! its own task and keeps serving other traffic meanwhile.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use ikt_sip::Message;
use tokio::sync::oneshot;

use crate::config::Transport;

/// Whether the message travels toward the next hop (request) or back (response).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// A request, about to be forwarded onward.
    Request,
    /// A response, about to be forwarded back along the Via path.
    Response,
}

/// Identifies one TCP connection of a relay (stable for the connection's lifetime).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// What a hook sees: the scanned message and where it came from.
#[derive(Clone, Copy, Debug)]
pub struct Inbound<'m, 'a> {
    /// The message as received (our Via is still on top of a response).
    pub message: &'m Message<'a>,
    /// Request or response.
    pub direction: Direction,
    /// Transport it arrived on.
    pub transport: Transport,
    /// The sender's address (source of the datagram or the TCP peer).
    pub peer: SocketAddr,
    /// Our address it arrived on.
    pub local: SocketAddr,
    /// The TCP connection it arrived on (`None` for UDP).
    pub conn: Option<ConnId>,
}

impl<'a> Inbound<'_, 'a> {
    /// The raw received bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.message.bytes()
    }

    /// The value of parameter `name` on the first Via (top down) that carries it; `Some("")` for
    /// a flag parameter. Agents use it to find the Via tagged `ikt=<agent-id>`.
    pub fn via_param(&self, name: &str) -> Option<&'a str> {
        self.message
            .vias()
            .into_iter()
            .find_map(|v| v.param(name).map(|value| value.unwrap_or("")))
    }

    /// The values of parameter `name` on every Via that carries it, top down (`""` for a
    /// flag). A response's own relay Via comes first, so an agent that tags its own Via can
    /// skip it and find its peer's tag.
    pub fn via_param_values(&self, name: &str) -> Vec<&'a str> {
        self.message
            .vias()
            .into_iter()
            .filter_map(|v| v.param(name).map(|value| value.unwrap_or("")))
            .collect()
    }
}

/// A hook's decision about one message.
pub enum Verdict {
    /// Forward the message unchanged (the relay still adds/removes its Via, Max-Forwards).
    Pass,
    /// Forward these bytes instead (a complete SIP message; the relay then does its own edits).
    /// For a response, keep our Via on top: the relay removes it as usual.
    Replace(Vec<u8>),
    /// Do not forward. For a request, send this response back toward the sender; for a response,
    /// this replaces it and goes back along the Via path like `Replace`.
    Answer(Vec<u8>),
    /// Do not forward and do not answer (counted as `DropReason::Hook`).
    Drop,
    /// Wait for the future, then apply the verdict it yields. Other traffic keeps flowing.
    Hold(Held),
}

impl std::fmt::Debug for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Pass => f.write_str("Pass"),
            Verdict::Replace(b) => write!(f, "Replace({} bytes)", b.len()),
            Verdict::Answer(b) => write!(f, "Answer({} bytes)", b.len()),
            Verdict::Drop => f.write_str("Drop"),
            Verdict::Hold(_) => f.write_str("Hold(..)"),
        }
    }
}

/// A pending verdict: a future (or a [`Release`] handle) the relay awaits on a task of its own.
pub struct Held(HeldInner);

enum HeldInner {
    Future(Pin<Box<dyn Future<Output = Verdict> + Send + 'static>>),
    Handle(oneshot::Receiver<Verdict>),
}

impl Held {
    /// The verdict, or `None` if the `Release` handle was dropped unused.
    pub(crate) async fn wait(self) -> Option<Verdict> {
        match self.0 {
            HeldInner::Future(f) => Some(f.await),
            HeldInner::Handle(rx) => rx.await.ok(),
        }
    }
}

impl Verdict {
    /// Holds the message until `fut` completes, then applies its verdict.
    ///
    /// The future must own what it needs (`'static`): copy the bytes you need out of the
    /// message first, e.g. with `inbound.bytes().to_vec()`.
    pub fn hold<F>(fut: F) -> Verdict
    where
        F: Future<Output = Verdict> + Send + 'static,
    {
        Verdict::Hold(Held(HeldInner::Future(Box::pin(fut))))
    }

    /// Holds the message until [`Release::release`] is called on the returned handle (from any
    /// task or thread). Dropping the handle without releasing drops the message.
    pub fn held() -> (Verdict, Release) {
        let (tx, rx) = oneshot::channel();
        (Verdict::Hold(Held(HeldInner::Handle(rx))), Release { tx })
    }
}

/// The other half of [`Verdict::held`]: hands the relay the final verdict for a held message.
#[derive(Debug)]
pub struct Release {
    tx: oneshot::Sender<Verdict>,
}

impl Release {
    /// Applies `verdict` to the held message (`Verdict::Pass` forwards the original bytes).
    pub fn release(self, verdict: Verdict) {
        // The relay may have given up (timeout or shutdown); nothing left to do then.
        let _ = self.tx.send(verdict);
    }

    /// Whether the relay has already given up on the held message.
    pub fn is_abandoned(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Inspects messages crossing the relay; every method has a pass-through default.
///
/// Called on the receiving task, so return quickly: do slow work in a held future.
pub trait Hook: Send + Sync + 'static {
    /// Called for every received request that scanned as SIP.
    fn on_request(&self, msg: &Inbound<'_, '_>) -> Verdict {
        let _ = msg;
        Verdict::Pass
    }

    /// Called for every received response whose top Via is ours.
    fn on_response(&self, msg: &Inbound<'_, '_>) -> Verdict {
        let _ = msg;
        Verdict::Pass
    }
}

/// A hook that passes everything (the bare relay).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHook;

impl Hook for NoHook {}
