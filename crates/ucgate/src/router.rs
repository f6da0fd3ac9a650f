//! The first step of every request on the public listener: host-meta
//! discovery, the route lookup, and the route's service (a WebSocket
//! handshake in [`crate::http`], or BOSH).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::client::{request_client, RequestClient};
use crate::conn::{BusyGuard, ConnState};
use crate::http::websocket_route;
use crate::response::{text, Body};
use crate::{RouteRuntime, Service, Shared};

/// Handles one request on the public listener, and writes its access line
/// (an accepted WebSocket gets its line when it ends).
pub(crate) async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
    peer: SocketAddr,
    req: Box<Request<Incoming>>,
) -> Response<Body> {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let http = match req.version() {
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_10 => "1.0",
        _ => "1.1",
    };
    let from_client = hyper::body::Body::size_hint(req.body()).lower();
    let client = request_client(&shared, peer, conn.secure, req.headers());
    let addr = client.addr;
    let (resp, route) = route_request(shared, conn, &client, req).await;
    let status = resp.status();
    let upgraded = status == StatusCode::SWITCHING_PROTOCOLS
        || (method == http::Method::CONNECT && status.is_success());
    if !upgraded {
        crate::access::http(crate::access::HttpLine {
            client: addr,
            method: method.as_str(),
            path: &path,
            route: route.as_ref().map_or("none", |r| r.config.path.as_str()),
            http,
            status: status.as_u16(),
            took: started.elapsed(),
            bytes: crate::access::Bytes {
                from_client,
                to_client: hyper::body::Body::size_hint(resp.body()).lower(),
            },
        });
    }
    resp
}

/// The response to one request, and the route that served it.
async fn route_request(
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
    client: &RequestClient,
    mut req: Box<Request<Incoming>>,
) -> (Response<Body>, Option<Arc<RouteRuntime>>) {
    let _busy = BusyGuard::new(&conn);
    let path = req.uri().path().to_string();
    if path == "/.well-known/host-meta" || path == "/.well-known/host-meta.json" {
        if let Some(r) = host_meta(&shared, &req, path.ends_with(".json")) {
            return (r, None);
        }
    }
    // The routes current now serve this request to its end (a reload
    // swaps them for later requests).
    let live = shared.live.get();
    let Some(idx) = live.config.route_table.lookup(&path) else {
        shared.metrics.response("unmatched", 404);
        let r = text(
            StatusCode::NOT_FOUND,
            format!("no route for `{path}` on this gateway"),
        );
        return (r, None);
    };
    let route = &live.routes[idx];
    // Boxed: hyper keeps room for this future on every connection, so it
    // stays small and each kind of request pays only for its own state.
    let resp = match &route.service {
        Service::Bosh(x) => Box::pin(crate::bosh::handle(&shared, route, x, client, req)).await,
        Service::WebSocket(service) => {
            Box::pin(websocket_route(
                &shared, &conn, route, service, client, &mut req,
            ))
            .await
        }
        Service::Static(x) => {
            Box::pin(crate::staticfiles::handle(&shared, route, x, client, &req)).await
        }
    };
    (resp, Some(Arc::clone(route)))
}

/// XEP-0156 discovery: the configured public WebSocket (and BOSH) URLs as
/// XRD or JRD, readable from any origin. `None` (→ normal routing, so 404)
/// when no URL is configured.
fn host_meta(shared: &Shared, req: &Request<Incoming>, json: bool) -> Option<Response<Body>> {
    let live = shared.live.get();
    let x = &live.config.xmpp;
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
