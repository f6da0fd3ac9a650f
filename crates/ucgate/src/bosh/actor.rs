//! One task per BOSH session: owns the pure `Session` (HTTP request rules),
//! the RFC 7395 `Translator` used as the server-side engine (domain choice,
//! STARTTLS, stream restarts, namespace handling — the same code as the
//! WebSocket route) and the connection to the XMPP server.
//!
//! Events: requests and "request gone" from the HTTP side, bytes from the
//! server, the session's next deadline, and the drain. Session actions and
//! translator outputs are carried out in order.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::oneshot;
use ucgate_proto::bosh::{Action, Condition, EndReason, Session, SessionLimits};
use ucgate_proto::xml::Limits;
use ucgate_proto::xmpp_ws::{Output, ServerTls, Translator, NS_FRAMING};

use super::registry::Command;
use crate::metrics::GaugeGuard;
use crate::xmpp::adapter::{IoEvent, ServerSide};
use crate::{RouteRuntime, Shared};

/// Work items: session actions and translator outputs, in order.
enum Work {
    Session(Action),
    Server(Output),
}

pub(crate) fn limits(shared: &Shared) -> SessionLimits {
    let b = &shared.config.bosh;
    let x = &shared.config.xmpp;
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

fn open_element(to: &str, lang: Option<&str>, from: Option<&str>) -> String {
    use ucgate_proto::xml::tag::escape;
    let mut s = format!(
        "<open xmlns='{NS_FRAMING}' to='{}' version='1.0'",
        escape(to)
    );
    if let Some(l) = lang {
        s.push_str(&format!(" xml:lang='{}'", escape(l)));
    }
    if let Some(f) = from {
        s.push_str(&format!(" from='{}'", escape(f)));
    }
    s.push_str("/>");
    s
}

/// XEP-0124 §7.1 `route`: honoured only when it names the configured
/// server of the requested domain (protocol `xmpp`, the domain's fixed
/// `address`); anything else is refused (`host-unknown`), so a client can
/// never make the gateway connect to a host and port of its choosing. An
/// allowed route changes nothing: the domain's own settings are used.
fn route_allowed(shared: &Shared, to: Option<&str>, r: &ucgate_proto::bosh::Route) -> bool {
    let Some(d) = to.and_then(|t| shared.config.xmpp.domains.get(&t.to_ascii_lowercase())) else {
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
    sid: String,
    rx: super::registry::Inbox,
    peer: SocketAddr,
) {
    let rpath = route.config.path.clone();
    let _active = GaugeGuard::new(shared.metrics.bosh_sessions_active.clone());
    let started = Instant::now();
    let now = || started.elapsed();
    let limits = limits(&shared);
    let x = shared.xmpp.as_ref();
    let mut session: Option<Session> = None;
    let mut t = Translator::new(limits.xml, ServerTls::StartTls);
    let mut server = ServerSide::default();
    let mut replies: HashMap<u64, oneshot::Sender<super::registry::Reply>> = HashMap::new();
    let mut work: VecDeque<Work> = VecDeque::new();
    let mut buf = BytesMut::new();
    let mut shutdown_seen = false;
    // Set when the session is over: the label for metrics and logs.
    let mut end: Option<String> = None;
    let mut stream_lang: Option<String> = None;
    let mut stream_to = String::new();

    'outer: loop {
        while let Some(w) = work.pop_front() {
            match w {
                Work::Session(Action::Respond {
                    request,
                    status,
                    body,
                }) => {
                    if let Some(tx) = replies.remove(&request) {
                        let ct = session.as_ref().map(|s| s.content_type().to_string());
                        let _ = tx.send((status, body, ct));
                    }
                }
                Work::Session(Action::ToServer(bytes)) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    work.extend(t.on_client_text(&text).into_iter().map(Work::Server));
                }
                Work::Session(Action::OpenStream { to, lang, from }) => {
                    stream_to = to.clone();
                    stream_lang = lang.clone();
                    let open = open_element(&to, lang.as_deref(), from.as_deref());
                    work.extend(t.on_client_text(&open).into_iter().map(Work::Server));
                }
                Work::Session(Action::RestartStream) => {
                    let open = open_element(&stream_to, stream_lang.as_deref(), None);
                    work.extend(t.on_client_text(&open).into_iter().map(Work::Server));
                }
                Work::Session(Action::CloseStream) => {
                    let close = format!("<close xmlns='{NS_FRAMING}'/>");
                    work.extend(t.on_client_text(&close).into_iter().map(Work::Server));
                }
                Work::Session(Action::Terminated(c)) => {
                    end = Some(c.name().to_string());
                }
                Work::Session(Action::Ended(reason)) => {
                    end = Some(
                        match reason {
                            EndReason::ClientTerminate => "normal",
                            EndReason::Inactivity => "inactivity",
                            EndReason::ServerClosed => "server_closed",
                        }
                        .to_string(),
                    );
                }
                Work::Server(Output::ToClient(text)) => {
                    let Some(s) = session.as_mut() else { continue };
                    let failing = matches!(work.front(), Some(Work::Server(Output::ToClient(n))) if n.starts_with("<stream:error"));
                    if text.starts_with("<open ") && failing {
                        // the translator failed before the stream opened:
                        // the error and close follow; no creation response
                    } else if text.starts_with("<open ") {
                        let tag = ucgate_proto::xml::tag::parse_start_tag(text.as_bytes())
                            .ok()
                            .flatten();
                        let id = tag
                            .as_ref()
                            .and_then(|t| t.attr("id"))
                            .unwrap_or_default()
                            .to_string();
                        let from = tag
                            .as_ref()
                            .and_then(|t| t.attr("from"))
                            .map(str::to_string);
                        work.extend(
                            s.on_stream_open(id, from, now())
                                .into_iter()
                                .map(Work::Session),
                        );
                    } else if text.starts_with("<close ") {
                        let actions = match t.end().and_then(Condition::from_stream_end) {
                            Some(c) => s.on_server_error(c, now()),
                            None => s.on_server_close(now()),
                        };
                        work.extend(actions.into_iter().map(Work::Session));
                    } else if text.starts_with("<stream:error") {
                        // the <close/> that follows ends the session
                    } else {
                        work.extend(
                            s.on_server_element(text.into_bytes(), now())
                                .into_iter()
                                .map(Work::Session),
                        );
                    }
                }
                Work::Server(Output::CloseClient(_)) => {}
                Work::Server(Output::Log(side, condition, detail)) => {
                    shared.metrics.error(&rpath, side, condition);
                    tracing::info!(route = %rpath, %peer, side, condition, detail = %detail, "BOSH stream problem");
                }
                Work::Server(o) => {
                    let Some(x) = x else {
                        end = Some("internal-server-error".into());
                        continue;
                    };
                    let (more, _label) = server.execute(&shared, x, &route, &mut t, o, peer).await;
                    work.extend(more.into_iter().map(Work::Server));
                }
            }
        }
        if let Some(label) = end.take() {
            // Anything still held (it should not be) learns the session is gone.
            for (_, tx) in replies.drain() {
                let (status, body) = ucgate_proto::bosh::terminate_body(&Condition::ItemNotFound);
                let _ = tx.send((status, body, None));
            }
            shared
                .metrics
                .bosh_terminations
                .get_or_create(&crate::metrics::ConditionLabels {
                    condition: label.clone(),
                })
                .inc();
            tracing::info!(route = %rpath, %peer, end = %label, secs = started.elapsed().as_secs_f64(), "BOSH session ended");
            // Close the server stream properly (`</stream:stream>`), bounded.
            let goodbye = t.on_client_gone();
            if let Some(x) = x {
                // Boxed: runs once, at the end (the actor's state machine
                // lives as long as the session).
                let _ = Box::pin(tokio::time::timeout(Duration::from_secs(1), async {
                    for o in goodbye {
                        let _ = server.execute(&shared, x, &route, &mut t, o, peer).await;
                    }
                }))
                .await;
            }
            break 'outer;
        }
        let deadline = session
            .as_ref()
            .and_then(|s| s.next_deadline())
            .map(|d| started + d);
        let can_read =
            server.is_connected() && session.as_ref().is_some_and(|s| s.accepts_server_data());
        tokio::select! {
            _ = shared.conn_cancel.cancelled(), if !shutdown_seen => {
                shutdown_seen = true;
                if let Some(s) = session.as_mut() {
                    work.extend(s.on_shutdown(now()).into_iter().map(Work::Session));
                }
                work.extend(t.on_shutdown().into_iter().filter(|o| !matches!(o, Output::ToClient(_))).map(Work::Server));
                if session.is_none() {
                    end = Some("system-shutdown".into());
                }
            }
            // stop taking requests while much is queued for the server
            cmd = rx.0.recv(), if server.queued() < (1 << 20) => match cmd.map(|c| *c) {
                None => {
                    end = Some("internal-server-error".into());
                }
                Some(Command::Request { req, id, reply }) => {
                    replies.insert(id, reply);
                    match session.as_mut() {
                        Some(s) => work.extend(s.on_request(req, id, now()).into_iter().map(Work::Session)),
                        None => match Session::create_with_route(&req, sid.clone(), &limits, id, now(), &|r| {
                            route_allowed(&shared, req.to.as_deref(), r)
                        }) {
                            Ok((s, actions)) => {
                                session = Some(s);
                                work.extend(actions.into_iter().map(Work::Session));
                            }
                            Err((status, body)) => {
                                if let Some(tx) = replies.remove(&id) {
                                    let _ = tx.send((status, body, None));
                                }
                                end = Some("creation-refused".into());
                            }
                        },
                    }
                }
                Some(Command::Bad { id, condition, reply }) => {
                    replies.insert(id, reply);
                    match session.as_mut() {
                        Some(s) => work.extend(s.on_bad_request(id, condition, now()).into_iter().map(Work::Session)),
                        None => {
                            if let Some(tx) = replies.remove(&id) {
                                let (status, body) = ucgate_proto::bosh::terminate_body(&condition);
                                let _ = tx.send((status, body, None));
                            }
                        }
                    }
                }
                Some(Command::Gone(id)) => {
                    replies.remove(&id);
                    if let Some(s) = session.as_mut() {
                        work.extend(s.on_request_gone(id, now()).into_iter().map(Work::Session));
                    }
                }
            },
            ev = server.io_event(&mut buf, can_read), if can_read || server.has_output() => {
                match ev {
                    IoEvent::Closed => {
                        server.drop_connection();
                        work.extend(t.on_server_eof().into_iter().map(Work::Server));
                    }
                    IoEvent::Wrote => {}
                    IoEvent::Read => {
                        server.read_ready(&mut buf, 8192);
                        let data = buf.split();
                        work.extend(t.on_server_bytes(&data).into_iter().map(Work::Server));
                        if buf.capacity() > crate::xmpp::adapter::FIRST_READ {
                            buf = BytesMut::new();
                        }
                    }
                }
            }
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some(s) = session.as_mut() {
                    work.extend(s.on_timeout(now()).into_iter().map(Work::Session));
                }
            }
        }
    }
    // Close the server stream if still open (boxed, as above).
    let _ = Box::pin(tokio::time::timeout(Duration::from_secs(1), async {
        if server.is_connected() {
            if let Some(x) = x {
                let _ = server
                    .execute(&shared, x, &route, &mut t, Output::CloseServer, peer)
                    .await;
            }
        }
    }))
    .await;
    shared.bosh.registry.remove(&sid);
}
