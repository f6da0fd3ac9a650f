//! The public listener: accept loop, per-connection task, TLS, HTTP/1.1 and
//! HTTP/2 serving, idle and drain handling.
//!
//! The accept loop only takes a permit, accepts and spawns (backing off on
//! resource errors such as EMFILE); the TLS handshake happens inside the
//! spawned task under `server.handshake_timeout`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use ucgate_proto::proxy_protocol::Header;
use ucgate_proto::side::Side;

use crate::client::{client_addr, IpSlot};
use crate::config::ServerConfig;
use crate::conn::ConnState;
use crate::metrics::{GaugeGuard, ListenerLabels};
use crate::proxy_header::{self, Prefixed};
use crate::Shared;

/// The HTTP builders a listener needs: HTTP/1.1 only (plain, or TLS with
/// ALPN `http/1.1`), HTTP/2 only (TLS with ALPN `h2`), and both with
/// prior-knowledge detection (plain with `server.h2c`). hyper-util's `auto`
/// builder ignores `http1_only`/`http2_only` together with upgrades, so the
/// forced cases use hyper's own builders.
pub(crate) struct HttpBuilders {
    h1: hyper::server::conn::http1::Builder,
    h2: hyper::server::conn::http2::Builder<TokioExecutor>,
    both: auto::Builder<TokioExecutor>,
}

impl HttpBuilders {
    pub(crate) fn new(cfg: &ServerConfig) -> Self {
        let interval = (!cfg.h2_keepalive_interval.is_zero()).then_some(cfg.h2_keepalive_interval);
        let max_buf = cfg.max_header_size.max(8192);
        let mut h1 = hyper::server::conn::http1::Builder::new();
        h1.timer(TokioTimer::new())
            .header_read_timeout(cfg.header_read_timeout)
            .max_buf_size(max_buf)
            .keep_alive(true);
        let mut h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_concurrent_streams(cfg.h2_max_concurrent_streams)
            .max_header_list_size(cfg.max_header_size as u32)
            .max_pending_accept_reset_streams(Some(50))
            .max_local_error_reset_streams(Some(100))
            .keep_alive_interval(interval)
            .keep_alive_timeout(cfg.h2_keepalive_timeout)
            .enable_connect_protocol();
        let mut both = auto::Builder::new(TokioExecutor::new());
        both.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(cfg.header_read_timeout)
            .max_buf_size(max_buf)
            .keep_alive(true);
        both.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(cfg.h2_max_concurrent_streams)
            .max_header_list_size(cfg.max_header_size as u32)
            .max_pending_accept_reset_streams(Some(50))
            .max_local_error_reset_streams(Some(100))
            .keep_alive_interval(interval)
            .keep_alive_timeout(cfg.h2_keepalive_timeout)
            .enable_connect_protocol();
        HttpBuilders { h1, h2, both }
    }
}

/// Which HTTP protocols a connection may speak.
#[derive(Clone, Copy)]
enum Mode {
    H1,
    H2,
    Detect,
}

/// Accepts until `stop` fires.
pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    stop: CancellationToken,
) {
    let labels = ListenerLabels {
        listener: "main".into(),
    };
    let accepted = shared
        .metrics
        .connections_accepted
        .get_or_create_owned(&labels);
    let mut listener = crate::accept::Acceptor::new(listener, &labels.listener, &shared.metrics);
    loop {
        let permit = match shared.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                shared
                    .metrics
                    .error("none", Side::Gateway, "connection_limit");
                tracing::warn!(
                    limit = shared.config.server.max_connections,
                    "connection limit reached; waiting for a free slot"
                );
                tokio::select! {
                    p = shared.permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                    _ = stop.cancelled() => return,
                }
            }
        };
        let Some((stream, peer)) = listener.next(&stop).await else {
            return;
        };
        accepted.inc();
        let peer = client_addr(peer);
        let s = Arc::clone(&shared);
        let server = &shared.config.server;
        if server.proxy_protocol && server.trusted_proxies.contains(peer.ip()) {
            // The client's address (and so its per-address slot) is in the
            // header: read it in the connection's own task.
            shared.tracker.spawn(async move {
                serve_proxied(s, stream, peer, permit).await;
            });
            continue;
        }
        // Before any TLS or HTTP work: one address cannot hold every permit.
        let Some(ip_slot) = per_ip_slot(&shared, peer) else {
            drop(stream);
            continue;
        };
        shared.tracker.spawn(async move {
            serve_conn(s, Prefixed::new(Vec::new(), stream), peer, permit, ip_slot).await;
        });
    }
}

/// A place in `server.max_connections_per_ip` for `client`; `None` (counted
/// and logged) when its address is at the limit.
fn per_ip_slot(shared: &Shared, client: SocketAddr) -> Option<Option<IpSlot>> {
    let slot = shared.per_ip.acquire(client.ip());
    if slot.is_none() {
        shared
            .metrics
            .error("none", Side::Client, "max_connections_per_ip");
        tracing::debug!(peer = %client, limit = shared.config.server.max_connections_per_ip, "connection refused: too many from this address");
    }
    slot
}

/// A connection from a trusted proxy with `server.proxy_protocol`: the
/// PROXY header first (within `server.handshake_timeout`), whose source is
/// the client's address from then on; no valid header, no connection.
async fn serve_proxied(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    proxy: SocketAddr,
    permit: OwnedSemaphorePermit,
) {
    let limit = shared.config.server.handshake_timeout;
    let read = tokio::select! {
        r = tokio::time::timeout(limit, proxy_header::read(&mut stream)) => r,
        _ = shared.conn_cancel.cancelled() => return,
    };
    let (header, rest) = match read {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            shared.metrics.error("none", Side::Client, e.kind());
            if matches!(e, proxy_header::Refusal::Ended) {
                tracing::debug!(%proxy, error = %e, "connection from a trusted proxy refused");
            } else {
                tracing::warn!(%proxy, error = %e, "connection from a trusted proxy refused: `server.proxy_protocol` is on, so it must start with a PROXY protocol v1 or v2 header (HAProxy: `send-proxy` or `send-proxy-v2`)");
            }
            return;
        }
        Err(_) => {
            shared
                .metrics
                .error("none", Side::Client, "proxy_header_timeout");
            tracing::debug!(%proxy, ?limit, "connection from a trusted proxy refused: no PROXY protocol header within server.handshake_timeout");
            return;
        }
    };
    let client = match header {
        Header::Proxied { source, .. } => client_addr(source),
        Header::Local { .. } => proxy,
    };
    tracing::trace!(%proxy, %client, ?header, "PROXY protocol header");
    let Some(ip_slot) = per_ip_slot(&shared, client) else {
        return;
    };
    serve_conn(shared, Prefixed::new(rest, stream), client, permit, ip_slot).await;
}

async fn serve_conn(
    shared: Arc<Shared>,
    stream: Prefixed<TcpStream>,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    ip_slot: Option<IpSlot>,
) {
    let _ = stream.get_ref().set_nodelay(true);
    let active = shared
        .metrics
        .connections_active
        .get_or_create_owned(&ListenerLabels {
            listener: "main".into(),
        });
    let secure = shared.tls.is_some();
    let state = Arc::new(ConnState::new(
        permit,
        ip_slot,
        GaugeGuard::new(active),
        secure,
    ));
    match &shared.tls {
        // Boxed: the handshake's state (rustls) is large and a plain
        // connection should not carry room for it.
        Some(acceptor) => Box::pin(serve_tls(&shared, acceptor, stream, state, peer)).await,
        None => {
            let mode = if shared.config.server.h2c {
                Mode::Detect
            } else {
                Mode::H1
            };
            Box::pin(serve_http(&shared, mode, stream, state, peer)).await;
        }
    }
}

/// TLS handshake (bounded by `server.handshake_timeout`), then HTTP with
/// the protocol ALPN chose.
async fn serve_tls(
    shared: &Arc<Shared>,
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: Prefixed<TcpStream>,
    state: Arc<ConnState>,
    peer: SocketAddr,
) {
    let start = Instant::now();
    let hs = tokio::select! {
        r = tokio::time::timeout(shared.config.server.handshake_timeout, Box::pin(acceptor.accept(stream))) => r,
        _ = shared.conn_cancel.cancelled() => return,
    };
    let tls = match hs {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            shared.metrics.error("none", Side::Client, "tls_handshake");
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            shared
                .metrics
                .error("none", Side::Client, "tls_handshake_timeout");
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    shared
        .metrics
        .tls_handshake_seconds
        .get_or_create(&ListenerLabels {
            listener: "main".into(),
        })
        .observe(start.elapsed().as_secs_f64());
    if tls.get_ref().1.alpn_protocol() == Some(ucgate_proto::acme::ACME_TLS_ALPN) {
        // A TLS-ALPN-01 validation: the handshake was the whole answer.
        tracing::debug!(%peer, "answered an ACME TLS-ALPN-01 validation");
        return;
    }
    let mode = if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
        Mode::H2
    } else {
        Mode::H1
    };
    Box::pin(serve_http(shared, mode, tls, state, peer)).await;
}

async fn serve_http<S>(
    shared: &Arc<Shared>,
    mode: Mode,
    io: S,
    state: Arc<ConnState>,
    peer: SocketAddr,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    let svc_shared = Arc::clone(shared);
    let svc_state = Arc::clone(&state);
    // The request's future is boxed: hyper keeps room for the service's
    // future on every HTTP/1.1 connection from its first byte, whether a
    // request is in flight or not, so an idle keep-alive connection (the
    // second connection of a BOSH client) held the whole router state
    // (about 1 KiB; idle memory, docs/performance.md). The request itself
    // is boxed too: each async step it passes through would otherwise keep
    // a dead copy of it (264 bytes) for as long as the request is held
    // (rustc gives a moved argument no room to share).
    let service = hyper::service::service_fn(move |req| {
        let handling = Box::pin(crate::router::handle(
            Arc::clone(&svc_shared),
            Arc::clone(&svc_state),
            peer,
            Box::new(req),
        ));
        async move { Ok::<_, std::convert::Infallible>(handling.await) }
    });
    // The same drive loop for each connection type (they share no trait
    // with `graceful_shutdown`).
    macro_rules! drive {
        ($conn:expr) => {{
            let mut conn = $conn;
            let idle = shared.config.server.idle_timeout;
            let mut draining = false;
            loop {
                let idle_at = state.last_active_at() + idle;
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
                        }
                        return;
                    }
                    _ = shared.conn_cancel.cancelled(), if !draining => {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    _ = tokio::time::sleep_until(idle_at.into()), if !draining => {
                        let still_idle = state.quiet_for() >= idle;
                        if still_idle && !state.is_busy() {
                            tracing::debug!(%peer, "closing idle HTTP connection");
                            draining = true;
                            conn.as_mut().graceful_shutdown();
                        } else if still_idle {
                            // a request or WebSocket is open; its end touches
                            // the clock again. Look again a full period later.
                            state.touch();
                        }
                    }
                }
            }
        }};
    }
    // Each connection type is boxed on its own: inline, every connection's
    // task would be as large as the largest of them (the HTTP/2 and
    // detecting connections are several KiB), which an idle BOSH client's
    // held request pays for (idle memory, docs/performance.md).
    match mode {
        Mode::H1 => drive!(Box::pin(
            shared.http.h1.serve_connection(io, service).with_upgrades()
        )),
        Mode::H2 => drive!(Box::pin(shared.http.h2.serve_connection(io, service))),
        Mode::Detect => drive!(Box::pin(
            shared.http.both.serve_connection_with_upgrades(io, service)
        )),
    }
}
