//! A byte-preserving SIP message scanner and editor (RFC 3261 §7, §20).
//!
//! [`parse`] finds the start line, the header lines and the body without
//! copying or re-encoding anything: every header is a set of byte spans into
//! the original message. [`Editor`] builds the output by copying the original
//! bytes and splicing in only the edited lines, so odd-but-legal formatting
//! (folding, compact names, spacing, case) survives untouched.
//!
//! Scanning is lenient where RFC 3261 is (leading CRLFs, bare LF line ends,
//! LWS around `:` `/` `;` `=`), strict where an edge proxy must be (limits,
//! mandatory headers, Content-Length, one message per WebSocket message).

use std::ops::Range;

/// Size limits applied while scanning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipLimits {
    /// Largest whole message (start line + headers + body), in bytes.
    pub max_message: usize,
    /// Most header lines (a folded header counts once).
    pub max_headers: usize,
    /// Longest header (with its folded continuation lines) or start line.
    pub max_line: usize,
}

impl SipLimits {
    /// No limit at all: to re-scan a message that was already refused (or
    /// produced by this crate) for its Via, From, To, Call-ID and CSeq.
    pub const UNLIMITED: SipLimits = SipLimits {
        max_message: usize::MAX,
        max_headers: usize::MAX,
        max_line: usize::MAX,
    };
}

impl Default for SipLimits {
    fn default() -> Self {
        SipLimits {
            max_message: 64 * 1024,
            max_headers: 128,
            max_line: 8 * 1024,
        }
    }
}

/// Why a message was refused. [`SipError::status`] gives the response to
/// send when the message is a request with a usable top Via.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SipError {
    /// Garbage, a response that cannot be trusted, or a request without a
    /// usable top Via: drop and count (nothing can be answered).
    #[error("unparseable SIP message: {0}")]
    Unparseable(&'static str),
    /// Over [`SipLimits`] (whole message, header count or a header line;
    /// a response's status line): `513 Message Too Large`.
    #[error("SIP message too large")]
    TooLarge,
    /// A request line longer than [`SipLimits::max_line`]: `414 Request-URI
    /// Too Long` (RFC 3261 §21.4.12; the Request-URI is the only unbounded
    /// part of a request line).
    #[error("SIP Request-URI too long")]
    UriTooLong,
    /// Malformed or missing mandatory headers: `400` with this reason.
    #[error("bad SIP request: {0}")]
    BadRequest(&'static str),
    /// Request-URI scheme other than sip, sips, tel: `416`.
    #[error("unsupported URI scheme")]
    UnsupportedUriScheme,
    /// `SIP/x.y` other than 2.0: `505`.
    #[error("SIP version not supported")]
    VersionNotSupported,
}

impl SipError {
    /// Status code and reason phrase to answer with, `None` for drop.
    pub fn status(&self) -> Option<(u16, &'static str)> {
        match self {
            SipError::Unparseable(_) => None,
            SipError::TooLarge => Some((513, "Message Too Large")),
            SipError::UriTooLong => Some((414, "Request-URI Too Long")),
            SipError::BadRequest(reason) => Some((400, reason)),
            SipError::UnsupportedUriScheme => Some((416, "Unsupported URI Scheme")),
            SipError::VersionNotSupported => Some((505, "Version Not Supported")),
        }
    }
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// `METHOD Request-URI SIP/2.0`.
    Request {
        /// The method, case-sensitive (RFC 3261 §7.1).
        method: &'a str,
        /// The Request-URI bytes.
        uri: &'a [u8],
        /// Where the Request-URI is in the message.
        uri_span: Range<usize>,
    },
    /// `SIP/2.0 code reason`.
    Response {
        /// Status code, 100 to 699.
        code: u16,
        /// Reason phrase bytes (may be empty).
        reason: &'a [u8],
    },
}

/// One header field: spans into the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name as written (`v`, `VIA`, `Via`…).
    pub name: Range<usize>,
    /// The value, LWS-trimmed at both ends; may contain folded line breaks.
    pub value: Range<usize>,
    /// The whole line(s), name to line terminator inclusive.
    pub line: Range<usize>,
    /// Canonical long name when the header is known (compact forms mapped).
    pub canonical: Option<&'static str>,
}

/// One comma-separated value of a header (see [`Message::values`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// Index into [`Message::headers`].
    pub header: usize,
    /// Position among the values of that header line.
    pub index: usize,
    /// Span of the value (LWS-trimmed).
    pub span: Range<usize>,
}

/// A scanned message.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    bytes: &'a [u8],
    start: usize,
    start_line: StartLine<'a>,
    start_error: Option<SipError>,
    headers: Vec<Header>,
    headers_start: usize,
    headers_end: usize,
    body: Range<usize>,
    content_length: Option<usize>,
    length_error: Option<&'static str>,
    /// No empty line ends the headers (the input ended first).
    unterminated: bool,
}

/// Compact forms (RFC 3261 §7.3.3 and the IANA SIP header registry) and
/// long names of the headers this crate looks at or splits.
const NAMES: &[(&str, Option<u8>)] = &[
    ("Via", Some(b'v')),
    ("From", Some(b'f')),
    ("To", Some(b't')),
    ("Call-ID", Some(b'i')),
    ("CSeq", None),
    ("Max-Forwards", None),
    ("Content-Length", Some(b'l')),
    ("Content-Type", Some(b'c')),
    ("Content-Encoding", Some(b'e')),
    ("Contact", Some(b'm')),
    ("Subject", Some(b's')),
    ("Supported", Some(b'k')),
    ("Route", None),
    ("Record-Route", None),
    ("Path", None),
    ("Require", None),
    ("Proxy-Require", None),
    ("Allow", None),
    ("Event", Some(b'o')),
    ("Allow-Events", Some(b'u')),
    ("Refer-To", Some(b'r')),
    ("Referred-By", Some(b'b')),
    ("Session-Expires", Some(b'x')),
    ("Identity", Some(b'y')),
    ("Accept-Contact", Some(b'a')),
    ("Reject-Contact", Some(b'j')),
    ("Request-Disposition", Some(b'd')),
    ("Identity-Info", Some(b'n')),
];

/// The canonical long name of a known header name or compact form.
pub fn canonical_name(name: &[u8]) -> Option<&'static str> {
    if name.len() == 1 {
        let c = name[0].to_ascii_lowercase();
        return NAMES.iter().find(|(_, s)| *s == Some(c)).map(|(n, _)| *n);
    }
    NAMES
        .iter()
        .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
        .map(|(n, _)| *n)
}

/// Headers whose values are comma-separated lists (RFC 3261 §7.3.1).
fn is_list(canonical: &str) -> bool {
    matches!(
        canonical,
        "Via"
            | "Contact"
            | "Route"
            | "Record-Route"
            | "Path"
            | "Supported"
            | "Require"
            | "Proxy-Require"
            | "Allow"
            | "Allow-Events"
            | "Accept-Contact"
            | "Reject-Contact"
            | "Request-Disposition"
    )
}

pub(crate) fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c)
}

fn is_lws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Trim LWS from both ends of `r` within `b`.
fn trim(b: &[u8], mut r: Range<usize>) -> Range<usize> {
    while r.start < r.end && is_lws(b[r.start]) {
        r.start += 1;
    }
    while r.end > r.start && is_lws(b[r.end - 1]) {
        r.end -= 1;
    }
    r
}

/// `(end of content, start of next line)` for the line at `pos`.
fn line_at(b: &[u8], pos: usize) -> Option<(usize, usize)> {
    let nl = pos + b[pos..].iter().position(|&c| c == b'\n')?;
    let end = if nl > pos && b[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    Some((end, nl + 1))
}

/// Split `r` on commas outside quoted strings and `<…>`; empty elements
/// are skipped, elements are LWS-trimmed.
pub fn split_commas(b: &[u8], r: Range<usize>) -> Vec<Range<usize>> {
    let mut out = list_elements(b, r);
    out.retain(|t| !t.is_empty());
    out
}

/// One `;name[=value]` parameter, spans absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// From the `;` to the end of the value (or name).
    pub whole: Range<usize>,
    /// The name.
    pub name: Range<usize>,
    /// The value, if any (quotes kept).
    pub value: Option<Range<usize>>,
}

/// Where a left-to-right scan stands with respect to quoted-strings
/// (RFC 3261 §25.1: `"` to `"`, a backslash escaping the next character), for
/// the scans that must not split inside one.
#[derive(Default)]
struct Quotes {
    inside: bool,
    escape: bool,
}

impl Quotes {
    /// Feeds the next byte; true when it belongs to a quoted-string (its
    /// quotes included).
    fn feed(&mut self, c: u8) -> bool {
        if self.inside {
            if self.escape {
                self.escape = false;
            } else if c == b'\\' {
                self.escape = true;
            } else if c == b'"' {
                self.inside = false;
            }
            true
        } else if c == b'"' {
            self.inside = true;
            true
        } else {
            false
        }
    }
}

/// Parse `;a=b;c` parameters in `r` (which starts at or before the first
/// `;`; anything before the first `;` is skipped).
pub fn params(b: &[u8], r: Range<usize>) -> Vec<Param> {
    let mut out = Vec::new();
    let mut semis = Vec::new();
    let mut quotes = Quotes::default();
    for i in r.clone() {
        if !quotes.feed(b[i]) && b[i] == b';' {
            semis.push(i);
        }
    }
    for (k, &s) in semis.iter().enumerate() {
        let end = semis.get(k + 1).copied().unwrap_or(r.end);
        let body = trim(b, s + 1..end);
        if body.is_empty() {
            continue;
        }
        let (name, value) = match b[body.clone()].iter().position(|&c| c == b'=') {
            Some(eq) => (
                trim(b, body.start..body.start + eq),
                Some(trim(b, body.start + eq + 1..body.end)),
            ),
            None => (body.clone(), None),
        };
        out.push(Param {
            whole: s..body.end,
            name,
            value,
        });
    }
    out
}

/// Find parameter `name` (case-insensitive): `Some(None)` when present
/// without a value.
pub fn param<'b>(b: &'b [u8], r: Range<usize>, name: &str) -> Option<Option<&'b [u8]>> {
    params(b, r)
        .into_iter()
        .find(|p| b[p.name.clone()].eq_ignore_ascii_case(name.as_bytes()))
        .map(|p| p.value.map(|v| &b[v]))
}

// ---------------------------------------------------------------------------
// Strict syntax of the headers an edge proxy uses (RFC 3261 §25.1 grammar).

/// Every element of a comma-separated list at `r`, empty ones included
/// (`a,,b` has three), LWS-trimmed.
fn list_elements(b: &[u8], r: Range<usize>) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut quotes = Quotes::default();
    let mut angle = false;
    let mut seg = r.start;
    for i in r.clone() {
        let c = b[i];
        // a `"` inside `<...>` is part of the URI, not a quoted-string
        if !angle && quotes.feed(c) {
            continue;
        }
        match c {
            b'<' => angle = true,
            b'>' => angle = false,
            b',' if !angle => {
                out.push(trim(b, seg..i));
                seg = i + 1;
            }
            _ => {}
        }
    }
    out.push(trim(b, seg..r.end));
    out
}

fn skip_lws(b: &[u8], mut i: usize, end: usize) -> usize {
    while i < end && is_lws(b[i]) {
        i += 1;
    }
    i
}

/// The end of the quoted-string starting at `b[i] == '"'` (just past the
/// closing quote); `None` when it is not terminated.
fn quoted_end(b: &[u8], i: usize, end: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < end {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// `*( SEMI generic-param )` at `r` (SEMI = SWS ";" SWS; generic-param =
/// token [ EQUAL gen-value ], gen-value = token / host / quoted-string):
/// no empty parameter (`;;`), no empty value, nothing else.
fn params_ok(b: &[u8], r: Range<usize>) -> bool {
    let end = r.end;
    let mut i = skip_lws(b, r.start, end);
    while i < end {
        if b[i] != b';' {
            return false;
        }
        i = skip_lws(b, i + 1, end);
        let name = i;
        while i < end && is_token(b[i]) {
            i += 1;
        }
        if i == name {
            return false;
        }
        i = skip_lws(b, i, end);
        if i < end && b[i] == b'=' {
            i = skip_lws(b, i + 1, end);
            if i < end && b[i] == b'"' {
                match quoted_end(b, i, end) {
                    Some(e) => i = e,
                    None => return false,
                }
            } else {
                let value = i;
                while i < end && (is_token(b[i]) || matches!(b[i], b':' | b'[' | b']')) {
                    i += 1;
                }
                if i == value {
                    return false;
                }
            }
            i = skip_lws(b, i, end);
        }
    }
    true
}

/// An absolute URI as it may appear in a header: a scheme, no LWS, control
/// characters, `<`, `>` or `"`; a sip/sips URI must parse.
fn uri_ok(b: &[u8], r: Range<usize>) -> bool {
    let u = &b[r.clone()];
    let Some(colon) = u.iter().position(|&c| c == b':') else {
        return false;
    };
    let scheme = &u[..colon];
    if scheme.is_empty()
        || !scheme[0].is_ascii_alphabetic()
        || !scheme
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
    {
        return false;
    }
    if u.iter()
        .any(|&c| c <= b' ' || c == 0x7f || matches!(c, b'<' | b'>' | b'"'))
    {
        return false;
    }
    if scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips") {
        return parse_sip_uri(b, r).is_some();
    }
    true
}

/// One `(name-addr / addr-spec) *( SEMI generic-param )` value (From, To,
/// Contact, Route, Record-Route, Path; RFC 3261 §20.10, §25.1):
/// `display-name = *(token LWS) / quoted-string`, nothing but the URI
/// between `<` and `>` (RFC 4475 §3.1.2.14 "badaspec"), a quoted display
/// name closed (§3.1.2.6 "quotbal") and unquoted only with tokens
/// (§3.1.2.15 "baddn"), and an addr-spec without `?` or `,` (the name-addr
/// form is required then: §3.1.2.13 "regbadct"). `name_addr_only` for Route,
/// Record-Route and Path, whose grammar has no addr-spec form.
pub fn address_ok(b: &[u8], r: Range<usize>, name_addr_only: bool) -> bool {
    let r = trim(b, r);
    let end = r.end;
    if r.is_empty() {
        return false;
    }
    let mut i = r.start;
    let mut angle = None;
    if b[i] == b'"' {
        let Some(e) = quoted_end(b, i, end) else {
            return false;
        };
        i = skip_lws(b, e, end);
        if i >= end || b[i] != b'<' {
            return false;
        }
        angle = Some(i);
    } else {
        let mut j = i;
        while j < end && (is_token(b[j]) || is_lws(b[j])) {
            j += 1;
        }
        if j < end && b[j] == b'<' {
            angle = Some(j);
        }
    }
    match angle {
        Some(open) => {
            let Some(close) = b[open..end].iter().position(|&c| c == b'>') else {
                return false;
            };
            let close = open + close;
            let uri = open + 1..close;
            if uri.is_empty() || is_lws(b[uri.start]) || is_lws(b[uri.end - 1]) {
                return false;
            }
            uri_ok(b, uri) && params_ok(b, close + 1..end)
        }
        None if name_addr_only => false,
        None => {
            let semi = b[i..end]
                .iter()
                .position(|&c| c == b';')
                .map_or(end, |p| i + p);
            let uri = trim(b, i..semi);
            !uri.is_empty()
                && !b[uri.clone()].iter().any(|&c| c == b'?' || c == b',')
                && uri_ok(b, uri)
                && params_ok(b, semi..end)
        }
    }
}

/// A Via value in full: sent-protocol, sent-by and well-formed parameters
/// (RFC 4475 §3.1.2.1 "badinv01": `;;,;,,`).
pub fn via_ok(b: &[u8], r: Range<usize>) -> bool {
    parse_via(b, r).is_some_and(|v| params_ok(b, v.params))
}

/// A parsed Via value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via<'a> {
    /// The whole value's span.
    pub span: Range<usize>,
    /// Transport, e.g. `UDP`, `WS` (as written).
    pub transport: &'a [u8],
    /// sent-by host (IPv6 with brackets), as written.
    pub host: &'a [u8],
    /// sent-by port.
    pub port: Option<u16>,
    /// Span of the parameters (from the first `;`, may be empty).
    pub params: Range<usize>,
    bytes: &'a [u8],
}

impl<'a> Via<'a> {
    /// A parameter's value; `Some(None)` when present without value.
    pub fn param(&self, name: &str) -> Option<Option<&'a [u8]>> {
        param(self.bytes, self.params.clone(), name)
    }
    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&'a [u8]> {
        self.param("branch").flatten()
    }
    /// The `received` parameter.
    pub fn received(&self) -> Option<&'a [u8]> {
        self.param("received").flatten()
    }
    /// The `rport` parameter: `Some(None)` when present without a value.
    pub fn rport(&self) -> Option<Option<&'a [u8]>> {
        self.param("rport")
    }
}

/// Parse one Via value at `r`.
pub fn parse_via(b: &[u8], r: Range<usize>) -> Option<Via<'_>> {
    let mut i = r.start;
    let end = r.end;
    let skip = |i: &mut usize| {
        while *i < end && is_lws(b[*i]) {
            *i += 1;
        }
    };
    let token = |i: &mut usize| -> Option<Range<usize>> {
        let s = *i;
        while *i < end && is_token(b[*i]) {
            *i += 1;
        }
        (*i > s).then_some(s..*i)
    };
    skip(&mut i);
    let name = token(&mut i)?;
    if !b[name].eq_ignore_ascii_case(b"SIP") {
        return None;
    }
    skip(&mut i);
    if i >= end || b[i] != b'/' {
        return None;
    }
    i += 1;
    skip(&mut i);
    token(&mut i)?;
    skip(&mut i);
    if i >= end || b[i] != b'/' {
        return None;
    }
    i += 1;
    skip(&mut i);
    let transport = token(&mut i)?;
    let before = i;
    skip(&mut i);
    if i == before {
        return None;
    }
    let hs = i;
    if i < end && b[i] == b'[' {
        while i < end && b[i] != b']' {
            i += 1;
        }
        if i >= end {
            return None;
        }
        i += 1;
    } else {
        while i < end && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'-') {
            i += 1;
        }
    }
    if i == hs {
        return None;
    }
    let host = hs..i;
    skip(&mut i);
    let mut port = None;
    if i < end && b[i] == b':' {
        i += 1;
        skip(&mut i);
        let ps = i;
        while i < end && b[i].is_ascii_digit() {
            i += 1;
        }
        port = Some(std::str::from_utf8(&b[ps..i]).ok()?.parse::<u16>().ok()?);
        skip(&mut i);
    }
    if i < end && b[i] != b';' {
        return None;
    }
    Some(Via {
        span: r.clone(),
        transport: &b[transport],
        host: &b[host],
        port,
        params: i..end,
        bytes: b,
    })
}

/// A name-addr or addr-spec (Route, Record-Route, Path, Contact, From, To).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The URI.
    pub uri: Range<usize>,
    /// The header parameters after the URI (after `>` for name-addr).
    pub params: Range<usize>,
}

/// Parse a name-addr / addr-spec value at `r`.
pub fn parse_name_addr(b: &[u8], r: Range<usize>) -> Option<NameAddr> {
    let mut quotes = Quotes::default();
    for i in r.clone() {
        let c = b[i];
        if quotes.feed(c) {
            continue;
        }
        if c == b'<' {
            let close = i + b[i..r.end].iter().position(|&c| c == b'>')?;
            return Some(NameAddr {
                uri: trim(b, i + 1..close),
                params: close + 1..r.end,
            });
        }
    }
    // addr-spec: parameters after the URI belong to the header.
    let semi = b[r.clone()]
        .iter()
        .position(|&c| c == b';')
        .map_or(r.end, |p| r.start + p);
    Some(NameAddr {
        uri: trim(b, r.start..semi),
        params: semi..r.end,
    })
}

/// A SIP/SIPS URI, split into spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri<'a> {
    /// `sip` or `sips` (as written).
    pub scheme: &'a [u8],
    /// The user part, if any.
    pub user: Option<&'a [u8]>,
    /// The host (IPv6 with brackets).
    pub host: &'a [u8],
    /// The port, if any.
    pub port: Option<u16>,
    /// URI parameters (from the first `;` after the host, before `?`).
    pub params: Range<usize>,
    /// The headers part after `?` (RFC 3261 §19.1.1), if any.
    pub headers: Option<Range<usize>>,
}

/// Parse a `sip:` / `sips:` URI at `r` (other schemes: `None`).
pub fn parse_sip_uri(b: &[u8], r: Range<usize>) -> Option<SipUri<'_>> {
    let colon = r.start + b[r.clone()].iter().position(|&c| c == b':')?;
    let scheme = &b[r.start..colon];
    if !scheme.eq_ignore_ascii_case(b"sip") && !scheme.eq_ignore_ascii_case(b"sips") {
        return None;
    }
    let rest = colon + 1..r.end;
    let (user, hs) = match b[rest.clone()].iter().position(|&c| c == b'@') {
        Some(at) => (Some(&b[rest.start..rest.start + at]), rest.start + at + 1),
        None => (None, rest.start),
    };
    let mut i = hs;
    if i < r.end && b[i] == b'[' {
        while i < r.end && b[i] != b']' {
            i += 1;
        }
        if i >= r.end {
            return None;
        }
        i += 1;
    } else {
        while i < r.end && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'-') {
            i += 1;
        }
    }
    if i == hs {
        return None;
    }
    let host = &b[hs..i];
    let mut port = None;
    if i < r.end && b[i] == b':' {
        let ps = i + 1;
        i = ps;
        while i < r.end && b[i].is_ascii_digit() {
            i += 1;
        }
        port = Some(std::str::from_utf8(&b[ps..i]).ok()?.parse::<u16>().ok()?);
    }
    let pend = b[i..r.end]
        .iter()
        .position(|&c| c == b'?')
        .map_or(r.end, |p| i + p);
    if i < pend && b[i] != b';' {
        return None;
    }
    Some(SipUri {
        scheme,
        user,
        host,
        port,
        params: i..pend,
        headers: (pend < r.end).then(|| pend + 1..r.end),
    })
}

fn parse_start_line<'a>(
    b: &'a [u8],
    r: Range<usize>,
) -> Result<(StartLine<'a>, Option<SipError>), SipError> {
    let line = &b[r.clone()];
    if line.starts_with(b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let sp = line
            .iter()
            .position(|&c| c == b' ')
            .ok_or(SipError::Unparseable("bad status line"))?;
        if &line[..sp] != b"SIP/2.0" {
            return Err(SipError::Unparseable(
                "response with an unsupported version",
            ));
        }
        let code = line
            .get(sp + 1..sp + 4)
            .ok_or(SipError::Unparseable("bad status code"))?;
        if !code.iter().all(u8::is_ascii_digit) || line.get(sp + 4).is_some_and(|&c| c != b' ') {
            return Err(SipError::Unparseable("bad status code"));
        }
        let code = code.iter().fold(0u16, |a, &d| a * 10 + u16::from(d - b'0'));
        if !(100..=699).contains(&code) {
            return Err(SipError::Unparseable("bad status code"));
        }
        let reason = line.get(sp + 5..).unwrap_or(b"");
        return Ok((StartLine::Response { code, reason }, None));
    }
    // SP/HT before the line end (RFC 4475 §3.1.2.10 "trws"): refused with
    // 400, the rest of the line parsed without them.
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    let trailing = end < line.len();
    let line = &line[..end];
    let sp1 = line
        .iter()
        .position(|&c| c == b' ')
        .ok_or(SipError::Unparseable("bad request line"))?;
    let sp2 = line.iter().rposition(|&c| c == b' ').unwrap_or(sp1);
    let method = &line[..sp1];
    if method.is_empty() || !method.iter().all(|&c| is_token(c)) {
        return Err(SipError::Unparseable("bad method"));
    }
    let method = std::str::from_utf8(method).map_err(|_| SipError::Unparseable("bad method"))?;
    let version = &line[sp2 + 1..];
    if sp2 == sp1 || !version.starts_with(b"SIP/") {
        return Err(SipError::Unparseable("not a SIP request line"));
    }
    let uri_span = r.start + sp1 + 1..r.start + sp2;
    let uri = &b[uri_span.clone()];
    let mut err = None;
    if version != b"SIP/2.0" {
        err = Some(SipError::VersionNotSupported);
    }
    if trailing {
        err = err.or(Some(SipError::BadRequest("Bad Request-Line")));
    }
    let scheme_end = uri.iter().position(|&c| c == b':');
    let scheme_ok = scheme_end.is_some_and(|e| {
        e > 0
            && uri[0].is_ascii_alphabetic()
            && uri[..e]
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
    });
    if uri.is_empty() || uri.iter().any(|&c| c == b' ' || c == b'\t') || !scheme_ok {
        err = err.or(Some(SipError::BadRequest("Bad Request-URI")));
    } else if let Some(e) = scheme_end {
        let scheme = &uri[..e];
        if !(scheme.eq_ignore_ascii_case(b"sip")
            || scheme.eq_ignore_ascii_case(b"sips")
            || scheme.eq_ignore_ascii_case(b"tel"))
        {
            err = err.or(Some(SipError::UnsupportedUriScheme));
        } else if (scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips"))
            && parse_sip_uri(b, uri_span.clone()).is_none_or(|u| u.headers.is_some())
        {
            // Headers are not allowed in a Request-URI (RFC 3261 §19.1.1
            // table; RFC 4475 §3.1.2.11 "escruri").
            err = err.or(Some(SipError::BadRequest("Bad Request-URI")));
        }
    }
    Ok((
        StartLine::Request {
            method,
            uri,
            uri_span,
        },
        err,
    ))
}

/// Scan the structure only: start line, headers, body. Mandatory headers
/// and Content-Length are checked by [`parse`].
pub fn scan<'a>(bytes: &'a [u8], limits: &SipLimits) -> Result<Message<'a>, SipError> {
    if bytes.len() > limits.max_message {
        return Err(SipError::TooLarge);
    }
    let mut pos = 0;
    while bytes[pos..].starts_with(b"\r\n") {
        pos += 2;
    }
    let start = pos;
    let (se, next) = line_at(bytes, pos).ok_or(SipError::Unparseable("no line end"))?;
    if se - start > limits.max_line {
        return Err(if bytes[start..].starts_with(b"SIP/") {
            SipError::TooLarge
        } else {
            SipError::UriTooLong
        });
    }
    let (start_line, start_error) = parse_start_line(bytes, start..se)?;
    let headers_start = next;
    pos = next;
    let mut headers: Vec<Header> = Vec::new();
    let headers_end;
    // The input ends before the empty line: still a message (its start
    // line, Via… can be answered), refused by `validate` with 400.
    let mut unterminated = false;
    loop {
        if pos >= bytes.len() {
            headers_end = pos;
            unterminated = true;
            break;
        }
        // A last header line without a line end ends at the input's end.
        let (end, next) = line_at(bytes, pos).unwrap_or((bytes.len(), bytes.len()));
        if end == pos {
            headers_end = pos;
            pos = next;
            break;
        }
        if bytes[pos] == b' ' || bytes[pos] == b'\t' {
            let h = headers
                .last_mut()
                .ok_or(SipError::Unparseable("continuation line first"))?;
            h.value.end = end;
            h.line.end = next;
        } else {
            let ns = pos;
            let mut i = pos;
            while i < end && is_token(bytes[i]) {
                i += 1;
            }
            let name = ns..i;
            while i < end && (bytes[i] == b' ' || bytes[i] == b'\t') {
                i += 1;
            }
            if name.is_empty() || i >= end || bytes[i] != b':' {
                return Err(SipError::Unparseable("bad header line"));
            }
            if headers.len() >= limits.max_headers {
                return Err(SipError::TooLarge);
            }
            let canonical = canonical_name(&bytes[name.clone()]);
            headers.push(Header {
                name,
                value: i + 1..end,
                line: ns..next,
                canonical,
            });
        }
        let h = headers.last().expect("pushed");
        if h.line.end - h.line.start > limits.max_line {
            return Err(SipError::TooLarge);
        }
        pos = next;
    }
    for h in &mut headers {
        h.value = trim(bytes, h.value.clone());
    }
    // Content-Length: absent means "the rest" (WebSocket message, datagram).
    let mut content_length = None;
    let mut length_error = None;
    for h in headers
        .iter()
        .filter(|h| h.canonical == Some("Content-Length"))
    {
        let v = &bytes[h.value.clone()];
        let n = if !v.is_empty() && v.len() <= 9 && v.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
        } else {
            None
        };
        match (n, content_length) {
            (None, _) => length_error = Some("Bad Content-Length"),
            (Some(n), Some(prev)) if n != prev => length_error = Some("Conflicting Content-Length"),
            (Some(n), _) => content_length = Some(n),
        }
    }
    let body = match content_length {
        Some(n) if pos + n > bytes.len() => {
            length_error = length_error.or(Some("Content-Length larger than the body"));
            pos..bytes.len()
        }
        Some(n) => pos..pos + n,
        None => pos..bytes.len(),
    };
    Ok(Message {
        bytes,
        start,
        start_line,
        start_error,
        headers,
        headers_start,
        headers_end,
        body,
        content_length,
        length_error,
        unterminated,
    })
}

/// Scan and validate one complete message (a WebSocket message or a
/// datagram, or a frame from [`super::framing`]).
///
/// Requests must have a usable top Via (else [`SipError::Unparseable`]),
/// From, To, Call-ID, a CSeq whose method matches, a sane Max-Forwards,
/// a Request-URI with scheme sip/sips/tel, and a Content-Length (if any)
/// not larger than the body; bytes after the body other than CR/LF mean a
/// second message and give 400 (RFC 7118 §5.1). Requests must also have
/// well-formed Via, From, To, Contact, Route, Record-Route and Path values
/// (see `docs/sip.md`, RFC 4475 §3.1.2). Responses with any of the
/// structural problems are [`SipError::Unparseable`] (they are dropped).
pub fn parse<'a>(bytes: &'a [u8], limits: &SipLimits) -> Result<Message<'a>, SipError> {
    let m = scan(bytes, limits)?;
    m.validate(false)?;
    Ok(m)
}

/// [`parse`] for a UDP datagram: octets after the body (per Content-Length)
/// are discarded, not refused (RFC 3261 §18.3; RFC 4475 §3.1.1.8
/// "dblreq"). [`Message::edit`] never copies them.
pub fn parse_datagram<'a>(bytes: &'a [u8], limits: &SipLimits) -> Result<Message<'a>, SipError> {
    let m = scan(bytes, limits)?;
    m.validate(true)?;
    Ok(m)
}

impl<'a> Message<'a> {
    fn validate(&self, datagram: bool) -> Result<(), SipError> {
        let is_request = self.is_request();
        let fail = |e: SipError| {
            if is_request {
                e
            } else {
                SipError::Unparseable("malformed response")
            }
        };
        if self.top_via().is_none() {
            return Err(SipError::Unparseable("no usable top Via"));
        }
        if let Some(e) = &self.start_error {
            return Err(e.clone());
        }
        if self.unterminated {
            return Err(fail(SipError::BadRequest("Missing Empty Line")));
        }
        for (name, reason) in [
            ("From", "Missing From"),
            ("To", "Missing To"),
            ("Call-ID", "Missing Call-ID"),
            ("CSeq", "Missing CSeq"),
        ] {
            if self.header(name).is_none() {
                return Err(fail(SipError::BadRequest(reason)));
            }
        }
        if self.header_count("From") > 1
            || self.header_count("To") > 1
            || self.header_count("Call-ID") > 1
            || self.header_count("CSeq") > 1
        {
            return Err(fail(SipError::BadRequest("Duplicate header")));
        }
        let Some((_, cseq_method)) = self.cseq() else {
            return Err(fail(SipError::BadRequest("Bad CSeq")));
        };
        if let Some(m) = self.method() {
            if m.as_bytes() != cseq_method {
                return Err(SipError::BadRequest("CSeq method does not match"));
            }
        }
        if self.header("Max-Forwards").is_some() && self.max_forwards().is_none() {
            return Err(fail(SipError::BadRequest("Bad Max-Forwards")));
        }
        if is_request {
            self.check_request_syntax()?;
        }
        if let Some(reason) = self.length_error {
            return Err(fail(SipError::BadRequest(reason)));
        }
        if !datagram
            && self.bytes[self.body.end..]
                .iter()
                .any(|&c| c != b'\r' && c != b'\n')
        {
            return Err(fail(SipError::BadRequest("More than one message")));
        }
        Ok(())
    }

    /// The headers an edge proxy reads or routes on, in full (requests
    /// only; RFC 3261 §16.3 step 1, RFC 4475 §3.1.2): every Via value, From,
    /// To, every Contact value (or a lone `*`), Route, Record-Route and Path
    /// (name-addr form); no empty list element. Other headers (Date, Accept,
    /// unknown ones) are not looked at.
    fn check_request_syntax(&self) -> Result<(), SipError> {
        let b = self.bytes;
        let lists: [(&str, &'static str, Option<bool>); 7] = [
            ("Via", "Bad Via", None),
            ("From", "Bad From", Some(false)),
            ("To", "Bad To", Some(false)),
            ("Contact", "Bad Contact", Some(false)),
            ("Route", "Bad Route", Some(true)),
            ("Record-Route", "Bad Record-Route", Some(true)),
            ("Path", "Bad Path", Some(true)),
        ];
        for (name, reason, address) in lists {
            let bad = SipError::BadRequest(reason);
            let mut count = 0;
            let mut star = false;
            for (_, h) in self.named(name) {
                let elements = if h.canonical.is_some_and(is_list) {
                    list_elements(b, h.value.clone())
                } else {
                    vec![h.value.clone()]
                };
                for e in elements {
                    count += 1;
                    let ok = match address {
                        None => via_ok(b, e),
                        Some(_) if name == "Contact" && &b[e.clone()] == b"*" => {
                            star = true;
                            true
                        }
                        Some(name_addr_only) => address_ok(b, e, name_addr_only),
                    };
                    if !ok {
                        return Err(bad);
                    }
                }
            }
            if star && count > 1 {
                return Err(bad);
            }
        }
        Ok(())
    }

    /// The whole input.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// The start line.
    pub fn start_line(&self) -> &StartLine<'a> {
        &self.start_line
    }
    /// True for a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start_line, StartLine::Request { .. })
    }
    /// The request method, `None` for a response.
    pub fn method(&self) -> Option<&'a str> {
        match self.start_line {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }
    /// The status code, `None` for a request.
    pub fn status(&self) -> Option<u16> {
        match self.start_line {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }
    /// All header fields in order.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }
    /// Bytes of a span.
    pub fn slice(&self, r: Range<usize>) -> &'a [u8] {
        &self.bytes[r]
    }
    /// The body (per Content-Length, or the rest of the message).
    pub fn body(&self) -> &'a [u8] {
        &self.bytes[self.body.clone()]
    }
    /// The declared Content-Length, if any.
    pub fn content_length(&self) -> Option<usize> {
        self.content_length
    }

    fn named(&self, name: &str) -> impl Iterator<Item = (usize, &Header)> + '_ {
        let canon = canonical_name(name.as_bytes());
        let name = name.to_owned();
        self.headers
            .iter()
            .enumerate()
            .filter(move |(_, h)| match canon {
                Some(c) => h.canonical == Some(c),
                None => self.bytes[h.name.clone()].eq_ignore_ascii_case(name.as_bytes()),
            })
    }

    fn header_count(&self, name: &str) -> usize {
        self.named(name).count()
    }

    /// Index of the first header called `name` (long or compact form,
    /// case-insensitive).
    pub fn header_index(&self, name: &str) -> Option<usize> {
        self.named(name).next().map(|(i, _)| i)
    }

    /// Value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        let i = self.header_index(name)?;
        Some(&self.bytes[self.headers[i].value.clone()])
    }

    /// Every value of every header called `name`, in order; list headers
    /// (Via, Route, Record-Route, Path, Contact, Supported…) are split on
    /// commas outside quoted strings and `<…>`.
    pub fn values(&self, name: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for (hi, h) in self.named(name) {
            if h.canonical.is_some_and(is_list) {
                for (index, span) in split_commas(self.bytes, h.value.clone())
                    .into_iter()
                    .enumerate()
                {
                    out.push(Value {
                        header: hi,
                        index,
                        span,
                    });
                }
            } else {
                out.push(Value {
                    header: hi,
                    index: 0,
                    span: h.value.clone(),
                });
            }
        }
        out
    }

    /// The top Via value, parsed.
    pub fn top_via(&self) -> Option<Via<'a>> {
        let v = self.values("Via").into_iter().next()?;
        parse_via(self.bytes, v.span)
    }

    /// All Via values, parsed (`None` entries for unparseable values).
    pub fn vias(&self) -> Vec<Option<Via<'a>>> {
        self.values("Via")
            .into_iter()
            .map(|v| parse_via(self.bytes, v.span))
            .collect()
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Option<&'a [u8]> {
        self.header("Call-ID").filter(|v| !v.is_empty())
    }

    /// CSeq number and method (number at most 2^31 - 1, RFC 3261 §8.1.1.5).
    pub fn cseq(&self) -> Option<(u32, &'a [u8])> {
        let i = self.header_index("CSeq")?;
        let r = self.headers[i].value.clone();
        let b = self.bytes;
        let ds = r.start;
        let mut j = ds;
        while j < r.end && b[j].is_ascii_digit() {
            j += 1;
        }
        if j == ds || j - ds > 10 || j >= r.end || !is_lws(b[j]) {
            return None;
        }
        let n: u64 = std::str::from_utf8(&b[ds..j]).ok()?.parse().ok()?;
        if n > 0x7fff_ffff {
            return None;
        }
        let m = trim(b, j..r.end);
        if m.is_empty() || !b[m.clone()].iter().all(|&c| is_token(c)) {
            return None;
        }
        Some((n as u32, &b[m]))
    }

    /// Max-Forwards (0 to 255); `None` if absent or malformed.
    pub fn max_forwards(&self) -> Option<u32> {
        let v = self.header("Max-Forwards")?;
        if v.is_empty() || v.len() > 9 || !v.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n: u32 = std::str::from_utf8(v).ok()?.parse().ok()?;
        (n <= 255).then_some(n)
    }

    fn tag(&self, name: &str) -> Option<&'a [u8]> {
        let i = self.header_index(name)?;
        let na = parse_name_addr(self.bytes, self.headers[i].value.clone())?;
        param(self.bytes, na.params, "tag").flatten()
    }

    /// The From tag.
    pub fn from_tag(&self) -> Option<&'a [u8]> {
        self.tag("From")
    }

    /// The To tag (present on in-dialog requests).
    pub fn to_tag(&self) -> Option<&'a [u8]> {
        self.tag("To")
    }

    /// The Route values, parsed as name-addr, with their [`Value`]s.
    pub fn routes(&self) -> Vec<(Value, Option<NameAddr>)> {
        self.values("Route")
            .into_iter()
            .map(|v| {
                let na = parse_name_addr(self.bytes, v.span.clone());
                (v, na)
            })
            .collect()
    }

    /// The top Route's URI, parsed, when it is a sip/sips URI.
    pub fn top_route_uri(&self) -> Option<SipUri<'a>> {
        let (_, na) = self.routes().into_iter().next()?;
        parse_sip_uri(self.bytes, na?.uri)
    }

    /// Start an edit of this message.
    pub fn edit(&self) -> Editor<'_, 'a> {
        Editor {
            msg: self,
            splices: Vec::new(),
            top: Vec::new(),
            bottom: Vec::new(),
            removed: Vec::new(),
        }
    }
}

/// Builds a modified copy of a [`Message`]: untouched bytes are copied
/// exactly; Content-Length is always made to match the body.
#[derive(Debug, Clone)]
pub struct Editor<'m, 'a> {
    msg: &'m Message<'a>,
    splices: Vec<(Range<usize>, Vec<u8>)>,
    top: Vec<u8>,
    bottom: Vec<u8>,
    removed: Vec<(usize, usize)>,
}

impl Editor<'_, '_> {
    /// Insert a header line right after the start line. Several calls
    /// appear in call order (first call on top).
    pub fn insert_top(&mut self, name: &str, value: &[u8]) -> &mut Self {
        self.top.extend_from_slice(name.as_bytes());
        self.top.extend_from_slice(b": ");
        self.top.extend_from_slice(value);
        self.top.extend_from_slice(b"\r\n");
        self
    }

    /// Insert a header line right after the start line, above every line
    /// inserted so far.
    pub fn prepend_top(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let mut line = Vec::with_capacity(name.len() + value.len() + 4);
        line.extend_from_slice(name.as_bytes());
        line.extend_from_slice(b": ");
        line.extend_from_slice(value);
        line.extend_from_slice(b"\r\n");
        line.extend_from_slice(&self.top);
        self.top = line;
        self
    }

    /// Append a header line after the last header.
    pub fn append(&mut self, name: &str, value: &[u8]) -> &mut Self {
        self.bottom.extend_from_slice(name.as_bytes());
        self.bottom.extend_from_slice(b": ");
        self.bottom.extend_from_slice(value);
        self.bottom.extend_from_slice(b"\r\n");
        self
    }

    /// Replace the bytes of `span` (a span of the original message, e.g. a
    /// header value, one list value or the Request-URI).
    pub fn replace(&mut self, span: Range<usize>, with: &[u8]) -> &mut Self {
        self.splices.push((span, with.to_vec()));
        self
    }

    /// Remove a whole header line (with its continuation lines).
    pub fn remove_line(&mut self, header: usize) -> &mut Self {
        let line = self.msg.headers[header].line.clone();
        self.splices.push((line, Vec::new()));
        self
    }

    /// Remove one value of a list header, with its comma; the whole line
    /// goes when all its values are removed. Several values of one line
    /// may be removed.
    pub fn remove_value(&mut self, v: &Value) -> &mut Self {
        if !self.removed.contains(&(v.header, v.index)) {
            self.removed.push((v.header, v.index));
        }
        self
    }

    fn removal_splices(&mut self) {
        let mut headers: Vec<usize> = self.removed.iter().map(|(h, _)| *h).collect();
        headers.sort_unstable();
        headers.dedup();
        for h in headers {
            let all = split_commas(self.msg.bytes, self.msg.headers[h].value.clone());
            let gone: Vec<bool> = (0..all.len())
                .map(|i| self.removed.contains(&(h, i)))
                .collect();
            if gone.iter().all(|g| *g) {
                self.splices
                    .push((self.msg.headers[h].line.clone(), Vec::new()));
                continue;
            }
            // Trailing run of removed values: cut from the end of the last
            // kept value. Others: cut up to the start of the next value.
            let last_kept = gone.iter().rposition(|g| !*g).expect("one kept");
            if last_kept + 1 < all.len() {
                self.splices
                    .push((all[last_kept].end..all[all.len() - 1].end, Vec::new()));
            }
            for i in 0..last_kept {
                if gone[i] {
                    self.splices
                        .push((all[i].start..all[i + 1].start, Vec::new()));
                }
            }
        }
    }

    /// Produce the edited message (start line, headers, body per
    /// Content-Length; bytes after the body are not copied). A
    /// Content-Length header matching the body is always present.
    pub fn finish(mut self) -> Vec<u8> {
        self.removal_splices();
        let m = self.msg;
        let body_len = m.body.len();
        let cl: Vec<usize> = m.named("Content-Length").map(|(i, _)| i).collect();
        match cl.first() {
            Some(&first) => {
                if m.content_length != Some(body_len) || m.length_error.is_some() {
                    self.splices.push((
                        m.headers[first].value.clone(),
                        body_len.to_string().into_bytes(),
                    ));
                    for &other in &cl[1..] {
                        self.splices
                            .push((m.headers[other].line.clone(), Vec::new()));
                    }
                }
            }
            None => {
                let len = body_len.to_string();
                self.append("Content-Length", len.as_bytes());
            }
        }
        let top = std::mem::take(&mut self.top);
        let bottom = std::mem::take(&mut self.bottom);
        self.splices.push((m.headers_start..m.headers_start, top));
        self.splices.push((m.headers_end..m.headers_end, bottom));
        // Stable: inserts at the same position keep their order, and an
        // insert at the start of a line goes before that line's removal.
        self.splices.sort_by_key(|(r, _)| (r.start, r.end));
        let mut out = Vec::with_capacity(m.body.end - m.start + 256);
        let mut pos = m.start;
        for (r, with) in &self.splices {
            if r.start < pos {
                // Overlapping edit (e.g. a value inside a removed line): the
                // earlier, wider edit wins.
                continue;
            }
            out.extend_from_slice(&m.bytes[pos..r.start]);
            out.extend_from_slice(with);
            pos = r.end;
        }
        out.extend_from_slice(&m.bytes[pos..m.body.end]);
        out
    }
}

/// Build a response to `req` (RFC 3261 §8.2.6): Via, From, To, Call-ID and
/// CSeq lines copied byte for byte, `tag` added to To when it has none (not
/// for 100), then `extra` headers and `Content-Length: 0`.
pub fn make_response(
    req: &Message<'_>,
    code: u16,
    reason: &str,
    to_tag: &str,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n").into_bytes();
    let b = req.bytes;
    let push_line = |out: &mut Vec<u8>, h: &Header| {
        out.extend_from_slice(&b[h.line.clone()]);
        if !out.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    };
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        for (_, h) in req.named(name) {
            if name == "To" && code != 100 && req.to_tag().is_none() {
                out.extend_from_slice(&b[h.name.clone()]);
                out.extend_from_slice(b": ");
                out.extend_from_slice(&b[h.value.clone()]);
                out.extend_from_slice(b";tag=");
                out.extend_from_slice(to_tag.as_bytes());
                out.extend_from_slice(b"\r\n");
            } else {
                push_line(&mut out, h);
            }
        }
    }
    for (n, v) in extra {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    out
}

/// For a message [`parse`] refused: the response to send, if the error has
/// one and the message is a request whose top Via (and start line) could be
/// scanned. The message is scanned again without any limit, so a request
/// refused for its size, its header count or a header line (`513`) or its
/// request line (`414`) is answered like any other (the work stays linear in
/// the bytes the transport accepted).
pub fn error_response(
    bytes: &[u8],
    _limits: &SipLimits,
    err: &SipError,
    to_tag: &str,
) -> Option<Vec<u8>> {
    let (code, reason) = err.status()?;
    let m = scan(bytes, &SipLimits::UNLIMITED).ok()?;
    if !m.is_request() || m.top_via().is_none() || m.method() == Some("ACK") {
        return None;
    }
    Some(make_response(&m, code, reason, to_tag, &[]))
}
