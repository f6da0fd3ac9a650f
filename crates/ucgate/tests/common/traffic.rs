//! A gateway with a route of every kind the tests can drive in-process
//! (tunnel, BOSH, XMPP WebSocket, SIP, host-meta), and some traffic of
//! each, good and bad: what `/metrics` then shows is what the docs
//! (tests/docs_and_metrics.rs) and the dashboards (tests/dashboards.rs) are
//! checked against.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::sip::{self as sipc, Core};
use super::*;

/// The running gateway, what keeps its peers alive, and its `/metrics`.
pub struct Busy {
    pub gw: TestGateway,
    pub core: Core,
    pub metrics: String,
    /// The client side of the tunnel still open on `/echo`.
    pub ws: Ws,
}

const BOSH_NS: &str = "http://jabber.org/protocol/httpbind";

/// The configuration: `/echo` and `/dead` tunnels, `/http-bind` (BOSH),
/// `/xmpp-websocket` and `/sip`; the XMPP domain `localhost` is
/// unreachable (a closed port), so XMPP sessions end with a backend error.
pub fn config(echo: SocketAddr, dead: SocketAddr, core: SocketAddr) -> String {
    format!(
        "{}{}[[route]]\npath = \"/http-bind\"\nkind = \"bosh\"\n\n\
         [[route]]\npath = \"/xmpp-websocket\"\nkind = \"xmpp-websocket\"\n\n{}\n\
         [xmpp]\nwebsocket_url = \"wss://chat.example.org/xmpp-websocket\"\n\
         bosh_url = \"https://chat.example.org/http-bind\"\n\n\
         [xmpp.domains.\"localhost\"]\naddress = \"{dead}\"\ntls = \"none\"\n",
        tunnel_route("/echo", echo, ""),
        tunnel_route("/dead", dead, ""),
        sipc::config(core),
    )
}

async fn bosh_post(gw: &TestGateway, body: &str) -> String {
    raw_request(
        gw.addr,
        &format!(
            "POST /http-bind HTTP/1.1\r\nHost: {}\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            gw.addr,
            body.len()
        ),
    )
    .await
}

/// Starts the gateway and drives the traffic; `/echo` stays open.
pub async fn busy_gateway() -> Busy {
    let echo = echo_backend().await;
    let dead = dead_address().await;
    let core = Core::start().await;
    let gw = TestGateway::start(&config(echo, dead, core.addr)).await;
    let t = Duration::from_secs(10);

    // tunnel: a round trip, an unreachable backend, a plain GET, no route
    let (mut ws, _) = ws_connect(&gw.ws_url("/echo"), None, None).await.unwrap();
    ws.send(Message::Binary(Bytes::from_static(b"12345")))
        .await
        .unwrap();
    assert_eq!(read_ws_bytes(&mut ws, 5).await, b"12345");
    assert!(ws_connect(&gw.ws_url("/dead"), None, None).await.is_err());
    assert_eq!(http_get(gw.addr, "/echo").await.0, 426);
    assert_eq!(http_get(gw.addr, "/missing").await.0, 404);

    // XEP-0156 host-meta: GET, and a method it refuses
    assert_eq!(http_get(gw.addr, "/.well-known/host-meta").await.0, 200);
    let raw = raw_request(
        gw.addr,
        &format!(
            "POST /.well-known/host-meta HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            gw.addr
        ),
    )
    .await;
    assert_eq!(parse_response(&raw).0, 405, "{raw}");

    // BOSH: a preflight from the gateway's own origin (204), one from
    // elsewhere (403), a session whose server is unreachable, an unknown sid
    let preflight = |origin: String| {
        format!("OPTIONS /http-bind HTTP/1.1\r\nHost: {}\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n", gw.addr)
    };
    let raw = raw_request(gw.addr, &preflight(format!("http://{}", gw.addr))).await;
    assert_eq!(parse_response(&raw).0, 204, "{raw}");
    let raw = raw_request(gw.addr, &preflight("https://evil.example".into())).await;
    assert_eq!(parse_response(&raw).0, 403, "{raw}");
    let created = tokio::time::timeout(t, bosh_post(&gw, &format!("<body xmlns='{BOSH_NS}' xmlns:xmpp='urn:xmpp:xbosh' rid='100' to='localhost' wait='5' hold='1' ver='1.11' xmpp:version='1.0'/>"))).await.expect("BOSH answer in time");
    assert!(created.contains("remote-connection-failed"), "{created}");
    let unknown = bosh_post(
        &gw,
        &format!("<body xmlns='{BOSH_NS}' rid='101' sid='nosuchsession'/>"),
    )
    .await;
    assert!(unknown.contains("item-not-found"), "{unknown}");

    // XMPP over WebSocket: the server is unreachable
    let (mut x, _) = ws_connect(&gw.ws_url("/xmpp-websocket"), None, Some("xmpp"))
        .await
        .unwrap();
    x.send(Message::Text(
        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>".into(),
    ))
    .await
    .unwrap();
    tokio::time::timeout(t, async { while let Some(Ok(_)) = x.next().await {} })
        .await
        .expect("the XMPP WebSocket ends in time");

    // SIP: a registration through the core, then the client goes away
    let mut s = sipc::open(&gw).await;
    tokio::time::timeout(t, sipc::register(&mut s, &core))
        .await
        .expect("registered in time");
    s.close(None).await.unwrap();
    tokio::time::timeout(t, async { while let Some(Ok(_)) = s.next().await {} })
        .await
        .expect("the SIP WebSocket ends in time");

    tokio::time::sleep(Duration::from_millis(200)).await;
    let metrics = gw.metrics().await;
    Busy {
        gw,
        core,
        metrics,
        ws,
    }
}

/// `/metrics` parsed: family name (as exposed: `_total` on counters, no
/// `_bucket`/`_sum`/`_count` on histograms) → its type and the label names
/// and values of its samples (`le` left out).
pub fn families(text: &str) -> BTreeMap<String, Family> {
    let mut out: BTreeMap<String, Family> = BTreeMap::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut p = rest.split_whitespace();
            let (name, kind) = (p.next().unwrap(), p.next().unwrap());
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (name, labels) = match line.find('{') {
            Some(i) => (&line[..i], &line[i + 1..line.rfind('}').unwrap()]),
            None => (line.split_whitespace().next().unwrap(), ""),
        };
        let (family, kind) = types
            .iter()
            .filter(|(f, _)| name.starts_with(f.as_str()))
            .max_by_key(|(f, _)| f.len())
            .map(|(f, k)| (f.clone(), k.clone()))
            .unwrap_or_else(|| panic!("sample `{name}` before its # TYPE"));
        let exposed = if kind == "counter" {
            format!("{family}_total")
        } else {
            family
        };
        let f = out.entry(exposed).or_insert_with(|| Family {
            kind: kind.clone(),
            labels: BTreeMap::new(),
        });
        for (k, v) in split_labels(labels) {
            if k != "le" {
                f.labels.entry(k).or_default().insert(v);
            }
        }
    }
    out
}

/// One family of [`families`].
#[derive(Debug)]
pub struct Family {
    pub kind: String,
    /// label name → values seen
    pub labels: BTreeMap<String, BTreeSet<String>>,
}

fn split_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].trim_start_matches(',').trim().to_string();
        let after = &rest[eq + 2..];
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((name, value));
        rest = &after[end..];
    }
    out
}

/// The label names docs/metrics.md gives `name` (the fourth cell of its
/// `| \`name\` | …` row, values in parentheses left out), or `None`
/// without a row.
pub fn documented_labels(doc: &str, name: &str) -> Option<Vec<String>> {
    let row = doc
        .lines()
        .find(|l| l.starts_with(&format!("| `{name}` |")))?;
    let cell = row.split('|').map(str::trim).nth(4)?;
    let (mut depth, mut plain) = (0, String::new());
    for c in cell.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            c if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    Some(
        plain
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect(),
    )
}
