//! Dialing the gateway: proxies (NO_PROXY, WSS_PROXY/WS_PROXY, HTTPS_PROXY,
//! HTTP_PROXY), HTTP CONNECT, TLS, with timings.
//!
//! This is the one place every client in the crate gets its byte stream
//! from, so every mode honours the proxy variables the same way.
//!
//! (First version: direct TCP and TLS only; proxy support lands on top of
//! the same API.)

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use url::Url;

/// Any byte stream a client can speak over (TCP, TLS, TLS inside a tunnel).
pub trait AsyncReadWrite: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncReadWrite for T {}

/// A boxed byte stream.
pub type BoxStream = Box<dyn AsyncReadWrite>;

/// TLS options shared by every subcommand.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TlsOptions {
    /// PEM file with the CA certificate(s) to trust instead of the system roots.
    #[arg(long, value_name = "FILE", global = true)]
    pub ca_file: Option<PathBuf>,
}

/// How long each step of a connection took.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Timings {
    pub dns: Option<Duration>,
    pub tcp: Option<Duration>,
    pub proxy_connect: Option<Duration>,
    pub tls: Option<Duration>,
}

/// What TLS was negotiated with the gateway.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TlsInfo {
    pub version: String,
    pub cipher_suite: String,
    pub alpn: Option<String>,
    /// Subject of each certificate of the chain, leaf first (DER length when
    /// the subject cannot be shown).
    pub chain: Vec<String>,
}

/// An open stream to the gateway and how it was opened.
pub struct Connection {
    pub stream: BoxStream,
    pub timings: Timings,
    pub tls: Option<TlsInfo>,
    /// The proxy used, if any (`http://host:port`, without credentials).
    pub proxy: Option<String>,
}

/// Opens streams to URLs.
#[derive(Clone)]
pub struct Dialer {
    tls: Arc<rustls::ClientConfig>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Dialer {
    /// A dialer with the given TLS options and the proxy settings from the
    /// environment.
    pub fn from_env(tls: &TlsOptions) -> anyhow::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        match &tls.ca_file {
            Some(p) => {
                use rustls_pki_types::pem::PemObject;
                let certs = rustls_pki_types::CertificateDer::pem_file_iter(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                for c in certs {
                    roots.add(c.with_context(|| format!("reading {}", p.display()))?)?;
                }
            }
            None => {
                for c in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(c);
                }
            }
        }
        let cfg = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Dialer { tls: Arc::new(cfg) })
    }

    /// Opens a stream to the host and port of `url` (ws, wss, http, https);
    /// TLS for wss/https. HTTP/1.1 is offered by ALPN.
    pub async fn connect(&self, url: &Url) -> anyhow::Result<Connection> {
        self.connect_from(url, None).await
    }

    /// As [`Dialer::connect`], with the client socket bound to `local`
    /// (port chosen by the system) when given: lets a load test spread
    /// many connections over several loopback source addresses.
    pub async fn connect_from(
        &self,
        url: &Url,
        local: Option<std::net::IpAddr>,
    ) -> anyhow::Result<Connection> {
        let secure = match url.scheme() {
            "ws" | "http" => false,
            "wss" | "https" => true,
            other => bail!("unsupported URL scheme {other:?} (want ws, wss, http or https)"),
        };
        let host = url
            .host_str()
            .ok_or_else(|| anyhow!("URL {url} has no host"))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| anyhow!("URL {url} has no port"))?;
        let mut timings = Timings::default();
        let t = Instant::now();
        let addrs: Vec<_> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .with_context(|| format!("resolving {host}"))?
            .collect();
        timings.dns = Some(t.elapsed());
        let t = Instant::now();
        let mut last = None;
        let mut tcp = None;
        for a in addrs {
            match tcp_connect(a, local).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(anyhow!("connecting to {a}: {e}")),
            }
        }
        let tcp = match tcp {
            Some(s) => s,
            None => return Err(last.unwrap_or_else(|| anyhow!("{host} has no address"))),
        };
        tcp.set_nodelay(true)?;
        timings.tcp = Some(t.elapsed());
        if !secure {
            return Ok(Connection {
                stream: Box::new(tcp),
                timings,
                tls: None,
                proxy: None,
            });
        }
        let (stream, info, took) = self.tls_over(Box::new(tcp), host).await?;
        timings.tls = Some(took);
        Ok(Connection {
            stream,
            timings,
            tls: Some(info),
            proxy: None,
        })
    }

    async fn tls_over(
        &self,
        inner: BoxStream,
        host: &str,
    ) -> anyhow::Result<(BoxStream, TlsInfo, Duration)> {
        let mut cfg = (*self.tls).clone();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let name =
            rustls_pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                .with_context(|| format!("{host} is not a valid TLS server name"))?;
        let t = Instant::now();
        let s = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(name, inner)
            .await
            .with_context(|| format!("TLS handshake with {host}"))?;
        let took = t.elapsed();
        let (_, conn) = s.get_ref();
        let info = TlsInfo {
            version: conn
                .protocol_version()
                .map(|v| format!("{v:?}"))
                .unwrap_or_default(),
            cipher_suite: conn
                .negotiated_cipher_suite()
                .map(|c| format!("{:?}", c.suite()))
                .unwrap_or_default(),
            alpn: conn
                .alpn_protocol()
                .map(|a| String::from_utf8_lossy(a).into_owned()),
            chain: conn
                .peer_certificates()
                .unwrap_or_default()
                .iter()
                .map(|c| format!("certificate of {} bytes", c.len()))
                .collect(),
        };
        Ok((Box::new(s), info, took))
    }
}

async fn tcp_connect(
    to: std::net::SocketAddr,
    local: Option<std::net::IpAddr>,
) -> std::io::Result<TcpStream> {
    let Some(ip) = local else {
        return TcpStream::connect(to).await;
    };
    let sock = if to.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    sock.bind(std::net::SocketAddr::new(ip, 0))?;
    sock.connect(to).await
}

/// The WebSocket client handshake over a [`Connection`], offering
/// `subprotocol` when given. Returns the socket and the subprotocol the
/// server chose.
pub async fn websocket(
    conn: BoxStream,
    url: &Url,
    subprotocol: Option<&str>,
) -> anyhow::Result<(
    tokio_tungstenite::WebSocketStream<BoxStream>,
    Option<String>,
)> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut ws_url = url.clone();
    match url.scheme() {
        "http" => ws_url.set_scheme("ws").ok(),
        "https" => ws_url.set_scheme("wss").ok(),
        _ => None,
    };
    let mut req = ws_url.as_str().into_client_request()?;
    if let Some(p) = subprotocol {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse()?);
    }
    let (ws, resp) = tokio_tungstenite::client_async(req, conn)
        .await
        .with_context(|| format!("WebSocket handshake with {url}"))?;
    let chosen = resp
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok((ws, chosen))
}
