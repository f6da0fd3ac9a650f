//! Dialing backends: TCP with a deadline, optional verified TLS; and the
//! stream of every connection the gateway opens (`BackendStream`: a
//! tunnel's backend, an XMPP server), which reads into a buffer only once
//! there is something to read.
//!
//! The target always comes from configuration; nothing a client sends can
//! change host or port.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;

use crate::config::Backend;
use crate::inbound::FIRST_READ;

/// A connection the gateway opened: to a tunnel's backend, or to an XMPP
/// server (`xmpp::server`: plain TCP before STARTTLS or with `tls =
/// "none"`); plain TCP, or TLS over TCP.
pub enum BackendStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS (boxed: its state is large).
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for BackendStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BackendStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            BackendStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for BackendStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            BackendStream::Plain(s) => Pin::new(s).poll_write(cx, data),
            BackendStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BackendStream::Plain(s) => Pin::new(s).poll_flush(cx),
            BackendStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BackendStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            BackendStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl BackendStream {
    /// True over TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, BackendStream::Tls(_))
    }

    /// Reads what the peer sent into `buf`, which is given room only once
    /// there is something to read: over plain TCP the socket's readiness is
    /// awaited first, so an idle connection holds no read buffer at all.
    /// (rustls reads into its own buffer, so a TLS connection reserves
    /// [`FIRST_READ`] bytes before waiting.)
    pub fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        if let BackendStream::Plain(tcp) = self {
            std::task::ready!(tcp.poll_read_ready(cx))?;
        }
        if buf.capacity() - buf.len() < FIRST_READ {
            buf.reserve(FIRST_READ);
        }
        // `poll_read`, not `try_read_buf`: a read shorter than the room given
        // clears the readiness, so the next read waits for the next event
        // instead of trying a `recvfrom` that returns EAGAIN (issue 18: a
        // third of the reads did).
        tokio_util::io::poll_read_buf(Pin::new(self), cx, buf)
    }

    /// Its two directions, each usable on its own.
    pub fn split(self) -> (BackendRead, BackendWrite) {
        match self {
            BackendStream::Plain(tcp) => {
                let (r, w) = tcp.into_split();
                (Either::Left(r), Either::Left(w))
            }
            BackendStream::Tls(tls) => {
                let (r, w) = tokio::io::split(tls);
                (Either::Right(r), Either::Right(w))
            }
        }
    }
}

/// The backend's read direction: plain TCP or TLS (tokio-util's `Either`
/// reads and writes through whichever it holds).
pub type BackendRead = Either<OwnedReadHalf, ReadHalf<Box<TlsStream<TcpStream>>>>;

/// The backend's write direction.
pub type BackendWrite = Either<OwnedWriteHalf, WriteHalf<Box<TlsStream<TcpStream>>>>;

/// Waits until a read of `r` may find bytes, so that room for them is made
/// only then: over plain TCP the socket's readiness (an idle tunnel holds
/// no read buffer); over TLS at once (rustls reads into its own buffer,
/// and a ready socket may hold no whole record).
pub async fn read_ready(r: &BackendRead) -> io::Result<()> {
    match r {
        Either::Left(tcp) => tcp.readable().await,
        Either::Right(_) => Ok(()),
    }
}

/// Why a backend could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The deadline passed.
    #[error("connect to {target} timed out after {after:?}")]
    Timeout {
        /// host:port
        target: String,
        /// The deadline.
        after: Duration,
    },
    /// TCP connect failed (refused, unreachable, DNS…).
    #[error("connect to {target} failed: {source}")]
    Tcp {
        /// host:port
        target: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS handshake or certificate verification failed.
    #[error("{explained}")]
    Tls {
        /// host:port
        target: String,
        /// What went wrong, in words, with the TLS library's error.
        explained: crate::tls_explain::Explained,
    },
}

impl ConnectError {
    /// Metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectError::Timeout { .. } => "connect_timeout",
            ConnectError::Tcp { .. } => "connect",
            ConnectError::Tls { .. } => "tls",
        }
    }

    /// True for a timeout.
    pub fn timed_out(&self) -> bool {
        matches!(self, ConnectError::Timeout { .. })
    }
}

/// A ready-to-use dialer for one backend.
#[derive(Clone)]
pub struct Connector {
    route: String,
    backend: Backend,
    tls: Option<(
        crate::tls::ClientTls,
        tokio_rustls::TlsConnector,
        rustls_pki_types::ServerName<'static>,
    )>,
    timeout: Duration,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Connector {
    /// Prepares TLS settings once, for the route at `route`.
    pub fn new(route: &str, backend: &Backend, timeout: Duration) -> Result<Connector, String> {
        let tls = match &backend.tls {
            Some(t) => {
                let client = crate::tls::ClientTls::new(t.ca_file.as_deref())?;
                let name = rustls_pki_types::ServerName::try_from(t.server_name.clone())
                    .map_err(|e| format!("bad backend TLS name `{}`: {e}", t.server_name))?;
                let connector = client.connector();
                Some((client, connector, name))
            }
            None => None,
        };
        Ok(Connector {
            route: route.to_string(),
            backend: backend.clone(),
            tls,
            timeout,
        })
    }

    /// `host:port` for logs.
    pub fn target(&self) -> String {
        if self.backend.host.contains(':') {
            format!("[{}]:{}", self.backend.host, self.backend.port)
        } else {
            format!("{}:{}", self.backend.host, self.backend.port)
        }
    }

    /// Connects within the deadline. Returns the stream and how long it took.
    pub async fn connect(&self) -> Result<(BackendStream, Duration), ConnectError> {
        let start = Instant::now();
        let target = self.target();
        let fut = async {
            let tcp = TcpStream::connect((self.backend.host.as_str(), self.backend.port))
                .await
                .map_err(|source| ConnectError::Tcp {
                    target: target.clone(),
                    source,
                })?;
            let _ = tcp.set_nodelay(true);
            match &self.tls {
                None => Ok(BackendStream::Plain(tcp)),
                Some((client, connector, name)) => connector
                    .connect(name.clone(), tcp)
                    .await
                    .map(|s| BackendStream::Tls(Box::new(s)))
                    .map_err(|e| ConnectError::Tls {
                        target: target.clone(),
                        explained: client.explain(
                            ucgate_proto::certs::Peer::Backend { route: &self.route },
                            &target,
                            &name.to_str(),
                            &e,
                        ),
                    }),
            }
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(io)) => Ok((io, start.elapsed())),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ConnectError::Timeout {
                target,
                after: self.timeout,
            }),
        }
    }
}
