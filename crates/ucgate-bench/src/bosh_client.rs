//! A BOSH client (XEP-0124 / XEP-0206) as one task per session: session
//! creation, `rid`s increasing by one, `hold` empty requests always
//! outstanding (re-issued when answered), payloads sent in a new request as
//! long as fewer than `requests` are unanswered (else batched), responses
//! handled strictly in `rid` order, restart and terminate requests.
//!
//! HTTP/1.1 over streams from [`crate::net::Dialer`] (so proxies apply):
//! one request at a time per connection, at most `requests` connections.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use ucgate_proto::bosh::body::{parse_response, Response, NS_HTTPBIND, NS_XBOSH};
use ucgate_proto::xml::tag::escape;
use ucgate_proto::xml::Limits;
use url::Url;

use crate::net::Dialer;
use crate::xmpp_stream::{In, Out};

/// Largest response body accepted.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// How to reach the connection manager and what to ask for.
#[derive(Clone)]
pub struct BoshTarget {
    pub dialer: Dialer,
    pub url: Url,
    pub local: Option<IpAddr>,
    pub domain: String,
    /// `wait` asked for (seconds).
    pub wait: u64,
    /// `hold` asked for.
    pub hold: u32,
    /// HTTP timeout beyond `wait`.
    pub slack: Duration,
}

type Conn = SendRequest<Full<Bytes>>;

/// A created session, before its task starts.
pub struct Created {
    sid: String,
    next_rid: u64,
    requests: usize,
    hold: usize,
    wait: u64,
    conn: Option<Conn>,
    /// Payloads of the creation response (usually the stream features).
    pub payload: Vec<Vec<u8>>,
}

async fn new_conn(t: &BoshTarget) -> anyhow::Result<Conn> {
    let c = t.dialer.connect_from(&t.url, t.local).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(c.stream))
        .await
        .context("HTTP handshake")?;
    tokio::spawn(conn);
    Ok(sender)
}

/// One POST; returns the connection for reuse and the parsed body.
async fn post(
    t: &BoshTarget,
    conn: Option<Conn>,
    body: String,
    timeout: Duration,
) -> anyhow::Result<(Conn, Response)> {
    let work = async {
        let mut c = match conn {
            Some(c) if !c.is_closed() => c,
            _ => new_conn(t).await?,
        };
        c.ready().await.context("HTTP connection")?;
        let host = match t.url.port() {
            Some(p) => format!("{}:{p}", t.url.host_str().unwrap_or_default()),
            None => t.url.host_str().unwrap_or_default().to_string(),
        };
        let path = match t.url.query() {
            Some(q) => format!("{}?{q}", t.url.path()),
            None => t.url.path().to_string(),
        };
        let req = hyper::Request::post(path)
            .header(hyper::header::HOST, host)
            .header(hyper::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .body(Full::new(Bytes::from(body)))?;
        let resp = c.send_request(req).await.context("HTTP request")?;
        let status = resp.status();
        let bytes = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| anyhow!("reading the response: {e}"))?
            .to_bytes();
        if status != hyper::StatusCode::OK {
            bail!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            );
        }
        let limits = Limits {
            max_bytes: MAX_BODY,
            max_depth: 64,
            max_attributes: 64,
        };
        let r = parse_response(&bytes, &limits).map_err(|e| {
            anyhow!(
                "bad response body ({e}): {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            )
        })?;
        Ok((c, r))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| anyhow!("no response in {timeout:?}"))?
}

/// Why a response ends the session, if it does.
fn terminal(r: &Response) -> Option<String> {
    match r.attr("type") {
        Some("terminate") => Some(format!(
            "terminated: {}",
            r.attr("condition").unwrap_or("(no condition)")
        )),
        Some("error") => Some("recoverable binding error".to_string()),
        _ => None,
    }
}

/// A starting `rid`: large and different per session (no randomness
/// needed for a load generator), far below 2^53.
fn first_rid() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64;
    1_000_000 + (t % 1_000_000_000) * 1000 + N.fetch_add(7919, Ordering::Relaxed) % 1_000_000
}

/// Creates a session (the request is held until the server's features or
/// `wait`).
pub async fn create(t: &BoshTarget) -> anyhow::Result<Created> {
    let rid = first_rid();
    let body = format!(
        "<body xmlns='{NS_HTTPBIND}' xmlns:xmpp='{NS_XBOSH}' content='text/xml; charset=utf-8' hold='{}' rid='{rid}' to='{}' ver='1.11' wait='{}' xml:lang='en' xmpp:version='1.0'/>",
        t.hold,
        escape(&t.domain),
        t.wait
    );
    let (conn, r) = post(t, None, body, Duration::from_secs(t.wait) + t.slack).await?;
    if let Some(why) = terminal(&r) {
        bail!("session creation refused: {why}");
    }
    let sid = r
        .attr("sid")
        .ok_or_else(|| anyhow!("the creation response has no sid"))?
        .to_string();
    let num = |name: &str| r.attr(name).and_then(|v| v.parse::<u64>().ok());
    let hold = num("hold").unwrap_or(t.hold as u64) as usize;
    let requests = num("requests").unwrap_or(hold as u64 + 1).max(1) as usize;
    let wait = num("wait").unwrap_or(t.wait);
    Ok(Created {
        sid,
        next_rid: rid + 1,
        requests,
        hold,
        wait,
        conn: Some(conn),
        payload: r.payload,
    })
}

enum Kind {
    Empty,
    Payload,
    Restart,
    Terminate,
}

/// Runs the session: takes [`Out`] commands, gives [`In`] events (the
/// creation payloads first). Ends after a terminate (`Out::Close`) is
/// answered, or when the session ends on its own (`In::End`).
pub fn spawn(t: BoshTarget, c: Created) -> (mpsc::Sender<Out>, mpsc::Receiver<In>) {
    let (out_tx, out_rx) = mpsc::channel(1024);
    let (in_tx, in_rx) = mpsc::channel(1024);
    tokio::spawn(run(t, c, out_rx, in_tx));
    (out_tx, in_rx)
}

async fn run(
    t: BoshTarget,
    mut c: Created,
    mut out_rx: mpsc::Receiver<Out>,
    in_tx: mpsc::Sender<In>,
) {
    for p in std::mem::take(&mut c.payload) {
        if in_tx.send(In::Element(p)).await.is_err() {
            return;
        }
    }
    let timeout = Duration::from_secs(c.wait) + t.slack;
    let mut idle: Vec<Conn> = c.conn.take().into_iter().collect();
    let mut inflight = FuturesUnordered::new();
    let mut queued: Vec<String> = Vec::new();
    let mut restart = false;
    let mut closing = false;
    let mut terminate_sent = false;
    let mut responses: BTreeMap<u64, anyhow::Result<Response>> = BTreeMap::new();
    let mut next_deliver = c.next_rid;
    let sid_attr = format!("sid='{}'", escape(&c.sid));
    let mut inputs_open = true;
    loop {
        // Issue what is due.
        loop {
            let kind = if closing && !terminate_sent {
                Kind::Terminate
            } else if terminate_sent {
                break;
            } else if restart && queued.is_empty() && inflight.len() < c.requests {
                Kind::Restart
            } else if !queued.is_empty() && inflight.len() < c.requests {
                Kind::Payload
            } else if inflight.len() < c.hold {
                Kind::Empty
            } else {
                break;
            };
            let rid = c.next_rid;
            c.next_rid += 1;
            let body = match kind {
                Kind::Empty => format!("<body xmlns='{NS_HTTPBIND}' rid='{rid}' {sid_attr}/>"),
                Kind::Payload => format!(
                    "<body xmlns='{NS_HTTPBIND}' rid='{rid}' {sid_attr}>{}</body>",
                    std::mem::take(&mut queued).concat()
                ),
                Kind::Restart => {
                    restart = false;
                    format!(
                        "<body xmlns='{NS_HTTPBIND}' xmlns:xmpp='{NS_XBOSH}' rid='{rid}' {sid_attr} to='{}' xml:lang='en' xmpp:restart='true'/>",
                        escape(&t.domain)
                    )
                }
                Kind::Terminate => {
                    terminate_sent = true;
                    format!(
                        "<body xmlns='{NS_HTTPBIND}' rid='{rid}' {sid_attr} type='terminate'>{}</body>",
                        std::mem::take(&mut queued).concat()
                    )
                }
            };
            let conn = idle.pop();
            let t2 = t.clone();
            inflight.push(async move { (rid, post(&t2, conn, body, timeout).await) });
        }
        if inflight.is_empty() {
            // Only after the terminate was answered (or nothing is left).
            return;
        }
        tokio::select! {
            o = out_rx.recv(), if inputs_open && !closing => match o {
                Some(Out::Stanza(s)) => queued.push(s),
                Some(Out::Restart) => restart = true,
                Some(Out::Open) => {}
                Some(Out::Close) | None => {
                    closing = true;
                    inputs_open = false;
                }
            },
            Some((rid, res)) = inflight.next() => {
                let res = res.map(|(conn, r)| {
                    idle.push(conn);
                    r
                });
                responses.insert(rid, res);
                while let Some(res) = responses.remove(&next_deliver) {
                    next_deliver += 1;
                    match res {
                        Ok(r) => {
                            let end = terminal(&r);
                            for p in r.payload {
                                let _ = in_tx.send(In::Element(p)).await;
                            }
                            if let Some(why) = end {
                                if !terminate_sent {
                                    let _ = in_tx.send(In::End(Some(why))).await;
                                } else {
                                    let _ = in_tx.send(In::End(None)).await;
                                }
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = in_tx.send(In::Error(format!("{e:#}"))).await;
                            return;
                        }
                    }
                }
            }
        }
    }
}
