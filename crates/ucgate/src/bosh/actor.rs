//! One task per BOSH session: the session's mailbox, its connection to the
//! XMPP server and its deadlines around the pure `ucgate_proto::bosh::Bridge`
//! (the XEP-0124 session and the RFC 7395 translator joined by typed
//! events). Events: requests and "request gone" from the HTTP side, what
//! the server connection did, the session's next deadline, and the drain
//! (the session goes on until the end `DrainEnd` gives it); the bridge's
//! steps are carried out in order.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use ucgate_proto::bosh::{Bridge, Condition, DrainEnd, SessionLimits, Step};
use ucgate_proto::xml::Limits;
use ucgate_proto::xmpp_ws::{Output, ServerEvent};

use super::mailbox::{Command, Inbox, Reply};
use crate::metrics::GaugeGuard;
use crate::xmpp::server::{IoEvent, ServerSide, XmppRuntime};
use crate::{RouteRuntime, Shared};
use ucgate_proto::side::Side;

/// Most bytes read from the server at once.
const SERVER_CHUNK: usize = 8192;

pub(crate) fn limits(
    b: &crate::config::BoshConfig,
    x: &crate::config::XmppConfig,
) -> SessionLimits {
    SessionLimits {
        max_wait: b.max_wait,
        max_hold: b.max_hold,
        inactivity: b.inactivity,
        polling: b.polling,
        max_pause: b.max_pause,
        max_requests: b.max_requests,
        max_pending_bytes: b.max_pending_bytes,
        xml: Limits {
            max_bytes: x.max_stanza_size,
            max_depth: x.max_depth,
            max_attributes: x.max_attributes,
        },
        ver: (1, 11),
    }
}

/// XEP-0124 §7.1 `route`: honoured only when it names the configured
/// server of the requested domain (protocol `xmpp`, the domain's fixed
/// `address`); anything else is refused (`host-unknown`), so a client can
/// never make the gateway connect to a host and port of its choosing. An
/// allowed route changes nothing: the domain's own settings are used.
fn route_allowed(x: &XmppRuntime, to: Option<&str>, r: &ucgate_proto::bosh::Route) -> bool {
    let Some(d) = to.and_then(|t| x.config.domains.get(&t.to_ascii_lowercase())) else {
        return false;
    };
    match &d.address {
        Some((host, port)) => {
            r.proto == "xmpp" && r.host.eq_ignore_ascii_case(host) && r.port == *port
        }
        None => false,
    }
}

/// Runs one session until it is terminated.
pub(crate) async fn run(
    shared: Arc<Shared>,
    route: Arc<RouteRuntime>,
    x: Arc<XmppRuntime>,
    sid: String,
    rx: Inbox,
    peer: SocketAddr,
) {
    let rpath = route.config.path.clone();
    let _active = GaugeGuard::new(shared.metrics.bosh_sessions_active.clone());
    let started = Instant::now();
    let now = || started.elapsed();
    let mut bridge = Bridge::new(sid, limits(&shared.live.get().config.bosh, &x.config));
    let mut server = ServerSide::default();
    let mut replies: HashMap<u64, oneshot::Sender<Reply>> = HashMap::new();
    let mut steps: VecDeque<Step> = VecDeque::new();
    let mut shutdown_seen = false;
    // Set when the session is over: the label for metrics and logs.
    let mut end: Option<&'static str> = None;
    // For the access log.
    let mut bytes = crate::access::Bytes::default();
    let mut requests = 0u64;

    loop {
        while let Some(step) = steps.pop_front() {
            match step {
                Step::Reply {
                    request,
                    status,
                    body,
                    content_type,
                } => {
                    if let Some(tx) = replies.remove(&request) {
                        bytes.to_client += body.len() as u64;
                        route.metrics.messages_out.inc();
                        route.metrics.bytes_out.inc_by(body.len() as u64);
                        let _ = tx.send((status, body, content_type));
                    }
                }
                Step::End(label) => end = Some(label),
                Step::Log(side, condition, detail) => {
                    shared.metrics.error(&rpath, side, condition);
                    if side == Side::Client {
                        shared.refusals.log(crate::refusal::Refusal {
                            route: &rpath,
                            client: peer,
                            cause: condition,
                            detail: "",
                            what: "BOSH session ended",
                        });
                        tracing::debug!(route = %rpath, %peer, detail = %detail, "BOSH stream problem detail");
                    } else {
                        tracing::info!(route = %rpath, %peer, side = side.label(), condition, detail = %detail, "BOSH stream problem");
                    }
                }
                Step::Server(o) => {
                    if let (Some(ev), _) = server.execute(&shared, &x, &route, o, peer).await {
                        steps.extend(bridge.on_server(ev, now()));
                    }
                }
            }
        }
        if let Some(label) = end {
            // Anything still held (it should not be) learns the session is gone.
            for (_, tx) in replies.drain() {
                let (status, body) = ucgate_proto::bosh::terminate_body(&Condition::ItemNotFound);
                let _ = tx.send((status, body, None));
            }
            shared
                .metrics
                .bosh_terminations
                .get_or_create(&crate::metrics::ConditionLabels {
                    condition: label.to_string(),
                })
                .inc();
            tracing::info!(route = %rpath, %peer, end = %label, secs = started.elapsed().as_secs_f64(), "BOSH session ended");
            crate::access::bosh(peer, &rpath, label, requests, started.elapsed(), bytes);
            // Close the server stream properly (`</stream:stream>`), bounded.
            let goodbye = bridge.goodbye();
            // Boxed: runs once, at the end (the actor's state machine lives
            // as long as the session).
            let _ = Box::pin(tokio::time::timeout(Duration::from_secs(1), async {
                for o in goodbye {
                    let _ = server.execute(&shared, &x, &route, o, peer).await;
                }
            }))
            .await;
            break;
        }
        let deadline = bridge.next_deadline().map(|d| started + d);
        let can_read = server.is_connected() && bridge.accepts_server_data();
        tokio::select! {
            _ = shared.conn_cancel.cancelled(), if !shutdown_seen => {
                shutdown_seen = true;
                let end = DrainEnd::new(
                    shared.config.server.drain_timeout,
                    shared.config.cluster.is_some(),
                    shared.live.get().config.bosh.drain_see_other_uri.as_deref(),
                );
                let start = shared.drain.started().unwrap_or_else(tokio::time::Instant::now);
                let at = (start + end.after).into_std().saturating_duration_since(started);
                steps.extend(bridge.on_drain(now(), at, end.condition));
            }
            // stop taking requests while much is queued for the server
            cmd = rx.0.recv(), if server.queued() < (1 << 20) => match cmd.map(|c| *c) {
                None => end = Some("internal-server-error"),
                Some(Command::Request { req, id, reply, body_len }) => {
                    replies.insert(id, reply);
                    requests += 1;
                    bytes.from_client += body_len as u64;
                    route.metrics.messages_in.inc();
                    route.metrics.bytes_in.inc_by(body_len as u64);
                    // (the creation request's `to`, for its `route`)
                    let to = if bridge.session().is_none() { req.to.clone() } else { None };
                    steps.extend(bridge.on_request(req, id, now(), &|r| {
                        route_allowed(&x, to.as_deref(), r)
                    }));
                }
                Some(Command::Bad { id, condition, reply }) => {
                    replies.insert(id, reply);
                    steps.extend(bridge.on_bad_request(id, condition, now()));
                }
                Some(Command::Gone(id)) => {
                    replies.remove(&id);
                    steps.extend(bridge.on_request_gone(id, now()));
                }
            },
            ev = server.io_event(can_read), if can_read || server.has_output() => {
                match ev {
                    IoEvent::Closed => {
                        server.drop_connection();
                        steps.extend(bridge.on_server(ServerEvent::Eof, now()));
                    }
                    IoEvent::Wrote => {}
                    IoEvent::Read => {
                        let data = server.take_read(SERVER_CHUNK);
                        steps.extend(bridge.on_server_bytes(&data, now()));
                    }
                }
            }
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            } => steps.extend(bridge.on_timeout(now())),
        }
    }
    // Close the server stream if still open (boxed, as above).
    let _ = Box::pin(tokio::time::timeout(Duration::from_secs(1), async {
        if server.is_connected() {
            let _ = server
                .execute(&shared, &x, &route, Output::CloseServer, peer)
                .await;
        }
    }))
    .await;
    shared.bosh.registry.remove(bridge.sid());
}
