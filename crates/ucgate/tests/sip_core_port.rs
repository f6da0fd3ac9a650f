//! The SIP route's core-facing port (UDP and TCP on one port): only the
//! core's addresses may use it, the connections the core opens are capped
//! and closed when idle, a flow token does not survive a restart, and a
//! message whose headers no empty line ends is answered 400 from either
//! side. The "attacker" binds 127.0.0.2 (Linux routes all of 127.0.0.0/8 to
//! loopback); the stub core is on 127.0.0.1.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::sip::*;
use common::*;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio_tungstenite::tungstenite::Message;

const ATTACKER: &str = "127.0.0.2";

/// RFC 4475 §3.1.2.15 "baddn" as its archive carries it: no empty line
/// after `l: 0`.
const BADDN: &[u8] = b"OPTIONS sip:t.watson@example.org SIP/2.0\r\nVia:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw\r\nMax-Forwards:      70\r\nFrom:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43\r\nTo:      Watson, Thomas <sip:t.watson@example.org>\r\nCall-ID: baddn.31415@c.example.com\r\nAccept: application/sdp\r\nCSeq:    3923239 OPTIONS\r\nl: 0\r\n";

/// Nothing but pings and pongs arrives on `ws` for `d`.
async fn quiet(ws: &mut Ws, d: Duration) {
    let end = tokio::time::Instant::now() + d;
    loop {
        match tokio::time::timeout_at(end, ws.next()).await {
            Err(_) => return,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(other) => panic!("expected nothing, got {other:?}"),
        }
    }
}

async fn errors(gw: &TestGateway, side: &str, kind: &str) -> f64 {
    gw.metric(
        "ucgate_errors_total",
        &[("route", "/sip"), ("side", side), ("kind", kind)],
    )
    .await
}

async fn core_connections(gw: &TestGateway) -> f64 {
    gw.metric(
        "ucgate_sip_core_connections",
        &[("route", "/sip"), ("opened_by", "core")],
    )
    .await
}

/// A TCP connection to `to` from `from_ip`.
async fn connect_from(from_ip: &str, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(format!("{from_ip}:0").parse().unwrap()).unwrap();
    s.connect(to).await.unwrap()
}

/// Reads until the peer closes (`true`) or `d` passes (`false`).
async fn closed_within(s: &mut TcpStream, d: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let end = tokio::time::Instant::now() + d;
    loop {
        match tokio::time::timeout_at(end, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn datagrams_from_other_addresses_are_dropped() {
    let core = Core::start().await;
    let mut gw = TestGateway::start(&config(core.addr)).await;
    let mut ws = open(&gw).await;
    let (path, gw_udp) = register(&mut ws, &core).await;
    // A valid token (learnt from a Path or Record-Route) and a forged
    // From, from a host that is not the core: never delivered, no answer.
    let attacker = UdpSocket::bind(format!("{ATTACKER}:0")).await.unwrap();
    let injected = core_message(&core, &path, 1).replace("sip:bob@", "sip:the-boss@");
    attacker.send_to(injected.as_bytes(), gw_udp).await.unwrap();
    attacker.send_to(BADDN, gw_udp).await.unwrap();
    quiet(&mut ws, Duration::from_millis(500)).await;
    let mut buf = [0u8; 2048];
    assert!(
        tokio::time::timeout(Duration::from_millis(200), attacker.recv_from(&mut buf))
            .await
            .is_err(),
        "the attacker got an answer"
    );
    assert_eq!(errors(&gw, "backend", "sip_source_refused").await, 2.0);
    // The same datagram from the core is delivered.
    core.send(&core_message(&core, &path, 2), gw_udp).await;
    let msg = next_text(&mut ws).await;
    assert!(msg.starts_with("MESSAGE "), "{msg}");
    assert_eq!(errors(&gw, "backend", "sip_source_refused").await, 2.0);
    gw.stop().await;
}

#[tokio::test]
async fn connections_from_other_addresses_are_closed() {
    let core = Core::start().await;
    let mut gw = TestGateway::start(&config(core.addr)).await;
    let mut ws = open(&gw).await;
    let (path, gw_port) = register(&mut ws, &core).await;
    let mut s = connect_from(ATTACKER, gw_port).await;
    // The write may already fail: the gateway closes at once.
    let _ = s.write_all(core_message(&core, &path, 1).as_bytes()).await;
    assert!(
        closed_within(&mut s, Duration::from_secs(5)).await,
        "the gateway kept a connection from {ATTACKER}"
    );
    quiet(&mut ws, Duration::from_millis(300)).await;
    assert_eq!(errors(&gw, "backend", "sip_source_refused").await, 1.0);
    assert_eq!(core_connections(&gw).await, 0.0);
    // From the core's address the same bytes are delivered.
    let mut s = connect_from("127.0.0.1", gw_port).await;
    s.write_all(core_message(&core, &path, 2).as_bytes())
        .await
        .unwrap();
    let msg = next_text(&mut ws).await;
    assert!(msg.starts_with("MESSAGE "), "{msg}");
    gw.stop().await;
}

#[tokio::test]
async fn sources_can_be_configured_as_ranges() {
    let core = Core::start().await;
    // The core's own address is not listed: only 127.0.0.2/31 may send.
    let mut gw = TestGateway::start(&config_with(
        core.addr,
        "udp",
        "core_sources = [\"127.0.0.2/31\", \"::1\"]\n",
    ))
    .await;
    let mut ws = open(&gw).await;
    send(&mut ws, REGISTER).await;
    let (req, gw_udp) = core.recv().await;
    // The core's answer comes from 127.0.0.1: refused.
    core.send(&response(&req, "200 OK"), gw_udp).await;
    quiet(&mut ws, Duration::from_millis(400)).await;
    assert_eq!(errors(&gw, "backend", "sip_source_refused").await, 1.0);
    // From 127.0.0.3 (in 127.0.0.2/31) it is accepted.
    let other = UdpSocket::bind("127.0.0.3:0").await.unwrap();
    other
        .send_to(response(&req, "200 OK").as_bytes(), gw_udp)
        .await
        .unwrap();
    let ok = next_text(&mut ws).await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    gw.stop().await;
}

#[tokio::test]
async fn core_connections_are_capped() {
    let core = Core::start().await;
    let mut gw = TestGateway::start(&config(core.addr)).await;
    let mut ws = open(&gw).await;
    let (path, gw_port) = register(&mut ws, &core).await;
    let mut conns = Vec::new();
    for _ in 0..100 {
        conns.push(connect_from("127.0.0.1", gw_port).await);
    }
    // The default cap (sip.core_max_connections = 64): the 36 others are
    // closed at once.
    let results = futures_util::future::join_all(
        conns
            .iter_mut()
            .map(|s| closed_within(s, Duration::from_secs(2))),
    )
    .await;
    let closed = results.iter().filter(|c| **c).count();
    assert_eq!(closed, 36, "connections closed");
    assert_eq!(core_connections(&gw).await, 64.0);
    assert_eq!(
        errors(&gw, "backend", "sip_core_connection_limit").await,
        36.0
    );
    // The held ones carry messages; closing them frees their places.
    let mut open_ones: Vec<TcpStream> = conns
        .into_iter()
        .zip(results)
        .filter(|(_, c)| !*c)
        .map(|(s, _)| s)
        .collect();
    open_ones[0]
        .write_all(core_message(&core, &path, 1).as_bytes())
        .await
        .unwrap();
    assert!(next_text(&mut ws).await.starts_with("MESSAGE "));
    drop(open_ones);
    let mut freed = false;
    for _ in 0..100 {
        if core_connections(&gw).await == 0.0 {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "the places of closed connections were not freed");
    let mut s = connect_from("127.0.0.1", gw_port).await;
    s.write_all(core_message(&core, &path, 2).as_bytes())
        .await
        .unwrap();
    assert!(next_text(&mut ws).await.starts_with("MESSAGE "));
    gw.stop().await;
}

#[tokio::test]
async fn idle_core_connections_are_closed() {
    let core = Core::start().await;
    let mut gw = TestGateway::start(&config_with(
        core.addr,
        "udp",
        "core_idle_timeout = \"400ms\"\n",
    ))
    .await;
    let mut ws = open(&gw).await;
    let (_, gw_port) = register(&mut ws, &core).await;
    let started = Instant::now();
    let mut silent = connect_from("127.0.0.1", gw_port).await;
    let mut talking = connect_from("127.0.0.1", gw_port).await;
    // CRLF keep-alives (answered with CRLF) keep a connection open.
    let mut pong = [0u8; 2];
    let mut last = Instant::now();
    for _ in 0..8 {
        talking.write_all(b"\r\n\r\n").await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), talking.read_exact(&mut pong))
            .await
            .expect("a pong in time")
            .expect("the keep-alive connection is still open");
        assert_eq!(&pong, b"\r\n");
        last = Instant::now();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(1200));
    assert!(
        closed_within(&mut silent, Duration::ZERO).await,
        "the silent connection is still open after {:?}",
        started.elapsed()
    );
    // Then it goes quiet: closed about 400 ms after its last byte.
    assert!(closed_within(&mut talking, Duration::from_secs(5)).await);
    assert!(
        last.elapsed() >= Duration::from_millis(350),
        "{:?}",
        last.elapsed()
    );
    assert_eq!(core_connections(&gw).await, 0.0);
    gw.stop().await;
}

#[tokio::test]
async fn a_token_from_before_a_restart_is_forbidden() {
    // Same key on both runs (`sip.flow_token_key`), so only the per-start
    // value tells the two runs' tokens apart; flow ids start at 1 on each.
    let core = Core::start().await;
    let mut first = TestGateway::start(&config(core.addr)).await;
    let mut alice = open(&first).await;
    let (old_path, old_gw) = register(&mut alice, &core).await;
    drop(alice);
    first.stop().await;
    let mut gw = TestGateway::start(&config(core.addr)).await;
    let mut bob = open(&gw).await;
    let (_, gw_udp) = register(&mut bob, &core).await;
    // The core still has alice's old Path; the gateway came back (here on
    // another port, so the host is rewritten as a new route would).
    let stale = old_path.replace(&format!("@{old_gw}"), &format!("@{gw_udp}"));
    assert_ne!(stale, old_path);
    core.send(&core_message(&core, &stale, 1), gw_udp).await;
    let (resp, _) = core.recv().await;
    assert!(resp.starts_with("SIP/2.0 403 "), "{resp}");
    quiet(&mut bob, Duration::from_millis(300)).await;
    gw.stop().await;
}

#[tokio::test]
async fn headers_without_an_empty_line_get_400_from_either_side() {
    let core = Core::start().await;
    let mut gw = TestGateway::start(&config(core.addr)).await;
    let mut ws = open(&gw).await;
    let (_, gw_udp) = register(&mut ws, &core).await;
    let expected = "SIP/2.0 400 Missing Empty Line\r\nVia:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw\r\nFrom:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43\r\nTo: Watson, Thomas <sip:t.watson@example.org>;tag=";
    // From a client, more often than `sip.max_garbage` (5): each one is
    // answered and none is garbage, so the connection stays open.
    for _ in 0..6 {
        send(&mut ws, std::str::from_utf8(BADDN).unwrap()).await;
        let r = next_text(&mut ws).await;
        assert!(r.starts_with(expected), "{r}");
        assert!(
            r.ends_with("\r\nCSeq:    3923239 OPTIONS\r\nContent-Length: 0\r\n\r\n"),
            "{r}"
        );
    }
    assert_eq!(errors(&gw, "client", "sip_bad_request").await, 6.0);
    assert_eq!(errors(&gw, "client", "sip_garbage").await, 0.0);
    send(&mut ws, &REGISTER.replace("CSeq: 1", "CSeq: 2")).await;
    let (req, _) = core.recv().await;
    assert!(req.starts_with("REGISTER "), "{req}");
    // From the core: answered on the way it came.
    core.udp.send_to(BADDN, gw_udp).await.unwrap();
    let (r, from) = core.recv().await;
    assert_eq!(from, gw_udp);
    assert!(r.starts_with(expected), "{r}");
    assert_eq!(errors(&gw, "backend", "sip_parse").await, 1.0);
    gw.stop().await;
}

/// A port free on both UDP and TCP on 127.0.0.1 (released again).
async fn free_port() -> u16 {
    let core = Core::start().await;
    core.addr.port()
}

/// `sip.listen` pins the core-facing port: the same port on UDP and TCP,
/// in Via and Path, across a restart (issue 15 item 4).
#[tokio::test]
async fn sip_listen_pins_the_port_across_restarts() {
    let core = Core::start().await;
    let port = free_port().await;
    let cfg = config_with(
        core.addr,
        "udp",
        &format!("listen = \"127.0.0.1:{port}\"\n"),
    );
    for _ in 0..2 {
        let mut gw = TestGateway::start(&cfg).await;
        let mut ws = open(&gw).await;
        let (path, from) = register(&mut ws, &core).await;
        assert_eq!(from.port(), port, "datagrams come from sip.listen");
        assert!(path.contains(&format!("@127.0.0.1:{port}")), "{path}");
        // the same port on TCP
        assert!(TcpStream::connect(("127.0.0.1", port)).await.is_ok());
        drop(ws);
        gw.stop().await;
    }
}

#[tokio::test]
async fn a_taken_sip_listen_port_fails_the_start_naming_the_key() {
    let core = Core::start().await;
    let taken = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port();
    let cfg = config_with(
        core.addr,
        "udp",
        &format!("listen = \"127.0.0.1:{port}\"\n"),
    );
    let text =
        format!("[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n{cfg}");
    let config = ucgate::Config::parse(&text, "test.toml", std::path::Path::new(".")).unwrap();
    let listeners = ucgate::Listeners::bind(&config).await.unwrap();
    let err = ucgate::run(config, listeners, ucgate::Control::new())
        .await
        .expect_err("the start must fail");
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&format!("sip.listen = 127.0.0.1:{port}")),
        "{msg}"
    );
}
