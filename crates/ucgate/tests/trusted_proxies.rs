//! Behind proxies (issue 15 item 2): `server.trusted_proxies` and
//! `server.proxy_protocol`. The client's address a trusted proxy gives (a
//! PROXY protocol header, `Forwarded`, `X-Forwarded-For`) is the one in the
//! logs, the per-address limits and the SIP `received`; the scheme and host
//! it gives feed the same-origin check; what an untrusted peer sends is not
//! read. Linux routes all of 127.0.0.0/8 to loopback: the trusted proxy is
//! 127.0.0.1, the untrusted peer binds 127.0.0.2.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::process::{self, signal, wait_exit, wait_ready, KillOnDrop, Stderr};
use common::sip::{headers, Core, REGISTER};
use common::tls::*;
use common::xmpp_server::*;
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const PROXY: &str = "127.0.0.1";
const OTHER: &str = "127.0.0.2";

async fn connect_from(from_ip: &str, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(format!("{from_ip}:0").parse().unwrap()).unwrap();
    s.connect(to).await.unwrap()
}

/// A WebSocket handshake for `path` over `stream` with extra headers: the
/// socket, or the HTTP status of the refusal.
async fn ws_over(
    stream: TcpStream,
    addr: SocketAddr,
    path: &str,
    extra: &[(&str, &str)],
    protocol: Option<&str>,
) -> Result<WebSocketStream<TcpStream>, u16> {
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (k, v) in extra {
        let name: tokio_tungstenite::tungstenite::http::HeaderName = k.parse().unwrap();
        req.headers_mut()
            .insert(name, HeaderValue::from_str(v).unwrap());
    }
    if let Some(p) = protocol {
        req.headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_str(p).unwrap());
    }
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::client_async(req, stream),
    )
    .await
    .expect("handshake in time");
    match r {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("handshake failed: {e}"),
    }
}

async fn echo_once(ws: &mut WebSocketStream<TcpStream>) {
    ws.send(Message::Binary(b"ping".to_vec().into()))
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("echo in time")
        {
            Some(Ok(Message::Binary(b))) => {
                assert_eq!(&b[..], b"ping");
                return;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected the echo, got {other:?}"),
        }
    }
}

/// Reads until the gateway closes (within 5 s); what it sent.
async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("closed in time")
        .ok();
    out
}

fn v2_inet(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    let mut v = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v.extend_from_slice(&[0x21, 0x11, 0, 12]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v
}

fn log_has(log: &[String], needles: &[&str]) -> bool {
    log.iter().any(|l| needles.iter().all(|n| l.contains(n)))
}

/// Waits (up to 5 s) for a log line with every needle.
async fn wait_log(s: &process::Spawned, needles: &[&str]) {
    for _ in 0..100 {
        if log_has(&s.log.lock().unwrap(), needles) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no log line with {needles:?}:\n{}",
        s.log.lock().unwrap().join("\n")
    );
}

async fn stop(s: process::Spawned) {
    signal(&s.child, "-TERM");
    let (code, _) = wait_exit(s.child, Duration::from_secs(10)).await;
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn proxy_protocol_v1_and_v2_name_the_client_in_logs_and_the_per_ip_limit() {
    let dir = TempDir::new("proxy-protocol");
    let echo = echo_backend().await;
    let s = process::spawn(
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ntrusted_proxies = [\"{PROXY}\"]\nproxy_protocol = true\nmax_connections_per_ip = 1\n[admin]\nlisten = \"127.0.0.1:0\"\n{}",
            tunnel_route("/echo", echo, "")
        ),
        dir.path(),
        &[],
        &[],
        Stderr::Collect,
    );
    let _guard = KillOnDrop(s.child.id());
    wait_ready(s.admin).await;
    // Two connections from the one proxy address, for two clients: each
    // has its own slot of max_connections_per_ip = 1.
    let mut a = connect_from(PROXY, s.main).await;
    a.write_all(b"PROXY TCP4 192.0.2.1 192.0.2.100 4000 443\r\n")
        .await
        .unwrap();
    let mut a = ws_over(a, s.main, "/echo", &[], None).await.expect("v1");
    echo_once(&mut a).await;
    let mut b = connect_from(PROXY, s.main).await;
    b.write_all(&v2_inet([192, 0, 2, 2], 5000, [192, 0, 2, 100], 443))
        .await
        .unwrap();
    let mut b = ws_over(b, s.main, "/echo", &[], None).await.expect("v2");
    echo_once(&mut b).await;
    wait_log(&s, &["WebSocket opened", "\"peer\":\"192.0.2.1:4000\""]).await;
    wait_log(&s, &["WebSocket opened", "\"peer\":\"192.0.2.2:5000\""]).await;
    // A second connection of 192.0.2.1 while its first is open: refused.
    let mut c = connect_from(PROXY, s.main).await;
    c.write_all(
        b"PROXY TCP4 192.0.2.1 192.0.2.100 4001 443\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await
    .unwrap();
    assert!(read_to_close(&mut c).await.is_empty(), "closed unanswered");
    let m = http_get(s.admin, "/metrics").await.1;
    let errors =
        |kind: &str| metric_value(&m, "ucgate_errors_total", &[("kind", kind)]).unwrap_or(0.0);
    assert_eq!(errors("max_connections_per_ip"), 1.0);
    assert!(
        !s.log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("WebSocket opened") && l.contains(&format!("\"peer\":\"{PROXY}:"))),
        "the proxy's own address is never the client's"
    );
    drop((a, b));
    stop(s).await;
}

#[tokio::test]
async fn a_trusted_peer_must_send_the_header() {
    let mut gw = TestGateway::start(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ntrusted_proxies = [\"{PROXY}\"]\nproxy_protocol = true\nhandshake_timeout = \"300ms\"\n"
    ))
    .await;
    let errors = |m: &str, kind: &str| {
        metric_value(
            m,
            "ucgate_errors_total",
            &[("side", "client"), ("kind", kind)],
        )
        .unwrap_or(0.0)
    };
    // Plain HTTP where the header should be: closed, unanswered.
    let mut s = connect_from(PROXY, gw.addr).await;
    s.write_all(b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_to_close(&mut s).await.is_empty());
    // A broken header.
    let mut s = connect_from(PROXY, gw.addr).await;
    s.write_all(b"PROXY TCP4 192.0.2.1 192.0.2.100 4000\r\n")
        .await
        .unwrap();
    assert!(read_to_close(&mut s).await.is_empty());
    // Nothing at all: closed after handshake_timeout.
    let mut s = connect_from(PROXY, gw.addr).await;
    let start = std::time::Instant::now();
    assert!(read_to_close(&mut s).await.is_empty());
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );
    let m = gw.metrics().await;
    assert_eq!(errors(&m, "proxy_header_missing"), 1.0);
    assert_eq!(errors(&m, "proxy_header_invalid"), 1.0);
    assert_eq!(errors(&m, "proxy_header_timeout"), 1.0);
    // A LOCAL header (a health check) keeps the proxy's address: served.
    let mut s = connect_from(PROXY, gw.addr).await;
    s.write_all(b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let r = String::from_utf8_lossy(&read_to_close(&mut s).await).to_string();
    assert_eq!(parse_response(&r).0, 404, "{r}");
    gw.stop().await;
}

#[tokio::test]
async fn an_untrusted_peer_is_served_and_its_header_not_read() {
    let mut gw = TestGateway::start(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ntrusted_proxies = [\"{PROXY}\"]\nproxy_protocol = true\n"
    ))
    .await;
    // Served as it is, without a header.
    let mut s = connect_from(OTHER, gw.addr).await;
    s.write_all(b"GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let r = String::from_utf8_lossy(&read_to_close(&mut s).await).to_string();
    assert_eq!(parse_response(&r).0, 404, "{r}");
    // Its header is not a header: it is a bad HTTP request.
    let mut s = connect_from(OTHER, gw.addr).await;
    s.write_all(
        b"PROXY TCP4 192.0.2.1 192.0.2.100 4000 443\r\nGET /nothing HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await
    .unwrap();
    let r = String::from_utf8_lossy(&read_to_close(&mut s).await).to_string();
    assert_eq!(parse_response(&r).0, 400, "{r}");
    let m = gw.metrics().await;
    for kind in ["proxy_header_missing", "proxy_header_invalid"] {
        assert_eq!(
            metric_value(&m, "ucgate_errors_total", &[("kind", kind)]).unwrap_or(0.0),
            0.0
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn forwarded_headers_count_only_from_a_trusted_peer() {
    let dir = TempDir::new("forwarded-log");
    let echo = echo_backend().await;
    let s = process::spawn(
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ntrusted_proxies = [\"{PROXY}\", \"10.0.0.0/8\"]\n[admin]\nlisten = \"127.0.0.1:0\"\n{}",
            tunnel_route("/echo", echo, "")
        ),
        dir.path(),
        &[],
        &[],
        Stderr::Collect,
    );
    let _guard = KillOnDrop(s.child.id());
    wait_ready(s.admin).await;
    // From the proxy: the walk skips the trusted 10.1.1.1 and stops at the
    // client, not at the entry the client wrote itself.
    let mut ws = ws_over(
        connect_from(PROXY, s.main).await,
        s.main,
        "/echo",
        &[("x-forwarded-for", "203.0.113.66, 198.51.100.7, 10.1.1.1")],
        None,
    )
    .await
    .unwrap();
    echo_once(&mut ws).await;
    wait_log(&s, &["WebSocket opened", "\"peer\":\"198.51.100.7:0\""]).await;
    let mut ws6 = ws_over(
        connect_from(PROXY, s.main).await,
        s.main,
        "/echo",
        &[("forwarded", "for=\"[2001:db8::5]:4711\";proto=https")],
        None,
    )
    .await
    .unwrap();
    echo_once(&mut ws6).await;
    wait_log(&s, &["WebSocket opened", "\"peer\":\"[2001:db8::5]:4711\""]).await;
    // From anyone else: the headers change nothing.
    let mut spoof = ws_over(
        connect_from(OTHER, s.main).await,
        s.main,
        "/echo",
        &[
            ("x-forwarded-for", "198.51.100.99"),
            ("forwarded", "for=198.51.100.98"),
        ],
        None,
    )
    .await
    .unwrap();
    echo_once(&mut spoof).await;
    wait_log(&s, &["WebSocket opened", &format!("\"peer\":\"{OTHER}:")]).await;
    let log = s.log.lock().unwrap().join("\n");
    assert!(
        !log.contains("198.51.100.99") && !log.contains("198.51.100.98"),
        "{log}"
    );
    // A malformed header from the proxy: counted, and the proxy's address.
    let mut bad = ws_over(
        connect_from(PROXY, s.main).await,
        s.main,
        "/echo",
        &[("x-forwarded-for", "not-an-address")],
        None,
    )
    .await
    .unwrap();
    echo_once(&mut bad).await;
    wait_log(&s, &["WebSocket opened", &format!("\"peer\":\"{PROXY}:")]).await;
    wait_log(&s, &["malformed header", "not-an-address"]).await;
    let m = http_get(s.admin, "/metrics").await.1;
    assert_eq!(
        metric_value(&m, "ucgate_errors_total", &[("kind", "forwarded_invalid")]),
        Some(1.0)
    );
    drop((ws, ws6, spoof, bad));
    stop(s).await;
}

#[tokio::test]
async fn sip_received_is_the_forwarded_client() {
    let core = Core::start().await;
    let mut gw = TestGateway::start(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ntrusted_proxies = [\"{PROXY}\"]\n{}",
        common::sip::config(core.addr)
    ))
    .await;
    // The forwarded address comes without a port: no rport then.
    for (from, xff, received) in [
        (PROXY, "198.51.100.7", ";received=198.51.100.7"),
        (
            PROXY,
            "[2001:db8::7]:5060",
            ";received=2001:db8::7;rport=5060",
        ),
        (OTHER, "198.51.100.8", ";received=127.0.0.2;rport="),
    ] {
        let mut ws = ws_over(
            connect_from(from, gw.addr).await,
            gw.addr,
            "/sip",
            &[("x-forwarded-for", xff)],
            Some("sip"),
        )
        .await
        .unwrap();
        ws.send(Message::Text(REGISTER.to_string().into()))
            .await
            .unwrap();
        let (req, _) = core.recv().await;
        let vias = headers(&req, "Via");
        let via = vias[1];
        let tail = &via[via.find(";received=").expect("received")..];
        assert!(
            tail == received || (received.ends_with('=') && tail.starts_with(received)),
            "from {from} with X-Forwarded-For {xff}: {via}"
        );
    }
    gw.stop().await;
}

fn bosh_create(xff: &str) -> String {
    let body = "<body rid='1' to='localhost' wait='5' hold='1' ver='1.11' xmpp:version='1.0' xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>";
    format!(
        "POST /http-bind HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml; charset=utf-8\r\nX-Forwarded-For: {xff}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

async fn raw_from(from: &str, addr: SocketAddr, req: &str) -> String {
    let mut s = connect_from(from, addr).await;
    s.write_all(req.as_bytes()).await.unwrap();
    String::from_utf8_lossy(&read_to_close(&mut s).await).to_string()
}

#[tokio::test]
async fn bosh_sessions_per_address_count_the_forwarded_client() {
    let dir = TempDir::new("bosh-forwarded");
    let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, _) = scripted_server(tls).await;
    let mut gw = TestGateway::start(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ntrusted_proxies = [\"{PROXY}\"]\n[bosh]\nmax_sessions_per_ip = 1\n[[route]]\npath = \"/http-bind\"\nkind = \"bosh\"\n\n[xmpp.domains.\"localhost\"]\naddress = \"{server}\"\ntls = \"starttls\"\nca_file = \"{}\"\n",
        ca.display()
    ))
    .await;
    // Two clients behind the one proxy: a session each.
    let a = raw_from(PROXY, gw.addr, &bosh_create("198.51.100.1")).await;
    assert!(a.contains("sid="), "{a}");
    let b = raw_from(PROXY, gw.addr, &bosh_create("198.51.100.2")).await;
    assert!(b.contains("sid="), "{b}");
    // The first one again: over its limit.
    let again = raw_from(PROXY, gw.addr, &bosh_create("198.51.100.1")).await;
    assert!(again.contains("policy-violation"), "{again}");
    // An untrusted peer cannot take another client's name (nor escape its
    // own count by changing it).
    let c = raw_from(OTHER, gw.addr, &bosh_create("198.51.100.3")).await;
    assert!(c.contains("sid="), "{c}");
    let d = raw_from(OTHER, gw.addr, &bosh_create("198.51.100.4")).await;
    assert!(d.contains("policy-violation"), "{d}");
    gw.stop().await;
}

#[tokio::test]
async fn the_origin_check_uses_the_forwarded_scheme_and_host() {
    let echo = echo_backend().await;
    let mut gw = TestGateway::start(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ntrusted_proxies = [\"{PROXY}\"]\n{}[[route]]\npath = \"/http-bind\"\nkind = \"bosh\"\n\n[xmpp.domains.\"localhost\"]\naddress = \"127.0.0.1:1\"\n",
        tunnel_route("/echo", echo, "")
    ))
    .await;
    let page = ("origin", "https://chat.example.com");
    let xfp = ("x-forwarded-proto", "https");
    let xfh = ("x-forwarded-host", "chat.example.com");
    let ws = |from: &'static str, h: Vec<(&'static str, &'static str)>| {
        let addr = gw.addr;
        async move {
            ws_over(connect_from(from, addr).await, addr, "/echo", &h, None)
                .await
                .map(|_| 101)
                .unwrap_or_else(|s| s)
        }
    };
    // A TLS-terminating proxy in front: same origin.
    assert_eq!(ws(PROXY, vec![page, xfp, xfh]).await, 101);
    assert_eq!(
        ws(
            PROXY,
            vec![page, ("forwarded", "proto=https;host=chat.example.com")]
        )
        .await,
        101
    );
    // The proxy kept the Host header and said only the scheme.
    assert_eq!(
        ws(PROXY, vec![page, xfp, ("host", "chat.example.com")]).await,
        101
    );
    // Without the proxy's word: the gateway's own scheme and host differ.
    assert_eq!(ws(PROXY, vec![page]).await, 403);
    assert_eq!(ws(PROXY, vec![page, xfh]).await, 403, "http is not https");
    // The same headers from an untrusted peer are not read.
    assert_eq!(ws(OTHER, vec![page, xfp, xfh]).await, 403);
    // BOSH's CORS answers the same way.
    let preflight = "OPTIONS /http-bind HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://chat.example.com\r\nAccess-Control-Request-Method: POST\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: chat.example.com\r\nConnection: close\r\n\r\n";
    let ok = raw_from(PROXY, gw.addr, preflight).await;
    assert_eq!(parse_response(&ok).0, 204, "{ok}");
    assert!(
        ok.to_ascii_lowercase()
            .contains("access-control-allow-origin: https://chat.example.com"),
        "{ok}"
    );
    let refused = raw_from(OTHER, gw.addr, preflight).await;
    assert_eq!(parse_response(&refused).0, 403, "{refused}");
    gw.stop().await;
}
