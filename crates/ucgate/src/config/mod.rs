//! Configuration: TOML text → validated, typed [`Config`].
//!
//! Parsing keeps positions (see [`reader`]) so that `ucgate check-config`
//! reports every problem at once with file, line, column, dotted key and
//! what is expected. Unknown keys are errors. Every key, its type, default
//! and unit is documented in `docs/config.md`; `tests/docs_and_metrics.rs`
//! checks that the two agree.

mod acme;
mod bosh;
mod cluster;
mod common;
mod describe;
pub mod reader;
mod route;
mod sip;
mod static_route;
mod xmpp;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ucgate_proto::netset::{IpNet, NetSet};
use ucgate_proto::route::RouteTable;

pub use acme::{AcmeConfig, LETS_ENCRYPT};
pub use bosh::BoshConfig;
pub use cluster::{ClusterConfig, Peer};
pub(crate) use common::SEC;
use common::{cert_pair, DAY};
pub use common::{BackendTls, CertificateConfig};
pub use reader::{ConfigError, ConfigErrors};
use reader::{Ctx, Table};
use route::{read_route, ROUTE_KEYS};
pub use route::{Backend, RouteConfig, RouteKind};
pub use sip::{Secret, SipConfig, SipCore, SipTransport};
pub use static_route::StaticFiles;
pub use xmpp::{XmppConfig, XmppDomain, XmppTls};

/// The configuration used when `ucgate run` is given no `--config`.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.toml");

/// The [`Config::source`] of the embedded default.
pub const EMBEDDED_NAME: &str = "<embedded default>";

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
    /// `[cluster]`: this gateway as a node of a cluster (`None`: a single node).
    pub cluster: Option<ClusterConfig>,
    /// Problems that do not stop the gateway, as `FILE:LINE:COL: `key`:
    /// warning: …` lines (`check-config` prints them, `run` logs them).
    pub warnings: Vec<String>,
    /// The file it was read from (`<embedded default>` for that one).
    pub source: String,
}

/// `[server]`: the one public listener.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Static certificates (`[server.tls]`).
    pub tls: Option<TlsConfig>,
    /// Certificates from an ACME CA (`[server.acme]`); with `tls`, ACME's
    /// certificate serves its domains and the static ones the other names.
    pub acme: Option<AcmeConfig>,
    /// Maximum concurrent client TCP connections (permits).
    pub max_connections: usize,
    /// Maximum concurrent connections from one client address; 0 = no limit.
    pub max_connections_per_ip: usize,
    /// Threads that run connections (the runtime's workers); 0 = one per CPU.
    pub worker_threads: usize,
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
    /// WebSockets are closed in batches spread over this much of the drain.
    pub drain_spread: Duration,
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
    /// Peers whose PROXY header and `Forwarded` / `X-Forwarded-*` headers
    /// say who the client is (empty: nobody's).
    pub trusted_proxies: NetSet,
    /// A connection from a trusted proxy starts with a PROXY protocol header.
    pub proxy_protocol: bool,
}

impl ServerConfig {
    /// Whether the listener speaks HTTPS (static or ACME certificates).
    pub fn is_tls(&self) -> bool {
        self.tls.is_some() || self.acme.is_some()
    }
}

/// `[server.tls]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    /// Certificates; the first is the default, the others are chosen by SNI.
    pub certificates: Vec<CertificateConfig>,
}

impl TlsConfig {
    /// The `(cert, key)` paths of every certificate, the default first.
    pub fn pem_files(&self) -> Vec<(PathBuf, PathBuf)> {
        self.certificates
            .iter()
            .map(|c| (c.cert.clone(), c.key.clone()))
            .collect()
    }
}

/// `[admin]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    /// Address of the admin listener.
    pub listen: SocketAddr,
    /// A bearer token required for `/`, `/status` and `/metrics` (not for
    /// `/live` and `/ready`).
    pub token: Option<String>,
    /// How often the status page's probes reach each backend; zero: never.
    pub probe_interval: Duration,
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
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// Filter directive (`info`, `ucgate=debug`, …); `RUST_LOG` overrides it.
    pub level: String,
    /// The access log: a line per request and per ended session.
    pub access: bool,
}

const TOP_KEYS: &[&str] = &[
    "server", "admin", "log", "route", "xmpp", "bosh", "sip", "cluster",
];
const SERVER_KEYS: &[&str] = &[
    "listen",
    "tls",
    "acme",
    "max_connections",
    "max_connections_per_ip",
    "handshake_timeout",
    "header_read_timeout",
    "body_read_timeout",
    "idle_timeout",
    "drain_timeout",
    "shutdown_delay",
    "drain_spread",
    "max_header_size",
    "http2",
    "h2c",
    "h2_max_concurrent_streams",
    "h2_keepalive_interval",
    "h2_keepalive_timeout",
    "trusted_proxies",
    "proxy_protocol",
    "worker_threads",
];
const TLS_KEYS: &[&str] = &["certificate"];
const CERT_KEYS: &[&str] = &["cert", "key"];
const ADMIN_KEYS: &[&str] = &["listen", "token", "probe_interval"];
const LOG_KEYS: &[&str] = &["format", "level", "access"];
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
    add("server.acme.", acme::ACME_KEYS);
    add("admin.", ADMIN_KEYS);
    add("log.", LOG_KEYS);
    add("route.", ROUTE_KEYS);
    add("xmpp.", xmpp::XMPP_KEYS);
    add("xmpp.domains.", xmpp::DOMAIN_KEYS);
    add("bosh.", bosh::BOSH_KEYS);
    add("sip.", sip::SIP_KEYS);
    add("cluster.", cluster::CLUSTER_KEYS);
    v
}

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
            warnings: Vec::new(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, &name, base)
    }

    /// The embedded default configuration.
    pub fn embedded_default() -> Config {
        Config::parse(EMBEDDED_DEFAULT, EMBEDDED_NAME, Path::new("."))
            .expect("the embedded default configuration is valid (tested)")
    }

    /// Parses and validates `text`; relative file paths are resolved against `base`.
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<Config, ConfigErrors> {
        let fail = |ctx: Ctx<'_>| ConfigErrors {
            file: file.to_string(),
            warnings: ctx.warning_lines(file),
            errors: ctx.into_errors(),
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
            return Err(fail(ctx));
        }
        let mut top = Table::new("", doc.span(), doc.get_ref(), TOP_KEYS);
        let cfg = read_config(&mut ctx, &mut top, base);
        top.finish(&mut ctx);
        match cfg {
            Some(mut cfg) if ctx.is_ok() => {
                cfg.warnings = ctx.warning_lines(file);
                cfg.source = file.to_string();
                Ok(cfg)
            }
            _ => Err(fail(ctx)),
        }
    }
}

fn read_config(ctx: &mut Ctx<'_>, top: &mut Table<'_, '_>, base: &Path) -> Option<Config> {
    let mut server_listen_at = None;
    let server = {
        let mut t = top.table(ctx, "server", SERVER_KEYS);
        let s = read_server(ctx, t.as_mut(), base, &mut server_listen_at);
        if let Some(t) = t {
            t.finish(ctx);
        }
        s
    };
    // Where `admin.listen` is written, for the clash with `server.listen`.
    let admin_listen_at;
    let admin = {
        let mut t = top.table(ctx, "admin", ADMIN_KEYS);
        admin_listen_at = t.as_mut().and_then(|t| t.socket_addr(ctx, "listen"));
        let listen = admin_listen_at
            .as_ref()
            .map(|a| a.value)
            .unwrap_or_else(|| "127.0.0.1:9280".parse().expect("literal"));
        let mut token = None;
        let mut probe_interval = 30 * SEC;
        if let Some(t) = t.as_mut() {
            if let Some(v) = t.string(
                ctx,
                "token",
                "a bearer token (16 to 512 visible ASCII characters)",
            ) {
                let ok = (16..=512).contains(&v.value.len())
                    && v.value.bytes().all(|b| b.is_ascii_graphic());
                if ok {
                    token = Some(v.value);
                } else {
                    ctx.error(
                        v.span,
                        &v.key,
                        "expected 16 to 512 visible ASCII characters (no spaces): a token \
                         Prometheus and browsers send as `Authorization: Bearer …`",
                    );
                }
            }
            if let Some(d) = t.duration(ctx, "probe_interval", Duration::ZERO..=(24 * 3600 * SEC)) {
                probe_interval = d;
            }
        }
        if let Some(t) = t {
            t.finish(ctx);
        }
        AdminConfig {
            listen,
            token,
            probe_interval,
        }
    };
    let log = {
        let mut t = top.table(ctx, "log", LOG_KEYS);
        let mut format = LogFormat::Human;
        let mut level = "info".to_string();
        let mut access = true;
        if let Some(t) = t.as_mut() {
            if let Some(a) = t.bool(ctx, "access") {
                access = a;
            }
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
        LogConfig {
            format,
            level,
            access,
        }
    };
    let (xmpp, domains_written) = xmpp::read_xmpp(ctx, top, base);
    let bosh = bosh::read_bosh(ctx, top);
    let (sip, sip_at) = sip::read_sip(ctx, top, base);
    let cluster = cluster::read_cluster(ctx, top, base);
    if let (Some(_), Some(at)) = (&cluster, sip_at.flow_token_key.clone()) {
        ctx.warning(
            at,
            "sip.flow_token_key",
            "not used with [cluster]: flow tokens are signed with a key derived from cluster.secret, the same on every node; remove this key",
        );
    }
    let mut routes = Vec::new();
    let mut paths: Vec<reader::At<String>> = Vec::new();
    let mut prefixes: Vec<reader::At<String>> = Vec::new();
    for mut t in top.table_array(ctx, "route", ROUTE_KEYS) {
        let server_tls = server.as_ref().is_some_and(|s| s.is_tls()) || sip.tls.is_some();
        let (r, p, kind) = read_route(ctx, &mut t, base, &xmpp, server_tls);
        if let (Some(r), Some(p)) = (&r, &p) {
            if r.kind.is_prefix() {
                let twin = prefixes.iter().find(|q: &&reader::At<String>| {
                    q.value != p.value
                        && q.value.trim_end_matches('/') == p.value.trim_end_matches('/')
                });
                if let Some(q) = twin {
                    ctx.error(
                        p.span.clone(),
                        &p.key,
                        format!("`{}` and `{}` are the same `static` route path (it covers the path with and without its final `/`); keep one", q.value, p.value),
                    );
                }
                prefixes.push(p.clone());
            }
        }
        if let Some(r) = r {
            routes.push(r);
        }
        if let Some(p) = p {
            paths.push(p);
        }
        if let Some(k) = kind {
            if k.value.is_xmpp() && !domains_written {
                ctx.error(
                    k.span.clone(),
                    &k.key,
                    "an XMPP route (`xmpp-websocket`, `bosh`) needs at least one XMPP domain: add a `[xmpp.domains.\"example.org\"]` table (the servers clients may reach, chosen by the `to` of their `<open/>`)",
                );
            }
        }
        t.finish(ctx);
    }
    let sip_routes = routes
        .iter()
        .filter(|r| matches!(r.kind, RouteKind::SipWebSocket(_)))
        .count();
    if let Some(l) = sip_at.listen.clone().filter(|_| sip_routes > 1) {
        ctx.error(
            l.span,
            &l.key,
            format!("one address for {sip_routes} `sip-websocket` routes: each route needs a port of its own toward its core; remove `sip.listen` (each route then gets a port from the OS) or keep one SIP route"),
        );
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
            // At `admin.listen` when written, else (the default clashes)
            // at `server.listen`, which is then the one to change.
            let (span, key) = match (&admin_listen_at, &server_listen_at) {
                (Some(a), _) => (a.span.clone(), "admin.listen"),
                (None, Some(l)) => (l.clone(), "server.listen"),
                (None, None) => (top.span(), "admin.listen"),
            };
            ctx.error(
                span,
                key,
                format!("the admin listener must not use the same address as server.listen ({}); change one of them", s.listen),
            );
        }
    }
    if let Some((_, at)) = &cluster {
        let others = [
            server.as_ref().map(|s| ("server.listen", s.listen)),
            Some(("admin.listen", admin.listen)),
            sip.listen.map(|a| ("sip.listen", a)),
        ];
        for (key, addr) in others.into_iter().flatten() {
            if addr == at.value && addr.port() != 0 {
                ctx.error(
                    at.span.clone(),
                    &at.key,
                    format!("the internal listener must have an address of its own, not that of {key} ({addr}): it takes only requests forwarded by the other nodes"),
                );
            }
        }
    }
    let server = server?;
    let route_table = RouteTable::with_prefixes(
        routes
            .iter()
            .map(|r: &RouteConfig| (r.path.as_str(), r.kind.is_prefix())),
    )
    .ok()?;
    Some(Config {
        server,
        admin,
        log,
        routes,
        route_table,
        xmpp,
        bosh,
        sip,
        cluster: cluster.map(|(c, _)| c),
        warnings: Vec::new(),
        source: String::new(),
    })
}

fn read_server(
    ctx: &mut Ctx<'_>,
    t: Option<&mut Table<'_, '_>>,
    base: &Path,
    listen_at: &mut Option<std::ops::Range<usize>>,
) -> Option<ServerConfig> {
    let mut s = ServerConfig {
        listen: "127.0.0.1:5290".parse().expect("literal"),
        tls: None,
        acme: None,
        max_connections: 10_000,
        max_connections_per_ip: 256,
        worker_threads: 0,
        handshake_timeout: 10 * SEC,
        header_read_timeout: 10 * SEC,
        body_read_timeout: 10 * SEC,
        idle_timeout: 120 * SEC,
        drain_timeout: 30 * SEC,
        shutdown_delay: Duration::ZERO,
        drain_spread: Duration::ZERO,
        max_header_size: 16 * 1024,
        http2: true,
        h2c: false,
        h2_max_concurrent_streams: 100,
        h2_keepalive_interval: 30 * SEC,
        h2_keepalive_timeout: 20 * SEC,
        trusted_proxies: NetSet::default(),
        proxy_protocol: false,
    };
    let Some(t) = t else {
        return Some(s);
    };
    if let Some(a) = t.socket_addr(ctx, "listen") {
        s.listen = a.value;
        *listen_at = Some(a.span);
    }
    if let Some(n) = t.integer(ctx, "max_connections", 1..=10_000_000) {
        s.max_connections = n as usize;
    }
    if let Some(n) = t.integer(ctx, "max_connections_per_ip", 0..=10_000_000) {
        s.max_connections_per_ip = n as usize;
    }
    if let Some(n) = t.integer(ctx, "worker_threads", 0..=1024) {
        s.worker_threads = n as usize;
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
    if let Some(d) = t.duration(ctx, "drain_spread", Duration::ZERO..=DAY) {
        s.drain_spread = d;
        if d > s.drain_timeout {
            let span = t.value_span("drain_spread").unwrap_or_else(|| t.span());
            ctx.error(
                span,
                "server.drain_spread",
                format!(
                    "{d:?} is longer than server.drain_timeout ({:?}): the last WebSockets would be cut before their turn; make it at most the drain timeout (half of it leaves time for the goodbyes)",
                    s.drain_timeout
                ),
            );
        }
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
    if let Some(items) = t.string_list(ctx, "trusted_proxies") {
        let mut nets = Vec::new();
        for item in items {
            match IpNet::parse(&item.value) {
                Ok(n) => nets.push(n),
                Err(e) => ctx.error(item.span, &item.key, e.to_string()),
            }
        }
        s.trusted_proxies = NetSet::new(nets);
    }
    if let Some(b) = t.bool(ctx, "proxy_protocol") {
        if b && s.trusted_proxies.is_empty() {
            let span = t.value_span("proxy_protocol").unwrap_or_else(|| t.span());
            ctx.error(
                span,
                &t.key("proxy_protocol"),
                "the PROXY protocol is read only from `server.trusted_proxies`, which is empty: list the addresses of your load balancers there",
            );
        }
        s.proxy_protocol = b;
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
    if let Some(mut a) = t.table(ctx, "acme", acme::ACME_KEYS) {
        s.acme = acme::read_acme(ctx, &mut a, base);
        a.finish(ctx);
    }
    Some(s)
}

#[cfg(test)]
mod tests;
