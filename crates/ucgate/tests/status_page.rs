//! Issue 16 item 2: the admin listener's status page (`/`) and its data as
//! JSON (`/status`), behind `admin.token` with `/metrics`, while `/live`
//! and `/ready` stay open.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "s3cret-status-token-0123456789";

async fn get(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let raw = raw_request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"),
    )
    .await;
    parse_response(&raw)
}

async fn status(g: &TestGateway) -> serde_json::Value {
    let (code, body) = get(g.admin, "/status", Some(TOKEN)).await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn the_status_page_shows_routes_targets_and_errors_behind_the_token() {
    let echo = echo_backend().await;
    let dead_addr = dead_address().await;
    let g = TestGateway::start(&format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\nprobe_interval = \"200ms\"\n{}{}",
        tunnel_route("/echo", echo, "origins = [\"https://good.example\"]"),
        tunnel_route("/dead", dead_addr, ""),
    ))
    .await;

    // the token guards everything but the health checks
    for path in ["/", "/status", "/metrics"] {
        let (code, _) = get(g.admin, path, None).await;
        assert_eq!(code, 401, "{path} without the token");
        let (code, _) = get(g.admin, path, Some("wrong-token-wrong-token")).await;
        assert_eq!(code, 401, "{path} with a wrong token");
        let (code, _) = get(g.admin, path, Some(TOKEN)).await;
        assert_eq!(code, 200, "{path} with the token");
    }
    for path in ["/live", "/ready"] {
        assert_eq!(get(g.admin, path, None).await.0, 200, "{path}");
    }

    // traffic: an echo, a refused origin, a dead backend
    let (mut ws, _) = ws_connect(&g.ws_url("/echo"), Some("https://good.example"), None)
        .await
        .unwrap();
    ws.send(Message::Binary(b"ping".to_vec().into()))
        .await
        .unwrap();
    assert_eq!(read_ws_bytes(&mut ws, 4).await, b"ping");
    assert!(
        ws_connect(&g.ws_url("/echo"), Some("https://evil.example"), None)
            .await
            .is_err()
    );
    assert!(ws_connect(&g.ws_url("/dead"), None, None).await.is_err());

    // the probes run every 200 ms
    let mut s = status(&g).await;
    for _ in 0..50 {
        if s["targets"][1]["last_probe"].is_object() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        s = status(&g).await;
    }
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["phase"], "running");
    assert_eq!(s["config"], "test.toml");
    let echo_route = &s["routes"][0];
    assert_eq!(echo_route["path"], "/echo");
    assert_eq!(echo_route["open"], 1, "{s}");
    assert_eq!(echo_route["messages_in"], 1);
    assert_eq!(echo_route["bytes_out"], 4);
    let (up, down) = (&s["targets"][0], &s["targets"][1]);
    assert_eq!(up["address"], echo.to_string());
    assert_eq!(up["last_connection"]["ok"], true, "{s}");
    assert_eq!(up["last_probe"]["ok"], true, "{s}");
    assert_eq!(down["last_connection"]["ok"], false, "{s}");
    assert_eq!(down["last_probe"]["ok"], false, "{s}");
    let errors = s["errors"].as_array().unwrap();
    let has = |route: &str, side: &str, kind: &str| {
        errors.iter().any(|e| {
            e["route"] == route && e["side"] == side && e["kind"] == kind && e["recent"] == 1
        })
    };
    assert!(has("/echo", "client", "origin_forbidden"), "{s}");
    assert!(has("/dead", "backend", "connect"), "{s}");
    assert_eq!(
        s["refused_origins"][0]["origin"], "https://evil.example",
        "{s}"
    );
    assert_eq!(s["refused_origins"][0]["route"], "/echo");

    // the page: the same facts, no script, nothing from elsewhere
    let (code, page) = get(g.admin, "/", Some(TOKEN)).await;
    assert_eq!(code, 200);
    for want in [
        "<meta http-equiv=refresh",
        "/echo",
        &echo.to_string(),
        "origin_forbidden",
        "https://evil.example",
        "failed",
        "running",
    ] {
        assert!(page.contains(want), "`{want}` not on the page:\n{page}");
    }
    // (the refused origin is text on the page, not a link)
    for never in [
        "<script",
        "src=",
        "href=\"http",
        "href=http",
        "url(",
        "@import",
    ] {
        assert!(!page.contains(never), "`{never}` on the page");
    }
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
}
