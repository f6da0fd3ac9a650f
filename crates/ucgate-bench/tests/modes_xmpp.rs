//! `xmpp-tcp` directly against a minimal in-test XMPP server, `xmpp-ws`
//! and `xmpp-bosh` through the gateway's routes in front of it (domain
//! `tls = "none"`), `xmpp-relay` through a `tcp` route to it, and server
//! faults that must make the run fail.

mod modes_common;

use modes_common::xmpp::{xmpp_server, XFault};
use modes_common::*;

fn gateway_config(server: std::net::SocketAddr) -> String {
    format!(
        "[[route]]\npath = \"/xmpp-websocket\"\nkind = \"xmpp-websocket\"\n\n[[route]]\npath = \"/http-bind\"\nkind = \"bosh\"\n\n[xmpp.domains.\"localhost\"]\naddress = \"{server}\"\ntls = \"none\"\n"
    )
}

fn args<'a>(mode: &'a str, target: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        mode,
        target,
        "--domain",
        "localhost",
        "--duration",
        "1",
        "--warmup",
        "0.2",
    ];
    v.extend_from_slice(extra);
    v
}

fn assert_xmpp_clean(r: &Run, mode: &str, clients: u64) {
    assert_clean(r, mode);
    assert_eq!(r.u("clients"), clients);
    assert_eq!(r.u("logged_in"), clients, "{}", r.json);
    assert!(
        r.json["login_ms"]["p50"].as_f64().unwrap() > 0.0,
        "{}",
        r.json
    );
    assert!(r.json["login_ms"]["p99"].is_number());
    assert!(r.u("messages") > 0, "{}", r.json);
    assert!(r.json["latency_us"]["p99"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmpp_tcp_plain_and_anonymous() {
    let server = xmpp_server(XFault::None).await.to_string();
    let r = bench(&args(
        "xmpp-tcp",
        &server,
        &[
            "--clients",
            "3",
            "--user",
            "bench{n}",
            "--password",
            "secret",
            "--window",
            "2",
        ],
    ))
    .await;
    assert_xmpp_clean(&r, "xmpp-tcp", 3);
    assert_eq!(r.json["auth"], "PLAIN");
    assert!(r.u("messages") > 50, "{}", r.json);
    let r = bench(&args(
        "xmpp-tcp",
        &server,
        &["--clients", "2", "--anonymous"],
    ))
    .await;
    assert_xmpp_clean(&r, "xmpp-tcp", 2);
    assert_eq!(r.json["auth"], "ANONYMOUS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmpp_ws_through_the_gateway() {
    let server = xmpp_server(XFault::None).await;
    let gw = Gateway::start(&gateway_config(server)).await;
    let url = gw.url("ws", "/xmpp-websocket");
    let r = bench(&args(
        "xmpp-ws",
        &url,
        &["--clients", "3", "--password", "secret"],
    ))
    .await;
    assert_xmpp_clean(&r, "xmpp-ws", 3);
    // open loop: 100 messages/s over 1 s
    let r = bench(&args(
        "xmpp-ws",
        &url,
        &[
            "--clients",
            "2",
            "--anonymous",
            "--rate",
            "100",
            "--size",
            "10",
        ],
    ))
    .await;
    assert_xmpp_clean(&r, "xmpp-ws", 2);
    assert!((98..=102).contains(&r.u("messages")), "{}", r.json);
    assert_eq!(r.u("bytes"), r.u("messages") * 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmpp_relay_through_a_tunnel_route() {
    let server = xmpp_server(XFault::None).await;
    let gw = Gateway::start(&format!(
        "[[route]]\npath = \"/c2s\"\nkind = \"tcp\"\nbackend = \"{server}\"\n"
    ))
    .await;
    let url = gw.url("ws", "/c2s");
    let r = bench(&args(
        "xmpp-relay",
        &url,
        &["--clients", "3", "--password", "secret"],
    ))
    .await;
    assert_xmpp_clean(&r, "xmpp-relay", 3);
    assert_eq!(r.json["auth"], "PLAIN");
    // a relay takes a WebSocket URL, not the c2s address
    let r = bench(&args("xmpp-relay", &server.to_string(), &["--anonymous"])).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmpp_bosh_through_the_gateway() {
    let server = xmpp_server(XFault::None).await;
    let gw = Gateway::start(&gateway_config(server)).await;
    let url = gw.url("http", "/http-bind");
    let r = bench(&args(
        "xmpp-bosh",
        &url,
        &["--clients", "3", "--password", "secret", "--window", "3"],
    ))
    .await;
    assert_xmpp_clean(&r, "xmpp-bosh", 3);
    assert!(r.u("messages") > 20, "{}", r.json);
}

async fn faulty(fault: XFault, extra: &[&str]) -> Run {
    let server = xmpp_server(fault).await.to_string();
    let mut a = vec!["--clients", "2", "--password", "secret", "--timeout", "1"];
    a.extend_from_slice(extra);
    let r = bench(&args("xmpp-tcp", &server, &a)).await;
    assert_eq!(r.code, 1, "{fault:?} must fail: {}\n{}", r.json, r.stderr);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmpp_detects_a_lost_message() {
    let r = faulty(XFault::Drop(5), &[]).await;
    assert_eq!(r.kind("lost"), 2, "one per client: {}", r.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmpp_detects_a_corrupted_body() {
    let r = faulty(XFault::Corrupt(5), &[]).await;
    assert_eq!(r.kind("corrupted"), 2, "{}", r.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmpp_detects_reordering_and_duplicates() {
    let r = faulty(XFault::Swap(5), &["--window", "4"]).await;
    assert_eq!(r.kind("lost"), 2, "{}", r.json);
    assert_eq!(r.kind("duplicated"), 2, "{}", r.json);
    let r = faulty(XFault::Duplicate(5), &[]).await;
    assert_eq!(r.kind("duplicated"), 2, "{}", r.json);
    assert_eq!(r.kind("lost"), 0, "{}", r.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmpp_detects_a_stream_closed_by_the_server() {
    let r = faulty(XFault::CloseAt(5), &[]).await;
    assert_eq!(r.kind("unexpected_close"), 2, "{}", r.json);
    assert!(r.stderr.contains("stream ended"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmpp_failed_logins_are_errors() {
    let r = faulty(XFault::RefuseLogin, &[]).await;
    assert_eq!(r.kind("login"), 2, "{}", r.json);
    assert_eq!(r.u("logged_in"), 0);
    // a wrong password against a correct server
    let server = xmpp_server(XFault::None).await.to_string();
    let r = bench(&args(
        "xmpp-tcp",
        &server,
        &["--clients", "1", "--password", "wrong"],
    ))
    .await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.kind("login"), 1, "{}", r.json);
    // neither --password nor --anonymous: usage
    let r = bench(&args("xmpp-tcp", &server, &["--clients", "1"])).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmpp_ws_detects_corruption_through_the_gateway() {
    let server = xmpp_server(XFault::Corrupt(3)).await;
    let gw = Gateway::start(&gateway_config(server)).await;
    let r = bench(&args(
        "xmpp-ws",
        &gw.url("ws", "/xmpp-websocket"),
        &["--clients", "2", "--password", "secret", "--timeout", "1"],
    ))
    .await;
    assert_eq!(r.code, 1, "{}\n{}", r.json, r.stderr);
    assert_eq!(r.kind("corrupted"), 2, "{}", r.json);
}
