//! Refusals the client caused (an origin not allowed, a subprotocol the
//! route does not speak, an unknown XMPP domain, a broken stream): every one
//! is counted in the metrics, but the log gets one `info` line per cause,
//! route and minute, with `side=client` and the number left out since the
//! last line of that cause (`ucgate_proto::throttle`), so that one
//! misconfigured page cannot fill the log or alarm anyone.
//!
//! A refused browser origin also gets the exact `origins` line that would
//! allow it (`hint`), and is kept in a bounded per-route record
//! ([`Refusals::refused_origins`], served at the admin `/refused-origins`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use ucgate_proto::origin::hint::{self, RouteAt};
use ucgate_proto::origin::refused::{RefusedOrigin, RefusedOrigins};

use crate::access::cut;
use crate::config::RouteConfig;
use crate::logging::LogThrottle;

/// One line per cause and route in this window.
const WINDOW: Duration = Duration::from_secs(60);
/// Causes remembered at once (a client chooses the origin or domain).
const MAX_KEYS: usize = 1024;
/// Longest detail kept in a key or written (a client chooses it).
const MAX_DETAIL: usize = 200;
/// Refused origins remembered per route.
const MAX_ORIGINS: usize = 100;

type Key = (String, &'static str, String);

/// The log throttle for client-caused refusals.
pub(crate) struct Refusals {
    throttle: LogThrottle<Key>,
    /// Per route path: the origins it refused recently.
    origins: Mutex<BTreeMap<String, RefusedOrigins>>,
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
            throttle: LogThrottle::new(WINDOW, MAX_KEYS),
            origins: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Refusals {
    /// Logs `r` unless a line of the same cause, detail and route was
    /// written less than a minute ago.
    pub(crate) fn log(&self, r: Refusal<'_>) {
        self.log_with(r, || None);
    }

    /// A browser refused for its `Origin` (`r.detail`) on `route`: recorded,
    /// and logged like [`Refusals::log`] with the line to add to the
    /// configuration. `host` and `secure` are the request's, for the
    /// gateway's own origin that a same-origin route allows.
    pub(crate) fn origin_refused(
        &self,
        r: Refusal<'_>,
        route: &RouteConfig,
        host: Option<&str>,
        secure: bool,
    ) {
        let sent = r.detail;
        let now = crate::tls_explain::now_secs().max(0) as u64;
        self.origins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(route.path.clone())
            .or_insert_with(|| RefusedOrigins::new(MAX_ORIGINS))
            .record(cut(sent, MAX_DETAIL), now);
        self.log_with(r, || {
            let at = RouteAt {
                path: &route.path,
                origins_line: route.origins_line,
                route_line: route.line,
            };
            let own = hint::own_origin(host, secure);
            Some(hint::allow_hint(sent, &route.origins, own.as_ref(), at))
        });
    }

    /// The origins refused recently, per route path, most recent first.
    pub(crate) fn refused_origins(&self) -> Vec<(String, Vec<RefusedOrigin>)> {
        self.origins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(route, r)| (route.clone(), r.entries().to_vec()))
            .collect()
    }

    fn log_with(&self, r: Refusal<'_>, hint: impl FnOnce() -> Option<String>) {
        let detail = cut(r.detail, MAX_DETAIL);
        let key = (r.route.to_string(), r.cause, detail.to_string());
        if let Some(suppressed) = self.throttle.due(key) {
            let hint = hint();
            tracing::info!(
                side = "client",
                route = r.route,
                client = %r.client,
                cause = r.cause,
                detail,
                suppressed,
                hint,
                "{} (the client's doing; more of the same this minute are counted, not logged)",
                r.what
            );
        }
    }
}
