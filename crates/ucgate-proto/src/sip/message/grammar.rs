//! Strict syntax of the headers an edge proxy uses (RFC 3261 §25.1
//! grammar): whole-value checks for Via and the address headers.

use std::ops::Range;

use super::lex::*;
use super::values::*;

/// `*( SEMI generic-param )` at `r` (SEMI = SWS ";" SWS; generic-param =
/// token [ EQUAL gen-value ], gen-value = token / host / quoted-string):
/// no empty parameter (`;;`), no empty value, nothing else.
pub(super) fn params_ok(b: &[u8], r: Range<usize>) -> bool {
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
pub(super) fn uri_ok(b: &[u8], r: Range<usize>) -> bool {
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
