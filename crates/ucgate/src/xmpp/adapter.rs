//! The XMPP-over-WebSocket adapter (route kind `xmpp-websocket`): drives
//! `ucgate_proto::xmpp_ws::Translator` over a WebSocket and a TCP (or TLS)
//! connection to the XMPP server chosen by the client's `<open to=…/>`.
//!
//! One task, one loop: client frames, server bytes, timers and the shutdown
//! signal are events fed to the translator, whose outputs are carried out
//! in order. Writes block the loop (backpressure both ways): a slow client
//! stops the gateway from reading the server, a slow server stops it from
//! reading the client. XMPP servers read while they write (they buffer
//! output), so the two can never wait on each other.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use ucgate_proto::side::Side;
use ucgate_proto::tunnel::{CloseCause, EndReason};
use ucgate_proto::xml::Limits;
use ucgate_proto::xmpp_ws::{Output, ServerEvent, ServerTls, Translator, Unavailable};

use super::server::{IoEvent, ServerSide, XmppRuntime};
use crate::metrics::GaugeGuard;
use crate::wakeup::Wakeup;
use crate::ws::{Close, Recv, WsConn};
use crate::{RouteRuntime, Shared};

/// Bytes queued for the server above which the client is not read (backpressure).
const MAX_QUEUED: usize = 1 << 20;

/// Runs one XMPP-over-WebSocket connection to its end.
pub(crate) async fn run<S>(
    shared: Arc<Shared>,
    route: Arc<RouteRuntime>,
    x: Arc<XmppRuntime>,
    ws: Box<WebSocketStream<S>>,
    peer: SocketAddr,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let cfg = &route.config;
    let rpath = cfg.path.as_str();
    let m = &route.metrics;
    let _active = GaugeGuard::new(m.active.clone());
    let ws = WsConn::new(ws, &shared, &route, peer);
    let x = &*x;
    let xc = &x.config;
    let limits = Limits {
        max_bytes: xc.max_stanza_size,
        max_depth: xc.max_depth,
        max_attributes: xc.max_attributes,
    };
    let mut t = Translator::new(limits, ServerTls::StartTls);
    let mut server = ServerSide::default();
    let chunk = cfg.buffer_size.max(1024);
    // Deadline for the whole negotiation (connect, STARTTLS, features).
    let mut negotiation_deadline: Option<tokio::time::Instant> = None;
    // Deadline for the end of a close (ours or the client's).
    let mut close_deadline: Option<tokio::time::Instant> = None;
    let mut client_open = true; // still reading client frames
    let mut client_close_sent = false;
    // A client violation to fail the WebSocket for, once the outputs before
    // its close (the stream error, the server's close) are carried out.
    let mut failing: Option<CloseCause> = None;
    let mut shutdown_seen = false;
    let ticket = shared.drain.ticket();
    // How the connection ended; `None` until something says (the client went away).
    let mut ending: Option<EndReason> = None;
    let mut pending: VecDeque<Output> = VecDeque::new();
    let timer = crate::wakeup::unarmed();
    tokio::pin!(timer);
    let mut wakeup = Wakeup::default();

    loop {
        // Carry out every pending output; some produce further input.
        while let Some(o) = pending.pop_front() {
            match o {
                Output::ToClient(ev) => {
                    let text = ev.into_text();
                    m.messages_out.inc();
                    m.bytes_out.inc_by(text.len() as u64);
                    if !client_close_sent && ws.send(Message::Text(text.into())).await.is_err() {
                        client_open = false;
                        queue(&mut pending, t.on_client_gone());
                    }
                }
                Output::CloseClient(code) => {
                    ending.get_or_insert(EndReason::Route("closed"));
                    if !client_close_sent {
                        client_close_sent = true;
                        if let Some(c) = ws.violation() {
                            // RFC 6455 §7.1.7: no further frame is read
                            failing = Some(c);
                            client_open = false;
                            continue;
                        }
                        let reason = match code {
                            1001 => "gateway shutting down",
                            1003 => "binary messages are not allowed (RFC 7395)",
                            _ => "stream closed",
                        };
                        ws.send_close(Close { code, reason }).await;
                        // wait this long for the client's close reply
                        close_deadline = Some(tokio::time::Instant::now() + cfg.close_timeout);
                    }
                }
                o @ (Output::Connect { .. }
                | Output::ToServer(_)
                | Output::StartTls
                | Output::CloseServer) => {
                    if matches!(o, Output::Connect { .. }) {
                        negotiation_deadline =
                            Some(tokio::time::Instant::now() + xc.negotiation_timeout);
                    }
                    let (ev, failure) = server.execute(&shared, x, &route, o, peer).await;
                    if let Some(label) = failure {
                        ending = Some(EndReason::Route(label));
                    }
                    if let Some(ev) = ev {
                        queue(&mut pending, t.on_server(ev));
                    }
                }
                Output::Log(side, condition, detail) => {
                    shared.metrics.error(rpath, side, condition);
                    if side == Side::Backend {
                        tracing::warn!(route = rpath, %peer, side = side.label(), condition, detail = %detail, "XMPP stream problem");
                    } else {
                        shared.refusals.log(crate::refusal::Refusal {
                            route: rpath,
                            client: peer,
                            cause: condition,
                            detail: "",
                            what: "XMPP stream ended",
                        });
                        tracing::debug!(route = rpath, %peer, detail = %detail, "XMPP stream problem detail");
                    }
                    ending.get_or_insert(EndReason::Route(condition));
                }
            }
        }
        // The queue's storage goes with its last output (an idle stream
        // keeps none; idle memory, docs/performance.md).
        pending = VecDeque::new();
        if let Some(c) = failing.take() {
            ws.fail(c).await;
        }
        if t.is_open() {
            negotiation_deadline = None;
        }
        if t.is_closing() && close_deadline.is_none() {
            // the client sent <close/>: the server has close_timeout to answer
            close_deadline = Some(tokio::time::Instant::now() + cfg.close_timeout);
        }
        if !client_open && t.is_closed() {
            break;
        }
        // Next timer.
        let mut deadline = if client_close_sent {
            None
        } else {
            ws.keepalive_deadline()
        };
        for d in [
            negotiation_deadline.map(|d| d.into_std()),
            close_deadline.map(|d| d.into_std()),
        ]
        .into_iter()
        .flatten()
        {
            deadline = Some(deadline.map_or(d, |x: Instant| x.min(d)));
        }
        wakeup.by(timer.as_mut(), deadline);
        // Idle, a connection holds no buffer for the server's next data:
        // io_event makes room once there is something to read (inbound.rs).
        tokio::select! {
            _ = shared.drain.turn(&shared.conn_cancel, ticket), if !shutdown_seen => {
                shutdown_seen = true;
                ending = Some(CloseCause::Shutdown.into());
                queue(&mut pending, if xc.drain_close_stream {
                    t.on_shutdown()
                } else {
                    t.on_drain_cut()
                });
                if pending.is_empty() && !client_close_sent {
                    pending.push_back(Output::CloseClient(1001));
                }
            }
            // stop reading the client while much is queued for the server
            msg = ws.recv(), if client_open && server.queued() < MAX_QUEUED => {
                match msg {
                    Recv::Text(text) => {
                        queue(&mut pending, t.on_client_text(text.as_str()));
                    }
                    Recv::Binary(_) => {
                        ending = Some(EndReason::Route("binary_message"));
                        queue(&mut pending, t.on_client_binary());
                    }
                    Recv::Closed => {
                        if !client_close_sent {
                            ending = Some(EndReason::ClientClosed);
                        }
                        // tungstenite queues the close reply; reading on flushes it
                        queue(&mut pending, t.on_client_gone());
                    }
                    Recv::Violation(CloseCause::MessageTooBig) => {
                        // RFC 7395 §3.6: a stream error first, then 1009
                        client_open = false;
                        queue(&mut pending, t.on_client_too_big());
                    }
                    Recv::Violation(c) => {
                        client_open = false;
                        queue(&mut pending, t.on_client_gone());
                        pending.push_back(Output::CloseClient(c.code().0));
                    }
                    Recv::Gone => {
                        client_open = false;
                        queue(&mut pending, t.on_client_gone());
                    }
                }
            }
            ev = server.io_event(true), if server.is_connected() => {
                match ev {
                    IoEvent::Closed => {
                        server.drop_connection();
                        if ending.is_none() && !t.is_closed() {
                            ending = Some(EndReason::Route("server_closed"));
                        }
                        queue(&mut pending, t.on_server(ServerEvent::Eof));
                    }
                    IoEvent::Wrote => {}
                    IoEvent::Read => {
                        let data = server.take_read(chunk);
                        ws.on_data();
                        queue(&mut pending, t.on_server_bytes(&data));
                    }
                }
            }
            _ = &mut timer, if wakeup.armed() => {
                wakeup.fired();
                let n = tokio::time::Instant::now();
                if close_deadline.is_some_and(|d| n >= d) {
                    if t.is_closing() {
                        // the server did not answer the client's <close/>
                        queue(&mut pending, t.on_close_timeout());
                    } else {
                        break;
                    }
                }
                if negotiation_deadline.is_some_and(|d| n >= d) {
                    negotiation_deadline = None;
                    ending = Some(EndReason::Route("remote_connection_failed"));
                    queue(&mut pending, t.on_server_unavailable(Unavailable::RemoteConnectionFailed, "the XMPP server did not complete the stream negotiation in time"));
                }
                if !client_close_sent {
                    match ws.keepalive_due().await {
                        Some(CloseCause::Idle) => {
                            ending = Some(CloseCause::Idle.into());
                            queue(&mut pending, t.on_idle());
                        }
                        Some(cause) => {
                            ending = Some(cause.into());
                            queue(&mut pending, t.on_client_dead());
                        }
                        None => {}
                    }
                }
            }
        }
    }
    let end = ws.finish(ending.unwrap_or(EndReason::ClientGone));
    tracing::info!(route = rpath, %peer, end, domain = %t.domain(), secs = ws.age().as_secs_f64(), "XMPP WebSocket closed");
}

/// Queues a step's outputs; into an empty queue the step's own storage is
/// taken, not copied.
fn queue(pending: &mut VecDeque<Output>, outputs: Vec<Output>) {
    if pending.is_empty() {
        *pending = outputs.into();
    } else {
        pending.extend(outputs);
    }
}
