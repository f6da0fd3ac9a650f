//! The configuration a reload (SIGHUP, `systemctl reload`) changes without
//! a restart: the routes with their services, the XMPP domains, the BOSH
//! settings. Each request and each new session takes the [`Live`] current
//! when it starts and keeps it: open WebSockets and BOSH sessions go on
//! with the route, domains and limits they started with, new ones get the
//! new values, and a removed route's open sessions end as they would have
//! (new requests for its path get 404).
//!
//! What a reload cannot change in a running process is reported and kept:
//! the listeners and their settings (`[server]`, `[admin]`), the log
//! (`[log]`), and the SIP routes with `[sip]` (each SIP route owns a port
//! toward its core). A file with errors changes nothing.

use std::sync::{Arc, RwLock};

use tokio_util::sync::CancellationToken;

use crate::config::{Config, RouteConfig, RouteKind};
use crate::metrics::{self, Metrics, ResultLabels};
use crate::{Service, Shared, WsService};

/// The routes and settings new requests use.
pub(crate) struct Live {
    pub(crate) config: Config,
    /// In the order of `config.routes` (indices of `config.route_table`).
    pub(crate) routes: Vec<Arc<crate::RouteRuntime>>,
}

/// The current [`Live`], replaced whole by a reload.
pub(crate) struct LiveCell(RwLock<Arc<Live>>);

impl LiveCell {
    pub(crate) fn new(live: Live) -> LiveCell {
        LiveCell(RwLock::new(Arc::new(live)))
    }

    /// The current configuration and routes (a request keeps it to its end).
    pub(crate) fn get(&self) -> Arc<Live> {
        Arc::clone(&self.0.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn set(&self, live: Live) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(live);
    }
}

/// What building a route's runtime needs besides its configuration.
pub(crate) struct RouteDeps {
    pub(crate) metrics: Arc<Metrics>,
    /// TLS for connections TLS cores open to the gateway.
    pub(crate) sip_tls: Option<Arc<rustls::ServerConfig>>,
    /// Stops the SIP runtimes' socket tasks at the very end.
    pub(crate) sip_stop: CancellationToken,
}

/// The runtimes of `config`'s routes. A SIP route found in `reuse` (same
/// path) keeps its runtime: its core-facing port stays bound.
pub(crate) async fn build_routes(
    config: &Config,
    deps: &RouteDeps,
    reuse: &[Arc<crate::RouteRuntime>],
) -> anyhow::Result<Vec<Arc<crate::RouteRuntime>>> {
    // Built with the first XMPP route, shared by all of them.
    let mut xmpp = None;
    let mut routes = Vec::new();
    for r in &config.routes {
        if let RouteKind::SipWebSocket(_) = r.kind {
            if let Some(old) = reuse.iter().find(|o| o.config.path == r.path) {
                routes.push(Arc::clone(old));
                continue;
            }
        }
        let service = match &r.kind {
            RouteKind::Tcp(b) => Service::WebSocket(WsService::Tcp(
                crate::backend::Connector::new(&r.path, b, r.connect_timeout)
                    .map_err(|e| anyhow::anyhow!("route {}: {e}", r.path))?,
            )),
            RouteKind::XmppWebSocket => {
                Service::WebSocket(WsService::Xmpp(xmpp_runtime(&mut xmpp, config)?))
            }
            RouteKind::Bosh => Service::Bosh(xmpp_runtime(&mut xmpp, config)?),
            RouteKind::SipWebSocket(core) => Service::WebSocket(WsService::Sip(
                crate::sip::SipRuntime::start(
                    r,
                    core,
                    &config.sip,
                    config.cluster.as_ref(),
                    deps.sip_tls.clone(),
                    Arc::clone(&deps.metrics),
                    deps.sip_stop.clone(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("route {}: SIP: {e}", r.path))?,
            )),
            RouteKind::Static(files) => Service::Static(
                crate::staticfiles::StaticService::new(files)
                    .map_err(|e| anyhow::anyhow!("route {}: {e}", r.path))?,
            ),
        };
        let connect_seconds =
            deps.metrics
                .backend_connect_seconds
                .get_or_create_owned(&metrics::RouteLabels {
                    route: r.path.clone(),
                });
        routes.push(Arc::new(crate::RouteRuntime {
            config: r.clone(),
            service,
            metrics: deps.metrics.route(&r.path),
            connect_seconds,
        }));
    }
    Ok(routes)
}

fn xmpp_runtime(
    slot: &mut Option<Arc<crate::xmpp::server::XmppRuntime>>,
    config: &Config,
) -> anyhow::Result<Arc<crate::xmpp::server::XmppRuntime>> {
    if let Some(x) = slot {
        return Ok(Arc::clone(x));
    }
    let x = Arc::new(
        crate::xmpp::server::XmppRuntime::new(&config.xmpp)
            .map_err(|e| anyhow::anyhow!("XMPP: {e}"))?,
    );
    *slot = Some(Arc::clone(&x));
    Ok(x)
}

/// How a configuration reload went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Applied; the settings named need a restart and were kept.
    Applied { kept: Vec<String> },
    /// Nothing changed: the file has errors (each a line), or cannot be
    /// applied.
    Refused(Vec<String>),
    /// Started on the embedded default: no file to read again.
    NoFile,
}

impl Outcome {
    /// The `result` label of `ucgate_config_reloads_total`.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Outcome::Applied { kept } if kept.is_empty() => "ok",
            Outcome::Applied { .. } => "partial",
            Outcome::Refused(_) => "error",
            Outcome::NoFile => "no_file",
        }
    }
}

/// The settings of `new` that differ from the running ones (`old`) and
/// need a restart, by key; everything else a reload applies.
pub(crate) fn restart_only_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut kept = Vec::new();
    let mut note = |differs: bool, what: &str| {
        if differs {
            kept.push(what.to_string());
        }
    };
    let (o, n) = (&old.server, &new.server);
    note(o.listen != n.listen, "server.listen");
    note(
        o.tls != n.tls,
        "server.tls (the files named; their contents are re-read)",
    );
    note(o.acme != n.acme, "server.acme");
    let mut rest_o = o.clone();
    let mut rest_n = n.clone();
    for s in [&mut rest_o, &mut rest_n] {
        s.listen = o.listen;
        s.tls = None;
        s.acme = None;
    }
    note(rest_o != rest_n, "[server] limits and timeouts");
    note(old.admin != new.admin, "[admin]");
    note(old.log != new.log, "[log]");
    note(
        old.sip != new.sip || sip_routes(old) != sip_routes(new),
        "[sip] and the sip-websocket routes",
    );
    note(old.cluster != new.cluster, "[cluster]");
    kept
}

/// The SIP routes, without their line numbers (moving a route in the file
/// changes nothing).
fn sip_routes(c: &Config) -> Vec<RouteConfig> {
    c.routes
        .iter()
        .filter(|r| matches!(r.kind, RouteKind::SipWebSocket(_)))
        .map(|r| {
            let mut r = r.clone();
            r.line = 0;
            r.origins_line = None;
            r
        })
        .collect()
}

/// `new` with what a reload cannot change put back as it runs (`old`):
/// the restart-only sections, and the SIP routes in place of the file's.
fn keep_restart_only(old: &Config, mut new: Config) -> Result<Config, String> {
    new.server = old.server.clone();
    new.admin = old.admin.clone();
    new.log = old.log.clone();
    new.sip = old.sip.clone();
    new.cluster = old.cluster.clone();
    new.routes
        .retain(|r| !matches!(r.kind, RouteKind::SipWebSocket(_)));
    for r in old
        .routes
        .iter()
        .filter(|r| matches!(r.kind, RouteKind::SipWebSocket(_)))
    {
        if new.routes.iter().any(|n| n.path == r.path) {
            return Err(format!(
                "route `{}`: the SIP route on that path keeps it until a restart",
                r.path
            ));
        }
        new.routes.push(r.clone());
    }
    new.route_table =
        ucgate_proto::route::RouteTable::new(new.routes.iter().map(|r| r.path.as_str()))
            .map_err(|e| e.to_string())?;
    Ok(new)
}

/// Reads the configuration file again and applies what can change while
/// running (see the module documentation); counts and logs the outcome.
pub(crate) async fn reload(shared: &Shared, deps: &RouteDeps) -> Outcome {
    let outcome = apply(shared, deps).await;
    shared
        .metrics
        .config_reloads
        .get_or_create(&ResultLabels {
            result: outcome.label().to_string(),
        })
        .inc();
    match &outcome {
        Outcome::Applied { kept } => {
            let live = shared.live.get();
            tracing::info!(
                routes = live.routes.len(),
                "configuration reloaded: new requests and sessions use it, open ones keep theirs"
            );
            for k in kept {
                tracing::warn!(setting = %k, "changed in the file, but needs a restart: the running value is kept");
            }
        }
        Outcome::Refused(errors) => {
            for e in errors {
                tracing::error!("{e}");
            }
            tracing::error!(
                errors = errors.len(),
                "configuration reload refused: nothing was changed"
            );
        }
        Outcome::NoFile => {
            tracing::info!("started on the embedded default: no configuration file to reload")
        }
    }
    outcome
}

async fn apply(shared: &Shared, deps: &RouteDeps) -> Outcome {
    let running = &shared.config;
    if running.source == crate::config::EMBEDDED_NAME {
        return Outcome::NoFile;
    }
    let new = match Config::load(std::path::Path::new(&running.source)) {
        Ok(c) => c,
        Err(e) => return Outcome::Refused(e.to_string().lines().map(str::to_string).collect()),
    };
    for w in &new.warnings {
        tracing::warn!("{w}");
    }
    let old = shared.live.get();
    let kept = restart_only_changes(&old.config, &new);
    let new = match keep_restart_only(&old.config, new) {
        Ok(c) => c,
        Err(e) => return Outcome::Refused(vec![e]),
    };
    let routes = match build_routes(&new, deps, &old.routes).await {
        Ok(r) => r,
        Err(e) => return Outcome::Refused(vec![format!("{e:#}")]),
    };
    shared.metrics.set_limits(&new);
    shared.status.set_targets(&new);
    shared.live.set(Live {
        config: new,
        routes,
    });
    Outcome::Applied { kept }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(cluster: &str) -> Config {
        Config::parse(
            &format!("[server]\nlisten = \"127.0.0.1:5290\"\n{cluster}"),
            "t.toml",
            std::path::Path::new("/"),
        )
        .unwrap()
    }

    #[test]
    fn cluster_needs_a_restart() {
        let node = |n: &str| {
            format!(
                "[cluster]\nnode = \"{n}\"\nsecret = \"{}\"\nlisten = \"127.0.0.1:5291\"\n",
                "s".repeat(32)
            )
        };
        let (old, new) = (config(&node("a")), config(&node("b")));
        assert_eq!(restart_only_changes(&old, &new), ["[cluster]"]);
        let kept = keep_restart_only(&old, new).unwrap();
        assert_eq!(kept.cluster.unwrap().node.as_str(), "a");
        let single = config("");
        assert_eq!(restart_only_changes(&single, &old), ["[cluster]"]);
        assert!(restart_only_changes(&old, &config(&node("a"))).is_empty());
    }

    #[test]
    fn sip_routes_stay_as_they_run_and_keep_their_paths() {
        let sip =
            "[[route]]\npath = \"/sip\"\nkind = \"sip-websocket\"\ncore = \"sip:127.0.0.1:5070\"\n";
        let tcp = |p: &str| {
            format!("[[route]]\npath = \"{p}\"\nkind = \"tcp\"\nbackend = \"127.0.0.1:7\"\n")
        };
        let old = config(&format!("{sip}{}", tcp("/a")));
        // the SIP route removed from the file: kept, and named as needing a restart
        let new = config(&tcp("/b"));
        assert_eq!(
            restart_only_changes(&old, &new),
            ["[sip] and the sip-websocket routes"]
        );
        let kept = keep_restart_only(&old, new).unwrap();
        let paths: Vec<&str> = kept.routes.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["/b", "/sip"]);
        assert!(kept.route_table.lookup("/sip").is_some());
        assert!(kept.route_table.lookup("/a").is_none());
        // moving the SIP route in the file changes nothing
        assert!(restart_only_changes(&old, &config(&format!("{}{sip}", tcp("/a")))).is_empty());
        // another kind on the SIP route's path cannot be applied
        let clash = config(&tcp("/sip"));
        let e = keep_restart_only(&old, clash).unwrap_err();
        assert!(e.contains("`/sip`") && e.contains("until a restart"), "{e}");
    }
}
