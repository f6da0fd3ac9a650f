//! The internal listener (`cluster.listen`): BOSH requests other nodes
//! forward to this one, over prior-knowledge HTTP/2 (a connection that does
//! not send the HTTP/2 preface within `server.handshake_timeout` is
//! closed). Every request must
//! carry a valid `x-ucgate-cluster-auth` (`ucgate_proto::bosh::forward`);
//! the rest is answered 401 and served nothing. It serves only the `bosh`
//! routes, and only sessions of this node (a request it receives is never
//! forwarded again). It stays open through the drain, so that this node's
//! sessions are served while the balancer sends their requests elsewhere,
//! and closes when the process stops: each connection with a graceful
//! HTTP/2 shutdown, so that the answers already being written (a session's
//! last `system-shutdown` at the drain's goodbye deadline) reach the peer,
//! waited for at most [`CLOSE_WAIT`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::HELD_HEADER;
use crate::metrics::ClusterLabels;
use crate::proxy_header::Prefixed;
use crate::response::{text, Body, BodyError};
use crate::{Service, Shared};

/// Longest wait, once the process stops, for the connections' answers in
/// flight.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Accepts on `listener` until `stop` fires, then closes the connections
/// (see the module's doc).
pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener, stop: CancellationToken) {
    let conns = TaskTracker::new();
    accept(shared, listener, &stop, &conns).await;
    conns.close();
    let _ = tokio::time::timeout(CLOSE_WAIT, conns.wait()).await;
}

async fn accept(
    shared: Arc<Shared>,
    listener: TcpListener,
    stop: &CancellationToken,
    conns: &TaskTracker,
) {
    let mut h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new())
        // Every request a peer forwards is a stream on its one connection:
        // room for each session's held requests.
        .max_concurrent_streams(
            u32::try_from(
                shared.config.bosh.max_sessions * shared.config.bosh.max_requests as usize,
            )
            .unwrap_or(u32::MAX),
        )
        .max_header_list_size(shared.config.server.max_header_size as u32)
        .keep_alive_interval(Some(std::time::Duration::from_secs(20)))
        .keep_alive_timeout(std::time::Duration::from_secs(10));
    let h2 = Arc::new(h2);
    // `cluster.max_connections`: a peer keeps one connection (every
    // forwarded request is a stream on it); the bound is for a party that
    // is not a node.
    let limit = shared
        .config
        .cluster
        .as_ref()
        .map_or(1, |c| c.max_connections);
    let permits = Arc::new(Semaphore::new(limit));
    let mut acceptor = crate::accept::Acceptor::new(listener, "cluster", &shared.metrics);
    loop {
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::warn!(
                limit,
                "internal listener: connection limit reached (cluster.max_connections); waiting"
            );
            tokio::select! {
                _ = stop.cancelled() => return,
                p = Arc::clone(&permits).acquire_owned() => drop(p),
            }
            continue;
        };
        let Some((stream, peer)) = acceptor.next(stop).await else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let h2 = Arc::clone(&h2);
        let stop = stop.clone();
        conns.spawn(async move {
            let _permit = permit;
            // hyper waits for the HTTP/2 preface without a deadline: a
            // connection that sends nothing would hold its place forever.
            let limit = shared.config.server.handshake_timeout;
            let stream = match tokio::time::timeout(limit, read_preface(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "internal listener: not an HTTP/2 connection; closed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, ?limit, "internal listener: no HTTP/2 preface within server.handshake_timeout; closed");
                    return;
                }
            };
            let svc_shared = Arc::clone(&shared);
            let service = hyper::service::service_fn(move |req| {
                let shared = Arc::clone(&svc_shared);
                async move { Ok::<_, std::convert::Infallible>(handle(&shared, peer, req).await) }
            });
            let conn = h2.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let r = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "internal connection ended with an error");
            }
        });
    }
}

/// The HTTP/2 connection preface (RFC 9113 §3.4) every peer sends first.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads the preface and hands the stream on with it put back for hyper;
/// anything else is an error.
async fn read_preface(mut stream: TcpStream) -> std::io::Result<Prefixed<TcpStream>> {
    let mut got = vec![0u8; PREFACE.len()];
    stream.read_exact(&mut got).await?;
    if got != PREFACE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the connection does not start with the HTTP/2 preface",
        ));
    }
    Ok(Prefixed::new(got, stream))
}

/// One forwarded request: checked, then served by its BOSH route.
async fn handle(shared: &Arc<Shared>, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let received = Instant::now();
    let Some(cluster) = shared.cluster.as_ref() else {
        return text(StatusCode::NOT_FOUND, "not a cluster node");
    };
    if req.method() != Method::POST {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "forwarded BOSH requests are POST",
        );
    }
    let path = req.uri().path().to_string();
    let live = shared.live.get();
    let route = live
        .config
        .route_table
        .lookup(&path)
        .map(|i| Arc::clone(&live.routes[i]));
    let Some((route, x)) = route.and_then(|r| match &r.service {
        Service::Bosh(x) => {
            let x = Arc::clone(x);
            Some((r, x))
        }
        _ => None,
    }) else {
        return text(StatusCode::NOT_FOUND, format!("no BOSH route for `{path}`"));
    };
    let auth = req
        .headers()
        .get(ucgate_proto::bosh::forward::AUTH_HEADER)
        .cloned();
    let body =
        match crate::response::read_body(shared, req.into_body(), live.config.bosh.max_body_size)
            .await
        {
            Ok(b) => b,
            Err(BodyError::TooLarge) => {
                return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large")
            }
            Err(_) => return text(StatusCode::BAD_REQUEST, "the body could not be read"),
        };
    let count = |peer: &str, result: &str| {
        shared
            .metrics
            .cluster_received
            .get_or_create(&ClusterLabels {
                peer: peer.to_string(),
                result: result.to_string(),
            })
            .inc();
    };
    let from = match cluster.verify(auth.as_ref(), &path, &body) {
        Ok(from) => from,
        Err(e) => {
            count("unverified", "refused");
            let from = SocketAddr::new(peer.ip(), 0);
            if let Some(suppressed) = cluster.auth_log_due(from, "unverified") {
                tracing::warn!(%peer, error = %e, suppressed, "internal listener: refused a request without valid cluster authentication (another `cluster.secret`, clocks apart, or not a node); more this minute are counted in ucgate_cluster_received_total, not logged");
            }
            return text(StatusCode::UNAUTHORIZED, "cluster authentication failed");
        }
    };
    count(from.as_str(), "ok");
    let mut resp = crate::bosh::serve_forwarded(shared, &route, &x, peer, body).await;
    if let Ok(v) = HeaderValue::from_str(&received.elapsed().as_micros().to_string()) {
        resp.headers_mut().insert(HELD_HEADER, v);
    }
    resp
}
