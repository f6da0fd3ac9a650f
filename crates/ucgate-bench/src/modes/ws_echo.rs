//! `ws-echo`: WebSocket clients through a `tcp` tunnel route in front of an
//! echo server; the echoed byte stream is checked exactly (the backend may
//! split or merge messages).

use std::process::ExitCode;
use std::sync::Arc;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use url::Url;

use super::echo;
use super::tcp_echo::{check_size, load_desc, open_all};
use super::LoadArgs;
use crate::net::{self, BoxStream, Dialer, ProxyOptions, TlsOptions};
use crate::report::{self, Summary};
use crate::stats::Shared;

pub type Ws = WebSocketStream<BoxStream>;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// ws:// or wss:// URL of the tunnel route.
    pub url: String,
    #[arg(long, default_value_t = 50)]
    pub connections: usize,
    /// Bytes per message (at least 24: the header).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Subprotocol to offer (e.g. `binary` for websockify).
    #[arg(long)]
    pub subprotocol: Option<String>,
    /// Send text messages instead of binary ones.
    #[arg(long)]
    pub text: bool,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub tls: TlsOptions,
    #[command(flatten)]
    pub proxy: ProxyOptions,
}

pub struct WsSink {
    pub sink: SplitSink<Ws, Message>,
    pub text: bool,
}
pub struct WsSource(pub SplitStream<Ws>);

impl echo::Sink for WsSink {
    async fn send(&mut self, data: Vec<u8>) -> anyhow::Result<()> {
        let m = if self.text {
            Message::text(String::from_utf8(data)?)
        } else {
            Message::binary(data)
        };
        Ok(self.sink.send(m).await?)
    }
    async fn close(mut self) {
        let _ = self.sink.send(Message::Close(None)).await;
    }
}

impl echo::Source for WsSource {
    async fn recv(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        loop {
            match self.0.next().await {
                Some(Ok(Message::Binary(b))) => return Ok(Some(b.to_vec())),
                Some(Ok(Message::Text(t))) => return Ok(Some(t.as_bytes().to_vec())),
                Some(Ok(Message::Close(_))) | None => return Ok(None),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(super::ws_error(e)),
            }
        }
    }
}

/// Opens a WebSocket to `url` (from `local` when given), offering
/// `subprotocol`.
pub async fn open_ws(
    dialer: &Dialer,
    url: &Url,
    local: Option<std::net::IpAddr>,
    subprotocol: Option<&str>,
) -> anyhow::Result<(Ws, Option<String>)> {
    let c = dialer.connect_from(url, local).await?;
    net::websocket(c.stream, url, subprotocol).await
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    args.load.check()?;
    check_size(args.size)?;
    if args.connections == 0 {
        anyhow::bail!("--connections must be at least 1");
    }
    let url = Url::parse(&args.url)?;
    if !matches!(url.scheme(), "ws" | "wss") {
        anyhow::bail!("ws-echo needs a ws:// or wss:// URL");
    }
    let dialer = Dialer::new(&args.tls, &args.proxy)?;
    let shared = Arc::new(Shared::default());
    let sub = args.subprotocol.clone();
    let conns = open_all(args.connections, &shared, args.load.timeout(), |_| {
        let (dialer, url, sub) = (dialer.clone(), url.clone(), sub.clone());
        async move {
            let (ws, chosen) = open_ws(&dialer, &url, None, sub.as_deref()).await?;
            if sub.is_some() && chosen != sub {
                anyhow::bail!("the server chose subprotocol {chosen:?}, not {sub:?}");
            }
            Ok(ws)
        }
    })
    .await;
    let text = args.text;
    let clock = super::run_load(
        &args.load,
        &shared,
        args.size,
        conns,
        |ctx, i, ws, pacer, release| async move {
            let (sink, stream) = ws.split();
            echo::drive(
                &ctx,
                i,
                WsSink { sink, text },
                WsSource(stream),
                pacer,
                release,
            )
            .await;
        },
    )
    .await;
    let mut s = Summary::from_shared("ws-echo", &args.url, &shared, clock.measured());
    s.connections = Some(args.connections as u64);
    s.size = Some(args.size as u64);
    s.set("load", load_desc(&args.load));
    s.set("text", args.text);
    s.set_route(&dialer, &url);
    Ok(report::finish(&s, &shared.error_details()))
}
