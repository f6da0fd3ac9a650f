//! The process lifecycle: phases, the shutdown trigger and the reload trigger.
//!
//! ```text
//! Starting ──► Running ──(SIGTERM/SIGINT)──► Draining ──► Stopped
//! ```
//!
//! * **Running**: accepting; `/ready` answers 200; systemd has `READY=1`.
//! * **Draining**: `/ready` answers 503 and systemd gets `STOPPING=1` at
//!   once, and new BOSH sessions are refused (503); after
//!   `server.shutdown_delay` the listener stops accepting and every
//!   connection gets its protocol's goodbye (WebSocket close 1001, HTTP/2
//!   GOAWAY, HTTP/1.1 `Connection: close`), WebSockets in batches over
//!   `server.drain_spread` (`drain.rs`; a SIP WebSocket with a call waits for
//!   the call's end, until the end of the spread at the latest); the BOSH
//!   sessions of a `[cluster]` node are served until the goodbye deadline;
//!   the gateway waits for everything up to `server.drain_timeout`.
//! * **Stopped**: whatever was left has been cut (and counted in the log);
//!   `run` returns and the process exits 0.
//!
//! A second SIGTERM/SIGINT during the drain exits at once with status 1
//! (handled in `main.rs`).

use std::sync::Arc;

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

/// A lifecycle phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Loading certificates, building routes.
    Starting,
    /// Serving.
    Running,
    /// Not ready; saying goodbye to connections.
    Draining,
    /// Done.
    Stopped,
}

impl Phase {
    /// Lower-case name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Draining => "draining",
            Phase::Stopped => "stopped",
        }
    }
}

/// How the outside world steers a running gateway.
#[derive(Debug, Clone)]
pub struct Control {
    /// Cancel to start the drain.
    pub shutdown: CancellationToken,
    /// Notify to reload the configuration and the certificates.
    pub reload: Arc<Notify>,
    phase: Arc<watch::Sender<Phase>>,
}

impl Default for Control {
    fn default() -> Self {
        Self::new()
    }
}

impl Control {
    /// A fresh control in phase `Starting`.
    pub fn new() -> Self {
        Control {
            shutdown: CancellationToken::new(),
            reload: Arc::new(Notify::new()),
            phase: Arc::new(watch::channel(Phase::Starting).0),
        }
    }

    /// Watches phase changes.
    pub fn phase(&self) -> watch::Receiver<Phase> {
        self.phase.subscribe()
    }

    /// The current phase.
    pub fn current(&self) -> Phase {
        *self.phase.borrow()
    }

    pub(crate) fn set_phase(&self, p: Phase) {
        tracing::info!(phase = p.as_str(), "lifecycle phase");
        self.phase.send_replace(p);
    }
}
