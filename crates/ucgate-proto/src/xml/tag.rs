//! Start-tag parsing and XML escaping.
//!
//! `parse_start_tag` reads one start tag (`<name attr='v' …>` or `…/>`) from
//! the beginning of a byte slice and returns its name, attributes (values
//! decoded), whether it is self-closing and its length in bytes.

use std::borrow::Cow;

use super::XmlError;

/// One attribute, value entity-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// Qualified name as written (`xmlns:stream`, `xml:lang`, `to`).
    pub name: String,
    /// Decoded value.
    pub value: String,
}

/// A parsed start tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartTag {
    /// Qualified name as written.
    pub name: String,
    /// Attributes in order.
    pub attrs: Vec<Attr>,
    /// `<x/>`.
    pub self_closing: bool,
    /// Bytes consumed, `<` through `>`.
    pub len: usize,
}

impl StartTag {
    /// The value of an attribute by qualified name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_str())
    }

    /// The prefix of the name (`stream` for `stream:features`).
    pub fn prefix(&self) -> Option<&str> {
        self.name.split_once(':').map(|(p, _)| p)
    }

    /// The namespace declarations on this tag: `(prefix, uri)`, the default
    /// namespace with an empty prefix.
    pub fn ns_decls(&self) -> Vec<(String, String)> {
        self.attrs
            .iter()
            .filter_map(|a| {
                if a.name == "xmlns" {
                    Some((String::new(), a.value.clone()))
                } else {
                    a.name
                        .strip_prefix("xmlns:")
                        .map(|p| (p.to_string(), a.value.clone()))
                }
            })
            .collect()
    }

    /// The local part of the name.
    pub fn local(&self) -> &str {
        self.name.split_once(':').map_or(&self.name, |(_, l)| l)
    }
}

/// A start tag borrowed from the bytes it was read from: names are slices
/// of them, and so are values without a reference to decode. A walk over a
/// whole element ([`crate::xml::validate`]) reads every tag inside it this
/// way, without an allocation per name and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTag<'a> {
    /// Qualified name as written.
    pub name: &'a str,
    /// Attributes in order.
    pub attrs: Vec<RawAttr<'a>>,
    /// `<x/>`.
    pub self_closing: bool,
    /// Bytes consumed, `<` through `>`.
    pub len: usize,
}

/// One attribute of a [`RawTag`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAttr<'a> {
    /// Qualified name as written.
    pub name: &'a str,
    /// Decoded value.
    pub value: Cow<'a, str>,
}

impl RawTag<'_> {
    /// The prefix of the name (`stream` for `stream:features`).
    pub fn prefix(&self) -> Option<&str> {
        self.name.split_once(':').map(|(p, _)| p)
    }

    /// The owned [`StartTag`].
    pub fn to_start_tag(&self) -> StartTag {
        self.clone().into_start_tag()
    }

    /// The owned [`StartTag`], keeping the values already decoded.
    pub fn into_start_tag(self) -> StartTag {
        StartTag {
            name: self.name.to_string(),
            attrs: self
                .attrs
                .into_iter()
                .map(|a| Attr {
                    name: a.name.to_string(),
                    value: a.value.into_owned(),
                })
                .collect(),
            self_closing: self.self_closing,
            len: self.len,
        }
    }
}

/// One complete element: its bytes and its top-level start tag, parsed by
/// whoever read the element, so that nothing downstream parses it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedElement {
    /// The element's bytes.
    pub bytes: Vec<u8>,
    /// Its top-level start tag (`tag.len` bytes at the start of `bytes`).
    pub tag: StartTag,
}

impl ParsedElement {
    /// Parses the start tag of an element built in code (by the gateway or
    /// a test); elements read from a peer come already parsed.
    pub fn parse(bytes: impl Into<Vec<u8>>) -> Result<ParsedElement, XmlError> {
        let bytes = bytes.into();
        if bytes.first() != Some(&b'<') {
            return Err(XmlError::NotWellFormed("an element must start with `<`"));
        }
        let tag =
            parse_start_tag(&bytes)?.ok_or(XmlError::NotWellFormed("incomplete start tag"))?;
        Ok(ParsedElement { bytes, tag })
    }
}

impl std::ops::Deref for ParsedElement {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl AsRef<[u8]> for ParsedElement {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl PartialEq<Vec<u8>> for ParsedElement {
    fn eq(&self, other: &Vec<u8>) -> bool {
        &self.bytes == other
    }
}

impl PartialEq<ParsedElement> for Vec<u8> {
    fn eq(&self, other: &ParsedElement) -> bool {
        self == &other.bytes
    }
}

impl From<ParsedElement> for Vec<u8> {
    fn from(e: ParsedElement) -> Vec<u8> {
        e.bytes
    }
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == ':' || (!c.is_ascii() && !c.is_whitespace())
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit() || c == '-' || c == '.' || c == '\u{B7}'
}

/// True for an XML Name with at most one colon, not at either end (a QName).
pub fn is_qname(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if !is_name_start(first) || first == ':' {
        return false;
    }
    if !chars.all(is_name_char) {
        return false;
    }
    let colons = s.matches(':').count();
    colons == 0 || (colons == 1 && !s.ends_with(':'))
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Decodes the five predefined entities and character references.
/// Any other entity is a restricted-XML error (RFC 6120 §11.1).
pub fn unescape(s: &str) -> Result<String, XmlError> {
    unescape_borrowed(s).map(Cow::into_owned)
}

/// [`unescape`], borrowing `s` when it holds no reference to decode.
pub fn unescape_borrowed(s: &str) -> Result<Cow<'_, str>, XmlError> {
    if !s.contains('&') {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after
            .find(';')
            .ok_or(XmlError::NotWellFormed("unterminated entity reference"))?;
        let name = &after[..end];
        out.push(decode_entity(name)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// Decodes one entity name (between `&` and `;`).
pub fn decode_entity(name: &str) -> Result<char, XmlError> {
    let c = match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => {
            let code = if let Some(hex) = name.strip_prefix("#x") {
                u32::from_str_radix(hex, 16).ok()
            } else if let Some(dec) = name.strip_prefix('#') {
                dec.parse::<u32>().ok()
            } else if is_qname(name) {
                return Err(XmlError::Restricted(
                    "entity references other than the predefined five",
                ));
            } else {
                return Err(XmlError::NotWellFormed("bad entity reference"));
            };
            let c = code
                .and_then(char::from_u32)
                .ok_or(XmlError::NotWellFormed("bad character reference"))?;
            if !is_xml_char(c) {
                return Err(XmlError::NotWellFormed(
                    "character reference to a character XML forbids",
                ));
            }
            c
        }
    };
    Ok(c)
}

/// The XML 1.0 `Char` production.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Escapes text for use in an attribute value or character data.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
thread_local! {
    static PARSES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many start tags this thread has parsed (test builds only): the
/// single-parse tests count the parses one stanza costs on each path.
#[cfg(test)]
pub(crate) fn parses() -> usize {
    PARSES.with(|n| n.get())
}

/// Parses the start tag at the beginning of `input` (which must start with
/// `<` followed by a name). Returns `Ok(None)` if the tag is not complete yet.
pub fn parse_start_tag(input: &[u8]) -> Result<Option<StartTag>, XmlError> {
    Ok(parse_raw_tag(input)?.map(RawTag::into_start_tag))
}

/// [`parse_start_tag`], borrowing from `input`: names are slices of it, and
/// so are values without a reference to decode.
pub fn parse_raw_tag(input: &[u8]) -> Result<Option<RawTag<'_>>, XmlError> {
    debug_assert!(input.first() == Some(&b'<'));
    #[cfg(test)]
    PARSES.with(|n| n.set(n.get() + 1));
    // Find the end of the tag, respecting quotes.
    let mut quote: Option<u8> = None;
    let mut end = None;
    for (i, &b) in input.iter().enumerate().skip(1) {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {
                if b == b'<' {
                    return Err(XmlError::NotWellFormed("`<` in an attribute value"));
                }
            }
            None => match b {
                b'"' | b'\'' => quote = Some(b),
                b'>' => {
                    end = Some(i);
                    break;
                }
                b'<' => return Err(XmlError::NotWellFormed("`<` inside a tag")),
                _ => {}
            },
        }
    }
    let Some(end) = end else {
        return Ok(None);
    };
    let inner = std::str::from_utf8(&input[1..end])
        .map_err(|_| XmlError::NotWellFormed("invalid UTF-8"))?;
    let (inner, self_closing) = match inner.strip_suffix('/') {
        Some(i) => (i, true),
        None => (inner, false),
    };
    let bytes = inner.as_bytes();
    let name_end = bytes.iter().position(|b| is_ws(*b)).unwrap_or(bytes.len());
    let name = &inner[..name_end];
    if !is_qname(name) {
        return Err(XmlError::NotWellFormed("bad element name"));
    }
    let mut attrs = Vec::new();
    let mut i = name_end;
    loop {
        let ws_start = i;
        while i < bytes.len() && is_ws(bytes[i]) {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        if i == ws_start {
            return Err(XmlError::NotWellFormed(
                "attributes must be separated by white space",
            ));
        }
        let n_start = i;
        while i < bytes.len() && bytes[i] != b'=' && !is_ws(bytes[i]) {
            i += 1;
        }
        let aname = &inner[n_start..i];
        if !is_qname(aname) {
            return Err(XmlError::NotWellFormed("bad attribute name"));
        }
        while i < bytes.len() && is_ws(bytes[i]) {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            return Err(XmlError::NotWellFormed("attribute without a value"));
        }
        i += 1;
        while i < bytes.len() && is_ws(bytes[i]) {
            i += 1;
        }
        let q = *bytes
            .get(i)
            .ok_or(XmlError::NotWellFormed("attribute without a value"))?;
        if q != b'"' && q != b'\'' {
            return Err(XmlError::NotWellFormed("attribute value not quoted"));
        }
        let v_start = i + 1;
        let v_end = inner[v_start..]
            .find(q as char)
            .map(|e| v_start + e)
            .ok_or(XmlError::NotWellFormed("unterminated attribute value"))?;
        let raw = &inner[v_start..v_end];
        if raw.chars().any(|c| !is_xml_char(c)) {
            return Err(XmlError::NotWellFormed(
                "character XML forbids in an attribute value",
            ));
        }
        if attrs.iter().any(|a: &RawAttr<'_>| a.name == aname) {
            return Err(XmlError::NotWellFormed("duplicate attribute"));
        }
        attrs.push(RawAttr {
            name: aname,
            value: unescape_borrowed(raw)?,
        });
        i = v_end + 1;
    }
    Ok(Some(RawTag {
        name,
        attrs,
        self_closing,
        len: end + 1,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_tags_borrow_what_needs_no_decoding() {
        let input = b"<a:b x='plain' y=\"a&amp;b\"/>rest";
        let t = parse_raw_tag(input).unwrap().unwrap();
        assert_eq!((t.name, t.self_closing, t.len), ("a:b", true, 28));
        assert!(matches!(t.attrs[0].value, Cow::Borrowed("plain")));
        assert!(matches!(&t.attrs[1].value, Cow::Owned(v) if v == "a&b"));
        // the owned tag is the same as parse_start_tag's
        assert_eq!(t.to_start_tag(), parse_start_tag(input).unwrap().unwrap());
        // the same refusals
        assert!(parse_raw_tag(b"<a x='1' x='2'>").is_err());
        assert!(parse_raw_tag(b"<a x='&bogus;'>").is_err());
        assert_eq!(parse_raw_tag(b"<a x='1'").unwrap(), None);
    }

    #[test]
    fn parses_tags() {
        let t = parse_start_tag(b"<stream:stream xmlns='jabber:client' to=\"a&amp;b\" >rest")
            .unwrap()
            .unwrap();
        assert_eq!(t.name, "stream:stream");
        assert_eq!(t.prefix(), Some("stream"));
        assert_eq!(t.local(), "stream");
        assert_eq!(t.attr("xmlns"), Some("jabber:client"));
        assert_eq!(t.attr("to"), Some("a&b"));
        assert!(!t.self_closing);
        assert_eq!(t.len, 51);
        let t = parse_start_tag(b"<open a='>'/>").unwrap().unwrap();
        assert!(t.self_closing);
        assert_eq!(t.attr("a"), Some(">"));
        assert_eq!(parse_start_tag(b"<open a='x").unwrap(), None);
    }

    #[test]
    fn refuses_bad_tags() {
        for bad in [
            &b"<1a>"[..],
            b"<a b>",
            b"<a b=c>",
            b"<a b='1' b='2'>",
            b"<a b='1'c='2'>",
            b"<a b='&foo;'>",
            b"<a b='&#0;'>",
            b"<a b='<'>",
            b"<a:>",
            b"<a:b:c>",
        ] {
            assert!(
                parse_start_tag(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            parse_start_tag(b"<a b='&foo;'>").unwrap_err(),
            XmlError::Restricted("entity references other than the predefined five")
        );
    }

    #[test]
    fn escaping_round_trips() {
        let s = "a<b>&'\"é";
        assert_eq!(unescape(&escape(s)).unwrap(), s);
        assert_eq!(unescape("&#x41;&#66;").unwrap(), "AB");
        assert!(unescape("&amp").is_err());
    }
}
