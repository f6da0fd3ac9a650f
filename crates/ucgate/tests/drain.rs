//! The drain for rolling restarts (issue 17 item 4), beyond WebSockets
//! (shutdown.rs): BOSH sessions of a cluster node are served until the
//! goodbye deadline, then get `system-shutdown` or `see-other-uri`; a
//! single node ends them at once; new sessions are refused with 503 from
//! the start of the drain; SIP WebSockets without a call close at their
//! turn, those with a call when it ends or at the goodbye deadline.

mod common;

use std::time::{Duration, Instant};

use common::bosh_client::*;
use common::sip::{self as sipc, Core};
use common::tls::*;
use common::xmpp_server::*;
use common::*;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const SECRET: &str = "a shared secret of more than 32 characters";
const OTHER: &str = "https://other.example/http-bind";

/// A BOSH route with `hold` up to 2, a drain of `drain_timeout`, `[bosh]`
/// extras, and `[cluster]` or not.
fn bosh_config(
    server: std::net::SocketAddr,
    ca: &std::path::Path,
    server_extra: &str,
    bosh_extra: &str,
    cluster: bool,
) -> String {
    let cluster = if cluster {
        format!(
            "[cluster]\nnode = \"gw-a\"\nsecret = \"{SECRET}\"\nlisten = \"127.0.0.1:0\"\n\
             [cluster.peers]\ngw-b = \"127.0.0.2:45291\"\n"
        )
    } else {
        String::new()
    };
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{server_extra}\n\n[[route]]\npath = \"/http-bind\"\nkind = \"bosh\"\n\n\
         [bosh]\nmax_hold = 2\nmax_requests = 3\n{bosh_extra}\n\n\
         [xmpp.domains.\"localhost\"]\naddress = \"{server}\"\ntls = \"starttls\"\nca_file = \"{}\"\n\n{cluster}",
        ca.display()
    )
}

fn chat(body: &str) -> String {
    format!("<message xmlns='jabber:client' to='bob@localhost' type='chat'><body>{body}</body></message>")
}

/// A cluster node with a drain of 3 s: the goodbye deadline is 2.25 s
/// after the drain starts. Two requests are held when it starts; the
/// server's message that comes 0.5 s into the drain reaches the client on
/// the first, the second gets `expected` at the deadline.
async fn served_through_the_drain(bosh_extra: &str, expected: &str) {
    let dir = TempDir::new("drain-bosh-cluster");
    let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, seen) = scripted_server(tls).await;
    let mut gw = TestGateway::start(&bosh_config(
        server,
        &ca,
        "drain_timeout = \"3s\"",
        bosh_extra,
        true,
    ))
    .await;
    let c = login_holding(&gw, false, 2).await;
    // the server answers 1 s after it reads this, i.e. ~0.5 s into the drain
    let first = {
        let c = c.twin();
        tokio::spawn(async move { c.send_rid(c.rid + 1, "", &chat("later 1000")).await })
    };
    tokio::time::sleep(Duration::from_millis(250)).await;
    let second = {
        let c = c.twin();
        tokio::spawn(async move { c.send_rid(c.rid + 2, "", "").await })
    };
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(!first.is_finished() && !second.is_finished(), "both held");

    let drain = Instant::now();
    gw.control.shutdown.cancel();
    let text = tokio::time::timeout(Duration::from_secs(5), first)
        .await
        .expect("the first answer in time")
        .unwrap();
    let at = drain.elapsed();
    assert_eq!(bodies(&text), ["late"], "the session still serves: {text}");
    assert!(!text.contains("terminate"), "{text}");
    assert!(at >= Duration::from_millis(300), "{at:?}");
    let text = tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .expect("the second answer in time")
        .unwrap();
    let at = drain.elapsed();
    assert_eq!(text, expected);
    assert!(
        at >= Duration::from_millis(2100) && at < Duration::from_millis(2900),
        "ended at the goodbye deadline (2.25 s), not {at:?}"
    );
    // the server's stream was closed properly when the session ended
    tokio::time::timeout(Duration::from_secs(2), async {
        while !seen.lock().unwrap().closed_cleanly {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("</stream:stream> to the server");
    // nothing else was left: the drain ends before its deadline
    gw.stop().await;
    assert!(
        drain.elapsed() < Duration::from_millis(2950),
        "{:?}",
        drain.elapsed()
    );
}

#[tokio::test]
async fn a_cluster_node_serves_bosh_sessions_through_the_drain_then_system_shutdown() {
    served_through_the_drain(
        "",
        "<body xmlns='http://jabber.org/protocol/httpbind' type='terminate' condition='system-shutdown'/>",
    )
    .await;
}

#[tokio::test]
async fn a_cluster_node_sends_see_other_uri_at_the_end_of_the_drain_where_configured() {
    served_through_the_drain(
        &format!("drain_see_other_uri = \"{OTHER}\""),
        &format!("<body xmlns='http://jabber.org/protocol/httpbind' type='terminate' condition='see-other-uri'><uri>{OTHER}</uri></body>"),
    )
    .await;
}

/// Two nodes; `gw-a` owns the session and drains. Its public listener is
/// closed, but the session goes on through `gw-b`, which forwards its
/// requests over `gw-a`'s internal listener: messages both ways, then
/// `system-shutdown` at `gw-a`'s goodbye deadline (2.25 s for a 3 s drain).
#[tokio::test]
async fn a_draining_nodes_session_goes_on_through_another_node() {
    let dir = TempDir::new("drain-bosh-forward");
    let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, _) = scripted_server(tls).await;
    let internal = [free_addr("127.0.0.1"), free_addr("127.0.0.1")];
    let node = |name: &str, me: usize, other: &str| {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndrain_timeout = \"3s\"\n\n\
             [[route]]\npath = \"/http-bind\"\nkind = \"bosh\"\n\n\
             [xmpp.domains.\"localhost\"]\naddress = \"{server}\"\ntls = \"starttls\"\nca_file = \"{}\"\n\n\
             [cluster]\nnode = \"{name}\"\nsecret = \"{SECRET}\"\nlisten = \"{}\"\n\
             [cluster.peers]\n{other} = \"{}\"\n",
            ca.display(),
            internal[me],
            internal[1 - me],
        )
    };
    let mut a = TestGateway::start(&node("gw-a", 0, "gw-b")).await;
    let mut b = TestGateway::start(&node("gw-b", 1, "gw-a")).await;
    let mut c = login(&a, false).await;
    assert!(c.sid.starts_with("gw-a."), "{}", c.sid);

    let drain = Instant::now();
    a.control.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), async {
        while tokio::net::TcpStream::connect(a.addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("gw-a's public listener closes");
    c.addr = b.addr;
    for i in 0..3 {
        let text = c.send("", &chat(&format!("through b {i}"))).await;
        assert_eq!(bodies(&text), [format!("through b {i}")], "{text}");
    }
    let text = c.send("", &chat("flood 5")).await;
    let mut got = bodies(&text);
    while got.len() < 5 {
        got.extend(bodies(&c.send("", "").await));
    }
    assert_eq!(got, ["m1", "m2", "m3", "m4", "m5"]);
    assert!(
        drain.elapsed() < Duration::from_secs(2),
        "{:?}",
        drain.elapsed()
    );
    // held at gw-a through gw-b until gw-a's goodbye deadline
    let text = c.send("", "").await;
    let at = drain.elapsed();
    assert_eq!(
        text,
        "<body xmlns='http://jabber.org/protocol/httpbind' type='terminate' condition='system-shutdown'/>"
    );
    assert!(
        at >= Duration::from_millis(2100) && at < Duration::from_millis(2900),
        "{at:?}"
    );
    assert!(
        b.metric("ucgate_cluster_forwards_total", &[("peer", "gw-a")])
            .await
            >= 6.0
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_single_node_ends_bosh_sessions_when_the_drain_starts() {
    let dir = TempDir::new("drain-bosh-single");
    let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, _) = scripted_server(tls).await;
    let mut gw = TestGateway::start(&bosh_config(
        server,
        &ca,
        "drain_timeout = \"10s\"",
        &format!("drain_see_other_uri = \"{OTHER}\""),
        false,
    ))
    .await;
    let c = login(&gw, false).await;
    let held = {
        let c = c.twin();
        tokio::spawn(async move { c.send_rid(c.rid + 1, "", "").await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let drain = Instant::now();
    gw.control.shutdown.cancel();
    let text = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        text,
        format!("<body xmlns='http://jabber.org/protocol/httpbind' type='terminate' condition='see-other-uri'><uri>{OTHER}</uri></body>")
    );
    assert!(
        drain.elapsed() < Duration::from_secs(1),
        "{:?}",
        drain.elapsed()
    );
    gw.stop().await;
}

#[tokio::test]
async fn new_bosh_sessions_are_refused_with_503_once_the_drain_has_begun() {
    let dir = TempDir::new("drain-bosh-new");
    let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, _) = scripted_server(tls).await;
    let mut gw = TestGateway::start(&bosh_config(
        server,
        &ca,
        "shutdown_delay = \"2s\"\ndrain_timeout = \"1s\"",
        "",
        true,
    ))
    .await;
    let mut c = login(&gw, false).await;
    gw.control.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // during the shutdown delay the listener still accepts
    let create = format!(
        "<body xmlns='{NS}' xmlns:xmpp='urn:xmpp:xbosh' rid='1' to='localhost' wait='10' hold='1' ver='1.11' xmpp:version='1.0'/>"
    );
    let raw = raw_request(
        gw.addr,
        &format!(
            "POST /http-bind HTTP/1.1\r\nHost: {}\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\n\r\n{create}",
            gw.addr,
            create.len()
        ),
    )
    .await;
    let (status, body) = parse_response(&raw);
    assert_eq!(status, 503, "{raw}");
    let head = raw.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    assert!(
        head.contains("\r\nconnection: close"),
        "the retry goes out on a new connection: {raw}"
    );
    assert!(body.contains("shutting down"), "{body}");
    // the sessions already here are served as before
    let text = c.send("", &chat("still here")).await;
    assert_eq!(bodies(&text), ["still here"], "{text}");
    assert_eq!(
        gw.metric(
            "ucgate_http_responses_total",
            &[("route", "/http-bind"), ("code", "503")]
        )
        .await,
        1.0
    );
    gw.stop().await;
}

const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKinv-CALL\r\n\
Max-Forwards: 70\r\n\
To: <sip:bob@example.com>\r\n\
From: <sip:alice@example.com>;tag=a-CALL\r\n\
Call-ID: call-CALL\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:x1@df7jal23ls0d.invalid;transport=ws;ob>\r\n\
Content-Length: 0\r\n\r\n";

const BYE: &str = "BYE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKbye-CALL\r\n\
Max-Forwards: 70\r\n\
To: <sip:bob@example.com>;tag=stub\r\n\
From: <sip:alice@example.com>;tag=a-CALL\r\n\
Call-ID: call-CALL\r\n\
CSeq: 2 BYE\r\n\
Content-Length: 0\r\n\r\n";

/// A SIP WebSocket with a call established through the stub core.
async fn with_call(gw: &TestGateway, core: &Core, name: &str) -> Ws {
    let mut ws = sipc::open(gw).await;
    sipc::send(&mut ws, &INVITE.replace("CALL", name)).await;
    let (req, from) = core.recv().await;
    assert!(req.starts_with("INVITE "), "{req}");
    core.send(&sipc::response(&req, "200 OK"), from).await;
    let ok = sipc::next_text(&mut ws).await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    ws
}

/// Waits for the close frame; its code and when it came.
async fn closed(ws: &mut Ws, since: Instant) -> (CloseCode, Duration) {
    let code = sipc::expect_close(ws).await;
    (code, since.elapsed())
}

/// With `drain_spread = 3s` the turns of the first four connections
/// (tickets 0 to 3) are 0 s, 1.8 s, 0.7 s and 2.5 s after the drain starts
/// (`ucgate_proto::drain`); the call deadline is the end of the spread, 3 s.
#[tokio::test]
async fn sip_websockets_without_a_call_close_first_those_with_one_when_it_ends() {
    let core = Core::start().await;
    let mut gw = TestGateway::start(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndrain_timeout = \"4s\"\ndrain_spread = \"3s\"\n{}",
        sipc::config(core.addr)
    ))
    .await;
    let mut idle = sipc::open(&gw).await; // turn 0 s
    let mut endless = with_call(&gw, &core, "one").await; // turn 1.8 s
    let mut ended = with_call(&gw, &core, "two").await; // turn 0.7 s
                                                        // a call that failed is no call: turn 2.5 s
    let mut failed = sipc::open(&gw).await;
    sipc::send(&mut failed, &INVITE.replace("CALL", "three")).await;
    let (req, from) = core.recv().await;
    core.send(&sipc::response(&req, "486 Busy Here"), from)
        .await;
    assert!(sipc::next_text(&mut failed)
        .await
        .starts_with("SIP/2.0 486 "));

    let drain = Instant::now();
    gw.control.shutdown.cancel();
    let (code, at) = closed(&mut idle, drain).await;
    assert_eq!(code, CloseCode::Away);
    assert!(at < Duration::from_millis(500), "at its turn: {at:?}");
    // past its turn (0.7 s) the call goes on
    let next =
        tokio::time::timeout_at((drain + Duration::from_millis(1200)).into(), ended.next()).await;
    assert!(next.is_err(), "still open during the call: {next:?}");
    // the call ends: the connection closes right after the BYE
    sipc::send(&mut ended, &BYE.replace("CALL", "two")).await;
    let (bye, _) = core.recv().await;
    assert!(bye.starts_with("BYE "), "{bye}");
    let (code, at) = closed(&mut ended, drain).await;
    assert_eq!(code, CloseCode::Away);
    assert!(
        at < Duration::from_millis(1800),
        "when the call ended: {at:?}"
    );
    // past its turn (1.8 s) the other call goes on
    let next =
        tokio::time::timeout_at((drain + Duration::from_millis(2300)).into(), endless.next()).await;
    assert!(next.is_err(), "still open during the call: {next:?}");
    // the connection without a call closes at its turn, before
    let (code, at) = closed(&mut failed, drain).await;
    assert_eq!(code, CloseCode::Away);
    assert!(
        at >= Duration::from_millis(2400) && at < Duration::from_millis(2900),
        "at its turn (2.5 s): {at:?}"
    );
    // the call that does not end: at the end of the spread
    let (code, at) = closed(&mut endless, drain).await;
    assert_eq!(code, CloseCode::Away);
    assert!(
        at >= Duration::from_millis(2950) && at < Duration::from_millis(3500),
        "at the end of the spread (3 s): {at:?}"
    );
    for ws in [&mut idle, &mut ended, &mut failed, &mut endless] {
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while ws.next().await.is_some() {}
        })
        .await;
    }
    gw.stop().await;
}
