//! A `<body/>`'s children made standalone elements (see [`super`]).

use crate::xml::tag::{escape, Attr, ParsedElement, StartTag};
use crate::xml::validate::Children;
use crate::xml::XmlError;

use super::scan::lookup;
use super::types::{BodyError, NS_CLIENT, NS_HTTPBIND};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Client payloads: the httpbind namespace is mapped or refused.
    Request,
    /// Server payloads and `<uri/>`: kept as they are.
    Response,
}

/// The direct children of the body in `text` (as found by
/// [`check_element_children`](crate::xml::validate::check_element_children)),
/// each made standalone.
pub(super) fn children(
    text: &str,
    found: Children,
    decls: &[(String, String)],
    mode: Mode,
) -> Result<Vec<ParsedElement>, BodyError> {
    let mut out = Vec::with_capacity(found.items.len());
    for child in found.items {
        if found.text_at.is_some_and(|t| t < child.span.start) {
            return Err(BodyError::Text);
        }
        let el = &text.as_bytes()[child.span];
        out.push(complete_child(
            el,
            child.tag,
            &child.inherited,
            decls,
            mode,
        )?);
    }
    if found.text_at.is_some() {
        return Err(BodyError::Text);
    }
    Ok(out)
}

/// The three stanza names that XEP-0206 §2 lets clients put in the
/// httpbind namespace.
fn is_stanza(local: &str) -> bool {
    matches!(local, "message" | "presence" | "iq")
}

/// Where the value of attribute `name` lies (between its quotes) in the
/// bytes of a start tag already checked well-formed.
fn attr_value_span(tag: &[u8], name: &str) -> Option<(usize, usize)> {
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let mut i = tag.iter().position(|b| is_space(*b))?;
    loop {
        while i < tag.len() && is_space(tag[i]) {
            i += 1;
        }
        if i >= tag.len() || matches!(tag[i], b'/' | b'>') {
            return None;
        }
        let name_start = i;
        while i < tag.len() && tag[i] != b'=' && !is_space(tag[i]) {
            i += 1;
        }
        let attr = &tag[name_start..i];
        while i < tag.len() && (is_space(tag[i]) || tag[i] == b'=') {
            i += 1;
        }
        let quote = *tag.get(i)?;
        let start = i + 1;
        let end = start + tag[start..].iter().position(|b| *b == quote)?;
        if attr == name.as_bytes() {
            return Some((start, end));
        }
        i = end + 1;
    }
}

/// Re-declares on the child's start tag (`root`) what it relies on from
/// `<body>` (`inherited`: the prefixes, `""` for the default namespace), and
/// hands the tag on updated to match the bytes.
fn complete_child(
    el: &[u8],
    root: StartTag,
    inherited: &[String],
    body_decls: &[(String, String)],
    mode: Mode,
) -> Result<ParsedElement, BodyError> {
    let needs_default = inherited.iter().any(|p| p.is_empty());
    let mut add = String::new();
    let mut added: Vec<Attr> = Vec::new();
    for p in inherited.iter().filter(|p| !p.is_empty()) {
        let uri = lookup(body_decls, p)
            .ok_or(BodyError::Xml(XmlError::Namespace("undeclared prefix")))?;
        if mode == Mode::Request && uri == NS_HTTPBIND {
            return Err(BodyError::Payload(
                "a prefix bound to the httpbind namespace",
            ));
        }
        add.push_str(&format!(" xmlns:{p}='{}'", escape(uri)));
        added.push(Attr {
            name: format!("xmlns:{p}"),
            value: uri.to_string(),
        });
    }
    let root_inherits = root.prefix().is_none() && root.attr("xmlns").is_none();
    // XEP-0206 §2: a stanza that names the httpbind namespace itself is a
    // `jabber:client` stanza, like one that inherits it.
    let explicit_stanza = mode == Mode::Request
        && root.prefix().is_none()
        && root.attr("xmlns") == Some(NS_HTTPBIND)
        && is_stanza(root.local());
    if needs_default {
        let inherited = lookup(body_decls, "").unwrap_or_default();
        let declare = match (mode, inherited) {
            (_, "") => None,
            (Mode::Request, NS_HTTPBIND) => {
                if root_inherits && !is_stanza(root.local()) {
                    return Err(BodyError::Payload(
                        "only <message/>, <presence/> and <iq/> may omit their namespace",
                    ));
                }
                Some(NS_CLIENT)
            }
            (_, uri) => Some(uri),
        };
        if let Some(uri) = declare {
            add.push_str(&format!(" xmlns='{}'", escape(uri)));
            added.push(Attr {
                name: "xmlns".into(),
                value: uri.to_string(),
            });
        }
    }
    if mode == Mode::Request {
        // The namespace the child ends up in.
        let ns = match root.prefix() {
            Some(p) => root
                .attr(&format!("xmlns:{p}"))
                .or_else(|| lookup(body_decls, p))
                .unwrap_or_default(),
            None => match root.attr("xmlns") {
                Some(_) if explicit_stanza => NS_CLIENT,
                Some(u) => u,
                None if needs_default => match lookup(body_decls, "").unwrap_or_default() {
                    NS_HTTPBIND => NS_CLIENT,
                    u => u,
                },
                None => "",
            },
        };
        if ns.is_empty() {
            return Err(BodyError::Payload("a payload has no namespace"));
        }
        if ns == NS_HTTPBIND {
            return Err(BodyError::Payload("a payload in the httpbind namespace"));
        }
    }
    let mut el = el.to_vec();
    let mut tag = root;
    if explicit_stanza {
        let (start, end) = attr_value_span(&el[..tag.len], "xmlns")
            .ok_or(BodyError::Xml(XmlError::NotWellFormed("bad start tag")))?;
        el.splice(start..end, NS_CLIENT.bytes());
        tag.len = tag.len + NS_CLIENT.len() - (end - start);
        for a in tag.attrs.iter_mut().filter(|a| a.name == "xmlns") {
            a.value = NS_CLIENT.to_string();
        }
    }
    if add.is_empty() {
        return Ok(ParsedElement { bytes: el, tag });
    }
    let name_end = 1 + tag.name.len();
    let mut out = Vec::with_capacity(el.len() + add.len());
    out.extend_from_slice(&el[..name_end]);
    out.extend_from_slice(add.as_bytes());
    out.extend_from_slice(&el[name_end..]);
    tag.len += add.len();
    added.append(&mut tag.attrs);
    tag.attrs = added;
    Ok(ParsedElement { bytes: out, tag })
}
