//! Dialing the gateway: proxies (`NO_PROXY`, `WSS_PROXY`/`WS_PROXY`,
//! `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, or `--proxy`/`--no-proxy`),
//! the HTTP CONNECT tunnel, TLS (also TLS to an `https://` proxy, and TLS to
//! the gateway inside that), with timings.
//!
//! This is the one place every client in the crate gets its byte stream
//! from, so every mode honours the proxy variables the same way. The rules
//! are in [`proxy`] and written down in `docs/probe.md`.

mod cert;
pub mod proxy;
mod stream;
mod upgrade;

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpStream;
use url::Url;

pub use cert::{cert_info, CertInfo, TlsInfo};
pub use proxy::{Direct, ProxyUrl, Route};
pub use stream::BoxStream;
#[cfg(test)]
use upgrade::body_summary;
pub use upgrade::{websocket, websocket_handshake, HandshakeError};

/// TLS options shared by every subcommand.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TlsOptions {
    /// PEM file with the CA certificate(s) to trust instead of the system
    /// roots (for the gateway and for an https:// proxy).
    #[arg(long, value_name = "FILE", global = true)]
    pub ca_file: Option<PathBuf>,
}

/// Proxy and connection-timeout options. Without them the proxy
/// environment variables decide (see `docs/probe.md`); pass them to
/// [`Dialer::new`].
#[derive(clap::Args, Clone, Debug)]
pub struct ProxyOptions {
    /// Use this proxy for every connection, ignoring the proxy variables and
    /// NO_PROXY: http://[user:pass@]host[:port] or https://… (TLS to the
    /// proxy). Always an HTTP CONNECT tunnel.
    #[arg(long, value_name = "URL", global = true, conflicts_with = "no_proxy")]
    pub proxy: Option<String>,
    /// Connect directly, ignoring the proxy variables.
    #[arg(long, global = true)]
    pub no_proxy: bool,
    /// Time limit for each step of opening a connection (DNS, TCP, proxy
    /// TLS, CONNECT, TLS) and, in probe, for each exchange: `10s`, `500ms`,
    /// or seconds (`2.5`).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_timeout, global = true)]
    pub connect_timeout: Duration,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            proxy: None,
            no_proxy: false,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// `10s`, `250ms`, `1m`, or a plain number of seconds (`2.5`); more than 0.
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = match s.trim().parse::<f64>() {
        Ok(secs) if (0.0..1e9).contains(&secs) => Duration::from_secs_f64(secs),
        Ok(_) => return Err(format!("{s:?} is not a usable number of seconds")),
        Err(_) => ucgate_proto::units::parse_duration(s.trim()).map_err(|e| e.to_string())?,
    };
    if d.is_zero() {
        return Err("the timeout must be more than 0".into());
    }
    Ok(d)
}

/// How long each step of a connection took. With a proxy, `dns` and `tcp`
/// are for the proxy (the proxy resolves the gateway's name), `proxy_tls`
/// the TLS handshake with an `https://` proxy, `proxy_connect` the CONNECT
/// exchange and `tls` the handshake with the gateway inside the tunnel.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Timings {
    pub dns: Option<Duration>,
    pub tcp: Option<Duration>,
    pub proxy_connect: Option<Duration>,
    pub tls: Option<Duration>,
    pub proxy_tls: Option<Duration>,
}

/// An open stream to the gateway and how it was opened.
pub struct Connection {
    pub stream: BoxStream,
    pub timings: Timings,
    pub tls: Option<TlsInfo>,
    /// The proxy used, if any (`http://host:port`, without credentials).
    pub proxy: Option<String>,
    /// Why this route (which variable chose the proxy, or why direct).
    pub route: Route,
    /// The addresses DNS gave for the host dialled (the proxy's, if any).
    pub addresses: Vec<SocketAddr>,
    /// The address the TCP connection went to.
    pub peer: SocketAddr,
    /// TLS with an https:// proxy.
    pub proxy_tls: Option<TlsInfo>,
    /// The proxy's answer to CONNECT (`HTTP/1.1 200 Connection established`).
    pub proxy_reply: Option<String>,
}

/// Which step of opening a connection failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Choosing the route (bad URL, bad proxy variable).
    Route,
    Dns,
    Tcp,
    /// TLS with an https:// proxy.
    ProxyTls,
    /// The CONNECT exchange.
    Proxy,
    /// TLS with the gateway.
    Tls,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Route => "route",
            Step::Dns => "dns",
            Step::Tcp => "tcp",
            Step::ProxyTls => "proxy-tls",
            Step::Proxy => "proxy",
            Step::Tls => "tls",
        }
    }
}

/// A failed dial: the step, why, and what had been done before it. Carried
/// inside the `anyhow::Error` of [`Dialer::connect`] (`downcast_ref`).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DialError {
    pub step: Step,
    pub message: String,
    pub timings: Timings,
    pub route: Option<Route>,
    pub addresses: Vec<SocketAddr>,
    pub peer: Option<SocketAddr>,
    pub proxy_tls: Option<TlsInfo>,
    /// The proxy's status code when it refused CONNECT.
    pub proxy_status: Option<u16>,
}

#[derive(Default)]
struct Progress {
    timings: Timings,
    route: Option<Route>,
    addresses: Vec<SocketAddr>,
    peer: Option<SocketAddr>,
    proxy_tls: Option<TlsInfo>,
}

impl Progress {
    fn fail(&mut self, step: Step, message: impl Into<String>) -> DialError {
        let p = std::mem::take(self);
        DialError {
            step,
            message: message.into(),
            timings: p.timings,
            route: p.route,
            addresses: p.addresses,
            peer: p.peer,
            proxy_tls: p.proxy_tls,
            proxy_status: None,
        }
    }
}

/// Runs `fut` with a time limit; the error is its message or the timeout.
async fn limited<T, E: fmt::Display>(
    limit: Duration,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("timed out after {}", secs(limit))),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Opens streams to URLs.
#[derive(Clone)]
pub struct Dialer {
    tls: Arc<rustls::ClientConfig>,
    proxy: Arc<proxy::Mode>,
    timeout: Duration,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Dialer {
    /// A dialer with the given TLS and proxy options: `--proxy` or
    /// `--no-proxy` when given, else the environment (read once, now;
    /// `ProxyOptions::default()` for the environment only).
    pub fn new(tls: &TlsOptions, opts: &ProxyOptions) -> anyhow::Result<Self> {
        let mode = if opts.no_proxy {
            proxy::Mode::Off
        } else if let Some(p) = &opts.proxy {
            proxy::Mode::Fixed(ProxyUrl::parse(p).map_err(|e| anyhow::anyhow!("--proxy: {e}"))?)
        } else {
            proxy::Mode::Env(proxy::env_snapshot())
        };
        Self::with_mode(tls, mode, opts.connect_timeout)
    }

    /// A dialer with explicit proxy settings.
    pub fn with_mode(
        tls: &TlsOptions,
        mode: proxy::Mode,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
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
        Ok(Dialer {
            tls: Arc::new(cfg),
            proxy: Arc::new(mode),
            timeout,
        })
    }

    /// The time limit of each step.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How [`Dialer::connect`] reaches `url`: the same for every
    /// connection to it, since the settings are fixed when the dialer is
    /// made. An error names the bad proxy variable.
    pub fn route(&self, url: &Url) -> Result<Route, String> {
        proxy::choose(url, &self.proxy)
    }

    /// Opens a stream to the host and port of `url` (ws, wss, http, https),
    /// through the proxy chosen for it; TLS for wss/https. HTTP/1.1 is
    /// offered by ALPN. Errors are [`DialError`]s.
    pub async fn connect(&self, url: &Url) -> anyhow::Result<Connection> {
        self.connect_from(url, None).await
    }

    /// As [`Dialer::connect`], with the client socket (to the gateway, or
    /// to the proxy) bound to `local` (port chosen by the system) when
    /// given: lets a load test spread many connections over several
    /// loopback source addresses.
    pub async fn connect_from(
        &self,
        url: &Url,
        local: Option<IpAddr>,
    ) -> anyhow::Result<Connection> {
        Ok(self.dial(url, local).await?)
    }

    async fn dial(&self, url: &Url, local: Option<IpAddr>) -> Result<Connection, DialError> {
        let mut st = Progress::default();
        let secure = match url.scheme() {
            "ws" | "http" => false,
            "wss" | "https" => true,
            other => {
                return Err(st.fail(
                    Step::Route,
                    format!("unsupported URL scheme {other:?} (want ws, wss, http or https)"),
                ))
            }
        };
        let Some(host) = url.host_str() else {
            return Err(st.fail(Step::Route, format!("URL {url} has no host")));
        };
        let Some(port) = url.port_or_known_default() else {
            return Err(st.fail(Step::Route, format!("URL {url} has no port")));
        };
        let route = self.route(url).map_err(|e| st.fail(Step::Route, e))?;
        st.route = Some(route.clone());
        let via = match &route {
            Route::Proxy { proxy, .. } => Some(proxy.clone()),
            Route::Direct(_) => None,
        };
        let (dial_host, dial_port) = match &via {
            Some(p) => (p.host.clone(), p.port),
            None => (host.trim_matches(['[', ']']).to_string(), port),
        };
        let what = match &via {
            Some(p) => format!("proxy {p}"),
            None => host.to_string(),
        };

        let t = Instant::now();
        let addrs: Vec<SocketAddr> = limited(self.timeout, async {
            tokio::net::lookup_host((dial_host.as_str(), dial_port)).await
        })
        .await
        .map(|a| a.collect())
        .map_err(|e| st.fail(Step::Dns, format!("resolving {what}: {e}")))?;
        st.timings.dns = Some(t.elapsed());
        st.addresses = addrs.clone();
        if addrs.is_empty() {
            return Err(st.fail(Step::Dns, format!("resolving {what}: no address")));
        }

        let t = Instant::now();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut errors = Vec::new();
        let mut tcp = None;
        for a in &addrs {
            match tokio::time::timeout_at(deadline, tcp_connect(*a, local)).await {
                Ok(Ok(s)) => {
                    tcp = Some((s, *a));
                    break;
                }
                Ok(Err(e)) => errors.push(format!("{a}: {e}")),
                Err(_) => {
                    errors.push(format!("{a}: timed out after {}", secs(self.timeout)));
                    break;
                }
            }
        }
        let Some((tcp, peer)) = tcp else {
            return Err(st.fail(
                Step::Tcp,
                format!("connecting to {what}: {}", errors.join("; ")),
            ));
        };
        let _ = tcp.set_nodelay(true);
        st.timings.tcp = Some(t.elapsed());
        st.peer = Some(peer);
        let mut stream: BoxStream = Box::new(tcp);

        let mut proxy_reply = None;
        if let Some(p) = &via {
            if p.tls {
                let (s, info, took) = self
                    .tls_over(stream, &p.host)
                    .await
                    .map_err(|e| st.fail(Step::ProxyTls, format!("TLS with {p}: {e}")))?;
                st.timings.proxy_tls = Some(took);
                st.proxy_tls = Some(info);
                stream = s;
            }
            let target = format!("{host}:{port}");
            let t = Instant::now();
            match tokio::time::timeout(self.timeout, proxy::connect_tunnel(stream, p, &target))
                .await
            {
                Ok(Ok((s, reply))) => {
                    st.timings.proxy_connect = Some(t.elapsed());
                    proxy_reply = Some(reply.status_line);
                    stream = Box::new(s);
                }
                Ok(Err(e)) => {
                    let status = e.status();
                    let mut err = st.fail(Step::Proxy, e.to_string());
                    err.proxy_status = status;
                    return Err(err);
                }
                Err(_) => {
                    return Err(st.fail(
                        Step::Proxy,
                        format!(
                            "{p} did not answer CONNECT {target}: timed out after {}",
                            secs(self.timeout)
                        ),
                    ))
                }
            }
        }

        let mut tls = None;
        if secure {
            let (s, info, took) = self
                .tls_over(stream, host)
                .await
                .map_err(|e| st.fail(Step::Tls, format!("TLS with {host}: {e}")))?;
            st.timings.tls = Some(took);
            tls = Some(info);
            stream = s;
        }
        Ok(Connection {
            stream,
            timings: st.timings,
            tls,
            proxy: via.map(|p| p.display()),
            route,
            addresses: st.addresses,
            peer,
            proxy_tls: st.proxy_tls,
            proxy_reply,
        })
    }

    /// A TLS client session over `inner`, verifying `host`, offering
    /// `http/1.1` by ALPN, within the step time limit.
    async fn tls_over(
        &self,
        inner: BoxStream,
        host: &str,
    ) -> Result<(BoxStream, TlsInfo, Duration), String> {
        let mut cfg = (*self.tls).clone();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let name =
            rustls_pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                .map_err(|_| format!("{host} is not a valid TLS server name"))?;
        let t = Instant::now();
        let s = limited(
            self.timeout,
            tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, inner),
        )
        .await?;
        let took = t.elapsed();
        let (_, conn) = s.get_ref();
        let certificates: Vec<CertInfo> = conn
            .peer_certificates()
            .unwrap_or_default()
            .iter()
            .map(|c| cert_info(c))
            .collect();
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
            chain: certificates.iter().map(|c| c.to_string()).collect(),
            certificates,
        };
        Ok((Box::new(s), info, took))
    }
}

async fn tcp_connect(to: SocketAddr, local: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(ip) = local else {
        return TcpStream::connect(to).await;
    };
    let sock = if to.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    sock.bind(SocketAddr::new(ip, 0))?;
    sock.connect(to).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn error_bodies_become_one_line() {
        assert_eq!(
            body_summary("none of the offered\n  subprotocols ", false),
            "none of the offered subprotocols"
        );
        assert_eq!(
            body_summary(
                "<!DOCTYPE html>\n<html><head><TITLE>404 Not Found</TITLE>\n<style>x</style>",
                true
            ),
            "404 Not Found"
        );
        assert_eq!(body_summary("<html><body>no title</body>", true), "");
        assert_eq!(body_summary(&"x".repeat(500), false).len(), 200);
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_timeout("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_timeout("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("-1").is_err());
        assert!(parse_timeout("soon").is_err());
    }

    /// A proxy that answers CONNECT with its 200 head and the first bytes
    /// of the tunnel in one write: the dialer's stream must start with them.
    #[tokio::test]
    async fn bytes_after_the_connect_answer_are_kept() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let proxy = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut got = Vec::new();
            let mut b = [0u8; 1024];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut b).await.unwrap();
                assert!(n > 0);
                got.extend_from_slice(&b[..n]);
            }
            s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\nSERVER-FIRST\r\n")
                .await
                .unwrap();
            // then relay one more line from the "server"
            let n = s.read(&mut b).await.unwrap();
            s.write_all(&b[..n]).await.unwrap();
            String::from_utf8(got).unwrap()
        });
        let mode = proxy::Mode::Fixed(ProxyUrl::parse(&format!("http://{addr}")).unwrap());
        let d = Dialer::with_mode(&TlsOptions::default(), mode, Duration::from_secs(5)).unwrap();
        let url = Url::parse("ws://gateway.invalid:5280/echo").unwrap();
        let mut c = d.connect(&url).await.unwrap();
        assert_eq!(c.proxy.as_deref(), Some(format!("http://{addr}").as_str()));
        assert_eq!(c.peer, addr);
        assert!(c.timings.proxy_connect.is_some());
        assert_eq!(
            c.proxy_reply.as_deref(),
            Some("HTTP/1.1 200 Connection established")
        );
        let mut first = [0u8; 14];
        c.stream.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"SERVER-FIRST\r\n");
        c.stream.write_all(b"echo").await.unwrap();
        let mut back = [0u8; 4];
        c.stream.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"echo");
        let req = proxy.await.unwrap();
        // the gateway's name goes to the proxy unresolved
        assert!(
            req.starts_with("CONNECT gateway.invalid:5280 HTTP/1.1\r\n"),
            "{req}"
        );
    }

    #[tokio::test]
    async fn failures_name_the_step() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = l.local_addr().unwrap();
        drop(l);
        let d = Dialer::with_mode(
            &TlsOptions::default(),
            proxy::Mode::Off,
            Duration::from_secs(5),
        )
        .unwrap();
        let e = d
            .connect(&Url::parse(&format!("ws://{dead}/")).unwrap())
            .await
            .err()
            .unwrap();
        let e = e.downcast_ref::<DialError>().expect("a DialError");
        assert_eq!(e.step, Step::Tcp);
        assert!(e.timings.dns.is_some() && e.timings.tcp.is_none());
        assert!(
            e.message
                .starts_with(&format!("connecting to 127.0.0.1: {dead}: ")),
            "{}",
            e.message
        );

        // a proxy that accepts and never answers: the CONNECT step times out
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(s);
        });
        let mode = proxy::Mode::Fixed(ProxyUrl::parse(&format!("http://{addr}")).unwrap());
        let d =
            Dialer::with_mode(&TlsOptions::default(), mode, Duration::from_millis(300)).unwrap();
        let t = Instant::now();
        let e = d
            .connect(&Url::parse("ws://gw.test/").unwrap())
            .await
            .err()
            .unwrap();
        let e = e.downcast_ref::<DialError>().expect("a DialError");
        assert_eq!(e.step, Step::Proxy);
        assert!(
            e.message
                .contains("did not answer CONNECT gw.test:80: timed out after 0.30 s"),
            "{}",
            e.message
        );
        assert!(t.elapsed() < Duration::from_secs(3));
        hold.abort();
    }

    /// A server whose 101 and first frame come in one write, choosing no
    /// subprotocol though one was offered; then a server with a wrong
    /// Sec-WebSocket-Accept.
    #[tokio::test]
    async fn websocket_handshake_keeps_early_frames_and_checks_the_accept_key() {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
        async fn serve(mut s: tokio::io::DuplexStream, good: bool) -> String {
            let mut got = Vec::new();
            let mut b = [0u8; 1024];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut b).await.unwrap();
                got.extend_from_slice(&b[..n]);
            }
            let req = String::from_utf8(got).unwrap();
            let key = req
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .unwrap();
            let accept = if good {
                derive_accept_key(key.as_bytes())
            } else {
                "bogus".into()
            };
            let mut out = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").into_bytes();
            out.extend_from_slice(&[0x81, 5]); // text frame "early"
            out.extend_from_slice(b"early");
            s.write_all(&out).await.unwrap();
            req
        }
        let url = Url::parse("ws://gw.test:5280/echo?x=1").unwrap();
        let (client, server) = tokio::io::duplex(4096);
        let srv = tokio::spawn(serve(server, true));
        let (mut ws, up) = websocket_handshake(Box::new(client), &url, Some("binary"))
            .await
            .unwrap();
        assert_eq!((up.status, up.subprotocol), (101, None));
        let m = ws.next().await.unwrap().unwrap();
        assert_eq!(m.into_text().unwrap().as_str(), "early");
        let req = srv.await.unwrap();
        assert!(
            req.starts_with("GET /echo?x=1 HTTP/1.1\r\nHost: gw.test:5280\r\n"),
            "{req}"
        );
        assert!(req.contains("Sec-WebSocket-Protocol: binary\r\n"), "{req}");

        let (client, server) = tokio::io::duplex(4096);
        tokio::spawn(serve(server, false));
        let e = websocket_handshake(Box::new(client), &url, None)
            .await
            .err()
            .unwrap();
        let h = e.downcast_ref::<HandshakeError>().unwrap();
        assert_eq!(h.status, Some(101));
        assert!(
            h.message.starts_with("wrong Sec-WebSocket-Accept"),
            "{}",
            h.message
        );
    }

    #[test]
    fn certificate_description() {
        let ck = rcgen::generate_simple_self_signed(vec![
            "gw.test".to_string(),
            "127.0.0.1".to_string(),
        ])
        .unwrap();
        let info = cert_info(ck.cert.der());
        assert!(
            info.subject.contains("CN=rcgen self signed cert"),
            "{info:?}"
        );
        assert_eq!(info.subject, info.issuer);
        assert_eq!(
            info.names,
            vec!["gw.test".to_string(), "127.0.0.1".to_string()]
        );
        assert!(
            info.not_before.ends_with('Z') && info.not_before < info.not_after,
            "{info:?}"
        );
        assert!(
            info.to_string()
                .starts_with("subject CN=rcgen self signed cert; issuer CN="),
            "{info}"
        );
        assert!(cert_info(b"junk").subject.starts_with("(cannot parse"));
    }
}
