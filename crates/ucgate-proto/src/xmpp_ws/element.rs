//! Top-level elements between the two streams: their namespace, the
//! declarations they inherit (RFC 7395 §3.3.3), and their direct children
//! (feature filtering).

use crate::xml::tag::{escape, parse_start_tag, StartTag};

/// The namespace of a top-level element given the stream's declarations.
pub(super) fn element_ns(tag: &StartTag, stream: &[(String, String)]) -> Option<String> {
    let p = tag.prefix().unwrap_or("");
    if let Some(v) = declared(tag, p) {
        return Some(v.to_string());
    }
    stream
        .iter()
        .find(|(sp, _)| sp == p)
        .map(|(_, u)| u.clone())
}

/// The value of the tag's own declaration of `prefix` (`""`: `xmlns`).
fn declared<'t>(tag: &'t StartTag, prefix: &str) -> Option<&'t str> {
    tag.attrs
        .iter()
        .find(|a| match a.name.strip_prefix("xmlns") {
            Some("") => prefix.is_empty(),
            Some(rest) => !prefix.is_empty() && rest.strip_prefix(':') == Some(prefix),
            None => false,
        })
        .map(|a| a.value.as_str())
}

/// Adds the stream's namespace declarations a top-level element relies on
/// but does not carry (RFC 7395 §3.3.3).
pub fn qualify(el: &[u8], tag: &StartTag, stream: &[(String, String)]) -> Vec<u8> {
    qualify_owned(el.to_vec(), tag, stream)
}

/// [`qualify`] on an element the caller owns: the declarations go into its
/// bytes in place (most stanzas need none, and are not copied at all).
pub fn qualify_owned(mut el: Vec<u8>, tag: &StartTag, stream: &[(String, String)]) -> Vec<u8> {
    let name_end = 1 + tag.name.len();
    let mut add: Vec<u8> = Vec::new();
    for (prefix, uri) in stream {
        if declared(tag, prefix).is_some() {
            continue;
        }
        let needed = prefix.is_empty()
            || contains_prefixed(&el, b'<', prefix)
            || contains_prefixed(&el[..tag.len], b' ', prefix);
        if needed {
            add.extend_from_slice(b" xmlns");
            if !prefix.is_empty() {
                add.push(b':');
                add.extend_from_slice(prefix.as_bytes());
            }
            add.extend_from_slice(b"='");
            add.extend_from_slice(escape(uri).as_bytes());
            add.push(b'\'');
        }
    }
    if !add.is_empty() {
        el.splice(name_end..name_end, add);
    }
    el
}

/// The text of an element's bytes, without a copy when they are UTF-8.
pub(super) fn into_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Whether `hay` holds `lead`, `prefix`, `:` in a row.
fn contains_prefixed(hay: &[u8], lead: u8, prefix: &str) -> bool {
    let p = prefix.as_bytes();
    let n = p.len() + 2;
    hay.windows(n)
        .any(|w| w[0] == lead && &w[1..n - 1] == p && w[n - 1] == b':')
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Vec<(String, String)> {
        vec![
            (String::new(), "jabber:client".into()),
            ("stream".into(), "http://etherx.jabber.org/streams".into()),
        ]
    }

    fn q(el: &str) -> String {
        let tag = parse_start_tag(el.as_bytes()).unwrap().unwrap();
        into_text(qualify_owned(el.as_bytes().to_vec(), &tag, &stream()))
    }

    #[test]
    fn adds_exactly_the_declarations_an_element_relies_on() {
        // The default namespace always; `stream:` only where it is used.
        assert_eq!(
            q("<message to='a@b'><body>hi</body></message>"),
            "<message xmlns='jabber:client' to='a@b'><body>hi</body></message>"
        );
        assert_eq!(
            q("<stream:features><bind/></stream:features>"),
            "<stream:features xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><bind/></stream:features>"
        );
        // In an attribute name of the start tag, and in a child.
        assert_eq!(
            q("<iq stream:x='1'/>"),
            "<iq xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' stream:x='1'/>"
        );
        assert_eq!(
            q("<iq><stream:y/></iq>"),
            "<iq xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><stream:y/></iq>"
        );
        // Its own declarations are kept and not repeated; a longer prefix
        // that starts like `stream` is not `stream`.
        assert_eq!(
            q("<iq xmlns='jabber:server'><streamx:y xmlns:streamx='u'/></iq>"),
            "<iq xmlns='jabber:server'><streamx:y xmlns:streamx='u'/></iq>"
        );
        assert_eq!(
            q("<stream:error xmlns:stream='s'/>"),
            "<stream:error xmlns='jabber:client' xmlns:stream='s'/>"
        );
        // The namespace of the element itself follows the same rules.
        let tag = parse_start_tag(b"<stream:error xmlns:streamx='u'/>")
            .unwrap()
            .unwrap();
        assert_eq!(
            element_ns(&tag, &stream()).as_deref(),
            Some("http://etherx.jabber.org/streams")
        );
        let tag = parse_start_tag(b"<error xmlns='urn:x'/>").unwrap().unwrap();
        assert_eq!(element_ns(&tag, &stream()).as_deref(), Some("urn:x"));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        assert_eq!(into_text(b"<a>\xff</a>".to_vec()), "<a>\u{fffd}</a>");
    }
}
