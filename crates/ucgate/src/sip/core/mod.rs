//! The per-route SIP runtime: the flow table (flow id → the WebSocket task's
//! queue), the UDP socket toward the core (its local address is the
//! `core_host` of the edge rules), a reused TCP or TLS connection to the core
//! (the [`Link`]: opened in the background, re-opened after a drop with a
//! back-off, never blocking a client's task), and a TCP listener on the same
//! port for connections the core opens (TLS when the core is a TLS core).
//! Only the core's addresses (`sip.core_sources`) may use that port: other
//! datagrams are dropped and other connections closed at once, both counted
//! (`sip_source_refused`); connections the core opens are capped
//! (`sip.core_max_connections`) and closed after `sip.core_idle_timeout`
//! without a byte either way.
//! Every message from the core goes through `edge::from_core`; the answer
//! path of each request the core sends to a client is remembered by our
//! Via branch, so the client's responses go back the way the request came
//! (RFC 3261 §18.2.2).

mod link;
mod port;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use ucgate_proto::netset::{IpNet, NetSet};
use ucgate_proto::node::NodeName;
use ucgate_proto::side::Side;
use ucgate_proto::sip::edge::{self, EdgeConfig, FromCore};
use ucgate_proto::sip::flow_token;
use ucgate_proto::sip::framing::{CoreTransport, Frame, StreamSplitter, PONG};
use ucgate_proto::sip::message::{self, SipLimits};

use crate::config::{ClusterConfig, RouteConfig, SipConfig, SipCore, SipTransport};
use crate::metrics::{Metrics, SipMetrics};

/// Messages queued toward one WebSocket client before new ones are dropped.
const FLOW_QUEUE: usize = 64;
/// Messages queued toward one TCP connection to the core (and while it is
/// being opened).
const TCP_QUEUE: usize = 256;
/// First wait after a failed connection to the core; doubles up to
/// [`MAX_BACKOFF`] and resets after a success. While waiting, messages for
/// the core are refused at once (the client gets 503) instead of queueing.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Answer paths remembered for requests from the core (RFC 3261 §18.2.2);
/// entries older than [`REPLY_TTL`] (64 × T1, a transaction's lifetime) are
/// forgotten.
const MAX_REPLY_PATHS: usize = 65_536;
const REPLY_TTL: Duration = Duration::from_secs(32);
/// TLS handshake of a connection the core opens.
const ACCEPT_TLS_TIMEOUT: Duration = Duration::from_secs(10);

/// Where to answer a message from the core.
#[derive(Clone)]
enum Reply {
    Udp(SocketAddr),
    Stream(mpsc::Sender<Vec<u8>>),
}

/// Why a message could not be handed to the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CoreError {
    /// The last connection attempt failed; waiting before the next one.
    Unreachable,
    /// Too many messages queued toward the core.
    QueueFull,
    /// The UDP send failed.
    Udp,
}

/// The reused stream connection (TCP or TLS) to the core.
enum LinkState {
    /// No connection and no attempt running.
    Idle,
    /// An attempt is running; messages wait here, each with the answer
    /// for its client should the attempt fail.
    Connecting(Vec<(Vec<u8>, Option<Notice>)>),
    /// Connected: the writer task's queue.
    Up(mpsc::Sender<Vec<u8>>),
    /// The last attempt failed: refuse until `retry_at`.
    Down { retry_at: Instant },
}

struct Link {
    state: LinkState,
    /// The wait after the next failure.
    backoff: Duration,
}

/// What to tell a client when its request cannot reach the core: the
/// client's flow and the response (a 503) to send on it.
pub(crate) type Notice = (u64, Vec<u8>);

/// How to open the stream connection to the core.
enum Dial {
    Tcp,
    Tls {
        client: crate::tls::ClientTls,
        name: rustls_pki_types::ServerName<'static>,
    },
}

/// One `sip-websocket` route's shared state.
pub(crate) struct SipRuntime {
    pub(crate) route: String,
    key: Vec<u8>,
    /// Drawn at this start of the process, mixed into every flow token
    /// (carried in it in a cluster).
    boot: u64,
    /// `cluster.node`: flow tokens name this node (`None`: a single node).
    node: Option<NodeName>,
    /// Who may send to the core-facing port.
    sources: NetSet,
    /// Permits for connections the core opens (`sip.core_max_connections`).
    core_conns: Arc<Semaphore>,
    /// Zero of the connections' last-activity clocks.
    epoch: Instant,
    /// `host:port` the core reaches us at.
    core_host: String,
    /// `host:port` the clients reach us at (our Via and Record-Route toward them).
    ws_host: String,
    core_transport: CoreTransport,
    core_addr: SocketAddr,
    udp: Arc<UdpSocket>,
    flows: Mutex<HashMap<u64, mpsc::Sender<Vec<u8>>>>,
    next_flow: AtomicU64,
    link: Mutex<Link>,
    dial: Dial,
    connect_timeout: Duration,
    /// TLS for connections the core opens (TLS cores only).
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    /// Our Via branch of each request relayed from the core → its answer path.
    replies: Mutex<HashMap<Vec<u8>, (Reply, Instant)>>,
    pub(crate) sip: SipConfig,
    pub(crate) limits: SipLimits,
    metrics: Arc<Metrics>,
    pub(crate) sm: SipMetrics,
    stop: CancellationToken,
    /// This runtime (for the tasks it spawns).
    me: std::sync::Weak<SipRuntime>,
}

impl SipRuntime {
    /// Binds the UDP socket and the TCP listener (same port) and starts the
    /// tasks reading them; they end when `stop` is cancelled.
    pub(crate) async fn start(
        r: &RouteConfig,
        core: &SipCore,
        sip: &SipConfig,
        cluster: Option<&ClusterConfig>,
        server_tls: Option<Arc<rustls::ServerConfig>>,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> anyhow::Result<Arc<SipRuntime>> {
        let route = r.path.as_str();
        let max_message = r.max_message_size;
        let connect_timeout = r.connect_timeout;
        let (core_transport, dial, acceptor) = match core.transport {
            SipTransport::Udp => (CoreTransport::Udp, Dial::Tcp, None),
            SipTransport::Tcp => (CoreTransport::Tcp, Dial::Tcp, None),
            SipTransport::Tls => {
                let tls = core
                    .tls
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("a TLS core needs its certificate settings"))?;
                let client = crate::tls::ClientTls::new(tls.ca_file.as_deref())
                    .map_err(|e| anyhow::anyhow!("TLS toward the SIP core: {e}"))?;
                let name = rustls_pki_types::ServerName::try_from(tls.server_name.clone())
                    .map_err(|e| anyhow::anyhow!("core server name: {e}"))?;
                let server = server_tls.ok_or_else(|| {
                    anyhow::anyhow!(
                        "a TLS core needs `[server.tls]` certificates for the connections it opens"
                    )
                })?;
                // The core's connections carry SIP, not HTTP: no ALPN.
                let mut server = (*server).clone();
                server.alpn_protocols.clear();
                (
                    CoreTransport::Tls,
                    Dial::Tls { client, name },
                    Some(tokio_rustls::TlsAcceptor::from(Arc::new(server))),
                )
            }
        };
        let core_addrs: Vec<SocketAddr> = tokio::net::lookup_host((core.host.as_str(), core.port))
            .await?
            .collect();
        let core_addr = *core_addrs
            .first()
            .ok_or_else(|| anyhow::anyhow!("the SIP core `{}` has no address", core.host))?;
        let sources = match &sip.core_sources {
            Some(set) => set.clone(),
            None => NetSet::new(core_addrs.iter().map(|a| IpNet::host(a.ip())).collect()),
        };
        let bind_ip: IpAddr = if core_addr.ip().is_loopback() {
            if core_addr.is_ipv4() {
                Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            }
        } else if core_addr.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        };
        // The same port on UDP and TCP: retry a few times if TCP is taken.
        let (udp, listener) = match sip.listen {
            Some(addr) => bind_listen(addr).await?,
            None => bind_any(bind_ip).await?,
        };
        let local = udp.local_addr()?;
        let host = match &sip.advertised_host {
            Some(h) => h.clone(),
            None if local.ip().is_unspecified() => anyhow::bail!(
                "set `sip.advertised_host`: the SIP core is not on loopback, so the gateway needs an address the core can reach"
            ),
            None => match local.ip() {
                IpAddr::V6(ip) => format!("[{ip}]"),
                IpAddr::V4(ip) => ip.to_string(),
            },
        };
        let core_host = format!("{host}:{}", local.port());
        // A flow id names a connection of this process only: ids start
        // again at 1 after a restart, so a token from before it must not
        // name the new connection (single node: its MAC fails; cluster: it
        // names the previous start and gets 430).
        let mut boot = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut boot)
            .map_err(|_| anyhow::anyhow!("no randomness for the flow-token start value"))?;
        let (key, node) = match cluster {
            // (`sip.flow_token_key` is not used: a configuration warning)
            Some(c) => (
                flow_token::cluster_key(c.secret.expose()).to_vec(),
                Some(c.node.clone()),
            ),
            None => (single_node_key(route, sip)?, None),
        };
        let rt = Arc::new_cyclic(|me| SipRuntime {
            me: me.clone(),
            route: route.to_string(),
            key,
            boot: u64::from_be_bytes(boot),
            node,
            sources,
            core_conns: Arc::new(Semaphore::new(sip.core_max_connections)),
            epoch: Instant::now(),
            ws_host: core_host.clone(),
            core_host,
            core_transport,
            core_addr,
            udp: Arc::new(udp),
            flows: Mutex::new(HashMap::new()),
            next_flow: AtomicU64::new(0),
            link: Mutex::new(Link {
                state: LinkState::Idle,
                backoff: FIRST_BACKOFF,
            }),
            dial,
            connect_timeout,
            acceptor,
            replies: Mutex::new(HashMap::new()),
            sip: sip.clone(),
            limits: SipLimits {
                max_message,
                ..SipLimits::default()
            },
            sm: metrics.sip(route),
            metrics,
            stop,
        });
        tracing::info!(route, core = %core_addr, local = %local, sources = %rt.sources, "SIP edge ready");
        tokio::spawn(Arc::clone(&rt).udp_loop());
        tokio::spawn(Arc::clone(&rt).accept_loop(listener));
        Ok(rt)
    }

    /// The edge rules' configuration.
    pub(crate) fn edge(&self) -> EdgeConfig<'_> {
        EdgeConfig {
            key: &self.key,
            boot: self.boot,
            node: self.node.as_ref(),
            ws_host: &self.ws_host,
            core_host: &self.core_host,
            core_transport: self.core_transport,
            udp_threshold: self.sip.udp_threshold,
            require_path_support: self.sip.require_path_support,
        }
    }

    /// The flow-token key.
    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    /// Milliseconds since the runtime started (connection activity clocks).
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// A new flow: its id and the queue of messages for it.
    pub(crate) fn open_flow(&self) -> (u64, mpsc::Receiver<Vec<u8>>) {
        let id = self.next_flow.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::channel(FLOW_QUEUE);
        self.flows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        (id, rx)
    }

    /// Queues `bytes` on another client's flow (an in-dialog request between
    /// two clients of this gateway, or the response to one). `false` when
    /// the flow is gone.
    pub(crate) fn to_flow(&self, flow_id: u64, bytes: Vec<u8>) -> bool {
        let tx = self
            .flows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&flow_id)
            .cloned();
        match tx.map(|tx| tx.try_send(bytes)) {
            Some(Ok(())) => true,
            Some(Err(mpsc::error::TrySendError::Full(_))) => {
                self.count(Side::Client, "sip_queue_full");
                true
            }
            Some(Err(mpsc::error::TrySendError::Closed(_))) | None => false,
        }
    }

    /// Forgets a flow: later requests for it get 430/480.
    pub(crate) fn close_flow(&self, id: u64) {
        self.flows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    pub(crate) fn count(&self, side: Side, kind: &str) {
        self.metrics.error(&self.route, side, kind);
    }

    /// Hands a message to the core over `transport`; never waits for a
    /// connection to be opened. `notice` is delivered to its flow if the
    /// message was queued for a connection attempt that then failed (an
    /// immediate failure is returned instead).
    pub(crate) async fn to_core(
        &self,
        bytes: Vec<u8>,
        transport: CoreTransport,
        notice: Option<Notice>,
    ) -> Result<(), CoreError> {
        match transport {
            CoreTransport::Udp => {
                if let Err(e) = self.udp.send_to(&bytes, self.core_addr).await {
                    self.count(Side::Backend, "udp_send");
                    tracing::warn!(route = %self.route, error = %e, "sending to the SIP core over UDP failed");
                    return Err(CoreError::Udp);
                }
                Ok(())
            }
            CoreTransport::Tcp | CoreTransport::Tls => self.link_send(bytes, notice),
        }
    }

    /// Remembers how to answer the request the core sent, under its
    /// `edge::transaction_key` (bounded; old entries are forgotten).
    fn remember_reply(&self, key: Vec<u8>, reply: &Reply) {
        let mut map = self.replies.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_REPLY_PATHS {
            map.retain(|_, (_, at)| at.elapsed() < REPLY_TTL);
            if map.len() >= MAX_REPLY_PATHS {
                self.count(Side::Backend, "reply_paths_full");
                return;
            }
        }
        map.insert(key, (reply.clone(), Instant::now()));
    }

    /// Sends a client's response (our Via already removed) back the way
    /// the request came: the same UDP address or the same stream
    /// connection (RFC 3261 §18.2.2). `key` is the response's
    /// `edge::transaction_key` (taken while our Via was still on top);
    /// `final_response` forgets the path. Falls back to the core's address
    /// over `transport` when the path is unknown or the connection is gone.
    pub(crate) async fn response_to_core(
        &self,
        key: Option<Vec<u8>>,
        final_response: bool,
        bytes: Vec<u8>,
        transport: CoreTransport,
    ) -> Result<(), CoreError> {
        let path = key.and_then(|key| {
            let mut map = self.replies.lock().unwrap_or_else(|e| e.into_inner());
            if final_response {
                map.remove(&key).map(|(r, _)| r)
            } else {
                map.get(&key).map(|(r, _)| r.clone())
            }
        });
        match path {
            Some(Reply::Udp(to)) => {
                if self.udp.send_to(&bytes, to).await.is_err() {
                    self.count(Side::Backend, "udp_send");
                    return Err(CoreError::Udp);
                }
                Ok(())
            }
            Some(Reply::Stream(tx)) => match tx.try_send(bytes) {
                Ok(()) => Ok(()),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.count(Side::Backend, "tcp_queue_full");
                    Err(CoreError::QueueFull)
                }
                // The connection the request came on is gone: a new one
                // to the core's address is the best left (§18.2.2).
                Err(mpsc::error::TrySendError::Closed(b)) => self.to_core(b, transport, None).await,
            },
            None => self.to_core(bytes, transport, None).await,
        }
    }

    fn weak_self(&self) -> std::sync::Weak<SipRuntime> {
        self.me.clone()
    }
}

/// A single node's flow-token key: `sip.flow_token_key`, or a random one.
fn single_node_key(route: &str, sip: &SipConfig) -> anyhow::Result<Vec<u8>> {
    if let Some(k) = &sip.flow_token_key {
        return Ok(k.expose().to_vec());
    }
    // A random key is enough: a token names a connection of this process,
    // and only this process ever verifies it.
    let mut k = vec![0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut k)
        .map_err(|_| anyhow::anyhow!("no randomness for the flow-token key"))?;
    tracing::info!(
        route,
        "sip.flow_token_key not set: using a random key for this process"
    );
    Ok(k)
}

/// `sip.listen`: UDP and TCP on exactly this address, so that firewall rules
/// and the Paths a registrar stored name the same port after a restart.
async fn bind_listen(addr: SocketAddr) -> anyhow::Result<(UdpSocket, TcpListener)> {
    let clash = |proto: &str, e: std::io::Error| {
        anyhow::anyhow!(
            "cannot bind sip.listen = {addr} ({proto}): {e} (is another process, or server.listen or admin.listen, using that port? change `sip.listen` in [sip])"
        )
    };
    let udp = UdpSocket::bind(addr).await.map_err(|e| clash("UDP", e))?;
    // Port 0: the OS chooses, and TCP takes the same one.
    let addr = udp.local_addr()?;
    let tcp = TcpListener::bind(addr).await.map_err(|e| clash("TCP", e))?;
    Ok((udp, tcp))
}

/// Without `sip.listen`: a port the OS chooses, free on both UDP and TCP
/// (retried a few times when the TCP side is taken).
async fn bind_any(ip: IpAddr) -> anyhow::Result<(UdpSocket, TcpListener)> {
    for _ in 0..16 {
        let udp = UdpSocket::bind((ip, 0)).await?;
        let port = udp.local_addr()?.port();
        if let Ok(l) = TcpListener::bind((ip, port)).await {
            return Ok((udp, l));
        }
    }
    anyhow::bail!("no port free on both UDP and TCP")
}
