//! Who the client is behind HTTP reverse proxies: the `Forwarded` header
//! (RFC 7239) and the de-facto `X-Forwarded-For`, `X-Forwarded-Proto` and
//! `X-Forwarded-Host`, read only when the connection's peer is a trusted
//! proxy.
//!
//! [`resolve`] takes the peer's address, the trusted set and the header
//! lines, and answers with the client's address and the scheme and host it
//! used. The rules:
//!
//! * The headers are read only when `peer` is in the trusted set; from any
//!   other peer they are ignored ([`Outcome::Ignored`]): anyone can write
//!   them.
//! * `Forwarded` wins when present; the `X-Forwarded-*` headers are then
//!   not read at all (a proxy that writes `Forwarded` is trusted to write
//!   the whole chain there, and mixing two chains would let a client's own
//!   `X-Forwarded-For` through).
//! * The chain is walked from the right (the hop nearest to the gateway):
//!   an address that is itself a trusted proxy is skipped; the first one
//!   that is not is the client. This is nginx's `real_ip_recursive on`. If
//!   every address is trusted, the leftmost is the client. An `unknown` or
//!   obfuscated identifier (or an element without `for`) stops the walk:
//!   the client is then the last trusted hop, whose address is known.
//! * The scheme and host are those of the element where the walk stopped
//!   (what the client itself used toward the first trusted proxy). For the
//!   `X-Forwarded-Proto` / `-Host` headers: a single value is taken as is
//!   (the nearest proxy sets it); a list with as many entries as
//!   `X-Forwarded-For` is read at the client's position; any other list is
//!   ambiguous and ignored.
//! * A malformed header from a trusted proxy is [`Outcome::Invalid`]: the
//!   caller keeps the peer's own address and says so.

use core::net::{IpAddr, Ipv6Addr};

use crate::netset::NetSet;
use crate::origin::split_host_port;

/// A node identifier (RFC 7239 §6): who a hop was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// An IP address, with its port when given (an obfuscated port is
    /// dropped).
    Ip(IpAddr, Option<u16>),
    /// `unknown`.
    Unknown,
    /// An obfuscated identifier (`_hidden`).
    Obfuscated,
}

/// One element of the chain: what one proxy saw of the hop before it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hop {
    /// `for`: who connected to that proxy.
    pub node: Option<Node>,
    /// `proto`: the scheme used toward that proxy, lower-case.
    pub proto: Option<String>,
    /// `host`: the `Host` that proxy received.
    pub host: Option<String>,
}

/// Which headers described the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `Forwarded`.
    Forwarded,
    /// `X-Forwarded-For` / `-Proto` / `-Host`.
    XForwarded,
}

impl Source {
    /// The header's name, for logs.
    pub fn header(self) -> &'static str {
        match self {
            Source::Forwarded => "Forwarded",
            Source::XForwarded => "X-Forwarded-*",
        }
    }
}

/// Why a header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardedError {
    /// Not `name=value` pairs separated by `;` and `,`.
    #[error("not a list of name=value pairs (RFC 7239 §4)")]
    Syntax,
    /// A quoted string without its closing quote.
    #[error("a quoted string is not closed")]
    Unclosed,
    /// The same parameter twice in one element.
    #[error("the parameter `{0}` appears twice in one element")]
    Duplicate(&'static str),
    /// A `for` value (or an `X-Forwarded-For` entry) that is not a node.
    #[error("`{0}` is not an IP address (IPv6 in brackets), `unknown` or an obfuscated `_name`")]
    Node(String),
    /// A `proto` value that is not a URI scheme.
    #[error("`{0}` is not a URI scheme")]
    Proto(String),
    /// A `host` value that is not `host[:port]`.
    #[error("`{0}` is not a host with an optional port")]
    Host(String),
}

/// The header lines of one request, each header's lines in order.
#[derive(Debug, Clone, Default)]
pub struct Headers<'a> {
    /// `Forwarded`.
    pub forwarded: Vec<&'a str>,
    /// `X-Forwarded-For`.
    pub x_forwarded_for: Vec<&'a str>,
    /// `X-Forwarded-Proto`.
    pub x_forwarded_proto: Vec<&'a str>,
    /// `X-Forwarded-Host`.
    pub x_forwarded_host: Vec<&'a str>,
}

/// The client as the trusted proxies describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The client's address.
    pub ip: IpAddr,
    /// Its port, when the header gave one.
    pub port: Option<u16>,
    /// The scheme it used (`https`, `http`, ...), when given.
    pub proto: Option<String>,
    /// The `Host` it sent, when given.
    pub host: Option<String>,
    /// Which headers said so.
    pub source: Source,
}

impl Client {
    /// Whether the client used TLS: `Some(true)` for `https`/`wss`,
    /// `Some(false)` for `http`/`ws`, `None` for no or another scheme.
    pub fn secure(&self) -> Option<bool> {
        match self.proto.as_deref() {
            Some("https" | "wss") => Some(true),
            Some("http" | "ws") => Some(false),
            _ => None,
        }
    }
}

/// What the headers say about the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The peer is not a trusted proxy: its headers mean nothing.
    Ignored,
    /// A trusted peer that sent none of the headers.
    Absent,
    /// The client found.
    Found(Client),
    /// A trusted peer sent a malformed header.
    Invalid(Source, ForwardedError),
}

/// Finds the client of a request that came from `peer` (see the module
/// documentation for the rules). Only the part of the chain right of the
/// client is parsed: what a client wrote itself, left of its own address,
/// is never looked at, so it can neither fail the request nor hide the
/// client behind the proxy's address.
pub fn resolve(peer: IpAddr, trusted: &NetSet, h: &Headers<'_>) -> Outcome {
    if !trusted.contains(peer) {
        return Outcome::Ignored;
    }
    let present = |lines: &[&str]| lines.iter().any(|l| !trim_ows(l).is_empty());
    let found = if present(&h.forwarded) {
        from_forwarded(peer, trusted, &h.forwarded)
    } else if present(&h.x_forwarded_for)
        || present(&h.x_forwarded_proto)
        || present(&h.x_forwarded_host)
    {
        from_x_forwarded(peer, trusted, h)
    } else {
        return Outcome::Absent;
    };
    match found {
        Ok(Some(c)) => Outcome::Found(c),
        Ok(None) => Outcome::Absent,
        Err((source, e)) => Outcome::Invalid(source, e),
    }
}

type Found = Result<Option<Client>, (Source, ForwardedError)>;

fn from_forwarded(peer: IpAddr, trusted: &NetSet, lines: &[&str]) -> Found {
    let err = |e| (Source::Forwarded, e);
    let elements = forwarded_elements(lines).map_err(err)?;
    if elements.is_empty() {
        return Ok(None);
    }
    let (ip, port, i) = walk(peer, trusted, elements.len(), |i| {
        forwarded_element(elements[i]).map(|h| h.node)
    })
    .map_err(err)?;
    let at = forwarded_element(elements[i]).map_err(err)?;
    Ok(Some(Client {
        ip,
        port,
        proto: at.proto,
        host: at.host,
        source: Source::Forwarded,
    }))
}

fn from_x_forwarded<'a>(peer: IpAddr, trusted: &NetSet, h: &Headers<'a>) -> Found {
    let err = |e| (Source::XForwarded, e);
    let fors = entries(&h.x_forwarded_for);
    let (ip, port, i) = walk(peer, trusted, fors.len(), |i| {
        xff_node(fors[i])
            .map(Some)
            .ok_or_else(|| ForwardedError::Node(fors[i].to_string()))
    })
    .map_err(err)?;
    // One value for every hop, or one per hop; any other count is ignored.
    let hops = fors.len().max(1);
    let pick = |lines: &[&'a str]| -> Option<&'a str> {
        let values = entries(lines);
        match values.len() {
            1 => Some(values[0]),
            k if k == hops => Some(values[i]),
            _ => None,
        }
    };
    let proto = pick(&h.x_forwarded_proto)
        .map(proto)
        .transpose()
        .map_err(err)?;
    let host = pick(&h.x_forwarded_host)
        .map(host)
        .transpose()
        .map_err(err)?;
    Ok(Some(Client {
        ip,
        port,
        proto,
        host,
        source: Source::XForwarded,
    }))
}

/// The walk from the right over `n` hops, `node(i)` parsing the `i`th:
/// the client's address and port, and the index of the hop where the walk
/// stopped (0 when there is none).
fn walk(
    peer: IpAddr,
    trusted: &NetSet,
    n: usize,
    node: impl Fn(usize) -> Result<Option<Node>, ForwardedError>,
) -> Result<(IpAddr, Option<u16>, usize), ForwardedError> {
    let (mut ip, mut port, mut at) = (peer.to_canonical(), None, 0);
    for i in (0..n).rev() {
        at = i;
        match node(i)? {
            Some(Node::Ip(a, p)) => {
                (ip, port) = (a.to_canonical(), p);
                if !trusted.contains(a) {
                    break;
                }
            }
            _ => break,
        }
    }
    Ok((ip, port, at))
}

/// Splits on `sep` outside quoted strings (a `\` inside quotes escapes the
/// next character).
fn split_unquoted(s: &str, sep: u8) -> Result<Vec<&str>, ForwardedError> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, b) in s.bytes().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == sep && !quoted {
            out.push(&s[start..i]);
            start = i + 1;
        }
    }
    if quoted || escaped {
        return Err(ForwardedError::Unclosed);
    }
    out.push(&s[start..]);
    Ok(out)
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// A `token` or a `quoted-string`, unquoted.
fn value(v: &str) -> Result<String, ForwardedError> {
    if let Some(inner) = v.strip_prefix('"') {
        let inner = inner.strip_suffix('"').ok_or(ForwardedError::Syntax)?;
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            let c = match c {
                '\\' => chars.next().ok_or(ForwardedError::Syntax)?,
                '"' => return Err(ForwardedError::Syntax),
                c => c,
            };
            if c.is_control() && c != '\t' {
                return Err(ForwardedError::Syntax);
            }
            out.push(c);
        }
        Ok(out)
    } else if !v.is_empty() && v.chars().all(is_tchar) {
        Ok(v.to_string())
    } else {
        Err(ForwardedError::Syntax)
    }
}

/// The elements of the `Forwarded` lines, left to right, not yet parsed.
fn forwarded_elements<'a>(lines: &[&'a str]) -> Result<Vec<&'a str>, ForwardedError> {
    let mut out = Vec::new();
    for line in lines {
        for element in split_unquoted(line, b',')? {
            let element = trim_ows(element);
            // RFC 9110 §5.6.1: empty list elements are allowed.
            if !element.is_empty() {
                out.push(element);
            }
        }
    }
    Ok(out)
}

/// The `Forwarded` lines as one list of hops, left to right.
pub fn parse_forwarded(lines: &[&str]) -> Result<Vec<Hop>, ForwardedError> {
    forwarded_elements(lines)?
        .into_iter()
        .map(forwarded_element)
        .collect()
}

fn forwarded_element(element: &str) -> Result<Hop, ForwardedError> {
    let mut hop = Hop::default();
    let mut seen = [false; 4];
    for pair in split_unquoted(element, b';')? {
        let pair = trim_ows(pair);
        if pair.is_empty() {
            continue;
        }
        let (name, v) = pair.split_once('=').ok_or(ForwardedError::Syntax)?;
        if name.is_empty() || !name.chars().all(is_tchar) {
            return Err(ForwardedError::Syntax);
        }
        let v = value(v)?;
        let (i, key) = match name.to_ascii_lowercase().as_str() {
            "for" => (0, "for"),
            "proto" => (1, "proto"),
            "host" => (2, "host"),
            "by" => (3, "by"),
            _ => continue, // extensions (RFC 7239 §5.5)
        };
        if core::mem::replace(&mut seen[i], true) {
            return Err(ForwardedError::Duplicate(key));
        }
        match i {
            0 => hop.node = Some(node(&v).ok_or(ForwardedError::Node(v))?),
            1 => hop.proto = Some(proto(&v)?),
            2 => hop.host = Some(host(&v)?),
            _ => {}
        }
    }
    Ok(hop)
}

/// RFC 7239 §6: `IPv4`, `[IPv6]`, `unknown` or `_obfuscated`, each with an
/// optional `:port` or `:_obfport`.
fn node(v: &str) -> Option<Node> {
    let obf = |s: &str| {
        s.len() > 1
            && s.starts_with('_')
            && s[1..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    };
    let (name, port) = if let Some(rest) = v.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        let ip: Ipv6Addr = ip.parse().ok()?;
        (Ok(IpAddr::V6(ip)), port)
    } else {
        let (name, port) = match v.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (v, None),
        };
        let ip = match name.parse::<core::net::Ipv4Addr>() {
            Ok(a) => Ok(IpAddr::V4(a)),
            Err(_) if name.eq_ignore_ascii_case("unknown") => Err(Node::Unknown),
            Err(_) if obf(name) => Err(Node::Obfuscated),
            Err(_) => return None,
        };
        (ip, port)
    };
    let port = match port {
        None => None,
        Some(p) if obf(p) => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some(match name {
        Ok(ip) => Node::Ip(ip, port),
        Err(other) => other,
    })
}

/// A URI scheme (RFC 3986 §3.1), lower-cased.
fn proto(v: &str) -> Result<String, ForwardedError> {
    let ok = v.starts_with(|c: char| c.is_ascii_alphabetic())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    ok.then(|| v.to_ascii_lowercase())
        .ok_or_else(|| ForwardedError::Proto(v.to_string()))
}

/// `host[:port]`, as the `Host` header carries it.
fn host(v: &str) -> Result<String, ForwardedError> {
    split_host_port(v)
        .map(|_| v.to_string())
        .ok_or_else(|| ForwardedError::Host(v.to_string()))
}

/// Comma-separated entries of header lines, OWS trimmed, empty ones dropped.
fn entries<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    lines
        .iter()
        .flat_map(|l| l.split(','))
        .map(trim_ows)
        .filter(|e| !e.is_empty())
        .collect()
}

/// An `X-Forwarded-For` entry: an address, `[IPv6]`, either with a port,
/// or `unknown`.
fn xff_node(e: &str) -> Option<Node> {
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Some(Node::Ip(ip, None));
    }
    if e.eq_ignore_ascii_case("unknown") {
        return Some(Node::Unknown);
    }
    match node(e)? {
        n @ Node::Ip(..) => Some(n),
        _ => None,
    }
}

/// The `X-Forwarded-For` lines as one list of nodes, left to right.
pub fn parse_x_forwarded_for(lines: &[&str]) -> Result<Vec<Node>, ForwardedError> {
    entries(lines)
        .into_iter()
        .map(|e| xff_node(e).ok_or_else(|| ForwardedError::Node(e.to_string())))
        .collect()
}

#[cfg(test)]
#[path = "forwarded_tests.rs"]
mod tests;
