//! `idle`: many idle sessions held open, to measure what each one costs the
//! gateway (RSS from `/proc/PID/status`) and how fast they can be opened.

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use url::Url;

use super::parse_ip_list;
use super::ws_echo::{open_ws, Ws};
use crate::net::{Dialer, ProxyOptions, TlsOptions};
use crate::report::{self, round3, Summary};
use crate::stats::{Latency, Shared};
use crate::xmpp_client::{self, In, Out, Transport};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A plain WebSocket, idle after the handshake.
    Ws,
    /// A BOSH session with one long-poll request always outstanding.
    Bosh,
    /// An XMPP WebSocket that opened its stream and got the features.
    XmppWs,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// ws://, wss:// (ws, xmpp-ws) or http://, https:// (bosh) URL.
    pub url: String,
    /// Sessions to open.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Most handshakes in flight at once.
    #[arg(long, default_value_t = 200)]
    pub concurrency: usize,
    #[arg(long, value_enum, default_value_t = Kind::Ws)]
    pub kind: Kind,
    /// Gateway process whose RSS (VmRSS) is sampled before and after.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Seconds to hold every session open once all are open.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub hold: f64,
    /// Client source addresses: `127.0.0.1-127.0.0.20` or a list `a,b`.
    #[arg(long, value_name = "RANGE")]
    pub source_ips: Option<String>,
    /// XMPP domain (xmpp-ws, bosh).
    #[arg(long, default_value = "localhost")]
    pub domain: String,
    /// Subprotocol to offer (ws).
    #[arg(long)]
    pub subprotocol: Option<String>,
    /// BOSH `wait` asked for, seconds.
    #[arg(long, default_value_t = 60)]
    pub bosh_wait: u64,
    /// Seconds for one session to open.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    pub timeout: f64,
    #[command(flatten)]
    pub tls: TlsOptions,
    #[command(flatten)]
    pub proxy: ProxyOptions,
}

/// VmRSS of a process, KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let s = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))
}

/// Raises RLIMIT_NOFILE to the hard limit and checks that `n` sockets
/// (and some spare descriptors) fit; also checks the ephemeral ports.
fn check_capacity(n: usize, sources: usize) -> anyhow::Result<u64> {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let need = n as u64 + 64;
    if need > limit {
        bail!(
            "{n} connections need about {need} file descriptors but RLIMIT_NOFILE is {limit} \
             (the hard limit); raise it (ulimit -Hn, LimitNOFILE=, /etc/security/limits.conf) \
             or open fewer connections"
        );
    }
    if let Ok(r) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range") {
        let v: Vec<u64> = r
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if let [lo, hi] = v[..] {
            let ports = (hi.saturating_sub(lo) + 1) * sources as u64;
            if n as u64 > ports {
                bail!(
                    "{n} connections to one address need more than the {ports} ephemeral ports \
                     of {sources} source address(es) (net.ipv4.ip_local_port_range {lo}-{hi}); \
                     spread them with --source-ips 127.0.0.1-127.0.0.N"
                );
            }
        }
    }
    Ok(limit)
}

/// An open idle session.
enum Session {
    Ws(Box<Ws>),
    Xmpp(xmpp_client::Stream),
}

impl Session {
    /// Resolves when the session ends on its own (an error).
    async fn ended(&mut self) -> String {
        match self {
            Session::Ws(ws) => loop {
                match ws.next().await {
                    Some(Ok(Message::Close(f))) => return format!("closed by the server: {f:?}"),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return format!("WebSocket error: {e}"),
                    None => return "connection closed".to_string(),
                }
            },
            Session::Xmpp(s) => loop {
                match s.rx.recv().await {
                    Some(In::Open | In::Element(_)) => continue,
                    Some(In::End(why)) => return why.unwrap_or_else(|| "ended".to_string()),
                    Some(In::Error(e)) => return e,
                    None => return "session task ended".to_string(),
                }
            },
        }
    }

    async fn close(self) {
        match self {
            Session::Ws(mut ws) => {
                let _ = ws.send(Message::Close(None)).await;
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    while let Some(Ok(_)) = ws.next().await {}
                })
                .await;
            }
            Session::Xmpp(s) => s.close(Duration::from_secs(2)).await,
        }
    }
}

struct Opener {
    kind: Kind,
    url: Url,
    dialer: Dialer,
    domain: String,
    subprotocol: Option<String>,
    bosh_wait: u64,
    timeout: Duration,
}

impl Opener {
    async fn open(&self, local: Option<IpAddr>) -> anyhow::Result<Session> {
        match self.kind {
            Kind::Ws => {
                let (ws, chosen) =
                    open_ws(&self.dialer, &self.url, local, self.subprotocol.as_deref()).await?;
                if self.subprotocol.is_some() && chosen != self.subprotocol {
                    bail!("the server chose subprotocol {chosen:?}");
                }
                Ok(Session::Ws(Box::new(ws)))
            }
            Kind::XmppWs | Kind::Bosh => {
                let t = xmpp_client::Target {
                    transport: if self.kind == Kind::Bosh {
                        Transport::Bosh
                    } else {
                        Transport::Ws
                    },
                    address: self.url.to_string(),
                    domain: self.domain.clone(),
                    dialer: Some(self.dialer.clone()),
                    local,
                    timeout: self.timeout,
                };
                let mut s = if self.kind == Kind::Bosh {
                    let mut bt = xmpp_client::bosh_target(&t)?;
                    bt.wait = self.bosh_wait;
                    let created = crate::bosh_client::create(&bt).await?;
                    let (tx, rx) = crate::bosh_client::spawn(bt, created);
                    xmpp_client::Stream { tx, rx }
                } else {
                    xmpp_client::connect(&t).await?
                };
                // Like a real client before login: the stream is open and
                // the server's features have arrived.
                s.tx.send(Out::Open)
                    .await
                    .map_err(|_| anyhow::anyhow!("session gone"))?;
                let deadline = Instant::now() + self.timeout;
                loop {
                    let el = s.next_element(deadline).await?;
                    if xmpp_client::local_name(&el).is_some_and(|t| t.local() == "features") {
                        break;
                    }
                }
                Ok(Session::Xmpp(s))
            }
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let url = Url::parse(&args.url)?;
    let scheme_ok = match args.kind {
        Kind::Ws | Kind::XmppWs => matches!(url.scheme(), "ws" | "wss"),
        Kind::Bosh => matches!(url.scheme(), "http" | "https"),
    };
    if !scheme_ok {
        bail!(
            "--kind {:?} needs a {} URL",
            args.kind,
            if args.kind == Kind::Bosh {
                "http(s)://"
            } else {
                "ws(s)://"
            }
        );
    }
    if args.connections == 0 || args.concurrency == 0 {
        bail!("--connections and --concurrency must be at least 1");
    }
    let secs_ok = |x: f64| x.is_finite() && x >= 0.0;
    if !secs_ok(args.hold) || !secs_ok(args.timeout) || args.timeout == 0.0 {
        bail!("--hold and --timeout must be non-negative numbers of seconds");
    }
    let sources: Vec<Option<IpAddr>> = match &args.source_ips {
        Some(s) => parse_ip_list(s)?.into_iter().map(Some).collect(),
        None => vec![None],
    };
    let nofile = check_capacity(args.connections, sources.len())?;
    let opener = Arc::new(Opener {
        kind: args.kind,
        url,
        dialer: Dialer::new(&args.tls, &args.proxy)?,
        domain: args.domain.clone(),
        subprotocol: args.subprotocol.clone(),
        bosh_wait: args.bosh_wait,
        timeout: Duration::from_secs_f64(args.timeout),
    });
    let rss_before = match args.pid {
        Some(p) => Some(rss_kib(p)?),
        None => None,
    };

    let shared = Arc::new(Shared::default());
    let opened = Arc::new(AtomicU64::new(0));
    let settled = Arc::new(AtomicU64::new(0)); // opened or failed
    let handshakes = Arc::new(std::sync::Mutex::new(Latency::default()));
    let sem = Arc::new(Semaphore::new(args.concurrency));
    let (close_tx, close_rx) = watch::channel(false);
    let (progress_tx, mut progress_rx) = watch::channel(());
    let start = Instant::now();
    let ticker = {
        let (shared, opened) = (shared.clone(), opened.clone());
        let n = args.connections;
        let first = if args.hold > 3.0 || n > 2000 { 1 } else { 3 };
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(
                start + Duration::from_secs(first),
                Duration::from_secs(1),
            );
            loop {
                let now = tick.tick().await;
                eprintln!(
                    "ucgate-bench: {:>4.0}s: {} of {n} open, {} errors",
                    (now - start).as_secs_f64(),
                    opened.load(Ordering::Relaxed),
                    shared.error_count()
                );
            }
        })
    };
    let mut tasks = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let local = sources[i % sources.len()];
        let (opener, shared, opened, settled, handshakes, sem) = (
            opener.clone(),
            shared.clone(),
            opened.clone(),
            settled.clone(),
            handshakes.clone(),
            sem.clone(),
        );
        let mut close_rx = close_rx.clone();
        let progress_tx = progress_tx.clone();
        tasks.push(tokio::spawn(async move {
            let permit = sem.acquire_owned().await;
            let t0 = Instant::now();
            let r = tokio::time::timeout(opener.timeout, opener.open(local)).await;
            drop(permit);
            let mut session = match r {
                Ok(Ok(s)) => {
                    handshakes.lock().expect("latency").record(t0.elapsed());
                    opened.fetch_add(1, Ordering::Relaxed);
                    s
                }
                Ok(Err(e)) => {
                    shared.error("connect", format!("session {i}: {e:#}"));
                    settled.fetch_add(1, Ordering::Relaxed);
                    progress_tx.send_replace(());
                    return;
                }
                Err(_) => {
                    shared.error("connect", format!("session {i}: timed out"));
                    settled.fetch_add(1, Ordering::Relaxed);
                    progress_tx.send_replace(());
                    return;
                }
            };
            settled.fetch_add(1, Ordering::Relaxed);
            progress_tx.send_replace(());
            let early = tokio::select! {
                _ = close_rx.wait_for(|c| *c) => None,
                why = session.ended() => Some(why),
            };
            match early {
                None => session.close().await,
                Some(why) => shared.error("closed_early", format!("session {i}: {why}")),
            }
        }));
    }
    drop(progress_tx);
    // All opened (or failed)?
    while settled.load(Ordering::Relaxed) < args.connections as u64 {
        if progress_rx.changed().await.is_err() {
            break;
        }
    }
    let ramp = start.elapsed();
    let open_now = opened.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = match args.pid {
        Some(p) => Some(rss_kib(p)?),
        None => None,
    };
    tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    let still_open = open_now.saturating_sub(
        shared
            .error_kinds()
            .get("closed_early")
            .copied()
            .unwrap_or(0),
    );
    close_tx.send_replace(true);
    for t in tasks {
        let _ = t.await;
    }
    ticker.abort();

    let mut s = Summary::from_shared(
        "idle",
        &args.url,
        &shared,
        Duration::from_secs_f64(args.hold),
    );
    s.connections = Some(args.connections as u64);
    s.latency_us = handshakes.lock().expect("latency").percentiles();
    s.set("kind", args.kind_name());
    s.set("opened", open_now);
    s.set("open_at_end", still_open);
    s.set("ramp_s", round3(ramp.as_secs_f64()));
    s.set(
        "open_rate",
        round3(open_now as f64 / ramp.as_secs_f64().max(1e-9)),
    );
    s.set("concurrency", args.concurrency);
    s.set("source_ips", sources.len());
    s.set("nofile_limit", nofile);
    s.set_route(&opener.dialer, &opener.url);
    if let (Some(b), Some(a)) = (rss_before, rss_after) {
        s.set("pid", args.pid);
        s.set("rss_before_kib", b);
        s.set("rss_after_kib", a);
        let per = if open_now > 0 {
            (a as f64 - b as f64) * 1024.0 / open_now as f64
        } else {
            0.0
        };
        s.set("bytes_per_connection", per.round() as i64);
    }
    Ok(report::finish(&s, &shared.error_details()))
}

impl Args {
    fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Ws => "ws",
            Kind::Bosh => "bosh",
            Kind::XmppWs => "xmpp-ws",
        }
    }
}
