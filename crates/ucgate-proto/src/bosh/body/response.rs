//! A response `<body/>`: parsed (for clients and tests) and rendered.

use crate::xml::tag::escape;
use crate::xml::validate::NS_XML;
use crate::xml::Limits;

use super::payload::{children, Mode};
use super::scan::{body_root, lookup};
use super::types::{BodyError, NS_HTTPBIND, NS_STREAMS, NS_XBOSH};

/// A parsed response `<body/>` (for clients and tests of the gateway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Attributes: XEP-0124 ones by local name, `xml:lang`, and the
    /// `urn:xmpp:xbosh` ones as `xmpp:version` / `xmpp:restartlogic` / …
    /// whatever prefix the body used. Other attributes are left out.
    pub attrs: Vec<(String, String)>,
    /// The children, each made standalone (declarations from `<body>`
    /// re-declared on it; the default namespace kept as is).
    pub payload: Vec<Vec<u8>>,
}

impl Response {
    /// An attribute by the name described on [`attrs`](Self::attrs).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a response body (the client side of the protocol).
pub fn parse_response(bytes: &[u8], limits: &Limits) -> Result<Response, BodyError> {
    let (text, tag, found) = body_root(bytes, limits)?;
    let decls = tag.ns_decls();
    let mut attrs = Vec::new();
    for a in &tag.attrs {
        if a.name == "xmlns" || a.name.starts_with("xmlns:") {
            continue;
        }
        let name = match a.name.split_once(':') {
            Some((p, l)) => match lookup(&decls, p) {
                Some(NS_XML) => format!("xml:{l}"),
                Some(NS_XBOSH) => format!("xmpp:{l}"),
                _ => continue,
            },
            None => a.name.clone(),
        };
        attrs.push((name, a.value.clone()));
    }
    let payload = children(text, found, &decls, Mode::Response)?
        .into_iter()
        .map(|p| p.bytes)
        .collect();
    Ok(Response { attrs, payload })
}

/// Renders a response `<body/>` in the httpbind namespace with `attrs`
/// (values escaped) and `children` (namespace-complete elements, copied as
/// they are). `xmlns:xmpp='urn:xmpp:xbosh'` is declared when an attribute
/// is `xmpp:…` (XEP-0206); `xmlns:stream` when `stream_decl` is set or a
/// child is a `stream:` element (XEP-0206 §2: MUST for `stream:features`
/// and `stream:error`).
pub fn render_body(attrs: &[(&str, String)], children: &[Vec<u8>], stream_decl: bool) -> String {
    let size: usize = children.iter().map(Vec::len).sum();
    let mut s = String::with_capacity(160 + size);
    s.push_str("<body xmlns='");
    s.push_str(NS_HTTPBIND);
    s.push('\'');
    if attrs.iter().any(|(n, _)| n.starts_with("xmpp:")) {
        s.push_str(" xmlns:xmpp='");
        s.push_str(NS_XBOSH);
        s.push('\'');
    }
    if stream_decl || children.iter().any(|c| c.starts_with(b"<stream:")) {
        s.push_str(" xmlns:stream='");
        s.push_str(NS_STREAMS);
        s.push('\'');
    }
    for (n, v) in attrs {
        s.push(' ');
        s.push_str(n);
        s.push_str("='");
        s.push_str(&escape(v));
        s.push('\'');
    }
    if children.is_empty() {
        s.push_str("/>");
        return s;
    }
    s.push('>');
    for c in children {
        s.push_str(&String::from_utf8_lossy(c));
    }
    s.push_str("</body>");
    s
}

/// (type, condition) of a rendered response, for tests.
#[cfg(test)]
pub(crate) fn parse_response_for_tests(body: &str) -> (String, String) {
    let r = parse_response(body.as_bytes(), &Limits::default())
        .unwrap_or_else(|e| panic!("{body}: {e}"));
    (
        r.attr("type").unwrap_or_default().to_string(),
        r.attr("condition").unwrap_or_default().to_string(),
    )
}
