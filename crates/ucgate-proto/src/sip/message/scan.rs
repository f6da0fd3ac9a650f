//! The scanner: start line, header lines and body found in place, then
//! the checks [`parse`] makes of a complete message.

use std::ops::Range;

use super::grammar::*;
use super::lex::*;
use super::types::*;
use super::values::*;

pub(super) fn parse_start_line<'a>(
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
    // (room for a typical message's headers: no regrowth)
    let mut headers: Vec<Header> = Vec::with_capacity(16);
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
        .filter(|h| h.canonical == Some(Known::CONTENT_LENGTH))
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
        // Each of From, To, Call-ID and CSeq exactly once (any missing one
        // is named before a duplicate is).
        let once = [
            (Known::FROM, "Missing From"),
            (Known::TO, "Missing To"),
            (Known::CALL_ID, "Missing Call-ID"),
            (Known::CSEQ, "Missing CSeq"),
        ];
        if let Some((_, missing)) = once.iter().find(|(k, _)| self.header(*k).is_none()) {
            return Err(fail(SipError::BadRequest(missing)));
        }
        if once.iter().any(|(k, _)| self.header_count(*k) > 1) {
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
        if self.header(Known::MAX_FORWARDS).is_some() && self.max_forwards().is_none() {
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
        let lists: [(Known, &'static str, Option<bool>); 7] = [
            (Known::VIA, "Bad Via", None),
            (Known::FROM, "Bad From", Some(false)),
            (Known::TO, "Bad To", Some(false)),
            (Known::CONTACT, "Bad Contact", Some(false)),
            (Known::ROUTE, "Bad Route", Some(true)),
            (Known::RECORD_ROUTE, "Bad Record-Route", Some(true)),
            (Known::PATH, "Bad Path", Some(true)),
        ];
        for (name, reason, address) in lists {
            let bad = SipError::BadRequest(reason);
            let mut count = 0;
            let mut star = false;
            for (_, h) in self.named(name) {
                let elements = if name.is_list() {
                    list_elements(b, h.value.clone())
                } else {
                    vec![h.value.clone()]
                };
                for e in elements {
                    count += 1;
                    let ok = match address {
                        None => via_ok(b, e),
                        Some(_) if name == Known::CONTACT && &b[e.clone()] == b"*" => {
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
}
