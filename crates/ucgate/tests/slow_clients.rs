//! Clients that hold connections without finishing anything (issue 13,
//! items 1 and 4): trickling request bodies are cut at
//! `server.body_read_timeout` with 408, and one address cannot hold more
//! than `server.max_connections_per_ip` connections, so normal clients are
//! still served.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn config(server_extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{server_extra}\n\
         [[route]]\npath = \"/http-bind\"\nkind = \"bosh\"\n\
         [xmpp.domains.\"localhost\"]\naddress = \"127.0.0.1:9\"\ntls = \"none\"\n"
    )
}

/// A POST whose body of 1000 bytes arrives one byte every `every`, for as
/// long as the connection lasts. Returns the socket's read half and the
/// task that trickles.
async fn trickle(
    addr: SocketAddr,
    path: &str,
    every: Duration,
) -> (tokio::net::tcp::OwnedReadHalf, tokio::task::JoinHandle<()>) {
    let s = TcpStream::connect(addr).await.unwrap();
    let (r, mut w) = s.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: 1000\r\n\r\n"
    );
    let task = tokio::spawn(async move {
        if w.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        loop {
            if w.write_all(b"<").await.is_err() {
                return;
            }
            tokio::time::sleep(every).await;
        }
    });
    (r, task)
}

/// Reads until the peer closes; everything read, or `None` past `limit`.
async fn read_to_close<R: AsyncReadExt + Unpin>(r: &mut R, limit: Duration) -> Option<String> {
    let mut all = Vec::new();
    let ok = tokio::time::timeout(limit, async {
        let mut b = [0u8; 4096];
        loop {
            match r.read(&mut b).await {
                Ok(0) | Err(_) => return,
                Ok(n) => all.extend_from_slice(&b[..n]),
            }
        }
    })
    .await
    .is_ok();
    ok.then(|| String::from_utf8_lossy(&all).into_owned())
}

#[tokio::test]
async fn a_trickling_body_gets_408_and_the_connection_ends_at_the_deadline() {
    let gw = TestGateway::start(&config("body_read_timeout = \"1s\"")).await;
    let start = Instant::now();
    let (mut r, task) = trickle(gw.addr, "/http-bind", Duration::from_millis(200)).await;
    let got = read_to_close(&mut r, Duration::from_secs(4))
        .await
        .expect("the gateway ended the connection");
    task.abort();
    let took = start.elapsed();
    assert!(got.starts_with("HTTP/1.1 408 "), "{got}");
    assert!(
        got.to_ascii_lowercase().contains("connection: close"),
        "{got}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "ended after {took:?}, body_read_timeout is 1 s"
    );
    assert_eq!(
        gw.metric(
            "ucgate_errors_total",
            &[
                ("route", "/http-bind"),
                ("side", "client"),
                ("kind", "body_timeout")
            ]
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn a_trickling_body_on_http2_gets_408() {
    use http_body_util::BodyExt;
    let gw = TestGateway::start(&config("body_read_timeout = \"1s\"\nh2c = true")).await;
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let (tx, rx) = tokio::sync::mpsc::channel::<
        Result<hyper::body::Frame<bytes::Bytes>, std::convert::Infallible>,
    >(4);
    let body = http_body_util::StreamBody::new(tokio_stream_from(rx));
    let trickler = tokio::spawn(async move {
        loop {
            if tx
                .send(Ok(hyper::body::Frame::data(bytes::Bytes::from_static(
                    b"<",
                ))))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let req = http::Request::post(format!("http://{}/http-bind", gw.addr))
        .header("content-type", "text/xml; charset=utf-8")
        .body(body)
        .unwrap();
    let start = Instant::now();
    let resp = tokio::time::timeout(Duration::from_secs(4), send.send_request(req))
        .await
        .expect("an answer within the deadline")
        .unwrap();
    assert_eq!(resp.status(), 408);
    assert!(start.elapsed() < Duration::from_millis(2500));
    let text = resp.into_body().collect().await.map(|b| b.to_bytes());
    assert!(text.is_ok_and(|t| t.starts_with(b"the request body did not arrive")));
    trickler.abort();
}

/// `futures_util::stream` over an mpsc receiver (no tokio-stream dependency).
fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn a_normal_client_is_served_while_100_trickling_bodies_are_open() {
    let gw = TestGateway::start(&config(
        "max_connections = 100\nmax_connections_per_ip = 0\nbody_read_timeout = \"1s\"",
    ))
    .await;
    let mut slow = Vec::new();
    for _ in 0..100 {
        slow.push(trickle(gw.addr, "/http-bind", Duration::from_secs(1)).await);
    }
    // every permit is held
    let deadline = Instant::now() + Duration::from_secs(3);
    while gw
        .metric("ucgate_connections_active", &[("listener", "main")])
        .await
        < 100.0
    {
        assert!(
            Instant::now() < deadline,
            "the slow clients were not all accepted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let start = Instant::now();
    let page = tokio::time::timeout(
        Duration::from_secs(4),
        raw_request(
            gw.addr,
            "GET /http-bind HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ),
    )
    .await
    .expect("the normal client was locked out");
    assert!(page.starts_with("HTTP/1.1 200 "), "{page}");
    assert!(start.elapsed() < Duration::from_millis(2500));
    for (mut r, task) in slow {
        let got = read_to_close(&mut r, Duration::from_secs(3))
            .await
            .expect("every slow connection ended");
        assert!(got.starts_with("HTTP/1.1 408 "), "{got}");
        task.abort();
    }
}

#[tokio::test]
async fn a_trickling_body_on_a_route_that_does_not_read_it_is_not_kept() {
    let gw = TestGateway::start(&config("body_read_timeout = \"1s\"")).await;
    let (mut r, task) = trickle(gw.addr, "/no-such-route", Duration::from_millis(200)).await;
    let got = read_to_close(&mut r, Duration::from_secs(4))
        .await
        .expect("the connection ended");
    task.abort();
    assert!(got.starts_with("HTTP/1.1 404 "), "{got}");
}

/// A connection from `ip` (any 127.0.0.0/8 address is loopback on Linux).
async fn connect_from(ip: &str, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    s.connect(to).await.unwrap()
}

#[tokio::test]
async fn half_sent_heads_from_one_address_cannot_lock_out_another() {
    let gw = TestGateway::start(&config(
        "max_connections = 100\nmax_connections_per_ip = 50\nheader_read_timeout = \"15s\"",
    ))
    .await;
    let mut held = Vec::new();
    for _ in 0..300 {
        let mut s = connect_from("127.0.0.1", gw.addr).await;
        let _ = s.write_all(b"GET /http-bind HTTP/1.1\r\nHost: x\r\n").await;
        held.push(s);
    }
    // 250 of them are closed at accept
    let mut closed = 0;
    for s in held.iter_mut() {
        let mut b = [0u8; 64];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(20), s.read(&mut b)).await
        {
            closed += 1;
        }
    }
    assert_eq!(closed, 250, "all but max_connections_per_ip closed at once");
    let start = Instant::now();
    let mut other = connect_from("127.0.0.2", gw.addr).await;
    other
        .write_all(b"GET /http-bind HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let page = read_to_close(&mut other, Duration::from_secs(2))
        .await
        .expect("the other client was locked out");
    assert!(page.starts_with("HTTP/1.1 200 "), "{page}");
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(
        gw.metric(
            "ucgate_errors_total",
            &[
                ("route", "none"),
                ("side", "client"),
                ("kind", "max_connections_per_ip")
            ]
        )
        .await,
        250.0
    );
}

#[tokio::test]
async fn websockets_from_one_address_stop_at_the_limit_and_free_their_slots() {
    let echo = echo_backend().await;
    let gw = TestGateway::start(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_connections_per_ip = 20\n{}",
        tunnel_route("/echo", echo, "")
    ))
    .await;
    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..30 {
        match ws_connect(&gw.ws_url("/echo"), None, None).await {
            Ok((ws, _)) => open.push(ws),
            Err(_) => refused += 1,
        }
    }
    assert_eq!((open.len(), refused), (20, 10));
    // closing one frees one slot
    let mut first = open.remove(0);
    first.close(None).await.unwrap();
    while futures_util::StreamExt::next(&mut first).await.is_some() {}
    tokio::time::sleep(Duration::from_millis(100)).await;
    let again = ws_connect(&gw.ws_url("/echo"), None, None).await;
    assert!(again.is_ok(), "a freed slot is usable");
    assert!(ws_connect(&gw.ws_url("/echo"), None, None).await.is_err());
    drop(again);
}
