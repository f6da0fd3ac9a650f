//! Dialing backends: TCP with a deadline, optional verified TLS.
//!
//! The target always comes from configuration; nothing a client sends can
//! change host or port.

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::config::Backend;

/// A byte stream to a backend.
pub trait BackendIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> BackendIo for T {}

/// A boxed backend stream (plain TCP or TLS).
pub type BoxIo = Box<dyn BackendIo>;

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
    pub async fn connect(&self) -> Result<(BoxIo, Duration), ConnectError> {
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
                None => Ok(Box::new(tcp) as BoxIo),
                Some((client, connector, name)) => connector
                    .connect(name.clone(), tcp)
                    .await
                    .map(|s| Box::new(s) as BoxIo)
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
