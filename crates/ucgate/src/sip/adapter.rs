//! One SIP-over-WebSocket client (RFC 7118): one task per connection, one
//! flow in the route's [`SipRuntime`]. Each WebSocket message is one SIP
//! message: parsed, passed through `edge::route_client`, and sent to the
//! core or answered. Messages for the flow arrive from the runtime's queue.
//!
//! In the drain a connection without a call in progress closes at its turn;
//! one with a call closes when the call ends, at the end of the drain spread
//! at the latest (`ucgate_proto::sip::calls` tells, from the messages both
//! ways).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use ucgate_proto::side::Side;
use ucgate_proto::sip::calls::Calls;
use ucgate_proto::sip::edge::{self, ClientAction, ClientState, FlowCtx};
use ucgate_proto::sip::flow_token::WsTransport;
use ucgate_proto::sip::framing::CoreTransport;
use ucgate_proto::sip::gate::{self, ClientGate, GateLimits, Inbound, KEEPALIVE_PONG};
use ucgate_proto::sip::message::{self, SipLimits};
use ucgate_proto::tunnel::{CloseCause, EndReason};

use super::SipRuntime;
use crate::metrics::GaugeGuard;
use crate::wakeup::Wakeup;
use crate::ws::{Close, Recv, WsConn};
use crate::{RouteRuntime, Shared};

/// A SIP message as a WebSocket message: text when it is UTF-8.
fn ws_message(bytes: Vec<u8>) -> Message {
    match String::from_utf8(bytes) {
        Ok(s) => Message::Text(s.into()),
        Err(e) => Message::Binary(Bytes::from(e.into_bytes())),
    }
}

/// Removes the flow from the table when the connection ends, however it ends.
struct FlowGuard<'a>(&'a SipRuntime, u64);

impl Drop for FlowGuard<'_> {
    fn drop(&mut self) {
        self.0.close_flow(self.1);
    }
}

/// Counts a message for the client in the flow's calls (a message this
/// gateway wrote or rewrote: it parses), parsed only when it can matter.
fn note(calls: &mut Calls, bytes: &[u8]) {
    if !Calls::may_concern(bytes) {
        return;
    }
    if let Ok(m) = message::parse(bytes, &SipLimits::UNLIMITED) {
        calls.on_message(&m);
    }
}

/// What to do after a client message.
enum Next {
    Continue,
    Close(u16, &'static str, EndReason),
}

/// Runs one SIP WebSocket connection to its end.
pub(crate) async fn run<S>(
    shared: Arc<Shared>,
    route: Arc<RouteRuntime>,
    rt: Arc<SipRuntime>,
    ws: Box<WebSocketStream<S>>,
    peer: SocketAddr,
    secure: bool,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let cfg = &route.config;
    let rpath = cfg.path.as_str();
    let m = &route.metrics;
    let _active = GaugeGuard::new(m.active.clone());
    let ws = WsConn::new(ws, &shared, &route, peer);
    let rt = &*rt;
    let (flow_id, mut rx) = rt.open_flow();
    let _flow = FlowGuard(rt, flow_id);
    let transport = if secure {
        WsTransport::Wss
    } else {
        WsTransport::Ws
    };
    let peer_ip = peer.ip().to_string();
    let mut gate = ClientGate::new(GateLimits {
        max_messages_per_second: rt.sip.max_messages_per_second,
        max_garbage: rt.sip.max_garbage,
    });
    // INVITE branches this client sent over TCP (their CANCEL/ACK follow).
    let mut client_state = ClientState::new();
    let mut end = EndReason::ClientGone;
    let ticket = shared.drain.ticket();
    let mut close: Option<Close> = None;
    let mut calls = Calls::new();
    // The drain has come to this connection's turn (it has a call).
    let mut turn_come = false;
    let timer = crate::wakeup::unarmed();
    tokio::pin!(timer);
    let mut wakeup = Wakeup::default();

    loop {
        if turn_come && !calls.in_progress() {
            end = CloseCause::Shutdown.into();
            close = Some(CloseCause::Shutdown.into());
            break;
        }
        wakeup.by(timer.as_mut(), ws.keepalive_deadline());
        tokio::select! {
            _ = shared.drain.turn(&shared.conn_cancel, ticket), if !turn_come => {
                turn_come = true;
                if calls.in_progress() {
                    tracing::info!(route = rpath, %peer, flow = flow_id, calls = calls.len(), "drain: SIP WebSocket with a call in progress closes when the call ends");
                }
            }
            _ = shared.drain.calls_over(&shared.conn_cancel), if turn_come => {
                end = CloseCause::Shutdown.into();
                close = Some(CloseCause::Shutdown.into());
                break;
            }
            out = rx.recv() => {
                let Some(bytes) = out else { break };
                m.messages_out.inc();
                m.bytes_out.inc_by(bytes.len() as u64);
                note(&mut calls, &bytes);
                if ws.send(ws_message(bytes)).await.is_err() {
                    break;
                }
            }
            msg = ws.recv() => {
                let data: Vec<u8> = match msg {
                    Recv::Text(t) => t.as_str().as_bytes().to_vec(),
                    Recv::Binary(b) => b.to_vec(),
                    Recv::Closed => {
                        end = EndReason::ClientClosed;
                        // tungstenite answers the close; flush it
                        ws.finish_close().await;
                        break;
                    }
                    // RFC 6455 §7.1.7: no further frame is read
                    Recv::Violation(c) => {
                        ws.fail(c).await;
                        break;
                    }
                    Recv::Gone => break,
                };
                let ctx = FlowCtx { flow_id, transport, peer_ip: &peer_ip, peer_port: peer.port() };
                let inbound = gate.on_message(ws.age(), &data, &rt.limits, rt.key(), flow_id);
                let next = on_client_message(rt, inbound, &ctx, &mut client_state, &mut calls, &ws).await;
                if let Next::Close(code, reason, end_reason) = next {
                    end = end_reason;
                    close = Some(Close { code, reason });
                    break;
                }
            }
            _ = &mut timer, if wakeup.armed() => {
                wakeup.fired();
                match ws.keepalive_due().await {
                    Some(CloseCause::Idle) => {
                        end = CloseCause::Idle.into();
                        close = Some(Close { code: 1000, reason: "idle" });
                        break;
                    }
                    Some(_) => {
                        // no close frame: the client does not answer
                        end = CloseCause::DeadPeer.into();
                        break;
                    }
                    None => {}
                }
            }
        }
    }
    if let Some(close) = close {
        ws.send_close(close).await;
        // wait briefly for the client's close reply
        ws.finish_close().await;
    }
    let end = ws.finish(end);
    tracing::info!(route = rpath, %peer, flow = flow_id, end, secs = ws.age().as_secs_f64(), "SIP WebSocket closed");
}

async fn on_client_message<S>(
    rt: &SipRuntime,
    inbound: Inbound<'_>,
    ctx: &FlowCtx<'_>,
    state: &mut ClientState,
    calls: &mut Calls,
    ws: &WsConn<'_, S>,
) -> Next
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let msg = match inbound {
        Inbound::Route(msg) => {
            calls.on_message(&msg);
            msg
        }
        Inbound::Keepalive { pong } => {
            if pong && ws.send(Message::Text(KEEPALIVE_PONG.into())).await.is_err() {
                return Next::Close(1000, "", EndReason::ClientGone);
            }
            return Next::Continue;
        }
        Inbound::Answer { response, error } => {
            rt.count(Side::Client, error);
            note(calls, &response);
            let _ = ws.send(ws_message(response)).await;
            return Next::Continue;
        }
        Inbound::Ignore { error } => {
            rt.count(Side::Client, error);
            return Next::Continue;
        }
        Inbound::End {
            response,
            error,
            close,
        } => {
            rt.count(Side::Client, error);
            if let Some(r) = response {
                let _ = ws.send(ws_message(r)).await;
            }
            return Next::Close(close.code, close.reason, EndReason::Route(close.end));
        }
    };
    if msg.is_request() {
        rt.sm.client_requests.inc();
    } else {
        rt.sm.client_responses.inc();
    }
    match edge::route_client(&msg, &rt.edge(), ctx, state) {
        ClientAction::ToCore { bytes, transport } if msg.is_request() => {
            // Over TCP/TLS the message may wait for a connection attempt:
            // the answer travels with it in case the attempt fails.
            let notice = matches!(transport, CoreTransport::Tcp | CoreTransport::Tls)
                .then(|| gate::core_unreachable_response(&msg, ctx.flow_id))
                .flatten()
                .map(|r| (ctx.flow_id, r));
            if rt.to_core(bytes, transport, notice).await.is_err() {
                if let Some(r) = gate::core_unreachable_response(&msg, ctx.flow_id) {
                    note(calls, &r);
                    let _ = ws.send(ws_message(r)).await;
                }
            }
        }
        ClientAction::ToCore { bytes, transport } => {
            // A response to a request the core sent: back the way it came.
            let key = edge::transaction_key(&msg);
            let final_response = msg.status().is_some_and(|c| c >= 200);
            let _ = rt
                .response_to_core(key, final_response, bytes, transport)
                .await;
        }
        ClientAction::ToFlow { flow, bytes } => {
            // Between two clients of this gateway (RFC 5626 §5.3).
            if !rt.to_flow(flow.flow_id, bytes) {
                if msg.is_request() {
                    let cfg = rt.edge();
                    if let Some(r) = edge::flow_gone_response(&msg, &cfg, rt.sip.flow_gone == 480) {
                        rt.sm.flow_gone.inc();
                        note(calls, &r);
                        let _ = ws.send(ws_message(r)).await;
                    }
                } else {
                    rt.count(Side::Client, "sip_dropped");
                }
            }
        }
        ClientAction::FlowGone => {
            // A flow of another node or of a previous start.
            let cfg = rt.edge();
            if let Some(r) = edge::flow_gone_response(&msg, &cfg, rt.sip.flow_gone == 480) {
                rt.sm.flow_gone.inc();
                let _ = ws.send(ws_message(r)).await;
            }
        }
        ClientAction::Respond(r) => {
            note(calls, &r);
            let _ = ws.send(ws_message(r)).await;
        }
        ClientAction::Drop(reason) => {
            rt.count(Side::Client, "sip_dropped");
            tracing::debug!(route = %rt.route, reason, "SIP message from a client dropped");
        }
    }
    Next::Continue
}
