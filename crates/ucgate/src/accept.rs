//! The accept step of every listener the gateway opens (the public
//! listener, the admin listener, each SIP route's core-facing listener).
//!
//! An error from `accept()` is counted in
//! `ucgate_accept_errors_total{listener}`. When the process or the system is
//! out of something (EMFILE, ENFILE, ENOBUFS, ENOMEM) the pending connection
//! stays in the backlog and the next `accept()` fails again at once: the
//! loop sleeps, 5 ms doubling to 1 s, back to 5 ms after the next success,
//! instead of spinning on a core. Other errors (a connection reset before it
//! was accepted) concern one connection: the next one is accepted at once.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::metrics::{ListenerLabels, Metrics};

/// The first wait after a resource error.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(5);
/// The longest wait.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// EMFILE, ENFILE, ENOBUFS, ENOMEM: retrying at once would spin.
pub(crate) fn is_resource_error(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23) | Some(24) | Some(105) | Some(12))
}

/// Something that accepts connections (a [`TcpListener`]; tests inject
/// errors through their own).
pub(crate) trait Listen {
    /// The accepted connection.
    type Conn;
    /// One `accept()`.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Conn, SocketAddr)>> + Send;
}

impl Listen for TcpListener {
    type Conn = TcpStream;
    fn accept(&self) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + Send {
        TcpListener::accept(self)
    }
}

/// A listener with its error counter and back-off.
pub(crate) struct Acceptor<L> {
    listener: L,
    name: String,
    errors: Counter,
    backoff: Duration,
}

impl<L: Listen> Acceptor<L> {
    /// `name` is the `listener` label (`main`, `admin`, `sip:/route`).
    pub(crate) fn new(listener: L, name: &str, metrics: &Metrics) -> Self {
        let errors = metrics.accept_errors.get_or_create_owned(&ListenerLabels {
            listener: name.to_string(),
        });
        Acceptor {
            listener,
            name: name.to_string(),
            errors,
            backoff: FIRST_BACKOFF,
        }
    }

    /// The next connection; `None` once `stop` fires.
    pub(crate) async fn next(&mut self, stop: &CancellationToken) -> Option<(L::Conn, SocketAddr)> {
        loop {
            let r = tokio::select! {
                r = self.listener.accept() => r,
                _ = stop.cancelled() => return None,
            };
            match r {
                Ok(v) => {
                    self.backoff = FIRST_BACKOFF;
                    return Some(v);
                }
                Err(e) => {
                    self.errors.inc();
                    if is_resource_error(&e) {
                        tracing::warn!(listener = %self.name, error = %e, backoff_ms = self.backoff.as_millis() as u64, "accept failed; backing off");
                        tokio::select! {
                            _ = tokio::time::sleep(self.backoff) => {}
                            _ = stop.cancelled() => return None,
                        }
                        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    } else {
                        tracing::debug!(listener = %self.name, error = %e, "accept failed");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    /// Fails with `errno` for the first `failures` calls, then accepts.
    struct Failing {
        errno: i32,
        failures: usize,
        calls: Arc<AtomicUsize>,
    }

    impl Listen for Failing {
        type Conn = ();
        fn accept(&self) -> impl Future<Output = io::Result<((), SocketAddr)>> + Send {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            let r = if n < self.failures {
                Err(io::Error::from_raw_os_error(self.errno))
            } else {
                Ok(((), SocketAddr::from(([127, 0, 0, 1], 1))))
            };
            std::future::ready(r)
        }
    }

    fn errors(m: &Metrics, name: &str) -> u64 {
        m.accept_errors
            .get_or_create(&ListenerLabels {
                listener: name.into(),
            })
            .get()
    }

    #[tokio::test]
    async fn emfile_backs_off_and_counts() {
        let metrics = Metrics::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let mut a = Acceptor::new(
            Failing {
                errno: 24, // EMFILE
                failures: usize::MAX,
                calls: Arc::clone(&calls),
            },
            "test",
            &metrics,
        );
        let stop = CancellationToken::new();
        let start = Instant::now();
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            stopper.cancel();
        });
        assert!(a.next(&stop).await.is_none(), "stops when told");
        assert!(start.elapsed() < Duration::from_secs(5), "stopped in time");
        // Waits of 5, 10, 20 … 640 ms then 1 s: 9 calls in the first 1.3 s
        // (fewer on a slow machine, never more). A loop retrying at once
        // makes hundreds of thousands.
        let n = calls.load(Ordering::SeqCst);
        assert!((3..=10).contains(&n), "{n} accept() calls in 1.5 s");
        assert_eq!(errors(&metrics, "test"), n as u64);
    }

    #[tokio::test]
    async fn backoff_resets_after_a_success() {
        let metrics = Metrics::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let mut a = Acceptor::new(
            Failing {
                errno: 23, // ENFILE
                failures: 6,
                calls: Arc::clone(&calls),
            },
            "test",
            &metrics,
        );
        let stop = CancellationToken::new();
        let start = Instant::now();
        assert!(a.next(&stop).await.is_some());
        // 5 + 10 + 20 + 40 + 80 + 160 ms of waits.
        assert!(start.elapsed() >= Duration::from_millis(315));
        assert_eq!(calls.load(Ordering::SeqCst), 7);
        assert_eq!(a.backoff, FIRST_BACKOFF);
        assert_eq!(errors(&metrics, "test"), 6);
    }

    #[tokio::test]
    async fn other_errors_retry_at_once() {
        let metrics = Metrics::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let mut a = Acceptor::new(
            Failing {
                errno: 103, // ECONNABORTED: that one connection is gone
                failures: 3,
                calls: Arc::clone(&calls),
            },
            "test",
            &metrics,
        );
        let start = Instant::now();
        assert!(a.next(&CancellationToken::new()).await.is_some());
        // With the back-off it would take 5 + 10 + 20 ms.
        assert!(start.elapsed() < Duration::from_millis(35), "no wait");
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert_eq!(errors(&metrics, "test"), 3);
    }
}
