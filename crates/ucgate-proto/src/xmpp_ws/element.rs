//! Top-level elements between the two streams: their namespace, the
//! declarations they inherit (RFC 7395 §3.3.3), and their direct children
//! (feature filtering).

use crate::xml::tag::{escape, parse_start_tag, StartTag};

/// The namespace of a top-level element given the stream's declarations.
pub(super) fn element_ns(tag: &StartTag, stream: &[(String, String)]) -> Option<String> {
    let key = match tag.prefix() {
        Some(p) => format!("xmlns:{p}"),
        None => "xmlns".to_string(),
    };
    if let Some(v) = tag.attr(&key) {
        return Some(v.to_string());
    }
    let p = tag.prefix().unwrap_or("");
    stream
        .iter()
        .find(|(sp, _)| sp == p)
        .map(|(_, u)| u.clone())
}

/// Adds the stream's namespace declarations a top-level element relies on
/// but does not carry (RFC 7395 §3.3.3).
pub fn qualify(el: &[u8], tag: &StartTag, stream: &[(String, String)]) -> Vec<u8> {
    let mut add = String::new();
    for (prefix, uri) in stream {
        let attr = if prefix.is_empty() {
            "xmlns".to_string()
        } else {
            format!("xmlns:{prefix}")
        };
        if tag.attr(&attr).is_some() {
            continue;
        }
        let needed = if prefix.is_empty() {
            true
        } else {
            let needle = format!("<{prefix}:");
            let attr_needle = format!(" {prefix}:");
            contains(el, needle.as_bytes()) || contains(&el[..tag.len], attr_needle.as_bytes())
        };
        if needed {
            add.push_str(&format!(" {attr}='{}'", escape(uri)));
        }
    }
    if add.is_empty() {
        return el.to_vec();
    }
    let name_end = 1 + tag.name.len();
    let mut out = Vec::with_capacity(el.len() + add.len());
    out.extend_from_slice(&el[..name_end]);
    out.extend_from_slice(add.as_bytes());
    out.extend_from_slice(&el[name_end..]);
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Byte ranges of the direct children of an element (given as whole bytes).
fn child_ranges(el: &[u8], tag: &StartTag) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if tag.self_closing {
        return out;
    }
    let mut i = tag.len;
    let mut depth = 0usize;
    let mut start = 0;
    while i < el.len() {
        if el[i] != b'<' {
            i += 1;
            continue;
        }
        if el[i..].starts_with(b"<![CDATA[") {
            match el[i..].windows(3).position(|w| w == b"]]>") {
                Some(p) => i += p + 3,
                None => break,
            }
            continue;
        }
        if el[i..].starts_with(b"</") {
            let Some(p) = el[i..].iter().position(|b| *b == b'>') else {
                break;
            };
            i += p + 1;
            if depth == 0 {
                break; // the element's own end tag
            }
            depth -= 1;
            if depth == 0 {
                out.push((start, i));
            }
            continue;
        }
        let Ok(Some(t)) = parse_start_tag(&el[i..]) else {
            break;
        };
        if depth == 0 {
            start = i;
        }
        i += t.len;
        if t.self_closing {
            if depth == 0 {
                out.push((start, i));
            }
        } else {
            depth += 1;
        }
    }
    out
}

/// Removes the direct children whose namespace is one of `namespaces`.
pub(super) fn remove_children(el: &[u8], tag: &StartTag, namespaces: &[&str]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(el.len());
    let mut last = 0;
    let mut removed = false;
    for (s, e) in child_ranges(el, tag) {
        let Ok(Some(ct)) = parse_start_tag(&el[s..e]) else {
            continue;
        };
        let ns = element_ns(&ct, &[]).unwrap_or_default();
        if namespaces.contains(&ns.as_str()) {
            out.extend_from_slice(&el[last..s]);
            last = e;
            removed = true;
        }
    }
    out.extend_from_slice(&el[last..]);
    (out, removed)
}

pub(super) fn has_child(el: &[u8], tag: &StartTag, ns: &str, local: &str) -> bool {
    child_ranges(el, tag).into_iter().any(|(s, e)| {
        matches!(parse_start_tag(&el[s..e]), Ok(Some(ct)) if ct.local() == local && element_ns(&ct, &[]).as_deref() == Some(ns))
    })
}
