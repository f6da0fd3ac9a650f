//! `xmpp-ws`, `xmpp-bosh`, `xmpp-tcp`: clients log in, then each sends chat
//! messages to its own full JID and checks that every one comes back once,
//! in order, intact.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use tokio::sync::mpsc;
use tokio::time::Instant;
use ucgate_proto::xml::tag::escape;

use super::tcp_echo::load_desc;
use super::{LoadArgs, MsgReceiver, MsgSender, PeerClosed, Tracker};
use crate::net::{Dialer, ProxyOptions, TlsOptions};
use crate::report::{self, round3, Summary};
use crate::stats::{Latency, Shared};
use crate::xmpp_client::{self, child_text, local_name, Credentials, In, Out, Target, Transport};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// ws(s):// URL (xmpp-ws), http(s):// URL (xmpp-bosh) or HOST:PORT
    /// (xmpp-tcp, plain TCP without TLS).
    pub target: String,
    /// The XMPP domain (the `to` of the stream).
    #[arg(long, default_value = "localhost")]
    pub domain: String,
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    #[arg(
        long,
        default_value = "bench{n}",
        help = "User name; n in braces (as in the default) is replaced by the client number, from 1"
    )]
    pub user: String,
    /// Password (SASL PLAIN).
    #[arg(long, conflicts_with = "anonymous")]
    pub password: Option<String>,
    /// SASL ANONYMOUS instead of PLAIN.
    #[arg(long)]
    pub anonymous: bool,
    /// Bytes of payload in each message body.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Most logins in progress at once.
    #[arg(long, default_value_t = 50)]
    pub login_concurrency: usize,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub tls: TlsOptions,
}

/// `xmpp-ws` and `xmpp-bosh`: [`Args`] and the proxy options (`xmpp-tcp`
/// dials the address directly and takes none).
#[derive(clap::Args, Debug)]
pub struct GatewayArgs {
    #[command(flatten)]
    pub common: Args,
    #[command(flatten)]
    pub proxy: ProxyOptions,
}

/// The body of message `seq` of client `client`: `CLIENT:SEQ:PAYLOAD`.
pub fn body(client: u32, seq: u64, size: usize) -> String {
    let mut s = format!("{client}:{seq}:");
    s.extend((0..size).map(|i| payload_char(client, seq, i)));
    s
}

fn payload_char(client: u32, seq: u64, i: usize) -> char {
    let x = (client as u64)
        .wrapping_mul(11)
        .wrapping_add(seq.wrapping_mul(7))
        .wrapping_add(i as u64);
    (b'a' + (x % 26) as u8) as char
}

/// Checks a received body: the sequence number, or why it is wrong (with
/// the sequence number when readable).
pub fn check_body(b: &str, client: u32, size: usize) -> Result<u64, (Option<u64>, String)> {
    let mut parts = b.splitn(3, ':');
    let (Some(c), Some(s), Some(p)) = (parts.next(), parts.next(), parts.next()) else {
        return Err((None, format!("unexpected body {:?}", short(b))));
    };
    let (Ok(c), Ok(seq)) = (c.parse::<u32>(), s.parse::<u64>()) else {
        return Err((None, format!("unexpected body {:?}", short(b))));
    };
    if c != client {
        return Err((None, format!("client {client} got a message of client {c}")));
    }
    let ok = p.len() == size
        && p.chars()
            .enumerate()
            .all(|(i, ch)| ch == payload_char(client, seq, i));
    if !ok {
        return Err((
            Some(seq),
            format!("client {client} message {seq}: body differs"),
        ));
    }
    Ok(seq)
}

fn short(s: &str) -> &str {
    &s[..s
        .len()
        .min(s.char_indices().nth(80).map_or(s.len(), |(i, _)| i))]
}

struct XSender {
    tx: mpsc::Sender<Out>,
    jid: String,
    client: u32,
    size: usize,
}

impl MsgSender for XSender {
    async fn send(&mut self, seq: u64) -> anyhow::Result<()> {
        let m = format!(
            "<message xmlns='jabber:client' to='{}' type='chat' id='m{seq}'><body>{}</body></message>",
            escape(&self.jid),
            body(self.client, seq, self.size)
        );
        self.tx
            .send(Out::Stanza(m))
            .await
            .map_err(|_| anyhow::anyhow!("transport gone"))
    }
    async fn close(self) {
        let _ = self.tx.send(Out::Close).await;
    }
}

struct XReceiver {
    rx: mpsc::Receiver<In>,
    client: u32,
    size: usize,
}

impl MsgReceiver for XReceiver {
    async fn recv(&mut self, t: &mut Tracker<'_>) -> anyhow::Result<bool> {
        let ev = self.rx.recv().await;
        match ev {
            None => Ok(false),
            Some(In::End(why)) => {
                Err(PeerClosed(format!("stream ended: {}", why.unwrap_or_default())).into())
            }
            Some(In::Error(e)) => bail!("{e}"),
            Some(In::Open) => Ok(true),
            Some(In::Element(el)) => {
                let Some(tag) = local_name(&el) else {
                    return Ok(true);
                };
                match tag.local() {
                    "message" => {
                        if tag.attr("type") == Some("error") {
                            t.error(
                                "message_error",
                                String::from_utf8_lossy(&el[..el.len().min(300)]),
                            );
                            return Ok(true);
                        }
                        // (bodiless messages: chat states and the like)
                        if let Some(b) = child_text(&el, "body") {
                            match check_body(&b, self.client, self.size) {
                                Ok(seq) => t.complete(seq),
                                Err((seq, why)) => t.corrupted(seq, why),
                            }
                        }
                    }
                    "error" => bail!("stream error: {}", String::from_utf8_lossy(&el)),
                    _ => {}
                }
                Ok(true)
            }
        }
    }
    async fn finish(&mut self) {
        while let Some(ev) = self.rx.recv().await {
            if matches!(ev, In::End(_) | In::Error(_)) {
                return;
            }
        }
    }
}

/// Runs an XMPP mode; `proxy` says how `xmpp-ws` and `xmpp-bosh` reach
/// the gateway (`xmpp-tcp` ignores it).
pub async fn run(
    transport: Transport,
    args: Args,
    proxy: &ProxyOptions,
) -> anyhow::Result<ExitCode> {
    args.load.check()?;
    let mode = match transport {
        Transport::Ws => "xmpp-ws",
        Transport::Bosh => "xmpp-bosh",
        Transport::Tcp => "xmpp-tcp",
        Transport::Relay => "xmpp-relay",
    };
    if args.clients == 0 || args.login_concurrency == 0 {
        bail!("--clients and --login-concurrency must be at least 1");
    }
    if !args.anonymous && args.password.is_none() {
        bail!("give --password (SASL PLAIN, with --user) or --anonymous");
    }
    // the dialer and the URL it dials (not for xmpp-tcp)
    let web = match transport {
        Transport::Tcp => {
            if args.target.contains("://") {
                bail!("xmpp-tcp takes HOST:PORT, not a URL");
            }
            None
        }
        _ => {
            let url = url::Url::parse(&args.target)?;
            let ok = match transport {
                Transport::Ws | Transport::Relay => matches!(url.scheme(), "ws" | "wss"),
                _ => matches!(url.scheme(), "http" | "https"),
            };
            if !ok {
                bail!(
                    "{mode} needs a {} URL",
                    if matches!(transport, Transport::Ws | Transport::Relay) {
                        "ws(s)://"
                    } else {
                        "http(s)://"
                    }
                );
            }
            Some((Dialer::new(&args.tls, proxy)?, url))
        }
    };
    let target = Target {
        transport,
        address: args.target.clone(),
        domain: args.domain.clone(),
        dialer: web.as_ref().map(|(d, _)| d.clone()),
        local: None,
        timeout: args.load.timeout(),
    };
    let shared = Arc::new(Shared::default());
    let logins = Arc::new(std::sync::Mutex::new(Latency::default()));
    let sem = Arc::new(tokio::sync::Semaphore::new(args.login_concurrency));
    let login_start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..args.clients {
        let n = i + 1;
        let who = Credentials {
            user: args
                .password
                .as_ref()
                .filter(|_| !args.anonymous)
                .map(|p| (args.user.replace("{n}", &n.to_string()), p.clone())),
            resource: format!("bench{n}"),
        };
        let (target, shared, logins, sem) =
            (target.clone(), shared.clone(), logins.clone(), sem.clone());
        let timeout = args.load.timeout();
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire_owned().await.ok()?;
            let t0 = Instant::now();
            let mut s = match tokio::time::timeout(timeout, xmpp_client::connect(&target)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    shared.error("connect", format!("client {n}: {e:#}"));
                    return None;
                }
                Err(_) => {
                    shared.error("connect", format!("client {n}: timed out"));
                    return None;
                }
            };
            match s.login(&who, timeout).await {
                Ok(jid) => {
                    logins.lock().expect("logins").record(t0.elapsed());
                    Some((s, jid))
                }
                Err(e) => {
                    shared.error("login", format!("client {n}: {e:#}"));
                    s.close(Duration::from_secs(1)).await;
                    None
                }
            }
        }));
    }
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.ok().flatten());
    }
    let login_time = login_start.elapsed();
    let logged_in = clients.iter().filter(|c| c.is_some()).count();

    let size = args.size;
    let clock = super::run_load(
        &args.load,
        &shared,
        size,
        clients,
        |ctx, i, (s, jid), pacer, release| async move {
            let client = i + 1;
            let xmpp_client::Stream { tx, rx } = s;
            super::drive(
                &ctx,
                client,
                XSender {
                    tx,
                    jid,
                    client,
                    size,
                },
                XReceiver { rx, client, size },
                pacer,
                release,
            )
            .await;
        },
    )
    .await;
    let mut s = Summary::from_shared(mode, &args.target, &shared, clock.measured());
    s.clients = Some(args.clients as u64);
    s.size = Some(args.size as u64);
    s.set("load", load_desc(&args.load));
    s.set("logged_in", logged_in);
    s.set("login_ms", logins.lock().expect("logins").millis());
    s.set(
        "login_rate",
        round3(logged_in as f64 / login_time.as_secs_f64().max(1e-9)),
    );
    s.set("auth", if args.anonymous { "ANONYMOUS" } else { "PLAIN" });
    if let Some((dialer, url)) = &web {
        s.set_route(dialer, url);
    }
    Ok(report::finish(&s, &shared.error_details()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_check() {
        let b = body(3, 17, 20);
        assert_eq!(check_body(&b, 3, 20), Ok(17));
        assert_eq!(check_body(&b, 4, 20).unwrap_err().0, None);
        let mut bad = b.clone();
        bad.pop();
        bad.push('!');
        assert_eq!(check_body(&bad, 3, 20).unwrap_err().0, Some(17));
        assert!(check_body("hello", 3, 20).is_err());
    }
}
