//! Every metric ucgate exports, defined in this one place and documented in
//! `docs/metrics.md` (a test checks the two agree).
//!
//! Labels are bounded: listener names, configured route paths (or
//! `unmatched`), directions, sides and fixed kinds. Never peer addresses,
//! session ids or JIDs.
//!
//! Hot paths resolve their label set once per connection
//! ([`RouteMetrics`]) and then only touch atomics.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use ucgate_proto::recent::{Counts, Recent};
use ucgate_proto::side::Side;

use crate::config::Config;

/// An error's cause: route, side, kind (the labels of `ucgate_errors_total`).
pub type ErrorKey = (String, &'static str, String);

/// Causes the status page remembers (the metrics keep them all).
const RECENT_ERROR_CAUSES: usize = 256;

/// `{listener}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    /// `main`, `admin` or `sip:ROUTE` (a SIP route's core-facing port).
    pub listener: String,
}

/// `{route}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Configured route path, or `unmatched`.
    pub route: String,
}

/// `{route, http}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpgradeLabels {
    /// Route path.
    pub route: String,
    /// `h1` or `h2`.
    pub http: String,
}

/// `{route, reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Route path.
    pub route: String,
    /// Fixed reason label.
    pub reason: String,
}

/// `{route, direction}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    /// Route path.
    pub route: String,
    /// `client_to_backend` or `backend_to_client`.
    pub direction: String,
}

/// `{route, side, kind}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Route path, or `none` for errors before routing.
    pub route: String,
    /// [`Side::label`]: `client`, `backend` or `gateway`.
    pub side: String,
    /// Fixed kind label.
    pub kind: String,
}

/// `{route, code}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// Route path or `unmatched`.
    pub route: String,
    /// HTTP status code.
    pub code: String,
}

/// `{result}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or `error`.
    pub result: String,
}

/// `{name}` of a configured limit.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// The limit's configuration key, e.g. `server.max_connections`.
    pub name: String,
}

/// Reads one limit from the configuration.
pub type LimitOf = fn(&Config) -> usize;

/// The limits exported as `ucgate_limit{name}` (their configuration keys),
/// so that dashboards and alerts can compare the matching gauges with them.
pub const LIMITS: &[(&str, LimitOf)] = &[
    ("server.max_connections", |c| c.server.max_connections),
    ("server.max_connections_per_ip", |c| {
        c.server.max_connections_per_ip
    }),
    ("bosh.max_sessions", |c| c.bosh.max_sessions),
    ("bosh.max_sessions_per_ip", |c| c.bosh.max_sessions_per_ip),
    ("sip.core_max_connections", |c| c.sip.core_max_connections),
];

/// Every family as exposed: (name with `_total` for counters, type).
/// Families without samples are not printed by the exporter, so this list is
/// what tests check docs/metrics.md against.
pub const FAMILIES: &[(&str, &str)] = &[
    ("ucgate_connections_accepted_total", "counter"),
    ("ucgate_connections_active", "gauge"),
    ("ucgate_accept_errors_total", "counter"),
    ("ucgate_tls_handshake_seconds", "histogram"),
    ("ucgate_http_responses_total", "counter"),
    ("ucgate_ws_upgrades_total", "counter"),
    ("ucgate_ws_refusals_total", "counter"),
    ("ucgate_route_connections_active", "gauge"),
    ("ucgate_ws_handshake_seconds", "histogram"),
    ("ucgate_backend_connect_seconds", "histogram"),
    ("ucgate_bytes_total", "counter"),
    ("ucgate_messages_total", "counter"),
    ("ucgate_ws_closes_total", "counter"),
    ("ucgate_errors_total", "counter"),
    ("ucgate_tls_reloads_total", "counter"),
    ("ucgate_config_reloads_total", "counter"),
    ("ucgate_acme_orders_total", "counter"),
    ("ucgate_acme_cert_expiry_timestamp_seconds", "gauge"),
    ("ucgate_ready", "gauge"),
    ("ucgate_limit", "gauge"),
    ("ucgate_bosh_sessions_active", "gauge"),
    ("ucgate_bosh_sessions_created_total", "counter"),
    ("ucgate_bosh_bad_sid_total", "counter"),
    ("ucgate_bosh_terminations_total", "counter"),
    ("ucgate_sip_messages_total", "counter"),
    ("ucgate_sip_core_connects_total", "counter"),
    ("ucgate_sip_core_connections", "gauge"),
    ("ucgate_sip_flow_gone_total", "counter"),
    ("ucgate_cluster_forwards_total", "counter"),
    ("ucgate_cluster_forward_seconds", "histogram"),
    ("ucgate_cluster_received_total", "counter"),
    ("ucgate_cluster_peers", "gauge"),
    ("ucgate_cluster_peer_lookups_total", "counter"),
];

/// `{peer, result}` of requests forwarded between cluster nodes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    /// The other node's `cluster.node` (`unverified` for a refused request).
    pub peer: String,
    /// The outcome.
    pub result: String,
}

/// `{peer}` of the forwarding latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    /// The owner's `cluster.node`.
    pub peer: String,
}

/// `{route, from, type}` of SIP messages.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SipMessageLabels {
    /// Route path.
    pub route: String,
    /// `client` or `core`.
    pub from: String,
    /// `request` or `response`.
    pub r#type: String,
}

/// `{route, result}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteResultLabels {
    /// Route path.
    pub route: String,
    /// `ok` or `error`.
    pub result: String,
}

/// `{route, opened_by}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpenedByLabels {
    /// Route path.
    pub route: String,
    /// `gateway` or `core`.
    pub opened_by: String,
}

/// `{condition}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    /// A BOSH terminal condition name (fixed set).
    pub condition: String,
}

fn latency() -> Histogram {
    // 100 µs … ~26 s
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0001, 2.0, 19,
    ))
}

/// All metric families.
pub struct Metrics {
    registry: Registry,
    /// `ucgate_errors_total` by cause over the last minutes, for the status
    /// page, with the time base it counts from.
    recent_errors: std::sync::Mutex<Recent<ErrorKey>>,
    started: std::time::Instant,
    /// TCP connections accepted.
    pub connections_accepted: Family<ListenerLabels, Counter>,
    /// TCP connections open.
    pub connections_active: Family<ListenerLabels, Gauge>,
    /// Errors from `accept()`.
    pub accept_errors: Family<ListenerLabels, Counter>,
    /// TLS handshake duration.
    pub tls_handshake_seconds: Family<ListenerLabels, Histogram, fn() -> Histogram>,
    /// HTTP responses by route and status.
    pub http_responses: Family<StatusLabels, Counter>,
    /// WebSocket upgrades completed.
    pub ws_upgrades: Family<UpgradeLabels, Counter>,
    /// WebSocket handshakes refused.
    pub ws_refusals: Family<ReasonLabels, Counter>,
    /// WebSockets open.
    pub route_connections_active: Family<RouteLabels, Gauge>,
    /// Time from request to upgrade response (includes backend connect).
    pub ws_handshake_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Backend connect (and backend TLS) duration.
    pub backend_connect_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Payload bytes.
    pub bytes: Family<DirectionLabels, Counter>,
    /// WebSocket messages (client_to_backend) and backend reads sent as messages (backend_to_client).
    pub messages: Family<DirectionLabels, Counter>,
    /// Why WebSockets ended.
    pub ws_closes: Family<ReasonLabels, Counter>,
    /// Errors by route, side and kind.
    pub errors: Family<ErrorLabels, Counter>,
    /// Certificate reloads.
    pub tls_reloads: Family<ResultLabels, Counter>,
    /// Configuration reloads.
    pub config_reloads: Family<ResultLabels, Counter>,
    /// ACME orders by result.
    pub acme_orders: Family<ResultLabels, Counter>,
    /// Unix time at which the served ACME certificate expires (0: none yet).
    pub acme_cert_expiry: Gauge,
    /// 1 while the gateway accepts traffic, 0 once draining.
    pub ready: Gauge,
    /// The configured limits ([`LIMITS`]).
    pub limit: Family<LimitLabels, Gauge>,
    /// BOSH sessions open.
    pub bosh_sessions_active: Gauge,
    /// BOSH sessions created.
    pub bosh_sessions_created: Counter,
    /// BOSH requests naming an unknown sid.
    pub bosh_bad_sid: Counter,
    /// BOSH sessions ended, by terminal condition.
    pub bosh_terminations: Family<ConditionLabels, Counter>,
    /// SIP messages by route, sender and type.
    pub sip_messages: Family<SipMessageLabels, Counter>,
    /// Connection attempts to SIP cores (TCP/TLS).
    pub sip_core_connects: Family<RouteResultLabels, Counter>,
    /// Stream connections with SIP cores open now.
    pub sip_core_connections: Family<OpenedByLabels, Gauge>,
    /// Core requests for flows that are gone (answered 430/480).
    pub sip_flow_gone: Family<RouteLabels, Counter>,
    /// BOSH requests forwarded to the node owning their session, by result.
    pub cluster_forwards: Family<ClusterLabels, Counter>,
    /// What forwarding adds to a request (round trip minus the owner's time).
    pub cluster_forward_seconds: Family<PeerLabels, Histogram>,
    /// Requests other nodes forwarded to this one, by result.
    pub cluster_received: Family<ClusterLabels, Counter>,
    /// The peers this node knows now.
    pub cluster_peers: Gauge,
    /// Lookups of `cluster.peers_srv`, by result.
    pub cluster_peer_lookups: Family<ResultLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Creates and registers every family.
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("ucgate");
        let m = Metrics {
            recent_errors: std::sync::Mutex::new(Recent::new(RECENT_ERROR_CAUSES)),
            started: std::time::Instant::now(),
            connections_accepted: Family::default(),
            connections_active: Family::default(),
            accept_errors: Family::default(),
            tls_handshake_seconds: Family::new_with_constructor(latency),
            http_responses: Family::default(),
            ws_upgrades: Family::default(),
            ws_refusals: Family::default(),
            route_connections_active: Family::default(),
            ws_handshake_seconds: Family::new_with_constructor(latency),
            backend_connect_seconds: Family::new_with_constructor(latency),
            bytes: Family::default(),
            messages: Family::default(),
            ws_closes: Family::default(),
            errors: Family::default(),
            tls_reloads: Family::default(),
            config_reloads: Family::default(),
            acme_orders: Family::default(),
            acme_cert_expiry: Gauge::default(),
            ready: Gauge::default(),
            limit: Family::default(),
            bosh_sessions_active: Gauge::default(),
            bosh_sessions_created: Counter::default(),
            bosh_bad_sid: Counter::default(),
            bosh_terminations: Family::default(),
            sip_messages: Family::default(),
            sip_core_connects: Family::default(),
            sip_core_connections: Family::default(),
            sip_flow_gone: Family::default(),
            cluster_forwards: Family::default(),
            cluster_forward_seconds: Family::new_with_constructor(latency),
            cluster_received: Family::default(),
            cluster_peers: Gauge::default(),
            cluster_peer_lookups: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "connections_accepted",
            "TCP connections accepted",
            m.connections_accepted.clone(),
        );
        registry.register(
            "connections_active",
            "TCP connections open",
            m.connections_active.clone(),
        );
        registry.register(
            "accept_errors",
            "Errors returned by accept()",
            m.accept_errors.clone(),
        );
        registry.register(
            "tls_handshake_seconds",
            "TLS handshake duration",
            m.tls_handshake_seconds.clone(),
        );
        registry.register(
            "http_responses",
            "HTTP responses by route and status code",
            m.http_responses.clone(),
        );
        registry.register(
            "ws_upgrades",
            "WebSocket upgrades completed, by HTTP version",
            m.ws_upgrades.clone(),
        );
        registry.register(
            "ws_refusals",
            "WebSocket handshakes refused, by reason",
            m.ws_refusals.clone(),
        );
        registry.register(
            "route_connections_active",
            "WebSocket connections open, by route",
            m.route_connections_active.clone(),
        );
        registry.register(
            "ws_handshake_seconds",
            "Time from request to upgrade response, backend connect included",
            m.ws_handshake_seconds.clone(),
        );
        registry.register(
            "backend_connect_seconds",
            "Backend TCP connect (and TLS handshake) duration",
            m.backend_connect_seconds.clone(),
        );
        registry.register(
            "bytes",
            "Payload bytes relayed, by route and direction",
            m.bytes.clone(),
        );
        registry.register(
            "messages",
            "Messages relayed, by route and direction",
            m.messages.clone(),
        );
        registry.register(
            "ws_closes",
            "WebSocket connections ended, by cause",
            m.ws_closes.clone(),
        );
        registry.register("errors", "Errors by route, side and kind", m.errors.clone());
        registry.register(
            "tls_reloads",
            "Certificate reloads by result",
            m.tls_reloads.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration reloads (SIGHUP) by result",
            m.config_reloads.clone(),
        );
        registry.register(
            "acme_orders",
            "ACME certificate orders by result",
            m.acme_orders.clone(),
        );
        registry.register(
            "acme_cert_expiry_timestamp_seconds",
            "Unix time at which the served ACME certificate expires (0: none yet)",
            m.acme_cert_expiry.clone(),
        );
        registry.register(
            "bosh_sessions_active",
            "BOSH sessions open",
            m.bosh_sessions_active.clone(),
        );
        registry.register(
            "bosh_sessions_created",
            "BOSH sessions created",
            m.bosh_sessions_created.clone(),
        );
        registry.register(
            "bosh_bad_sid",
            "BOSH requests naming an unknown session id",
            m.bosh_bad_sid.clone(),
        );
        registry.register(
            "bosh_terminations",
            "BOSH sessions ended, by terminal condition",
            m.bosh_terminations.clone(),
        );
        registry.register(
            "sip_messages",
            "SIP messages received by SIP routes, by sender and type",
            m.sip_messages.clone(),
        );
        registry.register(
            "sip_core_connects",
            "Connection attempts to SIP cores over TCP or TLS, by result",
            m.sip_core_connects.clone(),
        );
        registry.register(
            "sip_core_connections",
            "Stream connections with SIP cores open now, by who opened them",
            m.sip_core_connections.clone(),
        );
        registry.register(
            "sip_flow_gone",
            "Requests from SIP cores for clients whose connection is gone (answered 430 or 480)",
            m.sip_flow_gone.clone(),
        );
        registry.register(
            "cluster_forwards",
            "BOSH requests forwarded to the node owning their session, by peer and result",
            m.cluster_forwards.clone(),
        );
        registry.register(
            "cluster_forward_seconds",
            "Time forwarding adds to a BOSH request: the round trip to the owner minus the owner's own time",
            m.cluster_forward_seconds.clone(),
        );
        registry.register(
            "cluster_received",
            "BOSH requests other nodes forwarded to this one, by forwarding node and result",
            m.cluster_received.clone(),
        );
        registry.register(
            "cluster_peers",
            "The other cluster nodes this node knows now (static and found in DNS)",
            m.cluster_peers.clone(),
        );
        registry.register(
            "cluster_peer_lookups",
            "DNS lookups of cluster.peers_srv, by result",
            m.cluster_peer_lookups.clone(),
        );
        registry.register(
            "ready",
            "1 while accepting traffic, 0 while draining",
            m.ready.clone(),
        );
        registry.register(
            "limit",
            "Configured limits, by configuration key (0: no limit)",
            m.limit.clone(),
        );
        Arc::new(Metrics { registry, ..m })
    }

    /// Exports the configured limits as `ucgate_limit{name}`.
    pub fn set_limits(&self, c: &Config) {
        for (name, value) in LIMITS {
            self.limit
                .get_or_create(&LimitLabels {
                    name: name.to_string(),
                })
                .set(i64::try_from(value(c)).unwrap_or(i64::MAX));
        }
    }

    /// Renders the registry in the OpenMetrics text format (which Prometheus scrapes).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Counts an error of `side` (its label comes from [`Side::label`]).
    pub fn error(&self, route: &str, side: Side, kind: &str) {
        self.note_recent(route, side, kind);
        self.errors
            .get_or_create(&ErrorLabels {
                route: route.to_string(),
                side: side.label().to_string(),
                kind: kind.to_string(),
            })
            .inc();
    }

    /// Counts a refused WebSocket handshake (`ucgate_ws_refusals_total`),
    /// which the status page lists with the errors, as the client's.
    pub fn ws_refusal(&self, route: &str, reason: &str) {
        self.note_recent(route, Side::Client, reason);
        self.ws_refusals
            .get_or_create(&ReasonLabels {
                route: route.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    fn note_recent(&self, route: &str, side: Side, kind: &str) {
        let now = self.started.elapsed().as_secs();
        self.recent_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record((route.to_string(), side.label(), kind.to_string()), now);
    }

    /// The errors by cause (route, side, kind): counts in the last
    /// [`ucgate_proto::recent::WINDOW_MINUTES`] minutes and since the start,
    /// and seconds since the last one; the most frequent first.
    pub fn recent_errors(&self) -> Vec<(ErrorKey, Counts, u64)> {
        let now = self.started.elapsed().as_secs();
        self.recent_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .snapshot(now)
            .into_iter()
            .map(|(k, c)| {
                let ago = now.saturating_sub(c.last_secs);
                (k, c, ago)
            })
            .collect()
    }

    /// Counts a lookup of `cluster.peers_srv` (`ok` or `error`).
    pub fn cluster_peer_lookup(&self, result: &str) {
        self.cluster_peer_lookups
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
    }

    /// Counts an HTTP response.
    pub fn response(&self, route: &str, code: u16) {
        self.http_responses
            .get_or_create(&StatusLabels {
                route: route.to_string(),
                code: code.to_string(),
            })
            .inc();
    }

    /// Label-resolved handles for one SIP route.
    pub fn sip(&self, route: &str) -> SipMetrics {
        let msg = |from: &str, t: &str| {
            self.sip_messages
                .get_or_create(&SipMessageLabels {
                    route: route.to_string(),
                    from: from.to_string(),
                    r#type: t.to_string(),
                })
                .clone()
        };
        let connects = |result: &str| {
            self.sip_core_connects
                .get_or_create(&RouteResultLabels {
                    route: route.to_string(),
                    result: result.to_string(),
                })
                .clone()
        };
        let conns = |by: &str| {
            self.sip_core_connections
                .get_or_create(&OpenedByLabels {
                    route: route.to_string(),
                    opened_by: by.to_string(),
                })
                .clone()
        };
        SipMetrics {
            client_requests: msg("client", "request"),
            client_responses: msg("client", "response"),
            core_requests: msg("core", "request"),
            core_responses: msg("core", "response"),
            connects_ok: connects("ok"),
            connects_error: connects("error"),
            gateway_opened_active: conns("gateway"),
            core_opened_active: conns("core"),
            flow_gone: self
                .sip_flow_gone
                .get_or_create(&RouteLabels {
                    route: route.to_string(),
                })
                .clone(),
        }
    }

    /// Label-resolved handles for one route's hot path.
    pub fn route(&self, route: &str) -> RouteMetrics {
        let dir = |d: &str| DirectionLabels {
            route: route.to_string(),
            direction: d.to_string(),
        };
        RouteMetrics {
            bytes_in: self.bytes.get_or_create_owned(&dir("client_to_backend")),
            bytes_out: self.bytes.get_or_create_owned(&dir("backend_to_client")),
            messages_in: self.messages.get_or_create_owned(&dir("client_to_backend")),
            messages_out: self.messages.get_or_create_owned(&dir("backend_to_client")),
            active: self
                .route_connections_active
                .get_or_create_owned(&RouteLabels {
                    route: route.to_string(),
                }),
        }
    }
}

/// Per-route counters resolved once per connection.
#[derive(Clone, Debug)]
pub struct RouteMetrics {
    /// Bytes client → backend.
    pub bytes_in: Counter,
    /// Bytes backend → client.
    pub bytes_out: Counter,
    /// Messages client → backend.
    pub messages_in: Counter,
    /// Messages backend → client.
    pub messages_out: Counter,
    /// Open WebSockets on the route.
    pub active: Gauge,
}

/// One SIP route's handles (see [`Metrics::sip`]).
#[derive(Clone)]
pub struct SipMetrics {
    pub client_requests: Counter,
    pub client_responses: Counter,
    pub core_requests: Counter,
    pub core_responses: Counter,
    pub connects_ok: Counter,
    pub connects_error: Counter,
    pub gateway_opened_active: Gauge,
    pub core_opened_active: Gauge,
    pub flow_gone: Counter,
}

/// Decrements a gauge when dropped.
#[derive(Debug)]
pub struct GaugeGuard(Gauge);

impl GaugeGuard {
    /// Increments `g` now and decrements it on drop.
    pub fn new(g: Gauge) -> Self {
        g.inc();
        GaugeGuard(g)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_side_label_comes_from_side() {
        let m = Metrics::new();
        m.error("/r", Side::Backend, "x");
        m.error("/r", Side::Gateway, "x");
        m.error("/r", Side::Backend, "x");
        let out = m.render();
        let line = |side: &str| {
            out.lines()
                .find(|l| {
                    l.starts_with("ucgate_errors_total{") && l.contains(&format!("side=\"{side}\""))
                })
                .map(str::to_string)
        };
        assert!(line("backend").unwrap().ends_with(" 2"), "{out}");
        assert!(line("gateway").unwrap().ends_with(" 1"), "{out}");
        assert_eq!(line("client"), None);
    }
}
