//! Terminal binding conditions (XEP-0124 §17.2, XEP-0206 §6) and the
//! recoverable binding condition (§17.3), rendered as response bodies.
//!
//! # HTTP status
//!
//! XEP-0124 §17.1 deprecates HTTP error codes: every condition is sent with
//! **HTTP 200** and `<body type='terminate' condition='…'/>`. The only
//! exception is a *legacy* client (one whose session creation request had
//! no `ver` attribute): for the three conditions marked `*` in the §17.2
//! table the connection manager SHOULD send the deprecated HTTP error code
//! instead — `bad-request` → 400, `policy-violation` → 403,
//! `item-not-found` → 404. The body is the same terminate body in both
//! cases (a legacy client ignores it; a modern one can read it).

use super::body::{render_body, BodyError};
use crate::xml::tag::escape;
use crate::xml::XmlError;
use crate::xmpp_ws::StreamEnd;

/// The namespace of the `<text/>` element carried by `undefined-condition`
/// (XEP-0124 §17.2 asks for application-specific information in the body;
/// the namespace is ucgate's own).
pub const NS_UCGATE_BOSH: &str = "urn:ucgate:bosh";

/// A terminal binding condition (XEP-0124 §17.2; `remote-stream-error` as
/// refined by XEP-0206 §6). Each one ends the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The format of an HTTP header or binding element received from the
    /// client is unacceptable (e.g. a syntax error).
    BadRequest,
    /// The `to` domain (or `route` target) is no longer serviced.
    HostGone,
    /// The `to` domain (or `route` target) is unknown to the gateway.
    HostUnknown,
    /// The creation request lacks a `to` (or it is empty).
    ImproperAddressing,
    /// The gateway hit an internal error.
    InternalServerError,
    /// Invalid `sid`, `stream`, a `rid` outside the window, a response no
    /// longer buffered, or a broken `key` sequence.
    ItemNotFound,
    /// Another request processed at the same time caused the session to
    /// terminate (sent on the other open requests).
    OtherRequest,
    /// The client broke the session rules (too many simultaneous requests,
    /// too frequent polling, a pause above `maxpause`, …).
    PolicyViolation,
    /// The gateway could not connect (securely) to the server, or lost the
    /// connection.
    RemoteConnectionFailed,
    /// A stream error from the XMPP server; the element is the complete,
    /// namespace-complete `<stream:error/>` as received (XEP-0206 §6: the
    /// whole element, not just its content). `None` when there is no
    /// element to relay.
    RemoteStreamError(Option<String>),
    /// The client should use this URI instead (rendered as `<uri/>`).
    SeeOtherUri(String),
    /// The gateway is shutting down.
    SystemShutdown,
    /// Anything else; the optional text is rendered as
    /// `<text xmlns='urn:ucgate:bosh'>…</text>` (escaped).
    UndefinedCondition(Option<String>),
}

impl Condition {
    /// The value of the `condition` attribute.
    pub fn name(&self) -> &'static str {
        match self {
            Condition::BadRequest => "bad-request",
            Condition::HostGone => "host-gone",
            Condition::HostUnknown => "host-unknown",
            Condition::ImproperAddressing => "improper-addressing",
            Condition::InternalServerError => "internal-server-error",
            Condition::ItemNotFound => "item-not-found",
            Condition::OtherRequest => "other-request",
            Condition::PolicyViolation => "policy-violation",
            Condition::RemoteConnectionFailed => "remote-connection-failed",
            Condition::RemoteStreamError(_) => "remote-stream-error",
            Condition::SeeOtherUri(_) => "see-other-uri",
            Condition::SystemShutdown => "system-shutdown",
            Condition::UndefinedCondition(_) => "undefined-condition",
        }
    }

    /// The BOSH terminal condition for the end of the server stream as the
    /// RFC 7395 translator reports it; `None` for an end without an error
    /// (the glue then calls `Session::on_server_close`).
    ///
    /// * The XMPP server's own `<stream:error/>` travels whole, text and
    ///   all, inside `remote-stream-error` (XEP-0206 §7), whatever its
    ///   condition (a server's `system-shutdown` or `host-unknown` too).
    /// * The gateway's own `host-unknown`, `remote-connection-failed` (the
    ///   server could not be reached, or the connection to it was lost)
    ///   and `system-shutdown` are the BOSH conditions of the same names
    ///   (XEP-0124 §17.2); any other error of the gateway's travels inside
    ///   `remote-stream-error`.
    pub fn from_stream_end(end: &StreamEnd) -> Option<Condition> {
        Some(match end {
            StreamEnd::Closed => return None,
            StreamEnd::ServerError(el) => Condition::RemoteStreamError(Some(el.clone())),
            StreamEnd::GatewayError { condition, element } => match *condition {
                "host-unknown" => Condition::HostUnknown,
                "remote-connection-failed" => Condition::RemoteConnectionFailed,
                "system-shutdown" => Condition::SystemShutdown,
                _ => Condition::RemoteStreamError(Some(element.clone())),
            },
        })
    }

    /// The condition for a name without content (the inverse of
    /// [`name`](Self::name); `see-other-uri` needs a URI and is `None`).
    pub fn from_name(name: &str) -> Option<Condition> {
        Some(match name {
            "bad-request" => Condition::BadRequest,
            "host-gone" => Condition::HostGone,
            "host-unknown" => Condition::HostUnknown,
            "improper-addressing" => Condition::ImproperAddressing,
            "internal-server-error" => Condition::InternalServerError,
            "item-not-found" => Condition::ItemNotFound,
            "other-request" => Condition::OtherRequest,
            "policy-violation" => Condition::PolicyViolation,
            "remote-connection-failed" => Condition::RemoteConnectionFailed,
            "remote-stream-error" => Condition::RemoteStreamError(None),
            "system-shutdown" => Condition::SystemShutdown,
            "undefined-condition" => Condition::UndefinedCondition(None),
            _ => return None,
        })
    }

    /// The HTTP status to send it with: 200, except 400 / 403 / 404 for
    /// `bad-request` / `policy-violation` / `item-not-found` when the
    /// client is `legacy` (no `ver` in its creation request, §17.1).
    pub fn http_status(&self, legacy: bool) -> u16 {
        match (self, legacy) {
            (Condition::BadRequest, true) => 400,
            (Condition::PolicyViolation, true) => 403,
            (Condition::ItemNotFound, true) => 404,
            _ => 200,
        }
    }
}

impl BodyError {
    /// The terminal condition to answer a refused body with.
    pub fn condition(&self) -> Condition {
        match self {
            BodyError::Xml(XmlError::Limit(_)) => Condition::PolicyViolation,
            _ => Condition::BadRequest,
        }
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Renders `<body type='terminate' condition='…'>` with `payloads` (queued
/// server elements, delivered before the session ends) followed by the
/// condition's own child (`<stream:error/>`, `<uri/>`, `<text/>`).
pub fn render_terminate(condition: &Condition, payloads: &[Vec<u8>]) -> String {
    let attrs = [
        ("type", "terminate".to_string()),
        ("condition", condition.name().to_string()),
    ];
    let mut children: Vec<Vec<u8>> = payloads.to_vec();
    match condition {
        Condition::RemoteStreamError(Some(el)) => children.push(el.trim().as_bytes().to_vec()),
        Condition::SeeOtherUri(uri) => {
            children.push(format!("<uri>{}</uri>", escape(uri)).into_bytes())
        }
        Condition::UndefinedCondition(Some(text)) => children.push(
            format!(
                "<text xmlns='{NS_UCGATE_BOSH}' xml:lang='en'>{}</text>",
                escape(text)
            )
            .into_bytes(),
        ),
        _ => {}
    }
    let stream = matches!(condition, Condition::RemoteStreamError(_));
    render_body(&attrs, &children, stream)
}

/// The immediate answer for a request that has no session to go to (an
/// unknown or expired `sid`: `item-not-found`), or any other condition:
/// `(HTTP status, body)` for a non-legacy client.
pub fn terminate_body(condition: &Condition) -> (u16, String) {
    terminate_body_legacy(condition, false)
}

/// [`terminate_body`] for a client known to be legacy or not.
pub fn terminate_body_legacy(condition: &Condition, legacy: bool) -> (u16, String) {
    (
        condition.http_status(legacy),
        render_terminate(condition, &[]),
    )
}

/// The recoverable binding error `<body type='error'/>` (XEP-0124 §17.3:
/// the client should re-send the requests that have no response), sent on
/// a request that waited `wait` for a lower `rid` that never came.
pub fn recoverable_error_body() -> String {
    render_body(&[("type", "error".to_string())], &[], false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ends_map_to_bosh_conditions() {
        use crate::xmpp_ws::stream_error;
        assert_eq!(Condition::from_stream_end(&StreamEnd::Closed), None);
        for (xmpp, bosh) in [
            ("host-unknown", Condition::HostUnknown),
            (
                "remote-connection-failed",
                Condition::RemoteConnectionFailed,
            ),
            ("system-shutdown", Condition::SystemShutdown),
        ] {
            let ours = StreamEnd::GatewayError {
                condition: xmpp,
                element: stream_error(xmpp, Some("why")),
            };
            assert_eq!(Condition::from_stream_end(&ours), Some(bosh));
            // the same condition from the server keeps its element, text and all
            let theirs = stream_error(xmpp, Some("Received SIGTERM"));
            assert_eq!(
                Condition::from_stream_end(&StreamEnd::ServerError(theirs.clone())),
                Some(Condition::RemoteStreamError(Some(theirs)))
            );
        }
        let bad = stream_error("policy-violation", None);
        assert_eq!(
            Condition::from_stream_end(&StreamEnd::GatewayError {
                condition: "policy-violation",
                element: bad.clone()
            }),
            Some(Condition::RemoteStreamError(Some(bad)))
        );
        let shutdown = stream_error("system-shutdown", Some("Received SIGTERM"));
        assert_eq!(
            render_terminate(
                &Condition::from_stream_end(&StreamEnd::ServerError(shutdown.clone())).unwrap(),
                &[]
            ),
            "<body xmlns='http://jabber.org/protocol/httpbind' xmlns:stream='http://etherx.jabber.org/streams' type='terminate' condition='remote-stream-error'><stream:error xmlns:stream='http://etherx.jabber.org/streams'><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Received SIGTERM</text></stream:error></body>"
        );
    }

    const ALL: [&str; 13] = [
        "bad-request",
        "host-gone",
        "host-unknown",
        "improper-addressing",
        "internal-server-error",
        "item-not-found",
        "other-request",
        "policy-violation",
        "remote-connection-failed",
        "remote-stream-error",
        "see-other-uri",
        "system-shutdown",
        "undefined-condition",
    ];

    #[test]
    fn every_condition_renders_exactly() {
        for name in ALL {
            let c = Condition::from_name(name)
                .unwrap_or_else(|| Condition::SeeOtherUri("https://x.example/b".into()));
            assert_eq!(c.name(), name);
            let (status, body) = terminate_body(&c);
            assert_eq!(status, 200, "{name}: HTTP 200 for non-legacy clients");
            match name {
                "see-other-uri" => assert_eq!(
                    body,
                    "<body xmlns='http://jabber.org/protocol/httpbind' type='terminate' condition='see-other-uri'><uri>https://x.example/b</uri></body>"
                ),
                "remote-stream-error" => assert_eq!(
                    body,
                    "<body xmlns='http://jabber.org/protocol/httpbind' xmlns:stream='http://etherx.jabber.org/streams' type='terminate' condition='remote-stream-error'/>"
                ),
                _ => assert_eq!(
                    body,
                    format!("<body xmlns='http://jabber.org/protocol/httpbind' type='terminate' condition='{name}'/>")
                ),
            }
            // every rendering is itself a valid body
            let req = super::super::body::parse_response_for_tests(&body);
            assert_eq!(req, ("terminate".to_string(), name.to_string()));
        }
    }

    #[test]
    fn legacy_http_codes() {
        let table = [
            (Condition::BadRequest, 400),
            (Condition::PolicyViolation, 403),
            (Condition::ItemNotFound, 404),
            (Condition::HostUnknown, 200),
            (Condition::RemoteConnectionFailed, 200),
            (Condition::SystemShutdown, 200),
            (Condition::OtherRequest, 200),
        ];
        for (c, legacy_status) in table {
            assert_eq!(c.http_status(false), 200, "{c}");
            assert_eq!(c.http_status(true), legacy_status, "{c}");
            assert_eq!(terminate_body_legacy(&c, true).0, legacy_status);
        }
    }

    #[test]
    fn content_bearing_conditions() {
        let err = "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>";
        let body = render_terminate(
            &Condition::RemoteStreamError(Some(err.into())),
            &[b"<message xmlns='jabber:client'><body>last</body></message>".to_vec()],
        );
        assert_eq!(
            body,
            format!("<body xmlns='http://jabber.org/protocol/httpbind' xmlns:stream='http://etherx.jabber.org/streams' type='terminate' condition='remote-stream-error'><message xmlns='jabber:client'><body>last</body></message>{err}</body>")
        );
        let body = render_terminate(&Condition::SeeOtherUri("https://a/?x=1&y='2'".into()), &[]);
        assert!(body.contains("<uri>https://a/?x=1&amp;y=&apos;2&apos;</uri>"));
        let body = render_terminate(&Condition::UndefinedCondition(Some("a<b".into())), &[]);
        assert!(body.contains("<text xmlns='urn:ucgate:bosh' xml:lang='en'>a&lt;b</text>"));
        assert_eq!(
            recoverable_error_body(),
            "<body xmlns='http://jabber.org/protocol/httpbind' type='error'/>"
        );
        assert_eq!(Condition::from_name("nope"), None);
        assert_eq!(Condition::from_name("see-other-uri"), None);
    }

    #[test]
    fn body_parsing_does_not_depend_on_the_conditions() {
        // condition.rs uses body.rs (rendering, BodyError); the reverse
        // would make the two modules a cycle.
        let body = include_str!("body.rs");
        let code = &body[..body.find("#[cfg(test)]").expect("body.rs has tests")];
        assert!(
            !code.contains("condition::"),
            "body.rs imports condition.rs"
        );
        assert!(!code.contains("Condition"), "body.rs names Condition");
    }
}
