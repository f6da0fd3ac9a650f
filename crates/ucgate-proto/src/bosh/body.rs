//! The `<body/>` wrapper (XEP-0124 §6, XEP-0206 §2): strict parsing of a
//! request, extraction of its payloads as standalone elements, and
//! rendering of responses.
//!
//! # Parsing a request
//!
//! * The whole body is checked with
//!   [`check_element`](crate::xml::validate::check_element) under the
//!   session's [`Limits`](crate::xml::Limits) (its `max_bytes` is the
//!   largest body): well-formed, no comments, processing instructions,
//!   DTDs or entities other than the predefined five (§6), every prefix
//!   declared. A leading UTF-8 byte
//!   order mark and an XML declaration (version 1.0, encoding UTF-8 if
//!   given) are accepted: they precede the `<body/>` element, they are not
//!   part of its content.
//! * The root must be `body` in `http://jabber.org/protocol/httpbind`
//!   (any prefix, or the default namespace).
//! * Attributes are matched by expanded name: unprefixed ones are the
//!   XEP-0124 attributes, `xml:lang`, and XEP-0206's `version` / `restart`
//!   in `urn:xmpp:xbosh` under **any** prefix bound to it (clients write
//!   `xmpp:`). Unknown attributes are ignored (the schema's
//!   `anyAttribute`); known ones with a bad value are `bad-request`.
//! * `<body/>` MUST NOT contain character data (§6): only white space is
//!   allowed between payloads.
//!
//! # Payloads are made standalone
//!
//! Each child is returned as its exact bytes, except that the namespace
//! declarations it relies on from `<body>` are re-declared on its start
//! tag, so that the server parses it exactly as the client meant it:
//!
//! * every prefix used by the child (element or attribute names, at any
//!   depth) that the child does not declare itself gets the `xmlns:p`
//!   declaration in scope on `<body>`;
//! * a child in the default namespace inherited from `<body>`: XEP-0206 §2
//!   says stanzas are qualified by `jabber:client`, and notes that many
//!   clients leave `<message/>`, `<presence/>` and `<iq/>` unqualified,
//!   treating `jabber:client` as a subset of the httpbind namespace. Such a
//!   child (only those three names) is re-declared `xmlns='jabber:client'`;
//!   one that declares `xmlns='http://jabber.org/protocol/httpbind'` itself
//!   gets that declaration's value replaced by `jabber:client` (the same
//!   stanza, written out). Any other element in the httpbind namespace
//!   (unqualified, explicitly declared, or any element through a prefix) is
//!   refused (`bad-request`): the XEP-0124 schema allows only `##other`
//!   namespaces as payloads.
//! * a child with no namespace at all is refused.

mod payload;
mod request;
mod response;
mod scan;
mod types;

#[cfg(test)]
use crate::xml::{validate::check_element, Limits, XmlError};
pub use request::{parse_request, peek_sid};
#[cfg(test)]
pub(crate) use response::parse_response_for_tests;
pub use response::{parse_response, render_body, Response};
pub use types::{
    BodyError, BodyType, Request, Route, MAX_RID, NS_CLIENT, NS_HTTPBIND, NS_STREAMS, NS_XBOSH,
};

#[cfg(test)]
#[path = "body_tests.rs"]
mod tests;
