//! Restricted XML for XMPP (RFC 6120 §11), without a DOM.
//!
//! * [`splitter`]: incremental splitting of an XMPP byte stream from the
//!   server into the stream header, top-level elements and the stream end;
//!   whitespace keepalives are dropped.
//! * [`validate`]: strict checking of one complete element as a WebSocket
//!   message from a client (well-formedness, namespaces, RFC 6120 §11.1
//!   restrictions, depth and attribute limits).
//! * [`tag`]: start-tag parsing (names, attributes, entity decoding) and
//!   escaping.
//!
//! Elements are forwarded as the bytes they arrived as; only the top-level
//! start tag is ever rewritten (namespace declarations added).
//!
//! Each element's top-level start tag is parsed once, by the component
//! that reads the element (the splitter, the validator, the BOSH body
//! parser), and handed on with its bytes as a [`tag::ParsedElement`].

pub mod splitter;
pub mod tag;
pub mod validate;

/// Why XML was refused; each maps to an XMPP stream error condition
/// (RFC 6120 §4.9.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// Syntax error.
    #[error("not well-formed: {0}")]
    NotWellFormed(&'static str),
    /// A construct RFC 6120 §11.1 forbids (comment, processing instruction,
    /// DTD, entity other than the predefined ones).
    #[error("restricted XML: {0}")]
    Restricted(&'static str),
    /// An undeclared prefix or a missing / wrong namespace.
    #[error("namespace error: {0}")]
    Namespace(&'static str),
    /// Over a configured size, depth or attribute-count limit.
    #[error("limit exceeded: {0}")]
    Limit(&'static str),
}

impl XmlError {
    /// The RFC 6120 §4.9.3 stream error condition for this error.
    pub fn condition(&self) -> &'static str {
        match self {
            XmlError::NotWellFormed(_) => "not-well-formed",
            XmlError::Restricted(_) => "restricted-xml",
            XmlError::Namespace(_) => "invalid-namespace",
            XmlError::Limit(_) => "policy-violation",
        }
    }
}

/// Limits applied to one element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest element in bytes.
    pub max_bytes: usize,
    /// Deepest nesting (the element itself is depth 1).
    pub max_depth: usize,
    /// Most attributes (namespace declarations included) on one element.
    pub max_attributes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 256 * 1024,
            max_depth: 32,
            max_attributes: 64,
        }
    }
}
