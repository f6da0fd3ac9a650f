//! Configuration: TOML text → validated, typed [`Config`].
//!
//! Parsing keeps positions (see [`reader`]) so that `ucgate check-config`
//! reports every problem at once with file, line, column, dotted key and
//! what is expected. Unknown keys are errors. Every key, its type, default
//! and unit is documented in `docs/config.md`; `tests/docs_and_metrics.rs`
//! checks that the two agree.

mod bosh;
pub mod reader;
mod sip;
mod xmpp;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ucgate_proto::origin::OriginPolicy;
use ucgate_proto::route::RouteTable;

pub use bosh::BoshConfig;
pub use reader::{ConfigError, ConfigErrors};
use reader::{Ctx, Table};
pub use sip::{Secret, SipConfig, SipCore, SipTransport};
pub use xmpp::{XmppConfig, XmppDomain, XmppTls};

/// The configuration used when `ucgate run` is given no `--config`.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.toml");

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The main listener.
    pub server: ServerConfig,
    /// The admin listener (metrics, health).
    pub admin: AdminConfig,
    /// Logging.
    pub log: LogConfig,
    /// Routes, in file order.
    pub routes: Vec<RouteConfig>,
    /// Path lookup over `routes`.
    pub route_table: RouteTable,
    /// `[xmpp]`: XMPP domains and limits (defaults when absent).
    pub xmpp: XmppConfig,
    /// `[bosh]`: BOSH limits (defaults when absent).
    pub bosh: BoshConfig,
    /// `[sip]`: SIP edge proxy settings (defaults when absent).
    pub sip: SipConfig,
}

/// `[server]`: the one public listener.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind.
    pub listen: SocketAddr,
    /// TLS, if the listener speaks HTTPS.
    pub tls: Option<TlsConfig>,
    /// Maximum concurrent client TCP connections (permits).
    pub max_connections: usize,
    /// Maximum concurrent connections from one client address; 0 = no limit.
    pub max_connections_per_ip: usize,
    /// TLS handshake deadline.
    pub handshake_timeout: Duration,
    /// Deadline for a complete HTTP/1.1 request head.
    pub header_read_timeout: Duration,
    /// Deadline for a whole request body, from the end of its head.
    pub body_read_timeout: Duration,
    /// Close an HTTP connection with no bytes, no request and no WebSocket for this long.
    pub idle_timeout: Duration,
    /// How long the drain may take after SIGTERM before the rest is cut.
    pub drain_timeout: Duration,
    /// Delay between `/ready` failing and the drain starting.
    pub shutdown_delay: Duration,
    /// Maximum size of a request head (HTTP/1.1) or header list (HTTP/2).
    pub max_header_size: usize,
    /// Offer HTTP/2 by ALPN on TLS.
    pub http2: bool,
    /// Accept HTTP/2 with prior knowledge on plain TCP.
    pub h2c: bool,
    /// Maximum concurrent streams per HTTP/2 connection.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 PING interval (dead-peer detection); zero disables.
    pub h2_keepalive_interval: Duration,
    /// HTTP/2 PING answer deadline.
    pub h2_keepalive_timeout: Duration,
}

/// `[server.tls]`.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Certificates; the first is the default, the others are chosen by SNI.
    pub certificates: Vec<CertificateConfig>,
}

/// `[[server.tls.certificate]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateConfig {
    /// PEM certificate chain (leaf first).
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `[admin]`.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Address of the admin listener.
    pub listen: SocketAddr,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event.
    Human,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// Filter directive (`info`, `ucgate=debug`, …); `RUST_LOG` overrides it.
    pub level: String,
}

/// What a route does, with what only that kind needs: the one place a
/// route's kind is decided, carried unchanged into the runtime
/// (`RouteRuntime::service`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteKind {
    /// Generic WebSocket ⇄ TCP tunnel to a fixed backend (clients never
    /// choose it).
    Tcp(Backend),
    /// XMPP over WebSocket (RFC 7395) to XMPP servers over TCP, chosen by
    /// the `to` domain of the client's `<open/>` from `[xmpp.domains]`.
    XmppWebSocket,
    /// BOSH (XEP-0124/0206) to XMPP servers over TCP, chosen by the `to`
    /// of the session creation request from `[xmpp.domains]`.
    Bosh,
    /// SIP over WebSocket (RFC 7118) to the route's SIP `core`.
    SipWebSocket(SipCore),
}

impl RouteKind {
    /// True for the kinds that reach XMPP servers through `[xmpp.domains]`.
    pub fn is_xmpp(&self) -> bool {
        matches!(self, RouteKind::XmppWebSocket | RouteKind::Bosh)
    }

    /// True for the kinds served over WebSocket.
    pub fn is_websocket(&self) -> bool {
        !matches!(self, RouteKind::Bosh)
    }

    /// The name used in config and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            RouteKind::Tcp(_) => "tcp",
            RouteKind::XmppWebSocket => "xmpp-websocket",
            RouteKind::Bosh => "bosh",
            RouteKind::SipWebSocket(_) => "sip-websocket",
        }
    }

    /// The backend of a `tcp` route.
    pub fn backend(&self) -> Option<&Backend> {
        match self {
            RouteKind::Tcp(b) => Some(b),
            _ => None,
        }
    }

    /// The core of a `sip-websocket` route.
    pub fn core(&self) -> Option<&SipCore> {
        match self {
            RouteKind::SipWebSocket(c) => Some(c),
            _ => None,
        }
    }
}

/// Where a `tcp` route connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// TLS to the backend.
    pub tls: Option<BackendTls>,
}

/// TLS toward a backend (always verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendTls {
    /// Name checked in the backend's certificate (default: the backend host).
    pub server_name: String,
    /// PEM CA bundle to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
}

/// `[[route]]`.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Exact request path.
    pub path: String,
    /// The service behind it, with its backend or core.
    pub kind: RouteKind,
    /// Browser origins allowed to open WebSockets.
    pub origins: OriginPolicy,
    /// Subprotocols accepted.
    pub subprotocols: Vec<String>,
    /// Refuse clients that offer none of `subprotocols`.
    pub require_subprotocol: bool,
    /// Largest WebSocket message accepted from a client (bytes); larger gets close 1009.
    pub max_message_size: usize,
    /// Largest single WebSocket frame accepted from a client (bytes).
    pub max_frame_size: usize,
    /// Per-socket buffer size (WebSocket read/write buffers, backend reads).
    pub buffer_size: usize,
    /// Interval of WebSocket pings; zero disables.
    pub ping_interval: Duration,
    /// A client silent for this long after a ping is dead.
    pub ping_timeout: Duration,
    /// Close after this long with no data message either way; zero disables.
    pub idle_timeout: Duration,
    /// Backend connect (and backend TLS handshake) deadline; for
    /// `xmpp-websocket` routes a copy of `xmpp.connect_timeout`.
    pub connect_timeout: Duration,
    /// How long to wait for the other side to finish after one side closed.
    pub close_timeout: Duration,
}

const TOP_KEYS: &[&str] = &["server", "admin", "log", "route", "xmpp", "bosh", "sip"];
const SERVER_KEYS: &[&str] = &[
    "listen",
    "tls",
    "max_connections",
    "max_connections_per_ip",
    "handshake_timeout",
    "header_read_timeout",
    "body_read_timeout",
    "idle_timeout",
    "drain_timeout",
    "shutdown_delay",
    "max_header_size",
    "http2",
    "h2c",
    "h2_max_concurrent_streams",
    "h2_keepalive_interval",
    "h2_keepalive_timeout",
];
const TLS_KEYS: &[&str] = &["certificate"];
const CERT_KEYS: &[&str] = &["cert", "key"];
const ADMIN_KEYS: &[&str] = &["listen"];
const LOG_KEYS: &[&str] = &["format", "level"];
const ROUTE_KEYS: &[&str] = &[
    "path",
    "kind",
    "backend",
    "backend_server_name",
    "backend_ca_file",
    "core",
    "core_server_name",
    "core_ca_file",
    "origins",
    "subprotocols",
    "require_subprotocol",
    "max_message_size",
    "max_frame_size",
    "buffer_size",
    "ping_interval",
    "ping_timeout",
    "idle_timeout",
    "connect_timeout",
    "close_timeout",
];

/// Every key, as documented in docs/config.md (used by a test).
pub fn all_keys() -> Vec<String> {
    let mut v = Vec::new();
    let mut add = |prefix: &str, keys: &[&str]| {
        for k in keys {
            v.push(format!("{prefix}{k}"));
        }
    };
    add("server.", SERVER_KEYS);
    add("server.tls.", TLS_KEYS);
    add("server.tls.certificate.", CERT_KEYS);
    add("admin.", ADMIN_KEYS);
    add("log.", LOG_KEYS);
    add("route.", ROUTE_KEYS);
    add("xmpp.", xmpp::XMPP_KEYS);
    add("xmpp.domains.", xmpp::DOMAIN_KEYS);
    add("bosh.", bosh::BOSH_KEYS);
    add("sip.", sip::SIP_KEYS);
    v
}

pub(crate) const SEC: Duration = Duration::from_secs(1);
const DAY: Duration = Duration::from_secs(86_400);

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            file: name.clone(),
            errors: vec![ConfigError {
                line: 0,
                column: 0,
                key: String::new(),
                message: format!("cannot read the file: {e}"),
            }],
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, &name, base)
    }

    /// The embedded default configuration.
    pub fn embedded_default() -> Config {
        Config::parse(EMBEDDED_DEFAULT, "<embedded default>", Path::new("."))
            .expect("the embedded default configuration is valid (tested)")
    }

    /// Parses and validates `text`; relative file paths are resolved against `base`.
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<Config, ConfigErrors> {
        let fail = |errors| ConfigErrors {
            file: file.to_string(),
            errors,
        };
        let (doc, syntax) = toml::de::DeTable::parse_recoverable(text);
        let mut ctx = Ctx::new(text);
        if !syntax.is_empty() {
            for e in syntax {
                let span = e.span().unwrap_or(0..0);
                ctx.error(
                    span,
                    "",
                    format!("TOML syntax error: {}", e.message().trim()),
                );
            }
            return Err(fail(ctx.into_errors()));
        }
        let mut top = Table::new("", doc.span(), doc.get_ref(), TOP_KEYS);
        let cfg = read_config(&mut ctx, &mut top, base);
        top.finish(&mut ctx);
        match cfg {
            Some(cfg) if ctx.is_ok() => Ok(cfg),
            _ => Err(fail(ctx.into_errors())),
        }
    }
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn read_config(ctx: &mut Ctx<'_>, top: &mut Table<'_, '_>, base: &Path) -> Option<Config> {
    let server = {
        let mut t = top.table(ctx, "server", SERVER_KEYS);
        let s = read_server(ctx, t.as_mut(), base);
        if let Some(t) = t {
            t.finish(ctx);
        }
        s
    };
    let admin = {
        let mut t = top.table(ctx, "admin", ADMIN_KEYS);
        let listen = t
            .as_mut()
            .and_then(|t| t.socket_addr(ctx, "listen"))
            .map(|a| a.value)
            .unwrap_or_else(|| "127.0.0.1:9280".parse().expect("literal"));
        if let Some(t) = t {
            t.finish(ctx);
        }
        AdminConfig { listen }
    };
    let log = {
        let mut t = top.table(ctx, "log", LOG_KEYS);
        let mut format = LogFormat::Human;
        let mut level = "info".to_string();
        if let Some(t) = t.as_mut() {
            if let Some(f) = t.string(ctx, "format", "\"human\" or \"json\"") {
                match f.value.as_str() {
                    "human" => format = LogFormat::Human,
                    "json" => format = LogFormat::Json,
                    _ => ctx.error(f.span, &f.key, "expected \"human\" or \"json\""),
                }
            }
            if let Some(l) = t.string(ctx, "level", "a log filter such as \"info\"") {
                if tracing_subscriber::EnvFilter::try_new(&l.value).is_err() {
                    ctx.error(
                        l.span,
                        &l.key,
                        "expected a log filter such as \"info\", \"debug\" or \"ucgate=debug,info\"",
                    );
                }
                level = l.value;
            }
        }
        if let Some(t) = t {
            t.finish(ctx);
        }
        LogConfig { format, level }
    };
    let xmpp = xmpp::read_xmpp(ctx, top, base);
    let bosh = bosh::read_bosh(ctx, top);
    let sip = sip::read_sip(ctx, top, base);
    let mut routes = Vec::new();
    let mut paths: Vec<reader::At<String>> = Vec::new();
    for mut t in top.table_array(ctx, "route", ROUTE_KEYS) {
        let server_tls = server.as_ref().is_some_and(|s| s.tls.is_some()) || sip.tls.is_some();
        let (r, p, kind) = read_route(ctx, &mut t, base, &xmpp, server_tls);
        if let Some(r) = r {
            routes.push(r);
        }
        if let Some(p) = p {
            paths.push(p);
        }
        if let Some(k) = kind {
            if k.value.is_xmpp() && xmpp.domains.is_empty() {
                ctx.error(
                    k.span.clone(),
                    &k.key,
                    "an XMPP route (`xmpp-websocket`, `bosh`) needs at least one XMPP domain: add a `[xmpp.domains.\"example.org\"]` table (the servers clients may reach, chosen by the `to` of their `<open/>`)",
                );
            }
        }
        t.finish(ctx);
    }
    for (i, p) in paths.iter().enumerate() {
        if paths[..i].iter().any(|q| q.value == p.value) {
            ctx.error(
                p.span.clone(),
                &p.key,
                format!("the path `{}` is already used by another route", p.value),
            );
        }
    }
    if let Some(s) = &server {
        if s.listen == admin.listen && s.listen.port() != 0 {
            ctx.error(
                top.span(),
                "admin.listen",
                "the admin listener must not use the same address as server.listen",
            );
        }
    }
    let server = server?;
    let route_table = RouteTable::new(routes.iter().map(|r: &RouteConfig| r.path.as_str())).ok()?;
    Some(Config {
        server,
        admin,
        log,
        routes,
        route_table,
        xmpp,
        bosh,
        sip,
    })
}

fn read_server(
    ctx: &mut Ctx<'_>,
    t: Option<&mut Table<'_, '_>>,
    base: &Path,
) -> Option<ServerConfig> {
    let mut s = ServerConfig {
        listen: "127.0.0.1:5280".parse().expect("literal"),
        tls: None,
        max_connections: 10_000,
        max_connections_per_ip: 256,
        handshake_timeout: 10 * SEC,
        header_read_timeout: 10 * SEC,
        body_read_timeout: 10 * SEC,
        idle_timeout: 120 * SEC,
        drain_timeout: 30 * SEC,
        shutdown_delay: Duration::ZERO,
        max_header_size: 16 * 1024,
        http2: true,
        h2c: false,
        h2_max_concurrent_streams: 100,
        h2_keepalive_interval: 30 * SEC,
        h2_keepalive_timeout: 20 * SEC,
    };
    let Some(t) = t else {
        return Some(s);
    };
    if let Some(a) = t.socket_addr(ctx, "listen") {
        s.listen = a.value;
    }
    if let Some(n) = t.integer(ctx, "max_connections", 1..=10_000_000) {
        s.max_connections = n as usize;
    }
    if let Some(n) = t.integer(ctx, "max_connections_per_ip", 0..=10_000_000) {
        s.max_connections_per_ip = n as usize;
    }
    if let Some(d) = t.duration(ctx, "handshake_timeout", Duration::from_millis(100)..=DAY) {
        s.handshake_timeout = d;
    }
    if let Some(d) = t.duration(ctx, "header_read_timeout", Duration::from_millis(100)..=DAY) {
        s.header_read_timeout = d;
    }
    if let Some(d) = t.duration(ctx, "body_read_timeout", Duration::from_millis(100)..=DAY) {
        s.body_read_timeout = d;
    }
    if let Some(d) = t.duration(ctx, "idle_timeout", SEC..=DAY) {
        s.idle_timeout = d;
    }
    if let Some(d) = t.duration(ctx, "drain_timeout", Duration::ZERO..=DAY) {
        s.drain_timeout = d;
    }
    if let Some(d) = t.duration(ctx, "shutdown_delay", Duration::ZERO..=DAY) {
        s.shutdown_delay = d;
    }
    if let Some(n) = t.size(ctx, "max_header_size", 8192..=1 << 20) {
        s.max_header_size = n as usize;
    }
    if let Some(b) = t.bool(ctx, "http2") {
        s.http2 = b;
    }
    if let Some(b) = t.bool(ctx, "h2c") {
        s.h2c = b;
    }
    if let Some(n) = t.integer(ctx, "h2_max_concurrent_streams", 1..=10_000) {
        s.h2_max_concurrent_streams = n as u32;
    }
    if let Some(d) = t.duration(ctx, "h2_keepalive_interval", Duration::ZERO..=DAY) {
        s.h2_keepalive_interval = d;
    }
    if let Some(d) = t.duration(ctx, "h2_keepalive_timeout", SEC..=DAY) {
        s.h2_keepalive_timeout = d;
    }
    if let Some(mut tls) = t.table(ctx, "tls", TLS_KEYS) {
        let certs = tls.table_array(ctx, "certificate", CERT_KEYS);
        let mut certificates = Vec::new();
        if certs.is_empty() {
            ctx.error(
                tls.span(),
                &tls.key("certificate"),
                "expected at least one `[[server.tls.certificate]]` with `cert` and `key`",
            );
        }
        for mut c in certs {
            let cert = c.string(ctx, "cert", "a path to a PEM certificate chain");
            let key = c.string(ctx, "key", "a path to a PEM private key");
            match (cert, key) {
                (Some(cert), Some(key)) => {
                    certificates.extend(cert_pair(ctx, base, cert, key));
                }
                (cert, key) => {
                    for (name, v) in [("cert", cert.is_none()), ("key", key.is_none())] {
                        if v {
                            ctx.error(
                                c.span(),
                                &c.key(name),
                                "missing: every certificate needs `cert` and `key` (PEM files)",
                            );
                        }
                    }
                }
            }
            c.finish(ctx);
        }
        tls.finish(ctx);
        s.tls = Some(TlsConfig { certificates });
    }
    Some(s)
}

fn parse_backend(s: &str) -> Result<(String, u16, bool), String> {
    let expected = "expected \"host:port\" or \"tls://host:port\" (e.g. \"127.0.0.1:7000\", \"[::1]:7000\", \"tls://svc.internal:7001\")";
    let (tls, rest) = match s.split_once("://") {
        Some(("tls", rest)) => (true, rest),
        Some(("tcp", rest)) => (false, rest),
        Some((other, _)) => return Err(format!("unknown scheme `{other}://`; {expected}")),
        None => (false, s),
    };
    let (host, port) = parse_host_port(rest, expected)?;
    Ok((host, port, tls))
}

/// `host:port` or `[ipv6]:port` (no scheme); `expected` ends every error.
fn parse_host_port(rest: &str, expected: &str) -> Result<(String, u16), String> {
    let (host, port, bracketed) = if let Some(r) = rest.strip_prefix('[') {
        let (h, p) = r.split_once("]:").ok_or_else(|| expected.to_string())?;
        (h, p, true)
    } else {
        let (h, p) = rest.rsplit_once(':').ok_or_else(|| expected.to_string())?;
        (h, p, false)
    };
    if host.contains(':') && !bracketed {
        return Err(format!("an IPv6 address needs brackets; {expected}"));
    }
    if host.is_empty()
        || host.contains(['/', ' ', '@', '?', '#'])
        || (host.contains(':') && host.parse::<std::net::Ipv6Addr>().is_err())
    {
        return Err(expected.to_string());
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("the port must be 1 to 65535; {expected}"))?;
    Ok((host.to_string(), port))
}

/// What `read_route` found: the route (if valid), its path and its kind.
type RouteRead = (
    Option<RouteConfig>,
    Option<reader::At<String>>,
    Option<reader::At<KindName>>,
);

/// The `kind` key as written, before the route's other keys are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KindName {
    Tcp,
    XmppWebSocket,
    Bosh,
    SipWebSocket,
}

impl KindName {
    fn is_xmpp(self) -> bool {
        matches!(self, KindName::XmppWebSocket | KindName::Bosh)
    }
}

fn read_route(
    ctx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    base: &Path,
    xmpp: &XmppConfig,
    server_tls: bool,
) -> RouteRead {
    let path = t.string(ctx, "path", "a request path such as \"/echo\"");
    if path.is_none() {
        ctx.error(
            t.span(),
            &t.key("path"),
            "missing: every route needs a `path` such as \"/echo\"",
        );
    }
    if let Some(p) = &path {
        if let Err(e) = ucgate_proto::route::validate_path(&p.value) {
            ctx.error(p.span.clone(), &p.key, e.to_string());
        }
    }
    let kinds = "\"tcp\", \"xmpp-websocket\", \"bosh\", \"sip-websocket\"";
    let kind = match t.string(ctx, "kind", kinds) {
        Some(k) => match k.value.as_str() {
            "tcp" => Some(KindName::Tcp),
            "xmpp-websocket" => Some(KindName::XmppWebSocket),
            "bosh" => Some(KindName::Bosh),
            "sip-websocket" => Some(KindName::SipWebSocket),
            other => {
                ctx.error(
                    k.span.clone(),
                    &k.key,
                    format!("unknown route kind `{other}`; expected one of: {kinds}"),
                );
                None
            }
        }
        .map(|value| reader::At {
            value,
            span: k.span,
            key: k.key,
        }),
        None => {
            ctx.error(
                t.span(),
                &t.key("kind"),
                format!("missing: every route needs a `kind`, one of: {kinds}"),
            );
            None
        }
    };
    let xmpp_route = matches!(&kind, Some(k) if k.value == KindName::XmppWebSocket);
    let bosh_route = matches!(&kind, Some(k) if k.value == KindName::Bosh);
    let sip_route = matches!(&kind, Some(k) if k.value == KindName::SipWebSocket);
    let core = match t.string(ctx, "core", "\"sip:host:port;transport=udp|tcp|tls\"") {
        Some(c) if sip_route => match sip::parse_core(&c.value) {
            Ok(core) => Some(Some(core)),
            Err(e) => {
                ctx.error(c.span.clone(), &c.key, e);
                None
            }
        },
        Some(c) => {
            ctx.error(
                c.span.clone(),
                &c.key,
                "only used by a `sip-websocket` route",
            );
            None
        }
        None if sip_route => {
            ctx.error(
                t.span(),
                &t.key("core"),
                "missing: a `sip-websocket` route needs a `core` such as \"sip:127.0.0.1:5070;transport=udp\"",
            );
            None
        }
        None => Some(None),
    };
    let core = core.map(|c| c.map(|c| read_core_tls(ctx, t, base, c, server_tls)));
    if !sip_route {
        for key in ["core_server_name", "core_ca_file"] {
            if let Some(span) = t.value_span(key) {
                ctx.error(span, &t.key(key), "only used by a `sip-websocket` route");
            }
        }
    }
    if bosh_route {
        for key in [
            "subprotocols",
            "require_subprotocol",
            "max_message_size",
            "max_frame_size",
            "ping_interval",
            "ping_timeout",
        ] {
            if let Some(span) = t.value_span(key) {
                ctx.error(span, &t.key(key), "not used by a `bosh` route (it serves HTTP requests, not WebSockets); see `[bosh]` for its limits");
            }
        }
    }
    let backend = if sip_route {
        read_no_backend_sip(ctx, t)
    } else if xmpp_route || bosh_route {
        read_no_backend(ctx, t)
    } else {
        read_backend(ctx, t, base)
    };
    let origins = match t.string_list(ctx, "origins") {
        Some(list) => {
            let strs: Vec<&str> = list.iter().map(|a| a.value.as_str()).collect();
            if strs.len() > 1 && strs.contains(&"*") {
                let a = &list[strs.iter().position(|s| *s == "*").unwrap_or(0)];
                ctx.error(
                    a.span.clone(),
                    &a.key,
                    "\"*\" allows every origin and must be the only entry",
                );
                None
            } else {
                match OriginPolicy::from_list(&strs) {
                    Ok(p) => Some(p),
                    Err((i, e)) => {
                        ctx.error(list[i].span.clone(), &list[i].key, e.to_string());
                        None
                    }
                }
            }
        }
        None => Some(OriginPolicy::SameOrigin),
    };
    let subprotocols = match t.string_list(ctx, "subprotocols") {
        Some(list) => {
            for a in &list {
                let ok = !a.value.is_empty()
                    && a.value
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
                if !ok {
                    ctx.error(
                        a.span.clone(),
                        &a.key,
                        "expected an HTTP token (letters, digits, `-`, `.`, …)",
                    );
                }
            }
            let values: Vec<String> = list.iter().map(|a| a.value.clone()).collect();
            if xmpp_route && values != ["xmpp"] {
                // Point at the first entry that is not the lone "xmpp".
                let (span, key) = match list
                    .iter()
                    .enumerate()
                    .find(|(i, a)| *i > 0 || a.value != "xmpp")
                {
                    Some((_, a)) => (a.span.clone(), a.key.clone()),
                    None => (
                        t.value_span("subprotocols").unwrap_or(t.span()),
                        t.key("subprotocols"),
                    ),
                };
                ctx.error(
                    span,
                    &key,
                    "an `xmpp-websocket` route accepts exactly the `xmpp` subprotocol (RFC 7395 §3.1): write `subprotocols = [\"xmpp\"]` or leave the key out",
                );
            }
            values
        }
        None if xmpp_route => vec!["xmpp".to_string()],
        None if sip_route => vec!["sip".to_string()],
        // websockify's `binary` subprotocol, so noVNC-style clients work unchanged
        None => vec!["binary".to_string()],
    };
    let require_subprotocol = t
        .bool(ctx, "require_subprotocol")
        .unwrap_or(xmpp_route || sip_route);
    if sip_route && (!require_subprotocol || subprotocols != ["sip"]) {
        ctx.error(
            t.value_span("subprotocols")
                .or(t.value_span("require_subprotocol"))
                .unwrap_or(t.span()),
            &t.key("subprotocols"),
            "a `sip-websocket` route requires exactly the `sip` subprotocol (RFC 7118 §4): leave `subprotocols` and `require_subprotocol` out",
        );
    }
    if xmpp_route && !require_subprotocol {
        ctx.error(
            t.value_span("require_subprotocol").unwrap_or(t.span()),
            &t.key("require_subprotocol"),
            "an `xmpp-websocket` route always requires the `xmpp` subprotocol (RFC 7395 §3.1): leave the key out or set it to true",
        );
    }
    // (an xmpp-websocket route's list has its own error above)
    if require_subprotocol && subprotocols.is_empty() && !xmpp_route {
        ctx.error(
            t.span(),
            &t.key("require_subprotocol"),
            "requires a non-empty `subprotocols` list",
        );
    }
    let default_message_size = if xmpp_route {
        xmpp.max_stanza_size as u64
    } else {
        64 << 10
    };
    let max_message_size = t
        .size(ctx, "max_message_size", 1..=64 << 20)
        .unwrap_or(default_message_size) as usize;
    let max_frame_size = t
        .size(ctx, "max_frame_size", 1..=64 << 20)
        .map(|n| n as usize)
        .unwrap_or(max_message_size);
    if max_frame_size > max_message_size {
        ctx.error(
            t.span(),
            &t.key("max_frame_size"),
            "must not exceed `max_message_size`",
        );
    }
    let buffer_size = t
        .size(ctx, "buffer_size", 1024..=1 << 20)
        .unwrap_or(8 << 10) as usize;
    let ping_interval = t
        .duration(ctx, "ping_interval", Duration::ZERO..=DAY)
        .unwrap_or(30 * SEC);
    let ping_timeout = t
        .duration(ctx, "ping_timeout", SEC..=DAY)
        .unwrap_or(30 * SEC);
    let idle_timeout = t
        .duration(ctx, "idle_timeout", Duration::ZERO..=7 * DAY)
        .unwrap_or(Duration::ZERO);
    if xmpp_route {
        if let Some(span) = t.value_span("connect_timeout") {
            ctx.error(
                span,
                &t.key("connect_timeout"),
                "not used by an `xmpp-websocket` route: set `xmpp.connect_timeout` in `[xmpp]`",
            );
        }
    }
    let connect_timeout = t
        .duration(
            ctx,
            "connect_timeout",
            Duration::from_millis(10)..=Duration::from_secs(600),
        )
        .unwrap_or(5 * SEC);
    let connect_timeout = if xmpp_route {
        xmpp.connect_timeout
    } else {
        connect_timeout
    };
    let close_timeout = t
        .duration(
            ctx,
            "close_timeout",
            Duration::from_millis(10)..=Duration::from_secs(600),
        )
        .unwrap_or(5 * SEC);
    let route = (|| {
        Some(RouteConfig {
            path: path.as_ref()?.value.clone(),
            kind: match (kind.as_ref()?.value, backend?, core?) {
                (KindName::Tcp, Some(b), None) => RouteKind::Tcp(b),
                (KindName::XmppWebSocket, None, None) => RouteKind::XmppWebSocket,
                (KindName::Bosh, None, None) => RouteKind::Bosh,
                (KindName::SipWebSocket, None, Some(c)) => RouteKind::SipWebSocket(c),
                _ => return None,
            },
            origins: origins?,
            subprotocols,
            require_subprotocol,
            max_message_size,
            max_frame_size,
            buffer_size,
            ping_interval,
            ping_timeout,
            idle_timeout,
            connect_timeout,
            close_timeout,
        })
    })();
    (route, path, kind)
}

/// `backend`, `backend_server_name` and `backend_ca_file` of a `tcp` route
/// (and of a route whose kind is missing or unknown). `None`: an error was
/// reported.
fn read_backend(ctx: &mut Ctx<'_>, t: &mut Table<'_, '_>, base: &Path) -> Option<Option<Backend>> {
    let backend = match t.string(ctx, "backend", "\"host:port\"") {
        Some(b) => match parse_backend(&b.value) {
            Ok(v) => Some(v),
            Err(e) => {
                ctx.error(b.span, &b.key, e);
                None
            }
        },
        None => {
            ctx.error(
                t.span(),
                &t.key("backend"),
                "missing: a `tcp` route needs a `backend` such as \"127.0.0.1:7000\"",
            );
            None
        }
    };
    let server_name = t.string(ctx, "backend_server_name", "a DNS name");
    let ca_file = t.string(ctx, "backend_ca_file", "a path to a PEM CA bundle");
    let (host, port, tls) = backend?;
    let tls_cfg = if tls {
        Some(verified_tls(
            ctx,
            t,
            base,
            &host,
            (server_name.as_ref(), "backend_server_name"),
            ca_file.as_ref(),
        ))
    } else {
        for v in [&server_name, &ca_file].into_iter().flatten() {
            ctx.error(
                v.span.clone(),
                &v.key,
                "only meaningful with a TLS backend (`backend = \"tls://host:port\"`)",
            );
        }
        None
    };
    Some(Some(Backend {
        host,
        port,
        tls: tls_cfg,
    }))
}

/// `core_server_name` and `core_ca_file` of a `sip-websocket` route: the
/// certificate check toward a `transport=tls` core. A TLS core also needs a
/// certificate of the gateway (`sip.tls_cert`/`sip.tls_key`, else
/// `[server.tls]`): the core opens TLS connections to the gateway for
/// requests toward clients.
fn read_core_tls(
    ctx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    base: &Path,
    mut core: SipCore,
    server_tls: bool,
) -> SipCore {
    let server_name = t.string(ctx, "core_server_name", "a DNS name or IP address");
    let ca_file = t.string(ctx, "core_ca_file", "a path to a PEM CA bundle");
    if core.transport != SipTransport::Tls {
        for v in [&server_name, &ca_file].into_iter().flatten() {
            ctx.error(
                v.span.clone(),
                &v.key,
                "only meaningful with a TLS core (`core = \"sip:host:port;transport=tls\"`)",
            );
        }
        return core;
    }
    if !server_tls {
        ctx.error(
            t.value_span("core").unwrap_or(t.span()),
            &t.key("core"),
            "a `transport=tls` core needs a certificate for the TLS connections it opens to the gateway (requests toward clients): set `sip.tls_cert` and `sip.tls_key`, or `[server.tls]`",
        );
    }
    core.tls = Some(verified_tls(
        ctx,
        t,
        base,
        &core.host,
        (server_name.as_ref(), "core_server_name"),
        ca_file.as_ref(),
    ));
    core
}

/// The certificate check toward a TLS peer (a `tls://` backend or a TLS
/// SIP core): the name to verify (given, else `host`; checked to be a DNS
/// name or IP address, errors reported at `name_key`) and the CA bundle
/// (resolved against `base` and loaded once to report problems now).
fn verified_tls(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    base: &Path,
    host: &str,
    (server_name, name_key): (Option<&reader::At<String>>, &str),
    ca_file: Option<&reader::At<String>>,
) -> BackendTls {
    let ca = ca_file.map(|c| resolve(base, &c.value));
    if let (Some(c), Some(p)) = (ca_file, &ca) {
        if let Err(e) = crate::tls::load_ca_file(p) {
            ctx.error(c.span.clone(), &c.key, e);
        }
    }
    let name = server_name.map_or_else(|| host.to_string(), |s| s.value.clone());
    if rustls_pki_types::ServerName::try_from(name.clone()).is_err() {
        let span = server_name.map_or(t.span(), |s| s.span.clone());
        ctx.error(
            span,
            &t.key(name_key),
            "expected a DNS name or IP address for certificate verification",
        );
    }
    BackendTls {
        server_name: name,
        ca_file: ca,
    }
}

/// Loads a `cert`/`key` pair of PEM files (paths resolved against `base`)
/// to check them now; errors are reported at the key of the file at fault.
pub(super) fn cert_pair(
    ctx: &mut Ctx<'_>,
    base: &Path,
    cert: reader::At<String>,
    key: reader::At<String>,
) -> Option<CertificateConfig> {
    let cp = resolve(base, &cert.value);
    let kp = resolve(base, &key.value);
    match crate::tls::load_certified_key(&cp, &kp) {
        Ok(_) => Some(CertificateConfig { cert: cp, key: kp }),
        Err(e) => {
            let (span, k) = match e.which {
                crate::tls::PemFile::Cert => (cert.span, cert.key),
                crate::tls::PemFile::Key => (key.span, key.key),
            };
            ctx.error(span, &k, e.message);
            None
        }
    }
}

/// A `sip-websocket` route reaches its `core`; the backend keys are refused.
fn read_no_backend_sip(ctx: &mut Ctx<'_>, t: &mut Table<'_, '_>) -> Option<Option<Backend>> {
    let mut ok = true;
    for key in ["backend", "backend_server_name", "backend_ca_file"] {
        if let Some(span) = t.value_span(key) {
            ok = false;
            ctx.error(
                span,
                &t.key(key),
                "not allowed for a `sip-websocket` route: set `core = \"sip:host:port;transport=udp|tcp|tls\"`",
            );
        }
    }
    ok.then_some(None)
}

/// An `xmpp-websocket` route has no fixed backend: each of the backend keys
/// is an error.
fn read_no_backend(ctx: &mut Ctx<'_>, t: &mut Table<'_, '_>) -> Option<Option<Backend>> {
    let mut ok = true;
    if let Some(b) = t.string(ctx, "backend", "\"host:port\"") {
        ctx.error(
            b.span,
            &b.key,
            "not allowed for an `xmpp-websocket` route: the XMPP server is chosen by the `to` domain of the client's `<open/>` from `[xmpp.domains]`",
        );
        ok = false;
    }
    for (key, instead) in [
        ("backend_server_name", "server_name"),
        ("backend_ca_file", "ca_file"),
    ] {
        if let Some(v) = t.string(ctx, key, "a string") {
            ctx.error(
                v.span,
                &v.key,
                format!("not allowed for an `xmpp-websocket` route: set `{instead}` per domain in `[xmpp.domains.\"…\"]`"),
            );
            ok = false;
        }
    }
    ok.then_some(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends() {
        assert_eq!(
            parse_backend("127.0.0.1:7000").unwrap(),
            ("127.0.0.1".into(), 7000, false)
        );
        assert_eq!(
            parse_backend("[::1]:7000").unwrap(),
            ("::1".into(), 7000, false)
        );
        assert_eq!(
            parse_backend("tls://svc.internal:7001").unwrap(),
            ("svc.internal".into(), 7001, true)
        );
        assert!(parse_backend("svc").is_err());
        assert!(parse_backend("svc:0").is_err());
        assert!(parse_backend("http://svc:80").is_err());
        assert!(parse_backend("::1:80").is_err());
    }

    #[test]
    fn embedded_default_is_valid_and_safe() {
        let c = Config::embedded_default();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:5280");
        assert_eq!(c.admin.listen.to_string(), "127.0.0.1:9280");
        assert!(c.server.listen.ip().is_loopback());
        let loopback = |h: &str| h == "127.0.0.1" || h == "::1" || h == "localhost";
        for r in &c.routes {
            match &r.kind {
                RouteKind::Tcp(b) => assert!(loopback(&b.host)),
                RouteKind::XmppWebSocket | RouteKind::Bosh => assert!(r.kind.backend().is_none()),
                RouteKind::SipWebSocket(core) => assert!(loopback(&core.host)),
            }
            assert_eq!(r.origins, OriginPolicy::SameOrigin);
        }
        assert!(c.routes.iter().any(|r| matches!(r.kind, RouteKind::Tcp(_))));
        assert!(c.routes.iter().any(|r| r.kind == RouteKind::XmppWebSocket));
        assert!(!c.xmpp.domains.is_empty());
        for d in c.xmpp.domains.values() {
            let (host, _) = d.address.as_ref().expect("no DNS in the default");
            assert!(loopback(host));
            assert_ne!(d.tls, XmppTls::None);
        }
        let d = &c.xmpp.domains["localhost"];
        assert_eq!(d.address, Some(("127.0.0.1".to_string(), 5222)));
        assert_eq!(d.tls, XmppTls::StartTls);
        assert_eq!(d.server_name, "localhost");
    }

    /// Errors as `LINE:COLUMN: key: message`.
    fn errors(text: &str) -> Vec<String> {
        match Config::parse(text, "t.toml", Path::new("/nonexistent")) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .errors
                .iter()
                .map(|e| format!("{}:{}: {}: {}", e.line, e.column, e.key, e.message))
                .collect(),
        }
    }

    fn parse(text: &str) -> Config {
        Config::parse(text, "t.toml", Path::new("/base")).unwrap_or_else(|e| panic!("{e}"))
    }

    const XMPP_ROUTE: &str = "[[route]]\npath = \"/xmpp\"\nkind = \"xmpp-websocket\"\n";
    const LOCALHOST: &str = "[xmpp.domains.\"localhost\"]\naddress = \"127.0.0.1:5222\"\n";

    #[test]
    fn xmpp_defaults() {
        let c = parse("");
        assert_eq!(c.xmpp, XmppConfig::default());
        assert_eq!(c.xmpp.connect_timeout, Duration::from_secs(10));
        assert_eq!(c.xmpp.negotiation_timeout, Duration::from_secs(10));
        assert_eq!(c.xmpp.max_stanza_size, 256 * 1024);
        assert_eq!((c.xmpp.max_depth, c.xmpp.max_attributes), (32, 64));
        assert!(c.xmpp.domains.is_empty() && c.xmpp.websocket_url.is_none());

        let c = parse(&format!("{XMPP_ROUTE}{LOCALHOST}"));
        let r = &c.routes[0];
        assert_eq!(r.kind, RouteKind::XmppWebSocket);
        assert_eq!(r.kind.as_str(), "xmpp-websocket");
        assert_eq!(r.kind.backend(), None);
        assert_eq!(r.subprotocols, ["xmpp"]);
        assert!(r.require_subprotocol);
        assert_eq!(r.max_message_size, 256 * 1024);
        assert_eq!(r.max_frame_size, 256 * 1024);
        assert_eq!(r.connect_timeout, Duration::from_secs(10));
        let d = &c.xmpp.domains["localhost"];
        assert_eq!(
            *d,
            XmppDomain {
                name: "localhost".into(),
                address: Some(("127.0.0.1".into(), 5222)),
                tls: XmppTls::StartTls,
                ca_file: None,
                server_name: "localhost".into(),
            }
        );
    }

    #[test]
    fn xmpp_everything_set() {
        let c = parse(&format!(
            "{XMPP_ROUTE}subprotocols = [\"xmpp\"]\nrequire_subprotocol = true\n\
             [xmpp]\nwebsocket_url = \"wss://chat.example.org/xmpp-websocket\"\n\
             bosh_url = \"https://chat.example.org/http-bind\"\nconnect_timeout = \"3s\"\n\
             negotiation_timeout = \"20s\"\nmax_stanza_size = \"1MiB\"\nmax_depth = 10\n\
             max_attributes = 5\n\
             [xmpp.domains.\"Example.ORG\"]\ntls = \"direct\"\nserver_name = \"xmpp.example.net\"\n\
             [xmpp.domains.\"dev.example\"]\naddress = \"[::1]:5222\"\ntls = \"none\"\n\
             [xmpp.domains.\"lan.example\"]\naddress = \"10.0.0.5:5222\"\ntls = \"none\"\nallow_insecure = true\n"
        ));
        let x = &c.xmpp;
        assert_eq!(
            x.websocket_url.as_deref(),
            Some("wss://chat.example.org/xmpp-websocket")
        );
        assert_eq!(
            x.bosh_url.as_deref(),
            Some("https://chat.example.org/http-bind")
        );
        assert_eq!(x.connect_timeout, Duration::from_secs(3));
        assert_eq!(x.negotiation_timeout, Duration::from_secs(20));
        assert_eq!(
            (x.max_stanza_size, x.max_depth, x.max_attributes),
            (1 << 20, 10, 5)
        );
        // The route's message limit follows the stanza limit; its connect
        // deadline is the XMPP one.
        assert_eq!(c.routes[0].max_message_size, 1 << 20);
        assert_eq!(c.routes[0].connect_timeout, Duration::from_secs(3));
        assert_eq!(
            x.domains.keys().collect::<Vec<_>>(),
            ["dev.example", "example.org", "lan.example"]
        );
        let d = &x.domains["example.org"];
        assert_eq!((d.name.as_str(), d.address.as_ref()), ("example.org", None));
        assert_eq!(
            (d.tls, d.server_name.as_str()),
            (XmppTls::Direct, "xmpp.example.net")
        );
        assert_eq!(x.domains["dev.example"].address, Some(("::1".into(), 5222)));
        assert_eq!(x.domains["lan.example"].tls, XmppTls::None);
    }

    #[test]
    fn xmpp_route_errors() {
        assert_eq!(
            errors(XMPP_ROUTE),
            ["3:8: route[0].kind: an XMPP route (`xmpp-websocket`, `bosh`) needs at least one XMPP domain: add a `[xmpp.domains.\"example.org\"]` table (the servers clients may reach, chosen by the `to` of their `<open/>`)"]
        );
        let e = errors(&format!(
            "{XMPP_ROUTE}backend = \"127.0.0.1:5222\"\nbackend_server_name = \"x\"\n\
             backend_ca_file = \"ca.pem\"\nsubprotocols = [\"xmpp\", \"binary\"]\n\
             require_subprotocol = false\nconnect_timeout = \"1s\"\n{LOCALHOST}"
        ));
        assert_eq!(
            e,
            [
                "4:11: route[0].backend: not allowed for an `xmpp-websocket` route: the XMPP server is chosen by the `to` domain of the client's `<open/>` from `[xmpp.domains]`",
                "5:23: route[0].backend_server_name: not allowed for an `xmpp-websocket` route: set `server_name` per domain in `[xmpp.domains.\"…\"]`",
                "6:19: route[0].backend_ca_file: not allowed for an `xmpp-websocket` route: set `ca_file` per domain in `[xmpp.domains.\"…\"]`",
                "7:25: route[0].subprotocols[1]: an `xmpp-websocket` route accepts exactly the `xmpp` subprotocol (RFC 7395 §3.1): write `subprotocols = [\"xmpp\"]` or leave the key out",
                "8:23: route[0].require_subprotocol: an `xmpp-websocket` route always requires the `xmpp` subprotocol (RFC 7395 §3.1): leave the key out or set it to true",
                "9:19: route[0].connect_timeout: not used by an `xmpp-websocket` route: set `xmpp.connect_timeout` in `[xmpp]`",
            ]
        );
        let e = errors(&format!("{XMPP_ROUTE}subprotocols = []\n{LOCALHOST}"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(
                "4:16: route[0].subprotocols: an `xmpp-websocket` route accepts exactly"
            ),
            "{e:?}"
        );
        let e = errors(&format!(
            "{XMPP_ROUTE}subprotocols = [\"XMPP\"]\n{LOCALHOST}"
        ));
        assert!(
            e[0].starts_with("4:17: route[0].subprotocols[0]: "),
            "{e:?}"
        );
        // A tcp route still needs its backend; the kind list names both kinds.
        let e = errors("[[route]]\npath = \"/a\"\nkind = \"sip\"\n");
        assert_eq!(
            e,
            [
                "1:1: route[0].backend: missing: a `tcp` route needs a `backend` such as \"127.0.0.1:7000\"",
                "3:8: route[0].kind: unknown route kind `sip`; expected one of: \"tcp\", \"xmpp-websocket\", \"bosh\", \"sip-websocket\"",
            ]
        );
    }

    #[test]
    fn xmpp_section_errors() {
        let e = errors(
            "[xmpp]\nwebsocket_url = \"https://x.example/ws\"\nbosh_url = \"ws://x.example/b\"\n\
             connect_timeout = \"0s\"\nnegotiation_timeout = 5\nmax_stanza_size = \"512\"\n\
             max_depth = 1\nmax_attributes = 0\ncolour = 1\n",
        );
        assert_eq!(
            e,
            [
                "2:17: xmpp.websocket_url: the scheme `https://` is not allowed here; expected an absolute ws:// or wss:// URL such as \"wss://chat.example.org/xmpp-websocket\"",
                "3:12: xmpp.bosh_url: the scheme `ws://` is not allowed here; expected an absolute http:// or https:// URL such as \"https://chat.example.org/http-bind\"",
                "4:19: xmpp.connect_timeout: expected a duration from 10ms to 10m",
                "5:23: xmpp.negotiation_timeout: expected a duration such as \"10s\" or \"250ms\", found an integer",
                "6:19: xmpp.max_stanza_size: expected a size from 1024 to 16777216 bytes (an integer, or a string such as \"64KiB\")",
                "7:13: xmpp.max_depth: expected an integer from 2 to 1000",
                "8:18: xmpp.max_attributes: expected an integer from 1 to 10000",
                "9:1: xmpp.colour: unknown key; expected one of: `websocket_url`, `bosh_url`, `connect_timeout`, `negotiation_timeout`, `max_stanza_size`, `max_depth`, `max_attributes`, `domains`",
            ]
        );
    }

    #[test]
    fn xmpp_domain_errors() {
        let e = errors(
            "[xmpp.domains.\"a..b\"]\n\
             [xmpp.domains.\"Example.org\"]\n\
             [xmpp.domains.\"example.ORG\"]\n\
             [xmpp.domains.\"c.example\"]\naddress = \"tls://c.example:5223\"\ntls = \"quic\"\nport = 1\n\
             [xmpp.domains.\"d.example\"]\ntls = \"none\"\nca_file = \"ca.pem\"\nserver_name = \"d\"\n\
             [xmpp.domains.\"e.example\"]\naddress = \"192.0.2.1:5222\"\ntls = \"none\"\n\
             [xmpp.domains.\"f.example\"]\nallow_insecure = true\nca_file = \"missing.pem\"\nserver_name = \"bad name\"\n",
        );
        assert_eq!(
            e,
            [
                "1:15: xmpp.domains.\"a..b\": `a..b` is not a valid DNS name (labels of 1 to 63 letters, digits or `-`, separated by single dots, no trailing dot); expected a DNS name such as \"example.org\" or \"localhost\"",
                "3:15: xmpp.domains.\"example.ORG\": the domain `example.org` is already configured as `xmpp.domains.\"Example.org\"` (domain names are compared in lower case)",
                "5:11: xmpp.domains.\"c.example\".address: no scheme (`tls://`) here: TLS is chosen by `tls`; expected \"host:port\" (e.g. \"127.0.0.1:5222\", \"[::1]:5222\", \"xmpp.example.org:5222\")",
                "6:7: xmpp.domains.\"c.example\".tls: unknown TLS mode `quic`; expected \"starttls\", \"direct\" or \"none\"",
                "7:1: xmpp.domains.\"c.example\".port: unknown key; expected one of: `address`, `tls`, `ca_file`, `server_name`, `allow_insecure`",
                "9:7: xmpp.domains.\"d.example\".tls: `tls = \"none\"` sends passwords in clear text: only allowed when `address` is a loopback address (127.0.0.0/8, ::1 or localhost), or with `allow_insecure = true`",
                "10:11: xmpp.domains.\"d.example\".ca_file: cannot read `/nonexistent/ca.pem`: I/O error: No such file or directory (os error 2)",
                "10:11: xmpp.domains.\"d.example\".ca_file: only meaningful with `tls = \"starttls\"` or `tls = \"direct\"`",
                "11:15: xmpp.domains.\"d.example\".server_name: only meaningful with `tls = \"starttls\"` or `tls = \"direct\"`",
                "14:7: xmpp.domains.\"e.example\".tls: `tls = \"none\"` sends passwords in clear text: only allowed when `address` is a loopback address (127.0.0.0/8, ::1 or localhost), or with `allow_insecure = true`",
                "16:18: xmpp.domains.\"f.example\".allow_insecure: only meaningful with `tls = \"none\"`",
                "17:11: xmpp.domains.\"f.example\".ca_file: cannot read `/nonexistent/missing.pem`: I/O error: No such file or directory (os error 2)",
                "18:15: xmpp.domains.\"f.example\".server_name: expected a DNS name or IP address for certificate verification",
            ]
        );
        // Loopback addresses may go without TLS.
        for addr in [
            "127.0.0.1:5222",
            "127.9.9.9:5222",
            "[::1]:5222",
            "localhost:5222",
            "LOCALHOST:5222",
        ] {
            let t = format!("[xmpp.domains.\"x.example\"]\naddress = \"{addr}\"\ntls = \"none\"\n");
            assert!(errors(&t).is_empty(), "{addr}: {:?}", errors(&t));
        }
        // A domain entry that is not a table.
        let e = errors("[xmpp.domains]\n\"x.example\" = \"127.0.0.1:5222\"\n");
        assert_eq!(
            e,
            ["2:15: xmpp.domains.\"x.example\": expected a table, found a string"]
        );
    }

    #[test]
    fn every_key_is_listed() {
        let keys = all_keys();
        for k in [
            "xmpp.websocket_url",
            "xmpp.bosh_url",
            "xmpp.connect_timeout",
            "xmpp.negotiation_timeout",
            "xmpp.max_stanza_size",
            "xmpp.max_depth",
            "xmpp.max_attributes",
            "xmpp.domains",
            "xmpp.domains.address",
            "xmpp.domains.tls",
            "xmpp.domains.ca_file",
            "xmpp.domains.server_name",
            "xmpp.domains.allow_insecure",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k}");
        }
    }

    #[test]
    fn route_kind_carries_what_the_kind_needs() {
        let c = parse("[[route]]\npath = \"/a\"\nkind = \"tcp\"\nbackend = \"127.0.0.1:7000\"\n");
        assert_eq!(
            c.routes[0].kind,
            RouteKind::Tcp(Backend {
                host: "127.0.0.1".into(),
                port: 7000,
                tls: None,
            })
        );
        assert_eq!(c.routes[0].kind.as_str(), "tcp");
        assert!(c.routes[0].kind.core().is_none());
    }

    const SIP_ROUTE: &str =
        "[[route]]\npath = \"/sip\"\nkind = \"sip-websocket\"\ncore = \"sip:127.0.0.1:5070;transport=udp\"\n";
    const SIP_KEY: &str = "[sip]\nflow_token_key = \"0123456789abcdef\"\n";

    #[test]
    fn sip_route() {
        let c = parse(&format!("{SIP_ROUTE}{SIP_KEY}"));
        let r = &c.routes[0];
        assert!(matches!(r.kind, RouteKind::SipWebSocket(_)));
        assert_eq!(r.kind.as_str(), "sip-websocket");
        assert!(r.kind.is_websocket() && r.kind.backend().is_none());
        assert_eq!(
            r.kind.core(),
            Some(&SipCore {
                host: "127.0.0.1".into(),
                port: 5070,
                transport: SipTransport::Udp,
                tls: None,
            })
        );
        assert_eq!(
            (r.subprotocols.as_slice(), r.require_subprotocol),
            (&["sip".to_string()][..], true)
        );
        let s = &c.sip;
        assert_eq!(
            (s.udp_threshold, s.flow_gone, s.require_path_support),
            (1300, 430, false)
        );
        assert_eq!((s.max_messages_per_second, s.max_garbage), (20, 5));
        assert_eq!(
            s.flow_token_key.as_ref().unwrap().expose(),
            b"0123456789abcdef"
        );
        assert!(
            !format!("{c:?}").contains("0123456789abcdef"),
            "the key never prints"
        );
        let c = parse(&format!(
            "{SIP_ROUTE}{SIP_KEY}advertised_host = \"gw.example\"\nudp_threshold = 1200\nflow_gone = \"480\"\nrequire_path_support = true\nmax_messages_per_second = 5\nmax_garbage = 2\n"
        ));
        assert_eq!(c.sip.advertised_host.as_deref(), Some("gw.example"));
        assert_eq!(
            (
                c.sip.udp_threshold,
                c.sip.flow_gone,
                c.sip.require_path_support
            ),
            (1200, 480, true)
        );
        assert_eq!((c.sip.max_messages_per_second, c.sip.max_garbage), (5, 2));
    }

    #[test]
    fn sip_core_port_settings() {
        let s = parse(&format!("{SIP_ROUTE}{SIP_KEY}")).sip;
        assert_eq!(s.core_sources, None, "default: the core's addresses");
        assert_eq!(s.core_max_connections, 64);
        assert_eq!(s.core_idle_timeout, Duration::from_secs(180));
        let s = parse(&format!(
            "{SIP_ROUTE}{SIP_KEY}core_sources = [\"10.0.0.0/8\", \"192.0.2.7\", \"2001:db8::/32\"]\ncore_max_connections = 8\ncore_idle_timeout = \"2m\"\n"
        ))
        .sip;
        assert_eq!(
            s.core_sources.unwrap().to_string(),
            "10.0.0.0/8, 192.0.2.7, 2001:db8::/32"
        );
        assert_eq!(s.core_max_connections, 8);
        assert_eq!(s.core_idle_timeout, Duration::from_secs(120));
        let e = errors(&format!(
            "{SIP_ROUTE}{SIP_KEY}core_sources = [\"10.0.0.0/8\", \"core.example\", \"10.1.2.3/8\", 7]\n"
        ));
        assert!(
            e.iter()
                .any(|e| e.contains("sip.core_sources[1]: expected an IP address or a CIDR range")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|e| e.contains("sip.core_sources[2]: bits are set after the prefix length: did you mean \"10.0.0.0/8\"")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|e| e.contains("sip.core_sources[3]: expected a string")),
            "{e:?}"
        );
        let e = errors(&format!("{SIP_ROUTE}{SIP_KEY}core_max_connections = 0\n"));
        assert!(
            e.iter().any(|e| e.contains("sip.core_max_connections")),
            "{e:?}"
        );
        let e = errors(&format!("{SIP_ROUTE}{SIP_KEY}core_idle_timeout = \"0s\"\n"));
        assert!(
            e.iter().any(|e| e.contains("sip.core_idle_timeout")),
            "{e:?}"
        );
    }

    #[test]
    fn sip_route_errors() {
        // Without a key the route is valid: each process draws its own.
        assert!(parse(SIP_ROUTE).sip.flow_token_key.is_none());
        let e = errors(&format!("{SIP_ROUTE}[sip]\nflow_token_key = \"short\"\n"));
        assert!(e.iter().any(|e| e.contains("too short")), "{e:?}");
        assert!(
            !e.iter().any(|e| e.contains("\"short\"")),
            "the key is not echoed: {e:?}"
        );
        let e = errors(&format!(
            "[[route]]\npath = \"/sip\"\nkind = \"sip-websocket\"\n{SIP_KEY}"
        ));
        assert!(
            e.iter().any(|e| e.contains("route[0].core: missing")),
            "{e:?}"
        );
        let e = errors(&format!("{SIP_ROUTE}backend = \"127.0.0.1:1\"\n{SIP_KEY}"));
        assert!(
            e.iter()
                .any(|e| e.contains("route[0].backend: not allowed")),
            "{e:?}"
        );
        let e = errors(&format!(
            "{SIP_ROUTE}subprotocols = [\"binary\"]\n{SIP_KEY}"
        ));
        assert!(
            e.iter()
                .any(|e| e.contains("exactly the `sip` subprotocol")),
            "{e:?}"
        );
        let e = errors(&format!(
            "{SIP_ROUTE}require_subprotocol = false\n{SIP_KEY}"
        ));
        assert!(
            e.iter()
                .any(|e| e.contains("exactly the `sip` subprotocol")),
            "{e:?}"
        );
        let e = errors("[[route]]\npath = \"/a\"\nkind = \"sip-websocket\"\ncore = \"sip:h:5060;transport=sctp\"\n[sip]\nflow_token_key = \"0123456789abcdef\"\n");
        assert!(
            e.iter()
                .any(|e| e.contains("route[0].core: unknown transport")),
            "{e:?}"
        );
        let e = errors("[[route]]\npath = \"/a\"\nkind = \"tcp\"\nbackend = \"127.0.0.1:1\"\ncore = \"sip:h\"\n");
        assert!(
            e.iter().any(|e| e.contains("route[0].core: only used")),
            "{e:?}"
        );
        let e = errors(&format!("{SIP_ROUTE}{SIP_KEY}flow_gone = \"404\"\n"));
        assert!(e.iter().any(|e| e.contains("sip.flow_gone")), "{e:?}");
        // TLS settings only with a TLS core; a TLS core needs [server.tls].
        let e = errors(&format!(
            "{SIP_ROUTE}core_server_name = \"core.example\"\n{SIP_KEY}"
        ));
        assert!(
            e.iter()
                .any(|e| e.contains("route[0].core_server_name: only meaningful with a TLS core")),
            "{e:?}"
        );
        let tls_route = "[[route]]\npath = \"/sip\"\nkind = \"sip-websocket\"\ncore = \"sip:core.example;transport=tls\"\n";
        let e = errors(&format!("{tls_route}{SIP_KEY}"));
        assert!(
            e.iter()
                .any(|e| e.contains("route[0].core: a `transport=tls` core needs a certificate")),
            "{e:?}"
        );
        // sip.tls_cert and sip.tls_key: together, and loadable.
        let e = errors(&format!("{tls_route}{SIP_KEY}tls_cert = \"gw.crt\"\n"));
        assert!(
            e.iter()
                .any(|e| e.contains("sip.tls_cert: `tls_cert` and `tls_key` go together")),
            "{e:?}"
        );
        let e = errors(&format!(
            "{tls_route}{SIP_KEY}tls_cert = \"/nonexistent/gw.crt\"\ntls_key = \"/nonexistent/gw.key\"\n"
        ));
        assert!(e.iter().any(|e| e.contains("sip.tls_cert:")), "{e:?}");
        // A TLS core whose CA bundle cannot be read, and a bad server name.
        let e = errors(&format!(
            "{tls_route}core_ca_file = \"/nonexistent/ca.pem\"\ncore_server_name = \"not a name\"\n{SIP_KEY}"
        ));
        assert!(
            e.iter().any(|e| e.contains("route[0].core_ca_file:")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|e| e.contains("route[0].core_server_name: expected a DNS name or IP address")),
            "{e:?}"
        );
        let e = errors(
            "[[route]]\npath = \"/a\"\nkind = \"tcp\"\nbackend = \"127.0.0.1:1\"\ncore_ca_file = \"x.pem\"\n",
        );
        assert!(
            e.iter()
                .any(|e| e.contains("route[0].core_ca_file: only used by a `sip-websocket` route")),
            "{e:?}"
        );
    }
}
