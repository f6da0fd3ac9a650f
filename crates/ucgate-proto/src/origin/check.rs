//! Checking a route's configured `origins` list against what browsers send.
//!
//! A browser's `Origin` is the page's origin serialised as in RFC 6454 §6.2:
//! `scheme://host[:port]`, scheme and host lower-case, the port only when it
//! is not the scheme's default, no path, query, fragment or user name. An
//! entry of another form either never matches ([`EntryError`]: `ws://…`, a
//! path, `https://*`, a wildcard inside the host, …) or matches only because
//! the gateway normalises it ([`Unusual`]: upper case, `:443`, a trailing
//! `/`, spaces around it); the first is a configuration error, the second a
//! warning with the form to write, so that a file that worked keeps working.

use super::policy::{default_port, Origin, OriginPolicy};

/// Why an `origins` entry can never match a browser's `Origin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryError {
    /// Empty or only whitespace.
    Empty,
    /// `"*"` next to other entries.
    StarNotAlone,
    /// `null`: file:// pages and sandboxed iframes send it.
    Null,
    /// `ws://` or `wss://`: the socket's URL, not the page's origin.
    WebSocketScheme {
        /// The page origin this probably meant.
        fix: Option<String>,
    },
    /// `file://…`: such pages send `null`.
    FileScheme,
    /// No `scheme://`.
    NoScheme {
        /// The entry with `https://` in front, when that is an origin.
        fix: Option<String>,
    },
    /// `https://*`.
    BareWildcard,
    /// `https://*example.com`: `*` glued to a label.
    WildcardWithoutDot {
        /// The `*.`-form.
        fix: String,
    },
    /// A `*` elsewhere than as the whole leftmost label.
    MisplacedWildcard,
    /// A path after the host.
    Path {
        /// The origin without it.
        fix: Option<String>,
    },
    /// A `?query`.
    Query {
        /// The origin without it.
        fix: Option<String>,
    },
    /// A `#fragment`.
    Fragment {
        /// The origin without it.
        fix: Option<String>,
    },
    /// `user@` or `user:password@` before the host.
    Userinfo {
        /// The origin without it.
        fix: Option<String>,
    },
    /// Whitespace or a control character inside the entry.
    Whitespace,
    /// A host with non-ASCII letters (browsers send the `xn--` form).
    NonAscii,
    /// A port that is not a number from 1 to 65535.
    BadPort,
    /// Anything else that is not `scheme://host[:port]`.
    Malformed,
}

fn did_you_mean(f: &mut std::fmt::Formatter<'_>, fix: &Option<String>) -> std::fmt::Result {
    match fix {
        Some(fix) => write!(f, "; did you mean `{fix}`?"),
        None => Ok(()),
    }
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntryError::Empty => f.write_str("an empty entry matches no origin; remove it"),
            EntryError::StarNotAlone => {
                f.write_str("\"*\" allows every origin and must be the only entry")
            }
            EntryError::Null => f.write_str(
                "`null` is the Origin of file:// pages, sandboxed iframes and some redirects: any page can send it, so it cannot be allowed by name (only `origins = [\"*\"]` lets such pages in); serve the page from http(s)://",
            ),
            EntryError::WebSocketScheme { fix } => {
                f.write_str("never matches: browsers send the origin of the page that opens the socket (http:// or https://), not the WebSocket URL (ws:// or wss://)")?;
                did_you_mean(f, fix)
            }
            EntryError::FileScheme => f.write_str(
                "never matches: pages opened from file:// send the Origin `null`, which cannot be allowed by name; serve the page from http(s)://",
            ),
            EntryError::NoScheme { fix } => {
                f.write_str("an origin starts with its scheme (`https://` or `http://`)")?;
                did_you_mean(f, fix)
            }
            EntryError::BareWildcard => f.write_str(
                "`*` as the whole host matches nothing: write `origins = [\"*\"]` to allow every page, or `https://*.example.com` for the subdomains of one domain",
            ),
            EntryError::WildcardWithoutDot { fix } => write!(
                f,
                "a wildcard stands for whole labels, so a `*` joined to a name matches nothing; did you mean `{fix}` (the subdomains only: list the domain itself separately)?"
            ),
            EntryError::MisplacedWildcard => f.write_str(
                "never matches: `*` may only be the leftmost label, as in `https://*.example.com` (every subdomain of example.com)",
            ),
            EntryError::Path { fix } => {
                f.write_str("never matches: an Origin has no path (browsers send scheme, host and port only)")?;
                did_you_mean(f, fix)
            }
            EntryError::Query { fix } => {
                f.write_str("never matches: an Origin has no query")?;
                did_you_mean(f, fix)
            }
            EntryError::Fragment { fix } => {
                f.write_str("never matches: an Origin has no fragment")?;
                did_you_mean(f, fix)
            }
            EntryError::Userinfo { fix } => {
                f.write_str("never matches: an Origin has no user name or password")?;
                did_you_mean(f, fix)
            }
            EntryError::Whitespace => {
                f.write_str("never matches: contains whitespace or a control character")
            }
            EntryError::NonAscii => f.write_str(
                "never matches: browsers send an internationalised host name in its ASCII form (`xn--…`; `idn2 NAME` prints it)",
            ),
            EntryError::BadPort => f.write_str("the port must be a number from 1 to 65535"),
            EntryError::Malformed => f.write_str(
                "expected an origin such as \"https://app.example.com\" or \"http://localhost:8080\" (scheme, host and optional port, no path)",
            ),
        }
    }
}

impl std::error::Error for EntryError {}

/// A form that matches only because the gateway normalises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusual {
    /// Spaces around the entry.
    Whitespace,
    /// Upper-case letters in the scheme or host.
    Uppercase,
    /// The scheme's default port written out.
    DefaultPort,
    /// A `/` after the host.
    TrailingSlash,
}

impl Unusual {
    fn why(self) -> &'static str {
        match self {
            Unusual::Whitespace => "without spaces",
            Unusual::Uppercase => "in lower case",
            Unusual::DefaultPort => "without the scheme's default port",
            Unusual::TrailingSlash => "without a trailing `/`",
        }
    }
}

/// A valid entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The normalised origin or pattern.
    pub origin: Origin,
    /// How it differs from what a browser sends (empty: not at all).
    pub unusual: Vec<Unusual>,
}

impl Entry {
    /// The warning for an entry written differently from what browsers
    /// send, naming the form to write.
    pub fn warning(&self) -> Option<String> {
        if self.unusual.is_empty() {
            return None;
        }
        let why: Vec<&str> = self.unusual.iter().map(|u| u.why()).collect();
        Some(format!(
            "matches, but browsers send `{}` ({}): write it that way",
            self.origin.as_string(),
            why.join(", ")
        ))
    }
}

/// Checks one `origins` entry other than the lone `"*"`.
pub fn check_entry(entry: &str) -> Result<Entry, EntryError> {
    let mut unusual = Vec::new();
    let s = entry.trim();
    if s.is_empty() {
        return Err(EntryError::Empty);
    }
    if s.len() != entry.len() {
        unusual.push(Unusual::Whitespace);
    }
    if s.eq_ignore_ascii_case("null") {
        return Err(EntryError::Null);
    }
    let spaced = s.chars().any(|c| c.is_whitespace() || c.is_control());
    let Some((scheme, rest)) = s.split_once("://") else {
        if spaced {
            return Err(EntryError::Malformed);
        }
        let fix = (!s.contains(':') || s.starts_with('['))
            .then(|| canonical(&format!("https://{s}")))
            .flatten();
        return Err(EntryError::NoScheme { fix });
    };
    if spaced {
        return Err(EntryError::Whitespace);
    }
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
    {
        return Err(EntryError::Malformed);
    }
    let lower = scheme.to_ascii_lowercase();
    if lower != scheme {
        unusual.push(Unusual::Uppercase);
    }
    // The authority ends at the first `/`, `?` or `#`.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let page_scheme = match lower.as_str() {
        "ws" => Some("http"),
        "wss" => Some("https"),
        _ => None,
    };
    if let Some(page) = page_scheme {
        return Err(EntryError::WebSocketScheme {
            fix: canonical(&format!("{page}://{hostport}")),
        });
    }
    if lower == "file" {
        return Err(EntryError::FileScheme);
    }
    let fix = || canonical(&format!("{lower}://{hostport}"));
    if userinfo.is_some() {
        return Err(EntryError::Userinfo { fix: fix() });
    }
    match tail.as_bytes().first() {
        None => {}
        Some(b'/') if tail == "/" => unusual.push(Unusual::TrailingSlash),
        Some(b'/') => return Err(EntryError::Path { fix: fix() }),
        Some(b'?') => return Err(EntryError::Query { fix: fix() }),
        Some(_) => return Err(EntryError::Fragment { fix: fix() }),
    }
    let (host, port) = split_raw(hostport)?;
    if !host.is_ascii() {
        return Err(EntryError::NonAscii);
    }
    // What a browser's serialised host can hold: a DNS name or IPv4 address,
    // or an IPv6 address in brackets (and the `*` checked next).
    let host_chars = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.'),
        None => host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._*".contains(&b)),
    };
    if !host_chars {
        return Err(EntryError::Malformed);
    }
    check_wildcard(&lower, host, port)?;
    if host.bytes().any(|b| b.is_ascii_uppercase()) && !unusual.contains(&Unusual::Uppercase) {
        unusual.push(Unusual::Uppercase);
    }
    let port = match port {
        Some(p) => Some(parse_port(p)?),
        None => None,
    };
    if port.is_some() && port == default_port(&lower) {
        unusual.push(Unusual::DefaultPort);
    }
    Ok(Entry {
        origin: Origin {
            scheme: lower.clone(),
            host: host.to_ascii_lowercase(),
            port: port.filter(|p| Some(*p) != default_port(&lower)),
        },
        unusual,
    })
}

/// The normalised form of `s`, if it is a valid entry.
fn canonical(s: &str) -> Option<String> {
    check_entry(s).ok().map(|e| e.origin.as_string())
}

/// `host[:port]` as written (a `[v6]` host keeps its brackets).
fn split_raw(s: &str) -> Result<(&str, Option<&str>), EntryError> {
    let (host, port) = if s.starts_with('[') {
        let close = s.find(']').ok_or(EntryError::Malformed)?;
        match &s[close + 1..] {
            "" => (&s[..=close], None),
            after => match after.strip_prefix(':') {
                Some(p) => (&s[..=close], Some(p)),
                None => return Err(EntryError::Malformed),
            },
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() || host == "[]" || (!host.starts_with('[') && host.contains(':')) {
        return Err(EntryError::Malformed);
    }
    Ok((host, port))
}

fn parse_port(p: &str) -> Result<u16, EntryError> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(EntryError::BadPort),
    }
}

fn check_wildcard(scheme: &str, host: &str, port: Option<&str>) -> Result<(), EntryError> {
    if !host.contains('*') {
        return Ok(());
    }
    if host == "*" {
        return Err(EntryError::BareWildcard);
    }
    if let Some(rest) = host.strip_prefix("*.") {
        return match rest.contains('*') || rest.is_empty() || rest.starts_with('.') {
            true => Err(EntryError::MisplacedWildcard),
            false => Ok(()),
        };
    }
    match host.strip_prefix('*') {
        Some(rest) if !rest.contains('*') && !rest.starts_with('.') => {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            match canonical(&format!("{scheme}://*.{rest}{port}")) {
                Some(fix) => Err(EntryError::WildcardWithoutDot { fix }),
                None => Err(EntryError::MisplacedWildcard),
            }
        }
        _ => Err(EntryError::MisplacedWildcard),
    }
}

/// What [`check_list`] found in one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The entry never matches.
    Error(EntryError),
    /// The entry matches but is not written as browsers send it.
    Warning(String),
}

/// Checks a whole `origins` list: the policy when no entry has an error,
/// and every finding with the index of its entry, in order.
pub fn check_list<S: AsRef<str>>(list: &[S]) -> (Option<OriginPolicy>, Vec<(usize, Finding)>) {
    if list.is_empty() {
        return (Some(OriginPolicy::SameOrigin), Vec::new());
    }
    if list.len() == 1 && list[0].as_ref().trim() == "*" {
        return (Some(OriginPolicy::Any), Vec::new());
    }
    let mut findings = Vec::new();
    let mut origins = Vec::new();
    for (i, s) in list.iter().enumerate() {
        if s.as_ref().trim() == "*" {
            findings.push((i, Finding::Error(EntryError::StarNotAlone)));
            continue;
        }
        match check_entry(s.as_ref()) {
            Ok(e) => {
                if let Some(w) = e.warning() {
                    findings.push((i, Finding::Warning(w)));
                }
                origins.push(e.origin);
            }
            Err(e) => findings.push((i, Finding::Error(e))),
        }
    }
    let ok = !findings.iter().any(|(_, f)| matches!(f, Finding::Error(_)));
    (ok.then_some(OriginPolicy::List(origins)), findings)
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
