//! XMPP over WebSocket (RFC 7395) ⇄ XMPP over TCP (RFC 6120), as a pure
//! state machine. The gateway plays the server toward the WebSocket client
//! and the client toward the XMPP server.
//!
//! | WebSocket client (RFC 7395) | XMPP server (RFC 6120) |
//! |---|---|
//! | `<open to='d' version='1.0'/>` | `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream=… to='d' version='1.0'>` |
//! | `<open from='d' id='…' version='1.0'/>` | the server's stream header |
//! | one element per message, namespaces declared on it | top-level elements, namespaces inherited from the header: `xmlns` and the header's prefixes (`xmlns:stream`) are added to the top-level tag when missing (§3.3.3) |
//! | `<close/>` | `</stream:stream>` |
//! | `<stream:error>` then `<close/>` then WebSocket close | `<stream:error>` |
//!
//! TLS to the server is the gateway's job: with `starttls` the machine
//! negotiates STARTTLS (RFC 6120 §5) before the client's `<open/>` is
//! answered, restarts the stream, and never shows `<starttls/>` (or stream
//! compression) to the client (RFC 7395 §3.9 forbids both over WebSocket).
//! SASL success from the server restarts the server-side parser at that
//! exact element boundary, so no byte of the new stream is parsed with the
//! old stream's state; the client's next `<open/>` becomes the new stream
//! header (§3.7). Whitespace keepalives from the server are dropped (§3.8
//! uses WebSocket pings instead).
//!
//! Inputs: `on_client_text`, `on_client_binary`, `on_server_connected`,
//! `on_server_unavailable`, `on_tls_ready`, `on_server_bytes`,
//! `on_server_eof`, `on_shutdown`, `on_close_timeout`. Each returns the
//! outputs for the glue to carry out, in order.

#[cfg(test)]
mod tests;

use crate::xml::splitter::{Event, Splitter, NS_STREAMS};
use crate::xml::tag::{escape, parse_start_tag, StartTag};
use crate::xml::validate::check_element;
use crate::xml::{Limits, XmlError};

/// RFC 7395 framing namespace.
pub const NS_FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
/// Client stanza namespace.
pub const NS_CLIENT: &str = "jabber:client";
/// Stream error conditions namespace.
pub const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// SASL namespace.
pub const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// STARTTLS namespace.
pub const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// Stream compression feature namespace (XEP-0138).
pub const NS_COMPRESS_FEATURE: &str = "http://jabber.org/features/compress";
/// Stream compression protocol namespace (XEP-0138).
pub const NS_COMPRESS: &str = "http://jabber.org/protocol/compress";

/// How the gateway reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerTls {
    /// STARTTLS on the plain connection, negotiated by the gateway.
    StartTls,
    /// TLS from the first byte (XEP-0368), or no TLS at all.
    AlreadySecureOrNone,
}

/// Why the server could not be used (rendered as a stream error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// The `to` domain is not served by this gateway.
    HostUnknown,
    /// Resolving, connecting or TLS to the server failed.
    RemoteConnectionFailed,
}

/// What the glue must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send one text message to the client.
    ToClient(String),
    /// Close the client's WebSocket with this code (after the messages above).
    CloseClient(u16),
    /// Connect to the server for `domain` (lower-cased), then call
    /// `on_server_connected` or `on_server_unavailable`.
    Connect {
        /// The `to` of the client's `<open/>`.
        domain: String,
    },
    /// Write bytes to the server.
    ToServer(Vec<u8>),
    /// Upgrade the server connection to TLS now, then call `on_tls_ready`
    /// (or `on_server_unavailable` on failure).
    StartTls,
    /// Close the connection to the server (after the bytes above).
    CloseServer,
    /// A problem worth a log line: (side, condition, detail).
    Log(&'static str, &'static str, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the client's first `<open/>`.
    AwaitOpen,
    /// Waiting for the glue to connect.
    Connecting,
    /// Sent our stream header; waiting for the server's.
    ServerHeader { tls_done: bool },
    /// Waiting for the server's features.
    Features { tls_done: bool },
    /// Sent `<starttls/>`; waiting for `<proceed/>`.
    Proceed,
    /// Waiting for the glue to finish the TLS handshake.
    TlsHandshake,
    /// Stream up: relaying.
    Open,
    /// The server restarted after SASL success; waiting for the client's `<open/>`.
    AwaitRestartOpen,
    /// The client sent `<close/>`; waiting for the server's `</stream:stream>`.
    ClientClosing,
    /// Done; everything else is ignored.
    Closed,
}

/// The translator for one WebSocket connection.
#[derive(Debug)]
pub struct Translator {
    phase: Phase,
    limits: Limits,
    splitter: Splitter,
    tls: ServerTls,
    domain: String,
    lang: Option<String>,
    from: Option<String>,
    /// The client has been sent `<open/>` for the current stream.
    client_opened: bool,
    /// Namespace declarations of the server's current stream header.
    server_decls: Vec<(String, String)>,
}

/// The namespace of a top-level element given the stream's declarations.
fn element_ns(tag: &StartTag, stream: &[(String, String)]) -> Option<String> {
    let key = match tag.prefix() {
        Some(p) => format!("xmlns:{p}"),
        None => "xmlns".to_string(),
    };
    if let Some(v) = tag.attr(&key) {
        return Some(v.to_string());
    }
    let p = tag.prefix().unwrap_or("");
    stream
        .iter()
        .find(|(sp, _)| sp == p)
        .map(|(_, u)| u.clone())
}

/// Adds the stream's namespace declarations a top-level element relies on
/// but does not carry (RFC 7395 §3.3.3).
pub fn qualify(el: &[u8], tag: &StartTag, stream: &[(String, String)]) -> Vec<u8> {
    let mut add = String::new();
    for (prefix, uri) in stream {
        let attr = if prefix.is_empty() {
            "xmlns".to_string()
        } else {
            format!("xmlns:{prefix}")
        };
        if tag.attr(&attr).is_some() {
            continue;
        }
        let needed = if prefix.is_empty() {
            true
        } else {
            let needle = format!("<{prefix}:");
            let attr_needle = format!(" {prefix}:");
            contains(el, needle.as_bytes()) || contains(&el[..tag.len], attr_needle.as_bytes())
        };
        if needed {
            add.push_str(&format!(" {attr}='{}'", escape(uri)));
        }
    }
    if add.is_empty() {
        return el.to_vec();
    }
    let name_end = 1 + tag.name.len();
    let mut out = Vec::with_capacity(el.len() + add.len());
    out.extend_from_slice(&el[..name_end]);
    out.extend_from_slice(add.as_bytes());
    out.extend_from_slice(&el[name_end..]);
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Byte ranges of the direct children of an element (given as whole bytes).
fn child_ranges(el: &[u8], tag: &StartTag) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if tag.self_closing {
        return out;
    }
    let mut i = tag.len;
    let mut depth = 0usize;
    let mut start = 0;
    while i < el.len() {
        if el[i] != b'<' {
            i += 1;
            continue;
        }
        if el[i..].starts_with(b"<![CDATA[") {
            match el[i..].windows(3).position(|w| w == b"]]>") {
                Some(p) => i += p + 3,
                None => break,
            }
            continue;
        }
        if el[i..].starts_with(b"</") {
            let Some(p) = el[i..].iter().position(|b| *b == b'>') else {
                break;
            };
            i += p + 1;
            if depth == 0 {
                break; // the element's own end tag
            }
            depth -= 1;
            if depth == 0 {
                out.push((start, i));
            }
            continue;
        }
        let Ok(Some(t)) = parse_start_tag(&el[i..]) else {
            break;
        };
        if depth == 0 {
            start = i;
        }
        i += t.len;
        if t.self_closing {
            if depth == 0 {
                out.push((start, i));
            }
        } else {
            depth += 1;
        }
    }
    out
}

/// Removes the direct children whose namespace is one of `namespaces`.
fn remove_children(el: &[u8], tag: &StartTag, namespaces: &[&str]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(el.len());
    let mut last = 0;
    let mut removed = false;
    for (s, e) in child_ranges(el, tag) {
        let Ok(Some(ct)) = parse_start_tag(&el[s..e]) else {
            continue;
        };
        let ns = element_ns(&ct, &[]).unwrap_or_default();
        if namespaces.contains(&ns.as_str()) {
            out.extend_from_slice(&el[last..s]);
            last = e;
            removed = true;
        }
    }
    out.extend_from_slice(&el[last..]);
    (out, removed)
}

fn has_child(el: &[u8], tag: &StartTag, ns: &str, local: &str) -> bool {
    child_ranges(el, tag).into_iter().any(|(s, e)| {
        matches!(parse_start_tag(&el[s..e]), Ok(Some(ct)) if ct.local() == local && element_ns(&ct, &[]).as_deref() == Some(ns))
    })
}

/// Renders a stream error for the client (RFC 6120 §4.9, RFC 7395 §3.6).
pub fn stream_error(condition: &str, text: Option<&str>) -> String {
    let text = text
        .map(|t| format!("<text xmlns='{NS_STREAM_ERRORS}'>{}</text>", escape(t)))
        .unwrap_or_default();
    format!("<stream:error xmlns:stream='{NS_STREAMS}'><{condition} xmlns='{NS_STREAM_ERRORS}'/>{text}</stream:error>")
}

/// The RFC 7395 `<close/>`.
pub fn close_element() -> String {
    format!("<close xmlns='{NS_FRAMING}'/>")
}

impl Translator {
    /// A translator with the given element limits.
    pub fn new(limits: Limits, tls: ServerTls) -> Self {
        Translator {
            phase: Phase::AwaitOpen,
            limits,
            splitter: Splitter::new(limits.max_bytes),
            tls,
            domain: String::new(),
            lang: None,
            from: None,
            client_opened: false,
            server_decls: Vec::new(),
        }
    }

    /// Sets how the server is reached (known once the domain is chosen).
    pub fn set_server_tls(&mut self, tls: ServerTls) {
        self.tls = tls;
    }

    /// The domain the client asked for (empty before `<open/>`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// True once the translator has finished (all further input is ignored).
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// True while the stream relays stanzas (after negotiation).
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::AwaitRestartOpen)
    }

    fn client_open_element(&self, server: Option<&StartTag>) -> String {
        let mut s = format!("<open xmlns='{NS_FRAMING}'");
        let from = server
            .and_then(|h| h.attr("from"))
            .unwrap_or(&self.domain)
            .to_string();
        s.push_str(&format!(" from='{}'", escape(&from)));
        if let Some(id) = server.and_then(|h| h.attr("id")) {
            s.push_str(&format!(" id='{}'", escape(id)));
        }
        s.push_str(" version='1.0'");
        let lang = server
            .and_then(|h| h.attr("xml:lang"))
            .map(str::to_string)
            .or_else(|| self.lang.clone());
        if let Some(l) = lang {
            s.push_str(&format!(" xml:lang='{}'", escape(&l)));
        }
        s.push_str("/>");
        s
    }

    fn server_header(&self) -> Vec<u8> {
        let mut s = format!(
            "<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAMS}' to='{}' version='1.0'",
            escape(&self.domain)
        );
        if let Some(f) = &self.from {
            s.push_str(&format!(" from='{}'", escape(f)));
        }
        if let Some(l) = &self.lang {
            s.push_str(&format!(" xml:lang='{}'", escape(l)));
        }
        s.push('>');
        s.into_bytes()
    }

    /// Fails the client's stream with `condition`: `<open/>` first if the
    /// client has not had one (RFC 6120 §4.9.1.2), the error, `<close/>`,
    /// then the WebSocket close. The server side is closed too.
    fn fail(
        &mut self,
        condition: &'static str,
        text: Option<&str>,
        code: u16,
        out: &mut Vec<Output>,
    ) {
        if self.phase == Phase::Closed {
            return;
        }
        if !self.client_opened {
            out.push(Output::ToClient(self.client_open_element(None)));
            self.client_opened = true;
        }
        out.push(Output::ToClient(stream_error(condition, text)));
        out.push(Output::ToClient(close_element()));
        out.push(Output::CloseClient(code));
        if !matches!(self.phase, Phase::AwaitOpen | Phase::Connecting) {
            out.push(Output::ToServer(b"</stream:stream>".to_vec()));
        }
        out.push(Output::CloseServer);
        self.phase = Phase::Closed;
    }

    /// A text message from the client.
    pub fn on_client_text(&mut self, msg: &str) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase == Phase::Closed {
            return out;
        }
        let checked = match check_element(msg, &self.limits) {
            Ok(c) => c,
            Err(e) => {
                out.push(Output::Log("client", e.condition(), e.to_string()));
                self.fail(e.condition(), None, 1000, &mut out);
                return out;
            }
        };
        let tag = &checked.tag;
        if checked.ns == NS_FRAMING {
            match tag.local() {
                "open" => self.client_open(tag, &mut out),
                "close" => {
                    if matches!(self.phase, Phase::AwaitOpen | Phase::Connecting) {
                        out.push(Output::ToClient(close_element()));
                        out.push(Output::CloseClient(1000));
                        out.push(Output::CloseServer);
                        self.phase = Phase::Closed;
                    } else {
                        out.push(Output::ToServer(b"</stream:stream>".to_vec()));
                        self.phase = Phase::ClientClosing;
                    }
                }
                _ => self.fail("unsupported-stanza-type", None, 1000, &mut out),
            }
            return out;
        }
        match self.phase {
            Phase::Open => {}
            Phase::ClientClosing => return out,
            _ => {
                // Stanzas before the stream is open (or before the restart).
                out.push(Output::Log(
                    "client",
                    "not-authorized",
                    "element before the stream was open".into(),
                ));
                self.fail("not-authorized", None, 1000, &mut out);
                return out;
            }
        }
        if checked.ns == NS_TLS || checked.ns == NS_COMPRESS {
            // RFC 7395 §3.9: no STARTTLS (or compression) over WebSocket.
            self.fail(
                "policy-violation",
                Some("TLS and compression are provided by the WebSocket layer"),
                1000,
                &mut out,
            );
            return out;
        }
        if tag.prefix() == Some("stream") || tag.local() == "error" && checked.ns == NS_STREAMS {
            // A client stream error: pass it on and close both sides.
            out.push(Output::ToServer(msg.trim().as_bytes().to_vec()));
            out.push(Output::ToServer(b"</stream:stream>".to_vec()));
            out.push(Output::ToClient(close_element()));
            out.push(Output::CloseClient(1000));
            out.push(Output::CloseServer);
            self.phase = Phase::Closed;
            return out;
        }
        out.push(Output::ToServer(msg.trim().as_bytes().to_vec()));
        out
    }

    fn client_open(&mut self, tag: &StartTag, out: &mut Vec<Output>) {
        match self.phase {
            Phase::AwaitOpen | Phase::AwaitRestartOpen => {}
            _ => {
                self.fail(
                    "bad-format",
                    Some("<open/> is only allowed at the start of a stream"),
                    1000,
                    out,
                );
                return;
            }
        }
        if tag.attr("version") != Some("1.0") {
            let initial = self.phase == Phase::AwaitOpen;
            if initial {
                self.domain = tag.attr("to").unwrap_or_default().to_ascii_lowercase();
            }
            self.fail("unsupported-version", None, 1000, out);
            return;
        }
        let to = tag.attr("to").map(str::to_ascii_lowercase);
        self.lang = tag.attr("xml:lang").map(str::to_string);
        self.from = tag.attr("from").map(str::to_string);
        if self.phase == Phase::AwaitOpen {
            let Some(to) = to.filter(|t| !t.is_empty()) else {
                self.fail(
                    "host-unknown",
                    Some("the <open/> element needs a `to` domain"),
                    1000,
                    out,
                );
                return;
            };
            self.domain = to;
            self.phase = Phase::Connecting;
            out.push(Output::Connect {
                domain: self.domain.clone(),
            });
        } else {
            if to.is_some_and(|t| t != self.domain) {
                self.fail(
                    "host-unknown",
                    Some("a restarted stream must keep its domain"),
                    1000,
                    out,
                );
                return;
            }
            self.client_opened = false;
            self.phase = Phase::ServerHeader { tls_done: true };
            out.push(Output::ToServer(self.server_header()));
            self.pump(out);
        }
    }

    /// A binary message from the client: RFC 7395 §3.2 allows text only.
    pub fn on_client_binary(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase == Phase::Closed {
            return out;
        }
        out.push(Output::Log(
            "client",
            "binary-message",
            "binary WebSocket message".into(),
        ));
        out.push(Output::CloseClient(1003));
        if !matches!(self.phase, Phase::AwaitOpen | Phase::Connecting) {
            out.push(Output::ToServer(b"</stream:stream>".to_vec()));
        }
        out.push(Output::CloseServer);
        self.phase = Phase::Closed;
        out
    }

    /// The glue connected to the server.
    pub fn on_server_connected(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase != Phase::Connecting {
            return out;
        }
        let tls_done = self.tls != ServerTls::StartTls;
        self.phase = Phase::ServerHeader { tls_done };
        out.push(Output::ToServer(self.server_header()));
        out
    }

    /// The server cannot be used. Ignored once closed: the stream ended
    /// for another reason, which was already logged and counted.
    pub fn on_server_unavailable(&mut self, why: Unavailable, detail: &str) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase == Phase::Closed {
            return out;
        }
        let condition = match why {
            Unavailable::HostUnknown => "host-unknown",
            Unavailable::RemoteConnectionFailed => "remote-connection-failed",
        };
        out.push(Output::Log("backend", condition, detail.to_string()));
        self.fail(condition, None, 1000, &mut out);
        out
    }

    /// TLS to the server is up: restart the stream (RFC 6120 §5.4.3.3).
    pub fn on_tls_ready(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase != Phase::TlsHandshake {
            return out;
        }
        self.splitter = Splitter::new(self.limits.max_bytes);
        self.phase = Phase::ServerHeader { tls_done: true };
        out.push(Output::ToServer(self.server_header()));
        out
    }

    /// Bytes from the server.
    pub fn on_server_bytes(&mut self, bytes: &[u8]) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase == Phase::Closed {
            return out;
        }
        self.splitter.feed(bytes);
        self.pump(&mut out);
        out
    }

    /// Parses buffered server bytes as far as the current phase allows.
    /// While waiting for the TLS handshake or for the client's restart
    /// `<open/>`, bytes stay buffered: they belong to the next stream.
    fn pump(&mut self, out: &mut Vec<Output>) {
        loop {
            if matches!(
                self.phase,
                Phase::Closed | Phase::TlsHandshake | Phase::AwaitRestartOpen
            ) {
                break;
            }
            let ev = match self.splitter.next_event() {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(e) => {
                    self.server_xml_error(e, out);
                    break;
                }
            };
            self.server_event(ev, out);
        }
    }

    fn server_xml_error(&mut self, e: XmlError, out: &mut Vec<Output>) {
        out.push(Output::Log("backend", e.condition(), e.to_string()));
        let condition = match e {
            XmlError::Limit(_) => "policy-violation",
            _ => "undefined-condition",
        };
        self.fail(
            condition,
            Some("the XMPP server sent data the gateway cannot relay"),
            1000,
            out,
        );
    }

    fn server_event(&mut self, ev: Event, out: &mut Vec<Output>) {
        match (self.phase, ev) {
            (Phase::ServerHeader { tls_done }, Event::Header(h)) => {
                if h.attr("version").is_none_or(|v| !v.starts_with("1.")) {
                    self.fail(
                        "unsupported-version",
                        Some("the XMPP server does not speak XMPP 1.0"),
                        1000,
                        out,
                    );
                    return;
                }
                self.server_decls = h.ns_decls();
                if tls_done {
                    out.push(Output::ToClient(self.client_open_element(Some(&h))));
                    self.client_opened = true;
                    self.phase = Phase::Features { tls_done };
                    // The features come next and go to the client after filtering.
                } else {
                    self.phase = Phase::Features { tls_done };
                }
            }
            (_, Event::Header(_)) => {
                self.fail(
                    "undefined-condition",
                    Some("unexpected stream header from the server"),
                    1000,
                    out,
                );
            }
            (Phase::Features { tls_done }, Event::Element(el)) => {
                let Ok(Some(tag)) = parse_start_tag(&el) else {
                    self.fail("undefined-condition", None, 1000, out);
                    return;
                };
                let ns = element_ns(&tag, &self.server_decls).unwrap_or_default();
                if ns == NS_STREAMS && tag.local() == "error" {
                    self.relay_stream_error(&el, &tag, out);
                    return;
                }
                if !(ns == NS_STREAMS && tag.local() == "features") {
                    self.fail(
                        "undefined-condition",
                        Some("the XMPP server did not send stream features"),
                        1000,
                        out,
                    );
                    return;
                }
                if !tls_done {
                    if !has_child(&el, &tag, NS_TLS, "starttls") {
                        out.push(Output::Log(
                            "backend",
                            "no-starttls",
                            "the server does not offer STARTTLS".into(),
                        ));
                        self.fail(
                            "remote-connection-failed",
                            Some("the XMPP server does not offer TLS"),
                            1000,
                            out,
                        );
                        return;
                    }
                    out.push(Output::ToServer(
                        format!("<starttls xmlns='{NS_TLS}'/>").into_bytes(),
                    ));
                    self.phase = Phase::Proceed;
                    return;
                }
                let (filtered, _) = remove_children(&el, &tag, &[NS_TLS, NS_COMPRESS_FEATURE]);
                let qualified = qualify(&filtered, &tag, &self.server_decls);
                out.push(Output::ToClient(
                    String::from_utf8_lossy(&qualified).into_owned(),
                ));
                self.phase = Phase::Open;
            }
            (Phase::Proceed, Event::Element(el)) => {
                let Ok(Some(tag)) = parse_start_tag(&el) else {
                    self.fail("undefined-condition", None, 1000, out);
                    return;
                };
                let ns = element_ns(&tag, &self.server_decls).unwrap_or_default();
                if ns == NS_TLS && tag.local() == "proceed" {
                    if self.splitter.buffered() > 0 {
                        // Bytes after <proceed/> before the TLS handshake: an
                        // injection attempt (CVE-2011-0411 style). Refuse.
                        out.push(Output::Log(
                            "backend",
                            "starttls-injection",
                            "plaintext after <proceed/>".into(),
                        ));
                        self.fail("remote-connection-failed", None, 1000, out);
                        return;
                    }
                    self.phase = Phase::TlsHandshake;
                    out.push(Output::StartTls);
                } else if ns == NS_STREAMS && tag.local() == "error" {
                    self.relay_stream_error(&el, &tag, out);
                } else {
                    out.push(Output::Log(
                        "backend",
                        "starttls-failure",
                        String::from_utf8_lossy(&el).into_owned(),
                    ));
                    self.fail(
                        "remote-connection-failed",
                        Some("the XMPP server refused STARTTLS"),
                        1000,
                        out,
                    );
                }
            }
            (Phase::Open | Phase::ClientClosing | Phase::AwaitRestartOpen, Event::Element(el)) => {
                let Ok(Some(tag)) = parse_start_tag(&el) else {
                    self.fail("undefined-condition", None, 1000, out);
                    return;
                };
                let ns = element_ns(&tag, &self.server_decls).unwrap_or_default();
                if ns == NS_STREAMS && tag.local() == "error" {
                    self.relay_stream_error(&el, &tag, out);
                    return;
                }
                let qualified = qualify(&el, &tag, &self.server_decls);
                out.push(Output::ToClient(
                    String::from_utf8_lossy(&qualified).into_owned(),
                ));
                if ns == NS_SASL && tag.local() == "success" {
                    // RFC 6120 §6.4.6: both sides restart; the server's next
                    // bytes are a new stream.
                    self.splitter.restart();
                    self.phase = Phase::AwaitRestartOpen;
                }
            }
            (_, Event::End) => {
                out.push(Output::ToClient(close_element()));
                out.push(Output::CloseClient(1000));
                if self.phase != Phase::ClientClosing {
                    out.push(Output::ToServer(b"</stream:stream>".to_vec()));
                }
                out.push(Output::CloseServer);
                self.phase = Phase::Closed;
            }
            (_, Event::Element(_)) => {
                self.fail(
                    "undefined-condition",
                    Some("unexpected data from the XMPP server"),
                    1000,
                    out,
                );
            }
        }
    }

    fn relay_stream_error(&mut self, el: &[u8], tag: &StartTag, out: &mut Vec<Output>) {
        if !self.client_opened {
            out.push(Output::ToClient(self.client_open_element(None)));
            self.client_opened = true;
        }
        let qualified = qualify(el, tag, &self.server_decls);
        let text = String::from_utf8_lossy(&qualified).into_owned();
        out.push(Output::Log("backend", "stream-error", text.clone()));
        out.push(Output::ToClient(text));
        out.push(Output::ToClient(close_element()));
        out.push(Output::CloseClient(1000));
        out.push(Output::ToServer(b"</stream:stream>".to_vec()));
        out.push(Output::CloseServer);
        self.phase = Phase::Closed;
    }

    /// The server closed the TCP connection.
    pub fn on_server_eof(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        match self.phase {
            Phase::Closed => {}
            Phase::ClientClosing | Phase::Open | Phase::AwaitRestartOpen => {
                out.push(Output::ToClient(close_element()));
                out.push(Output::CloseClient(1000));
                out.push(Output::CloseServer);
                self.phase = Phase::Closed;
            }
            _ => {
                out.push(Output::Log(
                    "backend",
                    "remote-connection-failed",
                    "the server closed the connection during negotiation".into(),
                ));
                self.fail("remote-connection-failed", None, 1000, &mut out);
            }
        }
        out
    }

    /// The gateway is shutting down (RFC 6120 `system-shutdown`, close 1001).
    pub fn on_shutdown(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        self.fail("system-shutdown", None, 1001, &mut out);
        out
    }

    /// No data either way for the route's idle timeout: RFC 6120
    /// `connection-timeout` stream error, then close both sides.
    pub fn on_idle(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        self.fail("connection-timeout", None, 1000, &mut out);
        out
    }

    /// True after the client's `<close/>`, until the server answers.
    pub fn is_closing(&self) -> bool {
        self.phase == Phase::ClientClosing
    }

    /// The client went quiet (no pong): close both sides.
    pub fn on_client_dead(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase == Phase::Closed {
            return out;
        }
        out.push(Output::CloseClient(1001));
        if !matches!(self.phase, Phase::AwaitOpen | Phase::Connecting) {
            out.push(Output::ToServer(b"</stream:stream>".to_vec()));
        }
        out.push(Output::CloseServer);
        self.phase = Phase::Closed;
        out
    }

    /// The client's connection ended (with or without a close frame).
    pub fn on_client_gone(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase == Phase::Closed {
            return out;
        }
        if !matches!(
            self.phase,
            Phase::AwaitOpen | Phase::Connecting | Phase::ClientClosing
        ) {
            out.push(Output::ToServer(b"</stream:stream>".to_vec()));
        }
        out.push(Output::CloseServer);
        self.phase = Phase::Closed;
        out
    }

    /// The server did not answer the client's `<close/>` in time.
    pub fn on_close_timeout(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase == Phase::ClientClosing {
            out.push(Output::ToClient(close_element()));
            out.push(Output::CloseClient(1000));
            out.push(Output::CloseServer);
            self.phase = Phase::Closed;
        }
        out
    }
}
