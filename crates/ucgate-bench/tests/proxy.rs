//! `ucgate-bench probe` through proxies: Debian's tinyproxy started on a
//! free loopback port (plain, and with `BasicAuth`), and small in-process
//! CONNECT proxies (over TLS, refusing, silent). Then the load modes
//! (`ws-echo`, `xmpp-ws`, `xmpp-bosh`, `idle`) through tinyproxy with
//! `--proxy`, and `--no-proxy` over a dead proxy variable. Proxy variables
//! are set on the child process only.
//!
//! tinyproxy must be installed (`scripts/install-deps` does it): without
//! it these tests fail, they do not skip.

mod modes_common;
use modes_common::support;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_through_tinyproxy_chosen_by_http_proxy() {
    let tp = Tinyproxy::start(None);
    let gw = Gateway::start(&tunnel_route("/echo", echo_backend().await)).await;
    let url = gw.url("ws", "/echo");
    let r = probe(
        &[&url, "--subprotocol", "binary", "--count", "2"],
        &[
            ("http_proxy", &tp.url()),
            ("https_proxy", "http://127.0.0.1:9"),
        ],
    )
    .await;
    r.ok();
    assert_eq!(r.json["route"]["mode"], "proxy");
    assert_eq!(r.json["route"]["proxy"], tp.url());
    assert_eq!(r.json["route"]["chosen_by"], "http_proxy");
    assert_eq!(r.json["peer"], tp.addr.to_string(), "TCP went to the proxy");
    r.ms("/proxy_connect_ms");
    assert!(r.str("/proxy_reply").contains(" 200 "), "{}", r.json);
    assert_eq!(r.json["websocket"]["subprotocol"], "binary");
    assert_eq!(r.json["websocket"]["ping_ms"].as_array().unwrap().len(), 2);
    assert!(
        r.stderr
            .contains(&format!("proxy {} (from http_proxy)", tp.url())),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("CONNECT {}: HTTP/1.", gw.addr)),
        "{}",
        r.stderr
    );
    // ws_proxy wins over http_proxy (here: a dead one, so the probe fails at tcp)
    let dead = dead_address().await;
    let r = probe(
        &[&url],
        &[
            ("ws_proxy", &format!("http://{dead}")),
            ("http_proxy", &tp.url()),
        ],
    )
    .await;
    r.failed("tcp");
    assert_eq!(r.json["route"]["chosen_by"], "ws_proxy");
    assert!(
        r.error()
            .starts_with(&format!("connecting to proxy http://{dead}")),
        "{}",
        r.error()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_through_tinyproxy_runs_tls_inside_the_tunnel() {
    let tp = Tinyproxy::start(None);
    let pki = Pki::new();
    let gw = Gateway::start(&format!(
        "{}{}",
        tls_server_section(&pki),
        tunnel_route("/echo", echo_backend().await)
    ))
    .await;
    let r = probe(
        &[&gw.url("wss", "/echo"), "--ca-file", &pki.ca_str()],
        &[
            ("HTTPS_PROXY", &tp.url()),
            ("http_proxy", "http://127.0.0.1:9"),
        ],
    )
    .await;
    r.ok();
    assert_eq!(r.json["route"]["chosen_by"], "HTTPS_PROXY");
    assert_eq!(r.json["peer"], tp.addr.to_string());
    r.ms("/proxy_connect_ms");
    r.ms("/tls_ms");
    // the certificate is the gateway's: TLS ran end to end through the tunnel
    assert_eq!(
        r.json["tls"]["certificates"][0]["subject"],
        "CN=gateway.test"
    );
    assert!(r.json["proxy_tls"].is_null());
    assert!(tp.log().contains("CONNECT"), "{}", tp.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bosh_through_tinyproxy() {
    let tp = Tinyproxy::start(None);
    let (server, _closed) = xmpp_server().await;
    let gw = Gateway::start(&format!(
        "[[route]]\npath = \"/http-bind\"\nkind = \"bosh\"\n{}",
        xmpp_domain(server)
    ))
    .await;
    let r = probe(
        &[&gw.url("http", "/http-bind"), "--domain", "localhost"],
        &[("ALL_PROXY", &tp.url())],
    )
    .await;
    r.ok();
    assert_eq!(r.json["route"]["chosen_by"], "ALL_PROXY");
    r.ms("/proxy_connect_ms");
    assert_eq!(r.json["bosh"]["features"], true);
    assert_eq!(r.json["bosh"]["terminate_status"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tinyproxy_basic_auth_407_is_clear_and_credentials_work() {
    let tp = Tinyproxy::start(Some(("user", "pass")));
    let gw = Gateway::start(&tunnel_route("/echo", echo_backend().await)).await;
    let url = gw.url("ws", "/echo");

    let r = probe(&[&url], &[("http_proxy", &tp.url())]).await;
    r.failed("proxy");
    assert_eq!(r.json["proxy_status"], 407);
    let want = format!(
        "proxy: 407 Proxy Authentication Required from {} (no credentials sent; challenge: Basic realm=\"Tinyproxy\")",
        tp.url()
    );
    assert!(r.stderr.contains(&want), "want {want}\n{}", r.stderr);
    r.ms("/tcp_ms");

    let wrong = format!("http://user:nope@{}", tp.addr);
    let r = probe(&[&url], &[("http_proxy", &wrong)]).await;
    r.failed("proxy");
    // tinyproxy answers wrong credentials with 401 (and WWW-Authenticate)
    assert_eq!(r.json["proxy_status"], 401);
    assert!(
        r.error().contains(
            "(credentials for user \"user\" were refused; challenge: Basic realm=\"Tinyproxy\")"
        ),
        "{}",
        r.error()
    );
    assert!(
        !r.stdout.contains("nope") && !r.stderr.contains("nope"),
        "password leaked"
    );

    let good = format!("http://user:pass@{}", tp.addr);
    let r = probe(&[&url, "--count", "1"], &[("http_proxy", &good)]).await;
    r.ok();
    assert_eq!(
        r.json["route"]["proxy"],
        tp.url(),
        "no credentials in the report"
    );
    assert!(!r.stdout.contains("user:pass") && !r.stderr.contains("user:pass"));
    r.ms("/proxy_connect_ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_proxy_excluding_the_gateway_goes_direct() {
    // a proxy that would refuse us: success proves the connection was direct
    let tp = Tinyproxy::start(Some(("user", "pass")));
    let gw = Gateway::start(&tunnel_route("/echo", echo_backend().await)).await;
    let url = gw.url("ws", "/echo");
    for (var, list, entry) in [
        ("NO_PROXY", "example.com, 127.0.0.0/8", "127.0.0.0/8"),
        ("no_proxy", "localhost 127.0.0.1", "127.0.0.1"),
        (
            "NO_PROXY",
            &format!("127.0.0.1:{}", gw.addr.port()) as &str,
            &format!("127.0.0.1:{}", gw.addr.port()) as &str,
        ),
    ] {
        let r = probe(
            &[&url, "--count", "1"],
            &[("http_proxy", &tp.url()), (var, list)],
        )
        .await;
        r.ok();
        let route = &r.json["route"];
        assert_eq!(route["mode"], "direct", "{route}");
        assert_eq!(route["direct_reason"], "excluded");
        assert_eq!(route["no_proxy_variable"], var);
        assert_eq!(route["no_proxy_entry"], entry);
        assert_eq!(route["proxy_variable"], "http_proxy");
        assert_eq!(r.json["peer"], gw.addr.to_string());
        assert!(r.json["proxy_connect_ms"].is_null());
        assert!(
            r.stderr.contains(&format!(
                "direct ({var} entry {entry:?} excludes 127.0.0.1; http_proxy is set)"
            )),
            "{}",
            r.stderr
        );
    }
    // an entry for another port does not exclude: the proxy is used (and refuses)
    let r = probe(
        &[&url],
        &[("http_proxy", &tp.url()), ("NO_PROXY", "127.0.0.1:1")],
    )
    .await;
    r.failed("proxy");
    // --no-proxy overrides the variables, --proxy overrides NO_PROXY
    let r = probe(
        &[&url, "--no-proxy", "--count", "1"],
        &[("http_proxy", &tp.url())],
    )
    .await;
    r.ok();
    assert_eq!(r.json["route"]["direct_reason"], "no_proxy_option");
    let good = format!("http://user:pass@{}", tp.addr);
    let r = probe(
        &[&url, "--proxy", &good, "--count", "1"],
        &[("NO_PROXY", "*")],
    )
    .await;
    r.ok();
    assert_eq!(r.json["route"]["chosen_by"], "--proxy");
    assert_eq!(r.json["peer"], tp.addr.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_proxy_url_tls_to_the_proxy_then_tls_to_the_gateway() {
    let pki = Pki::new();
    let (paddr, heads) = connect_proxy(Some(pki.server.clone()), Answer::Tunnel).await;
    let gw = Gateway::start(&format!(
        "{}{}",
        tls_server_section(&pki),
        tunnel_route("/echo", echo_backend().await)
    ))
    .await;
    let proxy = format!("https://us%40er:p%3Ass@localhost:{}", paddr.port());
    let r = probe(
        &[
            &gw.url("wss", "/echo"),
            "--ca-file",
            &pki.ca_str(),
            "--count",
            "2",
        ],
        &[("wss_proxy", &proxy)],
    )
    .await;
    r.ok();
    assert_eq!(
        r.json["route"]["proxy"],
        format!("https://localhost:{}", paddr.port())
    );
    assert_eq!(r.json["route"]["chosen_by"], "wss_proxy");
    r.ms("/proxy_tls_ms");
    r.ms("/proxy_connect_ms");
    r.ms("/tls_ms");
    // two TLS sessions: the proxy's and, inside the tunnel, the gateway's
    assert_eq!(
        r.json["proxy_tls"]["certificates"][0]["subject"],
        "CN=gateway.test"
    );
    assert!(
        r.str("/proxy_tls/version").starts_with("TLSv1_"),
        "{}",
        r.json
    );
    assert_eq!(
        r.json["tls"]["certificates"][0]["subject"],
        "CN=gateway.test"
    );
    assert!(
        r.stderr.lines().any(|l| l.starts_with("proxy-tls")),
        "{}",
        r.stderr
    );
    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 1);
    let target = format!("127.0.0.1:{}", gw.addr.port());
    assert!(
        heads[0].starts_with(&format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n")),
        "{}",
        heads[0]
    );
    // percent-decoded credentials: base64("us@er:p:ss")
    assert!(
        heads[0].contains("Proxy-Authorization: Basic dXNAZXI6cDpzcw==\r\n"),
        "{}",
        heads[0]
    );

    // the proxy's certificate is checked with the same roots
    let r = probe(&[&gw.url("wss", "/echo")], &[("wss_proxy", &proxy)]).await;
    r.failed("proxy-tls");
    assert!(
        r.error()
            .starts_with(&format!("TLS with https://localhost:{}", paddr.port())),
        "{}",
        r.error()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_refusal_and_silence_fail_at_the_proxy_step() {
    let (refusing, _) = connect_proxy(None, Answer::Refuse("HTTP/1.1 403 Forbidden")).await;
    let r = probe(
        &["ws://gateway.test:5280/echo"],
        &[("http_proxy", &format!("http://{refusing}"))],
    )
    .await;
    r.failed("proxy");
    assert_eq!(r.json["proxy_status"], 403);
    assert_eq!(
        r.error(),
        format!("http://{refusing} refused CONNECT gateway.test:5280: HTTP/1.1 403 Forbidden")
    );

    let (silent, heads) = connect_proxy(None, Answer::Silent).await;
    let t = std::time::Instant::now();
    let r = probe(
        &["ws://gateway.test:5280/echo", "--connect-timeout", "300ms"],
        &[("http_proxy", &format!("http://{silent}"))],
    )
    .await;
    r.failed("proxy");
    assert!(
        r.error()
            .ends_with("did not answer CONNECT gateway.test:5280: timed out after 0.30 s"),
        "{}",
        r.error()
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(heads.lock().unwrap().len(), 1, "the CONNECT was sent");
}

/// Runs a load mode, `ucgate-bench ARGS`, with exactly the proxy variables
/// `env`, as a [`modes_common::Run`] (for its checks).
async fn load(args: &[&str], env: &[(&str, &str)]) -> modes_common::Run {
    let r = run(args, env).await;
    modes_common::Run {
        code: r.code,
        json: r.json,
        stderr: r.stderr,
    }
}

/// `MODE TARGET`, a one-second run after a short warm-up, then `extra`.
fn short<'a>(mode: &'a str, target: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![mode, target, "--duration", "1", "--warmup", "0.2"];
    v.extend_from_slice(extra);
    v
}

/// Lines of tinyproxy's log that are a CONNECT to `target`.
fn connects_to(tp: &Tinyproxy, target: std::net::SocketAddr) -> usize {
    let needle = format!("CONNECT {target} ");
    tp.log().lines().filter(|l| l.contains(&needle)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_echo_through_tinyproxy_with_the_proxy_option() {
    let tp = Tinyproxy::start(Some(("user", "pass")));
    let gw = Gateway::start(&tunnel_route("/echo", echo_backend().await)).await;
    let url = gw.url("ws", "/echo");
    let plain = tp.url();
    let dead = format!("http://{}", dead_address().await);
    // --proxy wins over the (dead) variable; open loop: 200 messages in 1 s
    let good = format!("http://user:pass@{}", tp.addr);
    let a = short(
        "ws-echo",
        &url,
        &["--connections", "3", "--rate", "200", "--proxy", &good],
    );
    let r = load(&a, &[("http_proxy", &dead)]).await;
    modes_common::assert_clean(&r, "ws-echo");
    assert!((198..=202).contains(&r.u("messages")), "{}", r.json);
    assert_eq!(r.u("bytes"), r.u("messages") * 64);
    assert_eq!(
        r.json["route"],
        format!("proxy {plain} (from --proxy)"),
        "{}",
        r.json
    );
    assert_eq!(
        connects_to(&tp, gw.addr),
        3,
        "one per connection:\n{}",
        tp.log()
    );
    assert!(!r.json.to_string().contains("pass@") && !r.stderr.contains("pass@"));

    // no credentials: the 407 names the proxy and the challenge
    let a = short("ws-echo", &url, &["--connections", "2", "--proxy", &plain]);
    let r = load(&a, &[]).await;
    assert_eq!(r.code, 1, "{}\n{}", r.json, r.stderr);
    assert_eq!(r.kind("connect"), 2, "{}", r.json);
    let want = format!(
        "407 Proxy Authentication Required from {plain} (no credentials sent; challenge: Basic realm=\"Tinyproxy\")"
    );
    assert!(r.stderr.contains(&want), "want {want}\n{}", r.stderr);

    // a wrong password: refused (tinyproxy says 401), and never shown
    let wrong = format!("http://user:nope@{}", tp.addr);
    let a = short("ws-echo", &url, &["--connections", "2", "--proxy", &wrong]);
    let r = load(&a, &[]).await;
    assert_eq!(r.code, 1, "{}\n{}", r.json, r.stderr);
    assert_eq!(r.kind("connect"), 2, "{}", r.json);
    assert!(
        r.stderr.contains(
            "(credentials for user \"user\" were refused; challenge: Basic realm=\"Tinyproxy\")"
        ),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("nope") && !r.json.to_string().contains("nope"));
    assert_eq!(connects_to(&tp, gw.addr), 3 + 2 + 2, "{}", tp.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmpp_ws_and_bosh_through_tinyproxy() {
    use modes_common::xmpp::{xmpp_server, XFault};
    let tp = Tinyproxy::start(None);
    let proxy = tp.url();
    let gw = Gateway::start(&format!(
        "[[route]]\npath = \"/xmpp-websocket\"\nkind = \"xmpp-websocket\"\n\n[[route]]\npath = \"/http-bind\"\nkind = \"bosh\"\n{}",
        xmpp_domain(xmpp_server(XFault::None).await)
    ))
    .await;
    // two clients, open loop: 100 messages in 1 s
    let login = [
        "--domain",
        "localhost",
        "--clients",
        "2",
        "--password",
        "secret",
        "--rate",
        "100",
    ];

    // xmpp-ws with --proxy, over NO_PROXY=* (which would go direct)
    let ws = gw.url("ws", "/xmpp-websocket");
    let mut a = short("xmpp-ws", &ws, &login);
    a.extend_from_slice(&["--proxy", &proxy]);
    let r = load(&a, &[("http_proxy", &proxy), ("NO_PROXY", "*")]).await;
    modes_common::assert_clean(&r, "xmpp-ws");
    assert_eq!(r.u("logged_in"), 2, "{}", r.json);
    assert!((98..=102).contains(&r.u("messages")), "{}", r.json);
    assert_eq!(r.json["route"], format!("proxy {proxy} (from --proxy)"));
    assert_eq!(connects_to(&tp, gw.addr), 2, "{}", tp.log());

    // xmpp-bosh without the options: the variables apply as before
    let bosh = gw.url("http", "/http-bind");
    let r = load(
        &short("xmpp-bosh", &bosh, &login),
        &[("http_proxy", &proxy)],
    )
    .await;
    modes_common::assert_clean(&r, "xmpp-bosh");
    assert_eq!(r.u("logged_in"), 2, "{}", r.json);
    assert!((98..=102).contains(&r.u("messages")), "{}", r.json);
    assert_eq!(r.json["route"], format!("proxy {proxy} (from http_proxy)"));
    assert!(connects_to(&tp, gw.addr) > 2, "{}", tp.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_proxy_option_overrides_a_dead_proxy_variable() {
    let gw = Gateway::start(&tunnel_route("/echo", echo_backend().await)).await;
    let url = gw.url("ws", "/echo");
    let dead = format!("http://{}", dead_address().await);
    let env = [("http_proxy", dead.as_str())];

    // without the option the variable applies: every connection fails
    let r = load(&short("ws-echo", &url, &["--connections", "2"]), &env).await;
    assert_eq!(r.code, 1, "{}\n{}", r.json, r.stderr);
    assert_eq!(r.kind("connect"), 2, "{}", r.json);
    assert!(
        r.stderr.contains(&format!("connecting to proxy {dead}")),
        "{}",
        r.stderr
    );
    assert_eq!(r.json["route"], format!("proxy {dead} (from http_proxy)"));

    // --no-proxy: direct
    let a = short("ws-echo", &url, &["--connections", "2", "--no-proxy"]);
    let r = load(&a, &env).await;
    modes_common::assert_clean(&r, "ws-echo");
    assert!(r.u("messages") > 0, "{}", r.json);
    assert_eq!(r.json["route"], "direct (--no-proxy)");

    // the same for idle
    let a = [
        "idle",
        &url,
        "--connections",
        "3",
        "--hold",
        "0.1",
        "--no-proxy",
    ];
    let r = load(&a, &env).await;
    modes_common::assert_clean(&r, "idle");
    assert_eq!(r.u("opened"), 3, "{}", r.json);
    assert_eq!(r.json["route"], "direct (--no-proxy)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_mode_proxy_usage_errors() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["ws-echo", "ws://127.0.0.1:1/", "--proxy", "socks5://h:1080"],
            "--proxy: unsupported proxy scheme \"socks5\"",
        ),
        (
            &[
                "idle",
                "ws://127.0.0.1:1/",
                "--proxy",
                "http://h:1",
                "--no-proxy",
            ],
            "cannot be used with",
        ),
        (
            &["sip-ws", "ws://127.0.0.1:1/", "--connect-timeout", "0"],
            "the timeout must be more than 0",
        ),
        // xmpp-tcp and tcp-echo dial the address themselves: no proxy options
        (
            &[
                "xmpp-tcp",
                "127.0.0.1:1",
                "--anonymous",
                "--proxy",
                "http://h:1",
            ],
            "unexpected argument '--proxy'",
        ),
        (
            &["tcp-echo", "127.0.0.1:1", "--no-proxy"],
            "unexpected argument '--no-proxy'",
        ),
    ];
    for (a, want) in cases {
        let r = load(a, &[]).await;
        assert_eq!(r.code, 2, "{a:?}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{a:?}: want {want}\n{}", r.stderr);
    }
}
