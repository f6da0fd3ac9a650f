//! `tcp-echo-server` (an echo server) and `tcp-echo` (the raw TCP baseline).

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use super::echo::{self, HEADER};
use super::LoadArgs;
use crate::report::{self, Summary};
use crate::stats::Shared;

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:7001")]
    pub listen: SocketAddr,
}

/// Runs the echo server until killed; prints `listening ADDR` when ready.
pub async fn serve(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let l = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = l.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening {addr}")?;
        out.flush()?;
    }
    loop {
        let (s, _) = match l.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and the like: back off instead of spinning.
                eprintln!("ucgate-bench: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            let _ = s.set_nodelay(true);
            let (mut r, mut w) = s.into_split();
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if w.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = w.shutdown().await;
        });
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// HOST:PORT of the echo server.
    pub addr: String,
    /// Connections, each sending and checking its own messages.
    #[arg(long, default_value_t = 50)]
    pub connections: usize,
    /// Bytes per message (at least 24: the header).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    #[command(flatten)]
    pub load: LoadArgs,
}

pub fn check_size(size: usize) -> anyhow::Result<()> {
    if !(HEADER..=16 * 1024 * 1024).contains(&size) {
        anyhow::bail!("--size must be between {HEADER} and 16777216 bytes");
    }
    Ok(())
}

pub struct TcpSink(pub OwnedWriteHalf);
pub struct TcpSource(pub OwnedReadHalf, pub Box<[u8]>);

impl echo::Sink for TcpSink {
    async fn send(&mut self, data: Vec<u8>) -> anyhow::Result<()> {
        Ok(self.0.write_all(&data).await?)
    }
    async fn close(mut self) {
        let _ = self.0.shutdown().await;
    }
}

impl echo::Source for TcpSource {
    async fn recv(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        let n = self.0.read(&mut self.1).await.map_err(super::io_error)?;
        Ok((n > 0).then(|| self.1[..n].to_vec()))
    }
}

/// Opens `n` connections with `open(i)`, at most 64 at a time; failures
/// are counted as `connect` errors and leave `None`.
pub async fn open_all<T, F, Fut>(
    n: usize,
    shared: &Arc<Shared>,
    timeout: std::time::Duration,
    open: F,
) -> Vec<Option<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let fut = open(i);
        let sem = sem.clone();
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire_owned().await.ok()?;
            match tokio::time::timeout(timeout, fut).await {
                Ok(Ok(t)) => Some(t),
                Ok(Err(e)) => {
                    shared.error("connect", format!("connection {i}: {e:#}"));
                    None
                }
                Err(_) => {
                    shared.error("connect", format!("connection {i}: timed out"));
                    None
                }
            }
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.ok().flatten());
    }
    out
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    args.load.check()?;
    check_size(args.size)?;
    if args.connections == 0 {
        anyhow::bail!("--connections must be at least 1");
    }
    let addr = args.addr.clone();
    let shared = Arc::new(Shared::default());
    let conns = open_all(args.connections, &shared, args.load.timeout(), |_| {
        let addr = addr.clone();
        async move {
            let s = TcpStream::connect(&addr).await?;
            s.set_nodelay(true)?;
            Ok(s)
        }
    })
    .await;
    let clock = super::run_load(
        &args.load,
        &shared,
        args.size,
        conns,
        |ctx, i, s, pacer, release| async move {
            let (r, w) = s.into_split();
            let src = TcpSource(r, vec![0u8; 64 * 1024].into_boxed_slice());
            echo::drive(&ctx, i, TcpSink(w), src, pacer, release).await;
        },
    )
    .await;
    let mut s = Summary::from_shared("tcp-echo", &args.addr, &shared, clock.measured());
    s.connections = Some(args.connections as u64);
    s.size = Some(args.size as u64);
    s.set("load", load_desc(&args.load));
    Ok(report::finish(&s, &shared.error_details()))
}

/// The load model, for the summary.
pub fn load_desc(l: &LoadArgs) -> serde_json::Value {
    match l.rate {
        Some(r) => serde_json::json!({"open_loop_rate": r, "warmup_s": l.warmup}),
        None => serde_json::json!({"closed_loop_window": l.window, "warmup_s": l.warmup}),
    }
}
