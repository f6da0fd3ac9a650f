//! Issue 16 item 1: a reload (SIGHUP) applies the whole configuration file
//! without dropping anyone. A WebSocket and a BOSH session stay open and
//! keep exchanging messages across a reload that adds a route, changes an
//! origin list and removes another route; the new route serves at once; the
//! removed route answers 404 to new requests while its open WebSocket goes
//! on and ends cleanly. A file with errors changes nothing; a setting that
//! needs a restart is reported and kept.

mod common;

use std::time::Duration;

use common::bosh_client::*;
use common::process::{self, signal, wait_exit, wait_ready, KillOnDrop, Stderr};
use common::tls::*;
use common::xmpp_server::*;
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

fn config(
    echo: std::net::SocketAddr,
    xmpp: std::net::SocketAddr,
    ca: &std::path::Path,
    routes: &str,
) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         [[route]]\npath = \"/http-bind\"\nkind = \"bosh\"\n\
         {routes}\
         [xmpp.domains.\"localhost\"]\naddress = \"{xmpp}\"\ntls = \"starttls\"\nca_file = \"{}\"\n",
        ca.display()
    )
    .replace("ECHO", &echo.to_string())
}

/// Waits until `ucgate_config_reloads_total{result}` reaches `n`.
async fn reloads(admin: std::net::SocketAddr, result: &str, n: f64) {
    for _ in 0..100 {
        let (_, text) = http_get(admin, "/metrics").await;
        if metric_value(&text, "ucgate_config_reloads_total", &[("result", result)]) == Some(n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {n} reloads with result {result}");
}

async fn echo_once(ws: &mut Ws, text: &str) {
    ws.send(Message::Binary(text.as_bytes().to_vec().into()))
        .await
        .unwrap();
    assert_eq!(read_ws_bytes(ws, text.len()).await, text.as_bytes());
}

fn status(e: &tokio_tungstenite::tungstenite::Error) -> u16 {
    match e {
        tokio_tungstenite::tungstenite::Error::Http(r) => r.status().as_u16(),
        other => panic!("not an HTTP refusal: {other}"),
    }
}

#[tokio::test]
async fn a_reload_changes_routes_and_origins_and_drops_no_session() {
    let dir = TempDir::new("reload");
    let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
    let (xmpp, _seen) = scripted_server(tls).await;
    let echo = echo_backend().await;
    let before = config(
        echo,
        xmpp,
        &ca,
        "[[route]]\npath = \"/echo\"\nkind = \"tcp\"\nbackend = \"ECHO\"\norigins = [\"https://a.example\"]\n\
         [[route]]\npath = \"/old\"\nkind = \"tcp\"\nbackend = \"ECHO\"\norigins = [\"https://a.example\"]\n",
    );
    let s = process::spawn(&before, dir.path(), &[], &[], Stderr::Collect);
    let _guard = KillOnDrop(s.child.id());
    wait_ready(s.admin).await;
    let url = |p: &str| format!("ws://{}{p}", s.main);

    // open before the reload: a WebSocket on a route that stays, one on a
    // route that goes, and a BOSH session
    let (mut stays, _) = ws_connect(&url("/echo"), Some("https://a.example"), None)
        .await
        .unwrap();
    let (mut goes, _) = ws_connect(&url("/old"), Some("https://a.example"), None)
        .await
        .unwrap();
    echo_once(&mut stays, "before").await;
    echo_once(&mut goes, "before").await;
    let gw = TestGateway::at(s.main, s.admin);
    let mut bosh = login(&gw, false).await;
    let chat = |n: u32| {
        format!("<message xmlns='jabber:client' to='bob@localhost' type='chat' id='c{n}'><body>hello {n}</body></message>")
    };
    let mut got = bosh.send("", &chat(1)).await;
    while !got.contains("hello 1") {
        got = bosh.send("", "").await;
    }

    // the new file: /new added, /echo's origins changed, /old removed
    let after = config(
        echo,
        xmpp,
        &ca,
        "[[route]]\npath = \"/echo\"\nkind = \"tcp\"\nbackend = \"ECHO\"\norigins = [\"https://b.example\"]\n\
         [[route]]\npath = \"/new\"\nkind = \"tcp\"\nbackend = \"ECHO\"\norigins = [\"https://b.example\"]\n",
    );
    std::fs::write(dir.path().join("ucgate.toml"), &after).unwrap();
    signal(&s.child, "-HUP");
    reloads(s.admin, "ok", 1.0).await;

    // everything open goes on
    echo_once(&mut stays, "after").await;
    echo_once(&mut goes, "after").await;
    let mut got = bosh.send("", &chat(2)).await;
    while !got.contains("hello 2") {
        got = bosh.send("", "").await;
    }
    // the new route serves at once, the removed one is 404 for newcomers
    let (mut fresh, _) = ws_connect(&url("/new"), Some("https://b.example"), None)
        .await
        .unwrap();
    echo_once(&mut fresh, "new").await;
    let e = ws_connect(&url("/old"), Some("https://a.example"), None)
        .await
        .unwrap_err();
    assert_eq!(status(&e), 404);
    // the changed origin list applies to new handshakes
    let e = ws_connect(&url("/echo"), Some("https://a.example"), None)
        .await
        .unwrap_err();
    assert_eq!(status(&e), 403);
    ws_connect(&url("/echo"), Some("https://b.example"), None)
        .await
        .unwrap();
    // the removed route's WebSocket ends cleanly: our close is answered
    goes.close(None).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        let mut closed = false;
        while let Some(m) = goes.next().await {
            closed |= matches!(m, Ok(Message::Close(_)));
        }
        closed
    })
    .await
    .unwrap();
    assert!(end, "the close handshake completed");

    // a file with errors changes nothing
    std::fs::write(dir.path().join("ucgate.toml"), "[server]\nlisen = 1\n").unwrap();
    signal(&s.child, "-HUP");
    reloads(s.admin, "error", 1.0).await;
    echo_once(&mut fresh, "still").await;
    ws_connect(&url("/new"), Some("https://b.example"), None)
        .await
        .unwrap();

    // a setting that needs a restart is reported and kept, the rest applies
    let restart = after.replace(
        "[server]\nlisten = \"127.0.0.1:0\"\n",
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_connections = 77\n",
    ) + "[[route]]\npath = \"/third\"\nkind = \"tcp\"\nbackend = \"ECHO\"\norigins = [\"https://b.example\"]\n";
    std::fs::write(
        dir.path().join("ucgate.toml"),
        restart.replace("ECHO", &echo.to_string()),
    )
    .unwrap();
    signal(&s.child, "-HUP");
    reloads(s.admin, "partial", 1.0).await;
    ws_connect(&url("/third"), Some("https://b.example"), None)
        .await
        .unwrap();
    echo_once(&mut stays, "last").await;

    signal(&s.child, "-TERM");
    let (code, _) = wait_exit(s.child, Duration::from_secs(20)).await;
    assert_eq!(code, Some(0));
    let log = s.log.lock().unwrap().join("\n");
    assert!(
        log.contains("configuration reload refused") && log.contains("`server.lisen`: unknown key"),
        "the refused reload names its errors:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("needs a restart") && l.contains("[server] limits and timeouts")),
        "the restart-only change is named:\n{log}"
    );
}
