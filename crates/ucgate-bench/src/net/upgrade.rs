//! The WebSocket client handshake (RFC 6455 §4.1) over a dialed stream.

use anyhow::Context;
use url::Url;

use super::stream::BoxStream;

/// The WebSocket client handshake over a [`Connection`](super::Connection), offering
/// `subprotocol` when given. Returns the socket and the subprotocol the
/// server chose.
pub async fn websocket(
    conn: BoxStream,
    url: &Url,
    subprotocol: Option<&str>,
) -> anyhow::Result<(
    tokio_tungstenite::WebSocketStream<BoxStream>,
    Option<String>,
)> {
    let (ws, resp) = websocket_handshake(conn, url, subprotocol).await?;
    Ok((ws, resp.subprotocol))
}

/// What the server answered to a successful WebSocket upgrade.
#[derive(Clone, Debug)]
pub struct Upgrade {
    /// 101.
    pub status: u16,
    /// The subprotocol the server chose (RFC 6455 lets it choose none of
    /// those offered).
    pub subprotocol: Option<String>,
}

/// A refused or invalid WebSocket upgrade (inside the `anyhow::Error` of
/// [`websocket_handshake`]).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HandshakeError {
    /// The HTTP status, when the server answered with one.
    pub status: Option<u16>,
    pub message: String,
}

/// Longest upgrade response head accepted.
const MAX_UPGRADE_HEAD: usize = 64 * 1024;

/// As [`websocket`], returning the server's answer. The handshake is
/// RFC 6455 §4.1 over HTTP/1.1 (done here rather than by tungstenite,
/// which refuses an answer without a subprotocol when one was offered);
/// bytes the server sends right after its 101 are kept. No time limit:
/// the caller bounds it.
pub async fn websocket_handshake(
    mut conn: BoxStream,
    url: &Url,
    subprotocol: Option<&str>,
) -> anyhow::Result<(tokio_tungstenite::WebSocketStream<BoxStream>, Upgrade)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::handshake::{client::generate_key, derive_accept_key};
    let fail = |status: Option<u16>, message: String| HandshakeError { status, message };
    let host = url
        .host_str()
        .ok_or_else(|| anyhow::anyhow!("URL {url} has no host"))?;
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let key = generate_key();
    let mut req = format!(
        "GET {target} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: ucgate-bench/{}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(p) = subprotocol {
        if p.is_empty() || p.bytes().any(|b| b <= b' ' || b >= 0x7f || b == b',') {
            anyhow::bail!("invalid subprotocol name {p:?}");
        }
        req.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes())
        .await
        .with_context(|| format!("sending the upgrade request to {url}"))?;
    conn.flush().await?;

    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > MAX_UPGRADE_HEAD {
            return Err(fail(
                None,
                format!("response head longer than {MAX_UPGRADE_HEAD} bytes"),
            )
            .into());
        }
        let mut chunk = [0u8; 4096];
        let n = conn
            .read(&mut chunk)
            .await
            .context("reading the upgrade response")?;
        if n == 0 {
            let msg = if buf.is_empty() {
                "the server closed the connection without answering the upgrade".to_string()
            } else {
                format!(
                    "the server closed the connection after {} bytes of response head",
                    buf.len()
                )
            };
            return Err(fail(None, msg).into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let rest = buf.split_off(head_end);
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("").to_string();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let status = parts.next().and_then(|c| c.parse::<u16>().ok());
    let reason = parts.next().unwrap_or("").trim().to_string();
    let (true, Some(status)) = (version.starts_with("HTTP/"), status) else {
        return Err(fail(
            None,
            format!(
                "not an HTTP response: {:?}",
                status_line.chars().take(100).collect::<String>()
            ),
        )
        .into());
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if status != 101 {
        // show the start of the body: the gateway says why it refused
        let want = header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
            .min(2048);
        let mut body = rest;
        while body.len() < want {
            let mut chunk = [0u8; 2048];
            match conn.read(&mut chunk).await {
                Ok(n) if n > 0 => body.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
        body.truncate(2048);
        let html = header("content-type").is_some_and(|t| t.to_ascii_lowercase().contains("html"));
        let text = String::from_utf8_lossy(&body);
        let text = body_summary(&text, html);
        let text = if text.is_empty() {
            String::new()
        } else {
            format!(": {text}")
        };
        return Err(fail(
            Some(status),
            format!("HTTP {status} {reason} instead of 101{text}"),
        )
        .into());
    }
    let bad = |m: String| -> anyhow::Error { fail(Some(101), m).into() };
    if !header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(bad(format!(
            "101 without Upgrade: websocket (got {:?})",
            header("upgrade")
        )));
    }
    if !header("connection").is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    }) {
        return Err(bad(format!(
            "101 without Connection: Upgrade (got {:?})",
            header("connection")
        )));
    }
    let accept = derive_accept_key(key.as_bytes());
    if header("sec-websocket-accept") != Some(accept.as_str()) {
        return Err(bad(format!(
            "wrong Sec-WebSocket-Accept {:?} (expected {accept:?})",
            header("sec-websocket-accept")
        )));
    }
    let chosen = header("sec-websocket-protocol").map(str::to_string);
    if let Some(c) = &chosen {
        if subprotocol.is_none_or(|o| o != c) {
            return Err(bad(format!(
                "the server chose subprotocol {c:?}, which was not offered"
            )));
        }
    }
    if let Some(ext) = header("sec-websocket-extensions") {
        return Err(bad(format!(
            "the server chose extensions {ext:?}, none were offered"
        )));
    }
    let stream: BoxStream = Box::new(super::proxy::Prefixed::new(rest, conn));
    let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
        stream,
        tokio_tungstenite::tungstenite::protocol::Role::Client,
        None,
    )
    .await;
    Ok((
        ws,
        Upgrade {
            status,
            subprotocol: chosen,
        },
    ))
}

/// One line from an error body: the `<title>` of an HTML page, else the
/// text with white space collapsed; at most 200 characters.
pub(super) fn body_summary(body: &str, html: bool) -> String {
    let text = if html {
        let lower = body.to_ascii_lowercase();
        match (lower.find("<title>"), lower.find("</title>")) {
            (Some(a), Some(b)) if a + 7 <= b => &body[a + 7..b],
            _ => "",
        }
    } else {
        body
    };
    let one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one.chars().take(200).collect()
}
