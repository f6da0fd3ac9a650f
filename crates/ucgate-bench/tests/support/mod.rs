//! Helpers for the probe and proxy tests: the `ucgate-bench` binary run with
//! a controlled proxy environment, a real gateway in-process, a test CA,
//! scripted XMPP and echo backends, Debian's tinyproxy on a free loopback
//! port, and small in-process CONNECT proxies (plain or TLS).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const BIN: &str = env!("CARGO_BIN_EXE_ucgate-bench");

/// Every variable the dialer reads: removed from each child, so the
/// developer's or CI's own proxy settings never leak into a test.
pub const PROXY_VARS: &[&str] = &[
    "ws_proxy",
    "WS_PROXY",
    "wss_proxy",
    "WSS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// What a run of `ucgate-bench` produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub json: serde_json::Value,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) {
        assert_eq!(
            self.code, 0,
            "exit 0 expected\n{}\n{}",
            self.stdout, self.stderr
        );
        assert_eq!(self.json["ok"], true, "{}", self.json);
        assert!(self.json["failed_step"].is_null(), "{}", self.json);
        assert!(self.stderr.contains("result"), "{}", self.stderr);
    }

    pub fn failed(&self, step: &str) {
        assert_eq!(
            self.code, 1,
            "exit 1 expected\n{}\n{}",
            self.stdout, self.stderr
        );
        assert_eq!(self.json["ok"], false, "{}", self.json);
        assert_eq!(
            self.json["failed_step"], step,
            "{}\n{}",
            self.json, self.stderr
        );
    }

    pub fn error(&self) -> String {
        self.json["error"].as_str().unwrap_or("").to_string()
    }

    /// A number in the JSON (by `/`-separated pointer), positive.
    pub fn ms(&self, pointer: &str) -> f64 {
        let v = self.json.pointer(pointer).and_then(|v| v.as_f64());
        let v = v.unwrap_or_else(|| panic!("{pointer} missing in {}", self.json));
        assert!(v > 0.0, "{pointer} = {v} in {}", self.json);
        v
    }

    pub fn str(&self, pointer: &str) -> String {
        self.json
            .pointer(pointer)
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("{pointer} missing in {}", self.json))
            .to_string()
    }
}

/// Runs `ucgate-bench probe ARGS` with exactly the proxy variables `env`
/// (bounded to 60 s) and parses its JSON line.
pub async fn probe(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = vec!["probe"];
    all.extend_from_slice(args);
    run(&all, env).await
}

/// Runs `ucgate-bench ARGS` (any mode) with exactly the proxy variables
/// `env` (bounded to 60 s) and parses its JSON line.
pub async fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args);
    for v in PROXY_VARS {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        cmd.stdin(Stdio::null()).kill_on_drop(true).output(),
    )
    .await
    .expect("ucgate-bench finished in time")
    .expect("ucgate-bench ran");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let lines: Vec<&str> = stdout.lines().collect();
    let json = if lines.len() == 1 {
        serde_json::from_str(lines[0])
            .unwrap_or_else(|e| panic!("bad JSON {e}: {stdout}\nstderr: {stderr}"))
    } else {
        serde_json::Value::Null
    };
    Run {
        code: out.status.code().unwrap_or(-1),
        json,
        stdout,
        stderr,
    }
}

/// A fresh temporary directory (removed on drop).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "ucgate-bench-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

mod gateway;
pub use gateway::Gateway;

/// `[server]` with TLS from the test PKI.
pub fn tls_server_section(pki: &Pki) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[[server.tls.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
        pki.cert.display(),
        pki.key.display()
    )
}

pub fn tunnel_route(path: &str, backend: SocketAddr) -> String {
    format!("[[route]]\npath = \"{path}\"\nkind = \"tcp\"\nbackend = \"{backend}\"\n")
}

/// A TCP echo server on 127.0.0.1:0.
pub async fn echo_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// An address nothing listens on.
pub async fn dead_address() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

/// A test CA and one server certificate signed by it, for `localhost` and
/// `127.0.0.1`: `ca.crt`, `server.crt` (leaf, then CA), `server.key`.
pub struct Pki {
    pub dir: TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub server: Arc<rustls::ServerConfig>,
}

impl Pki {
    pub fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let dir = TempDir::new("pki");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ucgate-bench test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        leaf_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "gateway.test");
        let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
        let ca_path = dir.path().join("ca.crt");
        let cert = dir.path().join("server.crt");
        let key = dir.path().join("server.key");
        std::fs::write(&ca_path, ca.pem()).unwrap();
        std::fs::write(&cert, format!("{}{}", leaf.pem(), ca.pem())).unwrap();
        std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
        let der_key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], der_key)
        .unwrap();
        Pki {
            dir,
            ca: ca_path,
            cert,
            key,
            server: Arc::new(server),
        }
    }

    pub fn ca_str(&self) -> String {
        self.ca.display().to_string()
    }
}

/// Reads until `needle` is in `acc` (10 s at most).
pub async fn read_until<S: AsyncRead + Unpin>(s: &mut S, acc: &mut String, needle: &str) -> bool {
    loop {
        if let Some(p) = acc.find(needle) {
            acc.drain(..p + needle.len());
            return true;
        }
        let mut b = [0u8; 4096];
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut b)).await {
            Ok(Ok(n)) if n > 0 => acc.push_str(&String::from_utf8_lossy(&b[..n])),
            _ => return false,
        }
    }
}

/// A plaintext XMPP server on 127.0.0.1:0 (for `tls = "none"` domains):
/// answers each stream header with its own and SASL features, and
/// `</stream:stream>` with `</stream:stream>`. Counts the streams the
/// gateway closed cleanly.
pub async fn xmpp_server() -> (SocketAddr, Arc<Mutex<usize>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let closed = Arc::new(Mutex::new(0usize));
    let closed2 = closed.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let closed = closed2.clone();
            tokio::spawn(async move {
                let mut acc = String::new();
                if !read_until(&mut s, &mut acc, "<stream:stream").await
                    || !read_until(&mut s, &mut acc, ">").await
                {
                    return;
                }
                let _ = s.write_all(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='probe-1' from='localhost' version='1.0' xml:lang='en'><stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>").await;
                if read_until(&mut s, &mut acc, "</stream:stream>").await {
                    *closed.lock().unwrap() += 1;
                    let _ = s.write_all(b"</stream:stream>").await;
                }
            });
        }
    });
    (addr, closed)
}

/// Config for an XMPP domain `localhost` served in plaintext at `server`.
pub fn xmpp_domain(server: SocketAddr) -> String {
    format!("\n[xmpp.domains.\"localhost\"]\naddress = \"{server}\"\ntls = \"none\"\n")
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Debian's tinyproxy on a free loopback port, in the foreground, killed
/// (and waited for) on drop.
pub struct Tinyproxy {
    pub addr: SocketAddr,
    child: std::process::Child,
    pub dir: TempDir,
}

impl Tinyproxy {
    /// Starts tinyproxy; `auth` turns on `BasicAuth user pass`. Fails the
    /// test when tinyproxy is not installed.
    pub fn start(auth: Option<(&str, &str)>) -> Tinyproxy {
        let dir = TempDir::new("tinyproxy");
        for _attempt in 0..5 {
            let port = free_port();
            let conf = dir.path().join("tinyproxy.conf");
            let mut text = format!(
                "Port {port}\nListen 127.0.0.1\nAllow 127.0.0.1\nTimeout 60\nMaxClients 50\nLogLevel Info\nPidFile \"{}\"\nDisableViaHeader Yes\n",
                dir.path().join("tinyproxy.pid").display()
            );
            if let Some((u, p)) = auth {
                text.push_str(&format!("BasicAuth {u} {p}\n"));
            }
            std::fs::write(&conf, text).unwrap();
            let log = std::fs::File::create(dir.path().join("tinyproxy.log")).unwrap();
            let mut child = match std::process::Command::new("tinyproxy")
                .arg("-d")
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
            {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                    "tinyproxy is not installed (the proxy tests need Debian's tinyproxy): run scripts/install-deps"
                ),
                Err(e) => panic!("starting tinyproxy: {e}"),
            };
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            for _ in 0..100 {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // port taken meanwhile, or a config error: retry
                }
                if std::net::TcpStream::connect(addr).is_ok() {
                    return Tinyproxy { addr, child, dir };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(dir.path().join("tinyproxy.log")).unwrap_or_default();
        panic!("tinyproxy did not start listening:\n{log}");
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tinyproxy.log")).unwrap_or_default()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How an in-process CONNECT proxy answers.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    /// `200`, then relay to the requested host:port.
    Tunnel,
    /// This status line, then close.
    Refuse(&'static str),
    /// Nothing, ever (the connection stays open).
    Silent,
}

/// An in-process CONNECT proxy on 127.0.0.1:0, over TLS when `tls` is
/// given. Returns its address and the request heads it received.
pub async fn connect_proxy(
    tls: Option<Arc<rustls::ServerConfig>>,
    answer: Answer,
) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let heads2 = heads.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let heads = heads2.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(cfg) => {
                        if let Ok(s) = tokio_rustls::TlsAcceptor::from(cfg).accept(s).await {
                            serve_connect(s, answer, heads).await;
                        }
                    }
                    None => serve_connect(s, answer, heads).await,
                }
            });
        }
    });
    (addr, heads)
}

async fn serve_connect<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    answer: Answer,
    heads: Arc<Mutex<Vec<String>>>,
) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b).await {
            Ok(1) => head.push(b[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    heads.lock().unwrap().push(head.clone());
    match answer {
        Answer::Silent => {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        Answer::Refuse(line) => {
            let _ = s
                .write_all(format!("{line}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                .await;
        }
        Answer::Tunnel => {
            let target = head
                .strip_prefix("CONNECT ")
                .and_then(|r| r.split(' ').next())
                .unwrap_or("")
                .to_string();
            let Ok(mut up) = TcpStream::connect(target.as_str()).await else {
                let _ = s.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                return;
            };
            if s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
            let _ = tokio::io::copy_bidirectional(&mut s, &mut up).await;
        }
    }
}
