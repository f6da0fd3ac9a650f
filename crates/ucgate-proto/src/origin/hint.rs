//! What to tell the operator when a browser's `Origin` was refused: the
//! exact `origins` line that would allow it, computed from the route's
//! current list, or why it cannot be allowed by name.

use super::check::check_entry;
use super::policy::{default_port, split_host_port, Origin, OriginPolicy};

/// Where the route is in the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteAt<'a> {
    /// The route's `path`.
    pub path: &'a str,
    /// The line of its `origins` key, if it has one.
    pub origins_line: Option<usize>,
    /// The line of its `[[route]]` header.
    pub route_line: usize,
}

/// The gateway's own origin as a page served by it would send it: the
/// scheme of the connection and the `Host` the client asked for.
pub fn own_origin(host: Option<&str>, secure: bool) -> Option<Origin> {
    let scheme = if secure { "https" } else { "http" };
    let (host, port) = split_host_port(host?)?;
    let own = Origin {
        scheme: scheme.to_string(),
        host,
        port: port.filter(|p| Some(*p) != default_port(scheme)),
    };
    // Only a host a browser could have in its Origin (the client wrote it).
    let valid = !own.host.contains('*') && check_entry(&own.as_string()).is_ok();
    valid.then_some(own)
}

/// Longer than any browser's Origin (a host name has at most 253 bytes).
const MAX_ORIGIN: usize = 300;

fn toml_list(list: &[String]) -> String {
    let quoted: Vec<String> = list.iter().map(|s| format!("\"{s}\"")).collect();
    format!("origins = [{}]", quoted.join(", "))
}

/// The hint for a refusal of `sent` on the route at `at` with `policy`;
/// `own` is the gateway's own origin for this request ([`own_origin`]),
/// which a same-origin route allows and a new list must keep.
pub fn allow_hint(
    sent: &str,
    policy: &OriginPolicy,
    own: Option<&Origin>,
    at: RouteAt<'_>,
) -> String {
    let path = at.path;
    if sent.trim().eq_ignore_ascii_case("null") {
        return format!(
            "the Origin `null` (a file:// page, a sandboxed iframe) cannot be allowed by name on the [[route]] with path = \"{path}\": serve the page from http(s):// (only origins = [\"*\"], which lets every page in, would allow it)"
        );
    }
    if sent.len() > MAX_ORIGIN {
        return format!(
            "this Origin ({} bytes) is longer than any browser's; nothing to add",
            sent.len()
        );
    }
    let origin = match check_entry(sent) {
        Ok(e) => e.origin,
        Err(e) => {
            return format!(
                "this Origin cannot be listed in `origins` ({e}); a client that is not a browser should send no Origin"
            )
        }
    };
    let mut list: Vec<String> = match policy {
        OriginPolicy::List(l) => l.iter().map(Origin::as_string).collect(),
        OriginPolicy::SameOrigin | OriginPolicy::Any => {
            own.map(Origin::as_string).into_iter().collect()
        }
    };
    let new = origin.as_string();
    list.retain(|o| *o != new);
    list.push(new.clone());
    let line = toml_list(&list);
    match policy {
        OriginPolicy::List(_) => format!(
            "add \"{new}\" to `origins` of the [[route]] with path = \"{path}\" (config line {}): {line}",
            at.origins_line.unwrap_or(at.route_line)
        ),
        OriginPolicy::SameOrigin | OriginPolicy::Any => {
            let keep = match own {
                Some(o) => format!(
                    " (a list replaces the same-origin default, so it keeps the gateway's own \"{}\")",
                    o.as_string()
                ),
                None => String::new(),
            };
            format!(
                "set `origins` of the [[route]] with path = \"{path}\" (config line {}): {line}{keep}",
                at.origins_line.unwrap_or(at.route_line)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(origins_line: Option<usize>) -> RouteAt<'static> {
        RouteAt {
            path: "/xmpp-websocket",
            origins_line,
            route_line: 10,
        }
    }

    #[test]
    fn adds_to_the_current_list() {
        let p = OriginPolicy::from_list(&["https://existing.example", "https://*.chat.example"])
            .unwrap();
        assert_eq!(
            allow_hint("https://Chat.Example.com:443", &p, None, at(Some(12))),
            "add \"https://chat.example.com\" to `origins` of the [[route]] with path = \"/xmpp-websocket\" (config line 12): origins = [\"https://existing.example\", \"https://*.chat.example\", \"https://chat.example.com\"]"
        );
        let p = OriginPolicy::from_list(&["http://localhost:8080"]).unwrap();
        assert_eq!(
            allow_hint("http://localhost:8081", &p, None, at(Some(3))),
            "add \"http://localhost:8081\" to `origins` of the [[route]] with path = \"/xmpp-websocket\" (config line 3): origins = [\"http://localhost:8080\", \"http://localhost:8081\"]"
        );
    }

    #[test]
    fn a_same_origin_route_keeps_its_own_origin() {
        let own = own_origin(Some("GW.example:443"), true).unwrap();
        assert_eq!(own.as_string(), "https://gw.example");
        assert_eq!(
            allow_hint("https://app.example", &OriginPolicy::SameOrigin, Some(&own), at(None)),
            "set `origins` of the [[route]] with path = \"/xmpp-websocket\" (config line 10): origins = [\"https://gw.example\", \"https://app.example\"] (a list replaces the same-origin default, so it keeps the gateway's own \"https://gw.example\")"
        );
        assert_eq!(
            allow_hint("https://app.example", &OriginPolicy::SameOrigin, None, at(None)),
            "set `origins` of the [[route]] with path = \"/xmpp-websocket\" (config line 10): origins = [\"https://app.example\"]"
        );
        assert_eq!(
            own_origin(Some("127.0.0.1:5280"), false)
                .unwrap()
                .as_string(),
            "http://127.0.0.1:5280"
        );
        assert_eq!(own_origin(Some("a:b:c"), false), None);
        assert_eq!(own_origin(Some("a\"b"), false), None);
        assert_eq!(own_origin(Some("*.gw.example"), false), None);
        assert_eq!(own_origin(None, false), None);
    }

    #[test]
    fn null_and_non_origins_cannot_be_listed() {
        let p = OriginPolicy::from_list(&["https://a.example"]).unwrap();
        assert_eq!(
            allow_hint("null", &p, None, at(Some(12))),
            "the Origin `null` (a file:// page, a sandboxed iframe) cannot be allowed by name on the [[route]] with path = \"/xmpp-websocket\": serve the page from http(s):// (only origins = [\"*\"], which lets every page in, would allow it)"
        );
        assert_eq!(
            allow_hint("wss://gw.example", &p, None, at(Some(12))),
            "this Origin cannot be listed in `origins` (never matches: browsers send the origin of the page that opens the socket (http:// or https://), not the WebSocket URL (ws:// or wss://); did you mean `https://gw.example`?); a client that is not a browser should send no Origin"
        );
        let long = format!("https://{}.example", "a".repeat(300));
        assert_eq!(
            allow_hint(&long, &p, None, at(Some(12))),
            "this Origin (316 bytes) is longer than any browser's; nothing to add"
        );
        assert!(allow_hint("garbage", &p, None, at(Some(12))).starts_with(
            "this Origin cannot be listed in `origins` (an origin starts with its scheme"
        ));
    }
}
