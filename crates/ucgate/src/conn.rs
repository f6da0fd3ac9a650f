//! The state of one client connection on the public listener, shared by
//! its task, its requests and the WebSockets upgraded from it: the permits
//! it holds and the activity the HTTP idle rule looks at.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;

use crate::client::IpSlot;
use crate::metrics::GaugeGuard;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

/// Per-connection state shared by the connection task, its requests and the
/// WebSockets upgraded from it. The permit is released when the last holder
/// (the connection or one of its WebSockets) is gone.
pub(crate) struct ConnState {
    _permit: OwnedSemaphorePermit,
    /// This connection's place in `server.max_connections_per_ip`.
    _ip_slot: Option<IpSlot>,
    _active: GaugeGuard,
    /// Last time a request or WebSocket started or ended (ms since process
    /// start), for the idle timeout. Bytes alone (HTTP/2 PINGs, TCP
    /// keepalives) do not count: an idle connection is one with nothing open.
    last_activity: AtomicU64,
    /// Requests in flight plus WebSockets open on this connection.
    busy: AtomicUsize,
    /// True when the connection came over TLS.
    pub(crate) secure: bool,
}

impl ConnState {
    pub(crate) fn new(
        permit: OwnedSemaphorePermit,
        ip_slot: Option<IpSlot>,
        active: GaugeGuard,
        secure: bool,
    ) -> ConnState {
        ConnState {
            _permit: permit,
            _ip_slot: ip_slot,
            _active: active,
            last_activity: AtomicU64::new(now_ms()),
            busy: AtomicUsize::new(0),
            secure,
        }
    }

    /// When a request or WebSocket last started or ended.
    pub(crate) fn last_active_at(&self) -> Instant {
        epoch() + Duration::from_millis(self.last_activity.load(Ordering::Relaxed))
    }

    /// How long since a request or WebSocket last started or ended.
    pub(crate) fn quiet_for(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.last_activity.load(Ordering::Relaxed)))
    }

    /// True while a request is in flight or a WebSocket is open.
    pub(crate) fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Relaxed) > 0
    }

    pub(crate) fn touch(&self) {
        self.last_activity.store(now_ms(), Ordering::Relaxed);
    }
}

/// Marks a connection busy (request in flight or WebSocket open) while alive.
pub(crate) struct BusyGuard(Arc<ConnState>);

impl BusyGuard {
    pub(crate) fn new(c: &Arc<ConnState>) -> Self {
        c.busy.fetch_add(1, Ordering::Relaxed);
        c.touch();
        BusyGuard(Arc::clone(c))
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}
