//! The connection to an XMPP server, shared by the WebSocket adapter and
//! the BOSH session actor: resolving and connecting per domain, direct TLS
//! and STARTTLS, writes queued and carried out alongside reads, and reads
//! that hold no buffer while the server is quiet. It carries out the
//! translator's server-side outputs and reports what became of them as a
//! typed [`ServerEvent`]; it never looks at the bytes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use ucgate_proto::certs::Peer;
use ucgate_proto::side::Side;
use ucgate_proto::xmpp_ws::{Output, ServerEvent, ServerTls, Unavailable};

use crate::backend::BackendStream;
use crate::config::{XmppDomain, XmppTls};
use crate::inbound::Inbound;
use crate::status::TargetKind;
use crate::{RouteRuntime, Shared};

/// Verified TLS settings per configured domain, built once at start.
pub(crate) struct XmppRuntime {
    /// The `[xmpp]` settings of the sessions this runtime serves (a reload
    /// builds a new runtime; open sessions keep theirs).
    pub(crate) config: crate::config::XmppConfig,
    pub(crate) resolver: super::resolve::Resolver,
    tls: std::collections::HashMap<String, crate::tls::ClientTls>,
}

impl XmppRuntime {
    /// Builds the resolver and one TLS client configuration per domain.
    pub(crate) fn new(cfg: &crate::config::XmppConfig) -> Result<XmppRuntime, String> {
        let mut tls = std::collections::HashMap::new();
        for (name, d) in &cfg.domains {
            if d.tls != XmppTls::None {
                let c = crate::tls::ClientTls::new(d.ca_file.as_deref())
                    .map_err(|e| format!("xmpp.domains.\"{name}\": {e}"))?;
                tls.insert(name.clone(), c);
            }
        }
        let resolver = super::resolve::Resolver::system(cfg.connect_timeout)?;
        Ok(XmppRuntime {
            config: cfg.clone(),
            resolver,
            tls,
        })
    }

    /// The TLS handshake with the server for `domain` at `addr` (for the
    /// log); a failure is explained in words (`tls_explain.rs`).
    async fn tls_connect(
        &self,
        domain: &XmppDomain,
        addr: &str,
        tcp: TcpStream,
    ) -> Result<BackendStream, String> {
        let client = self
            .tls
            .get(&domain.name)
            .ok_or_else(|| "no TLS settings for the domain".to_string())?;
        let name = rustls_pki_types::ServerName::try_from(domain.server_name.clone())
            .map_err(|e| format!("bad server name `{}`: {e}", domain.server_name))?;
        match client.connector().connect(name, tcp).await {
            Ok(s) => Ok(BackendStream::Tls(Box::new(s))),
            Err(e) => {
                let x = client.explain(
                    Peer::XmppServer {
                        domain: &domain.name,
                    },
                    addr,
                    &domain.server_name,
                    &e,
                );
                tracing::warn!(
                    domain = %domain.name,
                    server = addr,
                    expected = %domain.server_name,
                    error = %x.detail,
                    "{x}"
                );
                Err(x.message)
            }
        }
    }
}

/// Resolves and connects to the server for `domain` (direct TLS done here).
async fn connect(x: &XmppRuntime, domain: &XmppDomain) -> Result<BackendStream, String> {
    let timeout = x.config.connect_timeout;
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
                    return tokio::time::timeout(timeout, x.tls_connect(domain, &target, tcp))
                        .await
                        .map_err(|_| format!("TLS to {target} timed out"))?;
                }
                return Ok(BackendStream::Plain(tcp));
            }
            Ok(Err(e)) => last = format!("connect to {target}: {e}"),
            Err(_) => last = format!("connect to {target} timed out after {timeout:?}"),
        }
    }
    Err(last)
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
    io: Option<BackendStream>,
    out: VecDeque<Bytes>,
    out_bytes: usize,
    needs_flush: bool,
    domain: Option<XmppDomain>,
    inbound: Inbound,
}

/// What [`ServerSide::io_event`] saw.
pub(crate) enum IoEvent {
    /// Bytes were read: [`ServerSide::take_read`] has them (queued bytes
    /// may have been written in the same turn).
    Read,
    /// Queued bytes were written.
    Wrote,
    /// The server closed the connection, or reading/writing failed.
    Closed,
}

impl ServerSide {
    fn set_io(&mut self, io: BackendStream) {
        self.io = Some(io);
    }

    fn take_io(&mut self) -> Option<BackendStream> {
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
    /// first. Pending forever when there is nothing to do. The read buffer
    /// gets room only when the server has sent something (see
    /// `BackendStream::poll_read_into`).
    pub(crate) async fn io_event(&mut self, can_read: bool) -> IoEvent {
        let ServerSide {
            io,
            out,
            out_bytes,
            needs_flush,
            inbound,
            ..
        } = self;
        let buf = inbound.buf();
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

    /// What [`IoEvent::Read`] announced: after a read that filled the
    /// buffer, what is already there too (never waiting), up to `max`
    /// bytes. An end of stream or error met here is reported by the next
    /// [`ServerSide::io_event`].
    pub(crate) fn take_read(&mut self, max: usize) -> BytesMut {
        if let Some(io) = self.io.as_mut() {
            self.inbound.read_on(max, |buf| {
                std::future::poll_fn(|cx| io.poll_read_into(cx, buf)).now_or_never()
            });
        }
        self.inbound.take_all()
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
    /// Returns what became of it, for the translator, and, when the server
    /// could not be used, a label for the connection's end.
    ///
    /// `ToServer`, once per stanza, is only queued; the others (connecting,
    /// TLS, closing) run boxed, so that the callers' state machines, which
    /// live as long as the session, do not hold room for them.
    pub(crate) async fn execute(
        &mut self,
        shared: &Shared,
        x: &XmppRuntime,
        route: &RouteRuntime,
        o: Output,
        peer: SocketAddr,
    ) -> (Option<ServerEvent>, Option<&'static str>) {
        match o {
            Output::ToServer(bytes) => {
                self.queue(bytes);
                (None, None)
            }
            o => Box::pin(self.execute_other(shared, x, route, o, peer)).await,
        }
    }

    /// Sends bytes to the server: over plain TCP with nothing queued before
    /// them, written at once as far as the socket takes them (one system
    /// call, no extra turn of the caller's loop); the rest is queued for
    /// [`ServerSide::io_event`]. Dropped when not connected.
    fn queue(&mut self, bytes: Vec<u8>) {
        let Some(io) = self.io.as_mut() else { return };
        let mut start = 0;
        if let (BackendStream::Plain(tcp), true) = (&*io, self.out.is_empty()) {
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
        o: Output,
        peer: SocketAddr,
    ) -> (Option<ServerEvent>, Option<&'static str>) {
        let unavailable = |why, detail: String| Some(ServerEvent::Unavailable(why, detail));
        let rpath = route.config.path.as_str();
        let xc = &x.config;
        match o {
            Output::Connect { domain: d } => {
                let Some(dom) = xc.domains.get(&d).cloned() else {
                    return (
                        unavailable(
                            Unavailable::HostUnknown,
                            format!("`{d}` is not a configured XMPP domain"),
                        ),
                        Some("host_unknown"),
                    );
                };
                let t0 = Instant::now();
                // Boxed, as is the TLS handshake below: these futures (DNS,
                // TCP, TLS) are large and run once, while the caller's
                // state machine holds room for them for the session's whole
                // life (idle memory, docs/performance.md).
                match Box::pin(connect(x, &dom)).await {
                    Ok(io) => {
                        route.connect_seconds.observe(t0.elapsed().as_secs_f64());
                        shared.status.connected(
                            TargetKind::XmppServer,
                            &dom.name,
                            t0.elapsed(),
                            None,
                        );
                        self.set_io(io);
                        let tls = if dom.tls == XmppTls::StartTls {
                            ServerTls::StartTls
                        } else {
                            ServerTls::AlreadySecureOrNone
                        };
                        self.domain = Some(dom);
                        (Some(ServerEvent::Connected(tls)), None)
                    }
                    Err(e) => {
                        shared.status.connected(
                            TargetKind::XmppServer,
                            &dom.name,
                            t0.elapsed(),
                            Some(e.clone()),
                        );
                        tracing::warn!(route = rpath, %peer, domain = %dom.name, error = %e, "cannot reach the XMPP server");
                        (
                            unavailable(Unavailable::RemoteConnectionFailed, e),
                            Some("remote_connection_failed"),
                        )
                    }
                }
            }
            Output::ToServer(bytes) => {
                self.queue(bytes);
                (None, None)
            }
            Output::StartTls => {
                let Some(dom) = self.domain.clone() else {
                    return (None, None);
                };
                if self.flush_all().await.is_err() {
                    self.drop_connection();
                    return (Some(ServerEvent::Eof), Some("server_closed"));
                }
                match self.take_io() {
                    Some(BackendStream::Plain(tcp)) => match Box::pin(x.tls_connect(
                        &dom,
                        &tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default(),
                        tcp,
                    ))
                    .await
                    {
                        Ok(io) => {
                            self.set_io(io);
                            (Some(ServerEvent::TlsReady), None)
                        }
                        Err(e) => {
                            shared.metrics.error(rpath, Side::Backend, "tls");
                            tracing::warn!(route = rpath, %peer, domain = %dom.name, error = %e, "STARTTLS with the XMPP server failed");
                            (
                                unavailable(Unavailable::RemoteConnectionFailed, e),
                                Some("remote_connection_failed"),
                            )
                        }
                    },
                    Some(other) => {
                        self.set_io(other);
                        (
                            unavailable(
                                Unavailable::RemoteConnectionFailed,
                                "STARTTLS on a TLS connection".into(),
                            ),
                            Some("remote_connection_failed"),
                        )
                    }
                    None => (None, None),
                }
            }
            Output::CloseServer => {
                let _ = tokio::time::timeout(Duration::from_secs(1), self.flush_all()).await;
                if let Some(mut s) = self.take_io() {
                    let _ = tokio::time::timeout(Duration::from_secs(1), s.shutdown()).await;
                }
                self.drop_connection();
                (None, None)
            }
            // ToClient, CloseClient, Log: not the server's
            _ => (None, None),
        }
    }
}
