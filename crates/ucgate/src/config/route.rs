//! `[[route]]`: the route kinds with what each needs ([`RouteKind`]), the
//! route's settings ([`RouteConfig`]) and reading them, with the errors for
//! keys that do not belong to a route's kind.

use std::path::Path;
use std::time::Duration;

use ucgate_proto::origin::{check, OriginPolicy};

use super::common::{parse_host_port, resolve, BackendTls, DAY, SEC};
use super::reader::{self, Ctx, Table};
use super::sip::{self, SipCore, SipTransport};
use super::static_route::{read_static, StaticFiles, NOT_STATIC, STATIC_KEYS};
use super::xmpp::XmppConfig;

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
    /// Files from a directory, over plain HTTP GET and HEAD; the route's
    /// path covers every path below it.
    Static(StaticFiles),
}

impl RouteKind {
    /// True for the kinds that reach XMPP servers through `[xmpp.domains]`.
    pub fn is_xmpp(&self) -> bool {
        matches!(self, RouteKind::XmppWebSocket | RouteKind::Bosh)
    }

    /// True for the kinds served over WebSocket.
    pub fn is_websocket(&self) -> bool {
        !matches!(self, RouteKind::Bosh | RouteKind::Static(_))
    }

    /// True for the kinds whose path also covers every path below it.
    pub fn is_prefix(&self) -> bool {
        matches!(self, RouteKind::Static(_))
    }

    /// The name used in config and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            RouteKind::Tcp(_) => "tcp",
            RouteKind::XmppWebSocket => "xmpp-websocket",
            RouteKind::Bosh => "bosh",
            RouteKind::SipWebSocket(_) => "sip-websocket",
            RouteKind::Static(_) => "static",
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

/// `[[route]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    /// Exact request path.
    pub path: String,
    /// The service behind it, with its backend or core.
    pub kind: RouteKind,
    /// Browser origins allowed to open WebSockets.
    pub origins: OriginPolicy,
    /// The line of `origins` in the file, if the route has the key.
    pub origins_line: Option<usize>,
    /// The line of the route's `[[route]]` header.
    pub line: usize,
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

/// The keys of a `[[route]]` other than `NOT_STATIC` and `STATIC_KEYS`.
const KIND_AND_PEER_KEYS: [&str; 8] = [
    "path",
    "kind",
    "backend",
    "backend_server_name",
    "backend_ca_file",
    "core",
    "core_server_name",
    "core_ca_file",
];

/// Every key of a `[[route]]`, built from the lists `read_static` checks so
/// that a key is written once.
pub(super) const ROUTE_KEYS: &[&str] = &concat::<
    { KIND_AND_PEER_KEYS.len() + NOT_STATIC.len() + STATIC_KEYS.len() },
>(&[&KIND_AND_PEER_KEYS, &NOT_STATIC, &STATIC_KEYS]);

/// `parts` one after the other; `N` must be their total length.
const fn concat<const N: usize>(parts: &[&[&'static str]]) -> [&'static str; N] {
    let mut out = [""; N];
    let (mut p, mut i) = (0, 0);
    while p < parts.len() {
        let mut j = 0;
        while j < parts[p].len() {
            out[i] = parts[p][j];
            i += 1;
            j += 1;
        }
        p += 1;
    }
    assert!(i == N, "ROUTE_KEYS: wrong length");
    out
}

pub(super) fn parse_backend(s: &str) -> Result<(String, u16, bool), String> {
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

/// What `read_route` found: the route (if valid), its path and its kind.
pub(super) type RouteRead = (
    Option<RouteConfig>,
    Option<reader::At<String>>,
    Option<reader::At<KindName>>,
);

/// The `kind` key as written, before the route's other keys are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KindName {
    Tcp,
    XmppWebSocket,
    Bosh,
    SipWebSocket,
    Static,
}

impl KindName {
    pub(super) fn is_xmpp(self) -> bool {
        matches!(self, KindName::XmppWebSocket | KindName::Bosh)
    }
}

pub(super) fn read_route(
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
    let kinds = "\"tcp\", \"xmpp-websocket\", \"bosh\", \"sip-websocket\", \"static\"";
    let kind = match t.string(ctx, "kind", kinds) {
        Some(k) => match k.value.as_str() {
            "tcp" => Some(KindName::Tcp),
            "xmpp-websocket" => Some(KindName::XmppWebSocket),
            "bosh" => Some(KindName::Bosh),
            "sip-websocket" => Some(KindName::SipWebSocket),
            "static" => Some(KindName::Static),
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
    let static_route = matches!(&kind, Some(k) if k.value == KindName::Static);
    let files = read_static(ctx, t, base, static_route);
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
    let backend = if static_route {
        Some(None)
    } else if sip_route {
        read_no_backend_sip(ctx, t)
    } else if xmpp_route || bosh_route {
        read_no_backend(ctx, t)
    } else {
        read_backend(ctx, t, base, kind.is_some())
    };
    let origins_line = t.value_span("origins").map(|s| ctx.line(s.start));
    let origins = read_origins(ctx, t);
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
            kind: match (kind.as_ref()?.value, backend?, core?, files?) {
                (KindName::Tcp, Some(b), None, None) => RouteKind::Tcp(b),
                (KindName::XmppWebSocket, None, None, None) => RouteKind::XmppWebSocket,
                (KindName::Bosh, None, None, None) => RouteKind::Bosh,
                (KindName::SipWebSocket, None, Some(c), None) => RouteKind::SipWebSocket(c),
                (KindName::Static, None, None, Some(f)) => RouteKind::Static(f),
                _ => return None,
            },
            origins: origins?,
            origins_line,
            line: ctx.line(t.span().start),
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

/// `origins`: every entry that can never match a browser's `Origin` is an
/// error at that entry, every entry that matches only once normalised a
/// warning (`ucgate_proto::origin::check`). `None`: an error was reported.
fn read_origins(ctx: &mut Ctx<'_>, t: &mut Table<'_, '_>) -> Option<OriginPolicy> {
    let Some(list) = t.string_list(ctx, "origins") else {
        return Some(OriginPolicy::SameOrigin);
    };
    let strs: Vec<&str> = list.iter().map(|a| a.value.as_str()).collect();
    let (policy, findings) = check::check_list(&strs);
    for (i, finding) in findings {
        let a = &list[i];
        match finding {
            check::Finding::Error(e) => ctx.error(a.span.clone(), &a.key, e.to_string()),
            check::Finding::Warning(w) => ctx.warning(a.span.clone(), &a.key, w),
        }
    }
    policy
}

/// `backend`, `backend_server_name` and `backend_ca_file` of a `tcp` route
/// (and of a route whose kind is missing or unknown: checked when present,
/// not required, as the kind's own error says what is wrong). `None`: an
/// error was reported.
fn read_backend(
    ctx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    base: &Path,
    tcp: bool,
) -> Option<Option<Backend>> {
    let backend = match t.string(ctx, "backend", "\"host:port\"") {
        Some(b) => match parse_backend(&b.value) {
            Ok(v) => Some(v),
            Err(e) => {
                ctx.error(b.span, &b.key, e);
                None
            }
        },
        None if tcp => {
            ctx.error(
                t.span(),
                &t.key("backend"),
                "missing: a `tcp` route needs a `backend` such as \"127.0.0.1:7000\"",
            );
            None
        }
        None => None,
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
        match crate::certcheck::check_ca_file(p, crate::tls_explain::now_secs()) {
            Ok(None) => {}
            Ok(Some(w)) => ctx.warning(c.span.clone(), &c.key, w.0),
            Err(e) => ctx.error(c.span.clone(), &c.key, e),
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
