//! Configuration: TOML text → validated, typed [`Config`].
//!
//! Parsing keeps positions (see [`reader`]) so that `ucgate check-config`
//! reports every problem at once with file, line, column, dotted key and
//! what is expected. Unknown keys are errors. Every key, its type, default
//! and unit is documented in `docs/config.md`; `tests/docs_and_metrics.rs`
//! checks that the two agree.

pub mod reader;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ucgate_proto::origin::OriginPolicy;
use ucgate_proto::route::RouteTable;

pub use reader::{ConfigError, ConfigErrors};
use reader::{Ctx, Table};

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
    /// TLS handshake deadline.
    pub handshake_timeout: Duration,
    /// Deadline for a complete HTTP/1.1 request head.
    pub header_read_timeout: Duration,
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
#[derive(Debug, Clone)]
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

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// Generic WebSocket ⇄ TCP tunnel.
    Tcp,
}

impl RouteKind {
    /// The name used in config and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Tcp => "tcp",
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
    /// The service behind it.
    pub kind: RouteKind,
    /// The backend (fixed: clients never choose it).
    pub backend: Backend,
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
    /// Backend connect (and backend TLS handshake) deadline.
    pub connect_timeout: Duration,
    /// How long to wait for the other side to finish after one side closed.
    pub close_timeout: Duration,
}

const TOP_KEYS: &[&str] = &["server", "admin", "log", "route"];
const SERVER_KEYS: &[&str] = &[
    "listen",
    "tls",
    "max_connections",
    "handshake_timeout",
    "header_read_timeout",
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
    v
}

const SEC: Duration = Duration::from_secs(1);
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
    let mut routes = Vec::new();
    let mut paths: Vec<reader::At<String>> = Vec::new();
    for mut t in top.table_array(ctx, "route", ROUTE_KEYS) {
        let (r, p) = read_route(ctx, &mut t, base);
        if let Some(r) = r {
            routes.push(r);
        }
        if let Some(p) = p {
            paths.push(p);
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
        handshake_timeout: 10 * SEC,
        header_read_timeout: 10 * SEC,
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
    if let Some(d) = t.duration(ctx, "handshake_timeout", Duration::from_millis(100)..=DAY) {
        s.handshake_timeout = d;
    }
    if let Some(d) = t.duration(ctx, "header_read_timeout", Duration::from_millis(100)..=DAY) {
        s.header_read_timeout = d;
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
                    let cp = resolve(base, &cert.value);
                    let kp = resolve(base, &key.value);
                    match crate::tls::load_certified_key(&cp, &kp) {
                        Ok(_) => certificates.push(CertificateConfig { cert: cp, key: kp }),
                        Err(e) => {
                            let (span, k) = match e.which {
                                crate::tls::PemFile::Cert => (cert.span, cert.key),
                                crate::tls::PemFile::Key => (key.span, key.key),
                            };
                            ctx.error(span, &k, e.message);
                        }
                    }
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
    Ok((host.to_string(), port, tls))
}

fn read_route(
    ctx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    base: &Path,
) -> (Option<RouteConfig>, Option<reader::At<String>>) {
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
    let kinds = "\"tcp\"";
    let kind = match t.string(ctx, "kind", kinds) {
        Some(k) => match k.value.as_str() {
            "tcp" => Some(RouteKind::Tcp),
            other => {
                ctx.error(
                    k.span,
                    &k.key,
                    format!("unknown route kind `{other}`; expected one of: {kinds}"),
                );
                None
            }
        },
        None => {
            ctx.error(
                t.span(),
                &t.key("kind"),
                format!("missing: every route needs a `kind`, one of: {kinds}"),
            );
            None
        }
    };
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
    let backend = backend.map(|(host, port, tls)| {
        let tls_cfg = if tls {
            let ca = ca_file.as_ref().map(|c| resolve(base, &c.value));
            if let (Some(c), Some(p)) = (&ca_file, &ca) {
                if let Err(e) = crate::tls::load_ca_file(p) {
                    ctx.error(c.span.clone(), &c.key, e);
                }
            }
            let name = server_name
                .as_ref()
                .map(|s| s.value.clone())
                .unwrap_or_else(|| host.clone());
            if rustls_pki_types::ServerName::try_from(name.clone()).is_err() {
                let span = server_name
                    .as_ref()
                    .map(|s| s.span.clone())
                    .unwrap_or(t.span());
                ctx.error(
                    span,
                    &t.key("backend_server_name"),
                    "expected a DNS name or IP address for certificate verification",
                );
            }
            Some(BackendTls {
                server_name: name,
                ca_file: ca,
            })
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
        Backend {
            host,
            port,
            tls: tls_cfg,
        }
    });
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
            list.into_iter().map(|a| a.value).collect()
        }
        // websockify's `binary` subprotocol, so noVNC-style clients work unchanged
        None => vec!["binary".to_string()],
    };
    let require_subprotocol = t.bool(ctx, "require_subprotocol").unwrap_or(false);
    if require_subprotocol && subprotocols.is_empty() {
        ctx.error(
            t.span(),
            &t.key("require_subprotocol"),
            "requires a non-empty `subprotocols` list",
        );
    }
    let max_message_size = t
        .size(ctx, "max_message_size", 1..=64 << 20)
        .unwrap_or(64 << 10) as usize;
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
    let connect_timeout = t
        .duration(
            ctx,
            "connect_timeout",
            Duration::from_millis(10)..=Duration::from_secs(600),
        )
        .unwrap_or(5 * SEC);
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
            kind: kind?,
            backend: backend?,
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
    (route, path)
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
        for r in &c.routes {
            assert!(
                r.backend.host == "127.0.0.1"
                    || r.backend.host == "::1"
                    || r.backend.host == "localhost"
            );
            assert_eq!(r.origins, OriginPolicy::SameOrigin);
        }
        assert!(c.routes.iter().any(|r| r.kind == RouteKind::Tcp));
    }
}
