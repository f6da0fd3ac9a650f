//! Logging can neither stop the gateway nor leak a secret (issue 13, items
//! 8 and 9): SIGTERM works with stderr closed or stalled, and the most
//! verbose filter prints no SASL credential and no flow-token key.

mod common;

use std::time::Duration;

use common::process::{self, signal, wait_exit, wait_ready, KillOnDrop, Stderr};
use common::tls::*;
use common::xmpp_server::*;
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const DRAIN: Duration = Duration::from_secs(3);

fn tunnel_config(echo: std::net::SocketAddr) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndrain_timeout = \"{}s\"\n[admin]\nlisten = \"127.0.0.1:0\"\n{}",
        DRAIN.as_secs(),
        tunnel_route("/echo", echo, "")
    )
}

/// Requests that each log several lines at `trace`.
async fn make_noise(addr: std::net::SocketAddr, n: usize) {
    for _ in 0..n {
        let _ = raw_request(
            addr,
            "GET /nothing-here HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
    }
}

async fn sigterm_exits_0_with(mode: Stderr) {
    let dir = TempDir::new("logpipe");
    let echo = echo_backend().await;
    let s = process::spawn(
        &tunnel_config(echo),
        dir.path(),
        &[],
        &["--log-level", "trace"],
        mode,
    );
    let _guard = KillOnDrop(s.child.id());
    wait_ready(s.admin).await;
    // Enough log traffic to hit the closed pipe or fill the stalled one
    // (64 KiB) many times over.
    make_noise(s.main, 300).await;
    assert_eq!(http_get(s.admin, "/ready").await.0, 200, "alive and ready");
    signal(&s.child, "-TERM");
    let (code, took) = wait_exit(s.child, DRAIN + Duration::from_secs(3)).await;
    assert_eq!(code, Some(0));
    assert!(
        took <= DRAIN,
        "exit took {took:?}, drain_timeout is {DRAIN:?}"
    );
    drop(s.stalled);
}

#[tokio::test]
async fn sigterm_works_when_stderr_is_closed() {
    sigterm_exits_0_with(Stderr::Close).await;
}

#[tokio::test]
async fn sigterm_works_when_stderr_is_never_read() {
    sigterm_exits_0_with(Stderr::Stall).await;
}

/// base64("\0alice\0secret"), the scripted server's PLAIN credential.
const CREDENTIAL: &str = "AGFsaWNlAHNlY3JldA==";
const FLOW_KEY: &str = "flow-token-key-that-must-never-be-logged";

#[tokio::test]
async fn the_most_verbose_log_has_no_credential_and_no_key() {
    let dir = TempDir::new("logsecret");
    let (ca, server_tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, _seen) = scripted_server(server_tls).await;
    let sip_core = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         [[route]]\npath = \"/xmpp-websocket\"\nkind = \"xmpp-websocket\"\n\
         [[route]]\npath = \"/http-bind\"\nkind = \"bosh\"\n\
         [[route]]\npath = \"/sip\"\nkind = \"sip-websocket\"\ncore = \"sip:{}\"\n\
         [sip]\nflow_token_key = \"{FLOW_KEY}\"\n\
         [xmpp.domains.\"localhost\"]\naddress = \"{server}\"\ntls = \"starttls\"\nca_file = \"{}\"\n",
        sip_core.local_addr().unwrap(),
        ca.display()
    );
    let s = process::spawn(
        &cfg,
        dir.path(),
        &[],
        &["--log-level", "trace"],
        Stderr::Collect,
    );
    let _guard = KillOnDrop(s.child.id());
    wait_ready(s.admin).await;

    // A whole login over WebSocket, the credential in a text frame.
    let (mut ws, _) = ws_connect(
        &format!("ws://{}/xmpp-websocket", s.main),
        None,
        Some("xmpp"),
    )
    .await
    .unwrap();
    let framing = "urn:ietf:params:xml:ns:xmpp-framing";
    let send = |t: String| Message::Text(t.into());
    ws.send(send(format!(
        "<open xmlns='{framing}' to='localhost' version='1.0'/>"
    )))
    .await
    .unwrap();
    let mut seen = String::new();
    while !seen.contains("PLAIN") {
        if let Some(Ok(Message::Text(t))) = ws.next().await {
            seen.push_str(&t);
        }
    }
    ws.send(send(format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{CREDENTIAL}</auth>"
    )))
    .await
    .unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Text(t))) if t.contains("<success") => break,
            Some(Ok(_)) => continue,
            other => panic!("no SASL success: {other:?}"),
        }
    }
    ws.send(send(format!("<close xmlns='{framing}'/>")))
        .await
        .unwrap();
    while ws.next().await.is_some() {}

    // The same credential in a BOSH request body.
    let body = "<body rid='1000' xmlns='http://jabber.org/protocol/httpbind' to='localhost' wait='5' hold='1' ver='1.11' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh'/>";
    let created = bosh_post(s.main, body).await;
    let sid = created
        .split("sid='")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .unwrap_or_else(|| panic!("no sid in {created}"))
        .to_string();
    let auth = format!(
        "<body rid='1001' sid='{sid}' xmlns='http://jabber.org/protocol/httpbind'><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{CREDENTIAL}</auth></body>"
    );
    let answer = bosh_post(s.main, &auth).await;
    assert!(
        answer.contains("success") || answer.contains("<body"),
        "{answer}"
    );

    // A SIP message through the route that uses the key.
    let (mut sws, _) = ws_connect(&format!("ws://{}/sip", s.main), None, Some("sip"))
        .await
        .unwrap();
    sws.send(Message::Text(
        "OPTIONS sip:x@localhost SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK1\r\nFrom: <sip:a@localhost>;tag=1\r\nTo: <sip:x@localhost>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n".into(),
    ))
    .await
    .unwrap();
    let mut dgram = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(5), sip_core.recv_from(&mut dgram))
        .await
        .expect("the OPTIONS reached the core")
        .unwrap();
    drop(sws);

    signal(&s.child, "-TERM");
    let (code, _) = wait_exit(s.child, Duration::from_secs(15)).await;
    assert_eq!(code, Some(0));
    let log = s.log.lock().unwrap().join("\n");
    // `trace` for ucgate's own targets, `debug` for libraries (rustls' handshake).
    assert!(
        log.lines().count() > 20
            && log.contains("\"level\":\"DEBUG\",\"message\":\"Using ciphersuite"),
        "the log is not verbose:\n{log}"
    );
    for secret in [CREDENTIAL, "alice\\u0000secret", FLOW_KEY] {
        let hit = log.lines().find(|l| l.contains(secret));
        assert!(hit.is_none(), "`{secret}` is in the log: {}", hit.unwrap());
    }
}

async fn bosh_post(addr: std::net::SocketAddr, body: &str) -> String {
    let req = format!(
        "POST /http-bind HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tokio::time::timeout(Duration::from_secs(10), raw_request(addr, &req))
        .await
        .expect("a BOSH answer in time")
}

/// The access line of `kind` whose fields contain every one of `want`.
fn access_line<'a>(log: &'a str, kind: &str, want: &[&str]) -> Option<&'a str> {
    log.lines().find(|l| {
        l.contains("\"target\":\"ucgate::access\"")
            && l.contains(&format!("\"kind\":\"{kind}\""))
            && want.iter().all(|w| l.contains(w))
    })
}

/// Issue 15 item 5: one access line per HTTP request and per ended
/// WebSocket or BOSH session; none with `log.access = false`.
#[tokio::test]
async fn the_access_log_has_a_line_per_request_and_per_ended_session() {
    let dir = TempDir::new("access");
    let (ca, server_tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, _seen) = scripted_server(server_tls).await;
    let echo = echo_backend().await;
    let base = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n{}\
         [[route]]\npath = \"/http-bind\"\nkind = \"bosh\"\n\
         [xmpp.domains.\"localhost\"]\naddress = \"{server}\"\ntls = \"starttls\"\nca_file = \"{}\"\n",
        tunnel_route("/echo", echo, ""),
        ca.display()
    );
    for access in [true, false] {
        let cfg = if access {
            base.clone()
        } else {
            format!("{base}[log]\naccess = false\n")
        };
        // (that it does not depend on `log.level`: logging.rs's unit test)
        let s = process::spawn(&cfg, dir.path(), &[], &[], Stderr::Collect);
        let _guard = KillOnDrop(s.child.id());
        wait_ready(s.admin).await;

        let missing = raw_request(
            s.main,
            "GET /nothing-here?secret=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");

        let (mut ws, _) = ws_connect(&format!("ws://{}/echo", s.main), None, None)
            .await
            .unwrap();
        ws.send(Message::Binary(b"hello".to_vec().into()))
            .await
            .unwrap();
        assert_eq!(read_ws_bytes(&mut ws, 5).await, b"hello");
        ws.close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
            reason: "".into(),
        }))
        .await
        .unwrap();
        tokio::time::timeout(Duration::from_secs(10), async {
            while ws.next().await.is_some() {}
        })
        .await
        .expect("the gateway ends the WebSocket after its close reply");

        let create = "<body rid='1000' xmlns='http://jabber.org/protocol/httpbind' to='localhost' wait='5' hold='1' ver='1.11' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh'/>";
        let created = bosh_post(s.main, create).await;
        let sid = created
            .split("sid='")
            .nth(1)
            .and_then(|r| r.split('\'').next())
            .unwrap_or_else(|| panic!("no sid in {created}"))
            .to_string();
        let end = format!(
            "<body rid='1001' sid='{sid}' type='terminate' xmlns='http://jabber.org/protocol/httpbind'/>"
        );
        let ended = bosh_post(s.main, &end).await;
        assert!(ended.contains("type='terminate'"), "{ended}");

        signal(&s.child, "-TERM");
        let (code, _) = wait_exit(s.child, Duration::from_secs(15)).await;
        assert_eq!(code, Some(0));
        let log = s.log.lock().unwrap().join("\n");
        if !access {
            assert!(
                !log.contains("ucgate::access"),
                "access lines with log.access = false:\n{log}"
            );
            continue;
        }
        let line = |kind: &str, want: &[&str]| {
            access_line(&log, kind, want)
                .unwrap_or_else(|| panic!("no {kind} access line with {want:?} in\n{log}"))
        };
        // the path without its query string, no route, the status
        let l = line(
            "http",
            &[
                "\"path\":\"/nothing-here\"",
                "\"route\":\"none\"",
                "\"status\":404",
                "\"method\":\"GET\"",
            ],
        );
        assert!(!l.contains("secret"), "{l}");
        assert!(l.contains("\"client\":\"127.0.0.1:"), "{l}");
        // the WebSocket once, at its end, with the client's close code
        line(
            "websocket",
            &[
                "\"route\":\"/echo\"",
                "\"close\":\"1000\"",
                "\"bytes_in\":5,",
                "\"bytes_out\":5,",
            ],
        );
        assert!(
            access_line(&log, "http", &["\"path\":\"/echo\""]).is_none(),
            "an accepted upgrade has no request line"
        );
        // each BOSH request, then the session, without its sid
        line(
            "http",
            &[
                "\"route\":\"/http-bind\"",
                "\"status\":200",
                "\"method\":\"POST\"",
                &format!("\"bytes_in\":{},", create.len()),
            ],
        );
        let b = line("bosh", &["\"route\":\"/http-bind\"", "\"requests\":2,"]);
        assert!(!b.contains(&sid), "{b}");
        assert!(
            b.contains(&format!("\"bytes_in\":{},", create.len() + end.len())),
            "{b}"
        );
    }
}

/// Issue 15 item 5: a refusal the client caused is counted every time and
/// logged once per cause and minute, at `info`, with `side=client`.
#[tokio::test]
async fn client_refusals_are_counted_every_time_and_logged_once_per_cause() {
    let dir = TempDir::new("refusals");
    let echo = echo_backend().await;
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n{}",
        tunnel_route("/echo", echo, "origins = [\"https://good.example\"]")
    );
    let s = process::spawn(&cfg, dir.path(), &[], &[], Stderr::Collect);
    let _guard = KillOnDrop(s.child.id());
    wait_ready(s.admin).await;
    let url = format!("ws://{}/echo", s.main);
    for origin in ["https://evil.example"; 5]
        .into_iter()
        .chain(["https://other.example"])
    {
        let e = ws_connect(&url, Some(origin), None).await.unwrap_err();
        assert!(e.to_string().contains("403"), "{origin}: {e}");
    }
    let metrics = raw_request(
        s.admin,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let metrics = metrics.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert_eq!(
        metric_value(
            metrics,
            "ucgate_ws_refusals_total",
            &[("route", "/echo"), ("reason", "origin_forbidden")]
        ),
        Some(6.0),
        "{metrics}"
    );
    signal(&s.child, "-TERM");
    let (code, _) = wait_exit(s.child, Duration::from_secs(15)).await;
    assert_eq!(code, Some(0));
    let log = s.log.lock().unwrap().join("\n");
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WebSocket handshake refused"))
        .collect();
    assert_eq!(refused.len(), 2, "one line per refused origin:\n{log}");
    for (line, origin) in refused.iter().zip(["evil", "other"]) {
        assert!(
            line.contains("\"level\":\"INFO\"")
                && line.contains("\"side\":\"client\"")
                && line.contains("\"cause\":\"origin_forbidden\"")
                && line.contains(&format!("\"detail\":\"https://{origin}.example\"")),
            "{line}"
        );
    }
}
