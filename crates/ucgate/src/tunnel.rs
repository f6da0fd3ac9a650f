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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures_util::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use ucgate_proto::tunnel::{CloseCause, EndReason};

use crate::backend::BackendStream;
use crate::inbound::{Inbound, FIRST_READ};
use crate::metrics::GaugeGuard;
use crate::wakeup::Wakeup;
use crate::ws::{Recv, WsConn};
use crate::{RouteRuntime, Shared};

/// How the client → backend direction ended.
#[derive(Debug)]
enum ReaderEnd {
    /// The client sent a close frame (or answered ours); the backend got a FIN.
    ClientClosed,
    /// The connection to the client broke or ended without a close frame.
    ClientGone,
    /// The client broke the protocol or a limit: the connection is failed.
    Violation(CloseCause),
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

/// A close the coordinator asks the backend → client direction to send;
/// the first one asked is the one sent. Inline in the tunnel's state: a
/// channel allocated its block of slots on every connection (about 450
/// bytes of idle memory, heaptrack).
#[derive(Default)]
struct CloseRequest {
    cause: OnceLock<CloseCause>,
    asked: Notify,
}

impl CloseRequest {
    fn ask(&self, cause: CloseCause) {
        let _ = self.cause.set(cause);
        // (a permit is stored when nobody waits yet: no request is lost)
        self.asked.notify_one();
    }

    async fn asked(&self) -> CloseCause {
        loop {
            if let Some(c) = self.cause.get() {
                return *c;
            }
            self.asked.notified().await;
        }
    }
}

/// Runs a tunnel until both sides are done (or the close deadline passes).
pub(crate) async fn run<S>(
    shared: Arc<Shared>,
    route: Arc<RouteRuntime>,
    ws: Box<WebSocketStream<S>>,
    backend: BackendStream,
    peer: SocketAddr,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let cfg = &route.config;
    let m = &route.metrics;
    let _active = GaugeGuard::new(m.active.clone());
    let ws = WsConn::new(ws, &shared, &route, peer);
    // Set when the client's close frame arrives, so that the backend's
    // answering EOF is not reported as the backend closing first.
    let client_closed = AtomicBool::new(false);
    let (mut backend_r, mut backend_w) = backend.split();
    let close_request = CloseRequest::default();

    // client → backend
    let reader = async {
        loop {
            let data: Bytes = match ws.recv().await {
                Recv::Binary(b) => b,
                Recv::Text(t) => Bytes::from(t),
                Recv::Closed => {
                    client_closed.store(true, Ordering::Relaxed);
                    // The client is done sending: pass that on as a FIN after
                    // everything before it, then flush tungstenite's close
                    // reply.
                    let _ = backend_w.shutdown().await;
                    ws.finish_close().await;
                    return ReaderEnd::ClientClosed;
                }
                Recv::Gone => return ReaderEnd::ClientGone,
                Recv::Violation(c) => return ReaderEnd::Violation(c),
            };
            if backend_w.write_all(&data).await.is_err() {
                return ReaderEnd::BackendWrite;
            }
        }
    };

    // backend → client, plus keepalive and closes requested by the coordinator
    let writer = async {
        let chunk = cfg.buffer_size.min(cfg.max_message_size).max(1);
        let mut inbound = Inbound::default();
        // Armed once per ping interval, not once per message (wakeup.rs);
        // only the timer lives across the loop, not a keepalive future with
        // its ping's send inside (idle memory, docs/performance.md).
        let timer = crate::wakeup::unarmed();
        tokio::pin!(timer);
        let mut wakeup = Wakeup::default();
        loop {
            wakeup.by(timer.as_mut(), ws.keepalive_deadline());
            let first = FIRST_READ.min(chunk);
            let close = tokio::select! {
                // An idle tunnel holds no read buffer: room is made when the
                // backend has sent something (inbound.rs, backend.rs).
                r = async {
                    crate::backend::read_ready(&backend_r).await?;
                    backend_r.read_buf(inbound.first(first)).await
                } => match r {
                    Ok(0) if client_closed.load(Ordering::Relaxed) => {
                        // the backend answered the client's close with its own
                        return WriterEnd::AfterClientClose;
                    }
                    Ok(0) => CloseCause::BackendClosed,
                    Ok(_) => {
                        // possibly more waiting: what is already there, up
                        // to `chunk` bytes, goes in the same message
                        inbound.read_on(chunk, |b| backend_r.read_buf(b).now_or_never());
                        let data = inbound.take_all().freeze();
                        m.messages_out.inc();
                        m.bytes_out.inc_by(data.len() as u64);
                        if ws.send(Message::Binary(data)).await.is_err() {
                            return WriterEnd::ClientGone;
                        }
                        continue;
                    }
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "backend read failed");
                        CloseCause::BackendError
                    }
                },
                c = close_request.asked() => c,
                _ = &mut timer, if wakeup.armed() => {
                    wakeup.fired();
                    match ws.keepalive_due().await {
                        Some(c) => c,
                        None => continue,
                    }
                }
            };
            ws.send_close(close.into()).await;
            return WriterEnd::SentClose(close);
        }
    };

    tokio::pin!(reader);
    tokio::pin!(writer);
    let mut reader_end: Option<ReaderEnd> = None;
    let mut writer_end: Option<WriterEnd> = None;
    let mut cause: Option<CloseCause> = None;
    let mut close_deadline: Option<tokio::time::Instant> = None;
    let mut shutdown_sent = false;
    let ticket = shared.drain.ticket();
    let mut failed: Option<CloseCause> = None;
    let close_timeout = cfg.close_timeout;
    loop {
        if reader_end.is_some() && writer_end.is_some() {
            break;
        }
        tokio::select! {
            r = &mut reader, if reader_end.is_none() => {
                if let ReaderEnd::Violation(c) = r {
                    // failed below, at once: no further frame is read
                    failed = Some(c);
                    reader_end = Some(r);
                    break;
                }
                let end_cause = match &r {
                    ReaderEnd::ClientClosed | ReaderEnd::ClientGone | ReaderEnd::Violation(_) => None,
                    ReaderEnd::BackendWrite => Some(CloseCause::BackendError),
                };
                match (&r, end_cause) {
                    (_, Some(c)) => {
                        if writer_end.is_none() {
                            close_request.ask(c);
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
            _ = shared.drain.turn(&shared.conn_cancel, ticket), if !shutdown_sent => {
                shutdown_sent = true;
                if writer_end.is_none() {
                    close_request.ask(CloseCause::Shutdown);
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
    if let Some(c) = failed {
        ws.fail(c).await;
    }
    let end = match (cause, &reader_end) {
        (Some(c), _) => EndReason::Gateway(c),
        (None, Some(ReaderEnd::ClientClosed)) => EndReason::ClientClosed,
        (None, _) => EndReason::ClientGone,
    };
    // (a violation is counted, and named as the end, by WsConn)
    let label = ws.finish(end);
    if let Some(c) = cause.filter(|c| c.is_error()) {
        shared.metrics.error(&cfg.path, c.side(), c.label());
    }
    tracing::info!(route = %cfg.path, %peer, end = label, secs = ws.age().as_secs_f64(), "WebSocket closed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_close_asked_is_the_one_sent_whenever_it_is_awaited() {
        // asked before anyone waits
        let r = CloseRequest::default();
        r.ask(CloseCause::BackendError);
        r.ask(CloseCause::Shutdown);
        assert_eq!(r.asked().await, CloseCause::BackendError);
        // asked while the writer waits
        let r = CloseRequest::default();
        let (got, ()) = tokio::join!(r.asked(), async {
            tokio::task::yield_now().await;
            r.ask(CloseCause::Shutdown);
        });
        assert_eq!(got, CloseCause::Shutdown);
    }
}
