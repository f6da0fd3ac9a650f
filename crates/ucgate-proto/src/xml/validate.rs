//! Strict checking of one complete element (a WebSocket message from a
//! client, RFC 7395 §3.3.3: exactly one XML element per message).
//!
//! Checks: well-formedness (names, attributes, matching end tags, entity and
//! character references, XML characters), RFC 6120 §11.1 restrictions (no
//! comments, processing instructions, XML declarations, DTDs or entities
//! other than the predefined five), Namespaces in XML (every prefix
//! declared, no duplicate expanded attribute names, the top-level element
//! qualified by a namespace), and the configured limits (bytes, depth,
//! attributes per element). CDATA sections are allowed.

use std::borrow::Cow;

use super::tag::{decode_entity, is_xml_char, parse_raw_tag, StartTag};
use super::{Limits, XmlError};

/// The XML namespace bound to the `xml` prefix.
pub const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// The result of a successful check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The top-level start tag.
    pub tag: StartTag,
    /// The namespace the top-level element is in.
    pub ns: String,
}

/// The direct children of a checked element, found by the same walk that
/// checks it, so that a caller that needs them (the BOSH `<body/>`) does not
/// read the element a second time.
#[derive(Debug, Default)]
pub struct Children {
    /// The children in document order.
    pub items: Vec<Child>,
    /// Where the first character data (other than white space) or CDATA
    /// section directly inside the top element starts, if any.
    pub text_at: Option<usize>,
}

/// One direct child of a checked element.
#[derive(Debug)]
pub struct Child {
    /// Where the child lies in the message passed to
    /// [`check_element_children`].
    pub span: std::ops::Range<usize>,
    /// Its start tag.
    pub tag: StartTag,
    /// The prefixes the child (or anything inside it) uses that only the
    /// top element declares, in the order met; `""` when an unprefixed name
    /// inside it is in a default namespace it does not declare itself.
    pub inherited: Vec<String>,
}

/// The namespace declarations in scope, borrowed from the message.
struct Scope<'a> {
    decls: Vec<(&'a str, Cow<'a, str>)>,
}

impl Scope<'_> {
    fn lookup(&self, prefix: &str) -> Option<&str> {
        if prefix == "xml" {
            return Some(NS_XML);
        }
        self.index(prefix).map(|i| self.decls[i].1.as_ref())
    }

    /// An attribute's expanded name: (namespace, local name); an unprefixed
    /// attribute is in no namespace. `None` for an undeclared prefix.
    fn expanded<'n>(&self, name: &'n str) -> Option<(&str, &'n str)> {
        match name.split_once(':') {
            Some((p, l)) => Some((self.lookup(p)?, l)),
            None => Some(("", name)),
        }
    }

    /// Which declaration binds `prefix` (`xml` is bound by none).
    fn index(&self, prefix: &str) -> Option<usize> {
        self.decls.iter().rposition(|(p, _)| *p == prefix)
    }
}

/// Collects [`Children`] during the walk of [`check`].
struct Collector<'a> {
    out: &'a mut Children,
    /// Where the trimmed message starts in the caller's.
    offset: usize,
    /// How many declarations the top element made (they come first).
    top_decls: usize,
    /// The child being read: its start and its start tag and needs so far.
    open: Option<Child>,
}

impl Collector<'_> {
    /// Notes that the current child uses `prefix` (`""`: the default
    /// namespace), if only the top element binds it.
    fn uses(&mut self, scope: &Scope<'_>, prefix: &str) {
        if prefix == "xml" {
            return;
        }
        let inherited = scope.index(prefix).is_none_or(|i| i < self.top_decls);
        if let Some(c) = self.open.as_mut() {
            if inherited && !c.inherited.iter().any(|p| p == prefix) {
                c.inherited.push(prefix.to_string());
            }
        }
    }
}

/// Checks that `msg` is exactly one well-formed, namespace-well-formed
/// element within `limits` (surrounding white space is allowed).
pub fn check_element(msg: &str, limits: &Limits) -> Result<Checked, XmlError> {
    check(msg, limits, None)
}

/// [`check_element`], also returning the top element's direct children.
pub fn check_element_children(msg: &str, limits: &Limits) -> Result<(Checked, Children), XmlError> {
    let mut children = Children::default();
    let checked = check(msg, limits, Some(&mut children))?;
    Ok((checked, children))
}

fn check(msg: &str, limits: &Limits, children: Option<&mut Children>) -> Result<Checked, XmlError> {
    if msg.len() > limits.max_bytes {
        return Err(XmlError::Limit(
            "message larger than the maximum stanza size",
        ));
    }
    let is_ws = |c| matches!(c, ' ' | '\t' | '\r' | '\n');
    let s = msg.trim_matches(is_ws);
    let mut kids = children.map(|out| Collector {
        out,
        offset: msg.len() - msg.trim_start_matches(is_ws).len(),
        top_decls: 0,
        open: None,
    });
    let b = s.as_bytes();
    if b.first() != Some(&b'<') {
        return Err(XmlError::NotWellFormed("a message must be one XML element"));
    }
    let mut scope = Scope { decls: Vec::new() };
    // (qualified name, number of declarations it pushed)
    let mut stack: Vec<(&str, usize)> = Vec::new();
    let mut top: Option<Checked> = None;
    let mut i = 0;
    while i < b.len() {
        if top.is_some() && stack.is_empty() {
            return Err(XmlError::NotWellFormed(
                "more than one element in a message",
            ));
        }
        if b[i] != b'<' {
            // character data up to the next markup
            let end = s[i..].find('<').map_or(s.len(), |p| i + p);
            check_text(&s[i..end])?;
            if let Some(k) = kids.as_mut().filter(|_| stack.len() == 1) {
                if !s[i..end].chars().all(is_ws) {
                    k.out.text_at.get_or_insert(k.offset + i);
                }
            }
            i = end;
            continue;
        }
        let rest = &b[i..];
        if rest.starts_with(b"<!--") {
            return Err(XmlError::Restricted("comments are not allowed"));
        }
        if rest.starts_with(b"<![CDATA[") {
            if stack.is_empty() {
                return Err(XmlError::NotWellFormed("CDATA outside an element"));
            }
            let end = s[i + 9..]
                .find("]]>")
                .ok_or(XmlError::NotWellFormed("unterminated CDATA section"))?;
            if s[i + 9..i + 9 + end].chars().any(|c| !is_xml_char(c)) {
                return Err(XmlError::NotWellFormed("character XML forbids"));
            }
            if let Some(k) = kids.as_mut().filter(|_| stack.len() == 1) {
                k.out.text_at.get_or_insert(k.offset + i);
            }
            i += 9 + end + 3;
            continue;
        }
        if rest.starts_with(b"<!") {
            return Err(XmlError::Restricted("DTDs are not allowed"));
        }
        if rest.starts_with(b"<?") {
            return Err(XmlError::Restricted(
                "processing instructions and XML declarations are not allowed",
            ));
        }
        if rest.starts_with(b"</") {
            let end = s[i..]
                .find('>')
                .ok_or(XmlError::NotWellFormed("incomplete end tag"))?;
            let name = s[i + 2..i + end].trim_end_matches([' ', '\t', '\r', '\n']);
            let (open, pushed) = stack
                .pop()
                .ok_or(XmlError::NotWellFormed("end tag without a start tag"))?;
            if open != name {
                return Err(XmlError::NotWellFormed(
                    "end tag does not match the start tag",
                ));
            }
            scope.decls.truncate(scope.decls.len() - pushed);
            i += end + 1;
            if let Some(k) = kids.as_mut().filter(|_| stack.len() == 1) {
                close_child(k, i);
            }
            continue;
        }
        let tag = parse_raw_tag(rest)?.ok_or(XmlError::NotWellFormed("incomplete start tag"))?;
        if tag.attrs.len() > limits.max_attributes {
            return Err(XmlError::Limit("too many attributes on one element"));
        }
        if stack.len() + 1 > limits.max_depth {
            return Err(XmlError::Limit("elements nested too deeply"));
        }
        let mut pushed = 0;
        for a in &tag.attrs {
            if a.name == "xmlns" {
                scope.decls.push(("", a.value.clone()));
                pushed += 1;
            } else if let Some(p) = a.name.strip_prefix("xmlns:") {
                if p == "xmlns" || (p == "xml") != (a.value == NS_XML) || a.value.is_empty() {
                    return Err(XmlError::Namespace("bad namespace declaration"));
                }
                scope.decls.push((p, a.value.clone()));
                pushed += 1;
            }
        }
        if let Some(p) = tag.prefix() {
            if scope.lookup(p).is_none() {
                return Err(XmlError::Namespace("undeclared element prefix"));
            }
        }
        if let Some(k) = kids.as_mut() {
            if stack.len() == 1 {
                k.open = Some(Child {
                    span: k.offset + i..k.offset + i,
                    tag: tag.to_start_tag(),
                    inherited: Vec::new(),
                });
            }
            if !stack.is_empty() {
                k.uses(&scope, tag.prefix().unwrap_or(""));
            }
        }
        // Attributes by expanded name: each prefix declared, no two the same.
        let plain = |name: &str| name != "xmlns" && !name.starts_with("xmlns:");
        for (j, a) in tag.attrs.iter().enumerate().filter(|(_, a)| plain(a.name)) {
            if let (Some((p, _)), Some(k)) = (
                a.name.split_once(':'),
                kids.as_mut().filter(|_| !stack.is_empty()),
            ) {
                k.uses(&scope, p);
            }
            let name = scope
                .expanded(a.name)
                .ok_or(XmlError::Namespace("undeclared attribute prefix"))?;
            let earlier = &tag.attrs[..j];
            if earlier
                .iter()
                .any(|b| plain(b.name) && scope.expanded(b.name) == Some(name))
            {
                return Err(XmlError::NotWellFormed("duplicate attribute"));
            }
        }
        if top.is_none() {
            let ns = scope.lookup(tag.prefix().unwrap_or("")).unwrap_or("");
            if ns.is_empty() {
                return Err(XmlError::Namespace("the element has no namespace"));
            }
            top = Some(Checked {
                tag: tag.to_start_tag(),
                ns: ns.to_string(),
            });
            if let Some(k) = kids.as_mut() {
                k.top_decls = pushed;
            }
        }
        i += tag.len;
        if tag.self_closing {
            scope.decls.truncate(scope.decls.len() - pushed);
            if let Some(k) = kids.as_mut().filter(|_| stack.len() == 1) {
                close_child(k, i);
            }
        } else {
            stack.push((tag.name, pushed));
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::NotWellFormed("incomplete element"));
    }
    top.ok_or(XmlError::NotWellFormed("a message must be one XML element"))
}

/// The child being read ends at `end` (in the trimmed message).
fn close_child(k: &mut Collector<'_>, end: usize) {
    if let Some(mut c) = k.open.take() {
        c.span.end = k.offset + end;
        k.out.items.push(c);
    }
}

fn check_text(t: &str) -> Result<(), XmlError> {
    let mut rest = t;
    while let Some(p) = rest.find(['&', '>', ']']) {
        check_chars(&rest[..p])?;
        let r = &rest[p..];
        if r.starts_with('&') {
            let end = r
                .find(';')
                .ok_or(XmlError::NotWellFormed("unterminated entity reference"))?;
            decode_entity(&r[1..end])?;
            rest = &r[end + 1..];
        } else if r.starts_with("]]>") {
            return Err(XmlError::NotWellFormed("`]]>` in character data"));
        } else {
            rest = &r[1..];
        }
    }
    check_chars(rest)
}

fn check_chars(t: &str) -> Result<(), XmlError> {
    if t.chars().all(is_xml_char) {
        Ok(())
    } else {
        Err(XmlError::NotWellFormed("character XML forbids"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Checked {
        check_element(s, &Limits::default()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> &'static str {
        match check_element(s, &Limits::default()) {
            Ok(c) => panic!("accepted {s}: {c:?}"),
            Err(e) => e.condition(),
        }
    }

    #[test]
    fn accepts_stanzas_and_framing() {
        let c =
            ok("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>");
        assert_eq!(c.ns, "urn:ietf:params:xml:ns:xmpp-framing");
        assert_eq!(c.tag.local(), "open");
        let c = ok("<message xmlns='jabber:client' to='b@x' xml:lang='en'><body>a &lt; b &#x263A; ]] ></body><x:y xmlns:x='urn:x' x:a='1'/></message>\n");
        assert_eq!(c.ns, "jabber:client");
        ok("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHBhc3M=</auth>");
        ok("<iq xmlns='jabber:client' type='set'><q xmlns='q'><![CDATA[<raw> & ]]></q></iq>");
        ok("<s:x xmlns:s='urn:s'><s:y/></s:x>");
        // the same local name in different namespaces (none, `xml`, `urn:p`)
        let c = ok("<a xmlns='x' xmlns:p='urn:p' lang='1' xml:lang='en' p:lang='2' p:b='&amp;'/>");
        assert_eq!(c.tag.attr("xml:lang"), Some("en"));
        assert_eq!(
            c.tag.attr("p:b"),
            Some("&"),
            "values decoded in the owned tag"
        );
    }

    #[test]
    fn refuses_each_class_of_bad_input() {
        assert_eq!(err("hello"), "not-well-formed");
        assert_eq!(err("<message xmlns='jabber:client'>"), "not-well-formed");
        assert_eq!(
            err("<message xmlns='jabber:client'></msg>"),
            "not-well-formed"
        );
        assert_eq!(err("<a xmlns='x'/><b xmlns='x'/>"), "not-well-formed");
        assert_eq!(err("<a xmlns='x'>\u{1}</a>"), "not-well-formed");
        assert_eq!(err("<a xmlns='x'>]]></a>"), "not-well-formed");
        assert_eq!(err("<a xmlns='x' b='1' b='2'/>"), "not-well-formed");
        assert_eq!(
            err("<a xmlns='x' xmlns:p='u' xmlns:q='u' p:b='1' q:b='2'/>"),
            "not-well-formed"
        );
        assert_eq!(err("<a xmlns='x'><!-- hi --></a>"), "restricted-xml");
        assert_eq!(err("<?xml version='1.0'?><a xmlns='x'/>"), "restricted-xml");
        assert_eq!(
            err("<!DOCTYPE a [<!ENTITY x 'y'>]><a xmlns='x'>&x;</a>"),
            "restricted-xml"
        );
        assert_eq!(err("<a xmlns='x'>&lol;</a>"), "restricted-xml");
        assert_eq!(err("<a xmlns='x'><?pi?></a>"), "restricted-xml");
        assert_eq!(err("<message/>"), "invalid-namespace");
        assert_eq!(err("<p:a/>"), "invalid-namespace");
        assert_eq!(err("<a xmlns='x' p:b='1'/>"), "invalid-namespace");
        assert_eq!(err("<a xmlns='x'><p:b/></a>"), "invalid-namespace");
        assert_eq!(err("<a xmlns='x' xmlns:p=''/>"), "invalid-namespace");
        // a prefix declared on a sibling is not in scope
        assert_eq!(
            err("<a xmlns='x'><b xmlns:p='u'/><p:c/></a>"),
            "invalid-namespace"
        );
    }

    #[test]
    fn children_are_found_by_the_same_walk() {
        let m = " <b xmlns='h' xmlns:p='u'><a/> <p:c q='1'><d xmlns='z' p:e='2'/></p:c><f xmlns:p='w'><p:g/></f>x<![CDATA[y]]></b>";
        let (c, kids) = check_element_children(m, &Limits::default()).unwrap();
        assert_eq!(c.tag.local(), "b");
        let found: Vec<(&str, &str, Vec<String>)> = kids
            .items
            .iter()
            .map(|k| (&m[k.span.clone()], k.tag.name.as_str(), k.inherited.clone()))
            .collect();
        assert_eq!(
            found,
            vec![
                ("<a/>", "a", vec!["".to_string()]),
                (
                    "<p:c q='1'><d xmlns='z' p:e='2'/></p:c>",
                    "p:c",
                    vec!["p".to_string()]
                ),
                // its own `p` and an unprefixed name: the body's default
                ("<f xmlns:p='w'><p:g/></f>", "f", vec!["".to_string()]),
            ]
        );
        assert_eq!(kids.text_at, Some(m.find(">x<").unwrap() + 1));
        let (_, kids) =
            check_element_children("<b xmlns='h'> <a/> </b>", &Limits::default()).unwrap();
        assert_eq!(kids.text_at, None);
        let (_, kids) =
            check_element_children("<b xmlns='h'><![CDATA[ ]]></b>", &Limits::default()).unwrap();
        assert_eq!(
            kids.text_at,
            Some(13),
            "a CDATA section is never white space"
        );
    }

    #[test]
    fn limits() {
        let l = Limits {
            max_bytes: 64,
            max_depth: 3,
            max_attributes: 2,
        };
        assert!(check_element("<a xmlns='x'><b><c/></b></a>", &l).is_ok());
        assert_eq!(
            check_element("<a xmlns='x'><b><c><d/></c></b></a>", &l)
                .unwrap_err()
                .condition(),
            "policy-violation"
        );
        assert_eq!(
            check_element("<a xmlns='x' b='1' c='2'/>", &l)
                .unwrap_err()
                .condition(),
            "policy-violation"
        );
        let big = format!("<a xmlns='x'>{}</a>", "y".repeat(60));
        assert_eq!(
            check_element(&big, &l).unwrap_err().condition(),
            "policy-violation"
        );
    }
}
