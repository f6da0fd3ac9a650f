//! The generic WebSocket ⇄ TCP tunnel adapter (route kind `tcp`).
//!
//! Two directions run concurrently in one task so that neither can block the
//! other (a slow backend never stalls backend → client traffic, and vice
//! versa); each direction holds at most one buffer, so a slow reader on one
//! side slows the other side through TCP flow control and memory stays
//! bounded. Decisions (close codes, keepalive timers) come from
//! `ucgate_proto::{tunnel, keepalive}`; the life of a tunnel is described in
//! docs/lifecycle-websocket.md.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use ucgate_proto::keepalive::{Keepalive, KeepaliveAction};
use ucgate_proto::tunnel::CloseCause;

use crate::backend::BoxIo;

/// Bytes an idle tunnel keeps ready for the backend's next data; a read
/// that fills them is followed by non-waiting reads up to `buffer_size`.
const FIRST_READ: usize = 512;
use crate::metrics::{GaugeGuard, ReasonLabels};
use crate::{RouteRuntime, Shared};

/// How the client → backend direction ended.
#[derive(Debug)]
enum ReaderEnd {
    /// The client sent a close frame (or answered ours); the backend got a FIN.
    ClientClosed,
    /// The connection to the client broke or ended without a close frame.
    ClientGone,
    /// A message or frame over the route's limits.
    TooBig,
    /// A protocol violation by the client.
    Protocol,
    /// Writing to the backend failed.
    BackendWrite,
}

/// How the backend → client direction ended.
#[derive(Debug)]
enum WriterEnd {
    /// We sent a close frame with this cause.
    SentClose(CloseCause),
    /// Writing to the client failed.
    ClientGone,
    /// The backend ended after the client had closed: nothing left to send.
    AfterClientClose,
}

fn close_msg(cause: CloseCause) -> Message {
    let (code, reason) = cause.code();
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    }))
}

/// Runs a tunnel until both sides are done (or the close deadline passes).
pub(crate) async fn run<S>(
    shared: Arc<Shared>,
    route: Arc<RouteRuntime>,
    ws: Box<WebSocketStream<S>>,
    backend: BoxIo,
    peer: SocketAddr,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let cfg = &route.config;
    let m = route.metrics.clone();
    let _active = GaugeGuard::new(m.active.clone());
    let started = Instant::now();
    let now = || started.elapsed();
    // Shared with both directions (same task; atomics keep the futures Send).
    let last_data = AtomicU64::new(0);
    let last_frame_in = AtomicU64::new(0);
    // Set when the client's close frame arrives, so that the backend's
    // answering EOF is not reported as the backend closing first.
    let client_closed = AtomicBool::new(false);
    let (mut sink, mut stream) = ws.split();
    let (mut backend_r, mut backend_w) = tokio::io::split(backend);
    let (ctrl_tx, mut ctrl_rx) = mpsc::channel::<CloseCause>(2);

    // client → backend
    let reader = async {
        loop {
            let msg = stream.next().await;
            last_frame_in.store(now().as_micros() as u64, Ordering::Relaxed);
            let data: Bytes = match msg {
                Some(Ok(Message::Binary(b))) => b,
                Some(Ok(Message::Text(t))) => Bytes::from(t),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Close(_))) => {
                    client_closed.store(true, Ordering::Relaxed);
                    // The client is done sending: pass that on as a FIN after
                    // everything before it, then let tungstenite flush its
                    // close reply.
                    let _ = backend_w.shutdown().await;
                    // Reading on flushes tungstenite's queued close reply
                    // and then reports the end of the connection.
                    let _ = tokio::time::timeout(cfg.close_timeout, async {
                        while let Some(Ok(_)) = stream.next().await {}
                    })
                    .await;
                    return ReaderEnd::ClientClosed;
                }
                Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. })))
                | Some(Err(WsError::Capacity(_))) => return ReaderEnd::TooBig,
                Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)))
                | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed | WsError::Io(_)))
                | None => return ReaderEnd::ClientGone,
                Some(Err(WsError::Protocol(_) | WsError::Utf8(_))) => return ReaderEnd::Protocol,
                Some(Err(_)) => return ReaderEnd::Protocol,
            };
            last_data.store(now().as_micros() as u64, Ordering::Relaxed);
            m.messages_in.inc();
            m.bytes_in.inc_by(data.len() as u64);
            if backend_w.write_all(&data).await.is_err() {
                return ReaderEnd::BackendWrite;
            }
        }
    };

    // backend → client, plus keepalive and closes requested by the coordinator
    let writer = async {
        let mut ka = Keepalive::new(
            cfg.ping_interval,
            cfg.ping_timeout,
            cfg.idle_timeout,
            Duration::ZERO,
        );
        let chunk = cfg.buffer_size.min(cfg.max_message_size).max(1);
        let mut buf = BytesMut::new();
        loop {
            ka.on_data(Duration::from_micros(last_data.load(Ordering::Relaxed)));
            ka.on_frame_in(Duration::from_micros(last_frame_in.load(Ordering::Relaxed)));
            match ka.poll(now()) {
                KeepaliveAction::Wait => {}
                KeepaliveAction::SendPing => {
                    if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                        return WriterEnd::ClientGone;
                    }
                    ka.on_ping_sent(now());
                    continue;
                }
                KeepaliveAction::Idle => {
                    let _ = sink.send(close_msg(CloseCause::Idle)).await;
                    return WriterEnd::SentClose(CloseCause::Idle);
                }
                KeepaliveAction::DeadPeer => {
                    let _ = sink.send(close_msg(CloseCause::DeadPeer)).await;
                    return WriterEnd::SentClose(CloseCause::DeadPeer);
                }
            }
            // Frames from the client arrive on the other direction; waking
            // at least once per ping interval lets an answered ping clear
            // before the next one is due.
            let mut next = ka.next_deadline();
            if !cfg.ping_interval.is_zero() {
                let check = now() + cfg.ping_interval;
                next = Some(next.map_or(check, |d| d.min(check)));
            }
            let deadline = next.map(|d| started + d);
            // An idle tunnel holds only a small buffer: the first read of a
            // burst gets FIRST_READ bytes; if that fills it, more is read
            // without waiting, up to `chunk` (see below).
            buf.reserve(FIRST_READ.min(chunk));
            tokio::select! {
                r = backend_r.read_buf(&mut buf) => match r {
                    Ok(0) if client_closed.load(Ordering::Relaxed) => {
                        // the backend answered the client's close with its own
                        return WriterEnd::AfterClientClose;
                    }
                    Ok(0) => {
                        let _ = sink.send(close_msg(CloseCause::BackendClosed)).await;
                        return WriterEnd::SentClose(CloseCause::BackendClosed);
                    }
                    Ok(n) => {
                        if n == FIRST_READ.min(chunk) {
                            // Possibly more waiting: take what is already
                            // there (never waiting) up to `chunk` bytes.
                            while buf.len() < chunk {
                                buf.reserve(chunk - buf.len());
                                match backend_r.read_buf(&mut buf).now_or_never() {
                                    Some(Ok(k)) if k > 0 => {}
                                    // pending, end of stream or an error:
                                    // the next read reports the last two
                                    _ => break,
                                }
                            }
                        }
                        last_data.store(now().as_micros() as u64, Ordering::Relaxed);
                        m.messages_out.inc();
                        m.bytes_out.inc_by(buf.len() as u64);
                        let data = buf.split().freeze();
                        if sink.send(Message::Binary(data)).await.is_err() {
                            return WriterEnd::ClientGone;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "backend read failed");
                        let _ = sink.send(close_msg(CloseCause::BackendError)).await;
                        return WriterEnd::SentClose(CloseCause::BackendError);
                    }
                },
                c = ctrl_rx.recv() => {
                    let cause = c.unwrap_or(CloseCause::Internal);
                    let _ = sink.send(close_msg(cause)).await;
                    return WriterEnd::SentClose(cause);
                }
                _ = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d.into()).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
            // Keep idle buffers small: drop capacity we no longer need.
            if buf.is_empty() && buf.capacity() > FIRST_READ {
                buf = BytesMut::new();
            }
        }
    };

    tokio::pin!(reader);
    tokio::pin!(writer);
    let mut reader_end: Option<ReaderEnd> = None;
    let mut writer_end: Option<WriterEnd> = None;
    let mut cause: Option<CloseCause> = None;
    let mut close_deadline: Option<tokio::time::Instant> = None;
    let mut shutdown_sent = false;
    let close_timeout = cfg.close_timeout;
    loop {
        if reader_end.is_some() && writer_end.is_some() {
            break;
        }
        tokio::select! {
            r = &mut reader, if reader_end.is_none() => {
                let end_cause = match &r {
                    ReaderEnd::ClientClosed | ReaderEnd::ClientGone => None,
                    ReaderEnd::TooBig => Some(CloseCause::MessageTooBig),
                    ReaderEnd::Protocol => Some(CloseCause::ProtocolError),
                    ReaderEnd::BackendWrite => Some(CloseCause::BackendError),
                };
                match (&r, end_cause) {
                    (_, Some(c)) => {
                        if writer_end.is_none() {
                            let _ = ctrl_tx.try_send(c);
                        }
                        cause.get_or_insert(c);
                        close_deadline.get_or_insert(tokio::time::Instant::now() + close_timeout);
                    }
                    (ReaderEnd::ClientGone, None) if writer_end.is_none() => {
                        // nobody to write to any more
                        writer_end = Some(WriterEnd::ClientGone);
                    }
                    _ => {
                        // The client closed: its close reply is queued; the
                        // backend got a FIN. Give the writer until the close
                        // deadline to notice, then stop.
                        close_deadline.get_or_insert(tokio::time::Instant::now());
                    }
                }
                reader_end = Some(r);
            }
            w = &mut writer, if writer_end.is_none() => {
                if let WriterEnd::SentClose(c) = &w {
                    cause.get_or_insert(*c);
                }
                if matches!(w, WriterEnd::ClientGone) {
                    break;
                }
                close_deadline.get_or_insert(tokio::time::Instant::now() + close_timeout);
                writer_end = Some(w);
            }
            _ = shared.conn_cancel.cancelled(), if !shutdown_sent => {
                shutdown_sent = true;
                if writer_end.is_none() {
                    let _ = ctrl_tx.try_send(CloseCause::Shutdown);
                }
                cause.get_or_insert(CloseCause::Shutdown);
                close_deadline.get_or_insert(tokio::time::Instant::now() + close_timeout);
            }
            _ = async {
                match close_deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => break,
        }
    }
    let label = match (cause, &reader_end) {
        (Some(c), _) => c.label(),
        (None, Some(ReaderEnd::ClientClosed)) => "client_closed",
        (None, _) => "client_gone",
    };
    shared
        .metrics
        .ws_closes
        .get_or_create(&ReasonLabels {
            route: cfg.path.clone(),
            reason: label.to_string(),
        })
        .inc();
    if let Some(c) = cause.filter(|c| c.is_error()) {
        shared.metrics.error(&cfg.path, c.side(), c.label());
    }
    tracing::info!(route = %cfg.path, %peer, end = label, secs = started.elapsed().as_secs_f64(), "WebSocket closed");
}
