//! `static` routes over real HTTP/1.1 (raw bytes, so that any request path
//! can be sent) and HTTP/2 (h2c): content types, index files, 404s, 405,
//! ETag and Last-Modified with 304, precompressed siblings, HEAD, and every
//! way out of the directory answered 404.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use common::tls::TempDir;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Reply {
    fn h(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// One HTTP/1.1 request, written as raw bytes (`path` is sent unchanged).
async fn h1(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .unwrap();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("complete head");
    let head = String::from_utf8(raw[..end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    }
}

/// One HTTP/2 request (prior knowledge) on a new connection.
async fn h2(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = tokio::time::timeout(
        Duration::from_secs(10),
        send.send_request(req.body(Empty::<Bytes>::new()).unwrap()),
    )
    .await
    .expect("response in time")
    .unwrap();
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

async fn get(
    h2c: bool,
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    if h2c {
        h2(addr, method, path, headers).await
    } else {
        h1(addr, method, path, headers).await
    }
}

/// A served directory `www` next to a `secret` file outside it:
/// `www/index.html`, `www/app.js` (+ `.br`, `.gz`), files of several types,
/// `www/sub/index.html`, `www/noindex/`, `www/.hidden`, a symlink to the
/// secret and a symlink to a file inside.
fn site(dir: &TempDir) -> std::path::PathBuf {
    let www = dir.path().join("www");
    let w = |p: &str, b: &[u8]| {
        let f = www.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, b).unwrap();
    };
    w("index.html", b"<!doctype html><title>home</title>");
    w("app.js", b"console.log('plain');");
    w("app.js.br", b"BROTLI-BYTES");
    w("app.js.gz", b"GZIP-BYTES");
    w("style.css", b"body{}");
    w("m.mjs", b"export {}");
    w("data.json", b"{}");
    w("i.svg", b"<svg/>");
    w("i.png", b"\x89PNG");
    w("c.wasm", b"\0asm");
    w("f.woff2", b"wOF2");
    w("app.js.map", b"{}");
    w("README", b"plain");
    w("sub/index.html", b"sub index");
    w("noindex/a.txt", b"a");
    w(".hidden", b"hidden");
    w("big.bin", &vec![7u8; 2048]);
    std::fs::write(dir.path().join("secret"), b"SECRET").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret"), www.join("out")).unwrap();
    std::os::unix::fs::symlink(dir.path(), www.join("up")).unwrap();
    std::os::unix::fs::symlink(www.join("style.css"), www.join("in.css")).unwrap();
    www
}

async fn gateway(www: &std::path::Path) -> TestGateway {
    TestGateway::start(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nh2c = true\n\n[[route]]\npath = \"/site/\"\nkind = \"static\"\nroot = \"{}\"\ncache_control = \"public, max-age=60\"\nmax_file_size = 1024\n",
        www.display()
    ))
    .await
}

async fn content_types_index_and_404s(h2c: bool) {
    let dir = TempDir::new("static-types");
    let www = site(&dir);
    let mut gw = gateway(&www).await;
    let a = gw.addr;
    for (path, ct, body) in [
        (
            "/site/",
            "text/html; charset=utf-8",
            &b"<!doctype html><title>home</title>"[..],
        ),
        (
            "/site/index.html",
            "text/html; charset=utf-8",
            b"<!doctype html><title>home</title>",
        ),
        (
            "/site/app.js",
            "text/javascript; charset=utf-8",
            b"console.log('plain');",
        ),
        ("/site/style.css", "text/css; charset=utf-8", b"body{}"),
        ("/site/in.css", "text/css; charset=utf-8", b"body{}"),
        (
            "/site/m.mjs",
            "text/javascript; charset=utf-8",
            b"export {}",
        ),
        ("/site/data.json", "application/json", b"{}"),
        ("/site/app.js.map", "application/json", b"{}"),
        ("/site/i.svg", "image/svg+xml", b"<svg/>"),
        ("/site/i.png", "image/png", b"\x89PNG"),
        ("/site/c.wasm", "application/wasm", b"\0asm"),
        ("/site/f.woff2", "font/woff2", b"wOF2"),
        ("/site/README", "application/octet-stream", b"plain"),
        ("/site/sub/", "text/html; charset=utf-8", b"sub index"),
        (
            "/site//sub//index.html",
            "text/html; charset=utf-8",
            b"sub index",
        ),
        (
            "/site/app.js?v=3",
            "text/javascript; charset=utf-8",
            b"console.log('plain');",
        ),
    ] {
        let r = get(h2c, a, "GET", path, &[]).await;
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert_eq!(r.h("content-type"), Some(ct), "{path}");
        assert_eq!(r.body, body, "{path}");
        assert_eq!(r.h("content-length"), Some(body.len().to_string().as_str()));
        assert_eq!(r.h("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.h("cache-control"), Some("public, max-age=60"));
        assert_eq!(r.h("content-encoding"), None, "{path}");
        assert!(r.h("etag").is_some_and(|e| e.starts_with('"')), "{path}");
        assert!(r.h("last-modified").is_some_and(|d| d.ends_with(" GMT")));
    }
    // Directories without a slash go to their slash form (relative links).
    let r = get(h2c, a, "GET", "/site", &[]).await;
    assert_eq!((r.status, r.h("location")), (301, Some("/site/")));
    let r = get(h2c, a, "GET", "/site/sub?x=1", &[]).await;
    assert_eq!((r.status, r.h("location")), (301, Some("./sub/?x=1")));
    for path in [
        "/site/missing.js",
        "/site/noindex/",
        "/site/noindex",
        "/site/sub/missing/",
        "/site/index.html/",
        "/site/.hidden",
        "/site/big.bin",
    ] {
        let r = get(h2c, a, "GET", path, &[]).await;
        assert_eq!(r.status, 404, "{path}: {r:?}");
        assert!(
            !String::from_utf8_lossy(&r.body).contains("a.txt"),
            "no listing"
        );
    }
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let r = get(h2c, a, method, "/site/app.js", &[]).await;
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.h("allow"), Some("GET, HEAD"));
    }
    // HEAD: the same headers, no body.
    let g = get(
        h2c,
        a,
        "GET",
        "/site/app.js",
        &[("accept-encoding", "gzip")],
    )
    .await;
    let h = get(
        h2c,
        a,
        "HEAD",
        "/site/app.js",
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    for k in [
        "content-type",
        "content-length",
        "etag",
        "last-modified",
        "content-encoding",
        "vary",
        "cache-control",
    ] {
        assert_eq!(h.h(k), g.h(k), "{k}");
        assert!(h.h(k).is_some(), "{k}");
    }
    let m = metrics(gw.admin).await;
    assert!(
        m.contains("ucgate_http_responses_total{route=\"/site/\",code=\"200\"}"),
        "{m}"
    );
    assert!(
        m.contains("ucgate_http_responses_total{route=\"/site/\",code=\"404\"} 7"),
        "{m}"
    );
    assert!(
        m.contains("ucgate_http_responses_total{route=\"/site/\",code=\"405\"} 4"),
        "{m}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn content_types_index_and_404s_over_http1() {
    content_types_index_and_404s(false).await;
}

#[tokio::test]
async fn content_types_index_and_404s_over_http2() {
    content_types_index_and_404s(true).await;
}

async fn conditional_and_precompressed(h2c: bool) {
    let dir = TempDir::new("static-cond");
    let www = site(&dir);
    let mut gw = gateway(&www).await;
    let a = gw.addr;
    let first = get(h2c, a, "GET", "/site/style.css", &[]).await;
    let etag = first.h("etag").unwrap().to_string();
    let lm = first.h("last-modified").unwrap().to_string();
    for headers in [
        vec![("if-none-match", etag.as_str())],
        vec![("if-none-match", "\"other\", W/\"nope\"")],
        vec![("if-modified-since", lm.as_str())],
        vec![("if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT")],
        vec![("if-modified-since", "Fri, 01 Jan 2100 00:00:00 GMT")],
        vec![("if-none-match", "*")],
        // If-None-Match decides when both are present.
        vec![
            ("if-none-match", "\"other\""),
            ("if-modified-since", lm.as_str()),
        ],
    ]
    .into_iter()
    .zip([304, 200, 304, 200, 304, 304, 200])
    {
        let (headers, want) = headers;
        let r = get(h2c, a, "GET", "/site/style.css", &headers).await;
        assert_eq!(r.status, want, "{headers:?}");
        if want == 304 {
            assert!(r.body.is_empty());
            assert_eq!(r.h("etag"), Some(etag.as_str()));
            assert_eq!(r.h("cache-control"), Some("public, max-age=60"));
        } else {
            assert_eq!(r.body, b"body{}");
        }
    }
    // Precompressed siblings: br before gzip, each with its own ETag.
    let mut tags = Vec::new();
    for (ae, enc, body) in [
        ("gzip, deflate, br", Some("br"), &b"BROTLI-BYTES"[..]),
        ("gzip", Some("gzip"), b"GZIP-BYTES"),
        ("br;q=0, gzip;q=0.5", Some("gzip"), b"GZIP-BYTES"),
        ("identity", None, b"console.log('plain');"),
        ("", None, b"console.log('plain');"),
    ] {
        let headers: Vec<(&str, &str)> = if ae.is_empty() {
            vec![]
        } else {
            vec![("accept-encoding", ae)]
        };
        let r = get(h2c, a, "GET", "/site/app.js", &headers).await;
        assert_eq!(r.status, 200, "{ae}");
        assert_eq!(r.h("content-encoding"), enc, "{ae}");
        assert_eq!(r.body, body, "{ae}");
        assert_eq!(r.h("content-type"), Some("text/javascript; charset=utf-8"));
        assert_eq!(r.h("vary"), Some("Accept-Encoding"));
        tags.push(r.h("etag").unwrap().to_string());
    }
    assert_ne!(tags[0], tags[1]);
    assert_ne!(tags[1], tags[3]);
    assert_ne!(tags[0], tags[3]);
    // The brotli tag does not validate the plain file.
    let r = get(
        h2c,
        a,
        "GET",
        "/site/app.js",
        &[("if-none-match", tags[0].as_str())],
    )
    .await;
    assert_eq!(r.status, 200);
    let r = get(
        h2c,
        a,
        "GET",
        "/site/app.js",
        &[
            ("if-none-match", tags[0].as_str()),
            ("accept-encoding", "br"),
        ],
    )
    .await;
    assert_eq!(r.status, 304);
    gw.stop().await;
}

#[tokio::test]
async fn conditional_and_precompressed_over_http1() {
    conditional_and_precompressed(false).await;
}

#[tokio::test]
async fn conditional_and_precompressed_over_http2() {
    conditional_and_precompressed(true).await;
}

/// Request paths that would leave the directory, as sent on the wire.
const TRAVERSALS: &[&str] = &[
    "/site/../secret",
    "/site/x/../../secret",
    "/site/sub/../../secret",
    "/site/x/../../etc/passwd",
    "/site/%2e%2e/secret",
    "/site/x/%2e%2e/%2e%2e/secret",
    "/site/%2E%2E/secret",
    "/site/..%2fsecret",
    "/site/x/..%2f..%2fsecret",
    "/site/..%5csecret",
    "/site/index.html%00.png",
    "/site/%00",
    "/site/out",
    "/site/up/secret",
    "/site/.%2e/secret",
];

async fn traversal_is_404(h2c: bool) {
    let dir = TempDir::new("static-traversal");
    let www = site(&dir);
    let mut gw = gateway(&www).await;
    for path in TRAVERSALS {
        let r = get(h2c, gw.addr, "GET", path, &[]).await;
        assert_eq!(r.status, 404, "{path}: {r:?}");
        assert!(
            !String::from_utf8_lossy(&r.body).contains("SECRET"),
            "{path}"
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn traversal_is_404_over_http1() {
    traversal_is_404(false).await;
    // A raw backslash is sent as is over HTTP/1.1 (an h2 client refuses it).
    let dir = TempDir::new("static-backslash");
    let www = site(&dir);
    let mut gw = gateway(&www).await;
    for path in ["/site/..\\secret", "/site/x\\..\\..\\secret"] {
        let r = h1(gw.addr, "GET", path, &[]).await;
        assert_eq!(r.status, 404, "{path}: {r:?}");
        assert!(!String::from_utf8_lossy(&r.body).contains("SECRET"));
    }
    gw.stop().await;
}

#[tokio::test]
async fn traversal_is_404_over_http2() {
    traversal_is_404(true).await;
}

#[tokio::test]
async fn exact_routes_win_over_a_static_prefix() {
    let dir = TempDir::new("static-root");
    let www = site(&dir);
    let mut gw = TestGateway::start(&format!(
        "[[route]]\npath = \"/\"\nkind = \"static\"\nroot = \"{}\"\n\n[[route]]\npath = \"/echo\"\nkind = \"tcp\"\nbackend = \"127.0.0.1:9\"\n",
        www.display()
    ))
    .await;
    let r = h1(gw.addr, "GET", "/", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.h("cache-control"), Some("no-cache"));
    assert_eq!(r.body, b"<!doctype html><title>home</title>");
    // The tcp route still answers its own path (a plain GET is not a
    // WebSocket handshake).
    let r = h1(gw.addr, "GET", "/echo", &[]).await;
    assert_ne!(r.status, 200);
    assert_ne!(r.status, 404);
    // A 2 KiB file under the default 16 MiB limit.
    let r = h1(gw.addr, "GET", "/big.bin", &[]).await;
    assert_eq!((r.status, r.body.len()), (200, 2048));
    gw.stop().await;
}

/// A root that is a symlink (`current` → a release) follows the symlink
/// when it is swapped; files of the old release are then outside the root.
#[tokio::test]
async fn a_swapped_root_symlink_takes_effect_at_once() {
    let dir = TempDir::new("static-swap");
    for (rel, text) in [("r1", "release one"), ("r2", "release two")] {
        std::fs::create_dir(dir.path().join(rel)).unwrap();
        std::fs::write(dir.path().join(rel).join("index.html"), text).unwrap();
    }
    std::fs::write(dir.path().join("r1").join("only-in-r1.txt"), "old").unwrap();
    let current = dir.path().join("current");
    std::os::unix::fs::symlink(dir.path().join("r1"), &current).unwrap();
    let mut gw = TestGateway::start(&format!(
        "[[route]]\npath = \"/\"\nkind = \"static\"\nroot = \"{}\"\n",
        current.display()
    ))
    .await;
    let r = h1(gw.addr, "GET", "/", &[]).await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"release one"[..]));
    assert_eq!(h1(gw.addr, "GET", "/only-in-r1.txt", &[]).await.status, 200);
    let next = dir.path().join("next");
    std::os::unix::fs::symlink(dir.path().join("r2"), &next).unwrap();
    std::fs::rename(&next, &current).unwrap();
    let r = h1(gw.addr, "GET", "/", &[]).await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"release two"[..]));
    assert_eq!(h1(gw.addr, "GET", "/only-in-r1.txt", &[]).await.status, 404);
    gw.stop().await;
}

async fn metrics(admin: std::net::SocketAddr) -> String {
    let r = h1(admin, "GET", "/metrics", &[]).await;
    String::from_utf8(r.body).unwrap()
}
