//! The translator's typed seam: what it tells its client ([`ClientEvent`])
//! and what the glue reports back from the server connection
//! ([`ServerEvent`]). The WebSocket adapter renders each client event as
//! one RFC 7395 message ([`ClientEvent::to_text`]); the BOSH bridge
//! (`crate::bosh::bridge`) reads the same events without parsing any text.

use super::ns::{NS_FRAMING, NS_STREAM_ERRORS};
use crate::xml::splitter::NS_STREAMS;
use crate::xml::tag::escape;

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

/// The stream the client is told about (RFC 7395 `<open/>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOpen {
    /// The server's `from`, or the domain asked for.
    pub from: String,
    /// The server's stream `id`; `None` when the server sent none or
    /// never answered.
    pub id: Option<String>,
    /// The server's `xml:lang`, or the client's.
    pub lang: Option<String>,
    /// True when the server opened the stream; false when the `<open/>`
    /// only precedes a stream error (RFC 6120 §4.9.1.2), the stream never
    /// having been negotiated.
    pub negotiated: bool,
}

/// A stream error for the client (RFC 6120 §4.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamError {
    /// The gateway's own: the RFC 6120 condition and an optional text.
    Gateway {
        /// `remote-connection-failed`, `policy-violation`, …
        condition: &'static str,
        /// The `<text/>`, when there is one.
        text: Option<&'static str>,
    },
    /// The XMPP server's `<stream:error/>`, namespace-complete, as relayed.
    Server(String),
}

/// One thing for the client, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The stream is open (first time or after a restart). Boxed: it is
    /// rare, and every output has room for the largest event.
    Open(Box<StreamOpen>),
    /// A top-level element from the server, namespace-complete: a stanza,
    /// the (filtered) stream features, a SASL element.
    Element(String),
    /// A stream error; `Close` follows.
    Error(StreamError),
    /// The stream ends (RFC 7395 `<close/>`).
    Close,
}

/// The client opens (or restarts) its stream: the attributes of an RFC
/// 7395 `<open/>`, or of a BOSH session creation request (XEP-0206).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientOpen<'a> {
    /// The domain asked for.
    pub to: Option<&'a str>,
    /// The XMPP version (only `1.0` is accepted).
    pub version: Option<&'a str>,
    /// `xml:lang`.
    pub lang: Option<&'a str>,
    /// The client's identity, for the server's stream header.
    pub from: Option<&'a str>,
}

/// What became of a server-side step the translator asked for
/// (`Output::Connect`, `Output::StartTls`) or what the connection did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// Connected (TLS done already when `tls` says so).
    Connected(ServerTls),
    /// The server cannot be used, with a detail for the log.
    Unavailable(Unavailable, String),
    /// The STARTTLS handshake finished.
    TlsReady,
    /// The connection ended (closed, reset, or a read or write failed).
    Eof,
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

impl StreamError {
    /// The `<stream:error/>` element.
    pub fn to_element(&self) -> String {
        match self {
            StreamError::Gateway { condition, text } => stream_error(condition, *text),
            StreamError::Server(el) => el.clone(),
        }
    }
}

impl StreamOpen {
    /// The RFC 7395 `<open/>` element.
    pub fn to_element(&self) -> String {
        let mut s = format!("<open xmlns='{NS_FRAMING}' from='{}'", escape(&self.from));
        if let Some(id) = &self.id {
            s.push_str(&format!(" id='{}'", escape(id)));
        }
        s.push_str(" version='1.0'");
        if let Some(l) = &self.lang {
            s.push_str(&format!(" xml:lang='{}'", escape(l)));
        }
        s.push_str("/>");
        s
    }
}

impl ClientEvent {
    /// The RFC 7395 text message for the event.
    pub fn to_text(&self) -> String {
        match self {
            ClientEvent::Open(o) => o.to_element(),
            ClientEvent::Element(el) => el.clone(),
            ClientEvent::Error(e) => e.to_element(),
            ClientEvent::Close => close_element(),
        }
    }

    /// The text message, without a copy for elements.
    pub fn into_text(self) -> String {
        match self {
            ClientEvent::Element(el) => el,
            ClientEvent::Error(StreamError::Server(el)) => el,
            e => e.to_text(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_render_as_rfc7395_messages() {
        let open = ClientEvent::Open(Box::new(StreamOpen {
            from: "a&b".into(),
            id: Some("s'1".into()),
            lang: Some("en".into()),
            negotiated: true,
        }));
        assert_eq!(
            open.to_text(),
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='a&amp;b' id='s&apos;1' version='1.0' xml:lang='en'/>"
        );
        let bare = ClientEvent::Open(Box::new(StreamOpen {
            from: "d".into(),
            id: None,
            lang: None,
            negotiated: false,
        }));
        assert_eq!(
            bare.into_text(),
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='d' version='1.0'/>"
        );
        assert_eq!(
            ClientEvent::Close.to_text(),
            "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"
        );
        let e = ClientEvent::Error(StreamError::Gateway {
            condition: "host-unknown",
            text: Some("<no>"),
        });
        assert_eq!(
            e.to_text(),
            "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>&lt;no&gt;</text></stream:error>"
        );
        let server = "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>";
        assert_eq!(
            ClientEvent::Error(StreamError::Server(server.into())).into_text(),
            server
        );
        assert_eq!(ClientEvent::Element("<iq/>".into()).into_text(), "<iq/>");
    }
}
