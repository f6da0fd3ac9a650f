//! `ucgate-bench probe URL`: one connection to a gateway route, every step
//! timed and explained, for operators diagnosing a deployment.
//!
//! Steps: route (which proxy, and why), DNS, TCP, proxy TLS and CONNECT
//! (when a proxy is used), TLS (version, cipher, ALPN, chain), then
//!
//! * WebSocket (`ws://`, `wss://`): the handshake (status, subprotocol),
//!   for `--subprotocol xmpp` an RFC 7395 `<open/>` (time to the server's
//!   `<open`, whether `<stream:features>` came), for `--subprotocol sip`
//!   RFC 5626 `\r\n\r\n` keepalives answered by `\r\n`, `--count`
//!   Ping→Pong round trips, and a close with 1000;
//! * BOSH (`http://`, `https://`): session creation (XEP-0124/0206),
//!   the session attributes, stream features, and a terminate request.
//!
//! A human report goes to stderr (one line per step), one JSON line to
//! stdout. Exit 0: every step worked; 1: a step failed (the report says
//! which and why); 2: usage error. See `docs/probe.md`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use url::Url;

use crate::net::{
    self, BoxStream, Connection, DialError, Dialer, Direct, ProxyOptions, Route, Timings, TlsInfo,
    TlsOptions,
};

const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
const HTTPBIND: &str = "http://jabber.org/protocol/httpbind";
/// The BOSH `wait` the probe asks for, in seconds.
const BOSH_WAIT: u64 = 10;

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  ucgate-bench probe wss://chat.example/xmpp-websocket --subprotocol xmpp
  ucgate-bench probe https://chat.example/http-bind --domain example.org
  https_proxy=http://user:pass@proxy:3128 ucgate-bench probe wss://gw.example/echo
  ucgate-bench probe ws://127.0.0.1:5280/echo --no-proxy --count 10

Proxies: wss:// uses wss_proxy, then https_proxy, then all_proxy; ws:// uses
ws_proxy, then http_proxy, then all_proxy (https_proxy / http_proxy for BOSH
URLs); lowercase before uppercase; NO_PROXY excludes hosts. Always an HTTP
CONNECT tunnel. Exit status: 0 all steps worked, 1 a step failed, 2 usage.")]
pub struct Args {
    /// ws:// or wss:// (WebSocket route), http:// or https:// (BOSH) URL of the gateway route.
    pub url: String,
    /// WebSocket subprotocol to offer (`xmpp` and `sip` add protocol checks); default none.
    #[arg(long, value_name = "NAME")]
    pub subprotocol: Option<String>,
    /// XMPP domain for the `xmpp` <open/> and the BOSH session; default the URL's host.
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// WebSocket round trips: Ping→Pong (and SIP keepalives with `--subprotocol sip`).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub count: u32,
    #[command(flatten)]
    pub tls: TlsOptions,
    #[command(flatten)]
    pub proxy: ProxyOptions,
}

/// The JSON report (stdout), with every fact of the human one.
#[derive(Serialize, Default)]
struct Report {
    /// Always `probe` (like the other modes' `mode`).
    mode: &'static str,
    /// The URL probed.
    target: String,
    /// `websocket` or `bosh`.
    kind: &'static str,
    ok: bool,
    /// The step that failed (`route`, `dns`, `tcp`, `proxy-tls`, `proxy`,
    /// `tls`, `handshake`, `xmpp`, `sip`, `ping`, `close`, `http`,
    /// `session`, `features`, `terminate`).
    failed_step: Option<String>,
    error: Option<String>,
    warnings: Vec<String>,
    route: RouteReport,
    /// Addresses DNS gave (the proxy's when there is one).
    addresses: Vec<String>,
    /// Where TCP connected.
    peer: Option<String>,
    dns_ms: Option<f64>,
    tcp_ms: Option<f64>,
    proxy_tls_ms: Option<f64>,
    proxy_connect_ms: Option<f64>,
    tls_ms: Option<f64>,
    /// The proxy's answer to CONNECT.
    proxy_reply: Option<String>,
    proxy_status: Option<u16>,
    proxy_tls: Option<TlsInfo>,
    tls: Option<TlsInfo>,
    websocket: Option<WsReport>,
    bosh: Option<BoshReport>,
    total_ms: f64,
}

#[derive(Serialize, Default)]
struct RouteReport {
    /// `direct` or `proxy`.
    mode: &'static str,
    /// The proxy, without credentials.
    proxy: Option<String>,
    /// `--proxy` or the variable that chose the proxy.
    chosen_by: Option<String>,
    /// Why direct: `no_proxy_variable`, `no_proxy_option`, `excluded`.
    direct_reason: Option<&'static str>,
    /// `no_proxy` or `NO_PROXY`, and the entry that excluded the host.
    no_proxy_variable: Option<String>,
    no_proxy_entry: Option<String>,
    /// The variable that would have chosen a proxy.
    proxy_variable: Option<String>,
    /// The human line.
    description: String,
}

#[derive(Serialize, Default)]
struct WsReport {
    handshake_ms: Option<f64>,
    status: Option<u16>,
    subprotocol_offered: Option<String>,
    subprotocol: Option<String>,
    ping_ms: Vec<f64>,
    ping_avg_ms: Option<f64>,
    xmpp: Option<XmppReport>,
    sip: Option<SipReport>,
    close_ms: Option<f64>,
    /// The code of the server's close frame.
    close_code: Option<u16>,
}

#[derive(Serialize, Default)]
struct XmppReport {
    domain: String,
    /// Time from sending `<open/>` to the server's `<open`.
    open_ms: Option<f64>,
    /// The server's `<open …/>`.
    open: Option<String>,
    features: bool,
    features_ms: Option<f64>,
    /// The server answered our `<close/>` with its own.
    closed: bool,
}

#[derive(Serialize, Default)]
struct SipReport {
    keepalive_ms: Vec<f64>,
}

#[derive(Serialize, Default)]
struct BoshReport {
    domain: String,
    rid: u64,
    session_ms: Option<f64>,
    status: Option<u16>,
    sid: Option<String>,
    wait: Option<String>,
    hold: Option<String>,
    requests: Option<String>,
    inactivity: Option<String>,
    polling: Option<String>,
    ver: Option<String>,
    features: bool,
    features_ms: Option<f64>,
    terminate_ms: Option<f64>,
    terminate_status: Option<u16>,
}

/// A failed step: its name and why.
struct Failed {
    step: &'static str,
    message: String,
}

fn failed(step: &'static str, message: impl Into<String>) -> Failed {
    Failed {
        step,
        message: message.into(),
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The probe in progress: the report, and the human lines as they come.
struct Probe {
    report: Report,
    timeout: Duration,
}

impl Probe {
    /// One aligned human line on stderr: step name, time, detail.
    fn line(&self, name: &str, took: Option<Duration>, detail: &str) {
        let t = took
            .map(|d| format!("{:.2} ms", d.as_secs_f64() * 1000.0))
            .unwrap_or_default();
        eprintln!("{name:<11}{t:>12}  {detail}");
    }

    fn failed_line(&self, name: &str, detail: &str) {
        eprintln!("{name:<11}{:>12}  {detail}", "FAILED");
    }

    fn warn(&mut self, w: String) {
        eprintln!("{:<11}{:>12}  {w}", "warning", "");
        self.report.warnings.push(w);
    }

    fn route(&mut self, url: &Url, route: &Route) {
        let target = url.host_str().unwrap_or("");
        let r = &mut self.report.route;
        r.description = route.describe(target);
        match route {
            Route::Proxy { proxy, source } => {
                r.mode = "proxy";
                r.proxy = Some(proxy.display());
                r.chosen_by = Some(source.clone());
            }
            Route::Direct(d) => {
                r.mode = "direct";
                r.direct_reason = Some(match d {
                    Direct::NoProxyVariable => "no_proxy_variable",
                    Direct::NoProxyOption => "no_proxy_option",
                    Direct::Excluded { .. } => "excluded",
                });
                if let Direct::Excluded {
                    variable,
                    entry,
                    proxy_variable,
                } = d
                {
                    r.no_proxy_variable = Some(variable.clone());
                    r.no_proxy_entry = Some(entry.clone());
                    r.proxy_variable = Some(proxy_variable.clone());
                }
            }
        }
        let d = self.report.route.description.clone();
        self.line("route", None, &d);
    }

    /// Reports the dial steps that happened (all of them, or those before
    /// a failure).
    fn dial_steps(
        &mut self,
        timings: &Timings,
        addresses: &[std::net::SocketAddr],
        peer: Option<std::net::SocketAddr>,
        proxy_tls: Option<&TlsInfo>,
        proxied: bool,
    ) {
        let r = &mut self.report;
        r.dns_ms = timings.dns.map(ms);
        r.tcp_ms = timings.tcp.map(ms);
        r.proxy_tls_ms = timings.proxy_tls.map(ms);
        r.proxy_connect_ms = timings.proxy_connect.map(ms);
        r.tls_ms = timings.tls.map(ms);
        r.addresses = addresses.iter().map(|a| a.to_string()).collect();
        r.peer = peer.map(|p| p.to_string());
        r.proxy_tls = proxy_tls.cloned();
        let whose = if proxied { " (proxy)" } else { "" };
        if let Some(d) = timings.dns {
            self.line(
                "dns",
                Some(d),
                &format!("{}{whose}", self.report.addresses.join(", ")),
            );
        }
        if let (Some(d), Some(p)) = (timings.tcp, peer) {
            self.line("tcp", Some(d), &format!("connected to {p}{whose}"));
        }
        if let (Some(d), Some(info)) = (timings.proxy_tls, proxy_tls) {
            self.line("proxy-tls", Some(d), &tls_summary(info));
            self.chain(info);
        }
    }

    fn chain(&self, info: &TlsInfo) {
        for (i, c) in info.chain.iter().enumerate() {
            self.line(&format!("  cert {i}"), None, c);
        }
    }

    /// Route, DNS, TCP, proxy, TLS.
    async fn connect(&mut self, dialer: &Dialer, url: &Url) -> Result<Connection, Failed> {
        let target = format!(
            "{}:{}",
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        );
        match dialer.connect(url).await {
            Ok(c) => {
                self.route(url, &c.route);
                let proxied = c.proxy.is_some();
                self.dial_steps(
                    &c.timings,
                    &c.addresses,
                    Some(c.peer),
                    c.proxy_tls.as_ref(),
                    proxied,
                );
                if let (Some(d), Some(reply)) = (c.timings.proxy_connect, &c.proxy_reply) {
                    self.line("proxy", Some(d), &format!("CONNECT {target}: {reply}"));
                    self.report.proxy_reply = Some(reply.clone());
                }
                if let (Some(d), Some(info)) = (c.timings.tls, &c.tls) {
                    self.line("tls", Some(d), &tls_summary(info));
                    self.chain(info);
                    self.report.tls = Some(info.clone());
                }
                Ok(c)
            }
            Err(e) => match e.downcast_ref::<DialError>() {
                Some(d) => {
                    let proxied = matches!(d.route, Some(Route::Proxy { .. }));
                    if let Some(r) = &d.route {
                        self.route(url, r);
                    }
                    self.dial_steps(
                        &d.timings,
                        &d.addresses,
                        d.peer,
                        d.proxy_tls.as_ref(),
                        proxied,
                    );
                    self.report.proxy_status = d.proxy_status;
                    Err(failed(d.step.name(), d.message.clone()))
                }
                None => Err(failed("tcp", format!("{e:#}"))),
            },
        }
    }

    async fn websocket(
        &mut self,
        dialer: &Dialer,
        url: &Url,
        args: &Args,
        domain: &str,
    ) -> Result<(), Failed> {
        let mut wr = WsReport {
            subprotocol_offered: args.subprotocol.clone(),
            ..WsReport::default()
        };
        let res = self
            .websocket_steps(dialer, url, args, domain, &mut wr)
            .await;
        self.report.websocket = Some(wr);
        res
    }

    async fn websocket_steps(
        &mut self,
        dialer: &Dialer,
        url: &Url,
        args: &Args,
        domain: &str,
        wr: &mut WsReport,
    ) -> Result<(), Failed> {
        let conn = self.connect(dialer, url).await?;
        let offered = args.subprotocol.as_deref();
        let t = Instant::now();
        let hs = tokio::time::timeout(
            self.timeout,
            net::websocket_handshake(conn.stream, url, offered),
        )
        .await;
        let (mut ws, resp) = match hs {
            Err(_) => {
                return Err(failed(
                    "handshake",
                    format!("no answer within {}", secs(self.timeout)),
                ))
            }
            Ok(Err(e)) => {
                let msg = match e.downcast_ref::<net::HandshakeError>() {
                    Some(h) => {
                        wr.status = h.status;
                        h.message.clone()
                    }
                    None => format!("{e:#}"),
                };
                return Err(failed("handshake", msg));
            }
            Ok(Ok(v)) => v,
        };
        let took = t.elapsed();
        wr.handshake_ms = Some(ms(took));
        wr.status = Some(resp.status);
        wr.subprotocol = resp.subprotocol.clone();
        let sub = match &wr.subprotocol {
            Some(s) => format!("subprotocol {s}"),
            None => "no subprotocol".into(),
        };
        self.line(
            "handshake",
            Some(took),
            &format!("HTTP {}, {sub}", resp.status),
        );
        match (offered, wr.subprotocol.as_deref()) {
            (Some(o), None) => self.warn(format!(
                "subprotocol {o:?} was offered but the server chose none"
            )),
            (Some(o), Some(c)) if !o.eq_ignore_ascii_case(c) => self.warn(format!(
                "subprotocol {o:?} was offered but the server chose {c:?}"
            )),
            _ => {}
        }
        let xmpp = offered.is_some_and(|s| s.eq_ignore_ascii_case("xmpp"));
        let sip = offered.is_some_and(|s| s.eq_ignore_ascii_case("sip"));
        if xmpp {
            let mut x = XmppReport {
                domain: domain.to_string(),
                ..XmppReport::default()
            };
            let r = self.xmpp_open(&mut ws, domain, &mut x).await;
            wr.xmpp = Some(x);
            r?;
        }
        if sip {
            let mut s = SipReport::default();
            let r = self.sip_keepalives(&mut ws, args.count, &mut s).await;
            wr.sip = Some(s);
            r?;
        }
        for i in 1..=args.count {
            let payload = format!("ucgate-bench {i}");
            let t = Instant::now();
            ws.send(Message::Ping(payload.clone().into_bytes().into()))
                .await
                .map_err(|e| failed("ping", format!("sending ping {i}: {e}")))?;
            let deadline = Instant::now() + self.timeout;
            loop {
                match next(&mut ws, deadline)
                    .await
                    .map_err(|e| failed("ping", format!("waiting for pong {i}: {e}")))?
                {
                    Message::Pong(p) if p.as_ref() == payload.as_bytes() => break,
                    _ => continue,
                }
            }
            let took = t.elapsed();
            wr.ping_ms.push(ms(took));
            self.line(&format!("ping {i}"), Some(took), "pong");
        }
        if !wr.ping_ms.is_empty() {
            let avg = wr.ping_ms.iter().sum::<f64>() / wr.ping_ms.len() as f64;
            wr.ping_avg_ms = Some((avg * 1e3).round() / 1e3);
        }
        if xmpp {
            let t = Instant::now();
            let closed = self.xmpp_close(&mut ws).await;
            if let Some(x) = wr.xmpp.as_mut() {
                x.closed = closed;
            }
            self.line(
                "xmpp close",
                Some(t.elapsed()),
                if closed {
                    "<close/> answered"
                } else {
                    "no <close/> from the server"
                },
            );
            if !closed {
                self.warn("the server did not answer <close/> with <close/>".into());
            }
        }
        let t = Instant::now();
        let code = self.close(&mut ws).await?;
        wr.close_ms = Some(ms(t.elapsed()));
        wr.close_code = code;
        let detail = match code {
            Some(c) => format!("1000 sent, {c} received"),
            None => "1000 sent, connection closed without a close frame".into(),
        };
        self.line("close", Some(t.elapsed()), &detail);
        Ok(())
    }

    async fn xmpp_open(
        &mut self,
        ws: &mut Ws,
        domain: &str,
        x: &mut XmppReport,
    ) -> Result<(), Failed> {
        let open = format!(
            "<open xmlns=\"{FRAMING}\" to=\"{}\" version=\"1.0\"/>",
            xml_escape(domain)
        );
        let t = Instant::now();
        ws.send(Message::Text(open.into()))
            .await
            .map_err(|e| failed("xmpp", format!("sending <open/>: {e}")))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let text = match next(ws, deadline).await {
                Ok(Message::Text(t)) => t.as_str().to_string(),
                Ok(Message::Close(f)) => {
                    return Err(failed(
                        "xmpp",
                        format!(
                            "the server closed the WebSocket ({})",
                            close_text(f.as_ref())
                        ),
                    ))
                }
                Ok(_) => continue,
                Err(e) => {
                    let what = if x.open.is_none() {
                        "the server's <open/>"
                    } else {
                        "<stream:features>"
                    };
                    return Err(failed("xmpp", format!("waiting for {what}: {e}")));
                }
            };
            if x.open.is_none() && text.trim_start().starts_with("<open") {
                let took = t.elapsed();
                x.open_ms = Some(ms(took));
                x.open = Some(text.trim().to_string());
                self.line(
                    "xmpp open",
                    Some(took),
                    &format!("server <open/>: {}", text.trim()),
                );
            } else if text.contains("<stream:features")
                || text.trim_start().starts_with("<features")
            {
                let took = t.elapsed();
                x.features = true;
                x.features_ms = Some(ms(took));
                self.line("features", Some(took), "<stream:features> received");
                return Ok(());
            } else if text.contains("<stream:error") || text.trim_start().starts_with("<close") {
                return Err(failed(
                    "xmpp",
                    format!("the server ended the stream: {}", text.trim()),
                ));
            }
        }
    }

    /// Sends `<close/>`; true when the server answered with its `<close`
    /// (or closed the WebSocket).
    async fn xmpp_close(&mut self, ws: &mut Ws) -> bool {
        if ws
            .send(Message::Text(
                format!("<close xmlns=\"{FRAMING}\"/>").into(),
            ))
            .await
            .is_err()
        {
            return false;
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            match next(ws, deadline).await {
                Ok(Message::Text(t)) if t.as_str().trim_start().starts_with("<close") => {
                    return true
                }
                Ok(Message::Close(_)) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    }

    async fn sip_keepalives(
        &mut self,
        ws: &mut Ws,
        count: u32,
        s: &mut SipReport,
    ) -> Result<(), Failed> {
        for i in 1..=count {
            let t = Instant::now();
            ws.send(Message::Text("\r\n\r\n".into()))
                .await
                .map_err(|e| failed("sip", format!("sending keepalive {i}: {e}")))?;
            let deadline = Instant::now() + self.timeout;
            loop {
                match next(ws, deadline).await {
                    Ok(Message::Text(t)) if t.as_str() == "\r\n" => break,
                    Ok(Message::Binary(b)) if b.as_ref() == b"\r\n" => break,
                    Ok(Message::Close(f)) => {
                        return Err(failed(
                            "sip",
                            format!(
                                "the server closed the WebSocket ({})",
                                close_text(f.as_ref())
                            ),
                        ))
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        return Err(failed(
                            "sip",
                            format!("waiting for the \\r\\n answer to keepalive {i}: {e}"),
                        ))
                    }
                }
            }
            let took = t.elapsed();
            s.keepalive_ms.push(ms(took));
            self.line(
                &format!("keepalive {i}"),
                Some(took),
                "\\r\\n\\r\\n answered with \\r\\n",
            );
        }
        Ok(())
    }

    /// Sends a close frame with 1000 and waits for the server's; returns
    /// the server's code.
    async fn close(&mut self, ws: &mut Ws) -> Result<Option<u16>, Failed> {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let mut code = None;
        if let Err(e) = ws.close(Some(frame)).await {
            use tokio_tungstenite::tungstenite::Error as WsError;
            if !matches!(e, WsError::ConnectionClosed | WsError::AlreadyClosed) {
                return Err(failed("close", format!("sending the close frame: {e}")));
            }
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            match tokio::time::timeout_at(deadline, ws.next()).await {
                Ok(Some(Ok(Message::Close(f)))) => code = f.map(|f| u16::from(f.code)).or(code),
                Ok(Some(Ok(_))) => continue,
                Ok(None) | Ok(Some(Err(_))) => return Ok(code),
                Err(_) => {
                    return Err(failed(
                        "close",
                        format!(
                            "no close frame from the server within {}",
                            secs(self.timeout)
                        ),
                    ))
                }
            }
        }
    }

    async fn bosh(&mut self, dialer: &Dialer, url: &Url, domain: &str) -> Result<(), Failed> {
        let mut b = BoshReport {
            domain: domain.to_string(),
            rid: initial_rid(),
            ..BoshReport::default()
        };
        let res = self.bosh_steps(dialer, url, &mut b).await;
        self.report.bosh = Some(b);
        res
    }

    async fn bosh_steps(
        &mut self,
        dialer: &Dialer,
        url: &Url,
        b: &mut BoshReport,
    ) -> Result<(), Failed> {
        use http_body_util::{BodyExt, Full};
        let conn = self.connect(dialer, url).await?;
        let (mut sender, driver) = hyper::client::conn::http1::handshake::<_, Full<bytes::Bytes>>(
            hyper_util::rt::TokioIo::new(conn.stream),
        )
        .await
        .map_err(|e| failed("http", format!("HTTP/1.1 over the connection: {e}")))?;
        let driver = tokio::spawn(driver);
        let limit = self.timeout + Duration::from_secs(BOSH_WAIT);
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_string(),
        };
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let mut post =
            async |step: &'static str, body: String| -> Result<(u16, String, Duration), Failed> {
                let req = hyper::Request::post(target.as_str())
                    .header(hyper::header::HOST, authority.as_str())
                    .header(hyper::header::CONTENT_TYPE, "text/xml; charset=utf-8")
                    .header(
                        hyper::header::USER_AGENT,
                        concat!("ucgate-bench/", env!("CARGO_PKG_VERSION")),
                    )
                    .body(Full::new(bytes::Bytes::from(body)))
                    .map_err(|e| failed(step, e.to_string()))?;
                let t = Instant::now();
                let exchange = async {
                    sender.ready().await?;
                    let resp = sender.send_request(req).await?;
                    let status = resp.status().as_u16();
                    let body = resp.into_body().collect().await?.to_bytes();
                    Ok::<_, hyper::Error>((status, String::from_utf8_lossy(&body).into_owned()))
                };
                match tokio::time::timeout(limit, exchange).await {
                    Ok(Ok((status, text))) => Ok((status, text, t.elapsed())),
                    Ok(Err(e)) => Err(failed(step, format!("HTTP request: {e}"))),
                    Err(_) => Err(failed(step, format!("no answer within {}", secs(limit)))),
                }
            };

        // session creation
        let create = format!(
            "<body content='text/xml; charset=utf-8' hold='1' rid='{}' to='{}' ver='1.6' wait='{BOSH_WAIT}' xml:lang='en' xmpp:version='1.0' xmlns='{HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh'/>",
            b.rid,
            xml_escape(&b.domain)
        );
        let (status, text, took) = post("session", create).await?;
        b.status = Some(status);
        b.session_ms = Some(ms(took));
        if status != 200 {
            return Err(failed(
                "session",
                format!("HTTP {status}: {}", snippet(&text)),
            ));
        }
        let attrs = body_attrs(&text).ok_or_else(|| {
            failed(
                "session",
                format!("no <body/> in the answer: {}", snippet(&text)),
            )
        })?;
        let get = |n: &str| attrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        if get("type").as_deref() == Some("terminate") {
            let cond = get("condition").unwrap_or_else(|| "no condition".into());
            return Err(failed(
                "session",
                format!("the gateway terminated the session: {cond}"),
            ));
        }
        b.sid = get("sid");
        b.wait = get("wait");
        b.hold = get("hold");
        b.requests = get("requests");
        b.inactivity = get("inactivity");
        b.polling = get("polling");
        b.ver = get("ver");
        let Some(sid) = b.sid.clone() else {
            return Err(failed("session", format!("no sid in {}", snippet(&text))));
        };
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        self.line(
            "session",
            Some(took),
            &format!(
                "HTTP {status}, sid {sid}, wait {}, hold {}, requests {}, inactivity {}, polling {}, ver {}",
                show(&b.wait),
                show(&b.hold),
                show(&b.requests),
                show(&b.inactivity),
                show(&b.polling),
                show(&b.ver)
            ),
        );

        // stream features: in the creation answer, or in the next one
        let mut rid = b.rid;
        if has_features(&text) {
            b.features = true;
            b.features_ms = Some(ms(took));
            self.line(
                "features",
                Some(took),
                "<stream:features> in the session creation answer",
            );
        } else {
            rid += 1;
            let (status, text, took) = post(
                "features",
                format!(
                    "<body rid='{rid}' sid='{}' xmlns='{HTTPBIND}'/>",
                    xml_escape(&sid)
                ),
            )
            .await?;
            if status != 200 {
                return Err(failed(
                    "features",
                    format!("HTTP {status}: {}", snippet(&text)),
                ));
            }
            if !has_features(&text) {
                return Err(failed(
                    "features",
                    format!(
                        "no <stream:features> in the second answer either: {}",
                        snippet(&text)
                    ),
                ));
            }
            b.features = true;
            b.features_ms = Some(ms(took));
            self.line(
                "features",
                Some(took),
                "<stream:features> in the next answer",
            );
        }

        // terminate
        rid += 1;
        let (status, text, took) = post(
            "terminate",
            format!("<body rid='{rid}' sid='{}' type='terminate' xmlns='{HTTPBIND}'><presence type='unavailable' xmlns='jabber:client'/></body>", xml_escape(&sid)),
        )
        .await?;
        b.terminate_ms = Some(ms(took));
        b.terminate_status = Some(status);
        if status != 200 {
            return Err(failed(
                "terminate",
                format!("HTTP {status}: {}", snippet(&text)),
            ));
        }
        let kind = body_attrs(&text)
            .and_then(|a| a.into_iter().find(|(k, _)| k == "type").map(|(_, v)| v))
            .map(|t| format!(", type {t}"))
            .unwrap_or_default();
        self.line("terminate", Some(took), &format!("HTTP {status}{kind}"));
        driver.abort();
        Ok(())
    }
}

type Ws = tokio_tungstenite::WebSocketStream<BoxStream>;

/// The next message before `deadline`, or why there is none.
async fn next(ws: &mut Ws, deadline: Instant) -> Result<Message, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(left, ws.next()).await {
        Err(_) => Err("timed out".into()),
        Ok(None) => Err("the connection closed".into()),
        Ok(Some(Err(e))) => Err(e.to_string()),
        Ok(Some(Ok(m))) => Ok(m),
    }
}

fn close_text(f: Option<&CloseFrame>) -> String {
    match f {
        Some(f) if f.reason.is_empty() => format!("code {}", u16::from(f.code)),
        Some(f) => format!("code {}: {}", u16::from(f.code), f.reason),
        None => "no close code".into(),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn tls_summary(info: &TlsInfo) -> String {
    format!(
        "{}, {}, ALPN {}",
        info.version,
        info.cipher_suite,
        info.alpn.as_deref().unwrap_or("none")
    )
}

fn snippet(text: &str) -> String {
    let t: String = text.trim().chars().take(300).collect();
    if t.is_empty() {
        "(empty body)".into()
    } else {
        t
    }
}

fn has_features(text: &str) -> bool {
    text.contains("<stream:features") || text.contains("<features")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&apos;", "'")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// The attributes of the first `<body …>` start tag of a BOSH answer.
fn body_attrs(text: &str) -> Option<Vec<(String, String)>> {
    let start = text.find("<body")?;
    let mut s = &text[start + 5..];
    if !s.starts_with(|c: char| c.is_whitespace() || c == '>' || c == '/') {
        return None;
    }
    let mut attrs = Vec::new();
    loop {
        s = s.trim_start();
        if s.is_empty() || s.starts_with('>') || s.starts_with("/>") {
            return Some(attrs);
        }
        let eq = s.find('=')?;
        let name = s[..eq].trim().to_string();
        s = s[eq + 1..].trim_start();
        let quote = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let end = s[1..].find(quote)? + 1;
        attrs.push((name, xml_unescape(&s[1..end])));
        s = &s[end + 1..];
    }
}

/// A random-enough first rid (XEP-0124 §7: large, unpredictable, with room
/// to grow below 2^53).
fn initial_rid() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mix =
        nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id()).rotate_left(32);
    (mix >> 24) + 1_000_000
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let url = Url::parse(&args.url).with_context(|| format!("invalid URL {:?}", args.url))?;
    let kind = match url.scheme() {
        "ws" | "wss" => "websocket",
        "http" | "https" => "bosh",
        other => bail!("unsupported URL scheme {other:?}: want ws://, wss:// (WebSocket) or http://, https:// (BOSH)"),
    };
    let Some(host) = url.host_str() else {
        bail!("URL {url} has no host");
    };
    if kind == "bosh" && args.subprotocol.is_some() {
        bail!("--subprotocol is for ws:// and wss:// URLs (BOSH has none)");
    }
    let domain = args
        .domain
        .clone()
        .unwrap_or_else(|| host.trim_matches(['[', ']']).to_string());
    let dialer = Dialer::new(&args.tls, &args.proxy)?;
    let mut p = Probe {
        report: Report {
            mode: "probe",
            target: url.to_string(),
            kind,
            ..Report::default()
        },
        timeout: dialer.timeout(),
    };
    let what = match (kind, &args.subprotocol) {
        ("bosh", _) => format!("BOSH, domain {domain}"),
        (_, Some(s)) => format!("WebSocket, subprotocol {s}"),
        _ => "WebSocket".to_string(),
    };
    p.line("probe", None, &format!("{url} ({what})"));
    let start = Instant::now();
    let result = if kind == "bosh" {
        p.bosh(&dialer, &url, &domain).await
    } else {
        p.websocket(&dialer, &url, &args, &domain).await
    };
    let total = start.elapsed();
    p.report.total_ms = ms(total);
    match result {
        Ok(()) => {
            p.report.ok = true;
            p.line("result", Some(total), "OK");
        }
        Err(f) => {
            p.failed_line(f.step, &f.message);
            p.line(
                "result",
                Some(total),
                &format!("FAILED at {}: {}", f.step, f.message),
            );
            p.report.failed_step = Some(f.step.to_string());
            p.report.error = Some(f.message);
        }
    }
    println!("{}", serde_json::to_string(&p.report)?);
    Ok(ExitCode::from(if p.report.ok { 0 } else { 1 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bosh_body_attributes() {
        let a = body_attrs("<body xmlns='http://jabber.org/protocol/httpbind' sid=\"s&amp;1\" wait='10'\n requests='2'><stream:features/></body>").unwrap();
        assert_eq!(a[1], ("sid".to_string(), "s&1".to_string()));
        assert_eq!(a[2], ("wait".to_string(), "10".to_string()));
        assert_eq!(a[3], ("requests".to_string(), "2".to_string()));
        assert_eq!(body_attrs("<body/>").unwrap(), vec![]);
        assert!(body_attrs("<bodyx a='1'/>").is_none());
        assert!(body_attrs("<html>").is_none());
        assert!(body_attrs("<body a=1>").is_none());
    }

    #[test]
    fn rid_fits_in_53_bits_with_room() {
        let r = initial_rid();
        assert!((1_000_000..(1 << 41)).contains(&r), "{r}");
    }

    #[test]
    fn escaping() {
        assert_eq!(xml_escape("a<'&\">"), "a&lt;&apos;&amp;&quot;&gt;");
        assert_eq!(xml_unescape(&xml_escape("a<'&\">")), "a<'&\">");
    }
}
