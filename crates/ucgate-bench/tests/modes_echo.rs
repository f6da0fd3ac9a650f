//! `tcp-echo-server`, `tcp-echo` and `ws-echo`: clean runs (closed and open
//! loop, direct and through the gateway's tunnel) and faulty echo servers
//! that must make the run report errors and exit 1.

mod modes_common;

use modes_common::*;

const SHORT: [&str; 4] = ["--duration", "1", "--warmup", "0.2"];

fn args<'a>(mode: &'a str, target: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![mode, target];
    v.extend_from_slice(&SHORT);
    v.extend_from_slice(extra);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_echo_closed_and_open_loop_against_own_server() {
    let server = own_echo_server().await;
    let r = bench(&args(
        "tcp-echo",
        &server.addr,
        &["--connections", "4", "--window", "2"],
    ))
    .await;
    assert_clean(&r, "tcp-echo");
    assert_eq!(r.u("connections"), 4);
    assert_eq!(r.u("size"), 64);
    assert!(r.u("messages") > 100, "{}", r.json);
    assert_eq!(r.u("bytes"), r.u("messages") * 64);
    assert!(r.json["latency_us"]["p50"].as_u64().unwrap() > 0);

    // Open loop: 400 messages/s for 1 s is 400 messages (±1 at the edges).
    let r = bench(&args(
        "tcp-echo",
        &server.addr,
        &["--connections", "3", "--rate", "400", "--size", "100"],
    ))
    .await;
    assert_clean(&r, "tcp-echo");
    let m = r.u("messages");
    assert!((398..=402).contains(&m), "{}", r.json);
    assert_eq!(r.json["load"]["open_loop_rate"], 400.0);
    assert!(r.json["latency_us"]["p50"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_latency_includes_a_server_stall() {
    // One connection at 200 messages/s; the server stops echoing for
    // 400 ms after 20 messages. The ~80 messages due during the stall wait
    // for it, and their latency is measured from when they were due, so
    // p90 shows the stall (a closed loop would hide it behind one slow
    // message).
    let addr = faulty_echo(Fault::Stall(20 * 64, 400)).await.to_string();
    let r = bench(&[
        "tcp-echo",
        &addr,
        "--connections",
        "1",
        "--rate",
        "200",
        "--duration",
        "1",
        "--warmup",
        "0",
    ])
    .await;
    assert_clean(&r, "tcp-echo");
    let p90 = r.json["latency_us"]["p90"].as_u64().unwrap();
    let max = r.json["latency_us"]["max"].as_u64().unwrap();
    assert!(
        p90 > 150_000,
        "p90 {p90} µs should show the stall: {}",
        r.json
    );
    assert!(max > 350_000 && max < 1_000_000, "{}", r.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2() {
    let r = bench(&["tcp-echo", "127.0.0.1:1", "--size", "10"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = bench(&["tcp-echo", "127.0.0.1:1", "--no-such-option"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = bench(&["ws-echo", "http://127.0.0.1:1/x"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_target_is_an_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    let r = bench(&args("tcp-echo", &addr, &["--connections", "2"])).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.kind("connect"), 2, "{}", r.json);
}

async fn faulty_run(fault: Fault) -> Run {
    let addr = faulty_echo(fault).await.to_string();
    // --size 64: offsets below are inside message 5 (bytes 320..384).
    let r = bench(&args(
        "tcp-echo",
        &addr,
        &["--connections", "2", "--timeout", "1", "--window", "4"],
    ))
    .await;
    assert_eq!(r.code, 1, "{fault:?} must fail: {}\n{}", r.json, r.stderr);
    assert!(r.u("errors") >= 1);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_echo_detects_a_corrupted_byte() {
    let r = faulty_run(Fault::Corrupt(5 * 64 + 40)).await;
    assert_eq!(r.kind("corrupted"), 2, "one per connection: {}", r.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_echo_detects_a_corrupted_header() {
    let r = faulty_run(Fault::Corrupt(5 * 64 + 3)).await;
    assert!(r.kind("corrupted") >= 2, "{}", r.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_echo_detects_a_dropped_message() {
    let r = faulty_run(Fault::Drop(5 * 64, 64)).await;
    assert_eq!(r.kind("lost"), 2, "one per connection: {}", r.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_echo_detects_reordered_messages() {
    let r = faulty_run(Fault::Swap(5 * 64, 64)).await;
    // message 6 before 5: 5 is skipped (lost), then arrives unexpectedly
    assert_eq!(r.kind("lost"), 2, "{}", r.json);
    assert_eq!(r.kind("duplicated"), 2, "{}", r.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_echo_detects_an_early_close() {
    let r = faulty_run(Fault::CloseAfter(5 * 64)).await;
    assert_eq!(r.kind("unexpected_close"), 2, "{}", r.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_echo_through_the_gateway_tunnel() {
    let server = own_echo_server().await;
    let backend: std::net::SocketAddr = server.addr.parse().unwrap();
    let gw = Gateway::start(&tunnel_route("/echo", backend)).await;
    let url = gw.url("ws", "/echo");
    let r = bench(&args(
        "ws-echo",
        &url,
        &["--connections", "4", "--size", "300", "--window", "3"],
    ))
    .await;
    assert_clean(&r, "ws-echo");
    assert!(r.u("messages") > 50, "{}", r.json);
    assert_eq!(r.u("bytes"), r.u("messages") * 300);

    // text frames, websockify's subprotocol, open loop
    let r = bench(&args(
        "ws-echo",
        &url,
        &[
            "--connections",
            "2",
            "--text",
            "--subprotocol",
            "binary",
            "--rate",
            "200",
        ],
    ))
    .await;
    assert_clean(&r, "ws-echo");
    assert!((198..=202).contains(&r.u("messages")), "{}", r.json);
    assert_eq!(r.json["text"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_echo_detects_corruption_behind_the_gateway() {
    let backend = faulty_echo(Fault::Corrupt(3 * 64 + 30)).await;
    let gw = Gateway::start(&tunnel_route("/bad", backend)).await;
    let r = bench(&args(
        "ws-echo",
        &gw.url("ws", "/bad"),
        &["--connections", "2", "--timeout", "1"],
    ))
    .await;
    assert_eq!(r.code, 1, "{}\n{}", r.json, r.stderr);
    assert_eq!(r.kind("corrupted"), 2, "{}", r.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_echo_refused_subprotocol_is_a_connect_error() {
    let server = own_echo_server().await;
    let gw = Gateway::start(&tunnel_route("/echo", server.addr.parse().unwrap())).await;
    let r = bench(&args(
        "ws-echo",
        &gw.url("ws", "/echo"),
        &["--connections", "1", "--subprotocol", "nope"],
    ))
    .await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.kind("connect"), 1, "{}", r.json);
}
