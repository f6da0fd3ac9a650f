//! One module per subcommand, and what the load modes share: the load
//! options, the pacer (open loop at fixed intended times, or a closed-loop
//! window) and the queue of messages awaiting their echo.
pub mod echo;
pub mod idle;
pub mod probe;
pub mod sip_ws;
pub mod tcp_echo;
pub mod ws_echo;
pub mod xmpp;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use crate::stats::{Clock, Latency, Shared};

/// How long and how hard to load (shared by the message modes).
#[derive(clap::Args, Clone, Debug)]
pub struct LoadArgs {
    /// Seconds of measured load (fractions allowed).
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub duration: f64,
    /// Seconds of load before measuring (not counted; errors still are).
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub warmup: f64,
    /// Open loop: this many messages per second in total, sent at fixed
    /// intended times; latency is measured from the intended time (no
    /// coordinated omission). Without it: closed loop with --window.
    #[arg(long, value_name = "MSGS_PER_S")]
    pub rate: Option<f64>,
    /// Closed loop: messages outstanding per connection.
    #[arg(long, default_value_t = 1, value_name = "W")]
    pub window: usize,
    /// Seconds to wait for a connection, a login, or (after the run) the
    /// replies still outstanding; later ones are lost.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub timeout: f64,
}

impl LoadArgs {
    /// Checks the values (usage errors).
    pub fn check(&self) -> anyhow::Result<()> {
        let ok = |x: f64| x.is_finite() && x >= 0.0;
        if !ok(self.duration) || self.duration == 0.0 {
            anyhow::bail!("--duration must be a positive number of seconds");
        }
        if !ok(self.warmup) || !ok(self.timeout) || self.timeout == 0.0 {
            anyhow::bail!("--warmup and --timeout must be non-negative numbers of seconds");
        }
        if let Some(r) = self.rate {
            if !r.is_finite() || r <= 0.0 {
                anyhow::bail!("--rate must be a positive number of messages per second");
            }
        }
        if self.window == 0 {
            anyhow::bail!("--window must be at least 1");
        }
        Ok(())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout)
    }

    /// The run's clock, starting now. The measured window's start and end
    /// are announced on stderr (`ucgate-bench: measuring`, `ucgate-bench:
    /// measured`), so that whoever runs the tool can read the CPU use of
    /// the peers over that window alone (scripts/bench does).
    pub fn clock(&self) -> Clock {
        let clock = Clock::new(
            Duration::from_secs_f64(self.warmup),
            Duration::from_secs_f64(self.duration),
            self.timeout(),
        );
        let (from, end) = (clock.measure_from.into_std(), clock.end.into_std());
        std::thread::spawn(move || {
            for (at, what) in [(from, "measuring"), (end, "measured")] {
                let now = std::time::Instant::now();
                if at > now {
                    std::thread::sleep(at - now);
                }
                eprintln!("ucgate-bench: {what}");
            }
        });
        clock
    }

    /// One pacer per connection (`n` of them). Open loop: one scheduler
    /// thread (precise sleeps, unlike the runtime's 1 ms timer wheel) hands
    /// out the intended times `start + k / rate` round-robin, so the
    /// connections are evenly staggered; a connection that falls behind
    /// finds its intended times queued and sends at once, so its latency
    /// includes the delay (no coordinated omission).
    pub fn pacers(&self, clock: &Clock, n: usize) -> Vec<(Pacer, Release)> {
        match self.rate {
            Some(rate) => {
                let mut txs = Vec::with_capacity(n);
                let mut out = Vec::with_capacity(n);
                for _ in 0..n {
                    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                    txs.push(tx);
                    out.push((Pacer::Open(rx), Release(None)));
                }
                let start = clock.start.into_std();
                let end = clock.end.into_std();
                std::thread::spawn(move || {
                    let mut k: u64 = 0;
                    loop {
                        let t = start + Duration::from_secs_f64(k as f64 / rate);
                        if t >= end {
                            return;
                        }
                        let now = std::time::Instant::now();
                        if t > now {
                            std::thread::sleep(t - now);
                        }
                        let _ = txs[(k % n as u64) as usize].send(Instant::from_std(t));
                        k += 1;
                    }
                });
                out
            }
            None => (0..n)
                .map(|_| {
                    let permits = Arc::new(Semaphore::new(self.window));
                    (
                        Pacer::Closed {
                            permits: permits.clone(),
                            end: clock.end,
                        },
                        Release(Some(permits)),
                    )
                })
                .collect(),
        }
    }
}

/// When the next message of a connection is due.
pub enum Pacer {
    /// Intended times from the scheduler thread.
    Open(tokio::sync::mpsc::UnboundedReceiver<Instant>),
    /// As soon as fewer than the window are outstanding.
    Closed {
        permits: Arc<Semaphore>,
        end: Instant,
    },
}

impl Pacer {
    /// Waits until the next message is due and returns its intended send
    /// time, or `None` when the run is over.
    pub async fn next(&mut self) -> Option<Instant> {
        match self {
            Pacer::Open(rx) => rx.recv().await,
            Pacer::Closed { permits, end } => {
                tokio::select! {
                    p = permits.acquire() => {
                        p.ok()?.forget();
                        let now = Instant::now();
                        (now < *end).then_some(now)
                    }
                    _ = tokio::time::sleep_until(*end) => None,
                }
            }
        }
    }
}

/// Given back by the receiving side when a message completes (closed loop).
#[derive(Clone)]
pub struct Release(Option<Arc<Semaphore>>);

impl Release {
    pub fn release(&self) {
        if let Some(s) = &self.0 {
            s.add_permits(1);
        }
    }
}

/// Messages sent and not yet answered, oldest first: sequence number and
/// intended send time.
#[derive(Clone, Default)]
pub struct Pending(Arc<Mutex<VecDeque<(u64, Instant)>>>);

/// What the receiving side found for a received sequence number.
#[derive(Debug, PartialEq, Eq)]
pub enum Matched {
    /// The oldest outstanding message, sent at this time.
    InOrder(Instant),
    /// A newer one: the `missing` older ones were skipped (lost or
    /// reordered); they are dropped from the queue.
    Skipped { sent: Instant, missing: u64 },
    /// Not outstanding (already answered, or never sent).
    Unknown,
}

impl Pending {
    pub fn push(&self, seq: u64, t: Instant) {
        self.0.lock().expect("pending").push_back((seq, t));
    }

    pub fn len(&self) -> usize {
        self.0.lock().expect("pending").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes `seq` wherever it is in the queue (protocols that check the
    /// order themselves).
    pub fn remove(&self, seq: u64) -> Option<Instant> {
        let mut q = self.0.lock().expect("pending");
        let pos = q.iter().position(|(s, _)| *s == seq)?;
        q.remove(pos).map(|(_, t)| t)
    }

    /// Matches a received sequence number against the queue.
    pub fn take(&self, seq: u64) -> Matched {
        let mut q = self.0.lock().expect("pending");
        let Some(pos) = q.iter().position(|(s, _)| *s == seq) else {
            return Matched::Unknown;
        };
        let (_, sent) = q[pos];
        q.drain(..=pos);
        if pos == 0 {
            Matched::InOrder(sent)
        } else {
            Matched::Skipped {
                sent,
                missing: pos as u64,
            }
        }
    }
}

/// What every connection of a run shares.
pub struct Ctx {
    pub shared: Arc<Shared>,
    pub clock: Clock,
    /// Payload bytes counted per message.
    pub size: usize,
}

/// The measured phase every load mode shares: the run's clock starts, the
/// progress line runs, and each open connection (`None`: it failed to
/// open or log in, and is skipped) gets its own task from `drive` with its
/// index and pacer; returns the clock once all of them are done.
pub async fn run_load<T, F, Fut>(
    load: &LoadArgs,
    shared: &Arc<Shared>,
    size: usize,
    conns: Vec<Option<T>>,
    drive: F,
) -> Clock
where
    F: Fn(Arc<Ctx>, u32, T, Pacer, Release) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let clock = load.clock();
    let progress = crate::report::progress(shared.clone(), clock, "messages");
    let ctx = Arc::new(Ctx {
        shared: shared.clone(),
        clock,
        size,
    });
    let pacers = load.pacers(&clock, conns.len());
    let mut tasks = Vec::new();
    for (i, (c, (pacer, release))) in conns.into_iter().zip(pacers).enumerate() {
        if let Some(c) = c {
            tasks.push(tokio::spawn(drive(
                ctx.clone(),
                i as u32,
                c,
                pacer,
                release,
            )));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    progress.abort();
    clock
}

/// Sends message `seq` (the protocol builds it).
pub trait MsgSender: Send {
    fn send(&mut self, seq: u64) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Ends the connection politely.
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// A receiver error meaning the peer closed (counted as
/// `unexpected_close`, with its reason).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PeerClosed(pub String);

/// A read error: a reset by the peer is [`PeerClosed`].
pub fn io_error(e: std::io::Error) -> anyhow::Error {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
            PeerClosed(format!("connection lost: {e}")).into()
        }
        _ => e.into(),
    }
}

/// A WebSocket read error: a reset by the peer is [`PeerClosed`].
pub fn ws_error(e: tokio_tungstenite::tungstenite::Error) -> anyhow::Error {
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Io(e) => io_error(e),
        Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) | Error::ConnectionClosed => {
            PeerClosed("connection lost without a close frame".to_string()).into()
        }
        e => e.into(),
    }
}

/// Receives and checks what comes back.
pub trait MsgReceiver: Send {
    /// Waits for the next input and reports completed messages (and
    /// errors) to the tracker; `Ok(false)` when the peer closed. Must be
    /// cancel-safe: everything after its only await point is synchronous.
    fn recv(&mut self, t: &mut Tracker<'_>) -> impl Future<Output = anyhow::Result<bool>> + Send;
    /// After `close`: reads until the peer has closed too (bounded by the
    /// caller).
    fn finish(&mut self) -> impl Future<Output = ()> + Send;
}

/// Matches replies to the messages sent, records latency and counts
/// errors, for one connection.
pub struct Tracker<'a> {
    pub conn: u32,
    pub shared: &'a Shared,
    clock: Clock,
    size: u64,
    pending: Pending,
    release: Release,
    latency: Latency,
}

impl Tracker<'_> {
    /// Message `seq` came back intact.
    pub fn complete(&mut self, seq: u64) {
        let now = Instant::now();
        let conn = self.conn;
        let sent = match self.pending.take(seq) {
            Matched::InOrder(sent) => sent,
            Matched::Skipped { sent, missing } => {
                self.shared.errors_n(
                    "lost",
                    missing,
                    format!("connection {conn}: {missing} message(s) missing before {seq}"),
                );
                for _ in 0..missing {
                    self.release.release();
                }
                sent
            }
            Matched::Unknown => {
                self.shared.error(
                    "duplicated",
                    format!("connection {conn}: message {seq} again or out of order"),
                );
                return;
            }
        };
        self.release.release();
        self.record(sent, now);
    }

    /// Latency: every message due in the window, even if answered after
    /// it. Throughput: messages due after the warm-up and answered within
    /// the window (what was achieved, even when the target falls behind an
    /// open-loop rate).
    fn record(&mut self, sent: Instant, now: Instant) {
        if self.clock.counted(sent) {
            self.latency.record(now - sent);
        }
        if sent >= self.clock.measure_from && now < self.clock.end {
            self.shared.message(self.size);
        }
    }

    /// Message `seq` completed, whatever its position (the caller checks
    /// the order); `false` if it was not outstanding.
    pub fn complete_unordered(&mut self, seq: u64) -> bool {
        let now = Instant::now();
        let Some(sent) = self.pending.remove(seq) else {
            return false;
        };
        self.release.release();
        self.record(sent, now);
        true
    }

    /// A reply was wrong; `seq` when it is known which message it was.
    pub fn corrupted(&mut self, seq: Option<u64>, why: impl std::fmt::Display) {
        self.fail(seq, "corrupted", why);
    }

    /// Message `seq` (when known) failed with an error of `kind`: it is no
    /// longer awaited.
    pub fn fail(&mut self, seq: Option<u64>, kind: &str, why: impl std::fmt::Display) {
        self.shared.error(kind, why);
        if let Some(seq) = seq {
            if self.pending.remove(seq).is_some() {
                self.release.release();
            }
        }
    }

    /// Another kind of error on this connection.
    pub fn error(&self, kind: &str, why: impl std::fmt::Display) {
        self.shared
            .error(kind, format!("connection {}: {why}", self.conn));
    }
}

/// Sends paced messages and checks the replies until the run is over and
/// every reply has come back (or the drain timeout passed), then closes.
pub async fn drive<S: MsgSender, R: MsgReceiver>(
    ctx: &Ctx,
    conn: u32,
    mut sender: S,
    mut receiver: R,
    mut pacer: Pacer,
    release: Release,
) {
    let shared = &*ctx.shared;
    let clock = ctx.clock;
    let pending = Pending::default();
    let (done_tx, mut done_rx) = watch::channel(false);
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let mut tracker = Tracker {
        conn,
        shared,
        clock,
        size: ctx.size as u64,
        pending: pending.clone(),
        release,
        latency: Latency::default(),
    };
    let send_side = async {
        let mut seq = 0u64;
        loop {
            let t = tokio::select! {
                t = pacer.next() => t,
                _ = stop_rx.changed() => None,
            };
            let Some(t) = t else { break };
            pending.push(seq, t);
            if let Err(e) = sender.send(seq).await {
                shared.error("send", format!("connection {conn}: {e:#}"));
                break;
            }
            seq += 1;
        }
        let _ = done_tx.send(true);
        sender
    };
    let receive_side = async {
        let mut done = false;
        loop {
            if done && pending.is_empty() {
                break;
            }
            tokio::select! {
                r = receiver.recv(&mut tracker) => match r {
                    Ok(true) => {}
                    Ok(false) => {
                        tracker.error("unexpected_close", "closed by the peer");
                        break;
                    }
                    Err(e) => {
                        let kind = if e.is::<PeerClosed>() { "unexpected_close" } else { "receive" };
                        tracker.error(kind, format!("{e:#}"));
                        break;
                    }
                },
                _ = done_rx.changed(), if !done => done = true,
                _ = tokio::time::sleep_until(clock.drain_until), if done => {
                    let n = pending.len() as u64;
                    shared.errors_n("lost", n, format!("connection {conn}: {n} message(s) never answered"));
                    break;
                }
            }
        }
        let _ = stop_tx.send(true);
    };
    let (sender, ()) = tokio::join!(send_side, receive_side);
    shared.merge_latency(&tracker.latency);
    sender.close().await;
    // Let the peer finish closing (bounded); nothing after the run counts.
    let _ = tokio::time::timeout(Duration::from_secs(2), receiver.finish()).await;
}

/// A unique-enough token for ids, tags and branches (no randomness needed:
/// process id, start time and a counter).
pub fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static BASE: OnceLock<String> = OnceLock::new();
    static N: AtomicU64 = AtomicU64::new(0);
    let base = BASE.get_or_init(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        format!("{:x}{:x}", std::process::id(), t & 0xffff_ffff_ffff)
    });
    format!("{base}x{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Parses `a.b.c.d-a.b.c.e` (an IPv4 range), or a comma-separated list of
/// addresses.
pub fn parse_ip_list(s: &str) -> anyhow::Result<Vec<std::net::IpAddr>> {
    use std::net::{IpAddr, Ipv4Addr};
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let a: Ipv4Addr = a.trim().parse()?;
            let b: Ipv4Addr = b.trim().parse()?;
            let (a, b) = (u32::from(a), u32::from(b));
            if b < a || b - a > 65_535 {
                anyhow::bail!("bad address range {part:?}");
            }
            out.extend((a..=b).map(|x| IpAddr::V4(Ipv4Addr::from(x))));
        } else {
            out.push(part.parse()?);
        }
    }
    if out.is_empty() {
        anyhow::bail!("no address in {s:?}");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_matches_in_order_and_skips() {
        let p = Pending::default();
        let t = Instant::now();
        for s in 0..5 {
            p.push(s, t);
        }
        assert_eq!(p.take(0), Matched::InOrder(t));
        assert_eq!(
            p.take(2),
            Matched::Skipped {
                sent: t,
                missing: 1
            }
        );
        assert_eq!(p.take(1), Matched::Unknown);
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn ip_ranges() {
        let v = parse_ip_list("127.0.0.1-127.0.0.3").unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[2].to_string(), "127.0.0.3");
        assert_eq!(parse_ip_list("127.0.0.1, ::1").unwrap().len(), 2);
        assert!(parse_ip_list("127.0.0.3-127.0.0.1").is_err());
    }
}
