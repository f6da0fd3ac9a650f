//! The status page of the admin listener: `/` (HTML, refreshes itself, no
//! script, no external resource, readable on a phone) and `/status` (the
//! same data as JSON). It shows what the gateway is doing: version, uptime,
//! the configuration file and the last reload, each route's open sessions
//! and totals, each backend, XMPP domain and SIP core with its last
//! connection and its last probe, the recent errors by cause, and the
//! drain state, and the browser origins each route refused.
//!
//! A probe is a TCP connect (no TLS, no protocol), every
//! `admin.probe_interval`, to each target with a fixed address: it says
//! whether the port answers and how fast. XMPP domains found by DNS SRV and
//! UDP SIP cores are not probed (their connections still show).

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use ucgate_proto::xml::tag::escape;

use crate::config::{Config, RouteKind, SipTransport};
use crate::Shared;

/// Longest a probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TargetKind {
    /// A `tcp` route's backend.
    Backend,
    /// An XMPP domain's server.
    XmppServer,
    /// A `sip-websocket` route's core.
    SipCore,
}

/// One connection attempt or probe.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Attempt {
    /// Unix time, seconds.
    pub(crate) at: u64,
    pub(crate) ok: bool,
    pub(crate) millis: f64,
    /// Why it failed (empty when it did not).
    pub(crate) error: String,
}

/// A backend, XMPP server or SIP core the gateway connects to.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Target {
    pub(crate) kind: TargetKind,
    /// The route path or the XMPP domain.
    pub(crate) name: String,
    /// `host:port`, or how it is found.
    pub(crate) address: String,
    /// `None`: not probed, with why in `probe_note`.
    #[serde(skip)]
    probe_at: Option<(String, u16)>,
    pub(crate) probe_note: String,
    pub(crate) last_connection: Option<Attempt>,
    pub(crate) last_probe: Option<Attempt>,
}

/// The status page's own state (the rest is read from the metrics).
pub(crate) struct StatusState {
    started: Instant,
    started_at: u64,
    targets: Mutex<Vec<Target>>,
    reload: Mutex<Option<Reload>>,
}

/// The last reload.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Reload {
    pub(crate) at: u64,
    pub(crate) ok: bool,
    pub(crate) result: String,
}

fn unix_now() -> u64 {
    crate::tls_explain::now_secs().max(0) as u64
}

/// The targets of `config`, in file order.
fn targets(config: &Config) -> Vec<Target> {
    let mut targets = Vec::new();
    for r in &config.routes {
        match &r.kind {
            RouteKind::Tcp(b) => targets.push(Target::new(
                TargetKind::Backend,
                &r.path,
                b.host.clone(),
                b.port,
            )),
            RouteKind::SipWebSocket(core) => {
                let t = Target::new(TargetKind::SipCore, &r.path, core.host.clone(), core.port);
                targets.push(if core.transport == SipTransport::Udp {
                    t.not_probed("UDP: not probed (connectionless)")
                } else {
                    t
                });
            }
            _ => {}
        }
    }
    for d in config.xmpp.domains.values() {
        targets.push(match &d.address {
            Some((host, port)) => Target::new(TargetKind::XmppServer, &d.name, host.clone(), *port),
            None => Target {
                address: format!("DNS SRV _xmpp-client._tcp.{}", d.name),
                ..Target::new(TargetKind::XmppServer, &d.name, String::new(), 0)
                    .not_probed("found by DNS SRV: not probed")
            },
        });
    }
    targets
}

impl Attempt {
    /// An attempt that ended now after `took`, failed with `error` if any.
    fn now(took: Duration, error: Option<String>) -> Attempt {
        Attempt {
            at: unix_now(),
            ok: error.is_none(),
            millis: took.as_secs_f64() * 1000.0,
            error: error.unwrap_or_default(),
        }
    }
}

impl StatusState {
    pub(crate) fn new(config: &Config) -> StatusState {
        StatusState {
            started: Instant::now(),
            started_at: unix_now(),
            targets: Mutex::new(targets(config)),
            reload: Mutex::new(None),
        }
    }

    fn lock_targets(&self) -> std::sync::MutexGuard<'_, Vec<Target>> {
        self.targets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The targets of a reloaded `config`; a target still there keeps its
    /// last connection and probe.
    pub(crate) fn set_targets(&self, config: &Config) {
        let mut fresh = targets(config);
        let mut old = self.lock_targets();
        for t in &mut fresh {
            if let Some(o) = old
                .iter()
                .find(|o| o.kind == t.kind && o.name == t.name && o.address == t.address)
            {
                t.last_connection = o.last_connection.clone();
                t.last_probe = o.last_probe.clone();
            }
        }
        *old = fresh;
    }

    /// A connection the gateway made for a client to the target `name` of
    /// `kind`: its outcome and how long it took.
    pub(crate) fn connected(
        &self,
        kind: TargetKind,
        name: &str,
        took: Duration,
        error: Option<String>,
    ) {
        let attempt = Attempt::now(took, error);
        if let Some(t) = self
            .lock_targets()
            .iter_mut()
            .find(|t| t.kind == kind && t.name == name)
        {
            t.last_connection = Some(attempt);
        }
    }

    /// Notes a reload and its outcome.
    pub(crate) fn reloaded(&self, ok: bool, result: String) {
        *self.reload.lock().unwrap_or_else(|e| e.into_inner()) = Some(Reload {
            at: unix_now(),
            ok,
            result,
        });
    }

    /// Probes every target with a fixed address once.
    pub(crate) async fn probe_all(&self) {
        let plan: Vec<(usize, (String, u16))> = self
            .lock_targets()
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.probe_at.clone().map(|a| (i, a)))
            .collect();
        for (i, (host, port)) in plan {
            let t0 = Instant::now();
            let r = tokio::time::timeout(
                PROBE_TIMEOUT,
                tokio::net::TcpStream::connect((host.as_str(), port)),
            )
            .await;
            let error = match r {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("no answer within {PROBE_TIMEOUT:?}")),
            };
            let attempt = Attempt::now(t0.elapsed(), error);
            if let Some(t) = self.lock_targets().get_mut(i) {
                t.last_probe = Some(attempt);
            }
        }
    }
}

impl Target {
    /// A target the probes leave alone, and why.
    fn not_probed(mut self, why: &str) -> Target {
        self.probe_at = None;
        self.probe_note = why.into();
        self
    }

    fn new(kind: TargetKind, name: &str, host: String, port: u16) -> Target {
        let address = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Target {
            kind,
            name: name.to_string(),
            address,
            probe_at: Some((host, port)),
            probe_note: "TCP connect".into(),
            last_connection: None,
            last_probe: None,
        }
    }
}

/// Probes until `stop`, every `interval`, the first one interval after the
/// start (a backend's first connections are the clients').
pub(crate) async fn probe_loop(
    shared: std::sync::Arc<Shared>,
    interval: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    if interval.is_zero() {
        return;
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.cancelled() => return,
        }
        tokio::select! {
            _ = shared.status.probe_all() => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// A route on the page.
#[derive(Debug, Serialize)]
struct RouteView {
    path: String,
    kind: &'static str,
    open: i64,
    messages_in: u64,
    messages_out: u64,
    bytes_in: u64,
    bytes_out: u64,
}

/// An error cause on the page.
#[derive(Debug, Serialize)]
struct ErrorView {
    route: String,
    side: &'static str,
    kind: String,
    recent: u64,
    total: u64,
    last_seen_secs_ago: u64,
}

/// A browser origin a route refused.
#[derive(Debug, Serialize)]
struct RefusedView {
    route: String,
    origin: String,
    count: u64,
    last_seen: u64,
}

/// Everything `/status` answers.
#[derive(Debug, Serialize)]
pub(crate) struct Snapshot {
    version: &'static str,
    uptime_secs: u64,
    started_at: u64,
    config: String,
    phase: &'static str,
    last_reload: Option<Reload>,
    connections_open: usize,
    connections_max: usize,
    bosh_sessions_open: i64,
    routes: Vec<RouteView>,
    targets: Vec<Target>,
    errors_window_minutes: u64,
    errors: Vec<ErrorView>,
    refused_origins: Vec<RefusedView>,
}

/// The page's data now.
pub(crate) fn snapshot(shared: &Shared) -> Snapshot {
    let st = &shared.status;
    let max = shared.config.server.max_connections;
    let live = shared.live.get();
    let routes = live
        .routes
        .iter()
        .map(|r| {
            let m = &r.metrics;
            let kind = r.config.kind.as_str();
            let open = if kind == "bosh" {
                shared.metrics.bosh_sessions_active.get()
            } else {
                m.active.get()
            };
            RouteView {
                path: r.config.path.clone(),
                kind,
                open,
                messages_in: m.messages_in.get(),
                messages_out: m.messages_out.get(),
                bytes_in: m.bytes_in.get(),
                bytes_out: m.bytes_out.get(),
            }
        })
        .collect();
    let errors = shared
        .metrics
        .recent_errors()
        .into_iter()
        .map(|((route, side, kind), c, ago)| ErrorView {
            route,
            side,
            kind,
            recent: c.recent,
            total: c.total,
            last_seen_secs_ago: ago,
        })
        .collect();
    let refused_origins = shared
        .refusals
        .refused_origins()
        .into_iter()
        .flat_map(|(route, list)| {
            list.into_iter().map(move |o| RefusedView {
                route: route.clone(),
                origin: o.origin,
                count: o.count,
                last_seen: o.last_seen,
            })
        })
        .collect();
    Snapshot {
        refused_origins,
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: st.started.elapsed().as_secs(),
        started_at: st.started_at,
        config: live.config.source.clone(),
        phase: shared.control.current().as_str(),
        last_reload: st.reload.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        connections_open: max.saturating_sub(shared.permits.available_permits()),
        connections_max: max,
        bosh_sessions_open: shared.metrics.bosh_sessions_active.get(),
        routes,
        targets: st.lock_targets().clone(),
        errors_window_minutes: ucgate_proto::recent::WINDOW_MINUTES,
        errors,
    }
}

/// `/status`.
pub(crate) fn json(shared: &Shared) -> String {
    serde_json::to_string_pretty(&snapshot(shared))
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

fn when(unix: u64) -> String {
    ucgate_proto::certs::utc(unix as i64)
}

fn attempt(a: &Option<Attempt>) -> String {
    match a {
        None => "<span class=dim>none yet</span>".into(),
        Some(a) if a.ok => format!(
            "<span class=ok>ok</span> {:.1} ms <span class=dim>{}</span>",
            a.millis,
            when(a.at)
        ),
        Some(a) => format!(
            "<span class=bad>failed</span> {} <span class=dim>{}</span>",
            escape(&a.error),
            when(a.at)
        ),
    }
}

/// `/`: the same data as [`json`], as a page that refreshes itself every
/// five seconds.
pub(crate) fn html(shared: &Shared) -> String {
    let s = snapshot(shared);
    let mut h = String::with_capacity(8 * 1024);
    let phase_class = if s.phase == "running" { "ok" } else { "bad" };
    let _ = write!(
        h,
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
<meta name=viewport content=\"width=device-width, initial-scale=1\">\
<meta http-equiv=refresh content=5><title>ucgate status</title><style>{CSS}</style></head><body>\
<h1>ucgate <span class=dim>{}</span></h1>\
<p class=facts><span>state <b class={phase_class}>{}</b></span><span>up {}</span>\
<span>config <code>{}</code></span><span>connections {} / {}</span></p>",
        escape(s.version),
        escape(s.phase),
        uptime(s.uptime_secs),
        escape(&s.config),
        s.connections_open,
        s.connections_max,
    );
    let _ = write!(
        h,
        "<p>last reload: {}</p>",
        match &s.last_reload {
            None => "<span class=dim>none since the start</span>".to_string(),
            Some(r) => format!(
                "<span class={}>{}</span> {} <span class=dim>{}</span>",
                if r.ok { "ok" } else { "bad" },
                if r.ok { "ok" } else { "failed" },
                escape(&r.result),
                when(r.at)
            ),
        }
    );
    h.push_str("<h2>Routes</h2><div class=t><table><tr><th>path<th>kind<th>open<th>messages in / out<th>bytes in / out</tr>");
    for r in &s.routes {
        let _ = write!(
            h,
            "<tr><td><code>{}</code><td>{}<td>{}<td>{} / {}<td>{} / {}</tr>",
            escape(&r.path),
            r.kind,
            r.open,
            r.messages_in,
            r.messages_out,
            r.bytes_in,
            r.bytes_out
        );
    }
    h.push_str("</table></div><h2>Backends, XMPP servers, SIP cores</h2><div class=t><table><tr><th>for<th>address<th>last connection<th>last probe</tr>");
    for t in &s.targets {
        let kind = match t.kind {
            TargetKind::Backend => "backend of",
            TargetKind::XmppServer => "XMPP server of",
            TargetKind::SipCore => "SIP core of",
        };
        let probe = if t.probe_at.is_some() {
            attempt(&t.last_probe)
        } else {
            format!("<span class=dim>{}</span>", escape(&t.probe_note))
        };
        let _ = write!(
            h,
            "<tr><td>{kind} <code>{}</code><td><code>{}</code><td>{}<td>{probe}</tr>",
            escape(&t.name),
            escape(&t.address),
            attempt(&t.last_connection),
        );
    }
    let _ = write!(
        h,
        "</table></div><h2>Errors by cause <span class=dim>(last {} minutes / since the start)</span></h2>",
        s.errors_window_minutes
    );
    if s.errors.is_empty() {
        h.push_str("<p class=dim>none</p>");
    } else {
        h.push_str(
            "<div class=t><table><tr><th>route<th>side<th>kind<th>recent<th>total<th>last</tr>",
        );
        for e in &s.errors {
            let _ = write!(
                h,
                "<tr><td><code>{}</code><td>{}<td>{}<td>{}<td>{}<td>{} ago</tr>",
                escape(&e.route),
                e.side,
                escape(&e.kind),
                e.recent,
                e.total,
                uptime(e.last_seen_secs_ago)
            );
        }
        h.push_str("</table></div>");
    }
    h.push_str("<h2>Refused browser origins</h2>");
    if s.refused_origins.is_empty() {
        h.push_str("<p class=dim>none</p>");
    } else {
        h.push_str("<div class=t><table><tr><th>route<th>origin<th>times<th>last</tr>");
        for o in &s.refused_origins {
            let _ = write!(
                h,
                "<tr><td><code>{}</code><td><code>{}</code><td>{}<td>{}</tr>",
                escape(&o.route),
                escape(&o.origin),
                o.count,
                when(o.last_seen)
            );
        }
        h.push_str("</table></div><p class=dim>The log line of each refusal says which <code>origins</code> line would allow it.</p>");
    }
    h.push_str("<p class=dim>The same data as JSON: <a href=/status>/status</a>; Prometheus: <a href=/metrics>/metrics</a>. This page refreshes every 5 s.</p></body></html>");
    h
}

fn uptime(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min {} s", secs / 60, secs % 60),
        3600..=86_399 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86_400, secs % 86_400 / 3600),
    }
}

const CSS: &str = "body{font:15px/1.4 system-ui,sans-serif;margin:1em;color:#222;max-width:70em}\
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.1em;margin:1.2em 0 .4em}\
.facts span{display:inline-block;margin:0 1.2em .3em 0}\
.t{overflow-x:auto}table{border-collapse:collapse;min-width:100%}\
th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #ddd;white-space:nowrap}\
th{background:#f4f4f4}code{font-size:.95em}.ok{color:#116611}.bad{color:#b00020;font-weight:bold}\
.dim{color:#777}@media(prefers-color-scheme:dark){body{background:#111;color:#ddd}th{background:#222}\
th,td{border-color:#333}.ok{color:#5c5}.bad{color:#f66}}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_reads_well() {
        assert_eq!(uptime(5), "5 s");
        assert_eq!(uptime(125), "2 min 5 s");
        assert_eq!(uptime(7260), "2 h 1 min");
        assert_eq!(uptime(90_000), "1 d 1 h");
    }
}
