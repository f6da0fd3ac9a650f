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
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use ucgate_proto::tunnel::CloseCause;
use ucgate_proto::xml::Limits;
use ucgate_proto::xmpp_ws::{Output, ServerTls, Translator, Unavailable};

use crate::config::{XmppDomain, XmppTls};
use crate::metrics::GaugeGuard;
use crate::ws::{Close, Recv, WsConn};
use crate::{RouteRuntime, Shared};

/// The connection to the XMPP server: plain TCP (before STARTTLS, or with
/// `tls = "none"`) or TLS.
enum ServerIo {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for ServerIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ServerIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_write(cx, data),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_flush(cx),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl ServerIo {
    fn is_tls(&self) -> bool {
        matches!(self, ServerIo::Tls(_))
    }

    /// Reads what the server sent into `buf`, which is given room only once
    /// there is something to read: over plain TCP the socket's readiness is
    /// awaited first, so an idle connection holds no read buffer at all.
    /// (rustls reads into its own buffer, so a TLS connection reserves
    /// [`FIRST_READ`] bytes before waiting.)
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<std::io::Result<usize>> {
        match self {
            ServerIo::Plain(tcp) => loop {
                if let Err(e) = std::task::ready!(tcp.poll_read_ready(cx)) {
                    return Poll::Ready(Err(e));
                }
                if buf.capacity() - buf.len() < FIRST_READ {
                    buf.reserve(FIRST_READ);
                }
                match tcp.try_read_buf(buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    r => return Poll::Ready(r),
                }
            },
            ServerIo::Tls(tls) => {
                if buf.capacity() - buf.len() < FIRST_READ {
                    buf.reserve(FIRST_READ);
                }
                tokio_util::io::poll_read_buf(Pin::new(tls.as_mut()), cx, buf)
            }
        }
    }
}

/// Verified TLS settings per configured domain, built once at start.
pub(crate) struct XmppRuntime {
    pub(crate) resolver: super::resolve::Resolver,
    tls: std::collections::HashMap<String, tokio_rustls::TlsConnector>,
}

impl XmppRuntime {
    /// Builds the resolver and one TLS client configuration per domain.
    pub(crate) fn new(cfg: &crate::config::XmppConfig) -> Result<XmppRuntime, String> {
        let mut tls = std::collections::HashMap::new();
        for (name, d) in &cfg.domains {
            if d.tls != XmppTls::None {
                let c = crate::tls::client_config(d.ca_file.as_deref())
                    .map_err(|e| format!("xmpp.domains.\"{name}\": {e}"))?;
                tls.insert(name.clone(), tokio_rustls::TlsConnector::from(c));
            }
        }
        let resolver = super::resolve::Resolver::system(cfg.connect_timeout)?;
        Ok(XmppRuntime { resolver, tls })
    }

    async fn tls_connect(&self, domain: &XmppDomain, tcp: TcpStream) -> Result<ServerIo, String> {
        let connector = self
            .tls
            .get(&domain.name)
            .ok_or_else(|| "no TLS settings for the domain".to_string())?;
        let name = rustls_pki_types::ServerName::try_from(domain.server_name.clone())
            .map_err(|e| format!("bad server name `{}`: {e}", domain.server_name))?;
        connector
            .connect(name, tcp)
            .await
            .map(|s| ServerIo::Tls(Box::new(s)))
            .map_err(|e| format!("TLS with the XMPP server for `{}` failed: {e}", domain.name))
    }
}

/// Resolves and connects to the server for `domain` (direct TLS done here).
async fn connect(
    shared: &Shared,
    x: &XmppRuntime,
    domain: &XmppDomain,
) -> Result<ServerIo, String> {
    let timeout = shared.config.xmpp.connect_timeout;
    let candidates = super::resolve::candidates(domain, &x.resolver)
        .await
        .map_err(|e| format!("resolving `{}`: {e}", domain.name))?;
    let mut last = String::from("no address to try");
    for c in candidates {
        let target = c.target();
        match tokio::time::timeout(timeout, TcpStream::connect((c.host.as_str(), c.port))).await {
            Ok(Ok(tcp)) => {
                let _ = tcp.set_nodelay(true);
                if c.direct_tls {
                    return tokio::time::timeout(timeout, x.tls_connect(domain, tcp))
                        .await
                        .map_err(|_| format!("TLS to {target} timed out"))?;
                }
                return Ok(ServerIo::Plain(tcp));
            }
            Ok(Err(e)) => last = format!("connect to {target}: {e}"),
            Err(_) => last = format!("connect to {target} timed out after {timeout:?}"),
        }
    }
    Err(last)
}

/// Bytes queued for the server above which the client is not read (backpressure).
const MAX_QUEUED: usize = 1 << 20;

/// Bytes read first when the XMPP server sends something (WebSocket and
/// BOSH); a read that fills them is followed by non-waiting reads up to
/// the route's `buffer_size` (8 KiB for BOSH). Nothing is reserved while
/// the connection is idle (plain TCP; TLS keeps this much ready).
pub(crate) const FIRST_READ: usize = 512;

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
    let ws = WsConn::new(ws, &shared, &route);
    let x = &*x;
    let xc = &shared.config.xmpp;
    let limits = Limits {
        max_bytes: xc.max_stanza_size,
        max_depth: xc.max_depth,
        max_attributes: xc.max_attributes,
    };
    let mut t = Translator::new(limits, ServerTls::StartTls);
    let mut server = ServerSide::default();
    let mut buf = BytesMut::new();
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
    let mut end_label: &'static str = "client_gone";
    let mut pending: VecDeque<Output> = VecDeque::new();

    loop {
        // Carry out every pending output; some produce further input.
        while let Some(o) = pending.pop_front() {
            match o {
                Output::ToClient(text) => {
                    m.messages_out.inc();
                    m.bytes_out.inc_by(text.len() as u64);
                    if !client_close_sent && ws.send(Message::Text(text.into())).await.is_err() {
                        client_open = false;
                        pending.extend(t.on_client_gone());
                    }
                }
                Output::CloseClient(code) => {
                    if end_label == "client_gone" {
                        end_label = "closed";
                    }
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
                    let (more, failure) = server.execute(&shared, x, &route, &mut t, o, peer).await;
                    if let Some(label) = failure {
                        end_label = label;
                    }
                    pending.extend(more);
                }
                Output::Log(side, condition, detail) => {
                    shared.metrics.error(rpath, side, condition);
                    if side == "backend" {
                        tracing::warn!(route = rpath, %peer, side, condition, detail = %detail, "XMPP stream problem");
                    } else {
                        tracing::info!(route = rpath, %peer, side, condition, "XMPP stream problem (client)");
                        tracing::debug!(route = rpath, %peer, detail = %detail, "XMPP stream problem detail");
                    }
                    if end_label == "client_gone" {
                        end_label = condition;
                    }
                }
            }
        }
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
        // Idle, a connection holds no buffer for the server's next data:
        // io_event gives `buf` room once there is something to read, and a
        // read that fills it continues without waiting (read_ready).
        tokio::select! {
            _ = shared.conn_cancel.cancelled(), if !shutdown_seen => {
                shutdown_seen = true;
                end_label = "shutdown";
                pending.extend(t.on_shutdown());
                if pending.is_empty() && !client_close_sent {
                    pending.push_back(Output::CloseClient(1001));
                }
            }
            // stop reading the client while much is queued for the server
            msg = ws.recv(), if client_open && server.queued() < MAX_QUEUED => {
                match msg {
                    Recv::Text(text) => {
                        pending.extend(t.on_client_text(text.as_str()));
                    }
                    Recv::Binary(_) => {
                        end_label = "binary_message";
                        pending.extend(t.on_client_binary());
                    }
                    Recv::Closed => {
                        if !client_close_sent {
                            end_label = "client_closed";
                        }
                        // tungstenite queues the close reply; reading on flushes it
                        pending.extend(t.on_client_gone());
                    }
                    Recv::Violation(CloseCause::MessageTooBig) => {
                        // RFC 7395 §3.6: a stream error first, then 1009
                        client_open = false;
                        pending.extend(t.on_client_too_big());
                    }
                    Recv::Violation(c) => {
                        client_open = false;
                        pending.extend(t.on_client_gone());
                        pending.push_back(Output::CloseClient(c.code().0));
                    }
                    Recv::Gone => {
                        client_open = false;
                        pending.extend(t.on_client_gone());
                    }
                }
            }
            ev = server.io_event(&mut buf, true), if server.is_connected() => {
                match ev {
                    IoEvent::Closed => {
                        server.drop_connection();
                        if end_label == "client_gone" && !t.is_closed() {
                            end_label = "server_closed";
                        }
                        pending.extend(t.on_server_eof());
                    }
                    IoEvent::Wrote => {}
                    IoEvent::Read => {
                        server.read_ready(&mut buf, chunk);
                        let data = buf.split();
                        ws.on_data();
                        pending.extend(t.on_server_bytes(&data));
                        if buf.capacity() > FIRST_READ {
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
                let n = tokio::time::Instant::now();
                if close_deadline.is_some_and(|d| n >= d) {
                    if t.is_closing() {
                        // the server did not answer the client's <close/>
                        pending.extend(t.on_close_timeout());
                    } else {
                        break;
                    }
                }
                if negotiation_deadline.is_some_and(|d| n >= d) {
                    negotiation_deadline = None;
                    end_label = "remote_connection_failed";
                    pending.extend(t.on_server_unavailable(Unavailable::RemoteConnectionFailed, "the XMPP server did not complete the stream negotiation in time"));
                }
                if !client_close_sent {
                    match ws.keepalive_due().await {
                        Some(CloseCause::Idle) => {
                            end_label = "idle";
                            pending.extend(t.on_idle());
                        }
                        Some(_) => {
                            end_label = "dead_peer";
                            pending.extend(t.on_client_dead());
                        }
                        None => {}
                    }
                }
            }
        }
    }
    let end = ws.finish(end_label);
    tracing::info!(route = rpath, %peer, end, domain = %t.domain(), secs = ws.age().as_secs_f64(), "XMPP WebSocket closed");
}

/// The connection to the XMPP server and the domain it serves, driven by
/// the translator's server-side outputs. Shared by the WebSocket adapter
/// and the BOSH session actor.
///
/// Writes are queued and carried out by [`ServerSide::io_event`] together
/// with reads, so the gateway keeps reading the server while a large write
/// is pending: a server that blocks on writing to us while we block on
/// writing to it would otherwise deadlock both (seen with a 125 KB BOSH
/// request while the server echoed stanzas back).
#[derive(Default)]
pub(crate) struct ServerSide {
    io: Option<ServerIo>,
    out: VecDeque<Bytes>,
    out_bytes: usize,
    needs_flush: bool,
    domain: Option<XmppDomain>,
}

/// What [`ServerSide::io_event`] saw.
pub(crate) enum IoEvent {
    /// Bytes were read into the buffer (queued bytes may have been written
    /// in the same turn).
    Read,
    /// Queued bytes were written.
    Wrote,
    /// The server closed the connection, or reading/writing failed.
    Closed,
}

impl ServerSide {
    fn set_io(&mut self, io: ServerIo) {
        self.io = Some(io);
    }

    fn take_io(&mut self) -> Option<ServerIo> {
        self.io.take()
    }

    /// True while a connection is open.
    pub(crate) fn is_connected(&self) -> bool {
        self.io.is_some()
    }

    /// Bytes queued for the server and not yet written.
    pub(crate) fn queued(&self) -> usize {
        self.out_bytes
    }

    /// True when there is something to write or flush.
    pub(crate) fn has_output(&self) -> bool {
        self.is_connected() && (!self.out.is_empty() || self.needs_flush)
    }

    /// Forgets the connection (after EOF or an error).
    pub(crate) fn drop_connection(&mut self) {
        self.io = None;
        self.out.clear();
        self.out_bytes = 0;
        self.needs_flush = false;
    }

    /// Reads (when `can_read`) and writes queued bytes, whichever is ready
    /// first. Pending forever when there is nothing to do. `buf` gets room
    /// only when the server has sent something (see
    /// `ServerIo::poll_read_into`).
    pub(crate) async fn io_event(&mut self, buf: &mut BytesMut, can_read: bool) -> IoEvent {
        let ServerSide {
            io,
            out,
            out_bytes,
            needs_flush,
            ..
        } = self;
        let Some(io) = io.as_mut() else {
            return std::future::pending().await;
        };
        std::future::poll_fn(|cx| {
            // Writes first, then the read, in every poll: neither direction
            // can starve the other (a server that keeps sending must not
            // stop our writes to it, nor the reverse).
            // Write as much of the queue as the socket takes now, then
            // flush (TLS only: a TCP socket has nothing to flush).
            let mut wrote = false;
            while let Some(front) = out.front_mut() {
                match Pin::new(&mut *io).poll_write(cx, front) {
                    Poll::Ready(Ok(n)) => {
                        *out_bytes -= n;
                        if n >= front.len() {
                            out.pop_front();
                        } else {
                            let _ = front.split_to(n);
                        }
                        *needs_flush = io.is_tls();
                        wrote = true;
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(IoEvent::Closed),
                    Poll::Pending => break,
                }
            }
            if out.is_empty() && *needs_flush {
                match Pin::new(&mut *io).poll_flush(cx) {
                    Poll::Ready(Ok(())) => {
                        *needs_flush = false;
                        wrote = true;
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(IoEvent::Closed),
                    Poll::Pending => {}
                }
            }
            if can_read {
                match io.poll_read_into(cx, buf) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                        return Poll::Ready(IoEvent::Closed)
                    }
                    // (anything written above is done; callers need only
                    // hear about the read)
                    Poll::Ready(Ok(_)) => return Poll::Ready(IoEvent::Read),
                    Poll::Pending => {}
                }
            }
            if wrote {
                Poll::Ready(IoEvent::Wrote)
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// After a read that filled `buf`, reads on while bytes are already
    /// there (never waiting), up to `max` bytes in `buf`. An end of stream
    /// or error met here is reported by the next [`ServerSide::io_event`].
    pub(crate) fn read_ready(&mut self, buf: &mut BytesMut, max: usize) {
        let Some(io) = self.io.as_mut() else { return };
        while buf.len() == buf.capacity() && buf.len() < max {
            buf.reserve(max - buf.len());
            let read = std::future::poll_fn(|cx| io.poll_read_into(cx, buf)).now_or_never();
            match read {
                Some(Ok(k)) if k > 0 => {}
                _ => break,
            }
        }
    }

    /// Writes everything queued (used before STARTTLS and before closing).
    async fn flush_all(&mut self) -> std::io::Result<()> {
        if let Some(io) = self.io.as_mut() {
            while let Some(b) = self.out.pop_front() {
                io.write_all(&b).await?;
            }
            self.out_bytes = 0;
            io.flush().await?;
            self.needs_flush = false;
        }
        Ok(())
    }

    /// Carries out one of `Connect`, `ToServer`, `StartTls`, `CloseServer`.
    /// Returns the translator's outputs that follow from it and, when the
    /// server could not be used, a label for the connection's end.
    ///
    /// `ToServer`, once per stanza, is only queued; the others (connecting,
    /// TLS, closing) run boxed, so that the callers' state machines, which
    /// live as long as the session, do not hold room for them.
    pub(crate) async fn execute(
        &mut self,
        shared: &Shared,
        x: &XmppRuntime,
        route: &RouteRuntime,
        t: &mut Translator,
        o: Output,
        peer: SocketAddr,
    ) -> (Vec<Output>, Option<&'static str>) {
        match o {
            Output::ToServer(bytes) => {
                self.queue(bytes);
                (Vec::new(), None)
            }
            o => Box::pin(self.execute_other(shared, x, route, t, o, peer)).await,
        }
    }

    /// Sends bytes to the server: over plain TCP with nothing queued before
    /// them, written at once as far as the socket takes them (one system
    /// call, no extra turn of the caller's loop); the rest is queued for
    /// [`ServerSide::io_event`]. Dropped when not connected.
    fn queue(&mut self, bytes: Vec<u8>) {
        let Some(io) = self.io.as_mut() else { return };
        let mut start = 0;
        if let (ServerIo::Plain(tcp), true) = (&*io, self.out.is_empty()) {
            // On WouldBlock, or an error (which the next write in io_event
            // reports), everything is queued.
            if let Ok(n) = tcp.try_write(&bytes) {
                start = n;
            }
        }
        if start < bytes.len() {
            let rest = Bytes::from(bytes).slice(start..);
            self.out_bytes += rest.len();
            self.out.push_back(rest);
        }
    }

    async fn execute_other(
        &mut self,
        shared: &Shared,
        x: &XmppRuntime,
        route: &RouteRuntime,
        t: &mut Translator,
        o: Output,
        peer: SocketAddr,
    ) -> (Vec<Output>, Option<&'static str>) {
        let rpath = route.config.path.as_str();
        let xc = &shared.config.xmpp;
        match o {
            Output::Connect { domain: d } => {
                let Some(dom) = xc.domains.get(&d).cloned() else {
                    return (
                        t.on_server_unavailable(
                            Unavailable::HostUnknown,
                            &format!("`{d}` is not a configured XMPP domain"),
                        ),
                        Some("host_unknown"),
                    );
                };
                let t0 = Instant::now();
                // Boxed, as is the TLS handshake below: these futures (DNS,
                // TCP, TLS) are large and run once, while the caller's
                // state machine holds room for them for the session's whole
                // life (idle memory, docs/performance.md).
                match Box::pin(connect(shared, x, &dom)).await {
                    Ok(io) => {
                        route.connect_seconds.observe(t0.elapsed().as_secs_f64());
                        self.set_io(io);
                        t.set_server_tls(if dom.tls == XmppTls::StartTls {
                            ServerTls::StartTls
                        } else {
                            ServerTls::AlreadySecureOrNone
                        });
                        self.domain = Some(dom);
                        (t.on_server_connected(), None)
                    }
                    Err(e) => {
                        tracing::warn!(route = rpath, %peer, domain = %dom.name, error = %e, "cannot reach the XMPP server");
                        (
                            t.on_server_unavailable(Unavailable::RemoteConnectionFailed, &e),
                            Some("remote_connection_failed"),
                        )
                    }
                }
            }
            Output::ToServer(bytes) => {
                self.queue(bytes);
                (Vec::new(), None)
            }
            Output::StartTls => {
                let Some(dom) = self.domain.clone() else {
                    return (Vec::new(), None);
                };
                if self.flush_all().await.is_err() {
                    self.drop_connection();
                    return (t.on_server_eof(), Some("server_closed"));
                }
                match self.take_io() {
                    Some(ServerIo::Plain(tcp)) => match Box::pin(x.tls_connect(&dom, tcp)).await {
                        Ok(io) => {
                            self.set_io(io);
                            (t.on_tls_ready(), None)
                        }
                        Err(e) => {
                            shared.metrics.error(rpath, "backend", "tls");
                            tracing::warn!(route = rpath, %peer, domain = %dom.name, error = %e, "STARTTLS with the XMPP server failed");
                            (
                                t.on_server_unavailable(Unavailable::RemoteConnectionFailed, &e),
                                Some("remote_connection_failed"),
                            )
                        }
                    },
                    Some(other) => {
                        self.set_io(other);
                        (
                            t.on_server_unavailable(
                                Unavailable::RemoteConnectionFailed,
                                "STARTTLS on a TLS connection",
                            ),
                            Some("remote_connection_failed"),
                        )
                    }
                    None => (Vec::new(), None),
                }
            }
            Output::CloseServer => {
                let _ = tokio::time::timeout(Duration::from_secs(1), self.flush_all()).await;
                if let Some(mut s) = self.take_io() {
                    let _ = tokio::time::timeout(Duration::from_secs(1), s.shutdown()).await;
                }
                self.drop_connection();
                (Vec::new(), None)
            }
            other => (vec![other], None),
        }
    }
}
