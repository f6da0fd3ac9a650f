//! Docs say what the code does: every config key is in docs/config.md and
//! every metric in docs/metrics.md. And /metrics exposes what it promises
//! after real traffic.

mod common;

use std::path::Path;

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

fn repo_file(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn every_config_key_is_documented() {
    let doc = repo_file("docs/config.md");
    let missing: Vec<String> = ucgate::config::all_keys()
        .into_iter()
        .filter(|k| !doc.contains(&format!("`{k}`")))
        .collect();
    assert!(missing.is_empty(), "docs/config.md lacks: {missing:?}");
}

#[tokio::test]
async fn every_metric_is_documented_and_exposed_after_traffic() {
    let echo = echo_backend().await;
    let dead = dead_address().await;
    let gw = TestGateway::start(&format!(
        "{}{}",
        tunnel_route("/echo", echo, ""),
        tunnel_route("/dead", dead, "")
    ))
    .await;
    let (mut ws, _) = ws_connect(&gw.ws_url("/echo"), None, None).await.unwrap();
    ws.send(Message::Binary(Bytes::from_static(b"12345")))
        .await
        .unwrap();
    assert_eq!(read_ws_bytes(&mut ws, 5).await, b"12345");
    assert!(ws_connect(&gw.ws_url("/dead"), None, None).await.is_err());
    assert_eq!(http_get(gw.addr, "/missing").await.0, 404);
    let (status, _) = http_get(gw.admin, "/live").await;
    assert_eq!(status, 200);

    let text = gw.metrics().await;
    let doc = repo_file("docs/metrics.md");
    let mut families = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut parts = line.split_whitespace().skip(2);
        let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
        let exposed = if kind == "counter" {
            format!("{name}_total")
        } else {
            name.to_string()
        };
        assert!(
            ucgate::metrics::FAMILIES.contains(&(exposed.as_str(), kind)),
            "`{exposed}` ({kind}) missing from metrics::FAMILIES"
        );
        families.push(exposed);
    }
    assert!(families.len() >= 10, "{families:?}");
    for (name, _) in ucgate::metrics::FAMILIES {
        assert!(
            doc.contains(&format!("`{name}`")),
            "docs/metrics.md lacks `{name}`"
        );
    }
    // samples after the traffic above
    let v = |name: &str, labels: &[(&str, &str)]| metric_value(&text, name, labels);
    assert_eq!(
        v("ucgate_connections_accepted_total", &[("listener", "main")]),
        Some(3.0)
    );
    assert_eq!(
        v("ucgate_route_connections_active", &[("route", "/echo")]),
        Some(1.0)
    );
    assert_eq!(
        v(
            "ucgate_bytes_total",
            &[("route", "/echo"), ("direction", "backend_to_client")]
        ),
        Some(5.0)
    );
    assert_eq!(
        v(
            "ucgate_backend_connect_seconds_count",
            &[("route", "/echo")]
        ),
        Some(1.0)
    );
    assert_eq!(
        v("ucgate_ws_handshake_seconds_count", &[("route", "/echo")]),
        Some(1.0)
    );
    assert_eq!(
        v(
            "ucgate_errors_total",
            &[("route", "/dead"), ("side", "backend"), ("kind", "connect")]
        ),
        Some(1.0)
    );
    assert_eq!(
        v(
            "ucgate_http_responses_total",
            &[("route", "unmatched"), ("code", "404")]
        ),
        Some(1.0)
    );
    assert_eq!(v("ucgate_ready", &[]), Some(1.0));
    // no unbounded labels: the client's address never appears
    let peer = ws.get_ref().get_ref().local_addr().unwrap();
    assert!(!text.contains(&peer.to_string()));
    assert!(!text.contains(&peer.port().to_string()) || peer.port() < 10);
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        gw.metric("ucgate_route_connections_active", &[("route", "/echo")])
            .await,
        0.0
    );
    assert_eq!(
        gw.metric(
            "ucgate_ws_closes_total",
            &[("route", "/echo"), ("reason", "client_closed")]
        )
        .await,
        1.0
    );
}

#[test]
fn the_embedded_default_is_shown_verbatim_in_the_docs() {
    let doc = repo_file("docs/config.md");
    assert!(
        doc.contains(ucgate::config::EMBEDDED_DEFAULT),
        "docs/config.md must show crates/ucgate/src/config/default.toml exactly"
    );
}
