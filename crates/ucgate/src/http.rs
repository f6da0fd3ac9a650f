//! Request handling on the public listener: route lookup, WebSocket
//! handshake checks (HTTP/1.1 upgrade and HTTP/2 extended CONNECT), backend
//! dial before the upgrade, and hand-off to the route's adapter.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use ucgate_proto::side::Side;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode, Version};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use ucgate_proto::websocket::{self, Decision, HandshakeRequest, HttpVersion, Policy};

use crate::metrics::{ReasonLabels, RouteLabels, UpgradeLabels};
use crate::server::{BusyGuard, ConnState};
use crate::{RouteRuntime, Service, Shared, WsService};

/// What the upgraded connection is handed to: the route's service, with
/// the backend already dialed for a tunnel.
enum Adapter {
    Tunnel(crate::backend::BoxIo),
    Xmpp(Arc<crate::xmpp::adapter::XmppRuntime>),
    Sip(Arc<crate::sip::SipRuntime>),
}

/// The response body type.
pub type Body = Full<Bytes>;

pub(crate) fn text(status: StatusCode, msg: impl Into<String>) -> Response<Body> {
    let mut msg = msg.into();
    msg.push('\n');
    let mut r = Response::new(Full::new(Bytes::from(msg)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Why a request body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Longer than the caller's limit.
    TooLarge,
    /// Not complete within `server.body_read_timeout`.
    TimedOut,
    /// The connection failed or the body was malformed.
    Failed,
}

/// Reads a whole request body, at most `limit` bytes, within the server's
/// `body_read_timeout` (counted from now, which is the end of the request
/// head for a handler that reads the body first). Every request body the
/// gateway reads goes through here, so that no body can hold a connection
/// (and its permit) by trickling in.
pub(crate) async fn read_body(
    shared: &Shared,
    body: Incoming,
    limit: usize,
) -> Result<Bytes, BodyError> {
    use http_body_util::{BodyExt, Limited};
    let read = Limited::new(body, limit).collect();
    match tokio::time::timeout(shared.config.server.body_read_timeout, read).await {
        Err(_) => Err(BodyError::TimedOut),
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(BodyError::TooLarge)
        }
        Ok(Err(_)) => Err(BodyError::Failed),
    }
}

/// 408 for a body that did not arrive in time; HTTP/1.1 closes the
/// connection after it (the rest of the body may still be on its way).
pub(crate) fn body_timeout_response(version: Version) -> Response<Body> {
    let mut r = text(
        StatusCode::REQUEST_TIMEOUT,
        "the request body did not arrive within server.body_read_timeout",
    );
    if version < Version::HTTP_2 {
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Handles one request on the public listener.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
    peer: SocketAddr,
    mut req: Request<Incoming>,
) -> Response<Body> {
    let _busy = BusyGuard::new(&conn);
    let path = req.uri().path().to_string();
    if path == "/.well-known/host-meta" || path == "/.well-known/host-meta.json" {
        if let Some(r) = host_meta(&shared, &req, path.ends_with(".json")) {
            return r;
        }
    }
    let Some(idx) = shared.config.route_table.lookup(&path) else {
        shared.metrics.response("unmatched", 404);
        return text(
            StatusCode::NOT_FOUND,
            format!("no route for `{path}` on this gateway"),
        );
    };
    let route = &shared.routes[idx];
    // Boxed: hyper keeps room for this future on every connection, so it
    // stays small and each kind of request pays only for its own state.
    match &route.service {
        Service::Bosh => {
            Box::pin(crate::bosh::handle(&shared, route, peer, conn.secure, req)).await
        }
        Service::WebSocket(service) => {
            Box::pin(websocket_route(
                &shared, &conn, route, service, peer, &mut req,
            ))
            .await
        }
    }
}

/// XEP-0156 discovery: the configured public WebSocket (and BOSH) URLs as
/// XRD or JRD, readable from any origin. `None` (→ normal routing, so 404)
/// when no URL is configured.
fn host_meta(shared: &Shared, req: &Request<Incoming>, json: bool) -> Option<Response<Body>> {
    let x = &shared.config.xmpp;
    if x.websocket_url.is_none() && x.bosh_url.is_none() {
        return None;
    }
    let label = "host-meta";
    if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
        shared.metrics.response(label, 405);
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "use GET");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Some(r);
    }
    let (body, ctype) = if json {
        (
            ucgate_proto::hostmeta::jrd(x.websocket_url.as_deref(), x.bosh_url.as_deref()),
            "application/json",
        )
    } else {
        (
            ucgate_proto::hostmeta::xrd(x.websocket_url.as_deref(), x.bosh_url.as_deref()),
            "application/xrd+xml; charset=utf-8",
        )
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    shared.metrics.response(label, 200);
    Some(r)
}

async fn websocket_route(
    shared: &Arc<Shared>,
    conn: &Arc<ConnState>,
    route: &Arc<RouteRuntime>,
    service: &WsService,
    peer: SocketAddr,
    req: &mut Request<Incoming>,
) -> Response<Body> {
    let start = Instant::now();
    let rpath = route.config.path.as_str();
    let version = if req.version() == Version::HTTP_2 {
        HttpVersion::Http2
    } else {
        HttpVersion::Http1
    };
    let h = req.headers();
    let protocols: Vec<&str> = h
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let host = match version {
        HttpVersion::Http2 => req
            .uri()
            .authority()
            .map(|a| a.as_str())
            .or(header_str(h, header::HOST)),
        HttpVersion::Http1 => header_str(h, header::HOST),
    };
    let hs = HandshakeRequest {
        version: Some(version),
        method: req.method().as_str(),
        upgrade: header_str(h, header::UPGRADE),
        connection: header_str(h, header::CONNECTION),
        protocol: req
            .extensions()
            .get::<hyper::ext::Protocol>()
            .map(|p| p.as_str()),
        ws_version: header_str(h, header::SEC_WEBSOCKET_VERSION),
        ws_key: header_str(h, header::SEC_WEBSOCKET_KEY),
        subprotocols: protocols,
        origin: header_str(h, header::ORIGIN),
        host,
        secure: conn.secure,
    };
    let policy = Policy {
        origins: &route.config.origins,
        subprotocols: &route.config.subprotocols,
        require_subprotocol: route.config.require_subprotocol,
    };
    let decision = websocket::decide(&hs, policy);
    let origin = hs.origin.map(str::to_string);
    let (subprotocol, key) = match decision {
        Decision::Refuse(refusal) => {
            let status = refusal.status();
            shared
                .metrics
                .ws_refusals
                .get_or_create(&ReasonLabels {
                    route: rpath.to_string(),
                    reason: refusal.label().to_string(),
                })
                .inc();
            shared.metrics.response(rpath, status);
            tracing::info!(route = rpath, %peer, status, reason = refusal.label(), origin = origin.as_deref().unwrap_or(""), "WebSocket handshake refused");
            let mut r = text(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                refusal.message(version),
            );
            for (k, v) in refusal.headers(version) {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    r.headers_mut().insert(k, v);
                }
            }
            return r;
        }
        Decision::Accept { subprotocol, key } => (subprotocol, key),
    };
    // Dial the backend before answering: an unreachable backend becomes an
    // HTTP 502/504 the browser reports clearly (ucgate_proto::tunnel).
    // XMPP routes choose their server from the client's first message;
    // SIP routes reach their core through the route's SipRuntime.
    let adapter = match service {
        WsService::Tcp(connector) => match connector.connect().await {
            Ok((io, took)) => {
                route.connect_seconds.observe(took.as_secs_f64());
                Adapter::Tunnel(io)
            }
            Err(e) => {
                let status = ucgate_proto::tunnel::backend_unreachable_status(e.timed_out());
                shared.metrics.error(rpath, Side::Backend, e.kind());
                shared.metrics.response(rpath, status);
                tracing::warn!(route = rpath, %peer, error = %e, "backend unreachable; refusing the upgrade");
                return text(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                    "the backend service is unreachable",
                );
            }
        },
        WsService::Xmpp(x) => Adapter::Xmpp(Arc::clone(x)),
        WsService::Sip(rt) => Adapter::Sip(Arc::clone(rt)),
    };
    let on_upgrade = hyper::upgrade::on(&mut *req);
    let mut resp = Response::new(Full::new(Bytes::new()));
    match version {
        HttpVersion::Http1 => {
            *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let hm = resp.headers_mut();
            hm.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            hm.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(
                key.unwrap_or_default().as_bytes(),
            );
            if let Ok(v) = HeaderValue::from_str(&accept) {
                hm.insert(header::SEC_WEBSOCKET_ACCEPT, v);
            }
        }
        HttpVersion::Http2 => {
            *resp.status_mut() = StatusCode::OK;
        }
    }
    if let Some(p) = &subprotocol {
        if let Ok(v) = HeaderValue::from_str(p) {
            resp.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, v);
        }
    }
    shared.metrics.response(rpath, resp.status().as_u16());
    shared
        .metrics
        .ws_upgrades
        .get_or_create(&UpgradeLabels {
            route: rpath.to_string(),
            http: version.label().to_string(),
        })
        .inc();
    shared
        .metrics
        .ws_handshake_seconds
        .get_or_create(&RouteLabels {
            route: rpath.to_string(),
        })
        .observe(start.elapsed().as_secs_f64());
    tracing::info!(route = rpath, %peer, http = version.label(), subprotocol = subprotocol.as_deref().unwrap_or(""), "WebSocket opened");
    let shared2 = Arc::clone(shared);
    let route2 = Arc::clone(route);
    let busy = BusyGuard::new(conn);
    let secure = conn.secure;
    shared.tracker.spawn(async move {
        let _busy = busy;
        let upgraded = tokio::select! {
            u = on_upgrade => u,
            _ = shared2.conn_cancel.cancelled() => return,
        };
        let upgraded = match upgraded {
            Ok(u) => u,
            Err(e) => {
                shared2
                    .metrics
                    .error(&route2.config.path, Side::Client, "upgrade");
                tracing::debug!(%peer, error = %e, "upgrade did not complete");
                return;
            }
        };
        // Boxed once here: the adapters' state machines would otherwise
        // hold it twice (argument and local), and this task once more.
        let ws = Box::new(
            WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(ws_config(&route2)),
            )
            .await,
        );
        // Each adapter's state machine is boxed on its own: inline, this
        // task would be as large as the largest of the three on every
        // connection (idle memory, docs/performance.md).
        match adapter {
            Adapter::Tunnel(backend) => {
                Box::pin(crate::tunnel::run(shared2, route2, ws, backend, peer)).await
            }
            Adapter::Xmpp(x) => {
                Box::pin(crate::xmpp::adapter::run(shared2, route2, x, ws, peer)).await
            }
            Adapter::Sip(rt) => {
                Box::pin(crate::sip::adapter::run(
                    shared2, route2, rt, ws, peer, secure,
                ))
                .await
            }
        }
    });
    resp
}

/// tungstenite's read buffer: allocated when the WebSocket opens and kept
/// while it is idle, and also the most it reads per system call (a frame
/// larger than it grows the buffer for that frame only). 2 KiB holds
/// every typical XMPP stanza and SIP message in one read while keeping an
/// idle connection small (docs/performance.md).
pub(crate) const WS_READ_BUFFER: usize = 2048;

/// tungstenite settings for a route: small buffers (its 128 KiB default per
/// socket is far too much at tens of thousands of sockets) and the route's
/// size limits.
pub(crate) fn ws_config(route: &RouteRuntime) -> WebSocketConfig {
    let c = &route.config;
    WebSocketConfig::default()
        .read_buffer_size(c.buffer_size.min(WS_READ_BUFFER))
        .write_buffer_size(0)
        .max_write_buffer_size(c.buffer_size + c.max_message_size + 1024)
        .max_message_size(Some(c.max_message_size))
        .max_frame_size(Some(c.max_frame_size))
        .accept_unmasked_frames(false)
}
