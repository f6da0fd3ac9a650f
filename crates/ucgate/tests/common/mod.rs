//! Test helpers: a real gateway on 127.0.0.1:0 with in-process backends.
#![allow(dead_code)]

pub mod bosh_client;
pub mod process;
pub mod sip;
pub mod tls;
pub mod traffic;
pub mod xmpp_server;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::WebSocketStream;
use ucgate::{Config, Control, Listeners, Phase};

/// A running gateway.
pub struct TestGateway {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub control: Control,
    pub task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestGateway {
    /// Starts a gateway from TOML text. `listen`/`admin` default to 127.0.0.1:0.
    pub async fn start(toml: &str) -> TestGateway {
        Self::start_in(toml, Path::new(".")).await
    }

    pub async fn start_in(toml: &str, base: &Path) -> TestGateway {
        let mut text = toml.to_string();
        if !text.contains("[server]") {
            text = format!("[server]\nlisten = \"127.0.0.1:0\"\n{text}");
        }
        if !text.contains("[admin]") {
            text = format!("{text}\n[admin]\nlisten = \"127.0.0.1:0\"\n");
        }
        let config =
            Config::parse(&text, "test.toml", base).unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
        let listeners = Listeners::bind(&config).await.expect("bind");
        let addr = listeners.main_addr();
        let admin = listeners.admin_addr();
        let control = Control::new();
        let mut phase = control.phase();
        let task = tokio::spawn(ucgate::run(config, listeners, control.clone()));
        tokio::time::timeout(
            Duration::from_secs(10),
            phase.wait_for(|p| *p == Phase::Running),
        )
        .await
        .expect("gateway running in time")
        .expect("phase channel");
        TestGateway {
            addr,
            admin,
            control,
            task: Some(task),
        }
    }

    /// A handle on a gateway running in another process, for helpers that
    /// take a [`TestGateway`] (stopping it is the caller's business).
    pub fn at(addr: SocketAddr, admin: SocketAddr) -> TestGateway {
        TestGateway {
            addr,
            admin,
            control: Control::new(),
            task: None,
        }
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Starts the drain and waits for `run` to return.
    pub async fn stop(&mut self) {
        self.control.shutdown.cancel();
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), t)
                .await
                .expect("drain in time")
                .expect("join")
                .expect("run ok");
        }
    }

    pub async fn metrics(&self) -> String {
        let (status, body) = http_get(self.admin, "/metrics").await;
        assert_eq!(status, 200);
        body
    }

    /// Value of one sample: `name{labels}` where every given label must match.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_value(&self.metrics().await, name, labels).unwrap_or(0.0)
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.control.shutdown.cancel();
    }
}

/// Finds a sample in exposition text.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let (head, value) = line.rsplit_once(' ')?;
        let (n, l) = match head.find('{') {
            Some(i) => (&head[..i], &head[i..]),
            None => (head, ""),
        };
        if n != name {
            continue;
        }
        if labels
            .iter()
            .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        {
            return value.parse().ok();
        }
    }
    None
}

/// Minimal HTTP/1.1 GET; returns status and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let raw = raw_request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    parse_response(&raw)
}

/// Sends raw bytes, reads until EOF (or 5 s).
pub async fn raw_request(addr: SocketAddr, req: &str) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_response(raw: &str) -> (u16, String) {
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A TCP echo server on 127.0.0.1:0. Returns its address.
pub async fn echo_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// A backend whose accepted connections are handed to the test.
pub async fn manual_backend() -> (SocketAddr, tokio::sync::mpsc::Receiver<TcpStream>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            if tx.send(s).await.is_err() {
                return;
            }
        }
    });
    (addr, rx)
}

/// A loopback address on `ip` whose port was free a moment ago, for a
/// listener that must be named in a configuration before it is bound (a
/// cluster node's `cluster.listen`, which its peers list).
pub fn free_addr(ip: &str) -> SocketAddr {
    let l = std::net::TcpListener::bind((ip, 0)).expect("bind a free port");
    l.local_addr().unwrap()
}

/// An address nothing listens on.
pub async fn dead_address() -> SocketAddr {
    // Bound but not listening, and kept for the test's life: connecting is
    // refused, and no other socket of a test running alongside can take the
    // port (a dropped listener's port could be handed out again).
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let a = s.local_addr().unwrap();
    std::mem::forget(s);
    a
}

pub type Ws = WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// What a client that only listens got until the gateway closed its
/// WebSocket.
pub struct UntilClose {
    pub pings: usize,
    pub texts: Vec<String>,
    pub code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode,
    pub reason: String,
}

/// Reads (at most 5 s per message) until the gateway's close frame,
/// counting pings and keeping text messages; anything else fails the test.
pub async fn listen_until_close(ws: &mut Ws) -> UntilClose {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let (mut pings, mut texts) = (0, Vec::new());
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Text(t))) => texts.push(t.to_string()),
            Some(Ok(Message::Close(Some(f)))) => {
                return UntilClose {
                    pings,
                    texts,
                    code: f.code,
                    reason: f.reason.to_string(),
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Opens a WebSocket with optional Origin and subprotocols.
pub async fn ws_connect(
    url: &str,
    origin: Option<&str>,
    protocols: Option<&str>,
) -> Result<
    (
        Ws,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    tokio_tungstenite::tungstenite::Error,
> {
    let mut req = url.into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut()
            .insert("origin", HeaderValue::from_str(o).unwrap());
    }
    if let Some(p) = protocols {
        req.headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_str(p).unwrap());
    }
    tokio_tungstenite::connect_async(req).await
}

pub fn tunnel_route(path: &str, backend: SocketAddr, extra: &str) -> String {
    format!("[[route]]\npath = \"{path}\"\nkind = \"tcp\"\nbackend = \"{backend}\"\n{extra}\n")
}

/// Shared helper for reading exactly `n` payload bytes from WebSocket messages.
pub async fn read_ws_bytes(ws: &mut Ws, n: usize) -> Vec<u8> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => got.extend_from_slice(&b),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            other => panic!(
                "expected binary data, got {other:?} after {} bytes",
                got.len()
            ),
        }
    }
    got
}
