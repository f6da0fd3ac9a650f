//! TLS on the public listener: certificates made at test time, SNI choice,
//! reload without dropping connections, and WebSockets over HTTP/2 (RFC 8441).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::tls::*;
use common::*;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

async fn handshake(
    gw: &TestGateway,
    cfg: std::sync::Arc<rustls::ClientConfig>,
    sni: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(gw.addr).await?;
    TlsConnector::from(cfg)
        .connect(ServerName::try_from(sni.to_string()).unwrap(), tcp)
        .await
}

async fn presented(gw: &TestGateway, sni: &str) -> Vec<u8> {
    let (cfg, rec) = recording_client(&[b"http/1.1"]);
    handshake(gw, cfg, sni).await.expect("TLS handshake");
    let der = rec.seen.lock().unwrap().clone().expect("a certificate");
    der.to_vec()
}

#[tokio::test]
async fn sni_picks_the_matching_certificate_and_defaults_to_the_first() {
    let dir = TempDir::new("sni");
    let a = write_cert(dir.path(), "a", &["a.test", "localhost"]);
    let b = write_cert(dir.path(), "b", &["b.test", "*.wild.test"]);
    let echo = echo_backend().await;
    let gw = TestGateway::start(&format!(
        "{}{}",
        tls_section(dir.path(), &["a", "b"]),
        tunnel_route("/echo", echo, "")
    ))
    .await;
    assert_eq!(presented(&gw, "a.test").await, a.to_vec());
    assert_eq!(presented(&gw, "b.test").await, b.to_vec());
    assert_eq!(presented(&gw, "x.wild.test").await, b.to_vec());
    assert_eq!(presented(&gw, "unknown.test").await, a.to_vec());
    // a verifying client trusting b gets through for b.test
    let cfg = verifying_client(std::slice::from_ref(&b), &[b"http/1.1"]);
    handshake(&gw, cfg, "b.test")
        .await
        .expect("verified handshake");
    assert!(
        gw.metric(
            "ucgate_tls_handshake_seconds_count",
            &[("listener", "main")]
        )
        .await
            >= 5.0
    );
}

#[tokio::test]
async fn wss_over_http1_echoes() {
    let dir = TempDir::new("wss");
    let a = write_cert(dir.path(), "a", &["localhost"]);
    let echo = echo_backend().await;
    let gw = TestGateway::start(&format!(
        "{}{}",
        tls_section(dir.path(), &["a"]),
        tunnel_route("/echo", echo, "")
    ))
    .await;
    let tls = handshake(&gw, verifying_client(&[a], &[b"http/1.1"]), "localhost")
        .await
        .unwrap();
    let (mut ws, resp) =
        tokio_tungstenite::client_async(format!("wss://localhost:{}/echo", gw.addr.port()), tls)
            .await
            .unwrap();
    assert_eq!(resp.status(), 101);
    ws.send(Message::Binary(Bytes::from_static(b"over tls")))
        .await
        .unwrap();
    let got = ws.next().await.unwrap().unwrap();
    assert_eq!(got.into_data(), Bytes::from_static(b"over tls"));
}

#[tokio::test]
async fn sighup_reload_is_seen_by_new_connections_and_keeps_old_ones() {
    let dir = TempDir::new("reload");
    let old = write_cert(dir.path(), "a", &["localhost"]);
    let echo = echo_backend().await;
    let gw = TestGateway::start(&format!(
        "{}{}",
        tls_section(dir.path(), &["a"]),
        tunnel_route("/echo", echo, "")
    ))
    .await;
    assert_eq!(presented(&gw, "localhost").await, old.to_vec());
    // an open wss connection across the reload
    let tls = handshake(
        &gw,
        verifying_client(std::slice::from_ref(&old), &[b"http/1.1"]),
        "localhost",
    )
    .await
    .unwrap();
    let (mut ws, _) =
        tokio_tungstenite::client_async(format!("wss://localhost:{}/echo", gw.addr.port()), tls)
            .await
            .unwrap();

    let new = write_cert(dir.path(), "a", &["localhost"]);
    assert_ne!(old, new);
    gw.control.reload.notify_one();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while gw
        .metric("ucgate_tls_reloads_total", &[("result", "ok")])
        .await
        < 1.0
    {
        assert!(std::time::Instant::now() < deadline, "reload not done");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(presented(&gw, "localhost").await, new.to_vec());
    ws.send(Message::Binary(Bytes::from_static(b"still here")))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap().into_data(),
        Bytes::from_static(b"still here")
    );

    // a broken file keeps the current certificate
    std::fs::write(dir.path().join("a.key"), "not a key").unwrap();
    gw.control.reload.notify_one();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while gw
        .metric("ucgate_tls_reloads_total", &[("result", "error")])
        .await
        < 1.0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "failed reload not counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(presented(&gw, "localhost").await, new.to_vec());
}

/// An expired certificate put in place before SIGHUP is refused: the
/// current one stays (an expired certificate would fail every client).
#[tokio::test]
async fn a_reload_refuses_an_expired_certificate_and_keeps_the_current_one() {
    let dir = TempDir::new("reload-expired");
    let current = write_cert(dir.path(), "a", &["localhost"]);
    let echo = echo_backend().await;
    let gw = TestGateway::start(&format!(
        "{}{}",
        tls_section(dir.path(), &["a"]),
        tunnel_route("/echo", echo, "")
    ))
    .await;
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let expired = params.self_signed(&key).unwrap();
    std::fs::write(dir.path().join("a.crt"), expired.pem()).unwrap();
    std::fs::write(dir.path().join("a.key"), key.serialize_pem()).unwrap();
    gw.control.reload.notify_one();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while gw
        .metric("ucgate_tls_reloads_total", &[("result", "error")])
        .await
        < 1.0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the expired certificate was not refused"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(presented(&gw, "localhost").await, current.to_vec());
}

#[tokio::test]
async fn a_stalled_tls_handshake_times_out_without_blocking_others() {
    let dir = TempDir::new("hs");
    let a = write_cert(dir.path(), "a", &["localhost"]);
    let echo = echo_backend().await;
    let cfg = format!(
        "{}{}",
        tls_section(dir.path(), &["a"]).replacen(
            "listen = \"127.0.0.1:0\"\n",
            "listen = \"127.0.0.1:0\"\nhandshake_timeout = \"300ms\"\n",
            1
        ),
        tunnel_route("/echo", echo, "")
    );
    let gw = TestGateway::start(&cfg).await;
    // a client that connects and says nothing
    let mut idle = TcpStream::connect(gw.addr).await.unwrap();
    // meanwhile a real client is served at once
    handshake(&gw, verifying_client(&[a], &[b"http/1.1"]), "localhost")
        .await
        .unwrap();
    let mut buf = [0u8; 1];
    let r = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::io::AsyncReadExt::read(&mut idle, &mut buf),
    )
    .await;
    assert!(
        matches!(r, Ok(Ok(0)) | Ok(Err(_))),
        "silent client not dropped: {r:?}"
    );
    assert_eq!(
        gw.metric("ucgate_errors_total", &[("kind", "tls_handshake_timeout")])
            .await,
        1.0
    );
}

/// Opens an RFC 8441 WebSocket on an HTTP/2 connection.
async fn h2_websocket(
    sender: &mut hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    port: u16,
    path: &str,
    origin: Option<&str>,
) -> Result<WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>, http::StatusCode> {
    let mut b = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(format!("https://localhost:{port}{path}"))
        .header("sec-websocket-version", "13")
        .extension(hyper::ext::Protocol::from_static("websocket"));
    if let Some(o) = origin {
        b = b.header("origin", o);
    }
    let req = b.body(Empty::<Bytes>::new()).unwrap();
    let mut resp = sender.send_request(req).await.unwrap();
    if resp.status() != 200 {
        return Err(resp.status());
    }
    let up = hyper::upgrade::on(&mut resp).await.unwrap();
    Ok(WebSocketStream::from_raw_socket(TokioIo::new(up), Role::Client, None).await)
}

#[tokio::test]
async fn websockets_over_http2_share_one_connection() {
    let dir = TempDir::new("h2");
    let a = write_cert(dir.path(), "a", &["localhost"]);
    let echo = echo_backend().await;
    let routes = format!(
        "{}{}",
        tunnel_route(
            "/echo",
            echo,
            "origins = [\"https://app.example\"]\nmax_message_size = \"128KiB\""
        ),
        tunnel_route("/other", echo, "max_message_size = \"128KiB\"")
    );
    let gw = TestGateway::start(&format!("{}{}", tls_section(dir.path(), &["a"]), routes)).await;
    let tls = handshake(&gw, verifying_client(&[a], &[b"h2"]), "localhost")
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    // a plain request first: 404 for an unknown path, 426 for a WebSocket path
    let resp = sender
        .send_request(
            http::Request::get(format!("https://localhost:{}/nope", gw.addr.port()))
                .body(Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = sender
        .send_request(
            http::Request::get(format!("https://localhost:{}/echo", gw.addr.port()))
                .body(Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 426);
    assert!(
        resp.headers().get("upgrade").is_none(),
        "no Upgrade header on HTTP/2"
    );

    let port = gw.addr.port();
    let mut sockets = Vec::new();
    for i in 0..3 {
        let path = if i == 2 { "/other" } else { "/echo" };
        let origin = if i == 2 {
            None
        } else {
            Some("https://app.example")
        };
        sockets.push(
            h2_websocket(&mut sender, port, path, origin)
                .await
                .expect("200"),
        );
    }
    for (i, ws) in sockets.iter_mut().enumerate() {
        let payload = Bytes::from(vec![i as u8; 70_000]); // larger than the default h2 window
        ws.send(Message::Binary(payload.clone())).await.unwrap();
        let mut got = Vec::new();
        while got.len() < payload.len() {
            got.extend_from_slice(&ws.next().await.unwrap().unwrap().into_data());
        }
        assert_eq!(got, payload.to_vec());
    }
    assert_eq!(
        h2_websocket(&mut sender, port, "/echo", Some("https://evil.example"))
            .await
            .err(),
        Some(http::StatusCode::FORBIDDEN)
    );
    assert_eq!(
        gw.metric("ucgate_connections_accepted_total", &[("listener", "main")])
            .await,
        1.0
    );
    assert_eq!(
        gw.metric(
            "ucgate_ws_upgrades_total",
            &[("route", "/echo"), ("http", "h2")]
        )
        .await,
        2.0
    );
    assert_eq!(
        gw.metric(
            "ucgate_ws_upgrades_total",
            &[("route", "/other"), ("http", "h2")]
        )
        .await,
        1.0
    );
    assert_eq!(
        gw.metric("ucgate_route_connections_active", &[("route", "/echo")])
            .await,
        2.0
    );
    // closing one stream leaves the others working
    let mut first = sockets.remove(0);
    first.close(None).await.unwrap();
    let ws = &mut sockets[0];
    ws.send(Message::Text("ok".into())).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap().into_data(),
        Bytes::from_static(b"ok")
    );
}
