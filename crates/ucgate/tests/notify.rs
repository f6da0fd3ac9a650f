//! `sd_notify` from the real binary, as systemd's `Type=notify` sees it: a
//! Unix datagram socket named by `NOTIFY_SOCKET` receives `READY=1` once
//! the listeners accept, `RELOADING=1` then `READY=1` around a SIGHUP
//! certificate reload, and `STOPPING=1` when the drain starts.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::process::{self, signal, wait_exit, KillOnDrop};
use common::tls::{write_cert, TempDir};
use common::*;
use tokio::net::UnixDatagram;

/// The next notification, as its `KEY=value` lines.
async fn next(sock: &UnixDatagram) -> HashMap<String, String> {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), sock.recv(&mut buf))
        .await
        .expect("a notification within 10 s")
        .expect("recv");
    let text = String::from_utf8(buf[..n].to_vec()).expect("UTF-8 notification");
    text.lines()
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not KEY=value: {l:?}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

async fn nothing_more(sock: &UnixDatagram) {
    let mut buf = vec![0u8; 4096];
    if let Ok(r) = tokio::time::timeout(Duration::from_millis(300), sock.recv(&mut buf)).await {
        let n = r.expect("recv");
        panic!(
            "unexpected notification: {:?}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
}

#[tokio::test]
async fn ready_reloading_and_stopping_reach_notify_socket() {
    let dir = TempDir::new("notify");
    write_cert(dir.path(), "a", &["localhost"]);
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let echo = echo_backend().await;
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_delay = \"1s\"\n\
         [[server.tls.certificate]]\ncert = \"a.crt\"\nkey = \"a.key\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n{}",
        tunnel_route("/echo", echo, "")
    );
    let env = format!("NOTIFY_SOCKET={}", sock_path.display());
    let s = process::spawn(
        &cfg,
        dir.path(),
        &["env", &env],
        &[],
        process::Stderr::Collect,
    );
    let _guard = KillOnDrop(s.child.id());

    // Start-up: one READY=1, sent when both ports accept and /ready is 200.
    let ready = next(&sock).await;
    assert_eq!(
        ready.get("READY").map(String::as_str),
        Some("1"),
        "{ready:?}"
    );
    assert_eq!(http_get(s.admin, "/ready").await.0, 200);
    tokio::net::TcpStream::connect(s.main)
        .await
        .expect("the public port accepts once READY=1 was sent");
    let status = &ready["STATUS"];
    assert!(
        status.contains(&s.main.to_string()) && status.contains("(TLS)"),
        "{status}"
    );
    assert!(status.contains(&s.admin.to_string()), "{status}");
    nothing_more(&sock).await;

    // SIGHUP: RELOADING=1 with the monotonic clock, then READY=1 once the
    // certificates have been re-read.
    signal(&s.child, "-HUP");
    let reloading = next(&sock).await;
    assert_eq!(
        reloading.get("RELOADING").map(String::as_str),
        Some("1"),
        "{reloading:?}"
    );
    let usec: u64 = reloading["MONOTONIC_USEC"].parse().expect("MONOTONIC_USEC");
    assert!(usec > 0);
    let again = next(&sock).await;
    assert_eq!(
        again.get("READY").map(String::as_str),
        Some("1"),
        "{again:?}"
    );
    assert!(
        again["STATUS"].contains("certificates reloaded (1)"),
        "{again:?}"
    );
    let metrics = http_get(s.admin, "/metrics").await.1;
    assert_eq!(
        metric_value(&metrics, "ucgate_tls_reloads_total", &[("result", "ok")]),
        Some(1.0),
        "READY=1 came before the reload was done"
    );
    nothing_more(&sock).await;

    // SIGTERM: STOPPING=1 as the drain starts (/ready already fails). A
    // SIGHUP during the drain still reloads but must not say READY=1 again.
    signal(&s.child, "-TERM");
    let stopping = next(&sock).await;
    assert_eq!(
        stopping.get("STOPPING").map(String::as_str),
        Some("1"),
        "{stopping:?}"
    );
    assert!(stopping["STATUS"].starts_with("draining"), "{stopping:?}");
    assert_eq!(http_get(s.admin, "/ready").await.0, 503);
    signal(&s.child, "-HUP");
    let (code, _) = wait_exit(s.child, Duration::from_secs(15)).await;
    assert_eq!(code, Some(0));
    let mut rest = Vec::new();
    let mut buf = vec![0u8; 4096];
    while let Ok(n) = sock.try_recv(&mut buf) {
        rest.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(
        rest.iter().any(|m| m.contains("stopped accepting")),
        "{rest:?}"
    );
    assert!(
        !rest
            .iter()
            .any(|m| m.contains("READY=1") || m.contains("RELOADING=1")),
        "READY or RELOADING during the drain: {rest:?}"
    );
}

#[tokio::test]
async fn without_notify_socket_nothing_is_sent_and_nothing_fails() {
    let dir = TempDir::new("notify-unset");
    let echo = echo_backend().await;
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n{}",
        tunnel_route("/echo", echo, "")
    );
    let s = process::spawn(
        &cfg,
        dir.path(),
        &["env", "-u", "NOTIFY_SOCKET"],
        &[],
        process::Stderr::Collect,
    );
    let _guard = KillOnDrop(s.child.id());
    process::wait_ready(s.admin).await;
    signal(&s.child, "-HUP");
    signal(&s.child, "-TERM");
    let (code, _) = wait_exit(s.child, Duration::from_secs(15)).await;
    assert_eq!(code, Some(0));
    let log = s.log.lock().unwrap().join("\n");
    assert!(!log.contains("NOTIFY_SOCKET"), "{log}");
}
