//! A stub SIP core (UDP and TCP on one port) and the SIP messages and
//! helpers the SIP-over-WebSocket tests share.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::{ws_connect, TestGateway, Ws};

pub const KEY: &str = "a test key shared by every node";

pub struct Core {
    pub udp: UdpSocket,
    pub tcp: TcpListener,
    pub addr: SocketAddr,
}

impl Core {
    pub async fn start() -> Core {
        for _ in 0..16 {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = udp.local_addr().unwrap();
            if let Ok(tcp) = TcpListener::bind(addr).await {
                return Core { udp, tcp, addr };
            }
        }
        panic!("no port free on UDP and TCP");
    }

    /// The next datagram (keep-alives skipped) and where it came from.
    pub async fn recv(&self) -> (String, SocketAddr) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let (n, from) =
                tokio::time::timeout(Duration::from_secs(10), self.udp.recv_from(&mut buf))
                    .await
                    .expect("a datagram in time")
                    .unwrap();
            let s = String::from_utf8_lossy(&buf[..n]).to_string();
            if !s.trim().is_empty() {
                return (s, from);
            }
        }
    }

    pub async fn send(&self, msg: &str, to: SocketAddr) {
        self.udp.send_to(msg.as_bytes(), to).await.unwrap();
    }
}

pub fn config(core: SocketAddr) -> String {
    config_with(core, "udp", "")
}

pub fn config_with(core: SocketAddr, transport: &str, sip_extra: &str) -> String {
    format!(
        "[[route]]\npath = \"/sip\"\nkind = \"sip-websocket\"\ncore = \"sip:{core};transport={transport}\"\nclose_timeout = \"300ms\"\n\n[sip]\nflow_token_key = \"{KEY}\"\n{sip_extra}"
    )
}

/// Reads one Content-Length-framed SIP message from a stream.
pub async fn read_stream_message<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    acc: &mut Vec<u8>,
) -> String {
    let mut buf = [0u8; 8192];
    loop {
        let text = String::from_utf8_lossy(acc).to_string();
        let trimmed = text.trim_start_matches("\r\n");
        let skipped = text.len() - trimmed.len();
        if let Some(end) = trimmed.find("\r\n\r\n") {
            let len: usize = headers(trimmed, "Content-Length")
                .first()
                .map(|v| v.parse().unwrap())
                .unwrap_or(0);
            let total = skipped + end + 4 + len;
            if acc.len() >= total {
                let msg = String::from_utf8_lossy(&acc[skipped..total]).to_string();
                acc.drain(..total);
                return msg;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("bytes in time")
            .unwrap();
        assert!(n > 0, "connection closed early");
        acc.extend_from_slice(&buf[..n]);
    }
}

pub async fn open(gw: &TestGateway) -> Ws {
    let (ws, resp) = ws_connect(&gw.ws_url("/sip"), None, Some("sip"))
        .await
        .unwrap();
    assert_eq!(resp.headers().get("sec-websocket-protocol").unwrap(), "sip");
    ws
}

pub async fn next_text<S>(ws: &mut WebSocketStream<S>) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message in time")
        {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

pub async fn send(ws: &mut Ws, s: &str) {
    ws.send(Message::Text(s.to_string().into())).await.unwrap();
}

pub async fn expect_close(ws: &mut Ws) -> CloseCode {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("close in time")
        {
            Some(Ok(Message::Close(Some(f)))) => return f.code,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// The header lines named `name` (case-insensitive, long form).
pub fn headers<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    let head = msg.split("\r\n\r\n").next().unwrap();
    head.split("\r\n")
        .skip(1)
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
        .collect()
}

/// A response to `req`: every Via, From, To (+ tag), Call-ID, CSeq copied.
pub fn response(req: &str, status: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for v in headers(req, "Via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    out.push_str(&format!("From: {}\r\n", headers(req, "From")[0]));
    let to = headers(req, "To")[0];
    if to.contains("tag=") {
        out.push_str(&format!("To: {to}\r\n"));
    } else {
        out.push_str(&format!("To: {to};tag=stub\r\n"));
    }
    out.push_str(&format!("Call-ID: {}\r\n", headers(req, "Call-ID")[0]));
    out.push_str(&format!("CSeq: {}\r\n", headers(req, "CSeq")[0]));
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

pub const REGISTER: &str = "REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKreg1\r\n\
Max-Forwards: 69\r\n\
To: <sip:alice@example.com>\r\n\
From: <sip:alice@example.com>;tag=a1\r\n\
Call-ID: reg-call-1\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:x1@df7jal23ls0d.invalid;transport=ws>;+sip.instance=\"<urn:uuid:1>\";reg-id=1\r\n\
Supported: path, outbound, gruu\r\n\
Content-Length: 0\r\n\r\n";

/// Registers through the gateway; returns the Path URI and the gateway's UDP address.
pub async fn register(ws: &mut Ws, core: &Core) -> (String, SocketAddr) {
    send(ws, REGISTER).await;
    let (req, gw) = core.recv().await;
    assert!(
        req.starts_with("REGISTER sip:example.com SIP/2.0\r\n"),
        "{req}"
    );
    let vias = headers(&req, "Via");
    assert_eq!(vias.len(), 2, "{req}");
    assert!(
        vias[0].starts_with(&format!("SIP/2.0/UDP {gw};branch=z9hG4bK")),
        "our Via on top: {req}"
    );
    assert!(vias[0].contains("ucgf="), "{req}");
    assert!(
        vias[1].starts_with(
            "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKreg1;received=127.0.0.1;rport="
        ),
        "received/rport on the client's Via: {req}"
    );
    let path = headers(&req, "Path");
    assert_eq!(path.len(), 1, "{req}");
    let uri = path[0]
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_string();
    assert!(
        uri.starts_with("sip:") && uri.contains(&format!("@{gw}")),
        "{uri}"
    );
    assert!(uri.contains(";lr") && uri.contains(";ob"), "{uri}");
    assert_eq!(headers(&req, "Max-Forwards"), ["68"]);
    core.send(&response(&req, "200 OK"), gw).await;
    let ok = next_text(ws).await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    assert!(!ok.contains("ucgf"), "our Via removed: {ok}");
    assert_eq!(headers(&ok, "Via").len(), 1, "{ok}");
    (uri, gw)
}

pub fn core_message(core: &Core, route: &str, cseq: u32) -> String {
    format!(
        "MESSAGE sip:x1@df7jal23ls0d.invalid;transport=ws SIP/2.0\r\n\
Via: SIP/2.0/UDP {};branch=z9hG4bKcore{cseq}\r\n\
Route: <{route}>\r\n\
Max-Forwards: 70\r\n\
From: <sip:bob@example.com>;tag=b1\r\n\
To: <sip:alice@example.com>\r\n\
Call-ID: msg-call-1\r\n\
CSeq: {cseq} MESSAGE\r\n\
Content-Type: text/plain\r\n\
Content-Length: 5\r\n\r\nhello",
        core.addr
    )
}
