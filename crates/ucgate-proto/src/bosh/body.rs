//! The `<body/>` wrapper (XEP-0124 §6, XEP-0206 §2): strict parsing of a
//! request, extraction of its payloads as standalone elements, and
//! rendering of responses.
//!
//! # Parsing a request
//!
//! * The whole body is checked with [`check_element`] under the session's
//!   [`Limits`] (its `max_bytes` is the largest body): well-formed, no
//!   comments, processing instructions, DTDs or entities other than the
//!   predefined five (§6), every prefix declared. A leading UTF-8 byte
//!   order mark and an XML declaration (version 1.0, encoding UTF-8 if
//!   given) are accepted: they precede the `<body/>` element, they are not
//!   part of its content.
//! * The root must be `body` in `http://jabber.org/protocol/httpbind`
//!   (any prefix, or the default namespace).
//! * Attributes are matched by expanded name: unprefixed ones are the
//!   XEP-0124 attributes, `xml:lang`, and XEP-0206's `version` / `restart`
//!   in `urn:xmpp:xbosh` under **any** prefix bound to it (clients write
//!   `xmpp:`). Unknown attributes are ignored (the schema's
//!   `anyAttribute`); known ones with a bad value are `bad-request`.
//! * `<body/>` MUST NOT contain character data (§6): only white space is
//!   allowed between payloads.
//!
//! # Payloads are made standalone
//!
//! Each child is returned as its exact bytes, except that the namespace
//! declarations it relies on from `<body>` are re-declared on its start
//! tag, so that the server parses it exactly as the client meant it:
//!
//! * every prefix used by the child (element or attribute names, at any
//!   depth) that the child does not declare itself gets the `xmlns:p`
//!   declaration in scope on `<body>`;
//! * a child in the default namespace inherited from `<body>`: XEP-0206 §2
//!   says stanzas are qualified by `jabber:client`, and notes that many
//!   clients leave `<message/>`, `<presence/>` and `<iq/>` unqualified,
//!   treating `jabber:client` as a subset of the httpbind namespace. Such a
//!   child (only those three names) is re-declared `xmlns='jabber:client'`;
//!   one that declares `xmlns='http://jabber.org/protocol/httpbind'` itself
//!   gets that declaration's value replaced by `jabber:client` (the same
//!   stanza, written out). Any other element in the httpbind namespace
//!   (unqualified, explicitly declared, or any element through a prefix) is
//!   refused (`bad-request`): the XEP-0124 schema allows only `##other`
//!   namespaces as payloads.
//! * a child with no namespace at all is refused.

use crate::xml::tag::{escape, parse_start_tag, StartTag};
use crate::xml::validate::{check_element, NS_XML};
use crate::xml::{Limits, XmlError};

/// The BOSH namespace (XEP-0124).
pub const NS_HTTPBIND: &str = "http://jabber.org/protocol/httpbind";
/// The XMPP-over-BOSH attribute namespace (XEP-0206).
pub const NS_XBOSH: &str = "urn:xmpp:xbosh";
/// The namespace of client stanzas.
pub const NS_CLIENT: &str = "jabber:client";
/// The XMPP streams namespace (`stream:features`, `stream:error`).
pub const NS_STREAMS: &str = crate::xml::splitter::NS_STREAMS;
/// The largest `rid` (2^53 - 1, XEP-0124 §14.1).
pub const MAX_RID: u64 = (1 << 53) - 1;

/// The `type` attribute of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    /// `type='terminate'`: the client ends the session (§13).
    Terminate,
    /// `type='error'`: the client reports a binding error (§17.2 "the
    /// client MAY report binding errors"); treated as a normal request.
    Error,
}

/// A parsed request `<body/>`. Every XEP-0124 / XEP-0206 request attribute
/// has a field; absent attributes are `None` (`false` for `restart`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `sid`: absent exactly on the session creation request.
    pub sid: Option<String>,
    /// `rid`, 1 ..= 2^53-1 (required on every request).
    pub rid: u64,
    /// `ack`: on creation, the client will acknowledge responses (set to
    /// 1); later, the highest `rid` whose response (and all before it) the
    /// client has received.
    pub ack: Option<u64>,
    /// `to`: the target domain.
    pub to: Option<String>,
    /// `xml:lang`.
    pub lang: Option<String>,
    /// `ver`: the highest BOSH version the client supports (major, minor).
    pub ver: Option<(u32, u32)>,
    /// `wait` in seconds.
    pub wait: Option<u64>,
    /// `hold`.
    pub hold: Option<u32>,
    /// `content`: the Content-Type of every response of the session.
    pub content: Option<String>,
    /// `from`: the client's identity, forwarded to the server.
    pub from: Option<String>,
    /// `route`: `proto:host:port` (see [`Route`]).
    pub route: Option<String>,
    /// `secure` (removed in XEP-0124 1.8, still in XEP-0206 examples).
    pub secure: Option<bool>,
    /// XEP-0206 `xmpp:version` (major, minor).
    pub xmpp_version: Option<(u32, u32)>,
    /// XEP-0206 `xmpp:restart='true'`.
    pub restart: bool,
    /// `type`.
    pub type_: Option<BodyType>,
    /// `pause` in seconds.
    pub pause: Option<u64>,
    /// `key` (XEP-0124 §15), as sent.
    pub key: Option<String>,
    /// `newkey` (XEP-0124 §15), as sent.
    pub newkey: Option<String>,
    /// `stream` (XEP-0124 §16; multiple streams are not supported, see
    /// the session).
    pub stream: Option<String>,
    /// The payloads: each child element's bytes, made standalone
    /// (namespace-complete) as described in the module documentation.
    pub payload: Vec<Vec<u8>>,
}

impl Request {
    /// A request with this `rid` and nothing else (for building requests
    /// in code and tests).
    pub fn new(rid: u64) -> Request {
        Request {
            sid: None,
            rid,
            ack: None,
            to: None,
            lang: None,
            ver: None,
            wait: None,
            hold: None,
            content: None,
            from: None,
            route: None,
            secure: None,
            xmpp_version: None,
            restart: false,
            type_: None,
            pause: None,
            key: None,
            newkey: None,
            stream: None,
            payload: Vec::new(),
        }
    }

    /// `type='terminate'`.
    pub fn is_terminate(&self) -> bool {
        self.type_ == Some(BodyType::Terminate)
    }
}

/// A `route` attribute: `proto:host:port` (XEP-0124 §7.1; not a URI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The protocol (`xmpp`).
    pub proto: String,
    /// The host name or address (an IPv6 address without its brackets).
    pub host: String,
    /// The port.
    pub port: u16,
}

impl Route {
    /// Parses `proto:host:port`; `host` may be a bracketed IPv6 address.
    pub fn parse(s: &str) -> Option<Route> {
        let (proto, rest) = s.split_once(':')?;
        let (host, port) = rest.rsplit_once(':')?;
        let host = match host.strip_prefix('[') {
            Some(h) => h.strip_suffix(']')?,
            None if host.contains(':') => return None,
            None => host,
        };
        let proto_ok = !proto.is_empty()
            && proto
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'));
        let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
        if !port_digits_only(s) || !proto_ok || !host_ok {
            return None;
        }
        Some(Route {
            proto: proto.to_string(),
            host: host.to_string(),
            port,
        })
    }
}

fn port_digits_only(s: &str) -> bool {
    s.rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Why a request body was refused. Every kind is answered with
/// `bad-request`, except limits (`policy-violation`): see
/// `BodyError::condition` (in `condition.rs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The XML itself (syntax, restricted XML, namespaces, limits).
    #[error("{0}")]
    Xml(XmlError),
    /// A bad XML declaration before `<body>`.
    #[error("bad XML declaration: {0}")]
    Declaration(&'static str),
    /// The root is not `<body/>` in the httpbind namespace.
    #[error("the root element is not <body/> in the httpbind namespace")]
    NotBody,
    /// Character data directly inside `<body/>` (§6).
    #[error("character data directly inside <body/>")]
    Text,
    /// No `rid` attribute.
    #[error("the rid attribute is missing")]
    MissingRid,
    /// A known attribute with a bad value.
    #[error("bad `{0}` attribute")]
    Attribute(&'static str),
    /// A payload in a namespace that cannot be forwarded.
    #[error("payload namespace: {0}")]
    Payload(&'static str),
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn trim_ws(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

/// Strips a BOM and an XML declaration; checks UTF-8.
fn prologue(bytes: &[u8]) -> Result<&str, BodyError> {
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

fn lookup<'a>(decls: &'a [(String, String)], prefix: &str) -> Option<&'a str> {
    if prefix == "xml" {
        return Some(NS_XML);
    }
    decls
        .iter()
        .rev()
        .find(|(p, _)| p == prefix)
        .map(|(_, u)| u.as_str())
}

/// An XML Schema `positiveInteger` / `unsignedInt` as written (digits only).
fn parse_uint(v: &str) -> Option<u64> {
    if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (maj, min) = v.split_once('.')?;
    let ok = |s: &str| !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit());
    if !ok(maj) || !ok(min) {
        return None;
    }
    Some((maj.parse().ok()?, min.parse().ok()?))
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// A Content-Type value: visible ASCII and spaces, at most 256 bytes.
fn valid_content_type(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 256
        && v.bytes()
            .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
        && v.contains('/')
}

/// Parses a request body strictly (see the module documentation).
pub fn parse_request(bytes: &[u8], limits: &Limits) -> Result<Request, BodyError> {
    if bytes.len() > limits.max_bytes {
        return Err(BodyError::Xml(XmlError::Limit(
            "body larger than the maximum",
        )));
    }
    let text = prologue(bytes)?;
    let checked = check_element(text, limits).map_err(BodyError::Xml)?;
    let tag = checked.tag;
    if tag.local() != "body" || checked.ns != NS_HTTPBIND {
        return Err(BodyError::NotBody);
    }
    let decls = tag.ns_decls();
    let mut req = Request::new(0);
    let mut rid = None;
    for a in &tag.attrs {
        if a.name == "xmlns" || a.name.starts_with("xmlns:") {
            continue;
        }
        let (ns, local) = match a.name.split_once(':') {
            // check_element has verified that every prefix is declared
            Some((p, l)) => (lookup(&decls, p).unwrap_or_default(), l),
            None => ("", a.name.as_str()),
        };
        let v = a.value.as_str();
        match (ns, local) {
            ("", "sid") => req.sid = Some(v.to_string()),
            ("", "rid") => {
                rid = Some(
                    parse_uint(v)
                        .filter(|r| (1..=MAX_RID).contains(r))
                        .ok_or(BodyError::Attribute("rid"))?,
                )
            }
            ("", "ack") => {
                req.ack = Some(
                    parse_uint(v)
                        .filter(|r| (1..=MAX_RID).contains(r))
                        .ok_or(BodyError::Attribute("ack"))?,
                )
            }
            ("", "to") => req.to = Some(v.to_string()),
            ("", "ver") => req.ver = Some(parse_version(v).ok_or(BodyError::Attribute("ver"))?),
            ("", "wait") => req.wait = Some(parse_uint(v).ok_or(BodyError::Attribute("wait"))?),
            ("", "hold") => {
                req.hold = Some(
                    parse_uint(v)
                        .ok_or(BodyError::Attribute("hold"))?
                        .min(u32::MAX as u64) as u32,
                )
            }
            ("", "content") => {
                if !valid_content_type(v) {
                    return Err(BodyError::Attribute("content"));
                }
                req.content = Some(v.to_string())
            }
            ("", "from") => req.from = Some(v.to_string()),
            ("", "route") => req.route = Some(v.to_string()),
            ("", "secure") => {
                req.secure = Some(parse_bool(v).ok_or(BodyError::Attribute("secure"))?)
            }
            ("", "type") => {
                req.type_ = Some(match v {
                    "terminate" => BodyType::Terminate,
                    "error" => BodyType::Error,
                    _ => return Err(BodyError::Attribute("type")),
                })
            }
            ("", "pause") => req.pause = Some(parse_uint(v).ok_or(BodyError::Attribute("pause"))?),
            ("", "key") => req.key = Some(v.to_string()),
            ("", "newkey") => req.newkey = Some(v.to_string()),
            ("", "stream") => req.stream = Some(v.to_string()),
            (NS_XML, "lang") => req.lang = Some(v.to_string()),
            (NS_XBOSH, "version") => {
                req.xmpp_version =
                    Some(parse_version(v).ok_or(BodyError::Attribute("xmpp:version"))?)
            }
            (NS_XBOSH, "restart") => {
                req.restart = parse_bool(v).ok_or(BodyError::Attribute("xmpp:restart"))?
            }
            _ => {}
        }
    }
    req.rid = rid.ok_or(BodyError::MissingRid)?;
    let s = trim_ws(text);
    req.payload = children(s, &tag, &decls, Mode::Request)?;
    Ok(req)
}

/// The `sid` of a body that may not parse (so that a malformed request for
/// a known session can still end that session with `bad-request`).
pub fn peek_sid(bytes: &[u8]) -> Option<String> {
    let text = prologue(bytes).ok()?;
    let s = trim_ws(text);
    if !s.starts_with('<') {
        return None;
    }
    let tag = parse_start_tag(s.as_bytes()).ok().flatten()?;
    tag.attr("sid").map(str::to_string)
}

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
    let text = prologue(bytes)?;
    let checked = check_element(text, limits).map_err(BodyError::Xml)?;
    let tag = checked.tag;
    if tag.local() != "body" || checked.ns != NS_HTTPBIND {
        return Err(BodyError::NotBody);
    }
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
    let payload = children(trim_ws(text), &tag, &decls, Mode::Response)?;
    Ok(Response { attrs, payload })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Client payloads: the httpbind namespace is mapped or refused.
    Request,
    /// Server payloads and `<uri/>`: kept as they are.
    Response,
}

/// The direct children of the body `s` (trimmed, starting with `tag`).
fn children(
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

#[cfg(test)]
#[path = "body_tests.rs"]
mod tests;
