//! The XML namespaces of XMPP streams the translator reads and writes.

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
