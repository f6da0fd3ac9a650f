//! Refusals the client caused (an origin not allowed, a subprotocol the
//! route does not speak, an unknown XMPP domain, a broken stream): every one
//! is counted in the metrics, but the log gets one `info` line per cause,
//! route and minute, with `side=client` and the number left out since the
//! last line of that cause (`ucgate_proto::throttle`), so that one
//! misconfigured page cannot fill the log or alarm anyone.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ucgate_proto::throttle::{Throttle, Verdict};

/// One line per cause and route in this window.
const WINDOW: Duration = Duration::from_secs(60);
/// Causes remembered at once (a client chooses the origin or domain).
const MAX_KEYS: usize = 1024;
/// Longest detail kept in a key or written (a client chooses it).
const MAX_DETAIL: usize = 200;

type Key = (String, &'static str, String);

/// The log throttle for client-caused refusals.
pub(crate) struct Refusals {
    started: Instant,
    throttle: Mutex<Throttle<Key>>,
}

/// One refusal to log.
pub(crate) struct Refusal<'a> {
    pub(crate) route: &'a str,
    pub(crate) client: SocketAddr,
    /// The metric label of the cause (`origin_forbidden`, `host-unknown`, …).
    pub(crate) cause: &'static str,
    /// What the client sent that was refused (an origin, a domain), part of
    /// the key: each refused origin gets its own line.
    pub(crate) detail: &'a str,
    /// What the line says.
    pub(crate) what: &'static str,
}

impl Default for Refusals {
    fn default() -> Self {
        Refusals {
            started: Instant::now(),
            throttle: Mutex::new(Throttle::new(WINDOW, MAX_KEYS)),
        }
    }
}

impl Refusals {
    /// Logs `r` unless a line of the same cause, detail and route was
    /// written less than a minute ago.
    pub(crate) fn log(&self, r: Refusal<'_>) {
        let detail = cut(r.detail);
        let key = (r.route.to_string(), r.cause, detail.to_string());
        let verdict = self
            .throttle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check(key, self.started.elapsed());
        if let Verdict::Write { suppressed } = verdict {
            tracing::info!(
                side = "client",
                route = r.route,
                client = %r.client,
                cause = r.cause,
                detail,
                suppressed,
                "{} (the client's doing; more of the same this minute are counted, not logged)",
                r.what
            );
        }
    }
}

fn cut(s: &str) -> &str {
    if s.len() <= MAX_DETAIL {
        return s;
    }
    let mut end = MAX_DETAIL;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
