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

/// The row of `name` in a docs/metrics.md table (`| \`name\` | …`).
fn metric_row<'d>(doc: &'d str, name: &str) -> Option<&'d str> {
    doc.lines()
        .find(|l| l.starts_with(&format!("| `{name}` |")))
}

/// Rows of the "Labels are bounded" table for `label`.
fn label_rows<'d>(doc: &'d str, label: &str) -> Vec<&'d str> {
    doc.lines()
        .filter(|l| {
            l.starts_with(&format!("| `{label}` |")) || l.starts_with(&format!("| `{label}` ("))
        })
        .collect()
}

#[tokio::test]
async fn every_family_label_and_label_value_exported_is_documented() {
    let busy = traffic::busy_gateway().await;
    let doc = repo_file("docs/metrics.md");
    // the pages metrics.md sends readers to for XMPP and BOSH reasons and conditions
    let linked: String = [
        "docs/lifecycle-websocket.md",
        "docs/lifecycle-xmpp-websocket.md",
        "docs/bosh.md",
    ]
    .iter()
    .map(|f| repo_file(f))
    .collect();
    let families = traffic::families(&busy.metrics);
    let routes = ["/echo", "/dead", "/http-bind", "/xmpp-websocket", "/sip"];
    // every route kind carried traffic, each way
    for route in ["/echo", "/http-bind", "/xmpp-websocket", "/sip"] {
        for direction in ["client_to_backend", "backend_to_client"] {
            let n = metric_value(
                &busy.metrics,
                "ucgate_messages_total",
                &[("route", route), ("direction", direction)],
            );
            assert!(n.is_some_and(|n| n > 0.0), "{route} {direction}: {n:?}");
        }
    }
    let mut problems = Vec::new();
    for (name, f) in &families {
        let (Some(row), Some(documented)) = (
            metric_row(&doc, name),
            traffic::documented_labels(&doc, name),
        ) else {
            problems.push(format!("`{name}` has no row in docs/metrics.md"));
            continue;
        };
        let exported: Vec<String> = f.labels.keys().cloned().collect();
        let mut d = documented.clone();
        d.sort();
        if d != exported {
            problems.push(format!(
                "`{name}`: exported labels {exported:?}, documented {documented:?}"
            ));
        }
        for (label, values) in &f.labels {
            for v in values {
                let shown = match label.as_str() {
                    "listener" => v.replace("sip:/sip", "sip:ROUTE"),
                    _ => v.clone(),
                };
                let tick = format!("`{shown}`");
                let in_rows = label_rows(&doc, label).iter().any(|r| r.contains(&tick))
                    || row.contains(&tick);
                let ok = match label.as_str() {
                    "route" => routes.contains(&v.as_str()) || in_rows,
                    "kind" | "reason" | "condition" => {
                        in_rows || doc.contains(&tick) || linked.contains(&tick)
                    }
                    _ => in_rows,
                };
                if !ok {
                    problems.push(format!(
                        "`{name}{{{label}=\"{v}\"}}`: the value `{shown}` is not documented in docs/metrics.md"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}\n{}", busy.metrics);
}

/// Every key the example configuration shows, set or commented out, as
/// `table.key` (`xmpp.domains."x".tls` → `xmpp.domains.tls`, the form of
/// `ucgate::config::all_keys`).
fn example_keys(text: &str) -> Vec<String> {
    let mut table = String::new();
    let mut keys = Vec::new();
    for line in text.lines() {
        let l = line
            .trim_start_matches(|c: char| c == '#' || c.is_whitespace())
            .trim_end();
        // a table header: `[a.b]`, `[[a]]`, `[a."x.y"]` (not a prose `["…"]`)
        let header = l
            .strip_prefix('[')
            .map(|n| n.trim_start_matches('['))
            .and_then(|n| n.find(']').map(|end| &n[..end]))
            .filter(|n| n.starts_with(|c: char| c.is_ascii_lowercase()));
        if let Some(name) = header {
            // quoted parts (a domain name) left out
            table = name
                .split('"')
                .step_by(2)
                .flat_map(|p| p.split('.'))
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join(".");
            if table.contains('.') {
                keys.push(table.clone());
            }
            continue;
        }
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        let k = k.trim();
        let v = v.trim();
        if k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            || v.is_empty()
            || table.is_empty()
        {
            continue;
        }
        keys.push(format!("{table}.{k}"));
    }
    keys
}

#[test]
fn the_example_config_shows_every_key_documented_and_loads() {
    let example = repo_file("config/ucgate.example.toml");
    let doc = repo_file("docs/config.md");
    let keys = example_keys(&example);
    let all = ucgate::config::all_keys();
    let unknown: Vec<&String> = keys.iter().filter(|k| !all.contains(k)).collect();
    assert!(unknown.is_empty(), "not configuration keys: {unknown:?}");
    let undocumented: Vec<&String> = keys
        .iter()
        .filter(|k| !doc.contains(&format!("`{k}`")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "in the example, not in docs/config.md: {undocumented:?}"
    );
    let absent: Vec<&String> = all.iter().filter(|k| !keys.contains(k)).collect();
    assert!(
        absent.is_empty(),
        "config/ucgate.example.toml claims every key but lacks: {absent:?}"
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/ucgate.example.toml");
    if let Err(e) = ucgate::Config::load(&path) {
        panic!("{e}");
    }
}
