//! Header values parsed into spans: Via, name-addr / addr-spec, SIP URIs.

use std::ops::Range;

use super::lex::*;

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
