//! Graceful shutdown: one trigger, many listeners.
//!
//! Every relay task holds a [`Shutdown`] and stops reading new messages once it fires; held
//! messages still pending are dropped (counted as `DropReason::Shutdown`).

use tokio::sync::watch;

/// A cloneable shutdown signal: `trigger` on any clone stops every task of the relay.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: std::sync::Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A fresh, untriggered signal.
    pub fn new() -> Self {
        let (tx, rx) = watch::channel(false);
        Shutdown {
            tx: std::sync::Arc::new(tx),
            rx,
        }
    }

    /// Asks every holder to stop.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether `trigger` has been called.
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes once `trigger` has been called (immediately if it already was).
    pub async fn triggered(&self) {
        let mut rx = self.rx.clone();
        // An error means every sender is gone, which cannot happen while `self` holds one.
        let _ = rx.wait_for(|v| *v).await;
    }
}
