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
//! Inputs: from the client `on_client_text` (RFC 7395 text), or typed
//! (`on_client_open`, `on_client_close`, `on_client_element` for an element
//! its caller has already checked, as BOSH does), `on_client_binary`; from
//! the server connection `on_server` ([`ServerEvent`]: connected,
//! unavailable, TLS ready, end of connection) and `on_server_bytes`;
//! `on_shutdown`, `on_close_timeout`. Each returns the outputs for the glue
//! to carry out, in order; what is meant for the client is a typed
//! [`ClientEvent`], which the WebSocket adapter renders as one RFC 7395
//! message each ([`ClientEvent::to_text`]) and the BOSH bridge reads as it
//! is. Once the stream has ended, [`Translator::end`] says how
//! ([`StreamEnd`]): the server's own stream error is kept apart from the
//! gateway's, so that BOSH can report each its own way. A connection to
//! the server that ends without `</stream:stream>` (reset, killed server)
//! is `remote-connection-failed`.

mod element;
mod events;
mod ns;
mod server;
#[cfg(test)]
mod single_parse_tests;
#[cfg(test)]
mod tests;

pub use element::qualify;
pub use events::{
    close_element, stream_error, ClientEvent, ClientOpen, ServerEvent, StreamError, StreamOpen,
};
pub use events::{ServerTls, Unavailable};
pub use ns::*;

use crate::side::Side;
use crate::xml::splitter::{Splitter, NS_STREAMS};
use crate::xml::tag::ParsedElement;
use crate::xml::tag::{escape, StartTag};
use crate::xml::validate::check_element;
use crate::xml::{Limits, XmlError};
use element::element_ns;

/// What the glue must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Tell the client (one RFC 7395 message each over WebSocket).
    ToClient(ClientEvent),
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
    Log(Side, &'static str, String),
}

/// How the stream ended, for a glue that reports the end in its own terms
/// (BOSH: XEP-0206 §7 terminal conditions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// Without an error: `</stream:stream>` from the server (its answer to
    /// the client's `<close/>` or its own end), or the client went away.
    Closed,
    /// The XMPP server's own `<stream:error/>`, namespace-complete, exactly
    /// as relayed to the client.
    ServerError(String),
    /// A stream error of the gateway's own (the server could not be
    /// reached or was lost, bad input, shutdown, …), as sent to the client.
    GatewayError {
        /// The RFC 6120 condition (`remote-connection-failed`, …).
        condition: &'static str,
        /// The `<stream:error/>` element.
        element: String,
    },
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
    /// The connection to the server is gone: nothing more is written to it.
    server_gone: bool,
    /// Set when the stream ends.
    end: Option<StreamEnd>,
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
            server_gone: false,
            end: None,
        }
    }

    /// How the stream ended (`None` while it has not).
    pub fn end(&self) -> Option<&StreamEnd> {
        self.end.as_ref()
    }

    /// Ends the translator without a stream error.
    fn close(&mut self) {
        self.phase = Phase::Closed;
        self.end.get_or_insert(StreamEnd::Closed);
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

    /// The `<open/>` for the client: from the server's stream header, or
    /// (`None`) ahead of a stream error when the server never answered.
    fn stream_open(&self, server: Option<&StartTag>) -> StreamOpen {
        StreamOpen {
            from: server
                .and_then(|h| h.attr("from"))
                .unwrap_or(&self.domain)
                .to_string(),
            id: server.and_then(|h| h.attr("id")).map(str::to_string),
            lang: server
                .and_then(|h| h.attr("xml:lang"))
                .map(str::to_string)
                .or_else(|| self.lang.clone()),
            negotiated: server.is_some(),
        }
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
        text: Option<&'static str>,
        code: u16,
        out: &mut Vec<Output>,
    ) {
        if self.phase == Phase::Closed {
            return;
        }
        if !self.client_opened {
            out.push(Output::ToClient(ClientEvent::Open(Box::new(
                self.stream_open(None),
            ))));
            self.client_opened = true;
        }
        let element = stream_error(condition, text);
        out.push(Output::ToClient(ClientEvent::Error(StreamError::Gateway {
            condition,
            text,
        })));
        out.push(Output::ToClient(ClientEvent::Close));
        out.push(Output::CloseClient(code));
        if !matches!(self.phase, Phase::AwaitOpen | Phase::Connecting) && !self.server_gone {
            out.push(Output::ToServer(b"</stream:stream>".to_vec()));
        }
        out.push(Output::CloseServer);
        self.phase = Phase::Closed;
        self.end = Some(StreamEnd::GatewayError { condition, element });
    }

    /// A text message from the client: one RFC 7395 element, checked
    /// against the limits, then handled as [`Translator::on_client_open`],
    /// [`Translator::on_client_close`] or a stanza.
    pub fn on_client_text(&mut self, msg: &str) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase == Phase::Closed {
            return out;
        }
        let checked = match check_element(msg, &self.limits) {
            Ok(c) => c,
            Err(e) => {
                out.push(Output::Log(Side::Client, e.condition(), e.to_string()));
                self.fail(e.condition(), None, 1000, &mut out);
                return out;
            }
        };
        let el = msg.trim().as_bytes().to_vec();
        self.client_element(el, &checked.ns, &checked.tag, &mut out);
        out
    }

    /// The client opens (or, after SASL success, restarts) its stream.
    pub fn on_client_open(&mut self, open: &ClientOpen) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase != Phase::Closed {
            self.client_open(open, &mut out);
        }
        out
    }

    /// The client closes its stream.
    pub fn on_client_close(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase != Phase::Closed {
            self.client_close(&mut out);
        }
        out
    }

    /// One element from the client, already checked as XML (restricted,
    /// namespace-complete, no deeper than the limit: a BOSH payload from
    /// `bosh::parse_request`) and carrying the start tag the body parser
    /// parsed: it is not parsed again. Its size and its start tag
    /// (namespace, attribute count, which grows when its body's
    /// declarations are copied onto it) are checked against the limits,
    /// and it is handled as [`Translator::on_client_text`] would handle it
    /// (framing elements included).
    pub fn on_client_element(&mut self, el: ParsedElement) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase == Phase::Closed {
            return out;
        }
        let ParsedElement { bytes: el, tag } = el;
        let over = if el.len() > self.limits.max_bytes {
            Some(XmlError::Limit(
                "message larger than the maximum stanza size",
            ))
        } else if tag.attrs.len() > self.limits.max_attributes {
            Some(XmlError::Limit("too many attributes on one element"))
        } else {
            None
        };
        if let Some(e) = over {
            out.push(Output::Log(Side::Client, e.condition(), e.to_string()));
            self.fail(e.condition(), None, 1000, &mut out);
            return out;
        }
        let ns = element_ns(&tag, &[]).unwrap_or_default();
        self.client_element(el, &ns, &tag, &mut out);
        out
    }

    /// A checked element: RFC 7395 framing (`<open/>`, `<close/>`) or a
    /// stanza.
    fn client_element(&mut self, el: Vec<u8>, ns: &str, tag: &StartTag, out: &mut Vec<Output>) {
        if ns != NS_FRAMING {
            return self.client_stanza(el, ns, tag, out);
        }
        match tag.local() {
            "open" => self.client_open(
                &ClientOpen {
                    to: tag.attr("to"),
                    version: tag.attr("version"),
                    lang: tag.attr("xml:lang"),
                    from: tag.attr("from"),
                },
                out,
            ),
            "close" => self.client_close(out),
            _ => self.fail("unsupported-stanza-type", None, 1000, out),
        }
    }

    fn client_close(&mut self, out: &mut Vec<Output>) {
        if matches!(self.phase, Phase::AwaitOpen | Phase::Connecting) {
            out.push(Output::ToClient(ClientEvent::Close));
            out.push(Output::CloseClient(1000));
            out.push(Output::CloseServer);
            self.close();
        } else {
            out.push(Output::ToServer(b"</stream:stream>".to_vec()));
            self.phase = Phase::ClientClosing;
        }
    }

    fn client_stanza(&mut self, el: Vec<u8>, ns: &str, tag: &StartTag, out: &mut Vec<Output>) {
        match self.phase {
            Phase::Open => {}
            Phase::ClientClosing => return,
            _ => {
                // Stanzas before the stream is open (or before the restart).
                out.push(Output::Log(
                    Side::Client,
                    "not-authorized",
                    "element before the stream was open".into(),
                ));
                self.fail("not-authorized", None, 1000, out);
                return;
            }
        }
        if ns == NS_TLS || ns == NS_COMPRESS {
            // RFC 7395 §3.9: no STARTTLS (or compression) over WebSocket.
            self.fail(
                "policy-violation",
                Some("TLS and compression are provided by the WebSocket layer"),
                1000,
                out,
            );
            return;
        }
        if tag.prefix() == Some("stream") || tag.local() == "error" && ns == NS_STREAMS {
            // A client stream error: pass it on and close both sides.
            out.push(Output::ToServer(el));
            out.push(Output::ToServer(b"</stream:stream>".to_vec()));
            out.push(Output::ToClient(ClientEvent::Close));
            out.push(Output::CloseClient(1000));
            out.push(Output::CloseServer);
            self.close();
            return;
        }
        out.push(Output::ToServer(el));
    }

    fn client_open(&mut self, open: &ClientOpen, out: &mut Vec<Output>) {
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
        if open.version != Some("1.0") {
            if self.phase == Phase::AwaitOpen {
                self.domain = open.to.unwrap_or_default().to_ascii_lowercase();
            }
            self.fail("unsupported-version", None, 1000, out);
            return;
        }
        let to = open.to.map(str::to_ascii_lowercase);
        self.lang = open.lang.map(str::to_string);
        self.from = open.from.map(str::to_string);
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
            Side::Client,
            "binary-message",
            "binary WebSocket message".into(),
        ));
        out.push(Output::CloseClient(1003));
        if !matches!(self.phase, Phase::AwaitOpen | Phase::Connecting) {
            out.push(Output::ToServer(b"</stream:stream>".to_vec()));
        }
        out.push(Output::CloseServer);
        self.close();
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
        out.push(Output::Log(Side::Backend, condition, detail.to_string()));
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

    /// What became of a server-side step, or what the connection did:
    /// [`Translator::on_server_connected`], [`Translator::on_server_unavailable`],
    /// [`Translator::on_tls_ready`] or [`Translator::on_server_eof`].
    pub fn on_server(&mut self, ev: ServerEvent) -> Vec<Output> {
        match ev {
            ServerEvent::Connected(tls) => {
                self.set_server_tls(tls);
                self.on_server_connected()
            }
            ServerEvent::Unavailable(why, detail) => self.on_server_unavailable(why, &detail),
            ServerEvent::TlsReady => self.on_tls_ready(),
            ServerEvent::Eof => self.on_server_eof(),
        }
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

    /// The connection to the server ended: closed or reset by the server,
    /// or a read or write failed. A server that ends its stream properly
    /// sends `</stream:stream>` (or a stream error) first, which has already
    /// closed the translator; anything else is a lost connection, told to
    /// the client as `remote-connection-failed` (RFC 6120 §4.9.3.15), except
    /// after the client's own `<close/>`, which this ends as asked.
    pub fn on_server_eof(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        self.server_gone = true;
        match self.phase {
            Phase::Closed => {}
            Phase::ClientClosing => {
                out.push(Output::ToClient(ClientEvent::Close));
                out.push(Output::CloseClient(1000));
                out.push(Output::CloseServer);
                self.close();
            }
            phase => {
                let detail = if matches!(phase, Phase::Open | Phase::AwaitRestartOpen) {
                    "the connection to the XMPP server was lost without the end of its stream"
                } else {
                    "the server closed the connection during negotiation"
                };
                out.push(Output::Log(
                    Side::Backend,
                    "remote-connection-failed",
                    detail.into(),
                ));
                self.fail(
                    "remote-connection-failed",
                    Some("the connection to the XMPP server was lost"),
                    1000,
                    &mut out,
                );
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

    /// The gateway is draining and the session may live on (XEP-0198): an
    /// open stream is cut, close 1001 to the client without `<close/>` and
    /// the server connection closed without `</stream:stream>`, so that
    /// both ends see a lost connection (which a server keeps for
    /// resumption) rather than the end of the session. A stream not yet
    /// open ends as with [`Translator::on_shutdown`].
    pub fn on_drain_cut(&mut self) -> Vec<Output> {
        if self.phase != Phase::Open || self.server_gone {
            return self.on_shutdown();
        }
        self.phase = Phase::Closed;
        self.end = Some(StreamEnd::GatewayError {
            condition: "system-shutdown",
            element: stream_error("system-shutdown", None),
        });
        vec![Output::CloseClient(1001), Output::CloseServer]
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
        self.close();
        out
    }

    /// A client message over the route's `max_message_size` (RFC 7395
    /// §3.6): `policy-violation`, `<close/>`, then close 1009 (RFC 6455
    /// §7.4.1). Only the stream error is sent: the glue counts the error.
    pub fn on_client_too_big(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        self.fail("policy-violation", None, 1009, &mut out);
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
        self.close();
        out
    }

    /// The server did not answer the client's `<close/>` in time.
    pub fn on_close_timeout(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase == Phase::ClientClosing {
            out.push(Output::ToClient(ClientEvent::Close));
            out.push(Output::CloseClient(1000));
            out.push(Output::CloseServer);
            self.close();
        }
        out
    }
}
