//! Lexical helpers: tokens, LWS, line ends, comma lists and `;name=value`
//! parameters, all as spans into the message bytes.

use std::ops::Range;

pub(crate) fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c)
}

pub(super) fn is_lws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Trim LWS from both ends of `r` within `b`.
pub(super) fn trim(b: &[u8], mut r: Range<usize>) -> Range<usize> {
    while r.start < r.end && is_lws(b[r.start]) {
        r.start += 1;
    }
    while r.end > r.start && is_lws(b[r.end - 1]) {
        r.end -= 1;
    }
    r
}

/// `(end of content, start of next line)` for the line at `pos`.
pub(super) fn line_at(b: &[u8], pos: usize) -> Option<(usize, usize)> {
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
pub(super) struct Quotes {
    inside: bool,
    escape: bool,
}

impl Quotes {
    /// Feeds the next byte; true when it belongs to a quoted-string (its
    /// quotes included).
    pub(super) fn feed(&mut self, c: u8) -> bool {
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

/// Every element of a comma-separated list at `r`, empty ones included
/// (`a,,b` has three), LWS-trimmed.
pub(super) fn list_elements(b: &[u8], r: Range<usize>) -> Vec<Range<usize>> {
    // Most values hold one element: no comma, nothing to scan for.
    if !b[r.clone()].contains(&b',') {
        return vec![trim(b, r)];
    }
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

pub(super) fn skip_lws(b: &[u8], mut i: usize, end: usize) -> usize {
    while i < end && is_lws(b[i]) {
        i += 1;
    }
    i
}

/// The end of the quoted-string starting at `b[i] == '"'` (just past the
/// closing quote); `None` when it is not terminated.
pub(super) fn quoted_end(b: &[u8], i: usize, end: usize) -> Option<usize> {
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
