//! `ucgate-bench probe` against a real gateway in-process, directly (no
//! proxy): WebSocket tunnel routes over ws:// and wss:// (test CA), XMPP
//! over WebSocket, SIP keepalives, BOSH, and the failures an operator
//! meets (refused TCP, untrusted certificate, 404, unknown XMPP domain,
//! usage errors).

mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_direct_reports_subprotocol_and_ping_round_trips() {
    let gw = Gateway::start(&tunnel_route("/echo", echo_backend().await)).await;
    let url = gw.url("ws", "/echo");
    let r = probe(&[&url, "--subprotocol", "binary", "--count", "4"], &[]).await;
    r.ok();
    assert_eq!(r.json["mode"], "probe");
    assert_eq!(r.json["kind"], "websocket");
    assert_eq!(r.json["route"]["mode"], "direct");
    assert_eq!(r.json["route"]["direct_reason"], "no_proxy_variable");
    assert_eq!(r.json["websocket"]["status"], 101);
    assert_eq!(r.json["websocket"]["subprotocol_offered"], "binary");
    assert_eq!(r.json["websocket"]["subprotocol"], "binary");
    let pings = r.json["websocket"]["ping_ms"].as_array().unwrap();
    assert_eq!(pings.len(), 4, "{}", r.json);
    assert!(pings.iter().all(|p| p.as_f64().unwrap() > 0.0));
    r.ms("/websocket/ping_avg_ms");
    r.ms("/websocket/handshake_ms");
    r.ms("/dns_ms");
    r.ms("/tcp_ms");
    assert!(r.json["tls_ms"].is_null() && r.json["tls"].is_null());
    assert!(r.json["proxy_connect_ms"].is_null());
    assert_eq!(r.json["peer"], gw.addr.to_string());
    assert_eq!(r.json["websocket"]["close_code"], 1000);
    assert!(r.json["warnings"].as_array().unwrap().is_empty());
    // the human report: one aligned line per step, ms with 2 decimals
    for step in [
        "route",
        "dns",
        "tcp",
        "handshake",
        "ping 1",
        "ping 4",
        "close",
        "result",
    ] {
        let line = r
            .stderr
            .lines()
            .find(|l| l.starts_with(&format!("{step} ")))
            .unwrap_or_else(|| panic!("no {step} line in\n{}", r.stderr));
        if step != "route" {
            let ms = line[11..23].trim();
            assert!(
                ms.ends_with(" ms") && ms.split('.').nth(1).map(|d| d.len()) == Some(5),
                "{line:?}"
            );
        }
    }
    assert!(
        r.stderr.contains("HTTP 101, subprotocol binary"),
        "{}",
        r.stderr
    );
}

/// A WebSocket server that never chooses a subprotocol (the gateway
/// refuses unknown ones with 400, other servers just ignore them).
async fn plain_ws_server() -> std::net::SocketAddr {
    use futures_util::StreamExt;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                if let Ok(mut ws) = tokio_tungstenite::accept_async(s).await {
                    while let Some(Ok(_)) = ws.next().await {}
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offered_subprotocol_not_chosen_is_a_warning() {
    let addr = plain_ws_server().await;
    let url = format!("ws://{addr}/any");
    let r = probe(&[&url, "--subprotocol", "nonesuch", "--count", "1"], &[]).await;
    r.ok();
    assert!(r.json["websocket"]["subprotocol"].is_null(), "{}", r.json);
    let w = r.json["warnings"][0].as_str().unwrap_or_default();
    assert!(
        w.contains("\"nonesuch\" was offered but the server chose none"),
        "{}",
        r.json
    );
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("warning") && l.contains("nonesuch")),
        "{}",
        r.stderr
    );

    // the gateway refuses an unknown subprotocol: the handshake step says so
    let gw = Gateway::start(&tunnel_route("/echo", echo_backend().await)).await;
    let r = probe(&[&gw.url("ws", "/echo"), "--subprotocol", "nonesuch"], &[]).await;
    r.failed("handshake");
    assert_eq!(r.json["websocket"]["status"], 400);
    assert!(
        r.error().contains("this route accepts: binary"),
        "{}",
        r.error()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_a_test_ca_reports_tls_and_chain() {
    let pki = Pki::new();
    let gw = Gateway::start(&format!(
        "{}{}",
        tls_server_section(&pki),
        tunnel_route("/echo", echo_backend().await)
    ))
    .await;
    let url = gw.url("wss", "/echo");
    let r = probe(&[&url, "--ca-file", &pki.ca_str(), "--count", "2"], &[]).await;
    r.ok();
    r.ms("/tls_ms");
    let tls = &r.json["tls"];
    assert!(
        tls["version"].as_str().unwrap().starts_with("TLSv1_"),
        "{tls}"
    );
    assert!(!tls["cipher_suite"].as_str().unwrap().is_empty(), "{tls}");
    assert_eq!(tls["alpn"], "http/1.1");
    let leaf = &tls["certificates"][0];
    assert_eq!(leaf["subject"], "CN=gateway.test");
    assert_eq!(leaf["issuer"], "CN=ucgate-bench test CA");
    assert!(leaf["not_before"].as_str().unwrap() < leaf["not_after"].as_str().unwrap());
    assert_eq!(leaf["names"], serde_json::json!(["localhost", "127.0.0.1"]));
    assert_eq!(tls["certificates"][1]["subject"], "CN=ucgate-bench test CA");
    assert!(
        r.stderr.contains("cert 0")
            && r.stderr
                .contains("subject CN=gateway.test; issuer CN=ucgate-bench test CA; valid "),
        "{}",
        r.stderr
    );

    // without the CA: the TLS step fails and says why
    let r = probe(&[&url], &[]).await;
    r.failed("tls");
    assert!(
        r.error().contains("TLS with 127.0.0.1") && r.error().contains("certificate"),
        "{}",
        r.error()
    );
    r.ms("/tcp_ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmpp_websocket_open_and_features() {
    let (server, closed) = xmpp_server().await;
    let gw = Gateway::start(&format!(
        "[[route]]\npath = \"/xmpp-websocket\"\nkind = \"xmpp-websocket\"\n{}",
        xmpp_domain(server)
    ))
    .await;
    let url = gw.url("ws", "/xmpp-websocket");
    let r = probe(
        &[
            &url,
            "--subprotocol",
            "xmpp",
            "--domain",
            "localhost",
            "--count",
            "2",
        ],
        &[],
    )
    .await;
    r.ok();
    assert_eq!(r.json["websocket"]["subprotocol"], "xmpp");
    let x = &r.json["websocket"]["xmpp"];
    assert_eq!(x["domain"], "localhost");
    r.ms("/websocket/xmpp/open_ms");
    r.ms("/websocket/xmpp/features_ms");
    assert_eq!(x["features"], true);
    assert_eq!(x["closed"], true, "{x}");
    assert!(
        x["open"]
            .as_str()
            .unwrap()
            .contains("urn:ietf:params:xml:ns:xmpp-framing"),
        "{x}"
    );
    assert_eq!(r.json["websocket"]["ping_ms"].as_array().unwrap().len(), 2);
    assert!(
        r.stderr.contains("<stream:features> received"),
        "{}",
        r.stderr
    );
    // the gateway closed the XMPP stream after our <close/>
    let mut n = 0;
    for _ in 0..50 {
        n = *closed.lock().unwrap();
        if n == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(n, 1);

    // an unknown domain: the XMPP step fails with the stream error
    let r = probe(
        &[&url, "--subprotocol", "xmpp", "--domain", "nosuch.example"],
        &[],
    )
    .await;
    r.failed("xmpp");
    assert!(r.error().contains("host-unknown"), "{}", r.error());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_keepalives_are_answered() {
    let core = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let core_addr = core.local_addr().unwrap();
    let gw = Gateway::start(&format!(
        "[[route]]\npath = \"/sip\"\nkind = \"sip-websocket\"\ncore = \"sip:{core_addr};transport=udp\"\n\n[sip]\nflow_token_key = \"a test key shared by every node\"\n"
    ))
    .await;
    let r = probe(
        &[
            &gw.url("ws", "/sip"),
            "--subprotocol",
            "sip",
            "--count",
            "3",
        ],
        &[],
    )
    .await;
    r.ok();
    assert_eq!(r.json["websocket"]["subprotocol"], "sip");
    let ka = r.json["websocket"]["sip"]["keepalive_ms"]
        .as_array()
        .unwrap();
    assert_eq!(ka.len(), 3, "{}", r.json);
    assert!(ka.iter().all(|k| k.as_f64().unwrap() > 0.0));
    assert!(r.stderr.contains("keepalive 3"), "{}", r.stderr);
    drop(core);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bosh_session_creation_and_terminate() {
    let (server, closed) = xmpp_server().await;
    let gw = Gateway::start(&format!(
        "[[route]]\npath = \"/http-bind\"\nkind = \"bosh\"\n{}",
        xmpp_domain(server)
    ))
    .await;
    let url = gw.url("http", "/http-bind");
    let r = probe(&[&url, "--domain", "localhost"], &[]).await;
    r.ok();
    assert_eq!(r.json["kind"], "bosh");
    let b = &r.json["bosh"];
    assert_eq!(b["domain"], "localhost");
    assert_eq!(b["status"], 200);
    assert!(!r.str("/bosh/sid").is_empty());
    assert_eq!(b["wait"], "10");
    assert_eq!(b["hold"], "1");
    for k in ["requests", "inactivity", "ver"] {
        assert!(b[k].is_string(), "{k} in {b}");
    }
    assert_eq!(b["features"], true, "{b}");
    r.ms("/bosh/session_ms");
    r.ms("/bosh/features_ms");
    r.ms("/bosh/terminate_ms");
    assert_eq!(b["terminate_status"], 200);
    assert!(
        r.stderr.contains(&format!("sid {}", r.str("/bosh/sid"))),
        "{}",
        r.stderr
    );
    // terminate closed the XMPP stream
    let mut n = 0;
    for _ in 0..50 {
        n = *closed.lock().unwrap();
        if n == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(n, 1);

    // the URL's host is the default domain: 127.0.0.1 is not configured
    let r = probe(&[&url], &[]).await;
    r.failed("session");
    assert!(r.error().contains("host-unknown"), "{}", r.error());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_name_the_step() {
    let dead = dead_address().await;
    let r = probe(&[&format!("ws://{dead}/echo")], &[]).await;
    r.failed("tcp");
    assert!(
        r.error()
            .contains(&format!("connecting to 127.0.0.1: {dead}:")),
        "{}",
        r.error()
    );
    r.ms("/dns_ms");
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("tcp") && l.contains("FAILED")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("FAILED at tcp: connecting to"),
        "{}",
        r.stderr
    );

    let gw = Gateway::start(&tunnel_route("/echo", echo_backend().await)).await;
    let r = probe(&[&gw.url("ws", "/nowhere")], &[]).await;
    r.failed("handshake");
    assert_eq!(r.json["websocket"]["status"], 404, "{}", r.json);
    assert!(
        r.error().starts_with("HTTP 404 Not Found instead of 101"),
        "{}",
        r.error()
    );

    let r = probe(
        &[&format!("ws://no-such-host.invalid:{}/echo", dead.port())],
        &[],
    )
    .await;
    r.failed("dns");
    assert!(
        r.error().starts_with("resolving no-such-host.invalid"),
        "{}",
        r.error()
    );
}

#[tokio::test]
async fn usage_errors_exit_2_without_json() {
    for args in [
        vec!["ftp://example.test/"],
        vec!["not a url"],
        vec!["ws://127.0.0.1:1/", "--count", "0"],
        vec!["ws://127.0.0.1:1/", "--proxy", "socks5://127.0.0.1:1080"],
        vec!["ws://127.0.0.1:1/", "--proxy", "http://p:1", "--no-proxy"],
        vec!["ws://127.0.0.1:1/", "--connect-timeout", "0"],
        vec!["http://127.0.0.1:1/http-bind", "--subprotocol", "xmpp"],
    ] {
        let r = probe(&args, &[]).await;
        assert_eq!(r.code, 2, "{args:?}: {}\n{}", r.stdout, r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
        assert!(!r.stderr.is_empty());
    }
}
