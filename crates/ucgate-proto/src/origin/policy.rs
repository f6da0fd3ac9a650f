//! Origins and the policy that matches them (see [`super`]).

/// A normalised origin: `scheme://host[:port]`, lower-case, no default port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub(super) scheme: String,
    pub(super) host: String,
    pub(super) port: Option<u16>,
}

/// Why an origin string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// Not of the form `scheme://host[:port]`.
    #[error("expected an origin such as \"https://app.example.com\" or \"http://localhost:8080\" (scheme, host and optional port, no path)")]
    Malformed,
}

pub(crate) fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// Splits `host[:port]` (with `[v6]` brackets) and lower-cases the host.
pub(crate) fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if s.is_empty() {
        return None;
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let close = rest.find(']')?;
        let host = &s[..close + 2];
        let after = &rest[close + 1..];
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return None,
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    // An unbracketed host has no `:` (an IPv6 address needs brackets).
    let unbracketed_colon = !host.starts_with('[') && host.contains(':');
    if host.is_empty()
        || unbracketed_colon
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/' || c == '@')
    {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((host.to_ascii_lowercase(), port))
}

impl Origin {
    /// Parses and normalises an origin such as `https://App.Example:443`.
    pub fn parse(s: &str) -> Result<Origin, OriginError> {
        let s = s.trim();
        let (scheme, rest) = s.split_once("://").ok_or(OriginError::Malformed)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
        {
            return Err(OriginError::Malformed);
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = split_host_port(rest).ok_or(OriginError::Malformed)?;
        let port = port.filter(|p| Some(*p) != default_port(&scheme));
        Ok(Origin { scheme, host, port })
    }

    /// The normalised text form.
    pub fn as_string(&self) -> String {
        match self.port {
            Some(p) => format!("{}://{}:{}", self.scheme, self.host, p),
            None => format!("{}://{}", self.scheme, self.host),
        }
    }

    fn matches_pattern(&self, pattern: &Origin) -> bool {
        if self.scheme != pattern.scheme || self.port != pattern.port {
            return false;
        }
        match pattern.host.strip_prefix("*.") {
            // `*.example.com` matches `a.example.com` and `a.b.example.com`,
            // not `example.com` itself (list that separately).
            Some(suffix) => self
                .host
                .strip_suffix(suffix)
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            None => self.host == pattern.host,
        }
    }
}

/// Which browser origins may open a WebSocket on a route.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OriginPolicy {
    /// Only pages served from this gateway's own scheme, host and port.
    #[default]
    SameOrigin,
    /// Any origin (`origins = ["*"]`).
    Any,
    /// Exactly these origins (hosts may start with `*.`).
    List(Vec<Origin>),
}

impl OriginPolicy {
    /// Decides whether a handshake may proceed.
    ///
    /// * `origin`: the `Origin` header, if any;
    /// * `host`: the `Host` header (HTTP/1.1) or `:authority` (HTTP/2);
    /// * `secure`: whether the request came over TLS (selects the scheme the
    ///   page must have for [`OriginPolicy::SameOrigin`]).
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>, secure: bool) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        match self {
            OriginPolicy::Any => true,
            OriginPolicy::SameOrigin => {
                let (Ok(o), Some(host)) = (Origin::parse(origin), host) else {
                    return false;
                };
                let scheme = if secure { "https" } else { "http" };
                let Some((h, p)) = split_host_port(host) else {
                    return false;
                };
                let p = p.filter(|p| Some(*p) != default_port(scheme));
                o.scheme == scheme && o.host == h && o.port == p
            }
            OriginPolicy::List(list) => match Origin::parse(origin) {
                Ok(o) => list.iter().any(|pat| o.matches_pattern(pat)),
                Err(_) => false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(
            Origin::parse("HTTPS://App.Example:443")
                .unwrap()
                .as_string(),
            "https://app.example"
        );
        assert_eq!(
            Origin::parse("http://localhost:8080/").unwrap().as_string(),
            "http://localhost:8080"
        );
        assert_eq!(
            Origin::parse("http://[::1]:80").unwrap().as_string(),
            "http://[::1]"
        );
        assert!(Origin::parse("null").is_err());
        assert!(Origin::parse("https://").is_err());
        assert!(Origin::parse("https://a.example:99999").is_err());
        assert!(Origin::parse("https://user@a.example").is_err());
    }

    /// Found by the `websocket_handshake` fuzz target
    /// (fuzz/regressions/websocket_handshake/): `http://::80` parsed, with
    /// host `:`, and normalised to `http://:`, which does not parse. A host
    /// with a `:` outside brackets is malformed, in an Origin and in a Host.
    #[test]
    fn an_unbracketed_colon_in_the_host_is_malformed() {
        for bad in ["http://::80", "http://a:b:80", "http://::1", "https://a:b"] {
            assert_eq!(Origin::parse(bad), Err(OriginError::Malformed), "{bad}");
        }
        assert!(OriginPolicy::from_list(&["http://a:b:8080"]).is_err());
        let p = OriginPolicy::SameOrigin;
        assert!(!p.allows(Some("http://a:b"), Some("a:b"), false));
        assert!(p.allows(Some("http://[::1]:8080"), Some("[::1]:8080"), false));
    }

    #[test]
    fn no_origin_is_not_a_browser() {
        for p in [
            OriginPolicy::SameOrigin,
            OriginPolicy::from_list(&["https://x.example"]).unwrap(),
        ] {
            assert!(p.allows(None, Some("gw:5280"), false));
        }
    }

    #[test]
    fn same_origin() {
        let p = OriginPolicy::SameOrigin;
        assert!(p.allows(
            Some("http://gw.example:5280"),
            Some("gw.example:5280"),
            false
        ));
        assert!(p.allows(Some("https://gw.example"), Some("GW.example:443"), true));
        // scheme must match the connection
        assert!(!p.allows(Some("http://gw.example"), Some("gw.example"), true));
        assert!(!p.allows(Some("https://evil.example"), Some("gw.example"), true));
        assert!(!p.allows(Some("http://gw.example:1"), Some("gw.example:5280"), false));
        assert!(!p.allows(Some("null"), Some("gw.example"), false));
        assert!(!p.allows(Some("http://gw.example"), None, false));
    }

    #[test]
    fn lists_and_wildcards() {
        let p =
            OriginPolicy::from_list(&["https://app.example", "https://*.chat.example"]).unwrap();
        assert!(p.allows(Some("https://app.example"), None, true));
        assert!(p.allows(Some("https://APP.example:443"), None, true));
        assert!(!p.allows(Some("http://app.example"), None, true));
        assert!(!p.allows(Some("https://app.example:8443"), None, true));
        assert!(p.allows(Some("https://a.chat.example"), None, true));
        assert!(p.allows(Some("https://a.b.chat.example"), None, true));
        assert!(!p.allows(Some("https://chat.example"), None, true));
        assert!(!p.allows(Some("https://evilchat.example"), None, true));
        assert!(!p.allows(Some("garbage"), None, true));
        assert_eq!(OriginPolicy::from_list(&["*"]).unwrap(), OriginPolicy::Any);
        assert!(OriginPolicy::Any.allows(Some("https://anything"), None, false));
        assert_eq!(
            OriginPolicy::from_list(&["https://ok.example", "bad"])
                .unwrap_err()
                .0,
            1
        );
        let empty: [&str; 0] = [];
        assert_eq!(
            OriginPolicy::from_list(&empty).unwrap(),
            OriginPolicy::SameOrigin
        );
    }
}
