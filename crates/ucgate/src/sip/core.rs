//! The per-route SIP runtime: the flow table (flow id → the WebSocket task's
//! queue), the UDP socket toward the core (its local address is the
//! `core_host` of the edge rules), a reused TCP connection to the core for
//! large requests and TCP cores, and a TCP listener on the same port for
//! connections the core opens. Every message from the core goes through
//! `edge::from_core`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use ucgate_proto::sip::edge::{self, EdgeConfig, FromCore};
use ucgate_proto::sip::framing::{CoreTransport, Frame, StreamSplitter, PONG};
use ucgate_proto::sip::message::{self, SipLimits};

use crate::config::{SipConfig, SipCore, SipTransport};
use crate::metrics::Metrics;

/// Messages queued toward one WebSocket client before new ones are dropped.
const FLOW_QUEUE: usize = 64;
/// Messages queued toward one TCP connection to the core.
const TCP_QUEUE: usize = 256;

/// Where to answer a message from the core.
#[derive(Clone)]
enum Reply {
    Udp(SocketAddr),
    Tcp(mpsc::Sender<Vec<u8>>),
}

/// One `sip-websocket` route's shared state.
pub(crate) struct SipRuntime {
    pub(crate) route: String,
    key: Vec<u8>,
    /// `host:port` the core reaches us at.
    core_host: String,
    /// `host:port` the clients reach us at (our Via and Record-Route toward them).
    ws_host: String,
    core_transport: CoreTransport,
    core_addr: SocketAddr,
    udp: Arc<UdpSocket>,
    flows: Mutex<HashMap<u64, mpsc::Sender<Vec<u8>>>>,
    next_flow: AtomicU64,
    tcp_out: tokio::sync::Mutex<Option<mpsc::Sender<Vec<u8>>>>,
    pub(crate) sip: SipConfig,
    pub(crate) limits: SipLimits,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
    /// This runtime (for the tasks it spawns).
    me: std::sync::Weak<SipRuntime>,
}

impl SipRuntime {
    /// Binds the UDP socket and the TCP listener (same port) and starts the
    /// tasks reading them; they end when `stop` is cancelled.
    pub(crate) async fn start(
        route: &str,
        core: &SipCore,
        sip: &SipConfig,
        max_message: usize,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> anyhow::Result<Arc<SipRuntime>> {
        let core_transport = match core.transport {
            SipTransport::Udp => CoreTransport::Udp,
            SipTransport::Tcp => CoreTransport::Tcp,
            SipTransport::Tls => {
                anyhow::bail!("TLS toward a SIP core is not implemented yet (use udp or tcp)")
            }
        };
        let core_addr = tokio::net::lookup_host((core.host.as_str(), core.port))
            .await?
            .next()
            .ok_or_else(|| anyhow::anyhow!("the SIP core `{}` has no address", core.host))?;
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
        let mut bound = None;
        for _ in 0..16 {
            let udp = UdpSocket::bind((bind_ip, 0)).await?;
            let port = udp.local_addr()?.port();
            if let Ok(l) = TcpListener::bind((bind_ip, port)).await {
                bound = Some((udp, l));
                break;
            }
        }
        let (udp, listener) =
            bound.ok_or_else(|| anyhow::anyhow!("no port free on both UDP and TCP"))?;
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
        let key = sip
            .flow_token_key
            .as_ref()
            .map(|k| k.expose().to_vec())
            .ok_or_else(|| anyhow::anyhow!("`sip.flow_token_key` is required"))?;
        let rt = Arc::new_cyclic(|me| SipRuntime {
            me: me.clone(),
            route: route.to_string(),
            key,
            ws_host: core_host.clone(),
            core_host,
            core_transport,
            core_addr,
            udp: Arc::new(udp),
            flows: Mutex::new(HashMap::new()),
            next_flow: AtomicU64::new(0),
            tcp_out: tokio::sync::Mutex::new(None),
            sip: sip.clone(),
            limits: SipLimits {
                max_message,
                ..SipLimits::default()
            },
            metrics,
            stop,
        });
        tracing::info!(route, core = %core_addr, local = %local, "SIP edge ready");
        tokio::spawn(Arc::clone(&rt).udp_loop());
        tokio::spawn(Arc::clone(&rt).accept_loop(listener));
        Ok(rt)
    }

    /// The edge rules' configuration.
    pub(crate) fn edge(&self) -> EdgeConfig<'_> {
        EdgeConfig {
            key: &self.key,
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

    /// Forgets a flow: later requests for it get 430/480.
    pub(crate) fn close_flow(&self, id: u64) {
        self.flows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    pub(crate) fn count(&self, side: &str, kind: &str) {
        self.metrics.error(&self.route, side, kind);
    }

    /// Sends a message to the core over `transport`.
    pub(crate) async fn to_core(&self, bytes: Vec<u8>, transport: CoreTransport) {
        match transport {
            CoreTransport::Udp => {
                if let Err(e) = self.udp.send_to(&bytes, self.core_addr).await {
                    self.count("backend", "udp_send");
                    tracing::warn!(route = %self.route, error = %e, "sending to the SIP core over UDP failed");
                }
            }
            CoreTransport::Tcp => {
                if let Err(e) = self.tcp_send(bytes).await {
                    self.count("backend", "tcp_connect");
                    tracing::warn!(route = %self.route, error = %e, "sending to the SIP core over TCP failed");
                }
            }
            CoreTransport::Tls => self.count("backend", "tls_unsupported"),
        }
    }

    /// Writes on the reused TCP connection to the core, opening it (again)
    /// when there is none or it dropped.
    async fn tcp_send(self: &SipRuntime, bytes: Vec<u8>) -> std::io::Result<()> {
        let mut guard = self.tcp_out.lock().await;
        if let Some(tx) = guard.as_ref() {
            match tx.try_send(bytes) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.count("backend", "tcp_queue_full");
                    return Ok(());
                }
                Err(mpsc::error::TrySendError::Closed(b)) => {
                    *guard = None;
                    return self.tcp_open(&mut guard, b).await;
                }
            }
        }
        self.tcp_open(&mut guard, bytes).await
    }

    async fn tcp_open(
        &self,
        slot: &mut Option<mpsc::Sender<Vec<u8>>>,
        first: Vec<u8>,
    ) -> std::io::Result<()> {
        let stream = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            TcpStream::connect(self.core_addr),
        )
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
        let _ = stream.set_nodelay(true);
        let tx = self.spawn_stream(stream);
        let _ = tx.try_send(first);
        *slot = Some(tx);
        Ok(())
    }

    /// Starts the reader and writer of a TCP connection with the core.
    fn spawn_stream(&self, stream: TcpStream) -> mpsc::Sender<Vec<u8>> {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(TCP_QUEUE);
        let (mut rd, mut wr) = stream.into_split();
        // Either half ending (or the runtime stopping) ends both, so a
        // dropped connection is noticed and re-opened by the next send.
        let conn_stop = self.stop.child_token();
        let stop = conn_stop.clone();
        tokio::spawn(async move {
            let _end = stop.clone().drop_guard();
            loop {
                tokio::select! {
                    m = rx.recv() => match m {
                        Some(m) => if wr.write_all(&m).await.is_err() { break },
                        None => break,
                    },
                    _ = stop.cancelled() => break,
                }
            }
            let _ = wr.shutdown().await;
        });
        let me = self.weak_self();
        let reply = Reply::Tcp(tx.clone());
        let max = self.limits.max_message;
        let stop = conn_stop;
        tokio::spawn(async move {
            let _end = stop.clone().drop_guard();
            let mut split = StreamSplitter::new(max);
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = tokio::select! {
                    r = rd.read(&mut buf) => match r { Ok(0) | Err(_) => break, Ok(n) => n },
                    _ = stop.cancelled() => break,
                };
                split.push(&buf[..n]);
                loop {
                    match split.next_frame() {
                        Ok(None) => break,
                        Ok(Some(Frame::Message(m))) => {
                            let Some(rt) = me.upgrade() else { return };
                            rt.on_core_message(&m, &reply).await;
                        }
                        Ok(Some(Frame::Ping)) => {
                            if let Reply::Tcp(tx) = &reply {
                                let _ = tx.try_send(PONG.to_vec());
                            }
                        }
                        Ok(Some(Frame::Pong)) => {}
                        Err(e) => {
                            if let Some(rt) = me.upgrade() {
                                rt.count("backend", "framing");
                                tracing::warn!(route = %rt.route, error = %e, "bad stream from the SIP core; closing the TCP connection");
                            }
                            return;
                        }
                    }
                }
            }
        });
        tx
    }

    fn weak_self(&self) -> std::sync::Weak<SipRuntime> {
        self.me.clone()
    }

    async fn udp_loop(self: Arc<Self>) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let (n, from) = tokio::select! {
                r = self.udp.recv_from(&mut buf) => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::debug!(route = %self.route, error = %e, "UDP receive error");
                        continue;
                    }
                },
                _ = self.stop.cancelled() => return,
            };
            let data = &buf[..n];
            if data.iter().all(|b| *b == b'\r' || *b == b'\n') {
                continue; // keep-alive
            }
            self.on_core_message(data, &Reply::Udp(from)).await;
        }
    }

    async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        loop {
            let stream = tokio::select! {
                r = listener.accept() => match r {
                    Ok((s, _)) => s,
                    Err(_) => continue,
                },
                _ = self.stop.cancelled() => return,
            };
            let _ = stream.set_nodelay(true);
            self.spawn_stream(stream);
        }
    }

    /// One message from the core (a datagram or a stream frame).
    async fn on_core_message(&self, data: &[u8], reply: &Reply) {
        let msg = match message::parse(data, &self.limits) {
            Ok(m) => m,
            Err(e) => {
                self.count("backend", "sip_parse");
                if let Some(r) = edge::parse_error_response(data, &self.limits, &e, &self.key) {
                    self.answer(reply, r).await;
                }
                return;
            }
        };
        let cfg = self.edge();
        match edge::from_core(&msg, &cfg) {
            FromCore::ToClient { flow, bytes } => {
                let tx = self
                    .flows
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&flow.flow_id)
                    .cloned();
                let gone = match tx {
                    Some(tx) => match tx.try_send(bytes) {
                        Ok(()) => false,
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            self.count("client", "sip_queue_full");
                            false
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => true,
                    },
                    None => true,
                };
                if gone {
                    if let Some(r) = edge::flow_gone_response(&msg, &cfg, self.sip.flow_gone == 480)
                    {
                        self.answer(reply, r).await;
                    }
                }
            }
            FromCore::Respond(r) => self.answer(reply, r).await,
            FromCore::Drop(reason) => {
                self.count("backend", "sip_dropped");
                tracing::debug!(route = %self.route, reason, "message from the SIP core dropped");
            }
        }
    }

    async fn answer(&self, reply: &Reply, bytes: Vec<u8>) {
        match reply {
            Reply::Udp(to) => {
                let _ = self.udp.send_to(&bytes, to).await;
            }
            Reply::Tcp(tx) => {
                let _ = tx.try_send(bytes);
            }
        }
    }
}
