//! Parsing a request `<body/>` (see [`super`]).

use crate::xml::tag::parse_start_tag;
use crate::xml::validate::NS_XML;
use crate::xml::{Limits, XmlError};

use super::payload::{children, Mode};
use super::scan::{body_root, lookup, prologue, trim_ws};
use super::types::{BodyError, BodyType, Request, MAX_RID, NS_XBOSH};

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
    let (text, tag, found) = body_root(bytes, limits)?;
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
    req.payload = children(text, found, &decls, Mode::Request)?;
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
