//! `idle`: WebSocket, XMPP-WebSocket and BOSH sessions held open through
//! the gateway (running in this test process, whose RSS is sampled with
//! --pid), early closes counted as errors, source address spreading, and
//! the capacity check.

mod modes_common;

use std::time::Duration;

use modes_common::xmpp::{xmpp_server, XFault};
use modes_common::*;
use tokio::net::TcpListener;

fn idle_args<'a>(url: &'a str, kind: &'a str, pid: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["idle", url, "--kind", kind, "--pid", pid, "--timeout", "10"];
    v.extend_from_slice(extra);
    v
}

fn assert_idle_clean(r: &Run, kind: &str, n: u64) {
    assert_clean(r, "idle");
    assert_eq!(r.json["kind"], kind);
    assert_eq!(r.u("connections"), n);
    assert_eq!(r.u("opened"), n, "{}", r.json);
    assert_eq!(r.u("open_at_end"), n, "{}", r.json);
    assert!(r.u("rss_before_kib") > 0, "{}", r.json);
    assert!(r.u("rss_after_kib") > 0, "{}", r.json);
    assert!(r.json["bytes_per_connection"].is_i64(), "{}", r.json);
    assert!(r.json["latency_us"]["p50"].as_u64().unwrap() > 0);
    assert!(r.json["open_rate"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_websockets_through_a_tunnel() {
    let echo = own_echo_server().await;
    let gw = Gateway::start(&tunnel_route("/echo", echo.addr.parse().unwrap())).await;
    let url = gw.url("ws", "/echo");
    let pid = std::process::id().to_string();
    let r = bench(&idle_args(
        &url,
        "ws",
        &pid,
        &["--connections", "40", "--concurrency", "8", "--hold", "0.5"],
    ))
    .await;
    assert_idle_clean(&r, "ws", 40);
    assert_eq!(r.u("concurrency"), 8);
    // spread over three loopback source addresses
    let r = bench(&idle_args(
        &url,
        "ws",
        &pid,
        &[
            "--connections",
            "6",
            "--source-ips",
            "127.0.0.1-127.0.0.3",
            "--hold",
            "0.2",
        ],
    ))
    .await;
    assert_idle_clean(&r, "ws", 6);
    assert_eq!(r.u("source_ips"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_xmpp_websockets_and_bosh_sessions() {
    let server = xmpp_server(XFault::None).await;
    let gw = Gateway::start(&format!(
        "[[route]]\npath = \"/xmpp-websocket\"\nkind = \"xmpp-websocket\"\n\n[[route]]\npath = \"/http-bind\"\nkind = \"bosh\"\n\n[xmpp.domains.\"localhost\"]\naddress = \"{server}\"\ntls = \"none\"\n"
    ))
    .await;
    let pid = std::process::id().to_string();
    let url = gw.url("ws", "/xmpp-websocket");
    let r = bench(&idle_args(
        &url,
        "xmpp-ws",
        &pid,
        &["--connections", "10", "--hold", "0.2"],
    ))
    .await;
    assert_idle_clean(&r, "xmpp-ws", 10);
    let url = gw.url("http", "/http-bind");
    // a short wait: the long polls are answered and re-issued during the hold
    let r = bench(&idle_args(
        &url,
        "bosh",
        &pid,
        &["--connections", "10", "--bosh-wait", "1", "--hold", "1.5"],
    ))
    .await;
    assert_idle_clean(&r, "bosh", 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_counts_early_closes() {
    // A backend that hangs up 300 ms after each connection: the tunnel
    // closes every WebSocket during the hold.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                drop(s);
            });
        }
    });
    let gw = Gateway::start(&tunnel_route("/short", backend)).await;
    let r = bench(&[
        "idle",
        &gw.url("ws", "/short"),
        "--connections",
        "5",
        "--hold",
        "1",
    ])
    .await;
    assert_eq!(r.code, 1, "{}\n{}", r.json, r.stderr);
    assert_eq!(r.kind("closed_early"), 5, "{}", r.json);
    assert_eq!(r.u("open_at_end"), 0, "{}", r.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_refuses_what_cannot_fit() {
    let r = bench(&["idle", "ws://127.0.0.1:1/x", "--connections", "100000000"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("file descriptors") || r.stderr.contains("ephemeral ports"),
        "{}",
        r.stderr
    );
    let r = bench(&["idle", "http://127.0.0.1:1/x", "--kind", "ws"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
}
