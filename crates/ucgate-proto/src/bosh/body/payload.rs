//! A `<body/>`'s children made standalone elements (see [`super`]).

use crate::xml::tag::{escape, parse_start_tag, StartTag};
use crate::xml::XmlError;

use super::scan::{is_ws, lookup};
use super::types::{BodyError, NS_CLIENT, NS_HTTPBIND};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Client payloads: the httpbind namespace is mapped or refused.
    Request,
    /// Server payloads and `<uri/>`: kept as they are.
    Response,
}

/// The direct children of the body `s` (trimmed, starting with `tag`).
pub(super) fn children(
    s: &str,
    tag: &StartTag,
    decls: &[(String, String)],
    mode: Mode,
) -> Result<Vec<Vec<u8>>, BodyError> {
    let mut out = Vec::new();
    if tag.self_closing {
        return Ok(out);
    }
    let b = s.as_bytes();
    // check_element accepted `s`, so it ends with the body's end tag and
    // nothing else; its `</` is the last one (CDATA cannot follow it).
    let end = s.rfind("</").ok_or(BodyError::NotBody)?;
    let mut i = tag.len;
    let mut depth = 0usize;
    let mut start = 0;
    while i < end {
        if b[i] != b'<' {
            let next = s[i..end].find('<').map_or(end, |p| i + p);
            if depth == 0 && !b[i..next].iter().all(|c| is_ws(*c)) {
                return Err(BodyError::Text);
            }
            i = next;
            continue;
        }
        let rest = &b[i..end];
        if rest.starts_with(b"<![CDATA[") {
            if depth == 0 {
                return Err(BodyError::Text);
            }
            let p = s[i..end]
                .find("]]>")
                .ok_or(BodyError::Xml(XmlError::NotWellFormed(
                    "unterminated CDATA",
                )))?;
            i += p + 3;
            continue;
        }
        if rest.starts_with(b"</") {
            let p = s[i..end]
                .find('>')
                .ok_or(BodyError::Xml(XmlError::NotWellFormed(
                    "incomplete end tag",
                )))?;
            i += p + 1;
            depth -= 1;
            if depth == 0 {
                out.push(complete_child(&b[start..i], decls, mode)?);
            }
            continue;
        }
        let t = parse_start_tag(rest)
            .map_err(BodyError::Xml)?
            .ok_or(BodyError::Xml(XmlError::NotWellFormed(
                "incomplete start tag",
            )))?;
        if depth == 0 {
            start = i;
        }
        i += t.len;
        if t.self_closing {
            if depth == 0 {
                out.push(complete_child(&b[start..i], decls, mode)?);
            }
        } else {
            depth += 1;
        }
    }
    Ok(out)
}

/// Which declarations from `<body>` a child relies on.
#[derive(Default)]
struct Needs {
    prefixes: Vec<String>,
    default: bool,
}

fn scan_needs(el: &[u8]) -> Result<Needs, BodyError> {
    let mut needs = Needs::default();
    // declarations made inside the child, one frame per open element
    let mut frames: Vec<Vec<(String, String)>> = Vec::new();
    let declared = |frames: &Vec<Vec<(String, String)>>, p: &str| {
        frames.iter().any(|f| f.iter().any(|(fp, _)| fp == p))
    };
    let need = |needs: &mut Needs, p: &str| {
        if !needs.prefixes.iter().any(|x| x == p) {
            needs.prefixes.push(p.to_string());
        }
    };
    let mut i = 0;
    while i < el.len() {
        if el[i] != b'<' {
            i += el[i..]
                .iter()
                .position(|c| *c == b'<')
                .unwrap_or(el.len() - i);
            continue;
        }
        if el[i..].starts_with(b"<![CDATA[") {
            let p = el[i..]
                .windows(3)
                .position(|w| w == b"]]>")
                .ok_or(BodyError::Xml(XmlError::NotWellFormed(
                    "unterminated CDATA",
                )))?;
            i += p + 3;
            continue;
        }
        if el[i..].starts_with(b"</") {
            let p = el[i..]
                .iter()
                .position(|c| *c == b'>')
                .ok_or(BodyError::Xml(XmlError::NotWellFormed(
                    "incomplete end tag",
                )))?;
            i += p + 1;
            frames.pop();
            continue;
        }
        let t = parse_start_tag(&el[i..])
            .map_err(BodyError::Xml)?
            .ok_or(BodyError::Xml(XmlError::NotWellFormed(
                "incomplete start tag",
            )))?;
        frames.push(t.ns_decls());
        match t.prefix() {
            Some("xml") => {}
            Some(p) => {
                if !declared(&frames, p) {
                    need(&mut needs, p);
                }
            }
            None => {
                if !declared(&frames, "") {
                    needs.default = true;
                }
            }
        }
        for a in &t.attrs {
            if a.name == "xmlns" || a.name.starts_with("xmlns:") {
                continue;
            }
            if let Some((p, _)) = a.name.split_once(':') {
                if p != "xml" && !declared(&frames, p) {
                    need(&mut needs, p);
                }
            }
        }
        i += t.len;
        if t.self_closing {
            frames.pop();
        }
    }
    Ok(needs)
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

/// Re-declares on the child's start tag what it relies on from `<body>`.
fn complete_child(
    el: &[u8],
    body_decls: &[(String, String)],
    mode: Mode,
) -> Result<Vec<u8>, BodyError> {
    let root = parse_start_tag(el)
        .map_err(BodyError::Xml)?
        .ok_or(BodyError::Xml(XmlError::NotWellFormed(
            "incomplete start tag",
        )))?;
    let needs = scan_needs(el)?;
    let mut add = String::new();
    for p in &needs.prefixes {
        let uri = lookup(body_decls, p)
            .ok_or(BodyError::Xml(XmlError::Namespace("undeclared prefix")))?;
        if mode == Mode::Request && uri == NS_HTTPBIND {
            return Err(BodyError::Payload(
                "a prefix bound to the httpbind namespace",
            ));
        }
        add.push_str(&format!(" xmlns:{p}='{}'", escape(uri)));
    }
    let root_inherits = root.prefix().is_none() && root.attr("xmlns").is_none();
    // XEP-0206 §2: a stanza that names the httpbind namespace itself is a
    // `jabber:client` stanza, like one that inherits it.
    let explicit_stanza = mode == Mode::Request
        && root.prefix().is_none()
        && root.attr("xmlns") == Some(NS_HTTPBIND)
        && is_stanza(root.local());
    if needs.default {
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
                None if needs.default => match lookup(body_decls, "").unwrap_or_default() {
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
    if explicit_stanza {
        let (start, end) = attr_value_span(&el[..root.len], "xmlns")
            .ok_or(BodyError::Xml(XmlError::NotWellFormed("bad start tag")))?;
        el.splice(start..end, NS_CLIENT.bytes());
    }
    if add.is_empty() {
        return Ok(el);
    }
    let name_end = 1 + root.name.len();
    let mut out = Vec::with_capacity(el.len() + add.len());
    out.extend_from_slice(&el[..name_end]);
    out.extend_from_slice(add.as_bytes());
    out.extend_from_slice(&el[name_end..]);
    Ok(out)
}
