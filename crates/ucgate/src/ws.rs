//! One client WebSocket, as the three WebSocket adapters (tunnel, XMPP,
//! SIP) use it: receiving within the route's limits, sending, keepalive
//! (pings, idle, dead peer), the close handshake, failing the connection
//! on a protocol violation, and the closing metrics.
//!
//! Every method takes `&self` (the socket sits behind an uncontended lock,
//! held only inside a poll), so the tunnel can receive and send from two
//! concurrent futures of one task without splitting the stream. What each
//! violation means is `ucgate_proto::tunnel::{ReceiveError, CloseCause}`;
//! the life of a WebSocket is docs/lifecycle-websocket.md.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use ucgate_proto::keepalive::{Keepalive, KeepaliveAction};
use ucgate_proto::tunnel::{CloseCause, EndReason, ReceiveError};

use crate::access;
use crate::metrics::ReasonLabels;
use crate::{RouteRuntime, Shared};

/// A close frame the gateway sends: a code and a fixed reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Close {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
}

impl From<CloseCause> for Close {
    fn from(c: CloseCause) -> Close {
        let (code, reason) = c.code();
        Close { code, reason }
    }
}

/// What [`WsConn::recv`] got from the client.
pub(crate) enum Recv {
    Text(Utf8Bytes),
    Binary(Bytes),
    /// The client's close frame; tungstenite has queued the reply, which
    /// [`WsConn::finish_close`] flushes.
    Closed,
    /// The connection broke or ended without a close frame.
    Gone,
    /// The client broke the protocol or a limit: already counted; the
    /// connection must be failed with [`WsConn::fail`].
    Violation(CloseCause),
}

/// How tungstenite 0.30 reports each violation, mapped to RFC 6455 terms.
/// `None`: the connection is gone (EOF, reset, I/O error).
fn receive_error(e: &WsError) -> Option<ReceiveError> {
    match e {
        // frame or message over max_frame_size / max_message_size
        WsError::Capacity(_) => Some(ReceiveError::TooBig),
        // a text message, or a close reason, that is not UTF-8
        WsError::Utf8(_) => Some(ReceiveError::InvalidUtf8),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        // UnmaskedFrameFromClient, NonZeroReservedBits, Unknown*FrameType,
        // ControlFrameTooBig, FragmentedControlFrame, UnexpectedContinueFrame,
        // ExpectedFragment, InvalidCloseSequence, …
        WsError::Protocol(_) => Some(ReceiveError::Protocol),
        WsError::ConnectionClosed | WsError::AlreadyClosed | WsError::Io(_) => None,
        _ => Some(ReceiveError::Protocol),
    }
}

struct Inner<S> {
    ws: Box<WebSocketStream<S>>,
    ka: Keepalive,
    /// The violation the connection is failed for, once there is one.
    violation: Option<CloseCause>,
    /// Data bytes each way, for the access log.
    bytes: access::Bytes,
    /// The first close code sent or received (1005: a close frame without one).
    close: Option<u16>,
}

/// One client WebSocket on a route.
pub(crate) struct WsConn<'a, S> {
    inner: Mutex<Inner<S>>,
    shared: &'a Shared,
    route: &'a RouteRuntime,
    started: Instant,
    client: SocketAddr,
}

impl<'a, S> WsConn<'a, S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Wraps a WebSocket opened on `route` by `client`; keepalive time
    /// starts now.
    pub(crate) fn new(
        ws: Box<WebSocketStream<S>>,
        shared: &'a Shared,
        route: &'a RouteRuntime,
        client: SocketAddr,
    ) -> Self {
        let c = &route.config;
        WsConn {
            inner: Mutex::new(Inner {
                ws,
                ka: Keepalive::new(
                    c.ping_interval,
                    c.ping_timeout,
                    c.idle_timeout,
                    Duration::ZERO,
                ),
                violation: None,
                bytes: access::Bytes::default(),
                close: None,
            }),
            shared,
            route,
            started: Instant::now(),
            client,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        // Nothing panics while holding it; a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// The time since the connection opened.
    pub(crate) fn age(&self) -> Duration {
        self.now()
    }

    /// The next data message from the client. Pings (answered by
    /// tungstenite) and pongs only feed the keepalive. Data messages are
    /// counted in `ucgate_messages_total` / `ucgate_bytes_total`; a
    /// violation in `ucgate_errors_total{side="client"}`. Cancel-safe.
    pub(crate) async fn recv(&self) -> Recv {
        loop {
            let msg = poll_fn(|cx| self.lock().ws.poll_next_unpin(cx)).await;
            let now = self.now();
            let mut inner = self.lock();
            inner.ka.on_frame_in(now);
            let mut data_in = |len: usize| {
                inner.ka.on_data(now);
                inner.bytes.from_client += len as u64;
                self.route.metrics.messages_in.inc();
                self.route.metrics.bytes_in.inc_by(len as u64);
            };
            return match msg {
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Text(t))) => {
                    data_in(t.len());
                    Recv::Text(t)
                }
                Some(Ok(Message::Binary(b))) => {
                    data_in(b.len());
                    Recv::Binary(b)
                }
                Some(Ok(Message::Close(frame))) => {
                    inner
                        .close
                        .get_or_insert(frame.map_or(1005, |f| f.code.into()));
                    Recv::Closed
                }
                Some(Err(e)) => match receive_error(&e) {
                    Some(r) => {
                        let cause = CloseCause::from(r);
                        let route = self.route.config.path.as_str();
                        tracing::debug!(route, error = %e, "WebSocket protocol violation");
                        self.shared
                            .metrics
                            .error(route, cause.side(), cause.label());
                        inner.violation.get_or_insert(cause);
                        Recv::Violation(cause)
                    }
                    None => Recv::Gone,
                },
                None => Recv::Gone,
            };
        }
    }

    /// The violation the connection is being failed for, if any.
    pub(crate) fn violation(&self) -> Option<CloseCause> {
        self.lock().violation
    }

    /// Sends one message and flushes it. Data messages count as activity
    /// for the idle rule. Err: the client cannot be written to any more.
    pub(crate) async fn send(&self, msg: Message) -> Result<(), ()> {
        let data = matches!(msg, Message::Text(_) | Message::Binary(_));
        let len = msg.len() as u64;
        let close = match &msg {
            Message::Close(f) => Some(f.as_ref().map_or(1005, |f| f.code.into())),
            _ => None,
        };
        let mut msg = Some(msg);
        let r = poll_fn(|cx| {
            let mut inner = self.lock();
            let ws = &mut inner.ws;
            if let Some(m) = msg.take() {
                match ws.poll_ready_unpin(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        msg = Some(m);
                        return Poll::Pending;
                    }
                }
                if let Err(e) = ws.start_send_unpin(m) {
                    return Poll::Ready(Err(e));
                }
            }
            ws.poll_flush_unpin(cx)
        })
        .await;
        if r.is_ok() {
            let now = self.now();
            let mut inner = self.lock();
            if data {
                inner.ka.on_data(now);
                inner.bytes.to_client += len;
            }
            if let Some(code) = close {
                inner.close.get_or_insert(code);
            }
        }
        r.map_err(drop)
    }

    /// Data passed that the socket did not see (XMPP server bytes that are
    /// not forwarded, such as whitespace keepalives): activity for the idle
    /// rule.
    pub(crate) fn on_data(&self) {
        let now = self.now();
        self.lock().ka.on_data(now);
    }

    /// When the keepalive next needs [`WsConn::keepalive_due`]: at the
    /// latest one `ping_interval` from now, so that a pong arriving while
    /// this is awaited lets the next ping go out on time.
    pub(crate) fn keepalive_deadline(&self) -> Option<Instant> {
        let next = self.lock().ka.next_deadline().map(|d| self.started + d);
        let interval = self.route.config.ping_interval;
        if interval.is_zero() {
            return next;
        }
        let check = Instant::now() + interval;
        Some(next.map_or(check, |d| d.min(check)))
    }

    /// Carries out the keepalive rules now: sends a ping when one is due;
    /// returns `Idle` or `DeadPeer` when the connection must close.
    pub(crate) async fn keepalive_due(&self) -> Option<CloseCause> {
        let action = self.lock().ka.poll(self.now());
        match action {
            KeepaliveAction::Wait => None,
            KeepaliveAction::Idle => Some(CloseCause::Idle),
            KeepaliveAction::DeadPeer => Some(CloseCause::DeadPeer),
            KeepaliveAction::SendPing => {
                // A failed ping is still "sent": the dead-peer rule ends it.
                let _ = self.send(Message::Ping(Bytes::new())).await;
                let now = self.now();
                self.lock().ka.on_ping_sent(now);
                None
            }
        }
    }

    /// Starts the close handshake: sends our close frame, within
    /// `close_timeout` (a client that reads nothing cannot hold it up). The
    /// caller reads on for the client's reply ([`Recv::Closed`]), at most
    /// `close_timeout` too (see [`WsConn::finish_close`]).
    pub(crate) async fn send_close(&self, close: Close) {
        // Boxed, like `fail`: the timer would otherwise sit in every
        // caller's state machine for the connection's whole life.
        let send = tokio::time::timeout(
            self.route.config.close_timeout,
            self.send_close_frame(close),
        );
        let _ = Box::pin(send).await;
    }

    async fn send_close_frame(&self, close: Close) -> Result<(), ()> {
        self.send(Message::Close(Some(CloseFrame {
            code: CloseCode::from(close.code),
            reason: close.reason.into(),
        })))
        .await
    }

    /// Ends a close handshake: reads on, discarding data, until the
    /// connection ends or `close_timeout` passes. After the client's close
    /// frame this flushes tungstenite's reply; after ours it waits for the
    /// client's.
    pub(crate) async fn finish_close(&self) {
        // Boxed: runs once (see `fail`).
        Box::pin(async {
            let wait = async {
                while !matches!(
                    self.recv().await,
                    Recv::Closed | Recv::Gone | Recv::Violation(_)
                ) {}
                // whatever is still queued (the reply to the client's close)
                let _ = poll_fn(|cx| self.lock().ws.poll_flush_unpin(cx)).await;
            };
            let _ = tokio::time::timeout(self.route.config.close_timeout, wait).await;
        })
        .await
    }

    /// Fails the connection (RFC 6455 §7.1.7): sends the close frame for
    /// `cause`, ends the gateway's sending side (TCP FIN, or END_STREAM on
    /// HTTP/2) and reads and drops whatever the client still sends until it
    /// closes; all within `close_timeout`. No further frame is parsed. The
    /// draining matters: closing a socket with unread bytes makes the
    /// kernel send a reset, which can destroy the close frame in flight.
    pub(crate) async fn fail(&self, cause: CloseCause) {
        // Boxed: it runs once, and the callers' state machines live as long
        // as the connection (idle memory, docs/performance.md).
        Box::pin(async {
            let _ = tokio::time::timeout(self.route.config.close_timeout, async {
                // (an error: already closed by us, or the client is gone;
                // ending and draining then finish at once or harmlessly)
                let _ = self.send_close_frame(cause.into()).await;
                let _ = poll_fn(|cx| Pin::new(self.lock().ws.get_mut()).poll_shutdown(cx)).await;
                let mut buf = BytesMut::with_capacity(2048);
                loop {
                    buf.clear();
                    let n = poll_fn(|cx| {
                        tokio_util::io::poll_read_buf(
                            Pin::new(self.lock().ws.get_mut()),
                            cx,
                            &mut buf,
                        )
                    })
                    .await;
                    if !matches!(n, Ok(k) if k > 0) {
                        break;
                    }
                }
            })
            .await;
        })
        .await
    }

    /// Counts the end in `ucgate_ws_closes_total{reason}`: the violation
    /// the connection was failed for if any, else `end`; writes the access
    /// line. Returns the reason's label.
    pub(crate) fn finish(&self, end: EndReason) -> &'static str {
        let reason = self.violation().map_or(end, EndReason::Gateway).label();
        let (close, bytes) = {
            let inner = self.lock();
            (inner.close, inner.bytes)
        };
        access::websocket(
            self.client,
            &self.route.config.path,
            close,
            reason,
            self.age(),
            bytes,
        );
        self.shared
            .metrics
            .ws_closes
            .get_or_create(&ReasonLabels {
                route: self.route.config.path.clone(),
                reason: reason.to_string(),
            })
            .inc();
        reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::error::CapacityError;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::Data;

    #[test]
    fn tungstenite_errors_map_to_rfc6455_violations() {
        use ProtocolError as P;
        for p in [
            P::UnmaskedFrameFromClient,
            P::NonZeroReservedBits,
            P::UnknownDataFrameType(3),
            P::UnknownControlFrameType(11),
            P::ControlFrameTooBig,
            P::FragmentedControlFrame,
            P::UnexpectedContinueFrame,
            P::ExpectedFragment(Data::Text),
            P::InvalidCloseSequence,
        ] {
            assert_eq!(
                receive_error(&WsError::Protocol(p)),
                Some(ReceiveError::Protocol)
            );
        }
        assert_eq!(
            receive_error(&WsError::Utf8("bad".into())),
            Some(ReceiveError::InvalidUtf8)
        );
        let too_long = CapacityError::MessageTooLong {
            size: 2,
            max_size: 1,
        };
        assert_eq!(
            receive_error(&WsError::Capacity(too_long)),
            Some(ReceiveError::TooBig)
        );
        // the connection ending is not a violation
        for e in [
            WsError::ConnectionClosed,
            WsError::AlreadyClosed,
            WsError::Io(std::io::ErrorKind::ConnectionReset.into()),
            WsError::Protocol(P::ResetWithoutClosingHandshake),
        ] {
            assert_eq!(receive_error(&e), None, "{e}");
        }
    }
}
