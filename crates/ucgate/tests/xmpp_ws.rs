//! XMPP over WebSocket (RFC 7395) through the gateway to a scripted
//! in-process XMPP server that requires STARTTLS (test CA), including a
//! wrong-certificate case, unknown domains and bad client input.

mod common;

use std::time::Duration;

use common::tls::*;
use common::xmpp_server::*;
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";

fn gateway_config(server: std::net::SocketAddr, ca: &std::path::Path, extra_route: &str) -> String {
    format!(
        "[[route]]\npath = \"/xmpp-websocket\"\nkind = \"xmpp-websocket\"\n{extra_route}\n\n[xmpp]\nwebsocket_url = \"wss://chat.example/xmpp-websocket\"\n\n[xmpp.domains.\"localhost\"]\naddress = \"{server}\"\ntls = \"starttls\"\nca_file = \"{}\"\n",
        ca.display()
    )
}

async fn next_text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message in time")
        {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

async fn send(ws: &mut Ws, s: &str) {
    ws.send(Message::Text(s.to_string().into())).await.unwrap();
}

async fn expect_close(ws: &mut Ws) -> CloseCode {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("close in time")
        {
            Some(Ok(Message::Close(Some(f)))) => return f.code,
            Some(Ok(Message::Ping(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

async fn open(gw: &TestGateway, domain: &str) -> (Ws, String) {
    let (mut ws, resp) = ws_connect(&gw.ws_url("/xmpp-websocket"), None, Some("xmpp"))
        .await
        .unwrap();
    assert_eq!(
        resp.headers().get("sec-websocket-protocol").unwrap(),
        "xmpp"
    );
    send(
        &mut ws,
        &format!("<open xmlns='{FRAMING}' to='{domain}' version='1.0'/>"),
    )
    .await;
    let first = next_text(&mut ws).await;
    (ws, first)
}

#[tokio::test]
async fn login_chat_and_clean_close_through_starttls() {
    let dir = TempDir::new("xmpp");
    let (ca, server_tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, seen) = scripted_server(server_tls).await;
    let gw = TestGateway::start(&gateway_config(server, &ca, "")).await;
    let (mut ws, first) = open(&gw, "localhost").await;
    assert_eq!(
        first,
        format!("<open xmlns='{FRAMING}' from='localhost' id='s2' version='1.0' xml:lang='en'/>")
    );
    let features = next_text(&mut ws).await;
    assert!(
        features.contains("PLAIN") && !features.contains("starttls"),
        "{features}"
    );
    assert!(features.starts_with(
        "<stream:features xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
    ));
    send(&mut ws, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>").await;
    assert_eq!(
        next_text(&mut ws).await,
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
    );
    send(
        &mut ws,
        &format!("<open xmlns='{FRAMING}' to='localhost' version='1.0'/>"),
    )
    .await;
    assert!(next_text(&mut ws).await.contains("id='s3'"));
    assert!(next_text(&mut ws)
        .await
        .contains("urn:ietf:params:xml:ns:xmpp-bind"));
    send(&mut ws, "<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>").await;
    assert_eq!(next_text(&mut ws).await, "<iq xmlns='jabber:client' type='result' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/web</jid></bind></iq>");
    send(&mut ws, "<message xmlns='jabber:client' to='bob@localhost' type='chat'><body>hello &amp; bye</body></message>").await;
    assert_eq!(next_text(&mut ws).await, "<message xmlns='jabber:client' from='bob@localhost' type='chat'><body>hello &amp; bye</body></message>");
    send(&mut ws, &format!("<close xmlns='{FRAMING}'/>")).await;
    assert_eq!(
        next_text(&mut ws).await,
        format!("<close xmlns='{FRAMING}'/>")
    );
    assert_eq!(expect_close(&mut ws).await, CloseCode::Normal);
    while ws.next().await.is_some() {} // sends our close reply
    {
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen.headers.len(),
            3,
            "initial, after TLS, after SASL: {:?}",
            seen.headers
        );
        assert!(seen.headers.iter().all(|h| h.contains("to='localhost'")));
        assert!(seen.closed_cleanly);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        gw.metric(
            "ucgate_route_connections_active",
            &[("route", "/xmpp-websocket")]
        )
        .await,
        0.0
    );
    assert_eq!(
        gw.metric(
            "ucgate_ws_closes_total",
            &[("route", "/xmpp-websocket"), ("reason", "closed")]
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn wrong_certificate_is_a_clear_stream_error() {
    let dir = TempDir::new("xmpp-bad");
    let (_real_ca, server_tls) = ca_and_server(dir.path(), &["localhost"]);
    // the gateway trusts another CA
    let other = TempDir::new("xmpp-other");
    let (other_ca, _) = ca_and_server(other.path(), &["localhost"]);
    let (server, _) = scripted_server(server_tls).await;
    let gw = TestGateway::start(&gateway_config(server, &other_ca, "")).await;
    let (mut ws, first) = open(&gw, "localhost").await;
    assert!(first.starts_with("<open "));
    let err = next_text(&mut ws).await;
    assert!(
        err.contains("<remote-connection-failed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{err}"
    );
    assert_eq!(
        next_text(&mut ws).await,
        format!("<close xmlns='{FRAMING}'/>")
    );
    assert_eq!(expect_close(&mut ws).await, CloseCode::Normal);
    assert_eq!(
        gw.metric(
            "ucgate_errors_total",
            &[
                ("route", "/xmpp-websocket"),
                ("side", "backend"),
                ("kind", "tls")
            ]
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn unknown_domain_gets_host_unknown_and_nothing_is_dialed() {
    let dir = TempDir::new("xmpp-unknown");
    let (ca, server_tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, seen) = scripted_server(server_tls).await;
    let gw = TestGateway::start(&gateway_config(server, &ca, "")).await;
    let (mut ws, first) = open(&gw, "evil.example").await;
    assert_eq!(
        first,
        format!("<open xmlns='{FRAMING}' from='evil.example' version='1.0'/>")
    );
    assert!(next_text(&mut ws).await.contains("<host-unknown "));
    assert_eq!(
        next_text(&mut ws).await,
        format!("<close xmlns='{FRAMING}'/>")
    );
    assert_eq!(expect_close(&mut ws).await, CloseCode::Normal);
    assert!(seen.lock().unwrap().headers.is_empty());
}

#[tokio::test]
async fn unreachable_server_is_remote_connection_failed() {
    let dir = TempDir::new("xmpp-dead");
    let (ca, _) = ca_and_server(dir.path(), &["localhost"]);
    let dead = dead_address().await;
    let gw = TestGateway::start(&gateway_config(dead, &ca, "")).await;
    let (mut ws, _) = open(&gw, "localhost").await;
    assert!(next_text(&mut ws)
        .await
        .contains("<remote-connection-failed "));
}

#[tokio::test]
async fn the_xmpp_subprotocol_is_required_and_binary_closes_with_1003() {
    let dir = TempDir::new("xmpp-proto");
    let (ca, server_tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, _) = scripted_server(server_tls).await;
    let gw = TestGateway::start(&gateway_config(server, &ca, "")).await;
    match ws_connect(&gw.ws_url("/xmpp-websocket"), None, None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 400),
        other => panic!("expected 400, got {other:?}"),
    }
    let (mut ws, _) = ws_connect(&gw.ws_url("/xmpp-websocket"), None, Some("xmpp"))
        .await
        .unwrap();
    ws.send(Message::Binary(bytes::Bytes::from_static(b"<open/>")))
        .await
        .unwrap();
    assert_eq!(expect_close(&mut ws).await, CloseCode::Unsupported);
}

#[tokio::test]
async fn malformed_client_xml_gets_not_well_formed() {
    let dir = TempDir::new("xmpp-bad-xml");
    let (ca, server_tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, _) = scripted_server(server_tls).await;
    let gw = TestGateway::start(&gateway_config(server, &ca, "")).await;
    let (mut ws, _) = open(&gw, "localhost").await;
    next_text(&mut ws).await; // features
    send(
        &mut ws,
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>unclosed",
    )
    .await;
    assert!(next_text(&mut ws).await.contains("<not-well-formed "));
    assert_eq!(
        next_text(&mut ws).await,
        format!("<close xmlns='{FRAMING}'/>")
    );
    assert_eq!(expect_close(&mut ws).await, CloseCode::Normal);
    assert_eq!(
        gw.metric(
            "ucgate_errors_total",
            &[
                ("route", "/xmpp-websocket"),
                ("side", "client"),
                ("kind", "not-well-formed")
            ]
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn shutdown_sends_system_shutdown_close_and_1001() {
    let dir = TempDir::new("xmpp-shutdown");
    let (ca, server_tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, seen) = scripted_server(server_tls).await;
    let config =
        gateway_config(server, &ca, "").replace("[xmpp]\n", "[xmpp]\ndrain_close_stream = true\n");
    let mut gw = TestGateway::start(&config).await;
    let (mut ws, _) = open(&gw, "localhost").await;
    log_in(&mut ws).await;
    gw.control.shutdown.cancel();
    assert!(next_text(&mut ws).await.contains("<system-shutdown "));
    assert_eq!(
        next_text(&mut ws).await,
        format!("<close xmlns='{FRAMING}'/>")
    );
    assert_eq!(expect_close(&mut ws).await, CloseCode::Away);
    while ws.next().await.is_some() {}
    gw.stop().await;
    assert!(seen.lock().unwrap().closed_cleanly);
}

#[tokio::test]
async fn the_drain_cuts_the_stream_without_closing_it_for_resumption() {
    let dir = TempDir::new("xmpp-drain-cut");
    let (ca, server_tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, seen) = scripted_server(server_tls).await;
    let mut gw = TestGateway::start(&gateway_config(server, &ca, "")).await;
    let (mut ws, _) = open(&gw, "localhost").await;
    log_in(&mut ws).await;
    gw.control.shutdown.cancel();
    // no stream error and no <close/>: the next frame is the close 1001
    assert_eq!(expect_close(&mut ws).await, CloseCode::Away);
    while ws.next().await.is_some() {}
    gw.stop().await;
    // the server saw its connection end, without </stream:stream>
    tokio::time::timeout(Duration::from_secs(5), async {
        while !seen.lock().unwrap().eof {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the server connection closed");
    assert!(!seen.lock().unwrap().closed_cleanly);
}

/// SASL, restart and bind on a stream whose features were not read yet.
async fn log_in(ws: &mut Ws) {
    assert!(next_text(ws).await.contains("PLAIN"));
    send(ws, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>").await;
    assert!(next_text(ws).await.contains("<success "));
    send(
        ws,
        &format!("<open xmlns='{FRAMING}' to='localhost' version='1.0'/>"),
    )
    .await;
    assert!(next_text(ws).await.contains("id='s3'"));
    assert!(next_text(ws).await.contains("xmpp-bind"));
    send(ws, "<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>").await;
    assert!(next_text(ws).await.contains("alice@localhost/web"));
}

#[tokio::test]
async fn host_meta_advertises_the_websocket_url() {
    let dir = TempDir::new("xmpp-hm");
    let (ca, _) = ca_and_server(dir.path(), &["localhost"]);
    let gw = TestGateway::start(&gateway_config("127.0.0.1:5222".parse().unwrap(), &ca, "")).await;
    let raw = raw_request(
        gw.addr,
        &format!(
            "GET /.well-known/host-meta HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            gw.addr
        ),
    )
    .await;
    let (status, body) = parse_response(&raw);
    assert_eq!(status, 200);
    assert!(raw
        .to_ascii_lowercase()
        .contains("access-control-allow-origin: *"));
    assert!(raw
        .to_ascii_lowercase()
        .contains("content-type: application/xrd+xml"));
    assert!(body.contains("<Link rel=\"urn:xmpp:alt-connections:websocket\" href=\"wss://chat.example/xmpp-websocket\"/>"), "{body}");
    let raw = raw_request(
        gw.addr,
        &format!(
            "GET /.well-known/host-meta.json HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            gw.addr
        ),
    )
    .await;
    let (status, body) = parse_response(&raw);
    assert_eq!(status, 200);
    assert!(
        body.contains("\"rel\":\"urn:xmpp:alt-connections:websocket\""),
        "{body}"
    );
    assert!(
        body.contains("\"href\":\"wss://chat.example/xmpp-websocket\""),
        "{body}"
    );
}

#[tokio::test]
async fn a_silent_server_hits_the_negotiation_timeout() {
    // accepts TCP and never says anything
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let dir = TempDir::new("xmpp-silent");
    let (ca, _) = ca_and_server(dir.path(), &["localhost"]);
    let cfg = gateway_config(server, &ca, "")
        .replace("[xmpp]\n", "[xmpp]\nnegotiation_timeout = \"300ms\"\n");
    let gw = TestGateway::start(&cfg).await;
    let start = std::time::Instant::now();
    let (mut ws, first) = open(&gw, "localhost").await;
    assert!(first.starts_with("<open "), "{first}");
    assert!(next_text(&mut ws)
        .await
        .contains("<remote-connection-failed "));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

/// Opens a stream, logs in as alice and binds (scripted server).
async fn logged_in(gw: &TestGateway) -> Ws {
    let (mut ws, _) = open(gw, "localhost").await;
    assert!(next_text(&mut ws).await.contains("PLAIN"));
    send(&mut ws, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>").await;
    assert!(next_text(&mut ws).await.starts_with("<success "));
    send(
        &mut ws,
        &format!("<open xmlns='{FRAMING}' to='localhost' version='1.0'/>"),
    )
    .await;
    assert!(next_text(&mut ws).await.starts_with("<open "));
    assert!(next_text(&mut ws).await.contains("xmpp-bind"));
    send(&mut ws, "<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>").await;
    assert!(next_text(&mut ws).await.contains("alice@localhost/web"));
    ws
}

fn drop_message(how: &str) -> String {
    format!("<message xmlns='jabber:client' to='bob@localhost' type='chat'><body>drop {how}</body></message>")
}

#[tokio::test]
async fn a_lost_server_connection_is_remote_connection_failed() {
    let dir = TempDir::new("xmpp-lost");
    let (ca, server_tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, _) = scripted_server(server_tls).await;
    let gw = TestGateway::start(&gateway_config(server, &ca, "")).await;
    // a reset, and a close without </stream:stream>
    for how in ["reset", "eof"] {
        let mut ws = logged_in(&gw).await;
        send(&mut ws, &drop_message(how)).await;
        assert_eq!(
            next_text(&mut ws).await,
            "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><remote-connection-failed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>the connection to the XMPP server was lost</text></stream:error>",
            "{how}"
        );
        assert_eq!(
            next_text(&mut ws).await,
            format!("<close xmlns='{FRAMING}'/>")
        );
        assert_eq!(expect_close(&mut ws).await, CloseCode::Normal);
        while ws.next().await.is_some() {}
    }
    assert_eq!(
        gw.metric(
            "ucgate_errors_total",
            &[
                ("route", "/xmpp-websocket"),
                ("side", "backend"),
                ("kind", "remote-connection-failed")
            ]
        )
        .await,
        2.0
    );
}

#[tokio::test]
async fn the_servers_own_stream_error_reaches_the_client_whole() {
    let dir = TempDir::new("xmpp-server-error");
    let (ca, server_tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, _) = scripted_server(server_tls).await;
    let gw = TestGateway::start(&gateway_config(server, &ca, "")).await;
    let mut ws = logged_in(&gw).await;
    send(&mut ws, &drop_message("shutdown")).await;
    assert_eq!(
        next_text(&mut ws).await,
        format!("<stream:error xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>{SHUTDOWN_TEXT}</text></stream:error>")
    );
    assert_eq!(
        next_text(&mut ws).await,
        format!("<close xmlns='{FRAMING}'/>")
    );
    assert_eq!(expect_close(&mut ws).await, CloseCode::Normal);
}

#[tokio::test]
async fn a_quiet_stream_gets_pings_then_connection_timeout_at_the_idle_deadline() {
    let dir = TempDir::new("xmpp-idle");
    let (ca, server_tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, _seen) = scripted_server(server_tls).await;
    let gw = TestGateway::start(&gateway_config(
        server,
        &ca,
        "idle_timeout = \"700ms\"\nping_interval = \"150ms\"",
    ))
    .await;
    let mut ws = logged_in(&gw).await;
    let quiet_since = std::time::Instant::now();
    let UntilClose {
        pings, texts, code, ..
    } = listen_until_close(&mut ws).await;
    // The pongs tungstenite sends back are frames, not data: the idle
    // deadline counts from the last data message.
    assert!(
        quiet_since.elapsed() >= Duration::from_millis(650),
        "closed too early: {:?}",
        quiet_since.elapsed()
    );
    assert!(pings >= 3, "pings: {pings}");
    assert_eq!(code, CloseCode::Normal);
    assert!(
        texts.iter().any(|t| t.contains("connection-timeout")),
        "{texts:?}"
    );
    // counted once the close handshake is done (read on: tungstenite answers)
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {}
    assert_eq!(
        gw.metric(
            "ucgate_ws_closes_total",
            &[("route", "/xmpp-websocket"), ("reason", "idle")]
        )
        .await,
        1.0
    );
}
