//! The server side of the WebSocket opening handshake, as a pure decision.
//!
//! Two transports carry the same checks:
//!
//! * HTTP/1.1 `GET` with `Upgrade: websocket` (RFC 6455 §4.2.1), answered
//!   with `101 Switching Protocols` and `Sec-WebSocket-Accept`;
//! * HTTP/2 extended `CONNECT` with `:protocol = websocket` (RFC 8441 §4–5),
//!   answered with `200` and no key exchange.
//!
//! The decision order is fixed so that the status a client sees is
//! predictable: not a WebSocket handshake (426) → bad handshake fields (400) →
//! unsupported version (426 with `Sec-WebSocket-Version: 13`, RFC 6455 §4.4) →
//! `Origin` not allowed (403, RFC 6455 §4.2.2) → no acceptable subprotocol
//! (400).
//!
//! Subprotocols: the first protocol in the client's offer (client preference
//! order, RFC 6455 §4.1 `Sec-WebSocket-Protocol`) that the route accepts is
//! selected. A client that offers protocols of which none is acceptable is
//! refused with 400 before the upgrade: a browser would fail such a
//! connection anyway once it saw no protocol selected, and the refusal is
//! clearer in both the client's console and the gateway's log. A route that
//! requires a subprotocol refuses a client that offers none.
//!
//! The `Sec-WebSocket-Accept` digest itself (SHA-1) is computed by the glue
//! from [`Decision::Accept::key`].

use crate::origin::OriginPolicy;

/// HTTP version of the request carrying the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/1.0 or HTTP/1.1 (`Upgrade` mechanism).
    Http1,
    /// HTTP/2 (extended CONNECT, RFC 8441).
    Http2,
}

impl HttpVersion {
    /// Short label used in metrics and logs: `h1` or `h2`.
    pub fn label(self) -> &'static str {
        match self {
            HttpVersion::Http1 => "h1",
            HttpVersion::Http2 => "h2",
        }
    }
}

/// The handshake-relevant parts of a request, as plain strings.
#[derive(Debug, Clone, Default)]
pub struct HandshakeRequest<'a> {
    /// HTTP version ([`HttpVersion::Http1`] if `None`).
    pub version: Option<HttpVersion>,
    /// Request method (`GET`, `CONNECT`, …).
    pub method: &'a str,
    /// HTTP/1.1 `Upgrade` header.
    pub upgrade: Option<&'a str>,
    /// HTTP/1.1 `Connection` header.
    pub connection: Option<&'a str>,
    /// HTTP/2 `:protocol` pseudo-header (RFC 8441 §4).
    pub protocol: Option<&'a str>,
    /// `Sec-WebSocket-Version`.
    pub ws_version: Option<&'a str>,
    /// `Sec-WebSocket-Key` (HTTP/1.1 only).
    pub ws_key: Option<&'a str>,
    /// Every `Sec-WebSocket-Protocol` header value (each may hold a comma list).
    pub subprotocols: Vec<&'a str>,
    /// `Origin`.
    pub origin: Option<&'a str>,
    /// `Host` (HTTP/1.1) or `:authority` (HTTP/2).
    pub host: Option<&'a str>,
    /// True when the request arrived over TLS.
    pub secure: bool,
}

/// A route's WebSocket acceptance rules.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// Allowed browser origins.
    pub origins: &'a OriginPolicy,
    /// Subprotocols this route speaks, in no particular order.
    pub subprotocols: &'a [String],
    /// Refuse clients that do not offer one of `subprotocols`.
    pub require_subprotocol: bool,
}

/// The outcome of a handshake check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead and upgrade.
    Accept {
        /// The subprotocol to name in the response, if any.
        subprotocol: Option<String>,
        /// The client's key (HTTP/1.1), for `Sec-WebSocket-Accept`.
        key: Option<String>,
    },
    /// Answer with an HTTP error and do not upgrade.
    Refuse(Refusal),
}

/// Why a handshake was refused. Each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A plain request on a WebSocket-only route (426).
    NotWebSocket,
    /// HTTP/2 `CONNECT` with a `:protocol` other than `websocket` (400).
    WrongProtocol,
    /// HTTP/1.1 upgrade with a method other than `GET` (405).
    WrongMethod,
    /// `Connection` lacks the `upgrade` token (400).
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Key` missing or not 16 base64-encoded bytes (400).
    BadKey,
    /// `Sec-WebSocket-Version` is not 13 (426, with the supported version).
    UnsupportedVersion,
    /// `Origin` not allowed on this route (403).
    OriginForbidden,
    /// The client offered no acceptable subprotocol (400).
    Subprotocol {
        /// What the route accepts.
        expected: Vec<String>,
        /// True if the client offered nothing at all.
        offered_none: bool,
    },
}

impl Refusal {
    /// The HTTP status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::NotWebSocket | Refusal::UnsupportedVersion => 426,
            Refusal::WrongMethod => 405,
            Refusal::OriginForbidden => 403,
            Refusal::WrongProtocol
            | Refusal::MissingConnectionUpgrade
            | Refusal::BadKey
            | Refusal::Subprotocol { .. } => 400,
        }
    }

    /// A short, stable label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::NotWebSocket => "not_websocket",
            Refusal::WrongProtocol => "wrong_protocol",
            Refusal::WrongMethod => "wrong_method",
            Refusal::MissingConnectionUpgrade => "missing_connection_upgrade",
            Refusal::BadKey => "bad_key",
            Refusal::UnsupportedVersion => "unsupported_version",
            Refusal::OriginForbidden => "origin_forbidden",
            Refusal::Subprotocol { .. } => "subprotocol",
        }
    }

    /// Extra response headers the status calls for.
    pub fn headers(&self, version: HttpVersion) -> Vec<(&'static str, String)> {
        let mut h = Vec::new();
        match self {
            // RFC 9110 §15.5.22: 426 carries `Upgrade`. HTTP/2 forbids the
            // connection-specific `Upgrade` header (RFC 9113 §8.2.2).
            Refusal::NotWebSocket if version == HttpVersion::Http1 => {
                h.push(("upgrade", "websocket".to_string()));
                h.push(("connection", "Upgrade".to_string()));
                h.push(("sec-websocket-version", "13".to_string()));
            }
            Refusal::UnsupportedVersion => {
                if version == HttpVersion::Http1 {
                    h.push(("upgrade", "websocket".to_string()));
                    h.push(("connection", "Upgrade".to_string()));
                }
                h.push(("sec-websocket-version", "13".to_string()));
            }
            Refusal::WrongMethod => h.push(("allow", "GET".to_string())),
            _ => {}
        }
        h
    }

    /// A human-readable body for the refusal.
    pub fn message(&self, version: HttpVersion) -> String {
        match self {
            Refusal::NotWebSocket => match version {
                HttpVersion::Http1 => "this path is a WebSocket endpoint: send GET with `Upgrade: websocket` and `Connection: Upgrade` (RFC 6455)".into(),
                HttpVersion::Http2 => "this path is a WebSocket endpoint: send an extended CONNECT with `:protocol: websocket` (RFC 8441)".into(),
            },
            Refusal::WrongProtocol => "extended CONNECT here only carries `:protocol: websocket`".into(),
            Refusal::WrongMethod => "a WebSocket upgrade must use GET".into(),
            Refusal::MissingConnectionUpgrade => "the `Connection` header must contain `Upgrade`".into(),
            Refusal::BadKey => "`Sec-WebSocket-Key` must be 16 random bytes in base64".into(),
            Refusal::UnsupportedVersion => "only WebSocket version 13 is supported".into(),
            Refusal::OriginForbidden => "this Origin is not allowed on this route".into(),
            Refusal::Subprotocol { expected, offered_none } => {
                let list = expected.join(", ");
                if *offered_none {
                    format!("this route requires a WebSocket subprotocol: offer one of: {list}")
                } else {
                    format!("none of the offered WebSocket subprotocols is served here; this route accepts: {list}")
                }
            }
        }
    }
}

fn has_token(header: Option<&str>, token: &str) -> bool {
    header.is_some_and(|h| h.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// True if `key` is 16 bytes in canonical base64 (24 characters ending `==`).
pub fn valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() == 24
        && b[22] == b'='
        && b[23] == b'='
        && b[..22]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
        // the last significant character carries 2 data bits + 4 zero bits
        && b"AQgw".contains(&b[21])
}

/// True if the request looks like a WebSocket handshake at all (used to tell
/// a WebSocket attempt from a plain request on routes that serve both).
pub fn is_handshake(req: &HandshakeRequest<'_>) -> bool {
    match req.version.unwrap_or(HttpVersion::Http1) {
        HttpVersion::Http1 => has_token(req.upgrade, "websocket"),
        HttpVersion::Http2 => req.method.eq_ignore_ascii_case("CONNECT") && req.protocol.is_some(),
    }
}

/// Checks a handshake against a route's policy.
pub fn decide(req: &HandshakeRequest<'_>, policy: Policy<'_>) -> Decision {
    let version = req.version.unwrap_or(HttpVersion::Http1);
    let mut key = None;
    match version {
        HttpVersion::Http1 => {
            if !has_token(req.upgrade, "websocket") {
                return Decision::Refuse(Refusal::NotWebSocket);
            }
            if req.method != "GET" {
                return Decision::Refuse(Refusal::WrongMethod);
            }
            if !has_token(req.connection, "upgrade") {
                return Decision::Refuse(Refusal::MissingConnectionUpgrade);
            }
        }
        HttpVersion::Http2 => {
            if req.method != "CONNECT" {
                return Decision::Refuse(Refusal::NotWebSocket);
            }
            match req.protocol {
                Some(p) if p.eq_ignore_ascii_case("websocket") => {}
                _ => return Decision::Refuse(Refusal::WrongProtocol),
            }
        }
    }
    if req.ws_version.map(str::trim) != Some("13") {
        return Decision::Refuse(Refusal::UnsupportedVersion);
    }
    if version == HttpVersion::Http1 {
        match req.ws_key.map(str::trim) {
            Some(k) if valid_key(k) => key = Some(k.to_string()),
            _ => return Decision::Refuse(Refusal::BadKey),
        }
    }
    if !policy.origins.allows(req.origin, req.host, req.secure) {
        return Decision::Refuse(Refusal::OriginForbidden);
    }
    let offered: Vec<&str> = req
        .subprotocols
        .iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let selected = offered
        .iter()
        .find(|o| policy.subprotocols.iter().any(|p| p == *o))
        .map(|s| s.to_string());
    if selected.is_none() && (!offered.is_empty() || policy.require_subprotocol) {
        return Decision::Refuse(Refusal::Subprotocol {
            expected: policy.subprotocols.to_vec(),
            offered_none: offered.is_empty(),
        });
    }
    Decision::Accept {
        subprotocol: selected,
        key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn h1<'a>() -> HandshakeRequest<'a> {
        HandshakeRequest {
            version: Some(HttpVersion::Http1),
            method: "GET",
            upgrade: Some("websocket"),
            connection: Some("keep-alive, Upgrade"),
            ws_version: Some("13"),
            ws_key: Some(KEY),
            host: Some("gw.example:5280"),
            ..Default::default()
        }
    }

    fn h2<'a>() -> HandshakeRequest<'a> {
        HandshakeRequest {
            version: Some(HttpVersion::Http2),
            method: "CONNECT",
            protocol: Some("websocket"),
            ws_version: Some("13"),
            host: Some("gw.example"),
            secure: true,
            ..Default::default()
        }
    }

    fn open() -> OriginPolicy {
        OriginPolicy::Any
    }

    fn pol<'a>(o: &'a OriginPolicy, protos: &'a [String], req: bool) -> Policy<'a> {
        Policy {
            origins: o,
            subprotocols: protos,
            require_subprotocol: req,
        }
    }

    #[test]
    fn accepts_rfc6455_example() {
        let o = open();
        assert_eq!(
            decide(&h1(), pol(&o, &[], false)),
            Decision::Accept {
                subprotocol: None,
                key: Some(KEY.into())
            }
        );
    }

    #[test]
    fn accepts_rfc8441() {
        let o = open();
        assert_eq!(
            decide(&h2(), pol(&o, &[], false)),
            Decision::Accept {
                subprotocol: None,
                key: None
            }
        );
    }

    #[test]
    fn plain_requests_get_426() {
        let o = open();
        let mut r = h1();
        r.upgrade = None;
        let d = decide(&r, pol(&o, &[], false));
        assert_eq!(d, Decision::Refuse(Refusal::NotWebSocket));
        assert_eq!(Refusal::NotWebSocket.status(), 426);
        assert!(Refusal::NotWebSocket
            .headers(HttpVersion::Http1)
            .contains(&("upgrade", "websocket".into())));
        assert!(Refusal::NotWebSocket.headers(HttpVersion::Http2).is_empty());
        let mut r = h2();
        r.method = "GET";
        r.protocol = None;
        assert_eq!(
            decide(&r, pol(&o, &[], false)),
            Decision::Refuse(Refusal::NotWebSocket)
        );
    }

    #[test]
    fn handshake_field_errors() {
        let o = open();
        let p = pol(&o, &[], false);
        let mut r = h1();
        r.method = "POST";
        assert_eq!(decide(&r, p), Decision::Refuse(Refusal::WrongMethod));
        let mut r = h1();
        r.connection = Some("keep-alive");
        assert_eq!(
            decide(&r, p),
            Decision::Refuse(Refusal::MissingConnectionUpgrade)
        );
        for bad in [
            None,
            Some("short"),
            Some("dGhlIHNhbXBsZSBub25jZR=="),
            Some("dGhlIHNhbXBsZSBub25j!Q=="),
        ] {
            let mut r = h1();
            r.ws_key = bad;
            assert_eq!(decide(&r, p), Decision::Refuse(Refusal::BadKey), "{bad:?}");
        }
        let mut r = h1();
        r.ws_version = Some("8");
        assert_eq!(decide(&r, p), Decision::Refuse(Refusal::UnsupportedVersion));
        let mut r = h2();
        r.ws_version = None;
        assert_eq!(decide(&r, p), Decision::Refuse(Refusal::UnsupportedVersion));
        let mut r = h2();
        r.protocol = Some("webtransport");
        assert_eq!(decide(&r, p), Decision::Refuse(Refusal::WrongProtocol));
    }

    #[test]
    fn origin_checked_before_subprotocol() {
        let o = OriginPolicy::from_list(&["https://app.example"]).unwrap();
        let protos = vec!["xmpp".to_string()];
        let mut r = h2();
        r.origin = Some("https://evil.example");
        assert_eq!(
            decide(&r, pol(&o, &protos, true)),
            Decision::Refuse(Refusal::OriginForbidden)
        );
        assert_eq!(Refusal::OriginForbidden.status(), 403);
        r.origin = Some("https://app.example");
        r.subprotocols = vec!["xmpp"];
        assert!(matches!(
            decide(&r, pol(&o, &protos, true)),
            Decision::Accept { subprotocol: Some(ref s), .. } if s == "xmpp"
        ));
    }

    #[test]
    fn subprotocol_selection() {
        let o = open();
        let protos = vec!["binary".to_string(), "base64".to_string()];
        let mut r = h1();
        // client preference order wins, across several header lines
        r.subprotocols = vec!["chat, base64", "binary"];
        assert!(matches!(
            decide(&r, pol(&o, &protos, false)),
            Decision::Accept { subprotocol: Some(ref s), .. } if s == "base64"
        ));
        // offered, none acceptable: refused even when not required
        r.subprotocols = vec!["chat"];
        let d = decide(&r, pol(&o, &protos, false));
        assert_eq!(
            d,
            Decision::Refuse(Refusal::Subprotocol {
                expected: protos.clone(),
                offered_none: false
            })
        );
        // nothing offered: fine unless required
        r.subprotocols = vec![];
        assert!(matches!(
            decide(&r, pol(&o, &protos, false)),
            Decision::Accept {
                subprotocol: None,
                ..
            }
        ));
        let d = decide(&r, pol(&o, &protos, true));
        let Decision::Refuse(refusal) = d else {
            panic!("expected refusal")
        };
        assert_eq!(refusal.status(), 400);
        assert!(refusal
            .message(HttpVersion::Http1)
            .contains("binary, base64"));
    }
}
