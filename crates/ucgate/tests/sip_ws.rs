//! SIP over WebSocket (RFC 7118) through the gateway to an in-process SIP
//! core stub on UDP (and TCP on the same port, for large requests).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::sip::*;
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

#[tokio::test]
async fn register_message_and_flow_gone() {
    let core = Core::start().await;
    let mut gw = TestGateway::start(&config(core.addr)).await;
    let mut ws = open(&gw).await;
    // RFC 5626 keep-alive over the WebSocket
    send(&mut ws, "\r\n\r\n").await;
    assert_eq!(next_text(&mut ws).await, "\r\n");
    let (path, gw_udp) = register(&mut ws, &core).await;

    // The core sends a MESSAGE to the registered client through the Path.
    core.send(&core_message(&core, &path, 1), gw_udp).await;
    let msg = next_text(&mut ws).await;
    assert!(
        msg.starts_with("MESSAGE sip:x1@df7jal23ls0d.invalid;transport=ws SIP/2.0\r\n"),
        "{msg}"
    );
    assert!(msg.ends_with("hello"), "{msg}");
    assert!(headers(&msg, "Via")[0].starts_with("SIP/2.0/WS "), "{msg}");
    assert!(headers(&msg, "Route").is_empty(), "our Route popped: {msg}");
    // The client answers; the core gets the 200 without our Via.
    send(&mut ws, &response(&msg, "200 OK")).await;
    let (ok, _) = core.recv().await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    assert_eq!(headers(&ok, "Via").len(), 1, "{ok}");
    assert!(headers(&ok, "Via")[0].contains("z9hG4bKcore1"), "{ok}");

    // The client leaves: the next request for it gets 430 Flow Failed.
    ws.close(None).await.unwrap();
    drop(ws);
    tokio::time::sleep(Duration::from_millis(200)).await;
    core.send(&core_message(&core, &path, 2), gw_udp).await;
    let (gone, _) = core.recv().await;
    assert!(gone.starts_with("SIP/2.0 430 Flow Failed\r\n"), "{gone}");
    gw.stop().await;
}

#[tokio::test]
async fn forged_token_is_forbidden() {
    let core = Core::start().await;
    let mut gw = TestGateway::start(&config(core.addr)).await;
    let mut ws = open(&gw).await;
    let (path, gw_udp) = register(&mut ws, &core).await;
    let host = path.split('@').nth(1).unwrap().split(';').next().unwrap();
    let forged = format!("sip:{}@{host};lr", "A".repeat(27));
    core.send(&core_message(&core, &forged, 1), gw_udp).await;
    let (resp, _) = core.recv().await;
    assert!(resp.starts_with("SIP/2.0 403 "), "{resp}");
    gw.stop().await;
}

#[tokio::test]
async fn large_invite_goes_over_tcp() {
    let core = Core::start().await;
    let mut gw = TestGateway::start(&config(core.addr)).await;
    let mut ws = open(&gw).await;
    let body =
        "v=0\r\n".to_string() + &"a=x-padding:0123456789abcdef0123456789abcdef\r\n".repeat(70);
    assert!(body.len() > 3000);
    let invite = format!(
        "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKinv1\r\n\
Max-Forwards: 70\r\n\
To: <sip:bob@example.com>\r\n\
From: <sip:alice@example.com>;tag=a2\r\n\
Call-ID: inv-call-1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:x1@df7jal23ls0d.invalid;transport=ws;ob>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    send(&mut ws, &invite).await;
    let (mut stream, _) = tokio::time::timeout(Duration::from_secs(10), core.tcp.accept())
        .await
        .expect("a TCP connection in time")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    while !String::from_utf8_lossy(&got).ends_with(&body) {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("bytes in time")
            .unwrap();
        assert!(n > 0, "connection closed early");
        got.extend_from_slice(&buf[..n]);
    }
    let req = String::from_utf8(got).unwrap();
    assert!(
        req.starts_with("INVITE sip:bob@example.com SIP/2.0\r\n"),
        "{req}"
    );
    assert!(headers(&req, "Via")[0].starts_with("SIP/2.0/TCP "), "{req}");
    assert_eq!(headers(&req, "Record-Route").len(), 1, "{req}");
    gw.stop().await;
}

#[tokio::test]
async fn garbage_is_dropped_then_closes() {
    let core = Core::start().await;
    let mut gw = TestGateway::start(&config(core.addr)).await;
    let mut ws = open(&gw).await;
    send(&mut ws, "this is not SIP").await;
    // still usable: a valid request goes through
    let (_, _) = {
        send(&mut ws, REGISTER).await;
        core.recv().await
    };
    for _ in 0..5 {
        send(&mut ws, "\u{1}\u{2} garbage").await;
    }
    assert_eq!(expect_close(&mut ws).await, CloseCode::Policy);
    gw.stop().await;
}

#[tokio::test]
async fn sip_subprotocol_is_required() {
    let core = Core::start().await;
    let mut gw = TestGateway::start(&config(core.addr)).await;
    match ws_connect(&gw.ws_url("/sip"), None, None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 400),
        other => panic!("expected 400, got {other:?}"),
    }
    match ws_connect(&gw.ws_url("/sip"), None, Some("xmpp")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 400),
        other => panic!("expected 400, got {other:?}"),
    }
    gw.stop().await;
}

#[tokio::test]
async fn flow_gone_can_be_480() {
    let core = Core::start().await;
    let mut gw = TestGateway::start(&config_with(core.addr, "udp", "flow_gone = \"480\"\n")).await;
    let mut ws = open(&gw).await;
    let (path, gw_udp) = register(&mut ws, &core).await;
    ws.close(None).await.unwrap();
    drop(ws);
    tokio::time::sleep(Duration::from_millis(200)).await;
    core.send(&core_message(&core, &path, 1), gw_udp).await;
    let (gone, _) = core.recv().await;
    assert!(gone.starts_with("SIP/2.0 480 "), "{gone}");
    gw.stop().await;
}

#[tokio::test]
async fn rate_limit_answers_503_then_closes() {
    let core = Core::start().await;
    let mut gw = TestGateway::start(&config_with(
        core.addr,
        "udp",
        "max_messages_per_second = 3\n",
    ))
    .await;
    let mut ws = open(&gw).await;
    for i in 0..4 {
        let options = format!(
            "OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/WSS h.invalid;branch=z9hG4bKo{i}\r\nMax-Forwards: 70\r\nTo: <sip:example.com>\r\nFrom: <sip:alice@example.com>;tag=o1\r\nCall-ID: opt-{i}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        send(&mut ws, &options).await;
    }
    for _ in 0..3 {
        let (req, _) = core.recv().await;
        assert!(req.starts_with("OPTIONS "), "{req}");
    }
    let busy = next_text(&mut ws).await;
    assert!(busy.starts_with("SIP/2.0 503 "), "{busy}");
    assert_eq!(headers(&busy, "Retry-After"), ["5"]);
    assert_eq!(expect_close(&mut ws).await, CloseCode::Policy);
    gw.stop().await;
}

#[tokio::test]
async fn tcp_core() {
    let core = Core::start().await;
    let mut gw = TestGateway::start(&config_with(core.addr, "tcp", "")).await;
    let mut ws = open(&gw).await;
    send(&mut ws, REGISTER).await;
    let (mut stream, _) = tokio::time::timeout(Duration::from_secs(10), core.tcp.accept())
        .await
        .expect("a TCP connection in time")
        .unwrap();
    let mut acc = Vec::new();
    let req = read_stream_message(&mut stream, &mut acc).await;
    assert!(req.starts_with("REGISTER "), "{req}");
    assert!(headers(&req, "Via")[0].starts_with("SIP/2.0/TCP "), "{req}");
    assert!(
        headers(&req, "Path")[0].contains(";transport=tcp;"),
        "{req}"
    );
    // a CRLF keep-alive from the core is answered, then the 200 comes back
    use tokio::io::AsyncWriteExt;
    stream.write_all(b"\r\n\r\n").await.unwrap();
    let mut pong = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&pong, b"\r\n");
    stream
        .write_all(response(&req, "200 OK").as_bytes())
        .await
        .unwrap();
    let ok = next_text(&mut ws).await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    assert_eq!(headers(&ok, "Via").len(), 1, "{ok}");
    // The core drops the connection: the next request opens a new one.
    drop(stream);
    let mut reopened = None;
    for cseq in 2..40 {
        send(
            &mut ws,
            &REGISTER.replace("CSeq: 1", &format!("CSeq: {cseq}")),
        )
        .await;
        if let Ok(Ok((s, _))) =
            tokio::time::timeout(Duration::from_millis(250), core.tcp.accept()).await
        {
            reopened = Some(s);
            break;
        }
    }
    let mut stream = reopened.expect("a new TCP connection after the drop");
    let mut acc = Vec::new();
    let req = read_stream_message(&mut stream, &mut acc).await;
    assert!(req.starts_with("REGISTER "), "{req}");
    assert!(
        gw.metric(
            "ucgate_sip_core_connects_total",
            &[("route", "/sip"), ("result", "ok")]
        )
        .await
            >= 2.0
    );
    gw.stop().await;
}

#[tokio::test]
async fn core_initiated_tcp() {
    let core = Core::start().await;
    let mut gw = TestGateway::start(&config(core.addr)).await;
    let mut ws = open(&gw).await;
    let (path, gw_udp) = register(&mut ws, &core).await;
    // The core opens a TCP connection to the gateway (same port as UDP).
    let mut stream = tokio::net::TcpStream::connect(gw_udp).await.unwrap();
    use tokio::io::AsyncWriteExt;
    stream
        .write_all(core_message(&core, &path, 1).as_bytes())
        .await
        .unwrap();
    let msg = next_text(&mut ws).await;
    assert!(msg.starts_with("MESSAGE "), "{msg}");
    assert!(msg.ends_with("hello"), "{msg}");
    // The client's 200 goes back on the connection the request came on
    // (RFC 3261 §18.2.2), not over UDP, with our Via removed.
    send(&mut ws, &response(&msg, "200 OK")).await;
    let mut acc = Vec::new();
    let ok = read_stream_message(&mut stream, &mut acc).await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    assert_eq!(headers(&ok, "Via").len(), 1, "{ok}");
    assert!(headers(&ok, "Via")[0].contains("z9hG4bKcore1"), "{ok}");
    // A forged token over the same connection: 403 on that connection.
    let host = path.split('@').nth(1).unwrap().split(';').next().unwrap();
    let forged = format!("sip:{}@{host};lr", "A".repeat(27));
    stream
        .write_all(core_message(&core, &forged, 2).as_bytes())
        .await
        .unwrap();
    let resp = read_stream_message(&mut stream, &mut acc).await;
    assert!(resp.starts_with("SIP/2.0 403 "), "{resp}");
    gw.stop().await;
}

#[tokio::test]
async fn shutdown_closes_with_1001() {
    let core = Core::start().await;
    let mut gw = TestGateway::start(&config(core.addr)).await;
    let mut ws = open(&gw).await;
    let (stop, close) = tokio::join!(gw.stop(), expect_close(&mut ws));
    let () = stop;
    assert_eq!(close, CloseCode::Away);
}

/// A WebSocket over TLS to a gateway with `[server.tls]`.
async fn open_wss(
    gw: &TestGateway,
    gw_cert: rustls::pki_types::CertificateDer<'static>,
) -> WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(tls::verifying_client(&[gw_cert], &[b"http/1.1"]))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let mut req = format!("wss://localhost:{}/sip", gw.addr.port())
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
    let (ws, resp) = tokio_tungstenite::client_async(req, tls).await.unwrap();
    assert_eq!(resp.headers().get("sec-websocket-protocol").unwrap(), "sip");
    ws
}

/// A TLS core. `public_tls`: the listener has `[server.tls]` (whose
/// certificate the core's connections also get); otherwise the listener is
/// plain and `sip.tls_cert`/`sip.tls_key` serve the core's connections.
fn tls_core_config(
    dir: &std::path::Path,
    core: SocketAddr,
    ca: &std::path::Path,
    public_tls: bool,
) -> String {
    let (server, sip_tls) = if public_tls {
        (tls::tls_section(dir, &["gw"]), String::new())
    } else {
        (
            String::new(),
            format!(
                "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
                dir.join("gw.crt").display(),
                dir.join("gw.key").display()
            ),
        )
    };
    format!(
        "{server}[[route]]\npath = \"/sip\"\nkind = \"sip-websocket\"\ncore = \"sip:{core};transport=tls\"\ncore_server_name = \"localhost\"\ncore_ca_file = \"{}\"\nclose_timeout = \"300ms\"\n\n[sip]\nflow_token_key = \"{KEY}\"\n{sip_tls}",
        ca.display()
    )
}

#[tokio::test]
async fn tls_core_verified_both_directions() {
    let dir = tls::TempDir::new("sip-tls");
    let gw_cert = tls::write_cert(dir.path(), "gw", &["localhost"]);
    let (ca, core_tls) = tls::ca_and_server(dir.path(), &["localhost"]);
    let core = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let core_addr = core.local_addr().unwrap();
    let mut gw = TestGateway::start(&tls_core_config(dir.path(), core_addr, &ca, true)).await;
    let mut ws = open_wss(&gw, gw_cert.clone()).await;
    ws.send(Message::Text(REGISTER.to_string().into()))
        .await
        .unwrap();
    // The gateway opens TLS to the core, verified against the CA.
    let (tcp, _) = tokio::time::timeout(Duration::from_secs(10), core.accept())
        .await
        .expect("a connection in time")
        .unwrap();
    let mut first = tokio_rustls::TlsAcceptor::from(core_tls)
        .accept(tcp)
        .await
        .unwrap();
    let mut acc = Vec::new();
    let req = read_stream_message(&mut first, &mut acc).await;
    assert!(req.starts_with("REGISTER "), "{req}");
    let vias = headers(&req, "Via");
    assert!(vias[0].starts_with("SIP/2.0/TLS "), "{req}");
    let path = headers(&req, "Path")[0]
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_string();
    assert!(path.contains(";transport=tls;"), "{path}");
    use tokio::io::AsyncWriteExt;
    first
        .write_all(response(&req, "200 OK").as_bytes())
        .await
        .unwrap();
    let ok = next_text(&mut ws).await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    // The core opens its own TLS connection to the gateway (to the host
    // and port of our Via) and checks the gateway's certificate.
    let sent_by = vias[0]
        .trim_start_matches("SIP/2.0/TLS ")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let tcp = tokio::net::TcpStream::connect(&sent_by).await.unwrap();
    let mut second = tokio_rustls::TlsConnector::from(tls::verifying_client(&[gw_cert], &[]))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .expect("the gateway's certificate on the SIP port");
    let fake = Core {
        udp: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        tcp: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        addr: core_addr,
    };
    let msg_req = core_message(&fake, &path, 7).replace("SIP/2.0/UDP", "SIP/2.0/TLS");
    second.write_all(msg_req.as_bytes()).await.unwrap();
    let msg = next_text(&mut ws).await;
    assert!(msg.starts_with("MESSAGE "), "{msg}");
    assert!(msg.ends_with("hello"), "{msg}");
    ws.send(Message::Text(response(&msg, "200 OK").into()))
        .await
        .unwrap();
    // The 200 comes back on the core's connection, not the gateway's.
    let mut acc2 = Vec::new();
    let ok = read_stream_message(&mut second, &mut acc2).await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    assert_eq!(headers(&ok, "Via").len(), 1, "{ok}");
    assert_eq!(
        gw.metric(
            "ucgate_sip_core_connects_total",
            &[("route", "/sip"), ("result", "ok")]
        )
        .await,
        1.0
    );
    assert_eq!(
        gw.metric(
            "ucgate_sip_core_connections",
            &[("route", "/sip"), ("opened_by", "core")]
        )
        .await,
        1.0
    );
    assert_eq!(
        gw.metric(
            "ucgate_sip_messages_total",
            &[("route", "/sip"), ("from", "client"), ("type", "response")]
        )
        .await,
        1.0
    );
    gw.stop().await;
}

#[tokio::test]
async fn tls_core_with_an_untrusted_certificate_gets_503() {
    let dir = tls::TempDir::new("sip-tls-bad");
    tls::write_cert(dir.path(), "gw", &["localhost"]);
    // The core's certificate comes from a CA the gateway does not trust.
    let other = tls::TempDir::new("sip-tls-other");
    let (_other_ca, core_tls) = tls::ca_and_server(other.path(), &["localhost"]);
    let (ca, _) = tls::ca_and_server(dir.path(), &["localhost"]);
    let core = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let core_addr = core.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = core.accept().await {
            let acc = tokio_rustls::TlsAcceptor::from(core_tls.clone());
            tokio::spawn(async move {
                let _ = acc.accept(tcp).await;
            });
        }
    });
    // A plain public listener: the SIP side has its own certificate.
    let mut gw = TestGateway::start(&tls_core_config(dir.path(), core_addr, &ca, false)).await;
    let mut ws = open(&gw).await;
    // The first REGISTER waits for the connection attempt, which fails.
    ws.send(Message::Text(REGISTER.to_string().into()))
        .await
        .unwrap();
    let r = next_text(&mut ws).await;
    assert!(r.starts_with("SIP/2.0 503 "), "{r}");
    assert_eq!(headers(&r, "Retry-After"), ["5"]);
    assert!(headers(&r, "Call-ID")[0] == "reg-call-1", "{r}");
    // The next one, inside the back-off, is refused at once.
    ws.send(Message::Text(REGISTER.replace("CSeq: 1", "CSeq: 2").into()))
        .await
        .unwrap();
    let r = next_text(&mut ws).await;
    assert!(r.starts_with("SIP/2.0 503 "), "{r}");
    assert_eq!(
        gw.metric(
            "ucgate_sip_core_connects_total",
            &[("route", "/sip"), ("result", "error")]
        )
        .await,
        1.0
    );
    assert_eq!(
        gw.metric(
            "ucgate_errors_total",
            &[("route", "/sip"), ("kind", "core_unreachable")]
        )
        .await,
        2.0
    );
    gw.stop().await;
}

/// An in-dialog request from one client of the gateway naming another
/// client's flow token goes straight to that client's WebSocket (RFC 5626
/// §5.3), its response comes back the same way, and once that client is
/// gone the sender gets 430. The core sees none of it.
#[tokio::test]
async fn in_dialog_request_between_two_clients_of_the_gateway() {
    let core = Core::start().await;
    let mut gw = TestGateway::start(&config(core.addr)).await;
    let mut alice = open(&gw).await;
    let (path, _) = register(&mut alice, &core).await;
    let mut bob = open(&gw).await;
    let request = |cseq: u32| {
        format!(
            "MESSAGE sip:x1@df7jal23ls0d.invalid;transport=ws SIP/2.0\r\n\
Via: SIP/2.0/WSS b0b.invalid;branch=z9hG4bKbob{cseq}\r\n\
Route: <{path}>\r\n\
Max-Forwards: 70\r\n\
From: <sip:bob@example.com>;tag=b1\r\n\
To: <sip:alice@example.com>;tag=a1\r\n\
Call-ID: dialog-between-clients\r\n\
CSeq: {cseq} MESSAGE\r\n\
Content-Type: text/plain\r\n\
Content-Length: 5\r\n\r\nhello"
        )
    };
    send(&mut bob, &request(2)).await;
    let got = next_text(&mut alice).await;
    assert!(got.starts_with("MESSAGE "), "{got}");
    assert!(got.ends_with("hello"), "{got}");
    assert!(headers(&got, "Route").is_empty(), "our Route popped: {got}");
    send(&mut alice, &response(&got, "200 OK")).await;
    let ok = next_text(&mut bob).await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    assert_eq!(headers(&ok, "Via").len(), 1, "only bob's own Via: {ok}");
    // Alice leaves: bob's next request gets 430 from the gateway.
    alice.close(None).await.unwrap();
    drop(alice);
    tokio::time::sleep(Duration::from_millis(200)).await;
    send(&mut bob, &request(3)).await;
    let gone = next_text(&mut bob).await;
    assert!(gone.starts_with("SIP/2.0 430 Flow Failed\r\n"), "{gone}");
    assert_eq!(
        gw.metric("ucgate_sip_flow_gone_total", &[("route", "/sip")])
            .await,
        1.0
    );
    // Nothing of this reached the core (only alice's REGISTER did).
    let mut buf = [0u8; 2048];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), core.udp.recv_from(&mut buf))
            .await
            .is_err(),
        "the core got a message"
    );
    gw.stop().await;
}

#[tokio::test]
async fn keepalive_pings_flow_and_an_idle_connection_closes_after_its_last_message() {
    let core = Core::start().await;
    let gw = TestGateway::start(&config(core.addr).replace(
        "close_timeout = \"300ms\"\n",
        "close_timeout = \"300ms\"\nidle_timeout = \"600ms\"\nping_interval = \"150ms\"\n",
    ))
    .await;
    let mut ws = open(&gw).await;
    // RFC 5626 keep-alives are data: each one postpones the idle close.
    let start = std::time::Instant::now();
    for _ in 0..4 {
        send(&mut ws, "\r\n\r\n").await;
        assert_eq!(next_text(&mut ws).await, "\r\n");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let quiet_since = std::time::Instant::now();
    assert!(quiet_since - start >= Duration::from_millis(1000));
    let got = listen_until_close(&mut ws).await;
    let (pings, code, reason) = (got.pings, got.code, got.reason);
    assert!(got.texts.is_empty(), "{:?}", got.texts);
    // closed 600 ms after the last message (less the 250 ms slept after it)
    assert!(
        quiet_since.elapsed() >= Duration::from_millis(300),
        "closed too early: {:?}",
        quiet_since.elapsed()
    );
    assert!(pings >= 1, "pings: {pings}");
    assert_eq!((code, reason.as_str()), (CloseCode::Normal, "idle"));
    // tungstenite answers the close while the stream is read to its end;
    // the gateway counts the close once the handshake is done
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {}
    assert_eq!(
        gw.metric(
            "ucgate_ws_closes_total",
            &[("route", "/sip"), ("reason", "idle")]
        )
        .await,
        1.0
    );
}
