//! The generic WebSocket ⇄ TCP tunnel against in-process backends.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn next_close(ws: &mut Ws) -> (CloseCode, String) {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(f))))) => return (f.code, f.reason.to_string()),
            Ok(Some(Ok(Message::Close(None)))) => panic!("close without a code"),
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn echo_round_trips_text_and_binary_up_to_the_limit() {
    let echo = echo_backend().await;
    let gw = TestGateway::start(&tunnel_route("/echo", echo, "max_message_size = \"64KiB\"")).await;
    let (mut ws, resp) = ws_connect(&gw.ws_url("/echo"), None, None).await.unwrap();
    assert_eq!(resp.status(), 101);
    for size in [1usize, 2, 125, 126, 127, 1000, 4096, 8192, 65535, 65536] {
        let data = pattern(size, size as u8);
        ws.send(Message::Binary(Bytes::from(data.clone())))
            .await
            .unwrap();
        assert_eq!(read_ws_bytes(&mut ws, size).await, data, "binary {size}");
    }
    // text frames from the client are accepted as bytes
    let text = "héllo wörld ✓".repeat(100);
    ws.send(Message::Text(text.clone().into())).await.unwrap();
    assert_eq!(read_ws_bytes(&mut ws, text.len()).await, text.as_bytes());
    ws.close(None).await.unwrap();
    let m = gw.metrics().await;
    let bytes_in = metric_value(
        &m,
        "ucgate_bytes_total",
        &[("route", "/echo"), ("direction", "client_to_backend")],
    )
    .unwrap();
    let expected: usize = [1usize, 2, 125, 126, 127, 1000, 4096, 8192, 65535, 65536]
        .iter()
        .sum::<usize>()
        + text.len();
    assert_eq!(bytes_in as usize, expected);
    assert_eq!(
        metric_value(
            &m,
            "ucgate_messages_total",
            &[("route", "/echo"), ("direction", "client_to_backend")]
        ),
        Some(11.0)
    );
    assert_eq!(
        metric_value(
            &m,
            "ucgate_ws_upgrades_total",
            &[("route", "/echo"), ("http", "h1")]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn bytes_the_backend_sends_first_are_delivered() {
    // A server-speaks-first protocol (e.g. VNC's "RFB 003.008\n" banner).
    let (addr, mut conns) = manual_backend().await;
    tokio::spawn(async move {
        let mut s = conns.recv().await.unwrap();
        s.write_all(b"RFB 003.008\n").await.unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.unwrap();
        s.write_all(&buf).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let gw = TestGateway::start(&tunnel_route("/vnc", addr, "")).await;
    let (mut ws, _) = ws_connect(&gw.ws_url("/vnc"), None, Some("binary"))
        .await
        .unwrap();
    assert_eq!(read_ws_bytes(&mut ws, 12).await, b"RFB 003.008\n");
    ws.send(Message::Binary(Bytes::from_static(b"RFB 003.008\n")))
        .await
        .unwrap();
    assert_eq!(read_ws_bytes(&mut ws, 12).await, b"RFB 003.008\n");
}

#[tokio::test]
async fn websockify_binary_subprotocol_is_selected() {
    let echo = echo_backend().await;
    let gw = TestGateway::start(&tunnel_route("/echo", echo, "")).await;
    let (_ws, resp) = ws_connect(&gw.ws_url("/echo"), None, Some("binary"))
        .await
        .unwrap();
    assert_eq!(
        resp.headers().get("sec-websocket-protocol").unwrap(),
        "binary"
    );
}

#[tokio::test]
async fn client_close_reaches_the_backend_as_eof_after_all_data() {
    let (addr, mut conns) = manual_backend().await;
    let gw = TestGateway::start(&tunnel_route("/t", addr, "")).await;
    let (mut ws, _) = ws_connect(&gw.ws_url("/t"), None, None).await.unwrap();
    let mut backend = conns.recv().await.unwrap();
    let data = pattern(50_000, 7);
    for chunk in data.chunks(5000) {
        ws.send(Message::Binary(Bytes::copy_from_slice(chunk)))
            .await
            .unwrap();
    }
    ws.close(None).await.unwrap();
    // The backend reads every byte, then a clean EOF (not a reset).
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), backend.read_to_end(&mut got))
        .await
        .expect("EOF in time")
        .expect("clean EOF, not an error");
    assert_eq!(got, data);
    // and the client gets its close handshake completed
    let end = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap();
    assert!(
        matches!(
            end,
            None | Some(Err(WsError::ConnectionClosed)) | Some(Ok(Message::Close(_)))
        ),
        "{end:?}"
    );
}

#[tokio::test]
async fn backend_half_close_delivers_everything_and_keeps_the_other_direction() {
    let (addr, mut conns) = manual_backend().await;
    let gw = TestGateway::start(&tunnel_route("/t", addr, "")).await;
    let (mut ws, _) = ws_connect(&gw.ws_url("/t"), None, None).await.unwrap();
    let mut backend = conns.recv().await.unwrap();
    let data = pattern(30_000, 3);
    backend.write_all(&data).await.unwrap();
    backend.shutdown().await.unwrap(); // FIN: the backend is done sending, still reading
                                       // The client gets every byte before the close.
    assert_eq!(read_ws_bytes(&mut ws, data.len()).await, data);
    // Data the client sends before it has processed the close still reaches the backend.
    ws.send(Message::Binary(Bytes::from_static(b"late but not lost")))
        .await
        .unwrap();
    let (code, reason) = next_close(&mut ws).await;
    assert_eq!(code, CloseCode::Normal);
    assert_eq!(reason, "backend closed");
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), backend.read_to_end(&mut got))
        .await
        .expect("backend sees EOF after the client's close")
        .unwrap();
    assert_eq!(got, b"late but not lost");
}

#[tokio::test]
async fn backend_unreachable_is_a_502_before_the_upgrade() {
    let dead = dead_address().await;
    let gw = TestGateway::start(&tunnel_route("/dead", dead, "connect_timeout = \"2s\"")).await;
    match ws_connect(&gw.ws_url("/dead"), None, None).await {
        Err(WsError::Http(resp)) => assert_eq!(resp.status(), 502),
        other => panic!("expected HTTP 502, got {other:?}"),
    }
    assert_eq!(
        gw.metric(
            "ucgate_errors_total",
            &[("route", "/dead"), ("side", "backend"), ("kind", "connect")]
        )
        .await,
        1.0
    );
    assert_eq!(
        gw.metric(
            "ucgate_http_responses_total",
            &[("route", "/dead"), ("code", "502")]
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn origins_are_checked_before_the_upgrade() {
    let echo = echo_backend().await;
    let routes = format!(
        "{}{}",
        tunnel_route(
            "/listed",
            echo,
            "origins = [\"https://app.example\", \"https://*.chat.example\"]"
        ),
        tunnel_route("/same", echo, "")
    );
    let gw = TestGateway::start(&routes).await;
    // listed
    assert!(
        ws_connect(&gw.ws_url("/listed"), Some("https://app.example"), None)
            .await
            .is_ok()
    );
    assert!(
        ws_connect(&gw.ws_url("/listed"), Some("https://x.chat.example"), None)
            .await
            .is_ok()
    );
    for bad in ["https://evil.example", "http://app.example", "null"] {
        match ws_connect(&gw.ws_url("/listed"), Some(bad), None).await {
            Err(WsError::Http(resp)) => assert_eq!(resp.status(), 403, "{bad}"),
            other => panic!("expected 403 for {bad}, got {other:?}"),
        }
    }
    // default: same origin only; non-browser clients (no Origin) pass
    let own = format!("http://{}", gw.addr);
    assert!(ws_connect(&gw.ws_url("/same"), Some(&own), None)
        .await
        .is_ok());
    assert!(ws_connect(&gw.ws_url("/same"), None, None).await.is_ok());
    match ws_connect(&gw.ws_url("/same"), Some("http://localhost:1"), None).await {
        Err(WsError::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    assert_eq!(
        gw.metric(
            "ucgate_ws_refusals_total",
            &[("route", "/listed"), ("reason", "origin_forbidden")]
        )
        .await,
        3.0
    );
}

#[tokio::test]
async fn subprotocols_are_negotiated_and_required() {
    let echo = echo_backend().await;
    let routes = format!(
        "{}{}",
        tunnel_route(
            "/req",
            echo,
            "subprotocols = [\"vnc\", \"binary\"]\nrequire_subprotocol = true"
        ),
        tunnel_route("/opt", echo, "")
    );
    let gw = TestGateway::start(&routes).await;
    let (_ws, resp) = ws_connect(&gw.ws_url("/req"), None, Some("chat, binary, vnc"))
        .await
        .unwrap();
    assert_eq!(
        resp.headers().get("sec-websocket-protocol").unwrap(),
        "binary"
    );
    for offer in [None, Some("chat")] {
        match ws_connect(&gw.ws_url("/req"), None, offer).await {
            Err(WsError::Http(resp)) => {
                assert_eq!(resp.status(), 400, "{offer:?}");
                let body =
                    String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).to_string();
                assert!(body.contains("vnc, binary"), "{body}");
            }
            other => panic!("expected 400 for {offer:?}, got {other:?}"),
        }
    }
    // optional route: nothing offered is fine, an unknown offer is refused
    let (_ws, resp) = ws_connect(&gw.ws_url("/opt"), None, None).await.unwrap();
    assert!(resp.headers().get("sec-websocket-protocol").is_none());
    assert!(
        matches!(ws_connect(&gw.ws_url("/opt"), None, Some("base64")).await, Err(WsError::Http(r)) if r.status() == 400)
    );
}

#[tokio::test]
async fn oversize_messages_close_with_1009() {
    let echo = echo_backend().await;
    let gw = TestGateway::start(&tunnel_route(
        "/echo",
        echo,
        "max_message_size = \"4KiB\"\nmax_frame_size = \"4KiB\"",
    ))
    .await;
    let (mut ws, _) = ws_connect(&gw.ws_url("/echo"), None, None).await.unwrap();
    ws.send(Message::Binary(Bytes::from(vec![1u8; 4096])))
        .await
        .unwrap();
    assert_eq!(read_ws_bytes(&mut ws, 4096).await.len(), 4096);
    ws.send(Message::Binary(Bytes::from(vec![2u8; 4097])))
        .await
        .unwrap();
    let (code, _) = next_close(&mut ws).await;
    assert_eq!(code, CloseCode::Size);
    assert_eq!(
        gw.metric(
            "ucgate_errors_total",
            &[
                ("route", "/echo"),
                ("side", "client"),
                ("kind", "message_too_big")
            ]
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn idle_connections_are_closed_and_pings_are_sent() {
    let echo = echo_backend().await;
    let gw = TestGateway::start(&tunnel_route(
        "/echo",
        echo,
        "idle_timeout = \"600ms\"\nping_interval = \"150ms\"",
    ))
    .await;
    let (mut ws, _) = ws_connect(&gw.ws_url("/echo"), None, None).await.unwrap();
    let start = std::time::Instant::now();
    let got = listen_until_close(&mut ws).await;
    assert!(
        start.elapsed() >= Duration::from_millis(550),
        "closed too early: {:?}",
        start.elapsed()
    );
    assert_eq!(got.code, CloseCode::Normal);
    assert_eq!(got.reason, "idle timeout");
    assert!(got.pings >= 2, "pings: {}", got.pings);
    assert!(got.texts.is_empty(), "{:?}", got.texts);
}

#[tokio::test]
async fn a_silent_client_is_detected_as_dead() {
    // A raw client that completes the handshake and then never reads or answers.
    let echo = echo_backend().await;
    let gw = TestGateway::start(&tunnel_route(
        "/echo",
        echo,
        "ping_interval = \"100ms\"\nping_timeout = \"1s\"",
    ))
    .await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(format!("GET /echo HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", gw.addr).as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 101"));
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut all))
        .await
        .expect("closed by the gateway")
        .ok();
    // the stream holds a ping (0x89) and a close (0x88) with 1001
    assert!(all.contains(&0x89), "no ping in {all:?}");
    let close = all.iter().position(|b| *b == 0x88).expect("a close frame");
    assert_eq!(&all[close + 2..close + 4], &1001u16.to_be_bytes());
    assert_eq!(
        gw.metric(
            "ucgate_ws_closes_total",
            &[("route", "/echo"), ("reason", "dead_peer")]
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn a_slow_client_slows_the_backend_and_memory_stays_bounded() {
    // The backend writes as fast as it can; the client reads nothing. The
    // gateway must stop reading from the backend once the client's socket
    // is full, so the backend gets stuck after a bounded number of bytes.
    let (addr, mut conns) = manual_backend().await;
    let gw = TestGateway::start(&tunnel_route("/t", addr, "")).await;
    let (ws, _) = ws_connect(&gw.ws_url("/t"), None, None).await.unwrap();
    let mut backend = conns.recv().await.unwrap();
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let w2 = written.clone();
    let writer = tokio::spawn(async move {
        let chunk = vec![0x55u8; 64 * 1024];
        loop {
            if backend.write_all(&chunk).await.is_err() {
                return;
            }
            w2.fetch_add(chunk.len(), std::sync::atomic::Ordering::Relaxed);
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let a = written.load(std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let b = written.load(std::sync::atomic::Ordering::Relaxed);
    // Socket buffers on loopback hold a few MiB; nothing like an unbounded queue.
    assert!(
        b < 64 << 20,
        "backend wrote {b} bytes to a client that reads nothing"
    );
    assert_eq!(a, b, "the backend kept writing: {a} -> {b}");
    // and the data is all there once the client reads
    drop(ws);
    writer.abort();
}

#[tokio::test]
async fn a_slow_backend_slows_the_client() {
    // The backend reads nothing; the client keeps sending.
    let (addr, mut conns) = manual_backend().await;
    let gw = TestGateway::start(&tunnel_route("/t", addr, "")).await;
    let (mut ws, _) = ws_connect(&gw.ws_url("/t"), None, None).await.unwrap();
    let _backend = conns.recv().await.unwrap();
    let mut sent = 0usize;
    let chunk = Bytes::from(vec![0xAAu8; 32 * 1024]);
    let stalled = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            ws.send(Message::Binary(chunk.clone())).await.unwrap();
            sent += chunk.len();
        }
    })
    .await
    .is_err();
    assert!(stalled, "sending never blocked");
    assert!(
        sent < 64 << 20,
        "client could push {sent} bytes into a backend that reads nothing"
    );
}

#[tokio::test]
async fn unknown_paths_404_and_plain_requests_426() {
    let echo = echo_backend().await;
    let gw = TestGateway::start(&tunnel_route("/echo", echo, "")).await;
    let (status, body) = http_get(gw.addr, "/nope").await;
    assert_eq!(status, 404);
    assert!(body.contains("/nope"));
    let raw = raw_request(
        gw.addr,
        &format!(
            "GET /echo HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            gw.addr
        ),
    )
    .await;
    let (status, body) = parse_response(&raw);
    assert_eq!(status, 426);
    assert!(
        raw.to_ascii_lowercase().contains("upgrade: websocket"),
        "{raw}"
    );
    assert!(body.contains("WebSocket"));
    // bad key and bad version
    let raw = raw_request(gw.addr, &format!("GET /echo HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n", gw.addr)).await;
    assert_eq!(parse_response(&raw).0, 400);
    let raw = raw_request(gw.addr, &format!("GET /echo HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", gw.addr)).await;
    assert_eq!(parse_response(&raw).0, 426);
    assert!(raw
        .to_ascii_lowercase()
        .contains("sec-websocket-version: 13"));
    assert_eq!(
        gw.metric(
            "ucgate_http_responses_total",
            &[("route", "unmatched"), ("code", "404")]
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn connection_limit_holds_extra_connections_until_a_slot_frees() {
    let echo = echo_backend().await;
    let gw = TestGateway::start(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_connections = 2\n{}",
        tunnel_route("/echo", echo, "")
    ))
    .await;
    let (ws1, _) = ws_connect(&gw.ws_url("/echo"), None, None).await.unwrap();
    let (_ws2, _) = ws_connect(&gw.ws_url("/echo"), None, None).await.unwrap();
    // the third waits in the backlog
    let url = gw.ws_url("/echo");
    let third = tokio::spawn(async move { ws_connect(&url, None, None).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !third.is_finished(),
        "a third connection was served over the limit"
    );
    assert!(
        gw.metric("ucgate_errors_total", &[("kind", "connection_limit")])
            .await
            >= 1.0
    );
    drop(ws1);
    tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("served once a slot freed")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn h2c_prior_knowledge_carries_websockets_when_enabled() {
    use http_body_util::Empty;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tokio_tungstenite::tungstenite::protocol::Role;
    let echo = echo_backend().await;
    let gw = TestGateway::start(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nh2c = true\n{}",
        tunnel_route("/echo", echo, "")
    ))
    .await;
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let resp = sender
        .send_request(
            http::Request::get(format!("http://{}/nope", gw.addr))
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let req = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(format!("http://{}/echo", gw.addr))
        .header("sec-websocket-version", "13")
        .extension(hyper::ext::Protocol::from_static("websocket"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let mut resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let up = hyper::upgrade::on(&mut resp).await.unwrap();
    let mut ws =
        tokio_tungstenite::WebSocketStream::from_raw_socket(TokioIo::new(up), Role::Client, None)
            .await;
    ws.send(Message::Binary(Bytes::from_static(b"h2c")))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap().into_data(),
        Bytes::from_static(b"h2c")
    );
    assert_eq!(
        gw.metric(
            "ucgate_ws_upgrades_total",
            &[("route", "/echo"), ("http", "h2")]
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn without_h2c_plain_listeners_speak_http1_only() {
    let echo = echo_backend().await;
    let gw = TestGateway::start(&tunnel_route("/echo", echo, "")).await;
    // An HTTP/2 connection preface is not HTTP/1.1: answered with an error, never served as h2.
    let raw = raw_request(gw.addr, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    assert!(
        raw.is_empty() || raw.starts_with("HTTP/1.1 4") || raw.starts_with("HTTP/1.1 5"),
        "{raw:?}"
    );
}

#[tokio::test]
async fn idle_http2_connections_close_even_while_pings_flow() {
    use http_body_util::Empty;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let echo = echo_backend().await;
    let gw = TestGateway::start(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nh2c = true\nidle_timeout = \"1s\"\nh2_keepalive_interval = \"200ms\"\n{}",
        tunnel_route("/echo", echo, "")
    ))
    .await;
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let resp = sender
        .send_request(
            http::Request::get(format!("http://{}/nope", gw.addr))
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let start = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("the gateway closed the idle HTTP/2 connection")
        .unwrap()
        .ok();
    assert!(
        start.elapsed() >= Duration::from_millis(800),
        "{:?}",
        start.elapsed()
    );
}
