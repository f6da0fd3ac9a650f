//! An XMPP client for load: four transports behind one pair of channels
//! (RFC 7395 WebSocket framing, a plain RFC 6120 TCP stream, that same
//! stream in binary WebSocket messages through a byte relay, BOSH from
//! [`crate::bosh_client`]) and the login every transport shares: SASL PLAIN
//! or ANONYMOUS, stream restart, resource binding, and the session
//! establishment when a server still requires it.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{anyhow, bail};
use base64::Engine;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::io::{CopyToBytes, SinkWriter, StreamReader};
use ucgate_proto::xml::splitter::{Event, Splitter};
use ucgate_proto::xml::tag::{escape, parse_start_tag, unescape, StartTag};
use url::Url;

use crate::bosh_client::{self, BoshTarget};
use crate::modes::ws_echo::{open_ws, Ws};
use crate::net::Dialer;
pub use crate::xmpp_stream::{In, Out};

pub const NS_FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
/// Largest element accepted from the server.
const MAX_ELEMENT: usize = 1024 * 1024;

/// Which transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    Ws,
    Bosh,
    Tcp,
    /// The plain TCP stream's bytes in binary WebSocket messages, through
    /// a byte relay (a `tcp` tunnel route, websocat) to the c2s port.
    Relay,
}

/// A connected transport: commands in, events out.
pub struct Stream {
    pub tx: mpsc::Sender<Out>,
    pub rx: mpsc::Receiver<In>,
}

/// Where and how to connect.
#[derive(Clone)]
pub struct Target {
    pub transport: Transport,
    /// URL (ws/bosh) or `host:port` (tcp).
    pub address: String,
    pub domain: String,
    pub dialer: Option<Dialer>,
    pub local: Option<IpAddr>,
    pub timeout: Duration,
}

/// Connects (and, for BOSH, creates the session).
pub async fn connect(t: &Target) -> anyhow::Result<Stream> {
    match t.transport {
        Transport::Ws => {
            let url = Url::parse(&t.address)?;
            let dialer = t.dialer.as_ref().ok_or_else(|| anyhow!("no dialer"))?;
            let (ws, chosen) = open_ws(dialer, &url, t.local, Some("xmpp")).await?;
            if chosen.as_deref() != Some("xmpp") {
                bail!("the server did not accept the xmpp subprotocol (chose {chosen:?})");
            }
            Ok(spawn_ws(ws, t.domain.clone()))
        }
        Transport::Tcp => {
            let s = match t.local {
                Some(ip) => {
                    let addr = tokio::net::lookup_host(&t.address)
                        .await?
                        .next()
                        .ok_or_else(|| anyhow!("{} has no address", t.address))?;
                    let sock = if addr.is_ipv4() {
                        tokio::net::TcpSocket::new_v4()?
                    } else {
                        tokio::net::TcpSocket::new_v6()?
                    };
                    sock.bind(std::net::SocketAddr::new(ip, 0))?;
                    sock.connect(addr).await?
                }
                None => tokio::net::TcpStream::connect(&t.address).await?,
            };
            s.set_nodelay(true)?;
            let (r, w) = s.into_split();
            Ok(spawn_stream(r, w, t.domain.clone()))
        }
        Transport::Relay => {
            let url = Url::parse(&t.address)?;
            let dialer = t.dialer.as_ref().ok_or_else(|| anyhow!("no dialer"))?;
            let (ws, _) = open_ws(dialer, &url, t.local, None).await?;
            let (r, w) = relay_halves(ws);
            Ok(spawn_stream(r, w, t.domain.clone()))
        }
        Transport::Bosh => {
            let bt = bosh_target(t)?;
            let created = bosh_client::create(&bt).await?;
            let (tx, rx) = bosh_client::spawn(bt, created);
            Ok(Stream { tx, rx })
        }
    }
}

/// The BOSH parameters of a target (`wait` 60, `hold` 1).
pub fn bosh_target(t: &Target) -> anyhow::Result<BoshTarget> {
    Ok(BoshTarget {
        dialer: t.dialer.clone().ok_or_else(|| anyhow!("no dialer"))?,
        url: Url::parse(&t.address)?,
        local: t.local,
        domain: t.domain.clone(),
        wait: 60,
        hold: 1,
        slack: t.timeout,
    })
}

fn framing_open(domain: &str) -> String {
    format!(
        "<open xmlns='{NS_FRAMING}' to='{}' version='1.0'/>",
        escape(domain)
    )
}

fn spawn_ws(ws: Ws, domain: String) -> Stream {
    let (out_tx, mut out_rx) = mpsc::channel::<Out>(1024);
    let (in_tx, in_rx) = mpsc::channel(1024);
    let (mut sink, mut stream) = ws.split();
    let reader_tx = in_tx.clone();
    tokio::spawn(async move {
        while let Some(o) = out_rx.recv().await {
            let text = match o {
                Out::Open | Out::Restart => framing_open(&domain),
                Out::Stanza(s) => s,
                Out::Close => {
                    let _ = sink
                        .send(Message::text(format!("<close xmlns='{NS_FRAMING}'/>")))
                        .await;
                    // The server answers <close/> and closes the WebSocket;
                    // the reader sees it.
                    return;
                }
            };
            if let Err(e) = sink.send(Message::text(text)).await {
                let _ = in_tx.send(In::Error(format!("send: {e}"))).await;
                return;
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    });
    tokio::spawn(async move {
        loop {
            let ev = match stream.next().await {
                Some(Ok(Message::Text(t))) => {
                    let b = t.as_bytes();
                    match parse_start_tag(b) {
                        Ok(Some(tag)) if tag.local() == "open" => In::Open,
                        Ok(Some(tag)) if tag.local() == "close" => {
                            In::End(Some("the server sent <close/>".to_string()))
                        }
                        Ok(Some(_)) => In::Element(b.to_vec()),
                        _ => In::Error(format!("unparseable frame {:?}", preview(b))),
                    }
                }
                Some(Ok(Message::Binary(_))) => In::Error("binary frame".to_string()),
                Some(Ok(Message::Close(f))) => In::End(Some(format!("WebSocket closed: {f:?}"))),
                Some(Ok(_)) => continue,
                Some(Err(e)) => In::Error(format!("WebSocket: {e}")),
                None => In::End(Some("connection closed".to_string())),
            };
            let last = !matches!(ev, In::Open | In::Element(_));
            if reader_tx.send(ev).await.is_err() || last {
                // Let the close handshake finish in the background.
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    while let Some(Ok(_)) = stream.next().await {}
                })
                .await;
                return;
            }
        }
    });
    Stream {
        tx: out_tx,
        rx: in_rx,
    }
}

fn stream_header(domain: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream to='{}' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        escape(domain)
    )
}

/// A WebSocket as the two halves of a byte stream: each write is one binary
/// message, each binary message read is bytes of the stream (pings and
/// pongs skipped, a close frame its end).
fn relay_halves(
    ws: Ws,
) -> (
    impl AsyncRead + Unpin + Send,
    impl AsyncWrite + Unpin + Send,
) {
    let (sink, stream) = ws.split();
    let reader = StreamReader::new(stream.filter_map(|m| {
        std::future::ready(match m {
            Ok(Message::Binary(b)) => Some(Ok(b)),
            Ok(Message::Text(t)) => Some(Ok(Bytes::copy_from_slice(t.as_bytes()))),
            Ok(Message::Close(_)) => None,
            Ok(_) => None,
            Err(e) => Some(Err(std::io::Error::other(e))),
        })
    }));
    let sink = sink
        .with(|b: Bytes| {
            std::future::ready(Ok::<_, tokio_tungstenite::tungstenite::Error>(
                Message::Binary(b),
            ))
        })
        .sink_map_err(std::io::Error::other);
    (reader, SinkWriter::new(CopyToBytes::new(sink)))
}

/// An RFC 6120 stream over any byte stream (TCP, or a relay's WebSocket).
fn spawn_stream<R, W>(mut r: R, mut w: W, domain: String) -> Stream
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out_tx, mut out_rx) = mpsc::channel::<Out>(1024);
    let (in_tx, in_rx) = mpsc::channel(1024);
    let err_tx = in_tx.clone();
    tokio::spawn(async move {
        while let Some(o) = out_rx.recv().await {
            let text = match o {
                Out::Open | Out::Restart => stream_header(&domain),
                Out::Stanza(s) => s,
                Out::Close => {
                    let _ = w.write_all(b"</stream:stream>").await;
                    let _ = w.flush().await;
                    return;
                }
            };
            // (flush: a relay's WebSocket sends on flush; TCP's is a no-op)
            let sent = match w.write_all(text.as_bytes()).await {
                Ok(()) => w.flush().await,
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                let _ = err_tx.send(In::Error(format!("send: {e}"))).await;
                return;
            }
        }
        let _ = w.shutdown().await;
    });
    tokio::spawn(async move {
        let mut sp = Splitter::new(MAX_ELEMENT);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match r.read(&mut buf).await {
                Ok(0) => {
                    let _ = in_tx
                        .send(In::End(Some("connection closed".to_string())))
                        .await;
                    return;
                }
                Ok(n) => n,
                Err(e) => {
                    let _ = in_tx.send(In::Error(format!("read: {e}"))).await;
                    return;
                }
            };
            sp.feed(&buf[..n]);
            loop {
                let ev = match sp.next_event() {
                    Ok(None) => break,
                    Ok(Some(Event::Header(_))) => In::Open,
                    Ok(Some(Event::Element(el))) => {
                        // SASL success: the server's next bytes are a new stream.
                        if parse_start_tag(&el)
                            .ok()
                            .flatten()
                            .is_some_and(|t| t.local() == "success")
                        {
                            sp.restart();
                        }
                        In::Element(el)
                    }
                    Ok(Some(Event::End)) => {
                        let _ = in_tx
                            .send(In::End(Some("</stream:stream>".to_string())))
                            .await;
                        return;
                    }
                    Err(e) => {
                        let _ = in_tx.send(In::Error(format!("XML: {e}"))).await;
                        return;
                    }
                };
                if in_tx.send(ev).await.is_err() {
                    return;
                }
            }
        }
    });
    Stream {
        tx: out_tx,
        rx: in_rx,
    }
}

fn preview(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(120)]).into_owned()
}

/// The local name of an element's start tag.
pub fn local_name(el: &[u8]) -> Option<StartTag> {
    parse_start_tag(el).ok().flatten()
}

/// The text of the first `<name>…</name>` child (unescaped).
pub fn child_text(el: &[u8], name: &str) -> Option<String> {
    let s = std::str::from_utf8(el).ok()?;
    let open = format!("<{name}");
    let mut from = 0;
    loop {
        let i = from + s[from..].find(&open)?;
        let after = &s[i + open.len()..];
        if after.starts_with(['>', ' ', '/', '\t', '\r', '\n']) {
            let gt = after.find('>')?;
            if after[..gt].ends_with('/') {
                return Some(String::new());
            }
            let content = &after[gt + 1..];
            let end = content.find(&format!("</{name}>"))?;
            return unescape(&content[..end]).ok();
        }
        from = i + open.len();
    }
}

/// Who logs in.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// `None`: SASL ANONYMOUS.
    pub user: Option<(String, String)>,
    pub resource: String,
}

impl Stream {
    /// The next element, skipping stream opens; an end or error is an error.
    pub async fn next_element(&mut self, deadline: Instant) -> anyhow::Result<Vec<u8>> {
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Err(_) => bail!("timed out"),
                Ok(None) => bail!("transport ended"),
                Ok(Some(In::Open)) => continue,
                Ok(Some(In::Element(e))) => return Ok(e),
                Ok(Some(In::End(why))) => bail!("stream ended: {}", why.unwrap_or_default()),
                Ok(Some(In::Error(e))) => bail!("{e}"),
            }
        }
    }

    async fn send(&self, o: Out) -> anyhow::Result<()> {
        self.tx.send(o).await.map_err(|_| anyhow!("transport gone"))
    }

    async fn features(&mut self, deadline: Instant) -> anyhow::Result<Vec<u8>> {
        loop {
            let el = self.next_element(deadline).await?;
            match local_name(&el) {
                Some(t) if t.local() == "features" => return Ok(el),
                Some(t) if t.local() == "error" => {
                    bail!("stream error: {}", preview(&el))
                }
                _ => continue,
            }
        }
    }

    /// Waits for the reply to an `iq` with `id`.
    async fn iq_result(&mut self, id: &str, deadline: Instant) -> anyhow::Result<Vec<u8>> {
        loop {
            let el = self.next_element(deadline).await?;
            let Some(t) = local_name(&el) else { continue };
            if t.local() == "iq" && t.attr("id") == Some(id) {
                if t.attr("type") == Some("result") {
                    return Ok(el);
                }
                bail!("iq {id} failed: {}", preview(&el));
            }
            if t.local() == "error" {
                bail!("stream error: {}", preview(&el));
            }
        }
    }

    /// Opens the stream, authenticates, binds a resource; returns the full
    /// JID.
    pub async fn login(&mut self, who: &Credentials, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        self.send(Out::Open).await?;
        let f = self.features(deadline).await?;
        let text = String::from_utf8_lossy(&f).into_owned();
        let auth = match &who.user {
            Some((user, password)) => {
                if !text.contains(">PLAIN<") {
                    bail!("the server does not offer SASL PLAIN: {}", preview(&f));
                }
                let cred = base64::engine::general_purpose::STANDARD
                    .encode(format!("\0{user}\0{password}"));
                format!("<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{cred}</auth>")
            }
            None => {
                if !text.contains(">ANONYMOUS<") {
                    bail!("the server does not offer SASL ANONYMOUS: {}", preview(&f));
                }
                format!("<auth xmlns='{NS_SASL}' mechanism='ANONYMOUS'>=</auth>")
            }
        };
        self.send(Out::Stanza(auth)).await?;
        loop {
            let el = self.next_element(deadline).await?;
            match local_name(&el).as_ref().map(StartTag::local) {
                Some("success") => break,
                Some("failure") | Some("challenge") | Some("error") => {
                    bail!("authentication failed: {}", preview(&el))
                }
                _ => continue,
            }
        }
        self.send(Out::Restart).await?;
        let f = self.features(deadline).await?;
        let text = String::from_utf8_lossy(&f).into_owned();
        if !text.contains(NS_BIND) {
            bail!("no resource binding offered: {}", preview(&f));
        }
        self.send(Out::Stanza(format!(
            "<iq type='set' id='bind1' xmlns='jabber:client'><bind xmlns='{NS_BIND}'><resource>{}</resource></bind></iq>",
            escape(&who.resource)
        )))
        .await?;
        let r = self.iq_result("bind1", deadline).await?;
        let jid = child_text(&r, "jid").ok_or_else(|| anyhow!("no jid in {}", preview(&r)))?;
        // RFC 3921 session establishment, when still required.
        if let Some(i) = text.find(NS_SESSION) {
            let rest = &text[i..];
            let optional = rest
                .find("</session>")
                .is_some_and(|e| rest[..e].contains("<optional"));
            if !optional {
                self.send(Out::Stanza(format!(
                    "<iq type='set' id='sess1' xmlns='jabber:client'><session xmlns='{NS_SESSION}'/></iq>"
                )))
                .await?;
                self.iq_result("sess1", deadline).await?;
            }
        }
        Ok(jid)
    }

    /// Closes the stream and waits (bounded) for the server's end.
    pub async fn close(mut self, wait: Duration) {
        let _ = self.tx.send(Out::Close).await;
        let _ = tokio::time::timeout(wait, async {
            while let Some(ev) = self.rx.recv().await {
                if matches!(ev, In::End(_) | In::Error(_)) {
                    return;
                }
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_texts() {
        let el = b"<iq type='result' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>a@b/c&amp;d</jid></bind></iq>";
        assert_eq!(child_text(el, "jid").as_deref(), Some("a@b/c&d"));
        assert_eq!(
            child_text(b"<m><bodyx>1</bodyx><body>2</body></m>", "body").as_deref(),
            Some("2")
        );
        assert_eq!(child_text(b"<m><body/></m>", "body").as_deref(), Some(""));
        assert_eq!(child_text(b"<m/>", "body"), None);
    }
}
