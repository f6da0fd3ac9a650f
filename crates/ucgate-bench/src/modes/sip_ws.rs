//! `sip-ws`: SIP over WebSocket (RFC 7118) clients like JsSIP: each
//! REGISTERs (outbound, path; digest auth when challenged), then sends
//! MESSAGEs to its own AOR, which the registrar routes back to it over its
//! WebSocket; it answers each incoming MESSAGE with 200 and waits for the
//! 200 to its own. A message completes when both arrived; bodies must
//! arrive exactly once and in order.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use md5::{Digest, Md5};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use ucgate_proto::sip::message::{parse, Message as SipMessage, SipLimits, StartLine};
use url::Url;

use super::tcp_echo::load_desc;
use super::ws_echo::{open_ws, Ws};
use super::xmpp::{body, check_body};
use super::{unique, LoadArgs, MsgReceiver, MsgSender, Tracker};
use crate::net::{Dialer, ProxyOptions, TlsOptions};
use crate::report::{self, round3, Summary};
use crate::stats::{Latency, Shared};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// ws:// or wss:// URL of the SIP route (or of Kamailio's own listener).
    pub url: String,
    #[arg(long, default_value_t = 20)]
    pub clients: usize,
    /// SIP domain (the registrar's).
    #[arg(long, default_value = "localhost")]
    pub domain: String,
    #[arg(
        long,
        default_value = "bench{n}",
        help = "User name; n in braces (as in the default) is replaced by the client number, from 1"
    )]
    pub user: String,
    /// Password for digest authentication when challenged (401/407).
    #[arg(long)]
    pub password: Option<String>,
    /// Bytes of payload in each MESSAGE body.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Registration lifetime asked for, seconds.
    #[arg(long, default_value_t = 600)]
    pub expires: u32,
    /// Most REGISTERs in progress at once.
    #[arg(long, default_value_t = 50)]
    pub register_concurrency: usize,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub tls: TlsOptions,
    #[command(flatten)]
    pub proxy: ProxyOptions,
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A digest challenge (RFC 3261 §22.4, RFC 2617), MD5 only.
#[derive(Clone, Debug)]
struct Challenge {
    proxy: bool,
    realm: String,
    nonce: String,
    opaque: Option<String>,
    qop_auth: bool,
    nc: u32,
}

fn auth_params(v: &str) -> HashMap<String, String> {
    let v = v.trim();
    let v = v
        .strip_prefix("Digest")
        .or_else(|| v.strip_prefix("digest"))
        .unwrap_or(v);
    let mut out = HashMap::new();
    let mut rest = v.trim_start();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let name = rest[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"').unwrap_or(r.len());
            value = r[..end].to_string();
            rest = r.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        out.insert(name, value);
    }
    out
}

impl Challenge {
    fn from(m: &SipMessage<'_>) -> anyhow::Result<Challenge> {
        let (proxy, name) = match m.status() {
            Some(407) => (true, "Proxy-Authenticate"),
            _ => (false, "WWW-Authenticate"),
        };
        let v = m
            .header(name)
            .ok_or_else(|| anyhow!("{} without {name}", m.status().unwrap_or(0)))?;
        let p = auth_params(&String::from_utf8_lossy(v));
        if let Some(a) = p.get("algorithm") {
            if !a.eq_ignore_ascii_case("MD5") {
                bail!("digest algorithm {a} is not supported (MD5 only)");
            }
        }
        Ok(Challenge {
            proxy,
            realm: p.get("realm").cloned().unwrap_or_default(),
            nonce: p
                .get("nonce")
                .cloned()
                .ok_or_else(|| anyhow!("challenge without nonce"))?,
            opaque: p.get("opaque").cloned(),
            qop_auth: p
                .get("qop")
                .is_some_and(|q| q.split(',').any(|x| x.trim() == "auth")),
            nc: 0,
        })
    }

    /// The `Authorization` / `Proxy-Authorization` header line.
    fn header(&mut self, user: &str, password: &str, method: &str, uri: &str) -> String {
        let ha1 = md5_hex(&format!("{user}:{}:{password}", self.realm));
        let ha2 = md5_hex(&format!("{method}:{uri}"));
        let name = if self.proxy {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        let mut h = format!(
            "{name}: Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", algorithm=MD5",
            self.realm, self.nonce
        );
        if self.qop_auth {
            self.nc += 1;
            let nc = format!("{:08x}", self.nc);
            let cnonce = unique();
            let resp = md5_hex(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce));
            h.push_str(&format!(
                ", response=\"{resp}\", qop=auth, nc={nc}, cnonce=\"{cnonce}\""
            ));
        } else {
            let resp = md5_hex(&format!("{ha1}:{}:{ha2}", self.nonce));
            h.push_str(&format!(", response=\"{resp}\""));
        }
        if let Some(o) = &self.opaque {
            h.push_str(&format!(", opaque=\"{o}\""));
        }
        h.push_str("\r\n");
        h
    }
}

/// One client's identity and dialog-independent state.
struct Ua {
    n: u32,
    user: String,
    domain: String,
    password: Option<String>,
    /// `xxx.invalid` host of the Via and Contact.
    host: String,
    via_transport: &'static str,
    tag: String,
    instance: String,
    reg_call_id: String,
    cseq: u32,
    challenge: Option<Challenge>,
    size: usize,
}

impl Ua {
    fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }

    fn auth(&mut self, method: &str, uri: &str) -> String {
        match (&mut self.challenge, &self.password) {
            (Some(c), Some(p)) => c.header(&self.user, p, method, uri),
            _ => String::new(),
        }
    }

    fn register(&mut self, expires: u32) -> String {
        self.cseq += 1;
        let uri = format!("sip:{}", self.domain);
        let auth = self.auth("REGISTER", &uri);
        format!(
            "REGISTER {uri} SIP/2.0\r\n\
Via: SIP/2.0/{} {};branch=z9hG4bK{}\r\n\
Max-Forwards: 70\r\n\
To: <{aor}>\r\n\
From: <{aor}>;tag={}\r\n\
Call-ID: {}\r\n\
CSeq: {} REGISTER\r\n\
Contact: <sip:{}@{};transport=ws;ob>;+sip.instance=\"<urn:uuid:{}>\";reg-id=1;expires={expires}\r\n\
Expires: {expires}\r\n\
Supported: path, outbound\r\n\
User-Agent: ucgate-bench\r\n\
{auth}Content-Length: 0\r\n\r\n",
            self.via_transport,
            self.host,
            unique(),
            self.tag,
            self.reg_call_id,
            self.cseq,
            self.user,
            self.host,
            self.instance,
            aor = self.aor(),
        )
    }

    fn message(&mut self, seq: u64) -> String {
        self.cseq += 1;
        let aor = self.aor();
        let auth = self.auth("MESSAGE", &aor);
        let b = body(self.n, seq, self.size);
        format!(
            "MESSAGE {aor} SIP/2.0\r\n\
Via: SIP/2.0/{} {};branch=z9hG4bK{}\r\n\
Max-Forwards: 70\r\n\
To: <{aor}>\r\n\
From: <{aor}>;tag={}\r\n\
Call-ID: {seq}.{}\r\n\
CSeq: {} MESSAGE\r\n\
Content-Type: text/plain\r\n\
{auth}Content-Length: {}\r\n\r\n{b}",
            self.via_transport,
            self.host,
            unique(),
            self.tag,
            self.reg_call_id,
            self.cseq,
            b.len(),
        )
    }
}

/// A 200 (or `status`) response to a request: Vias, From, To (tagged),
/// Call-ID and CSeq copied.
fn response_to(m: &SipMessage<'_>, status: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for h in m.headers() {
        let v = String::from_utf8_lossy(m.slice(h.value.clone()));
        match h.canonical.map(|k| k.name()) {
            Some("Via") => out.push_str(&format!("Via: {v}\r\n")),
            Some("From") => out.push_str(&format!("From: {v}\r\n")),
            Some("Call-ID") => out.push_str(&format!("Call-ID: {v}\r\n")),
            Some("CSeq") => out.push_str(&format!("CSeq: {v}\r\n")),
            Some("To") => {
                if m.to_tag().is_some() {
                    out.push_str(&format!("To: {v}\r\n"));
                } else {
                    out.push_str(&format!("To: {v};tag={}\r\n", unique()));
                }
            }
            _ => {}
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

fn limits() -> SipLimits {
    SipLimits::default()
}

/// A connected client: the WebSocket read half and a writer task.
struct Conn {
    ua: Ua,
    out: mpsc::UnboundedSender<String>,
    rx: SplitStream<Ws>,
}

/// What an incoming text frame was, after the automatic answers.
enum Incoming {
    Response(Vec<u8>),
    Request(Vec<u8>),
    Nothing,
}

impl Conn {
    fn send(&self, s: String) -> anyhow::Result<()> {
        self.out
            .send(s)
            .map_err(|_| anyhow!("WebSocket writer gone"))
    }

    /// The next SIP message; `Ok(None)` when the WebSocket closed.
    async fn next_frame(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        loop {
            match self.rx.next().await {
                Some(Ok(Message::Text(t))) => return Ok(Some(t.as_bytes().to_vec())),
                Some(Ok(Message::Binary(b))) => return Ok(Some(b.to_vec())),
                Some(Ok(Message::Close(_))) | None => return Ok(None),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Classifies a frame; keep-alives and unparseable frames are
    /// `Nothing` (the latter counted by the caller).
    fn classify(frame: Vec<u8>) -> Result<Incoming, String> {
        if frame.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            return Ok(Incoming::Nothing);
        }
        let is_response = match parse(&frame, &limits()) {
            Ok(m) => matches!(m.start_line(), StartLine::Response { .. }),
            Err(e) => {
                return Err(format!(
                    "unparseable SIP ({e}): {:?}",
                    String::from_utf8_lossy(&frame[..frame.len().min(120)])
                ))
            }
        };
        Ok(if is_response {
            Incoming::Response(frame)
        } else {
            Incoming::Request(frame)
        })
    }

    /// REGISTERs (answering a challenge once); returns when registered.
    async fn register(&mut self, expires: u32, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut challenged = false;
        let req = self.ua.register(expires);
        self.send(req)?;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.next_frame())
                .await
                .map_err(|_| anyhow!("no answer to REGISTER in {timeout:?}"))??
                .ok_or_else(|| anyhow!("the WebSocket closed during REGISTER"))?;
            match Self::classify(frame).map_err(|e| anyhow!(e))? {
                Incoming::Nothing => {}
                Incoming::Request(f) => {
                    let m = parse(&f, &limits()).map_err(|e| anyhow!("{e}"))?;
                    self.send(response_to(&m, "200 OK"))?;
                }
                Incoming::Response(f) => {
                    let m = parse(&f, &limits()).map_err(|e| anyhow!("{e}"))?;
                    let cseq_ok = m
                        .cseq()
                        .is_some_and(|(n, meth)| n == self.ua.cseq && meth == b"REGISTER");
                    if !cseq_ok || m.call_id() != Some(self.ua.reg_call_id.as_bytes()) {
                        continue;
                    }
                    match m.status().unwrap_or(0) {
                        100..=199 => {}
                        200..=299 => return Ok(()),
                        s @ (401 | 407) => {
                            if challenged || self.ua.password.is_none() {
                                bail!(
                                    "REGISTER answered {s}{}",
                                    if self.ua.password.is_none() {
                                        " (no --password given)"
                                    } else {
                                        " again: wrong password?"
                                    }
                                );
                            }
                            challenged = true;
                            self.ua.challenge = Some(Challenge::from(&m)?);
                            let req = self.ua.register(expires);
                            self.send(req)?;
                        }
                        s => bail!(
                            "REGISTER answered {s} {}",
                            String::from_utf8_lossy(match m.start_line() {
                                StartLine::Response { reason, .. } => reason,
                                _ => b"",
                            })
                        ),
                    }
                }
            }
        }
    }
}

/// Sends MESSAGE `seq` through the shared writer, remembering the CSeq so
/// that a challenge can be answered.
struct SSender {
    ua: Arc<std::sync::Mutex<Ua>>,
    out: mpsc::UnboundedSender<String>,
    expires_on_close: bool,
}

impl MsgSender for SSender {
    async fn send(&mut self, seq: u64) -> anyhow::Result<()> {
        let m = self.ua.lock().expect("ua").message(seq);
        self.out
            .send(m)
            .map_err(|_| anyhow!("WebSocket writer gone"))
    }
    async fn close(self) {
        if self.expires_on_close {
            // Best effort: remove the binding (the answer is not awaited).
            let r = self.ua.lock().expect("ua").register(0);
            let _ = self.out.send(r);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The empty string tells the writer to close the WebSocket.
        let _ = self.out.send(String::new());
    }
}

/// Per message: got our 200, got the looped MESSAGE.
#[derive(Default, Clone, Copy)]
struct Parts {
    ok: bool,
    delivered: bool,
    retried: bool,
}

struct SReceiver {
    ua: Arc<std::sync::Mutex<Ua>>,
    out: mpsc::UnboundedSender<String>,
    rx: SplitStream<Ws>,
    client: u32,
    size: usize,
    parts: HashMap<u64, Parts>,
    /// Highest body sequence number delivered so far.
    last_delivered: Option<u64>,
}

impl SReceiver {
    fn part(&mut self, t: &mut Tracker<'_>, seq: u64, f: impl FnOnce(&mut Parts)) {
        let p = self.parts.entry(seq).or_default();
        f(p);
        if p.ok && p.delivered {
            self.parts.remove(&seq);
            t.complete_unordered(seq);
        }
    }

    fn on_frame(&mut self, t: &mut Tracker<'_>, frame: Vec<u8>) {
        let inc = match Conn::classify(frame) {
            Ok(i) => i,
            Err(e) => {
                t.error("sip_parse", e);
                return;
            }
        };
        match inc {
            Incoming::Nothing => {}
            Incoming::Request(f) => {
                let Ok(m) = parse(&f, &limits()) else { return };
                let _ = self.out.send(response_to(&m, "200 OK"));
                if m.method() != Some("MESSAGE") {
                    return;
                }
                let b = String::from_utf8_lossy(m.body()).into_owned();
                match check_body(&b, self.client, self.size) {
                    Ok(seq) => {
                        let p = self.parts.get(&seq).copied().unwrap_or_default();
                        if p.delivered {
                            t.error("duplicated", format!("MESSAGE {seq} delivered twice"));
                            return;
                        }
                        if self.last_delivered.is_some_and(|l| seq <= l) {
                            // Earlier than one already delivered, or its
                            // transaction already completed.
                            let kind = if self.parts.contains_key(&seq) {
                                "reordered"
                            } else {
                                "duplicated"
                            };
                            t.error(
                                kind,
                                format!("MESSAGE {seq} after {:?}", self.last_delivered),
                            );
                            if kind == "duplicated" {
                                return;
                            }
                        }
                        self.last_delivered = Some(self.last_delivered.map_or(seq, |l| l.max(seq)));
                        self.part(t, seq, |p| p.delivered = true);
                    }
                    Err((seq, why)) => t.corrupted(seq, why),
                }
            }
            Incoming::Response(f) => {
                let Ok(m) = parse(&f, &limits()) else { return };
                if m.cseq().is_none_or(|(_, meth)| meth != b"MESSAGE") {
                    return; // REGISTER refreshes and the final un-REGISTER
                }
                let Some(seq) = m
                    .call_id()
                    .and_then(|c| std::str::from_utf8(c).ok())
                    .and_then(|c| c.split('.').next())
                    .and_then(|s| s.parse::<u64>().ok())
                else {
                    t.error("sip_parse", "response with an unknown Call-ID");
                    return;
                };
                match m.status().unwrap_or(0) {
                    100..=199 => {}
                    200..=299 => self.part(t, seq, |p| p.ok = true),
                    s @ (401 | 407) => {
                        let retried = self.parts.get(&seq).is_some_and(|p| p.retried);
                        let mut ua = self.ua.lock().expect("ua");
                        if retried || ua.password.is_none() {
                            drop(ua);
                            t.fail(Some(seq), "auth", format!("MESSAGE {seq} answered {s}"));
                            return;
                        }
                        match Challenge::from(&m) {
                            Ok(c) => ua.challenge = Some(c),
                            Err(e) => {
                                drop(ua);
                                t.fail(Some(seq), "auth", format!("MESSAGE {seq}: {e:#}"));
                                return;
                            }
                        }
                        let again = ua.message(seq);
                        drop(ua);
                        self.parts.entry(seq).or_default().retried = true;
                        let _ = self.out.send(again);
                    }
                    s => t.fail(
                        Some(seq),
                        "message_failed",
                        format!("MESSAGE {seq} answered {s}"),
                    ),
                }
            }
        }
    }
}

impl MsgReceiver for SReceiver {
    async fn recv(&mut self, t: &mut Tracker<'_>) -> anyhow::Result<bool> {
        let frame = loop {
            match self.rx.next().await {
                Some(Ok(Message::Text(x))) => break x.as_bytes().to_vec(),
                Some(Ok(Message::Binary(b))) => break b.to_vec(),
                Some(Ok(Message::Close(_))) | None => return Ok(false),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(super::ws_error(e)),
            }
        };
        self.on_frame(t, frame);
        Ok(true)
    }
    async fn finish(&mut self) {
        while let Some(Ok(_)) = self.rx.next().await {}
    }
}

async fn connect(dialer: &Dialer, url: &Url, ua: Ua) -> anyhow::Result<Conn> {
    let (ws, chosen) = open_ws(dialer, url, None, Some("sip")).await?;
    if chosen.as_deref() != Some("sip") {
        bail!("the server did not accept the sip subprotocol (chose {chosen:?})");
    }
    let (mut sink, rx) = ws.split();
    let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Some(s) = out_rx.recv().await {
            if s.is_empty() {
                break;
            }
            if sink.send(Message::text(s)).await.is_err() {
                return;
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    });
    Ok(Conn { ua, out, rx })
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    args.load.check()?;
    if args.clients == 0 || args.register_concurrency == 0 {
        bail!("--clients and --register-concurrency must be at least 1");
    }
    let url = Url::parse(&args.url)?;
    let via_transport = match url.scheme() {
        "ws" => "WS",
        "wss" => "WSS",
        _ => bail!("sip-ws needs a ws:// or wss:// URL"),
    };
    let dialer = Dialer::new(&args.tls, &args.proxy)?;
    let shared = Arc::new(Shared::default());
    let registers = Arc::new(std::sync::Mutex::new(Latency::default()));
    let sem = Arc::new(tokio::sync::Semaphore::new(args.register_concurrency));
    let timeout = args.load.timeout();
    let reg_start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..args.clients {
        let n = (i + 1) as u32;
        let ua = Ua {
            n,
            user: args.user.replace("{n}", &n.to_string()),
            domain: args.domain.clone(),
            password: args.password.clone(),
            host: format!("{}.invalid", unique()),
            via_transport,
            tag: unique(),
            instance: uuid_like(),
            reg_call_id: unique(),
            cseq: 0,
            challenge: None,
            size: args.size,
        };
        let (dialer, url, shared, registers, sem) = (
            dialer.clone(),
            url.clone(),
            shared.clone(),
            registers.clone(),
            sem.clone(),
        );
        let expires = args.expires;
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire_owned().await.ok()?;
            let mut c = match tokio::time::timeout(timeout, connect(&dialer, &url, ua)).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    shared.error("connect", format!("client {n}: {e:#}"));
                    return None;
                }
                Err(_) => {
                    shared.error("connect", format!("client {n}: timed out"));
                    return None;
                }
            };
            let t0 = Instant::now();
            match c.register(expires, timeout).await {
                Ok(()) => {
                    registers.lock().expect("registers").record(t0.elapsed());
                    Some(c)
                }
                Err(e) => {
                    shared.error("register", format!("client {n}: {e:#}"));
                    None
                }
            }
        }));
    }
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.ok().flatten());
    }
    let reg_time = reg_start.elapsed();
    let registered = clients.iter().filter(|c| c.is_some()).count();

    let size = args.size;
    let clock = super::run_load(
        &args.load,
        &shared,
        size,
        clients,
        |ctx, _, c, pacer, release| async move {
            let Conn { ua, out, rx } = c;
            let client = ua.n;
            let ua = Arc::new(std::sync::Mutex::new(ua));
            super::drive(
                &ctx,
                client,
                SSender {
                    ua: ua.clone(),
                    out: out.clone(),
                    expires_on_close: true,
                },
                SReceiver {
                    ua,
                    out,
                    rx,
                    client,
                    size,
                    parts: HashMap::new(),
                    last_delivered: None,
                },
                pacer,
                release,
            )
            .await;
        },
    )
    .await;
    let mut s = Summary::from_shared("sip-ws", &args.url, &shared, clock.measured());
    s.clients = Some(args.clients as u64);
    s.size = Some(args.size as u64);
    s.set("load", load_desc(&args.load));
    s.set("registered", registered);
    s.set(
        "register_rate",
        round3(registered as f64 / reg_time.as_secs_f64().max(1e-9)),
    );
    s.set(
        "register_latency_us",
        registers.lock().expect("registers").percentiles(),
    );
    s.set_route(&dialer, &url);
    Ok(report::finish(&s, &shared.error_details()))
}

/// A UUID-shaped instance id (RFC 5626 `+sip.instance`), unique per client.
fn uuid_like() -> String {
    let h = md5_hex(&unique());
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_rfc2617_example() {
        // RFC 2617 §3.5 (HTTP, but the computation is the same).
        let mut c = Challenge {
            proxy: false,
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            opaque: Some("5ccc069c403ebaf9f0171e9517f40e41".into()),
            qop_auth: false,
            nc: 0,
        };
        let ha1 = md5_hex("Mufasa:testrealm@host.com:Circle Of Life");
        assert_eq!(ha1, "939e7578ed9e3c518a452acee763bce9");
        let h = c.header("Mufasa", "Circle Of Life", "GET", "/dir/index.html");
        assert!(
            h.starts_with("Authorization: Digest username=\"Mufasa\""),
            "{h}"
        );
        assert!(h.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
        let p = auth_params(
            "Digest realm=\"a, b\", nonce=\"n1\", qop=\"auth,auth-int\", algorithm=MD5",
        );
        assert_eq!(p["realm"], "a, b");
        assert_eq!(p["nonce"], "n1");
        assert_eq!(p["qop"], "auth,auth-int");
        assert_eq!(p["algorithm"], "MD5");
    }
}
