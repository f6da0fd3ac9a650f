//! # ucgate: a web-transport gateway for unified communications
//!
//! This crate is the I/O glue: sockets, TLS, HTTP, timers, metrics. Protocol
//! decisions live in the pure crate `ucgate_proto`.
//!
//! Entry point for the binary and for tests: [`run`], which takes already
//! bound listeners (so tests can bind `127.0.0.1:0`) and a [`Control`].
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | TOML → validated [`Config`]; every error with position |
//! | `server` | accept loop, permits, TLS handshake, HTTP/1.1 + HTTP/2 serving, idle and drain |
//! | `conn` | one client connection's state: permits, activity, busy guard |
//! | `router` | host-meta, route lookup, dispatch on the route's `Service` |
//! | `response` | text responses, the body type, reading request bodies |
//! | `http` | WebSocket handshakes (HTTP/1.1 and RFC 8441), backend dial, upgrade |
//! | `staticfiles` | `static` routes: files from a directory, inside it only |
//! | `ws` | the client WebSocket every WebSocket route uses: limits, keepalive, closing |
//! | `tunnel` | the WebSocket ⇄ TCP bridge |
//! | [`backend`] | dialing backends (TCP, verified TLS) |
//! | [`tls`] | certificates, SNI, reload, backend TLS configs |
//! | [`tls_explain`] | a failed TLS handshake toward a backend, XMPP server or SIP core, in words |
//! | [`certcheck`] | `check-config`'s reading of every certificate, key and CA file |
//! | `admin` | the status page, `/status`, `/metrics`, `/live`, `/ready`, `/refused-origins` |
//! | `status` | the status page's data: targets and probes, last reload |
//! | `cluster` | a cluster node: its peers, forwarding BOSH requests to their owner |
//! | `internal` | a cluster node's internal listener: requests other nodes forward |
//! | `live` | what a reload changes: the current routes and settings, the reload itself |
//! | `access` | the access log |
//! | `refusal` | client-caused refusals: logged once per cause and minute |
//! | [`metrics`] | every metric |
//! | [`lifecycle`] | phases, shutdown and reload triggers |
//! | `notify` | `sd_notify` to systemd: ready, reloading, stopping |
#![forbid(unsafe_code)]

mod acme;
pub mod backend;
pub mod config;
pub mod lifecycle;
pub mod logging;
pub mod metrics;
pub mod tls;
pub mod tls_explain;
pub mod xmpp;

mod accept;
mod access;
mod admin;
mod bosh;
pub mod certcheck;
mod client;
mod cluster;
mod conn;
mod drain;
mod http;
mod inbound;
mod internal;
mod live;
mod notify;
mod proxy_header;
mod refusal;
mod response;
mod router;
mod server;
mod sip;
mod staticfiles;
mod status;
mod tls_pin;
mod tunnel;
mod wakeup;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;

pub use lifecycle::{Control, Phase};

use backend::Connector;
use metrics::{Metrics, RouteMetrics};
use prometheus_client::metrics::histogram::Histogram;

/// The listeners the gateway serves on, bound by the caller.
#[derive(Debug)]
pub struct Listeners {
    /// The public listener.
    pub main: TcpListener,
    /// The admin listener.
    pub admin: TcpListener,
    /// The internal listener of a cluster node (`cluster.listen`).
    pub cluster: Option<TcpListener>,
}

impl Listeners {
    /// Binds the addresses in `config`, with a clear error when one is taken.
    pub async fn bind(config: &Config) -> anyhow::Result<Listeners> {
        let main = bind_one(config.server.listen, "server.listen").await?;
        let admin = bind_one(config.admin.listen, "admin.listen").await?;
        let cluster = match &config.cluster {
            Some(c) => Some(bind_one(c.listen, "cluster.listen").await?),
            None => None,
        };
        Ok(Listeners {
            main,
            admin,
            cluster,
        })
    }

    /// Bound address of the public listener.
    pub fn main_addr(&self) -> SocketAddr {
        self.main
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Bound address of the admin listener.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .expect("bound listener has an address")
    }
}

async fn bind_one(addr: SocketAddr, key: &str) -> anyhow::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .with_context(|| format!("cannot create a socket for {key} = {addr}"))?;
    socket.set_reuseaddr(true)?;
    socket
        .bind(addr)
        .map_err(|e| anyhow::anyhow!("{}", bind_error(key, addr, &e)))?;
    // The kernel caps this at net.core.somaxconn.
    socket
        .listen(4096)
        .with_context(|| format!("cannot listen on {key} = {addr}"))
}

/// A refused bind in words that name the port, the likely cause and the key
/// to change.
fn bind_error(key: &str, addr: SocketAddr, e: &std::io::Error) -> String {
    let port = addr.port();
    let (section, field) = key.split_once('.').unwrap_or(("server", key));
    let change = format!("change `{field}` in [{section}] of the configuration file");
    match e.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "cannot listen on {key} = {addr}: port {port} is already in use by another process \
             (`ss -ltnp 'sport = :{port}'` shows which; 5280 and 5281 are Prosody's and \
             ejabberd's own HTTP ports); stop it or {change}"
        ),
        std::io::ErrorKind::PermissionDenied if port < 1024 => format!(
            "cannot listen on {key} = {addr}: port {port} is below 1024 and needs the \
             CAP_NET_BIND_SERVICE capability (the packaged systemd unit grants it); \
             grant it or {change}"
        ),
        std::io::ErrorKind::AddrNotAvailable => format!(
            "cannot listen on {key} = {addr}: {} is not an address of this machine; {change}",
            addr.ip()
        ),
        _ => format!("cannot listen on {key} = {addr}: {e}; {change}"),
    }
}

/// What serves a route: its [`config::RouteKind`] with the runtime pieces
/// that kind needs, so each adapter gets exactly what it uses.
pub(crate) enum Service {
    /// `bosh`: HTTP requests (sessions live in [`Shared::bosh`]), with the
    /// resolver and TLS settings for `[xmpp.domains]` its sessions use.
    Bosh(Arc<xmpp::server::XmppRuntime>),
    /// The WebSocket kinds.
    WebSocket(WsService),
    /// `static`: files from a directory.
    Static(staticfiles::StaticService),
}

/// What serves a WebSocket route.
pub(crate) enum WsService {
    /// `tcp`: the tunnel to the fixed backend.
    Tcp(Connector),
    /// `xmpp-websocket`: resolver and TLS settings for `[xmpp.domains]`.
    Xmpp(Arc<xmpp::server::XmppRuntime>),
    /// `sip-websocket`: the core link and flow table.
    Sip(Arc<sip::SipRuntime>),
}

/// One route's runtime pieces, built once at start.
pub(crate) struct RouteRuntime {
    pub(crate) config: config::RouteConfig,
    pub(crate) service: Service,
    pub(crate) metrics: RouteMetrics,
    pub(crate) connect_seconds: Histogram,
}

/// State shared by every task.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) metrics: Arc<Metrics>,
    /// The routes and settings a reload can change (see [`live`]).
    pub(crate) live: live::LiveCell,
    pub(crate) permits: Arc<Semaphore>,
    /// `server.max_connections_per_ip`.
    pub(crate) per_ip: Arc<client::PerIpLimit>,
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
    pub(crate) certs: Option<Arc<tls::CertStore>>,
    pub(crate) http: server::HttpBuilders,
    /// Fired when the drain starts: every connection says goodbye.
    pub(crate) conn_cancel: CancellationToken,
    /// Each WebSocket's turn to close once `conn_cancel` has fired.
    pub(crate) drain: drain::DrainTurns,
    /// Every connection and WebSocket task, to wait for at the end.
    pub(crate) tracker: TaskTracker,
    pub(crate) control: Control,
    /// BOSH sessions.
    pub(crate) bosh: bosh::BoshRuntime,
    /// `[cluster]`: the peers and the forwarding to them.
    pub(crate) cluster: Option<Arc<cluster::ClusterRuntime>>,
    /// The log throttle for refusals the client caused.
    pub(crate) refusals: refusal::Refusals,
    /// What the status page shows beyond the metrics.
    pub(crate) status: status::StatusState,
}

/// Runs the gateway until `control.shutdown` is cancelled and the drain has
/// finished. Returns an error only for start-up failures.
pub async fn run(config: Config, listeners: Listeners, control: Control) -> anyhow::Result<()> {
    let metrics = Metrics::new();
    metrics.set_limits(&config);
    let (main_addr, admin_addr) = (listeners.main_addr(), listeners.admin_addr());
    // `[server.tls]`'s files, and room for `[server.acme]`'s certificate.
    let (tls_acceptor, certs, server_tls) = match config.server.is_tls() {
        true => {
            let files = config.server.tls.as_ref().map(|t| t.pem_files());
            let files = files.unwrap_or_default();
            let store = if config.server.acme.is_some() {
                tls::CertStore::load_with_acme(files)
            } else {
                tls::CertStore::load(files)
            }
            .map_err(|e| anyhow::anyhow!("loading certificates: {e}"))?;
            let cfg = tls::server_config(Arc::clone(&store), config.server.http2)
                .map_err(|e| anyhow::anyhow!("TLS configuration: {e}"))?;
            (
                Some(tokio_rustls::TlsAcceptor::from(Arc::clone(&cfg))),
                Some(store),
                Some(cfg),
            )
        }
        false => (None, None, None),
    };
    let acme = match (&config.server.acme, &certs) {
        (Some(a), Some(store)) => Some(
            acme::AcmeManager::start(a.clone(), Arc::clone(store), Arc::clone(&metrics))
                .map_err(|e| anyhow::anyhow!("ACME: {e}"))?,
        ),
        _ => None,
    };
    // TLS for connections TLS cores open to the gateway: `[sip]`'s own
    // certificate, else the listener's.
    let server_tls = match &config.sip.tls {
        Some(c) => {
            let store = tls::CertStore::load(vec![(c.cert.clone(), c.key.clone())])
                .map_err(|e| anyhow::anyhow!("loading sip.tls_cert: {e}"))?;
            Some(
                tls::server_config(store, false)
                    .map_err(|e| anyhow::anyhow!("TLS configuration: {e}"))?,
            )
        }
        None => server_tls,
    };
    let deps = live::RouteDeps {
        metrics: Arc::clone(&metrics),
        sip_tls: server_tls,
        sip_stop: CancellationToken::new(),
    };
    let routes = live::build_routes(&config, &deps, &[]).await?;
    let drain_turns =
        drain::DrainTurns::new(config.server.drain_spread, config.server.drain_timeout);
    let shared = Arc::new(Shared {
        bosh: bosh::BoshRuntime::new(&config),
        cluster: cluster::runtime(config.cluster.as_ref()),
        refusals: Default::default(),
        status: status::StatusState::new(&config),
        http: server::HttpBuilders::new(&config.server),
        permits: Arc::new(Semaphore::new(config.server.max_connections)),
        per_ip: client::PerIpLimit::new(config.server.max_connections_per_ip),
        live: live::LiveCell::new(live::Live {
            config: config.clone(),
            routes,
        }),
        config,
        metrics,
        tls: tls_acceptor,
        certs,
        conn_cancel: CancellationToken::new(),
        drain: drain_turns,
        tracker: TaskTracker::new(),
        control: control.clone(),
    });

    let admin_stop = CancellationToken::new();
    let admin_task = tokio::spawn(admin::serve(
        Arc::clone(&shared),
        listeners.admin,
        admin_stop.clone(),
    ));

    let serving = format!(
        "serving on {main_addr}{}, admin {admin_addr}, {} route{}",
        if shared.tls.is_some() { " (TLS)" } else { "" },
        shared.live.get().routes.len(),
        if shared.live.get().routes.len() == 1 {
            ""
        } else {
            "s"
        },
    );
    let sip_stop = deps.sip_stop.clone();
    let reload_task = {
        let shared = Arc::clone(&shared);
        let stop = admin_stop.clone();
        let serving = serving.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shared.control.reload.notified() => {}
                    _ = stop.cancelled() => return,
                }
                // During the drain systemd has STOPPING=1: no READY=1 then.
                let running = shared.control.current() == Phase::Running;
                if running {
                    notify::reloading("reloading the configuration and certificates");
                }
                let config = live::reload(&shared, &deps).await;
                let (certs_ok, certs) = reload(&shared);
                let outcome = match &config {
                    live::Outcome::Applied { kept } if kept.is_empty() => {
                        format!("configuration reloaded; {certs}")
                    }
                    live::Outcome::Applied { kept } => format!(
                        "configuration reloaded (needs a restart: {}); {certs}",
                        kept.join(", ")
                    ),
                    live::Outcome::Refused(e) => format!(
                        "configuration reload refused ({} errors, nothing changed); {certs}",
                        e.len()
                    ),
                    live::Outcome::NoFile => certs,
                };
                shared.status.reloaded(
                    certs_ok && !matches!(config, live::Outcome::Refused(_)),
                    outcome.clone(),
                );
                // During the drain systemd has STOPPING=1: no READY=1 then.
                if running {
                    notify::ready(&format!("{serving}; {outcome}"));
                }
            }
        })
    };

    let acme_task = acme.map(|m| tokio::spawn(m.run(admin_stop.clone())));
    let dns_task = match (&shared.cluster, &shared.config.cluster) {
        (Some(c), Some(cfg)) => {
            shared.metrics.cluster_peers.set(c.peer_count() as i64);
            Some(tokio::spawn(cluster::dns::refresh_loop(
                Arc::clone(c),
                cfg.clone(),
                Arc::clone(&shared.metrics),
                admin_stop.clone(),
            )))
        }
        _ => None,
    };
    // Open until the process stops: through the drain, the other nodes
    // forward this node's sessions' requests here.
    let cluster_task = listeners
        .cluster
        .map(|l| tokio::spawn(internal::serve(Arc::clone(&shared), l, admin_stop.clone())));
    let probe_task = tokio::spawn(status::probe_loop(
        Arc::clone(&shared),
        shared.config.admin.probe_interval,
        admin_stop.clone(),
    ));

    let accept_stop = CancellationToken::new();
    let accept_task = tokio::spawn(server::accept_loop(
        Arc::clone(&shared),
        listeners.main,
        accept_stop.clone(),
    ));
    shared.metrics.ready.set(1);
    control.set_phase(Phase::Running);
    // Both listeners have listened since `Listeners::bind`: connections to
    // either are accepted from here on, and `/ready` answers 200.
    notify::ready(&serving);
    tracing::info!(
        listen = %shared.config.server.listen,
        tls = shared.tls.is_some(),
        routes = shared.live.get().routes.len(),
        "ucgate is serving"
    );

    control.shutdown.cancelled().await;

    // Drain: not ready, (delay), stop accepting, goodbyes, wait.
    shared.metrics.ready.set(0);
    control.set_phase(Phase::Draining);
    let drain = shared.config.server.drain_timeout;
    notify::stopping(&format!(
        "draining: /ready fails, {} connections open, drain_timeout {drain:?}",
        shared.tracker.len()
    ));
    if !shared.config.server.shutdown_delay.is_zero() {
        tokio::time::sleep(shared.config.server.shutdown_delay).await;
    }
    accept_stop.cancel();
    let _ = accept_task.await;
    tracing::info!("stopped accepting; closing connections");
    shared.drain.start();
    shared.conn_cancel.cancel();
    shared.tracker.close();
    let open = shared.tracker.len();
    notify::status(&format!(
        "draining: stopped accepting, closing {open} connections"
    ));
    if tokio::time::timeout(drain, shared.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            left = shared.tracker.len(),
            of = open,
            drain_timeout = ?drain,
            "drain deadline passed; cutting the remaining connections"
        );
    } else {
        tracing::info!(closed = open, "all connections closed");
    }
    control.set_phase(Phase::Stopped);
    admin_stop.cancel();
    sip_stop.cancel();
    let _ = admin_task.await;
    let _ = probe_task.await;
    let _ = reload_task.await;
    if let Some(t) = acme_task {
        let _ = t.await;
    }
    for t in [cluster_task, dns_task].into_iter().flatten() {
        let _ = t.await;
    }
    Ok(())
}

/// Reloads the certificates; whether that worked and what happened, for the
/// service manager's status and the status page.
fn reload(shared: &Shared) -> (bool, String) {
    let labels = |r: &str| metrics::ResultLabels {
        result: r.to_string(),
    };
    match &shared.certs {
        None => {
            tracing::info!("reload requested; no TLS certificates to reload");
            (true, "no TLS certificates to reload".into())
        }
        Some(store) => match store.reload() {
            Ok(n) => {
                shared
                    .metrics
                    .tls_reloads
                    .get_or_create(&labels("ok"))
                    .inc();
                if store.has_acme() {
                    tracing::info!(
                        certificates = n,
                        "certificates reloaded; the ACME certificate is renewed by the gateway and not re-read"
                    );
                } else {
                    tracing::info!(certificates = n, "certificates reloaded");
                }
                (true, format!("certificates reloaded ({n})"))
            }
            Err(e) => {
                shared
                    .metrics
                    .tls_reloads
                    .get_or_create(&labels("error"))
                    .inc();
                tracing::error!(error = %e, "certificate reload failed; keeping the previous certificates");
                (
                    false,
                    format!("certificate reload failed, keeping the previous certificates: {e}"),
                )
            }
        },
    }
}
