//! A `<body/>`'s children made standalone elements (see [`super`]).

use crate::xml::tag::{escape, parse_start_tag, Attr, ParsedElement, StartTag};
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
) -> Result<Vec<ParsedElement>, BodyError> {
    let mut out = Vec::new();
    // the start tag of the child being read, parsed once here
    let mut root: Option<StartTag> = None;
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
                let root = root.take().ok_or(BodyError::NotBody)?;
                out.push(complete_child(&b[start..i], root, decls, mode)?);
            }
            continue;
        }
        let t = parse_start_tag(rest)
            .map_err(BodyError::Xml)?
            .ok_or(BodyError::Xml(XmlError::NotWellFormed(
                "incomplete start tag",
            )))?;
        i += t.len;
        if depth == 0 {
            start = i - t.len;
            if t.self_closing {
                out.push(complete_child(&b[start..i], t, decls, mode)?);
                continue;
            }
            root = Some(t);
        } else if t.self_closing {
            continue;
        }
        depth += 1;
    }
    Ok(out)
}

/// Which declarations from `<body>` a child relies on.
#[derive(Default)]
struct Needs {
    prefixes: Vec<String>,
    default: bool,
}

/// What one start tag relies on, `frames` holding the declarations in
/// scope inside the child (its own pushed last).
fn note_needs(t: &StartTag, frames: &[Vec<(String, String)>], needs: &mut Needs) {
    let declared = |p: &str| frames.iter().any(|f| f.iter().any(|(fp, _)| fp == p));
    let mut need = |p: &str| {
        if !needs.prefixes.iter().any(|x| x == p) {
            needs.prefixes.push(p.to_string());
        }
    };
    match t.prefix() {
        Some("xml") => {}
        Some(p) => {
            if !declared(p) {
                need(p);
            }
        }
        None => {
            if !declared("") {
                needs.default = true;
            }
        }
    }
    for a in &t.attrs {
        if a.name == "xmlns" || a.name.starts_with("xmlns:") {
            continue;
        }
        if let Some((p, _)) = a.name.split_once(':') {
            if p != "xml" && !declared(p) {
                need(p);
            }
        }
    }
}

/// What the child `el` (whose start tag is `root`, already parsed) relies
/// on from `<body>`.
fn scan_needs(el: &[u8], root: &StartTag) -> Result<Needs, BodyError> {
    let mut needs = Needs::default();
    // declarations made inside the child, one frame per open element
    let mut frames: Vec<Vec<(String, String)>> = vec![root.ns_decls()];
    note_needs(root, &frames, &mut needs);
    if root.self_closing {
        return Ok(needs);
    }
    let mut i = root.len;
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
        note_needs(&t, &frames, &mut needs);
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

/// Re-declares on the child's start tag (`root`, parsed by [`children`])
/// what it relies on from `<body>`, and hands the tag on updated to match
/// the bytes.
fn complete_child(
    el: &[u8],
    root: StartTag,
    body_decls: &[(String, String)],
    mode: Mode,
) -> Result<ParsedElement, BodyError> {
    let needs = scan_needs(el, &root)?;
    let mut add = String::new();
    let mut added: Vec<Attr> = Vec::new();
    for p in &needs.prefixes {
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
