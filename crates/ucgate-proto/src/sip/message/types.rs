//! The message types ([`Message`], [`Header`], [`Value`], [`StartLine`],
//! [`SipError`], [`SipLimits`]), header names, and the accessors.

use std::ops::Range;

use super::lex::*;
use super::values::*;

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
    /// The header, when it is one this crate knows (compact forms mapped).
    pub canonical: Option<Known>,
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
    pub(super) bytes: &'a [u8],
    pub(super) start: usize,
    pub(super) start_line: StartLine<'a>,
    pub(super) start_error: Option<SipError>,
    pub(super) headers: Vec<Header>,
    pub(super) headers_start: usize,
    pub(super) headers_end: usize,
    pub(super) body: Range<usize>,
    pub(super) content_length: Option<usize>,
    pub(super) length_error: Option<&'static str>,
    /// No empty line ends the headers (the input ended first).
    pub(super) unterminated: bool,
}

/// Long names, compact forms (RFC 3261 §7.3.3 and the IANA SIP header
/// registry) and whether the values are comma-separated lists (RFC 3261
/// §7.3.1) of the headers this crate looks at or splits. [`Known`] is an
/// index into this table.
const NAMES: &[(&str, Option<u8>, bool)] = &[
    ("Via", Some(b'v'), true),
    ("From", Some(b'f'), false),
    ("To", Some(b't'), false),
    ("Call-ID", Some(b'i'), false),
    ("CSeq", None, false),
    ("Max-Forwards", None, false),
    ("Content-Length", Some(b'l'), false),
    ("Content-Type", Some(b'c'), false),
    ("Content-Encoding", Some(b'e'), false),
    ("Contact", Some(b'm'), true),
    ("Subject", Some(b's'), false),
    ("Supported", Some(b'k'), true),
    ("Route", None, true),
    ("Record-Route", None, true),
    ("Path", None, true),
    ("Require", None, true),
    ("Proxy-Require", None, true),
    ("Allow", None, true),
    ("Event", Some(b'o'), false),
    ("Allow-Events", Some(b'u'), true),
    ("Refer-To", Some(b'r'), false),
    ("Referred-By", Some(b'b'), false),
    ("Session-Expires", Some(b'x'), false),
    ("Identity", Some(b'y'), false),
    ("Accept-Contact", Some(b'a'), true),
    ("Reject-Contact", Some(b'j'), true),
    ("Request-Disposition", Some(b'd'), true),
    ("Identity-Info", Some(b'n'), false),
];

/// A header this crate knows by name: found once per header line when the
/// message is scanned, so that every later lookup compares a number, not a
/// name (a message is looked up some twenty times on its way through).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Known(u8);

impl Known {
    /// `Via`.
    pub const VIA: Known = Known(0);
    /// `From`.
    pub const FROM: Known = Known(1);
    /// `To`.
    pub const TO: Known = Known(2);
    /// `Call-ID`.
    pub const CALL_ID: Known = Known(3);
    /// `CSeq`.
    pub const CSEQ: Known = Known(4);
    /// `Max-Forwards`.
    pub const MAX_FORWARDS: Known = Known(5);
    /// `Content-Length`.
    pub const CONTENT_LENGTH: Known = Known(6);
    /// `Contact`.
    pub const CONTACT: Known = Known(9);
    /// `Route`.
    pub const ROUTE: Known = Known(12);
    /// `Record-Route`.
    pub const RECORD_ROUTE: Known = Known(13);
    /// `Path`.
    pub const PATH: Known = Known(14);

    /// The long name (`Via`, `Call-ID`…).
    pub fn name(self) -> &'static str {
        NAMES[usize::from(self.0)].0
    }

    /// Whether the values are comma-separated lists (RFC 3261 §7.3.1).
    pub fn is_list(self) -> bool {
        NAMES[usize::from(self.0)].2
    }
}

/// The known header a name (long or compact form, any case) stands for.
pub fn canonical_name(name: &[u8]) -> Option<Known> {
    let at = if let [c] = name {
        let c = c.to_ascii_lowercase();
        NAMES.iter().position(|(_, s, _)| *s == Some(c))
    } else {
        NAMES
            .iter()
            .position(|(n, _, _)| n.len() == name.len() && n.as_bytes().eq_ignore_ascii_case(name))
    };
    at.map(|i| Known(i as u8))
}

/// A header name to look up: a known header (compared by number) or any
/// other name (compared by its bytes, case-insensitively).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderName<'n> {
    /// A header of [`Known`].
    Known(Known),
    /// Any other name.
    Other(&'n str),
}

impl<'n> From<&'n str> for HeaderName<'n> {
    fn from(name: &'n str) -> Self {
        match canonical_name(name.as_bytes()) {
            Some(k) => HeaderName::Known(k),
            None => HeaderName::Other(name),
        }
    }
}

impl From<Known> for HeaderName<'static> {
    fn from(k: Known) -> Self {
        HeaderName::Known(k)
    }
}

impl<'a> Message<'a> {
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

    pub(super) fn named<'s, 'n: 's>(
        &'s self,
        name: impl Into<HeaderName<'n>>,
    ) -> impl Iterator<Item = (usize, &'s Header)> + 's {
        let name = name.into();
        self.headers
            .iter()
            .enumerate()
            .filter(move |(_, h)| match name {
                HeaderName::Known(k) => h.canonical == Some(k),
                HeaderName::Other(n) => {
                    self.bytes[h.name.clone()].eq_ignore_ascii_case(n.as_bytes())
                }
            })
    }

    pub(super) fn header_count<'n>(&self, name: impl Into<HeaderName<'n>>) -> usize {
        self.named(name).count()
    }

    /// Index of the first header called `name` (long or compact form,
    /// case-insensitive).
    pub fn header_index<'n>(&self, name: impl Into<HeaderName<'n>>) -> Option<usize> {
        self.named(name).next().map(|(i, _)| i)
    }

    /// Value of the first header called `name`.
    pub fn header<'n>(&self, name: impl Into<HeaderName<'n>>) -> Option<&'a [u8]> {
        let i = self.header_index(name)?;
        Some(&self.bytes[self.headers[i].value.clone()])
    }

    /// Every value of every header called `name`, in order; list headers
    /// (Via, Route, Record-Route, Path, Contact, Supported…) are split on
    /// commas outside quoted strings and `<…>`.
    pub fn values<'n>(&self, name: impl Into<HeaderName<'n>>) -> Vec<Value> {
        let mut out = Vec::new();
        for (hi, h) in self.named(name) {
            if h.canonical.is_some_and(Known::is_list) {
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
        let v = self.values(Known::VIA).into_iter().next()?;
        parse_via(self.bytes, v.span)
    }

    /// All Via values, parsed (`None` entries for unparseable values).
    pub fn vias(&self) -> Vec<Option<Via<'a>>> {
        self.values(Known::VIA)
            .into_iter()
            .map(|v| parse_via(self.bytes, v.span))
            .collect()
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Option<&'a [u8]> {
        self.header(Known::CALL_ID).filter(|v| !v.is_empty())
    }

    /// CSeq number and method (number at most 2^31 - 1, RFC 3261 §8.1.1.5).
    pub fn cseq(&self) -> Option<(u32, &'a [u8])> {
        let i = self.header_index(Known::CSEQ)?;
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
        let v = self.header(Known::MAX_FORWARDS)?;
        if v.is_empty() || v.len() > 9 || !v.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n: u32 = std::str::from_utf8(v).ok()?.parse().ok()?;
        (n <= 255).then_some(n)
    }

    pub(super) fn tag(&self, name: Known) -> Option<&'a [u8]> {
        let i = self.header_index(name)?;
        let na = parse_name_addr(self.bytes, self.headers[i].value.clone())?;
        param(self.bytes, na.params, "tag").flatten()
    }

    /// The From tag.
    pub fn from_tag(&self) -> Option<&'a [u8]> {
        self.tag(Known::FROM)
    }

    /// The To tag (present on in-dialog requests).
    pub fn to_tag(&self) -> Option<&'a [u8]> {
        self.tag(Known::TO)
    }

    /// The Route values, parsed as name-addr, with their [`Value`]s.
    pub fn routes(&self) -> Vec<(Value, Option<NameAddr>)> {
        self.values(Known::ROUTE)
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
}
