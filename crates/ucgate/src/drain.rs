//! Each WebSocket's turn to close during the drain (`server.drain_spread`):
//! the connection takes a ticket when it opens, and its turn is the delay
//! the pure schedule ([`ucgate_proto::drain`]) gives that ticket, counted
//! from the drain's start. No list of connections is kept. A SIP
//! connection kept open past its turn for a call closes at the call
//! deadline at the latest ([`ucgate_proto::drain::call_deadline`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use ucgate_proto::drain::{call_deadline, DrainSpread};

/// The drain's start and the schedule.
pub(crate) struct DrainTurns {
    spread: DrainSpread,
    /// The call deadline, counted from the start.
    calls: Duration,
    started: OnceLock<Instant>,
    next: AtomicU64,
}

impl DrainTurns {
    /// `window`: `server.drain_spread`; `timeout`: `server.drain_timeout`.
    pub(crate) fn new(window: Duration, timeout: Duration) -> Self {
        DrainTurns {
            spread: DrainSpread::new(window),
            calls: call_deadline(window, timeout),
            started: OnceLock::new(),
            next: AtomicU64::new(0),
        }
    }

    /// When the drain started (`None` before).
    pub(crate) fn started(&self) -> Option<Instant> {
        self.started.get().copied()
    }

    /// Resolves at the call deadline once the drain has started.
    pub(crate) async fn calls_over(&self, cancel: &CancellationToken) {
        cancel.cancelled().await;
        if let Some(start) = self.started.get() {
            tokio::time::sleep_until(*start + self.calls).await;
        }
    }

    /// Records the drain's start; call before `conn_cancel` fires.
    pub(crate) fn start(&self) {
        let _ = self.started.set(Instant::now());
    }

    /// A new connection's ticket.
    pub(crate) fn ticket(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Resolves at the connection's turn once the drain has started. The
    /// turn is an instant, so a fresh future in each loop round resolves at
    /// the same time.
    pub(crate) async fn turn(&self, cancel: &CancellationToken, ticket: u64) {
        cancel.cancelled().await;
        if let Some(start) = self.started.get() {
            // Boxed: every connection holds this future, the timer only
            // its last moments.
            Box::pin(tokio::time::sleep_until(*start + self.spread.delay(ticket))).await;
        }
    }
}
