//! The namespaces, a parsed request and its route, and the errors.

use crate::xml::tag::ParsedElement;
use crate::xml::XmlError;

/// The BOSH namespace (XEP-0124).
pub const NS_HTTPBIND: &str = "http://jabber.org/protocol/httpbind";
/// The XMPP-over-BOSH attribute namespace (XEP-0206).
pub const NS_XBOSH: &str = "urn:xmpp:xbosh";
/// The namespace of client stanzas.
pub const NS_CLIENT: &str = "jabber:client";
/// The XMPP streams namespace (`stream:features`, `stream:error`).
pub const NS_STREAMS: &str = crate::xml::splitter::NS_STREAMS;
/// The largest `rid` (2^53 - 1, XEP-0124 §14.1).
pub const MAX_RID: u64 = (1 << 53) - 1;

/// The `type` attribute of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    /// `type='terminate'`: the client ends the session (§13).
    Terminate,
    /// `type='error'`: the client reports a binding error (§17.2 "the
    /// client MAY report binding errors"); treated as a normal request.
    Error,
}

/// A parsed request `<body/>`. Every XEP-0124 / XEP-0206 request attribute
/// has a field; absent attributes are `None` (`false` for `restart`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `sid`: absent exactly on the session creation request.
    pub sid: Option<String>,
    /// `rid`, 1 ..= 2^53-1 (required on every request).
    pub rid: u64,
    /// `ack`: on creation, the client will acknowledge responses (set to
    /// 1); later, the highest `rid` whose response (and all before it) the
    /// client has received.
    pub ack: Option<u64>,
    /// `to`: the target domain.
    pub to: Option<String>,
    /// `xml:lang`.
    pub lang: Option<String>,
    /// `ver`: the highest BOSH version the client supports (major, minor).
    pub ver: Option<(u32, u32)>,
    /// `wait` in seconds.
    pub wait: Option<u64>,
    /// `hold`.
    pub hold: Option<u32>,
    /// `content`: the Content-Type of every response of the session.
    pub content: Option<String>,
    /// `from`: the client's identity, forwarded to the server.
    pub from: Option<String>,
    /// `route`: `proto:host:port` (see [`Route`]).
    pub route: Option<String>,
    /// `secure` (removed in XEP-0124 1.8, still in XEP-0206 examples).
    pub secure: Option<bool>,
    /// XEP-0206 `xmpp:version` (major, minor).
    pub xmpp_version: Option<(u32, u32)>,
    /// XEP-0206 `xmpp:restart='true'`.
    pub restart: bool,
    /// `type`.
    pub type_: Option<BodyType>,
    /// `pause` in seconds.
    pub pause: Option<u64>,
    /// `key` (XEP-0124 §15), as sent.
    pub key: Option<String>,
    /// `newkey` (XEP-0124 §15), as sent.
    pub newkey: Option<String>,
    /// `stream` (XEP-0124 §16; multiple streams are not supported, see
    /// the session).
    pub stream: Option<String>,
    /// The payloads: each child element's bytes, made standalone
    /// (namespace-complete) as described in the module documentation,
    /// with its start tag as parsed here (and updated to match the bytes).
    pub payload: Vec<ParsedElement>,
}

impl Request {
    /// A request with this `rid` and nothing else (for building requests
    /// in code and tests).
    pub fn new(rid: u64) -> Request {
        Request {
            sid: None,
            rid,
            ack: None,
            to: None,
            lang: None,
            ver: None,
            wait: None,
            hold: None,
            content: None,
            from: None,
            route: None,
            secure: None,
            xmpp_version: None,
            restart: false,
            type_: None,
            pause: None,
            key: None,
            newkey: None,
            stream: None,
            payload: Vec::new(),
        }
    }

    /// `type='terminate'`.
    pub fn is_terminate(&self) -> bool {
        self.type_ == Some(BodyType::Terminate)
    }
}

/// A `route` attribute: `proto:host:port` (XEP-0124 §7.1; not a URI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The protocol (`xmpp`).
    pub proto: String,
    /// The host name or address (an IPv6 address without its brackets).
    pub host: String,
    /// The port.
    pub port: u16,
}

impl Route {
    /// Parses `proto:host:port`; `host` may be a bracketed IPv6 address.
    pub fn parse(s: &str) -> Option<Route> {
        let (proto, rest) = s.split_once(':')?;
        let (host, port) = rest.rsplit_once(':')?;
        let host = match host.strip_prefix('[') {
            Some(h) => h.strip_suffix(']')?,
            None if host.contains(':') => return None,
            None => host,
        };
        let proto_ok = !proto.is_empty()
            && proto
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'));
        let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
        if !port_digits_only(s) || !proto_ok || !host_ok {
            return None;
        }
        Some(Route {
            proto: proto.to_string(),
            host: host.to_string(),
            port,
        })
    }
}

fn port_digits_only(s: &str) -> bool {
    s.rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Why a request body was refused. Every kind is answered with
/// `bad-request`, except limits (`policy-violation`): see
/// `BodyError::condition` (in `condition.rs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The XML itself (syntax, restricted XML, namespaces, limits).
    #[error("{0}")]
    Xml(XmlError),
    /// A bad XML declaration before `<body>`.
    #[error("bad XML declaration: {0}")]
    Declaration(&'static str),
    /// The root is not `<body/>` in the httpbind namespace.
    #[error("the root element is not <body/> in the httpbind namespace")]
    NotBody,
    /// Character data directly inside `<body/>` (§6).
    #[error("character data directly inside <body/>")]
    Text,
    /// No `rid` attribute.
    #[error("the rid attribute is missing")]
    MissingRid,
    /// A known attribute with a bad value.
    #[error("bad `{0}` attribute")]
    Attribute(&'static str),
    /// A payload in a namespace that cannot be forwarded.
    #[error("payload namespace: {0}")]
    Payload(&'static str),
}
