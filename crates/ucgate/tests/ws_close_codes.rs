//! WebSocket protocol violations get a close frame with their RFC 6455
//! code on every WebSocket route (tcp, xmpp-websocket, sip-websocket), are
//! counted as client errors, and the close frame reaches the client before
//! the TCP connection ends (a FIN, not a reset). A raw client writes the
//! bad frames byte by byte.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A client's upgraded byte stream: TCP after HTTP/1.1, or an HTTP/2 stream.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Largest message the routes accept in these tests.
const MAX: usize = 1024;

/// One masked client frame.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![first];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n < 65536 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// A violation: the bytes a client sends, the close code it must get and
/// the `kind` / `reason` label it is counted under.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    code: u16,
    label: &'static str,
}

/// The table shared by the three routes.
fn cases() -> Vec<Case> {
    let text = b"<presence/>";
    let unmasked = {
        let mut f = vec![0x81, text.len() as u8];
        f.extend_from_slice(text);
        f
    };
    let half = vec![b'a'; MAX / 2 + 100];
    let mut too_big = frame(0x01, &half); // text, not final
    too_big.extend(frame(0x80, &half)); // continuation, final: > MAX in all
    vec![
        Case {
            name: "unmasked frame",
            bytes: unmasked,
            code: 1002,
            label: "protocol_error",
        },
        Case {
            name: "RSV1 set without an extension",
            bytes: frame(0xC1, text),
            code: 1002,
            label: "protocol_error",
        },
        Case {
            name: "reserved data opcode 3",
            bytes: frame(0x83, text),
            code: 1002,
            label: "protocol_error",
        },
        Case {
            name: "reserved control opcode 0xB",
            bytes: frame(0x8B, b""),
            code: 1002,
            label: "protocol_error",
        },
        Case {
            name: "ping of 126 bytes",
            bytes: frame(0x89, &[b'p'; 126]),
            code: 1002,
            label: "protocol_error",
        },
        Case {
            name: "fragmented ping",
            bytes: frame(0x09, b"p"),
            code: 1002,
            label: "protocol_error",
        },
        Case {
            name: "invalid UTF-8 in a text message",
            bytes: frame(0x81, &[b'<', 0xC3, 0x28, b'>']),
            code: 1007,
            label: "invalid_utf8",
        },
        Case {
            name: "message over max_message_size",
            bytes: too_big,
            code: 1009,
            label: "message_too_big",
        },
    ]
}

/// A frame from the gateway (server frames are not masked).
#[derive(Debug)]
struct Frame {
    opcode: u8,
    payload: Vec<u8>,
}

fn parse_frames(mut b: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    while b.len() >= 2 {
        let opcode = b[0] & 0x0f;
        assert_eq!(b[1] & 0x80, 0, "server frames are not masked");
        let (len, at) = match b[1] & 0x7f {
            126 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        assert!(b.len() >= at + len, "truncated frame in {b:?}");
        out.push(Frame {
            opcode,
            payload: b[at..at + len].to_vec(),
        });
        b = &b[at + len..];
    }
    assert!(b.is_empty(), "trailing bytes {b:?}");
    out
}

/// Opens a WebSocket on `path` with a raw HTTP/1.1 handshake.
async fn raw_upgrade(addr: SocketAddr, path: &str, protocol: Option<&str>) -> Box<dyn Io> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let proto = protocol
        .map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n"))
        .unwrap_or_default();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{proto}\r\n").as_bytes()).await.unwrap();
    // read exactly the response head: the gateway sends nothing after it
    // until the client does
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b))
            .await
            .expect("upgrade answer in time")
            .unwrap();
        assert_eq!(n, 1, "closed during the handshake: {head:?}");
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    Box::new(s)
}

/// Opens a WebSocket on `path` as an RFC 8441 extended CONNECT stream of
/// a new HTTP/2 connection (h2c prior knowledge).
async fn h2_upgrade(addr: SocketAddr, path: &str, protocol: Option<&str>) -> Box<dyn Io> {
    use http_body_util::Empty;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(format!("http://{addr}{path}"))
        .header("sec-websocket-version", "13")
        .extension(hyper::ext::Protocol::from_static("websocket"));
    if let Some(p) = protocol {
        req = req.header("sec-websocket-protocol", p);
    }
    let req = req.body(Empty::<bytes::Bytes>::new()).unwrap();
    let mut resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    Box::new(TokioIo::new(hyper::upgrade::on(&mut resp).await.unwrap()))
}

#[derive(Clone, Copy)]
enum Http {
    H1,
    H2,
}

/// Sends `bytes` and then garbage (bytes the gateway must read and drop
/// rather than leave unread), then reads until the gateway closes the
/// TCP connection. Returns the frames received. A reset instead of a FIN
/// fails the test: the close frame could have been lost with it.
async fn violate(s: &mut Box<dyn Io>, bytes: &[u8]) -> Vec<Frame> {
    s.write_all(bytes).await.unwrap();
    let _ = s.write_all(&[0x5a; 16 << 10]).await;
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut all))
        .await
        .expect("the gateway ends the connection in time")
        .expect("an end of stream after the close frame, not a reset");
    parse_frames(&all)
}

fn close_code(f: &Frame) -> u16 {
    assert_eq!(f.opcode, 0x8, "a close frame, got {f:?}");
    u16::from_be_bytes([f.payload[0], f.payload[1]])
}

/// Waits for the gateway to count the connection's end.
async fn closes(gw: &TestGateway, route: &str, reason: &str, want: f64) {
    for _ in 0..100 {
        let got = gw
            .metric(
                "ucgate_ws_closes_total",
                &[("route", route), ("reason", reason)],
            )
            .await;
        if got >= want {
            assert_eq!(got, want, "{route} closes with reason {reason}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "{route}: no close counted as {reason}\n{}",
        gw.metrics().await
    );
}

/// Runs every case against one route and checks code and metrics.
async fn every_case(gw: &TestGateway, path: &str, protocol: Option<&str>, http: Http) {
    let mut counts = std::collections::HashMap::new();
    for case in cases() {
        let mut s = match http {
            Http::H1 => raw_upgrade(gw.addr, path, protocol).await,
            Http::H2 => h2_upgrade(gw.addr, path, protocol).await,
        };
        let frames = violate(&mut s, &case.bytes).await;
        drop(s);
        let last = frames
            .last()
            .unwrap_or_else(|| panic!("{path}, {}: no frame at all", case.name));
        assert_eq!(close_code(last), case.code, "{path}, {}", case.name);
        let n = counts.entry(case.label).or_insert(0.0);
        *n += 1.0;
        closes(gw, path, case.label, *n).await;
        let errors = gw
            .metric(
                "ucgate_errors_total",
                &[("route", path), ("side", "client"), ("kind", case.label)],
            )
            .await;
        assert_eq!(
            errors, *n,
            "{path}, {}: counted as a client error",
            case.name
        );
    }
    let gone = gw
        .metric(
            "ucgate_ws_closes_total",
            &[("route", path), ("reason", "client_gone")],
        )
        .await;
    assert_eq!(gone, 0.0, "{path}: no violation is counted as client_gone");
}

#[tokio::test]
async fn tunnel_violations_get_their_close_codes() {
    let echo = echo_backend().await;
    let gw = TestGateway::start(&tunnel_route(
        "/echo",
        echo,
        &format!("max_message_size = {MAX}\nclose_timeout = \"2s\""),
    ))
    .await;
    every_case(&gw, "/echo", None, Http::H1).await;
}

fn xmpp_config() -> String {
    // No server is ever dialed: every case breaks the protocol before <open/>.
    format!("[[route]]\npath = \"/xmpp-websocket\"\nkind = \"xmpp-websocket\"\nmax_message_size = {MAX}\nclose_timeout = \"2s\"\n\n[xmpp.domains.\"localhost\"]\naddress = \"127.0.0.1:9\"\ntls = \"none\"\n")
}

#[tokio::test]
async fn xmpp_websocket_violations_get_their_close_codes() {
    let gw = TestGateway::start(&xmpp_config()).await;
    every_case(&gw, "/xmpp-websocket", Some("xmpp"), Http::H1).await;
}

#[tokio::test]
async fn sip_websocket_violations_get_their_close_codes() {
    // The core is never reached: nothing valid is sent.
    let gw = TestGateway::start(&format!(
        "[[route]]\npath = \"/sip\"\nkind = \"sip-websocket\"\ncore = \"sip:127.0.0.1:9;transport=udp\"\nmax_message_size = {MAX}\nclose_timeout = \"2s\"\n\n[sip]\nflow_token_key = \"a test key shared by every node\"\n"
    ))
    .await;
    every_case(&gw, "/sip", Some("sip"), Http::H1).await;
}

#[tokio::test]
async fn xmpp_message_too_big_is_a_policy_violation_then_1009() {
    let gw = TestGateway::start(&xmpp_config()).await;
    let mut s = raw_upgrade(gw.addr, "/xmpp-websocket", Some("xmpp")).await;
    let big = format!("<message><body>{}</body></message>", "x".repeat(MAX));
    let frames = violate(&mut s, &frame(0x81, big.as_bytes())).await;
    let texts: Vec<String> = frames
        .iter()
        .filter(|f| f.opcode == 0x1)
        .map(|f| String::from_utf8(f.payload.clone()).unwrap())
        .collect();
    // RFC 6120 §4.9.1.2: <open/> first when the client has had none
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(texts[0].starts_with("<open "), "{texts:?}");
    assert!(
        texts[1].starts_with("<stream:error")
            && texts[1].contains("<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{texts:?}"
    );
    assert_eq!(
        texts[2],
        "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"
    );
    assert_eq!(frames.len(), 4, "{frames:?}");
    assert_eq!(close_code(&frames[3]), 1009);
    closes(&gw, "/xmpp-websocket", "message_too_big", 1.0).await;
    assert_eq!(
        gw.metric(
            "ucgate_errors_total",
            &[
                ("route", "/xmpp-websocket"),
                ("side", "client"),
                ("kind", "message_too_big")
            ]
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn violations_over_http2_streams_get_their_close_codes_too() {
    // RFC 8441: the "FIN" is the stream's END_STREAM; each route once.
    let echo = echo_backend().await;
    let gw = TestGateway::start(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nh2c = true\n{}\n{}",
        tunnel_route(
            "/echo",
            echo,
            &format!("max_message_size = {MAX}\nclose_timeout = \"2s\"")
        ),
        xmpp_config()
    ))
    .await;
    every_case(&gw, "/echo", None, Http::H2).await;
    every_case(&gw, "/xmpp-websocket", Some("xmpp"), Http::H2).await;
}
