//! The bytes around elements: white space, the prologue before `<body>`,
//! and the namespace a prefix is bound to.

use crate::xml::tag::{parse_start_tag, StartTag};
use crate::xml::validate::{check_element_children, Children, NS_XML};
use crate::xml::{Limits, XmlError};

use super::types::{BodyError, NS_HTTPBIND};

pub(super) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

pub(super) fn trim_ws(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

/// A request or response body up to its root: the prologue stripped, the
/// whole element checked, and the root's start tag, which must be `<body/>`
/// in the httpbind namespace. Returns the element's text and its children
/// as the check found them.
pub(super) fn body_root<'a>(
    bytes: &'a [u8],
    limits: &Limits,
) -> Result<(&'a str, StartTag, Children), BodyError> {
    let text = prologue(bytes)?;
    let (checked, children) = check_element_children(text, limits).map_err(BodyError::Xml)?;
    if checked.tag.local() != "body" || checked.ns != NS_HTTPBIND {
        return Err(BodyError::NotBody);
    }
    Ok((text, checked.tag, children))
}

/// Strips a BOM and an XML declaration; checks UTF-8.
pub(super) fn prologue(bytes: &[u8]) -> Result<&str, BodyError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes)
        .map_err(|_| BodyError::Xml(XmlError::NotWellFormed("invalid UTF-8")))?;
    let Some(rest) = text.strip_prefix("<?xml") else {
        return Ok(text);
    };
    if !rest.as_bytes().first().is_some_and(|b| is_ws(*b)) {
        // `<?xml-stylesheet …?>` and the like: a processing instruction.
        return Err(BodyError::Xml(XmlError::Restricted(
            "processing instructions are not allowed",
        )));
    }
    let end = rest
        .find("?>")
        .ok_or(BodyError::Declaration("unterminated"))?;
    let pseudo = format!("<xml{}>", &rest[..end]);
    let tag = parse_start_tag(pseudo.as_bytes())
        .ok()
        .flatten()
        .ok_or(BodyError::Declaration("malformed"))?;
    for a in &tag.attrs {
        let ok = match a.name.as_str() {
            "version" => a.value == "1.0",
            "encoding" => a.value.eq_ignore_ascii_case("utf-8"),
            "standalone" => a.value == "yes" || a.value == "no",
            _ => false,
        };
        if !ok {
            return Err(BodyError::Declaration(
                "only version 1.0 and encoding UTF-8 are accepted",
            ));
        }
    }
    if tag.attr("version").is_none() {
        return Err(BodyError::Declaration("no version"));
    }
    Ok(&rest[end + 2..])
}

pub(super) fn lookup<'a>(decls: &'a [(String, String)], prefix: &str) -> Option<&'a str> {
    if prefix == "xml" {
        return Some(NS_XML);
    }
    decls
        .iter()
        .rev()
        .find(|(p, _)| p == prefix)
        .map(|(_, u)| u.as_str())
}
