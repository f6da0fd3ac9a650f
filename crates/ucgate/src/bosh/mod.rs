//! The BOSH connection manager (route kind `bosh`, XEP-0124/0206): HTTP
//! handling (POST bodies, CORS preflight, an info page on GET), the session
//! registry and one actor task per session. The session rules are in
//! `ucgate_proto::bosh`; the server side (domain choice, SRV, STARTTLS) is
//! the same code as the XMPP WebSocket route (`crate::xmpp`).

mod actor;
mod drain;
pub(crate) mod mailbox;
pub(crate) mod registry;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::sync::oneshot;
use ucgate_proto::bosh::forward::{Destination, Hop};
use ucgate_proto::side::Side;

use crate::client::RequestClient;
use crate::response::{Body, BodyError};
use crate::xmpp::server::XmppRuntime;
use crate::{RouteRuntime, Shared};
use mailbox::{Command, Inbox, Mailbox, Refused, Reply};
use registry::{Full as RegistryFull, Handle, Registry, SidForm};

/// Process-wide BOSH state.
pub(crate) struct BoshRuntime {
    pub(crate) registry: Registry,
    next_request: AtomicU64,
    /// How new sessions are named (fixed for the process: `[cluster]`
    /// needs a restart).
    sids: SidForm,
}

impl BoshRuntime {
    pub(crate) fn new(config: &crate::config::Config) -> BoshRuntime {
        BoshRuntime {
            registry: Registry::default(),
            next_request: AtomicU64::new(0),
            sids: SidForm::new(config.cluster.as_ref()),
        }
    }
}

const INFO_PAGE: &str = "<!doctype html><meta charset=utf-8><title>ucgate BOSH</title><p>This is a BOSH connection manager (XEP-0124, XEP-0206). XMPP clients POST <code>&lt;body/&gt;</code> requests here with <code>Content-Type: text/xml; charset=utf-8</code>.\n";

fn cors(
    shared: &Shared,
    route: &RouteRuntime,
    req: &Request<Incoming>,
    client: &RequestClient,
    out: &mut HeaderMap,
) -> Result<(), ()> {
    let origin = req.headers().get(header::ORIGIN);
    let Some(origin) = origin.and_then(|v| v.to_str().ok()) else {
        return Ok(()); // not a cross-origin browser request
    };
    let host = crate::http::request_host(req);
    // The host the client itself sent to a trusted proxy.
    let host = client.host.as_deref().or(host);
    if !route
        .config
        .origins
        .allows(Some(origin), host, client.secure)
    {
        return Err(());
    }
    if let Ok(v) = HeaderValue::from_str(origin) {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    out.insert(header::VARY, HeaderValue::from_static("Origin"));
    if shared.live.get().config.bosh.cors_credentials {
        out.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    Ok(())
}

fn xml_response(status: u16, body: String) -> Response<Body> {
    xml_response_as(status, body, None)
}

/// A response with the session's Content-Type (its `content`, XEP-0124 §7.1).
fn xml_response_as(status: u16, body: String, content_type: Option<String>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let ct = content_type
        .and_then(|c| HeaderValue::from_str(&c).ok())
        .unwrap_or(HeaderValue::from_static("text/xml; charset=utf-8"));
    r.headers_mut().insert(header::CONTENT_TYPE, ct);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Tells the session actor when the HTTP client of a held request goes
/// away (hyper drops the request future).
struct GoneGuard {
    mailbox: Arc<Mailbox>,
    id: u64,
    armed: bool,
}

impl Drop for GoneGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.mailbox.send(Box::new(Command::Gone(self.id)), true);
        }
    }
}

/// Handles a request on a `bosh` route.
///
/// In two steps: everything up to handing a POST to its session runs
/// boxed and is freed before the wait, so that a held request (a long poll,
/// for up to `wait` seconds) keeps only the reply channel and the CORS
/// headers: not the parsing state, and not the body, whose bytes share
/// hyper's read buffer (idle memory, docs/performance.md).
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    route: &Arc<RouteRuntime>,
    x: &Arc<XmppRuntime>,
    client: &RequestClient,
    req: Box<Request<Incoming>>,
) -> Response<Body> {
    let (begun, cors_headers) = Box::pin(begin(shared, route, x, client, req)).await;
    let mut resp = match begun {
        Begun::Done(resp) => *resp,
        Begun::Waiting(w) => w.reply().await,
        Begun::Forwarded(f) => f.await,
    };
    resp.headers_mut().extend(cors_headers);
    shared
        .metrics
        .response(&route.config.path, resp.status().as_u16());
    resp
}

/// What the first step of a request ended with.
enum Begun {
    /// The response, at once (boxed: this enum lives on in the wait).
    Done(Box<Response<Body>>),
    /// A POST handed to its session.
    Waiting(Waiting),
    /// A POST handed to the node that owns its session.
    Forwarded(Forwarding),
}

/// A request on its way to the owner of its session and back.
type Forwarding = std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send>>;

/// What [`submit`] ended with, short of an answer at once.
enum Pending {
    /// Handed to a session of this node.
    Here(Waiting),
    /// Handed to the owner.
    Forwarded(Forwarding),
}

/// Serves a request another node forwarded (its body already read and its
/// authentication checked by the internal listener): the same as a
/// client's request, except that it is never forwarded again and creates no
/// session.
pub(crate) async fn serve_forwarded(
    shared: &Arc<Shared>,
    route: &Arc<RouteRuntime>,
    x: &Arc<XmppRuntime>,
    from: SocketAddr,
    body: Bytes,
) -> Response<Body> {
    let pending = Box::pin(submit_body(shared, route, x, from, body, Hop::Peer)).await;
    match pending {
        Ok(Pending::Here(w)) => w.reply().await,
        Ok(Pending::Forwarded(f)) => f.await,
        Err(resp) => resp,
    }
}

/// The first step of [`handle`]: the response's CORS headers, and the
/// response or the wait for it.
async fn begin(
    shared: &Arc<Shared>,
    route: &Arc<RouteRuntime>,
    x: &Arc<XmppRuntime>,
    client: &RequestClient,
    req: Box<Request<Incoming>>,
) -> (Begun, HeaderMap) {
    let rpath = route.config.path.as_str();
    let peer = client.addr;
    let mut cors_headers = HeaderMap::new();
    let allowed = cors(shared, route, &req, client, &mut cors_headers).is_ok();
    let resp = match *req.method() {
        Method::OPTIONS => {
            if !allowed {
                origin_refused(
                    shared,
                    route,
                    client,
                    &req,
                    "BOSH preflight refused: Origin not allowed on this route",
                );
                crate::response::text(
                    StatusCode::FORBIDDEN,
                    "this Origin is not allowed on this route",
                )
            } else {
                let mut r = Response::new(Full::new(Bytes::new()));
                *r.status_mut() = StatusCode::NO_CONTENT;
                let h = r.headers_mut();
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("POST, GET, OPTIONS"),
                );
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static("Content-Type"),
                );
                h.insert(
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static("86400"),
                );
                r
            }
        }
        Method::GET | Method::HEAD if req.uri().query().is_some() => {
            // XEP-0252 (BOSH script syntax: the body in the query string)
            // is not implemented: no such resource.
            shared.metrics.error(rpath, Side::Client, "script_syntax");
            crate::response::text(
                StatusCode::NOT_FOUND,
                "BOSH script syntax (XEP-0252) is not supported; use POST",
            )
        }
        Method::GET | Method::HEAD => {
            let mut r = Response::new(Full::new(Bytes::from_static(INFO_PAGE.as_bytes())));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        Method::POST if !allowed => {
            origin_refused(
                shared,
                route,
                client,
                &req,
                "BOSH request refused: Origin not allowed on this route",
            );
            crate::response::text(
                StatusCode::FORBIDDEN,
                "this Origin is not allowed on this route",
            )
        }
        Method::POST => match submit(shared, route, x, peer, req).await {
            Ok(Pending::Here(w)) => return (Begun::Waiting(w), cors_headers),
            Ok(Pending::Forwarded(f)) => return (Begun::Forwarded(f), cors_headers),
            Err(resp) => resp,
        },
        _ => {
            let mut r = crate::response::text(StatusCode::METHOD_NOT_ALLOWED, "BOSH uses POST");
            r.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static("POST, GET, OPTIONS"),
            );
            r
        }
    };
    (Begun::Done(Box::new(resp)), cors_headers)
}

/// A cross-origin request (a preflight or the POST itself) from an Origin
/// the route does not allow: counted as `origin_forbidden`, like a refused
/// WebSocket handshake, and logged with the Origin (a client's mistake, not
/// the gateway's: at `info`).
fn origin_refused(
    shared: &Shared,
    route: &RouteRuntime,
    client: &RequestClient,
    req: &Request<Incoming>,
    what: &'static str,
) {
    let rpath = route.config.path.as_str();
    shared
        .metrics
        .error(rpath, Side::Client, "origin_forbidden");
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let host = crate::http::request_host(req);
    let host = client.host.as_deref().or(host);
    shared.refusals.origin_refused(
        crate::refusal::Refusal {
            route: rpath,
            client: client.addr,
            cause: "origin_forbidden",
            detail: origin,
            what,
        },
        &route.config,
        host,
        client.secure,
    );
}

/// A request handed to its session, waiting for the answer.
struct Waiting {
    rx: oneshot::Receiver<Reply>,
    guard: GoneGuard,
}

impl Waiting {
    async fn reply(mut self) -> Response<Body> {
        let r = (&mut self.rx).await;
        self.guard.armed = false;
        match r {
            Ok((status, body, ct)) => xml_response_as(status, body, ct),
            Err(_) => {
                let (status, body) = ucgate_proto::bosh::terminate_body(
                    &ucgate_proto::bosh::Condition::InternalServerError,
                );
                xml_response(status, body)
            }
        }
    }
}

/// Everything of a POST before the wait: the response at once, or the
/// request handed to its session.
async fn submit(
    shared: &Arc<Shared>,
    route: &Arc<RouteRuntime>,
    x: &Arc<XmppRuntime>,
    peer: SocketAddr,
    req: Box<Request<Incoming>>,
) -> Result<Pending, Response<Body>> {
    let rpath = route.config.path.as_str();
    let live = shared.live.get();
    let b = &live.config.bosh;
    let version = req.version();
    let body = match crate::response::read_body(shared, (*req).into_body(), b.max_body_size).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            // XEP-0124 §17.1: a terminal condition in a 200 response,
            // not an HTTP error code.
            shared.metrics.error(rpath, Side::Client, "body_too_large");
            tracing::info!(route = rpath, %peer, limit = b.max_body_size, "BOSH request body too large");
            let (status, body) =
                ucgate_proto::bosh::terminate_body(&ucgate_proto::bosh::Condition::PolicyViolation);
            return Err(xml_response(status, body));
        }
        Err(BodyError::TimedOut) => {
            shared.metrics.error(rpath, Side::Client, "body_timeout");
            tracing::info!(route = rpath, %peer, timeout = ?shared.config.server.body_read_timeout, "BOSH request body too slow");
            return Err(crate::response::body_timeout_response(version));
        }
        Err(BodyError::Failed) => {
            return Err(crate::response::text(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            ));
        }
    };
    submit_body(shared, route, x, peer, body, Hop::Client)
        .await
        .map_err(|r| drain::for_version(r, version))
}

/// Everything of a POST after its body is read: the response at once, or
/// the request handed to its session, here or at the node that owns it.
async fn submit_body(
    shared: &Arc<Shared>,
    route: &Arc<RouteRuntime>,
    x: &Arc<XmppRuntime>,
    peer: SocketAddr,
    body: Bytes,
    hop: Hop,
) -> Result<Pending, Response<Body>> {
    let rpath = route.config.path.as_str();
    let live = shared.live.get();
    let b = &live.config.bosh;
    if let Some(cluster) = &shared.cluster {
        match cluster.destination(&body, hop) {
            Destination::Here => {}
            Destination::Peer(owner) => {
                let (shared, cluster, path) = (
                    Arc::clone(shared),
                    Arc::clone(cluster),
                    route.config.path.clone(),
                );
                let (wait, max_answer) = (b.max_wait, b.max_pending_bytes + (1 << 20));
                return Ok(Pending::Forwarded(Box::pin(async move {
                    cluster
                        .forward(&shared.metrics, owner, &path, body, wait, max_answer)
                        .await
                        .unwrap_or_else(|condition| {
                            let (status, body) = ucgate_proto::bosh::terminate_body(&condition);
                            xml_response(status, body)
                        })
                })));
            }
            Destination::NotFound(why) => {
                shared.metrics.bosh_bad_sid.inc();
                tracing::debug!(route = rpath, %peer, ?why, "BOSH request for a session of another node, not forwarded");
                let (status, body) = ucgate_proto::bosh::terminate_body(
                    &ucgate_proto::bosh::Condition::ItemNotFound,
                );
                return Err(xml_response(status, body));
            }
        }
    }
    let xc = &x.config;
    let limits = ucgate_proto::xml::Limits {
        max_bytes: b.max_body_size,
        max_depth: xc.max_depth + 1,
        max_attributes: xc.max_attributes,
    };
    let parsed = match ucgate_proto::bosh::parse_request(&body, &limits) {
        Ok(p) => p,
        Err(e) => {
            shared.metrics.error(rpath, Side::Client, "bad_request");
            tracing::info!(route = rpath, %peer, error = %e, "bad BOSH request");
            let condition = e.condition();
            // A bad request naming a live session ends that session too.
            if let Some(h) =
                ucgate_proto::bosh::peek_sid(&body).and_then(|sid| shared.bosh.registry.get(&sid))
            {
                let id = shared.bosh.next_request.fetch_add(1, Ordering::Relaxed);
                let (tx, rx) = oneshot::channel();
                let cmd = Box::new(Command::Bad {
                    id,
                    condition: condition.clone(),
                    reply: tx,
                });
                if h.mailbox.send(cmd, false).is_ok() {
                    if let Ok((status, body, ct)) = rx.await {
                        return Err(xml_response_as(status, body, ct));
                    }
                }
            }
            let (status, body) = ucgate_proto::bosh::terminate_body(&condition);
            return Err(xml_response(status, body));
        }
    };
    let id = shared.bosh.next_request.fetch_add(1, Ordering::Relaxed);
    let handle = match parsed.sid.as_deref() {
        Some(sid) => match shared.bosh.registry.get(sid) {
            Some(h) => h,
            None => {
                shared.metrics.bosh_bad_sid.inc();
                let (status, body) = ucgate_proto::bosh::terminate_body(
                    &ucgate_proto::bosh::Condition::ItemNotFound,
                );
                return Err(xml_response(status, body));
            }
        },
        None if hop == Hop::Peer => {
            // Only requests naming a session are forwarded.
            let (status, body) =
                ucgate_proto::bosh::terminate_body(&ucgate_proto::bosh::Condition::BadRequest);
            return Err(xml_response(status, body));
        }
        None if drain::refuses_new_sessions(shared) => {
            return Err(drain::new_session_refused(rpath, peer));
        }
        None => {
            let sid = shared.bosh.sids.new_sid();
            let mailbox = Arc::new(Mailbox::default());
            let rx = Inbox(Arc::clone(&mailbox));
            let h = Handle { mailbox };
            match shared.bosh.registry.insert(
                &sid,
                h.clone(),
                peer.ip(),
                b.max_sessions,
                b.max_sessions_per_ip,
            ) {
                Ok(()) => {}
                Err(full) => {
                    let kind = match full {
                        RegistryFull::Total => "max_sessions",
                        RegistryFull::PerIp => "max_sessions_per_ip",
                    };
                    shared.metrics.error(rpath, Side::Client, kind);
                    tracing::warn!(route = rpath, %peer, limit = kind, "BOSH session limit reached");
                    let (status, body) = ucgate_proto::bosh::terminate_body(
                        &ucgate_proto::bosh::Condition::PolicyViolation,
                    );
                    return Err(xml_response(status, body));
                }
            }
            shared.metrics.bosh_sessions_created.inc();
            let s2 = Arc::clone(shared);
            let r2 = Arc::clone(route);
            shared
                .tracker
                .spawn(actor::run(s2, r2, Arc::clone(x), sid, rx, peer));
            h
        }
    };
    let (reply_tx, reply_rx) = oneshot::channel();
    let cmd = Box::new(Command::Request {
        req: parsed,
        id,
        reply: reply_tx,
        body_len: body.len(),
    });
    if let Err(why) = handle.mailbox.send(cmd, false) {
        let condition = match why {
            Refused::Closed => ucgate_proto::bosh::Condition::ItemNotFound,
            // far more requests in flight than the session allows
            Refused::Full => {
                shared.metrics.error(rpath, Side::Client, "overactive");
                ucgate_proto::bosh::Condition::PolicyViolation
            }
        };
        let (status, body) = ucgate_proto::bosh::terminate_body(&condition);
        return Err(xml_response(status, body));
    }
    Ok(Pending::Here(Waiting {
        rx: reply_rx,
        guard: GoneGuard {
            mailbox: Arc::clone(&handle.mailbox),
            id,
            armed: true,
        },
    }))
}
