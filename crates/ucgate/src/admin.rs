//! The admin listener: `/` (the status page) and `/status` (its data as
//! JSON, [`crate::status`]), `/metrics` (Prometheus/OpenMetrics text),
//! `/live` (the process answers), `/ready` (200 while running, 503
//! otherwise) and `/refused-origins` (JSON: the browser origins each route
//! refused lately). Loopback by default; it keeps answering during the
//! drain so that load balancers see `/ready` fail. With `admin.token`,
//! every path but `/live` and `/ready` needs `Authorization: Bearer <token>`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::lifecycle::Phase;
use crate::Shared;

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn handle(shared: &Shared, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "use GET\n",
        );
    }
    let path = req.uri().path();
    if !matches!(path, "/live" | "/ready") && !authorized(shared, req) {
        let mut r = respond(
            StatusCode::UNAUTHORIZED,
            "text/plain; charset=utf-8",
            "this admin endpoint needs `Authorization: Bearer <admin.token>`\n",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"ucgate admin\""),
        );
        return r;
    }
    match path {
        "/" => respond(
            StatusCode::OK,
            "text/html; charset=utf-8",
            crate::status::html(shared),
        ),
        "/status" => respond(
            StatusCode::OK,
            "application/json",
            crate::status::json(shared),
        ),
        "/metrics" => respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            shared.metrics.render(),
        ),
        "/refused-origins" => respond(StatusCode::OK, "application/json", refused_origins(shared)),
        "/live" => respond(StatusCode::OK, "text/plain; charset=utf-8", "live\n"),
        "/ready" => {
            let phase = shared.control.current();
            if phase == Phase::Running {
                respond(StatusCode::OK, "text/plain; charset=utf-8", "ready\n")
            } else {
                respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    format!("not ready: {}\n", phase.as_str()),
                )
            }
        }
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "admin endpoints: / /status /metrics /live /ready /refused-origins\n",
        ),
    }
}

/// True without `admin.token`, or when the request carries it as a bearer
/// token (compared in constant time).
fn authorized(shared: &Shared, req: &Request<Incoming>) -> bool {
    let Some(token) = &shared.config.admin.token else {
        return true;
    };
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| {
            ucgate_proto::sip::hmac::constant_time_eq(given.trim().as_bytes(), token.as_bytes())
        })
}

/// `{"routes": [{"route": PATH, "refused_origins": [{"origin", "count",
/// "first_seen_unix", "last_seen_unix"}, …]}, …]}`: every route in
/// configuration order, its refused origins most recent first.
fn refused_origins(shared: &Shared) -> String {
    let mut refused = shared.refusals.refused_origins();
    let live = shared.live.get();
    let routes: Vec<serde_json::Value> = live
        .routes
        .iter()
        .map(|r| {
            let path = r.config.path.as_str();
            let origins = match refused.iter().position(|(p, _)| p == path) {
                Some(i) => refused.swap_remove(i).1,
                None => Vec::new(),
            };
            let origins: Vec<serde_json::Value> = origins
                .into_iter()
                .map(|o| {
                    serde_json::json!({
                        "origin": o.origin,
                        "count": o.count,
                        "first_seen_unix": o.first_seen,
                        "last_seen_unix": o.last_seen,
                    })
                })
                .collect();
            serde_json::json!({ "route": path, "refused_origins": origins })
        })
        .collect();
    let mut body = serde_json::json!({ "routes": routes }).to_string();
    body.push('\n');
    body
}

/// Serves the admin endpoints until `stop` fires.
pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener, stop: CancellationToken) {
    let mut listener = crate::accept::Acceptor::new(listener, "admin", &shared.metrics);
    loop {
        let Some((stream, _)) = listener.next(&stop).await else {
            return;
        };
        let shared = Arc::clone(&shared);
        let stop = stop.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let r = handle(&shared, &req);
                async move { Ok::<_, std::convert::Infallible>(r) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}
