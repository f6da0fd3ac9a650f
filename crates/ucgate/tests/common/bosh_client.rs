//! A BOSH client for tests (HTTP/1.1 or HTTP/2) and a login as alice
//! against the scripted XMPP server ([`super::xmpp_server`]).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::TestGateway;

pub const NS: &str = "http://jabber.org/protocol/httpbind";

/// A BOSH client over HTTP/1.1 (one connection per request) or HTTP/2 (one
/// connection for everything).
pub struct Client {
    pub addr: std::net::SocketAddr,
    pub h2: Option<hyper::client::conn::http2::SendRequest<Full<Bytes>>>,
    pub sid: String,
    pub rid: u64,
    pub counts: Counts,
}

/// POSTs made, their body bytes and the response body bytes.
#[derive(Default)]
pub struct Counts {
    pub posts: AtomicU64,
    pub sent: AtomicU64,
    pub received: AtomicU64,
}

impl Client {
    /// Another client for the same session, to send requests alongside.
    pub fn twin(&self) -> Client {
        Client {
            addr: self.addr,
            h2: self.h2.clone(),
            sid: self.sid.clone(),
            rid: self.rid,
            counts: Counts::default(),
        }
    }

    pub async fn new(addr: std::net::SocketAddr, h2: bool) -> Client {
        let h2 = if h2 {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                    .await
                    .unwrap();
            tokio::spawn(conn);
            Some(sender)
        } else {
            None
        };
        Client {
            addr,
            h2,
            sid: String::new(),
            rid: 4000,
            counts: Counts::default(),
        }
    }

    pub async fn post_raw(&self, body: String) -> (u16, String) {
        self.counts.posts.fetch_add(1, Ordering::Relaxed);
        self.counts
            .sent
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        let req = http::Request::post(format!("http://{}/http-bind", self.addr))
            .header("content-type", "text/xml; charset=utf-8")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let resp = match &self.h2 {
            Some(s) => {
                let mut s = s.clone();
                s.send_request(req).await.unwrap()
            }
            None => {
                let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
                let (mut s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                    .await
                    .unwrap();
                tokio::spawn(conn);
                s.send_request(req).await.unwrap()
            }
        };
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        self.counts
            .received
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    /// Sends `<body rid=… sid=… attrs>payload</body>` with the next rid.
    pub async fn send(&mut self, attrs: &str, payload: &str) -> String {
        self.rid += 1;
        self.send_rid(self.rid, attrs, payload).await
    }

    pub async fn send_rid(&self, rid: u64, attrs: &str, payload: &str) -> String {
        let sid = if self.sid.is_empty() {
            String::new()
        } else {
            format!(" sid='{}'", self.sid)
        };
        let body = format!("<body xmlns='{NS}' xmlns:xmpp='urn:xmpp:xbosh' rid='{rid}'{sid} {attrs}>{payload}</body>");
        let (status, text) = tokio::time::timeout(Duration::from_secs(20), self.post_raw(body))
            .await
            .expect("BOSH answer in time");
        assert_eq!(status, 200, "{text}");
        text
    }
}

pub fn attr(body: &str, name: &str) -> Option<String> {
    let pat = format!(" {name}='");
    let pat2 = format!(" {name}=\"");
    for p in [pat, pat2] {
        if let Some(i) = body.find(&p) {
            let rest = &body[i + p.len()..];
            let q = p.chars().last().unwrap();
            return rest.split(q).next().map(str::to_string);
        }
    }
    None
}

/// Creates a session and logs in as alice; returns the client after bind.
pub async fn login(gw: &TestGateway, h2: bool) -> Client {
    login_holding(gw, h2, 1).await
}

/// [`login`] asking for `hold` (the gateway's `bosh.max_hold` at least).
pub async fn login_holding(gw: &TestGateway, h2: bool, hold: u32) -> Client {
    let mut c = Client::new(gw.addr, h2).await;
    let created = c
        .send(
            &format!("to='localhost' xml:lang='en' wait='10' hold='{hold}' ver='1.11' xmpp:version='1.0'"),
            "",
        )
        .await;
    c.sid = attr(&created, "sid").unwrap_or_else(|| panic!("no sid in {created}"));
    assert_eq!(
        attr(&created, "xmpp:restartlogic").as_deref(),
        Some("true"),
        "{created}"
    );
    assert_eq!(
        attr(&created, "requests"),
        Some((hold + 1).to_string()),
        "{created}"
    );
    // features may be in the creation response or the next one
    let mut seen = created.clone();
    while !seen.contains("<mechanisms") {
        seen = c.send("", "").await;
    }
    assert!(!seen.contains("starttls"), "{seen}");
    let r = c.send("", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>").await;
    let mut r = r;
    while !r.contains("<success") {
        r = c.send("", "").await;
    }
    let mut r = c
        .send("xml:lang='en' to='localhost' xmpp:restart='true'", "")
        .await;
    while !r.contains("urn:ietf:params:xml:ns:xmpp-bind") {
        r = c.send("", "").await;
    }
    let mut r = c.send("", "<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>").await;
    while !r.contains("alice@localhost/web") {
        r = c.send("", "").await;
    }
    c
}

/// The texts of the `<body>` elements of the chat messages in `text`.
pub fn bodies(text: &str) -> Vec<String> {
    text.split("<body>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_string())
        .collect()
}

/// The stanza that asks the scripted server for `n` messages `m1`..`mn`.
pub fn flood_request(n: usize) -> String {
    format!("<message xmlns='jabber:client' to='bob@localhost' type='chat'><body>flood {n}</body></message>")
}

/// The flooded messages' bodies (`m…`) in a response.
pub fn flooded(text: &str) -> impl Iterator<Item = String> {
    bodies(text).into_iter().filter(|b| b.starts_with('m'))
}

/// Asks the scripted server for `n` messages (`flood n`), each request of
/// the session sent to the next of `nodes` in turn (one node: all to it),
/// and checks that they arrive once each, in order.
pub async fn flood_through(c: &mut Client, nodes: &[std::net::SocketAddr], n: usize) {
    let mut turn = 0;
    let mut next = |c: &mut Client| {
        c.addr = nodes[turn % nodes.len()];
        turn += 1;
    };
    next(c);
    let mut got: Vec<String> = flooded(&c.send("", &flood_request(n)).await).collect();
    let mut rounds = 0;
    while got.len() < n {
        rounds += 1;
        assert!(rounds < 100, "only {} of {n} stanzas arrived", got.len());
        next(c);
        got.extend(flooded(&c.send("", "").await));
    }
    let expected: Vec<String> = (1..=n).map(|i| format!("m{i}")).collect();
    assert_eq!(got, expected, "every stanza exactly once, in order");
}
