//! BOSH over real HTTP (HTTP/1.1 and HTTP/2) against a scripted in-process
//! XMPP server that requires STARTTLS: login, restart, chat, dropped
//! responses re-sent with the same rid (every stanza exactly once, in
//! order), unknown sid, CORS, limits, shutdown.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::bosh_client::*;
use common::tls::*;
use common::xmpp_server::*;
use common::*;
use http_body_util::Full;

fn config(server: std::net::SocketAddr, ca: &std::path::Path, extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nh2c = true\n{extra}\n[[route]]\npath = \"/http-bind\"\nkind = \"bosh\"\n\n[xmpp.domains.\"localhost\"]\naddress = \"{server}\"\ntls = \"starttls\"\nca_file = \"{}\"\n",
        ca.display()
    )
}

async fn flood_exactly_once(h2: bool) {
    let dir = TempDir::new(if h2 { "bosh-h2" } else { "bosh-h1" });
    let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, seen) = scripted_server(tls).await;
    let gw = TestGateway::start(&config(server, &ca, "")).await;
    let mut c = login(&gw, h2).await;
    let n = 200;
    let mut got: Vec<String> = flooded(&c.send("", &flood_request(n)).await).collect();
    let mut rounds = 0;
    while got.len() < n {
        rounds += 1;
        assert!(rounds < 500, "only {} of {n} stanzas arrived", got.len());
        c.rid += 1;
        let rid = c.rid;
        let text = c.send_rid(rid, "", "").await;
        if rounds % 3 == 0 {
            // The response "got lost": re-send the same rid; the gateway
            // must answer with the same body again (XEP-0124 §14.3).
            let again = c.send_rid(rid, "", "").await;
            assert_eq!(again, text, "a re-sent rid gets the cached response");
        }
        got.extend(flooded(&text));
    }
    let expected: Vec<String> = (1..=n).map(|i| format!("m{i}")).collect();
    assert_eq!(got, expected, "every stanza exactly once, in order");
    assert!(seen
        .lock()
        .unwrap()
        .stanzas
        .iter()
        .any(|s| s.contains("flood 200")));
    // terminate with a payload: the payload reaches the server first
    let end = c.send("type='terminate'", "<message xmlns='jabber:client' to='bob@localhost' type='chat'><body>bye</body></message>").await;
    assert!(
        end.contains("type='terminate'") || end.contains("type=\"terminate\""),
        "{end}"
    );
    for _ in 0..50 {
        if seen
            .lock()
            .unwrap()
            .stanzas
            .iter()
            .any(|s| s.contains("<body>bye</body>"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen
        .lock()
        .unwrap()
        .stanzas
        .iter()
        .any(|s| s.contains("<body>bye</body>")));
    // the sid is gone
    let gone = c.send("", "").await;
    assert!(gone.contains("item-not-found"), "{gone}");
    let mut active = 1.0;
    for _ in 0..50 {
        active = gw.metric("ucgate_bosh_sessions_active", &[]).await;
        if active == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(active, 0.0);
}

#[tokio::test]
async fn dropped_responses_lose_nothing_over_http1() {
    flood_exactly_once(false).await;
}

#[tokio::test]
async fn dropped_responses_lose_nothing_over_http2() {
    flood_exactly_once(true).await;
}

#[tokio::test]
async fn unknown_sid_and_bad_bodies() {
    let dir = TempDir::new("bosh-bad");
    let (ca, _) = ca_and_server(dir.path(), &["localhost"]);
    let gw = TestGateway::start(&config("127.0.0.1:9".parse().unwrap(), &ca, "")).await;
    let c = Client::new(gw.addr, false).await;
    let (status, text) = c
        .post_raw(format!("<body xmlns='{NS}' rid='1' sid='nope'/>"))
        .await;
    assert_eq!(status, 200);
    assert!(
        text.contains("type='terminate'") && text.contains("item-not-found"),
        "{text}"
    );
    assert_eq!(gw.metric("ucgate_bosh_bad_sid_total", &[]).await, 1.0);
    let (status, text) = c.post_raw("<notbody/>".into()).await;
    assert!(text.contains("bad-request"), "{status} {text}");
    let (status, text) = c
        .post_raw(format!("<body xmlns='{NS}' rid='1'><!-- x --></body>"))
        .await;
    assert!(text.contains("bad-request"), "{status} {text}");
    // GET answers a human-readable page
    let (status, body) = http_get(gw.addr, "/http-bind").await;
    assert_eq!(status, 200);
    assert!(body.contains("BOSH"));
}

#[tokio::test]
async fn unknown_domain_is_host_unknown() {
    let dir = TempDir::new("bosh-unknown");
    let (ca, _) = ca_and_server(dir.path(), &["localhost"]);
    let gw = TestGateway::start(&config("127.0.0.1:9".parse().unwrap(), &ca, "")).await;
    let mut c = Client::new(gw.addr, false).await;
    let text = c
        .send(
            "to='evil.example' wait='5' hold='1' ver='1.11' xmpp:version='1.0'",
            "",
        )
        .await;
    assert!(text.contains("host-unknown"), "{text}");
}

#[tokio::test]
async fn cors_preflight_and_origin_checks() {
    let dir = TempDir::new("bosh-cors");
    let (ca, _) = ca_and_server(dir.path(), &["localhost"]);
    let cfg = config("127.0.0.1:9".parse().unwrap(), &ca, "").replace(
        "kind = \"bosh\"\n",
        "kind = \"bosh\"\norigins = [\"https://app.example\"]\n",
    );
    let gw = TestGateway::start(&cfg).await;
    let raw = raw_request(gw.addr, &format!("OPTIONS /http-bind HTTP/1.1\r\nHost: {}\r\nOrigin: https://app.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\nConnection: close\r\n\r\n", gw.addr)).await;
    let lower = raw.to_ascii_lowercase();
    assert!(raw.starts_with("HTTP/1.1 204"), "{raw}");
    assert!(
        lower.contains("access-control-allow-origin: https://app.example"),
        "{raw}"
    );
    assert!(
        lower.contains("access-control-allow-methods: post"),
        "{raw}"
    );
    assert!(
        !lower.contains("access-control-allow-credentials"),
        "credentials are off by default"
    );
    let raw = raw_request(gw.addr, &format!("OPTIONS /http-bind HTTP/1.1\r\nHost: {}\r\nOrigin: https://evil.example\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n", gw.addr)).await;
    assert!(raw.starts_with("HTTP/1.1 403"), "{raw}");
    assert!(!raw
        .to_ascii_lowercase()
        .contains("access-control-allow-origin"));
    // the refused preflight counts like a refused POST
    let forbidden = || {
        gw.metric(
            "ucgate_errors_total",
            &[
                ("route", "/http-bind"),
                ("side", "client"),
                ("kind", "origin_forbidden"),
            ],
        )
    };
    assert_eq!(forbidden().await, 1.0);
    let raw = raw_request(gw.addr, &format!("POST /http-bind HTTP/1.1\r\nHost: {}\r\nOrigin: https://evil.example\r\nContent-Type: text/xml\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", gw.addr)).await;
    assert!(raw.starts_with("HTTP/1.1 403"), "{raw}");
    assert_eq!(forbidden().await, 2.0);
}

#[tokio::test]
async fn body_size_limit_is_a_policy_violation() {
    let dir = TempDir::new("bosh-big");
    let (ca, _) = ca_and_server(dir.path(), &["localhost"]);
    let gw = TestGateway::start(&config(
        "127.0.0.1:9".parse().unwrap(),
        &ca,
        "[bosh]\nmax_body_size = \"4KiB\"",
    ))
    .await;
    let c = Client::new(gw.addr, false).await;
    let (status, text) = c
        .post_raw(format!(
            "<body xmlns='{NS}' rid='1'>{}</body>",
            "x".repeat(5000)
        ))
        .await;
    // XEP-0124 §17.1: terminal conditions travel in 200 responses
    assert_eq!(status, 200);
    assert!(text.contains("policy-violation"), "{text}");
}

#[tokio::test]
async fn session_limits_per_address() {
    let dir = TempDir::new("bosh-limit");
    let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, _) = scripted_server(tls).await;
    let gw = TestGateway::start(&config(server, &ca, "[bosh]\nmax_sessions_per_ip = 1")).await;
    let mut a = Client::new(gw.addr, false).await;
    let first = a
        .send(
            "to='localhost' wait='5' hold='1' ver='1.11' xmpp:version='1.0'",
            "",
        )
        .await;
    assert!(attr(&first, "sid").is_some(), "{first}");
    let mut b = Client::new(gw.addr, false).await;
    let second = b
        .send(
            "to='localhost' wait='5' hold='1' ver='1.11' xmpp:version='1.0'",
            "",
        )
        .await;
    assert!(second.contains("policy-violation"), "{second}");
}

#[tokio::test]
async fn shutdown_answers_held_requests_with_system_shutdown() {
    let dir = TempDir::new("bosh-shutdown");
    let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, _) = scripted_server(tls).await;
    let mut gw = TestGateway::start(&config(server, &ca, "")).await;
    let c = login(&gw, false).await;
    let held = {
        let rid = c.rid + 1;
        let sid = c.sid.clone();
        let addr = gw.addr;
        tokio::spawn(async move {
            let c = Client {
                addr,
                h2: None,
                sid,
                rid,
                counts: Counts::default(),
            };
            c.send_rid(rid, "", "").await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.control.shutdown.cancel();
    let text = tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .unwrap()
        .unwrap();
    assert!(text.contains("system-shutdown"), "{text}");
    gw.stop().await;
}

#[tokio::test]
async fn a_bad_request_for_a_live_session_ends_it() {
    let dir = TempDir::new("bosh-bad-live");
    let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, _) = scripted_server(tls).await;
    let gw = TestGateway::start(&config(server, &ca, "")).await;
    let mut c = login(&gw, false).await;
    let (status, text) = c
        .post_raw(format!(
            "<body xmlns='{NS}' rid='{}' sid='{}'><!-- not allowed --></body>",
            c.rid + 1,
            c.sid
        ))
        .await;
    assert_eq!(status, 200);
    assert!(text.contains("bad-request"), "{text}");
    let after = c.send("", "").await;
    assert!(after.contains("item-not-found"), "{after}");
}

#[tokio::test]
async fn a_large_batch_in_one_request_reaches_the_server_complete() {
    let dir = TempDir::new("bosh-batch");
    let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, seen) = scripted_server(tls).await;
    let gw = TestGateway::start(&config(server, &ca, "")).await;
    let mut c = login(&gw, false).await;
    let n = 1000;
    let mut payload = String::new();
    for i in 1..=n {
        payload.push_str(&format!("<message xmlns='jabber:client' to='carol@localhost' type='chat' id='b{i}'><body>batch message number {i} with some padding text</body></message>"));
    }
    assert!(payload.len() > 100_000);
    let _ = c.send("", &payload).await;
    let mut count = 0;
    for _ in 0..200 {
        count = seen
            .lock()
            .unwrap()
            .stanzas
            .iter()
            .filter(|s| s.contains("batch message number"))
            .count();
        if count == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        count, n,
        "every message of one large request reaches the server"
    );
    let order: Vec<usize> = seen
        .lock()
        .unwrap()
        .stanzas
        .iter()
        .filter_map(|s| {
            s.split("batch message number ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|x| x.parse().ok())
        })
        .collect();
    assert_eq!(order, (1..=n).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_route_attribute_never_chooses_an_arbitrary_backend() {
    let dir = TempDir::new("bosh-route");
    let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, _) = scripted_server(tls).await;
    let gw = TestGateway::start(&config(server, &ca, "")).await;
    // a route naming the configured server is allowed
    let mut ok = Client::new(gw.addr, false).await;
    let text = ok
        .send(&format!("to='localhost' route='xmpp:{server}' wait='5' hold='1' ver='1.11' xmpp:version='1.0'"), "")
        .await;
    assert!(
        attr(&text, "sid").is_some() && !text.contains("terminate"),
        "{text}"
    );
    // any other host:port is refused
    let mut evil = Client::new(gw.addr, false).await;
    let text = evil
        .send("to='localhost' route='xmpp:10.1.2.3:22' wait='5' hold='1' ver='1.11' xmpp:version='1.0'", "")
        .await;
    assert!(text.contains("host-unknown"), "{text}");
}

fn drop_message(how: &str) -> String {
    format!("<message xmlns='jabber:client' to='bob@localhost' type='chat'><body>drop {how}</body></message>")
}

#[tokio::test]
async fn a_lost_server_connection_is_remote_connection_failed() {
    let dir = TempDir::new("bosh-lost");
    let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, _) = scripted_server(tls).await;
    let gw = TestGateway::start(&config(server, &ca, "")).await;
    // a reset, and a close without </stream:stream>
    for how in ["reset", "eof"] {
        let mut c = login(&gw, false).await;
        let text = c.send("", &drop_message(how)).await;
        assert_eq!(
            text,
            format!("<body xmlns='{NS}' type='terminate' condition='remote-connection-failed'/>"),
            "{how}"
        );
        let after = c.send("", "").await;
        assert!(after.contains("item-not-found"), "{after}");
    }
    assert_eq!(
        gw.metric(
            "ucgate_bosh_terminations_total",
            &[("condition", "remote-connection-failed")]
        )
        .await,
        2.0
    );
}

#[tokio::test]
async fn a_whole_session_counts_its_messages_and_bytes() {
    let dir = TempDir::new("bosh-counters");
    let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, _) = scripted_server(tls).await;
    let gw = TestGateway::start(&config(server, &ca, "")).await;
    let mut c = login(&gw, true).await;
    c.send(
        "",
        "<message xmlns='jabber:client' to='bob@localhost' id='m1'><body>hi</body></message>",
    )
    .await;
    let end = c.send("type='terminate'", "").await;
    assert!(end.contains("type='terminate'"), "{end}");
    let posts = c.counts.posts.load(Ordering::Relaxed) as f64;
    assert!(posts >= 6.0, "{posts}");
    let text = gw.metrics().await;
    let v = |name: &str, direction: &str| {
        metric_value(
            &text,
            name,
            &[("route", "/http-bind"), ("direction", direction)],
        )
    };
    // one message per <body/> each way, bytes as on the wire
    assert_eq!(v("ucgate_messages_total", "client_to_backend"), Some(posts));
    assert_eq!(v("ucgate_messages_total", "backend_to_client"), Some(posts));
    assert_eq!(
        v("ucgate_bytes_total", "client_to_backend"),
        Some(c.counts.sent.load(Ordering::Relaxed) as f64)
    );
    assert_eq!(
        v("ucgate_bytes_total", "backend_to_client"),
        Some(c.counts.received.load(Ordering::Relaxed) as f64)
    );
}

#[tokio::test]
async fn the_servers_own_stream_error_reaches_the_client_whole() {
    let dir = TempDir::new("bosh-server-error");
    let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, _) = scripted_server(tls).await;
    let gw = TestGateway::start(&config(server, &ca, "")).await;
    let mut c = login(&gw, false).await;
    let text = c.send("", &drop_message("shutdown")).await;
    assert_eq!(
        text,
        format!("<body xmlns='{NS}' xmlns:stream='http://etherx.jabber.org/streams' type='terminate' condition='remote-stream-error'><stream:error xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>{SHUTDOWN_TEXT}</text></stream:error></body>")
    );
}

#[tokio::test]
async fn a_stanza_declaring_the_httpbind_namespace_is_a_client_stanza() {
    let dir = TempDir::new("bosh-httpbind-ns");
    let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, seen) = scripted_server(tls).await;
    let gw = TestGateway::start(&config(server, &ca, "")).await;
    let mut c = login(&gw, false).await;
    let text = c
        .send(
            "",
            &format!("<message xmlns='{NS}' to='bob@localhost' type='chat'><body>explicit</body></message>"),
        )
        .await;
    assert!(!text.contains("terminate"), "{text}");
    assert_eq!(bodies(&text), ["explicit"], "the echo: {text}");
    assert!(seen
        .lock()
        .unwrap()
        .stanzas
        .iter()
        .any(|s| s
            == "<message xmlns='jabber:client' to='bob@localhost' type='chat'><body>explicit</body></message>"));
}

#[tokio::test]
async fn a_superseded_request_gets_an_empty_body() {
    let dir = TempDir::new("bosh-resend");
    let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
    let (server, _) = scripted_server(tls).await;
    let gw = TestGateway::start(&config(server, &ca, "")).await;
    let c = login(&gw, false).await;
    let rid = c.rid + 1;
    let first = {
        let (addr, sid) = (gw.addr, c.sid.clone());
        tokio::spawn(async move {
            let c = Client {
                addr,
                h2: None,
                sid,
                rid,
                counts: Counts::default(),
            };
            c.send_rid(rid, "", "").await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = {
        let (addr, sid) = (gw.addr, c.sid.clone());
        tokio::spawn(async move {
            let c = Client {
                addr,
                h2: None,
                sid,
                rid,
                counts: Counts::default(),
            };
            c.send_rid(rid, "", "").await
        })
    };
    let old = tokio::time::timeout(Duration::from_secs(5), first)
        .await
        .expect("the older copy is answered at once")
        .unwrap();
    assert_eq!(old, format!("<body xmlns='{NS}'/>"));
    // the copy took over: it gets the next stanza
    let text = c.send_rid(rid + 1, "", &drop_message("none")).await;
    let held = again.await.unwrap();
    assert!(
        bodies(&format!("{held}{text}")).contains(&"drop none".to_string()),
        "{held} {text}"
    );
}

#[tokio::test]
async fn get_with_a_query_string_is_not_found() {
    let dir = TempDir::new("bosh-get");
    let (ca, _) = ca_and_server(dir.path(), &["localhost"]);
    let gw = TestGateway::start(&config("127.0.0.1:9".parse().unwrap(), &ca, "")).await;
    // XEP-0252 (BOSH script syntax) is not implemented
    let (status, _) = http_get(
        gw.addr,
        "/http-bind?%3Cbody%20rid%3D%271%27%20xmlns%3D%27http%3A%2F%2Fjabber.org%2Fprotocol%2Fhttpbind%27%2F%3E",
    )
    .await;
    assert_eq!(status, 404);
    let raw = raw_request(
        gw.addr,
        &format!(
            "HEAD /http-bind?x HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            gw.addr
        ),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 404"), "{raw}");
    let (status, body) = http_get(gw.addr, "/http-bind").await;
    assert_eq!(status, 200);
    assert!(body.contains("BOSH"));
}

/// A browser on HTTP/2 sends `:authority`, not `Host`: the default
/// same-origin policy must compare the Origin with that (a page on
/// https://chat.example reaching its own BOSH endpoint over h2 was refused).
#[tokio::test]
async fn same_origin_over_http2_uses_the_authority() {
    let dir = TempDir::new("bosh-h2-origin");
    let (ca, _) = ca_and_server(dir.path(), &["localhost"]);
    let gw = TestGateway::start(&config("127.0.0.1:9".parse().unwrap(), &ca, "")).await;
    let c = Client::new(gw.addr, true).await;
    let preflight = |origin: String| {
        let mut s = c.h2.clone().unwrap();
        let req = http::Request::builder()
            .method("OPTIONS")
            .uri(format!("http://{}/http-bind", gw.addr))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .body(Full::new(Bytes::new()))
            .unwrap();
        assert!(req.headers().get("host").is_none());
        async move { s.send_request(req).await.unwrap() }
    };
    let same = format!("http://{}", gw.addr);
    let resp = preflight(same.clone()).await;
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 204);
    assert_eq!(
        resp.headers().get("access-control-allow-origin").unwrap(),
        same.as_str()
    );
    let resp = preflight("http://other.example".to_string()).await;
    assert_eq!(resp.status(), 403);
}
