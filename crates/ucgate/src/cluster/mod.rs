//! This gateway as one node of several (`[cluster]`, issue 17; design in
//! docs/cluster.md): the peers, and the forwarding of a BOSH request to the
//! node that owns its session. The other half, the internal listener that
//! takes the requests other nodes forward, is `crate::internal`. Which requests
//! go where is decided by `ucgate_proto::bosh::forward::destination`, from
//! the sid alone.

pub(crate) mod dns;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use ucgate_proto::bosh::forward::{self, Destination, Failure, Hop, Signed, AUTH_HEADER};
use ucgate_proto::bosh::sid::NodeName;
use ucgate_proto::bosh::Condition;

use crate::config::ClusterConfig;
use crate::logging::LogThrottle;
use crate::metrics::{ClusterLabels, Metrics, PeerLabels};
use crate::response::Body;

/// The owner's time on a forwarded request, in microseconds, from its
/// receipt to its answer: the forwarding node subtracts it from the round
/// trip to measure what forwarding itself costs.
pub(crate) const HELD_HEADER: &str = "x-ucgate-cluster-held-us";

/// The longest connection attempt to a peer (within `forward_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The node's cluster state: fixed for the process (`[cluster]` needs a
/// restart), apart from the peers' addresses.
pub(crate) struct ClusterRuntime {
    node: NodeName,
    secret: Vec<u8>,
    peers: RwLock<HashMap<NodeName, SocketAddr>>,
    forward_timeout: Duration,
    max_skew: u64,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Authentication failures are logged once a minute per peer address
    /// and side (a wrong secret fails every request; the counters have them
    /// all).
    auth_log: LogThrottle<(SocketAddr, &'static str)>,
}

impl ClusterRuntime {
    pub(crate) fn new(c: &ClusterConfig) -> ClusterRuntime {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT.min(c.forward_timeout)));
        // Prior-knowledge HTTP/2 over plain TCP: one connection per peer,
        // every forwarded request (long polls included) a stream on it.
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .http2_keep_alive_interval(Duration::from_secs(20))
            .http2_keep_alive_timeout(Duration::from_secs(10))
            .build(connector);
        ClusterRuntime {
            node: c.node.clone(),
            secret: c.secret.expose().to_vec(),
            peers: RwLock::new(c.peers.iter().map(|p| (p.name.clone(), p.addr)).collect()),
            forward_timeout: c.forward_timeout,
            max_skew: c.max_clock_skew.as_secs(),
            client,
            auth_log: LogThrottle::new(Duration::from_secs(60), 256),
        }
    }

    /// Where a request whose body is `body` is served.
    pub(crate) fn destination(&self, body: &[u8], hop: Hop) -> Destination {
        let sid = ucgate_proto::bosh::peek_sid(body);
        let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
        forward::destination(&self.node, sid.as_deref(), hop, |n| peers.contains_key(n))
    }

    /// Replaces the peers (a new DNS answer), logging what changed.
    pub(crate) fn set_peers(&self, new: BTreeMap<NodeName, SocketAddr>) {
        let mut peers = self.peers.write().unwrap_or_else(|e| e.into_inner());
        for (name, addr) in &new {
            match peers.get(name) {
                Some(old) if old == addr => {}
                Some(old) => tracing::info!(peer = %name, %addr, was = %old, "cluster peer moved"),
                None => tracing::info!(peer = %name, %addr, "cluster peer found"),
            }
        }
        for name in peers.keys().filter(|n| !new.contains_key(*n)) {
            tracing::info!(peer = %name, "cluster peer gone (its sessions are now item-not-found)");
        }
        *peers = new.into_iter().collect();
    }

    /// How many peers this node knows now.
    pub(crate) fn peer_count(&self) -> usize {
        self.peers.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn peer_addr(&self, node: &NodeName) -> Option<SocketAddr> {
        let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
        peers.get(node).copied()
    }

    /// Forwards a client's BOSH request on route `path` to `owner` and
    /// returns the owner's answer unchanged (status, Content-Type, body), or
    /// the BOSH condition that says why there is none: `item-not-found`
    /// when the owner is gone (its sessions went with it), else
    /// `remote-connection-failed`. `wait` is the longest BOSH wait.
    pub(crate) async fn forward(
        &self,
        metrics: &Metrics,
        owner: NodeName,
        path: &str,
        body: Bytes,
        wait: Duration,
        max_answer: usize,
    ) -> Result<Response<Body>, Condition> {
        let count = |result: &str| {
            metrics
                .cluster_forwards
                .get_or_create(&ClusterLabels {
                    peer: owner.to_string(),
                    result: result.to_string(),
                })
                .inc();
        };
        let Some(addr) = self.peer_addr(&owner) else {
            // Removed between the decision and now: as an unknown node.
            metrics.bosh_bad_sid.inc();
            return Err(Condition::ItemNotFound);
        };
        let started = Instant::now();
        let result = tokio::time::timeout(
            wait + self.forward_timeout,
            self.round_trip(addr, path, body, max_answer),
        )
        .await
        .unwrap_or(Err(Failure::Timeout));
        match result {
            Ok((answer, held)) => {
                count("ok");
                let overhead = started.elapsed().saturating_sub(held);
                metrics
                    .cluster_forward_seconds
                    .get_or_create(&PeerLabels {
                        peer: owner.to_string(),
                    })
                    .observe(overhead.as_secs_f64());
                Ok(answer)
            }
            Err(failure) => {
                count(failure.label());
                if failure == Failure::Unreachable {
                    tracing::info!(peer = %owner, %addr, "BOSH request for a session of a node that cannot be reached: item-not-found (the session ended with its node)");
                    metrics.bosh_bad_sid.inc();
                } else {
                    tracing::warn!(peer = %owner, %addr, result = failure.label(), "forwarding a BOSH request to its owner failed");
                }
                Err(failure.condition())
            }
        }
    }

    /// One signed request to the peer at `addr`: its answer and how long
    /// the owner held it.
    async fn round_trip(
        &self,
        addr: SocketAddr,
        path: &str,
        body: Bytes,
        max_answer: usize,
    ) -> Result<(Response<Body>, Duration), Failure> {
        let now = unix_now();
        let auth = forward::sign(
            &self.secret,
            &self.node,
            now,
            &Signed {
                method: "POST",
                path,
                body: &body,
            },
        );
        let req = Request::post(format!("http://{addr}{path}"))
            .header(AUTH_HEADER, auth)
            .header(header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .body(Full::new(body))
            .map_err(|_| Failure::Failed)?;
        let resp = self.client.request(req).await.map_err(|e| {
            if e.is_connect() {
                Failure::Unreachable
            } else {
                tracing::debug!(%addr, error = %e, "forwarded BOSH request failed");
                Failure::Failed
            }
        })?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            if let Some(suppressed) = self.auth_log_due(addr, "refused") {
                tracing::warn!(%addr, suppressed, "a peer refused a forwarded request: check that every node has the same `cluster.secret` and that their clocks agree (`cluster.max_clock_skew`)");
            }
            return Err(Failure::Refused);
        }
        let (parts, incoming) = resp.into_parts();
        let bytes = Limited::new(incoming, max_answer)
            .collect()
            .await
            .map_err(|_| Failure::Failed)?
            .to_bytes();
        let held = parts
            .headers
            .get(HELD_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(Duration::ZERO, Duration::from_micros);
        let mut out = Response::new(Full::new(bytes));
        *out.status_mut() = parts.status;
        for name in [header::CONTENT_TYPE, header::CACHE_CONTROL] {
            if let Some(v) = parts.headers.get(&name) {
                out.headers_mut().insert(name, v.clone());
            }
        }
        Ok((out, held))
    }

    /// Whether an authentication failure with `addr` on `side` is logged
    /// now, and how many were not since the last line.
    pub(crate) fn auth_log_due(&self, addr: SocketAddr, side: &'static str) -> Option<u64> {
        self.auth_log.due((addr, side))
    }

    /// Checks a forwarded request's authentication; the forwarding node.
    pub(crate) fn verify(
        &self,
        header: Option<&HeaderValue>,
        path: &str,
        body: &[u8],
    ) -> Result<NodeName, forward::AuthError> {
        let header = header
            .and_then(|v| v.to_str().ok())
            .ok_or(forward::AuthError::Malformed)?;
        let signed = Signed {
            method: "POST",
            path,
            body,
        };
        forward::verify(&self.secret, header, &signed, unix_now(), self.max_skew)
    }
}

/// The Unix time in seconds (before 1970: 0, which no peer accepts).
fn unix_now() -> u64 {
    u64::try_from(crate::tls_explain::now_secs()).unwrap_or(0)
}

/// The cluster state, when `[cluster]` is configured.
pub(crate) fn runtime(c: Option<&ClusterConfig>) -> Option<Arc<ClusterRuntime>> {
    c.map(|c| Arc::new(ClusterRuntime::new(c)))
}
