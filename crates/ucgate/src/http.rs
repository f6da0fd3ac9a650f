//! A WebSocket route's request (after `router.rs` found the route): the
//! handshake checks (HTTP/1.1 upgrade and HTTP/2 extended CONNECT), the
//! backend dial before the upgrade, and the hand-off to the route's adapter.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode, Version};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use ucgate_proto::side::Side;
use ucgate_proto::websocket::{self, Decision, HandshakeRequest, HttpVersion, Policy};

use crate::client::RequestClient;
use crate::conn::{BusyGuard, ConnState};
use crate::metrics::{RouteLabels, UpgradeLabels};
use crate::status::TargetKind;
// Until the BOSH glue names crate::response itself.
use crate::response::{text, Body};
use crate::{RouteRuntime, Shared, WsService};

/// What the upgraded connection is handed to: the route's service, with
/// the backend already dialed for a tunnel.
enum Adapter {
    Tunnel(crate::backend::BackendStream),
    Xmpp(Arc<crate::xmpp::server::XmppRuntime>),
    Sip(Arc<crate::sip::SipRuntime>),
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The host a request was sent to, for the same-origin check: an HTTP/2
/// request names it in `:authority` (which browsers send instead of `Host`),
/// an HTTP/1 request in `Host`.
pub(crate) fn request_host<B>(req: &Request<B>) -> Option<&str> {
    let host = header_str(req.headers(), header::HOST);
    if req.version() == Version::HTTP_2 {
        req.uri().authority().map(|a| a.as_str()).or(host)
    } else {
        host
    }
}

/// Answers a WebSocket handshake for `route` and, once upgraded, runs the
/// adapter of its `service` in a task of its own.
pub(crate) async fn websocket_route(
    shared: &Arc<Shared>,
    conn: &Arc<ConnState>,
    route: &Arc<RouteRuntime>,
    service: &WsService,
    client: &RequestClient,
    req: &mut Request<Incoming>,
) -> Response<Body> {
    let start = Instant::now();
    let peer = client.addr;
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
    let host = request_host(req);
    // The host the client itself sent to a trusted proxy.
    let host = client.host.as_deref().or(host);
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
        secure: client.secure,
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
            shared.metrics.ws_refusal(rpath, refusal.label());
            shared.metrics.response(rpath, status);
            let logged = crate::refusal::Refusal {
                route: rpath,
                client: peer,
                cause: refusal.label(),
                detail: origin.as_deref().unwrap_or(""),
                what: "WebSocket handshake refused",
            };
            match refusal {
                websocket::Refusal::OriginForbidden => {
                    shared
                        .refusals
                        .origin_refused(logged, &route.config, host, client.secure)
                }
                _ => shared.refusals.log(logged),
            }
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
                shared
                    .status
                    .connected(TargetKind::Backend, rpath, took, None);
                Adapter::Tunnel(io)
            }
            Err(e) => {
                shared.status.connected(
                    TargetKind::Backend,
                    rpath,
                    std::time::Duration::ZERO,
                    Some(e.to_string()),
                );
                let status = ucgate_proto::tunnel::backend_unreachable_status(e.timed_out());
                shared.metrics.error(rpath, Side::Backend, e.kind());
                shared.metrics.response(rpath, status);
                match &e {
                    crate::backend::ConnectError::Tls { explained, .. } => tracing::warn!(
                        route = rpath,
                        %peer,
                        error = %explained.detail,
                        "{explained}; refusing the upgrade"
                    ),
                    _ => {
                        tracing::warn!(route = rpath, %peer, error = %e, "backend unreachable; refusing the upgrade")
                    }
                }
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
        // Boxed, like the adapters below: the wait for the upgrade is over
        // before the connection's life begins, and inline its state would
        // size this task for all of it (idle memory, docs/performance.md).
        let Some(ws) = Box::pin(open_upgraded(&shared2, &route2, on_upgrade, peer)).await else {
            return;
        };
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

/// The WebSocket on an upgraded connection, once hyper hands it over; `None`
/// if the upgrade did not complete (counted) or the gateway is shutting
/// down first.
async fn open_upgraded(
    shared: &Shared,
    route: &RouteRuntime,
    on_upgrade: hyper::upgrade::OnUpgrade,
    peer: std::net::SocketAddr,
) -> Option<Box<WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>>> {
    let upgraded = tokio::select! {
        u = on_upgrade => u,
        _ = shared.conn_cancel.cancelled() => return None,
    };
    let upgraded = match upgraded {
        Ok(u) => u,
        Err(e) => {
            shared
                .metrics
                .error(&route.config.path, Side::Client, "upgrade");
            tracing::debug!(%peer, error = %e, "upgrade did not complete");
            return None;
        }
    };
    // Boxed once here: the adapters' state machines would otherwise hold
    // it twice (argument and local), and the connection's task once more.
    Some(Box::new(
        WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            Some(ws_config(route)),
        )
        .await,
    ))
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
