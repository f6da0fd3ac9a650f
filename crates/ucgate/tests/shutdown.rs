//! The drain: phases in order, /ready failing first, close 1001 to clients.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use ucgate::Phase;

#[tokio::test]
async fn drain_runs_its_phases_in_order_and_says_goodbye_with_1001() {
    let echo = echo_backend().await;
    let mut gw = TestGateway::start(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_delay = \"400ms\"\ndrain_timeout = \"5s\"\n{}",
        tunnel_route("/echo", echo, "")
    ))
    .await;
    let (status, _) = http_get(gw.admin, "/ready").await;
    assert_eq!(status, 200);
    let (mut ws1, _) = ws_connect(&gw.ws_url("/echo"), None, None).await.unwrap();
    let (mut ws2, _) = ws_connect(&gw.ws_url("/echo"), None, None).await.unwrap();

    let mut phases = gw.control.phase();
    let seen = tokio::spawn(async move {
        let mut seen = vec![*phases.borrow_and_update()];
        while phases.changed().await.is_ok() {
            seen.push(*phases.borrow_and_update());
            if seen.last() == Some(&Phase::Stopped) {
                break;
            }
        }
        seen
    });
    gw.control.shutdown.cancel();
    // During the shutdown delay: not ready, but still serving existing and new clients.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, body) = http_get(gw.admin, "/ready").await;
    assert_eq!(status, 503);
    assert!(body.contains("draining"));
    assert_eq!(http_get(gw.admin, "/live").await.0, 200);
    assert!(
        ws_connect(&gw.ws_url("/echo"), None, None).await.is_ok(),
        "still accepting during the shutdown delay"
    );

    for ws in [&mut ws1, &mut ws2] {
        let close = loop {
            match tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .expect("close in time")
            {
                Some(Ok(Message::Close(Some(f)))) => break f,
                Some(Ok(_)) => continue,
                other => panic!("expected close 1001, got {other:?}"),
            }
        };
        assert_eq!(close.code, CloseCode::Away);
        assert_eq!(close.reason.as_str(), "gateway shutting down");
        // reading on sends our close reply, which lets the drain finish early
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while ws.next().await.is_some() {}
        })
        .await;
    }
    let stop_started = std::time::Instant::now();
    gw.stop().await;
    assert!(
        stop_started.elapsed() < Duration::from_secs(3),
        "drain waited for clients that had answered"
    );
    let seen = seen.await.unwrap();
    assert_eq!(seen, vec![Phase::Running, Phase::Draining, Phase::Stopped]);
    // no longer accepting
    assert!(tokio::net::TcpStream::connect(gw.addr).await.is_err());
}

#[tokio::test]
async fn drain_deadline_cuts_connections_that_do_not_finish() {
    // A raw client that completes the upgrade and never answers the close.
    let echo = echo_backend().await;
    let mut gw = TestGateway::start(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndrain_timeout = \"500ms\"\n{}",
        tunnel_route("/echo", echo, "close_timeout = \"60s\"")
    ))
    .await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(format!("GET /echo HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", gw.addr).as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 101"));
    let start = std::time::Instant::now();
    gw.stop().await;
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(5),
        "drain took {took:?}"
    );
}

#[tokio::test]
async fn idle_http_connections_are_closed_and_draining_closes_keepalive_connections() {
    let echo = echo_backend().await;
    let gw = TestGateway::start(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nidle_timeout = \"1s\"\n{}",
        tunnel_route("/echo", echo, "")
    ))
    .await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(format!("GET /nope HTTP/1.1\r\nHost: {}\r\n\r\n", gw.addr).as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 404"));
    // keep-alive connection, now idle: closed after about a second
    let start = std::time::Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("closed when idle")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        gw.metric("ucgate_connections_active", &[("listener", "main")])
            .await,
        0.0
    );
}

/// Starts a gateway with `server` settings, opens `n` tunnel WebSockets,
/// starts the drain and returns when each client got its close 1001 (and
/// answered it), sorted, counted from the drain's start.
async fn drain_close_times(server: &str, n: usize) -> (TestGateway, Vec<Duration>) {
    let echo = echo_backend().await;
    let gw = TestGateway::start(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{server}{}",
        tunnel_route("/echo", echo, "")
    ))
    .await;
    let mut clients = Vec::new();
    for _ in 0..n {
        clients.push(ws_connect(&gw.ws_url("/echo"), None, None).await.unwrap().0);
    }
    let start = tokio::time::Instant::now();
    gw.control.shutdown.cancel();
    let waits = clients.into_iter().map(|mut ws| {
        tokio::spawn(async move {
            let close = loop {
                match tokio::time::timeout(Duration::from_secs(5), ws.next())
                    .await
                    .expect("close in time")
                {
                    Some(Ok(Message::Close(Some(f)))) => break f,
                    Some(Ok(_)) => continue,
                    other => panic!("expected close 1001, got {other:?}"),
                }
            };
            let at = start.elapsed();
            assert_eq!(close.code, CloseCode::Away);
            while ws.next().await.is_some() {}
            at
        })
    });
    let mut at = Vec::new();
    for w in waits {
        at.push(w.await.unwrap());
    }
    at.sort();
    (gw, at)
}

#[tokio::test]
async fn drain_spread_closes_websockets_in_batches_over_the_window() {
    const N: usize = 20;
    let (mut gw, at) =
        drain_close_times("drain_timeout = \"3s\"\ndrain_spread = \"1s\"\n", N).await;
    let early = at
        .iter()
        .filter(|t| **t < Duration::from_millis(150))
        .count();
    assert!(early <= N / 4, "{early} of {N} closed at once: {at:?}");
    assert!(at[N / 2] >= Duration::from_millis(300), "{at:?}");
    assert!(at[N - 1] >= Duration::from_millis(700), "{at:?}");
    assert!(at[N - 1] < Duration::from_millis(1500), "{at:?}");
    // every socket answered: the drain ends without waiting for its deadline
    let stop_started = std::time::Instant::now();
    gw.stop().await;
    assert!(stop_started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn without_drain_spread_every_websocket_closes_at_once() {
    let (mut gw, at) = drain_close_times("drain_timeout = \"3s\"\n", 10).await;
    assert!(at[at.len() - 1] < Duration::from_millis(500), "{at:?}");
    gw.stop().await;
}
