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

/// Compact forms (RFC 3261 §7.3.3 and the IANA SIP header registry) and
/// long names of the headers this crate looks at or splits.
pub(super) const NAMES: &[(&str, Option<u8>)] = &[
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
pub(super) fn is_list(canonical: &str) -> bool {
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

    pub(super) fn named<'s>(
        &'s self,
        name: &'s str,
    ) -> impl Iterator<Item = (usize, &'s Header)> + 's {
        let canon = canonical_name(name.as_bytes());
        self.headers
            .iter()
            .enumerate()
            .filter(move |(_, h)| match canon {
                Some(c) => h.canonical == Some(c),
                None => self.bytes[h.name.clone()].eq_ignore_ascii_case(name.as_bytes()),
            })
    }

    pub(super) fn header_count(&self, name: &str) -> usize {
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

    pub(super) fn tag(&self, name: &str) -> Option<&'a [u8]> {
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
}
