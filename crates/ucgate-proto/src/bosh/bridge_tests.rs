//! The bridge, byte by byte: BOSH requests in, the exact bytes for the
//! XMPP server and the exact response bodies out, with the server's input
//! whole, split at every offset, and one byte at a time.

use super::*;
use crate::bosh::parse_request;
use crate::xml::Limits;
use crate::xmpp_ws::Unavailable;

const NS: &str = "http://jabber.org/protocol/httpbind";
const HDR: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s2' from='localhost' version='1.0' xml:lang='en'>";
const FEATURES: &str = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>";
const FEATURES_Q: &str = "<stream:features xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>";
const OUR_HDR: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0' from='alice@localhost' xml:lang='en'>";

fn rq(attrs: &str, children: &str) -> Request {
    let x = if children.is_empty() {
        format!("<body xmlns='{NS}' xmlns:xmpp='urn:xmpp:xbosh' {attrs}/>")
    } else {
        format!("<body xmlns='{NS}' xmlns:xmpp='urn:xmpp:xbosh' {attrs}>{children}</body>")
    };
    parse_request(x.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{x}: {e}"))
}

fn create() -> Request {
    rq("rid='100' to='LocalHost' xml:lang='en' ver='1.11' wait='60' hold='1' from='alice@localhost' xmpp:version='1.0'", "")
}

fn any_route(_: &Route) -> bool {
    true
}

fn t(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn replies(steps: &[Step]) -> Vec<(RequestId, u16, String)> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Reply {
                request,
                status,
                body,
                ..
            } => Some((*request, *status, body.clone())),
            _ => None,
        })
        .collect()
}

fn to_server(steps: &[Step]) -> String {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Server(Output::ToServer(b)) => Some(String::from_utf8(b.clone()).unwrap()),
            _ => None,
        })
        .collect()
}

/// Feeds server bytes in chunks of the given sizes (the rest at the end).
fn feed(b: &mut Bridge, input: &str, chunks: &[usize], now: Duration) -> Vec<Step> {
    let bytes = input.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    for c in chunks {
        let end = (at + c).min(bytes.len());
        out.extend(b.on_server_bytes(&bytes[at..end], now));
        at = end;
    }
    out.extend(b.on_server_bytes(&bytes[at..], now));
    out
}

/// A session created, its server connected, the stream open: the
/// creation response.
fn opened(chunks: &dyn Fn(usize) -> Vec<usize>) -> (Bridge, Vec<Step>) {
    let mut b = Bridge::new("s1".into(), SessionLimits::default());
    let out = b.on_request(create(), 1, t(0), &any_route);
    assert_eq!(
        out,
        vec![Step::Server(Output::Connect {
            domain: "localhost".into()
        })]
    );
    let out = b.on_server(ServerEvent::Connected(ServerTls::AlreadySecureOrNone), t(0));
    assert_eq!(to_server(&out), OUR_HDR);
    let input = format!("{HDR}{FEATURES}");
    let out = feed(&mut b, &input, &chunks(input.len()), t(1));
    (b, out)
}

#[test]
fn the_creation_response_carries_the_stream_id_and_features() {
    let (b, out) = opened(&|_| vec![]);
    assert_eq!(
        out,
        vec![Step::Reply {
            request: 1,
            status: 200,
            body: format!("<body xmlns='{NS}' xmlns:xmpp='urn:xmpp:xbosh' xmlns:stream='http://etherx.jabber.org/streams' sid='s1' wait='60' requests='2' hold='1' inactivity='60' polling='2' maxpause='120' ver='1.11' to='LocalHost' xmpp:version='1.0' xmpp:restartlogic='true' authid='s2' from='localhost'>{FEATURES_Q}</body>"),
            content_type: Some("text/xml; charset=utf-8".into()),
        }]
    );
    assert_eq!(b.session().map(Session::sid), Some("s1"));
    // the same whatever the chunking of the server's bytes
    for cut in 0..HDR.len() + FEATURES.len() {
        assert_eq!(opened(&|_| vec![cut]).1, out, "split at {cut}");
    }
    assert_eq!(opened(&|len| vec![1; len]).1, out, "byte by byte");
}

#[test]
fn payloads_go_to_the_server_as_they_are_and_stanzas_come_back_wrapped() {
    let (mut b, _) = opened(&|_| vec![]);
    let out = b.on_request(
        rq(
            "sid='s1' rid='101'",
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHBhc3M=</auth>",
        ),
        2,
        t(2),
        &any_route,
    );
    assert_eq!(
        out,
        vec![Step::Server(Output::ToServer(
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHBhc3M=</auth>".to_vec()
        ))],
        "held (hold=1); the payload goes to the server byte for byte"
    );
    let out = feed(
        &mut b,
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
        &[],
        t(3),
    );
    assert_eq!(
        replies(&out),
        vec![(
            2,
            200,
            format!(
                "<body xmlns='{NS}'><success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></body>"
            )
        )]
    );
    // XEP-0206 restart: a new stream header, without `from`
    let out = b.on_request(
        rq("sid='s1' rid='102' xmpp:restart='true'", ""),
        3,
        t(4),
        &any_route,
    );
    assert_eq!(
        to_server(&out),
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0' xml:lang='en'>"
    );
    let out = feed(
        &mut b,
        &format!("{}<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features><message from='bob@localhost'><body>hi</body></message>", HDR.replace("s2", "s3")),
        &[],
        t(5),
    );
    assert_eq!(
        replies(&out),
        vec![(3, 200, format!("<body xmlns='{NS}' xmlns:stream='http://etherx.jabber.org/streams'><stream:features xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features></body>"))]
    );
    // the message waits for the next request
    let out = b.on_request(rq("sid='s1' rid='103'", ""), 4, t(6), &any_route);
    assert_eq!(
        replies(&out),
        vec![(4, 200, format!("<body xmlns='{NS}'><message xmlns='jabber:client' from='bob@localhost'><body>hi</body></message></body>"))]
    );
}

#[test]
fn a_server_stream_error_instead_of_features_ends_the_creation_request() {
    // The server answers our header, then sends a stream error instead of
    // its features (before TLS): the creation request is answered with the
    // error itself, never with a session-creation body.
    let mut b = Bridge::new("s1".into(), SessionLimits::default());
    b.on_request(create(), 1, t(0), &any_route);
    b.on_server(ServerEvent::Connected(ServerTls::StartTls), t(0));
    let err =
        "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>";
    let out = feed(&mut b, &format!("{HDR}{err}"), &[], t(1));
    let qualified = "<stream:error xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>";
    assert_eq!(
        out,
        vec![
            Step::Log(Side::Backend, "stream-error", qualified.into()),
            Step::Server(Output::ToServer(b"</stream:stream>".to_vec())),
            Step::Server(Output::CloseServer),
            Step::Reply {
                request: 1,
                status: 200,
                body: format!("<body xmlns='{NS}' xmlns:stream='http://etherx.jabber.org/streams' type='terminate' condition='remote-stream-error'>{qualified}</body>"),
                content_type: Some("text/xml; charset=utf-8".into()),
            },
            Step::End("remote-stream-error"),
        ]
    );
}

#[test]
fn an_unreachable_server_is_remote_connection_failed() {
    let mut b = Bridge::new("s1".into(), SessionLimits::default());
    b.on_request(create(), 1, t(0), &any_route);
    let out = b.on_server(
        ServerEvent::Unavailable(Unavailable::RemoteConnectionFailed, "refused".into()),
        t(1),
    );
    assert_eq!(
        out,
        vec![
            Step::Log(Side::Backend, "remote-connection-failed", "refused".into()),
            Step::Server(Output::CloseServer),
            Step::Reply {
                request: 1,
                status: 200,
                body: format!(
                    "<body xmlns='{NS}' type='terminate' condition='remote-connection-failed'/>"
                ),
                content_type: Some("text/xml; charset=utf-8".into()),
            },
            Step::End("remote-connection-failed"),
        ]
    );
}

#[test]
fn a_tls_payload_is_refused_as_the_websocket_route_refuses_it() {
    let (mut b, _) = opened(&|_| vec![]);
    let out = b.on_request(
        rq(
            "sid='s1' rid='101'",
            "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
        ),
        2,
        t(2),
        &any_route,
    );
    let err = "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>TLS and compression are provided by the WebSocket layer</text></stream:error>";
    assert_eq!(
        to_server(&out),
        "</stream:stream>",
        "nothing of it reaches the server"
    );
    assert_eq!(
        replies(&out),
        vec![(2, 200, format!("<body xmlns='{NS}' xmlns:stream='http://etherx.jabber.org/streams' type='terminate' condition='remote-stream-error'>{err}</body>"))]
    );
    assert_eq!(out.last(), Some(&Step::End("remote-stream-error")));
}

#[test]
fn in_the_drain_a_session_goes_on_until_its_end_then_gets_the_condition() {
    let (mut b, _) = opened(&|_| vec![]);
    // held (hold=1): its wait runs out at 2 + 60
    b.on_request(rq("sid='s1' rid='101'", ""), 2, t(2), &any_route);
    assert_eq!(b.next_deadline(), Some(t(62)));
    let uri = "https://other.example/http-bind";
    assert_eq!(
        b.on_drain(t(3), t(10), Condition::SeeOtherUri(uri.into())),
        vec![],
        "nothing changes when the drain begins"
    );
    assert_eq!(b.next_deadline(), Some(t(10)));
    assert_eq!(b.on_timeout(t(9)), vec![], "not yet");
    // the server's stanzas still reach the client, the client's the server
    let out = feed(
        &mut b,
        "<message from='bob@localhost' to='alice@localhost'><body>hi</body></message>",
        &[],
        t(4),
    );
    assert_eq!(
        replies(&out),
        vec![(2, 200, format!("<body xmlns='{NS}'><message xmlns='jabber:client' from='bob@localhost' to='alice@localhost'><body>hi</body></message></body>"))]
    );
    let out = b.on_request(
        rq(
            "sid='s1' rid='102'",
            "<message xmlns='jabber:client' to='bob@localhost'><body>yo</body></message>",
        ),
        3,
        t(5),
        &any_route,
    );
    assert_eq!(
        to_server(&out),
        "<message xmlns='jabber:client' to='bob@localhost'><body>yo</body></message>"
    );
    assert_eq!(replies(&out), vec![], "held");
    // at the end: the held request gets see-other-uri, the stream is closed
    let out = b.on_timeout(t(10));
    assert_eq!(
        replies(&out),
        vec![(
            3,
            200,
            format!("<body xmlns='{NS}' type='terminate' condition='see-other-uri'><uri>{uri}</uri></body>")
        )]
    );
    assert_eq!(to_server(&out), "</stream:stream>");
    assert!(out.contains(&Step::Server(Output::CloseServer)));
    assert!(out.contains(&Step::End("see-other-uri")), "{out:?}");
    assert_eq!(b.next_deadline(), None);
}

#[test]
fn a_session_that_ends_by_itself_in_the_drain_ends_as_usual() {
    let (mut b, _) = opened(&|_| vec![]);
    b.on_request(rq("sid='s1' rid='101'", ""), 2, t(2), &any_route);
    b.on_drain(t(3), t(20), Condition::SystemShutdown);
    let out = b.on_request(
        rq("sid='s1' rid='102' type='terminate'", ""),
        3,
        t(4),
        &any_route,
    );
    assert!(out.contains(&Step::End("normal")), "{out:?}");
    assert_eq!(to_server(&out), "</stream:stream>");
    assert_eq!(b.next_deadline(), Some(t(20)));
    assert_eq!(b.on_timeout(t(20)), vec![], "nothing left to end");
}

#[test]
fn a_drain_end_that_has_come_ends_the_session_at_once() {
    let (mut b, _) = opened(&|_| vec![]);
    b.on_request(rq("sid='s1' rid='101'", ""), 2, t(2), &any_route);
    let out = b.on_drain(t(3), t(3), Condition::SystemShutdown);
    assert_eq!(
        replies(&out),
        vec![(
            2,
            200,
            format!("<body xmlns='{NS}' type='terminate' condition='system-shutdown'/>")
        )]
    );
    assert!(out.contains(&Step::End("system-shutdown")), "{out:?}");
    let mut b = Bridge::new("s2".into(), SessionLimits::default());
    assert_eq!(
        b.on_drain(t(0), t(0), Condition::SeeOtherUri("http://b/".into())),
        vec![
            Step::End("see-other-uri"),
            Step::Server(Output::CloseServer)
        ],
        "no session yet"
    );
}

#[test]
fn shutdown_and_refused_creation() {
    let mut b = Bridge::new("s1".into(), SessionLimits::default());
    assert_eq!(
        b.on_shutdown(t(0)),
        vec![
            Step::End("system-shutdown"),
            Step::Server(Output::CloseServer)
        ]
    );
    let (mut b, _) = opened(&|_| vec![]);
    b.on_request(rq("sid='s1' rid='101'", ""), 2, t(2), &any_route);
    let out = b.on_shutdown(t(3));
    assert_eq!(
        replies(&out),
        vec![(
            2,
            200,
            format!("<body xmlns='{NS}' type='terminate' condition='system-shutdown'/>")
        )]
    );
    assert_eq!(to_server(&out), "</stream:stream>");
    assert!(out.contains(&Step::Server(Output::CloseServer)));
    let mut b = Bridge::new("s2".into(), SessionLimits::default());
    let out = b.on_request(
        rq(
            "rid='1' to='localhost' ver='1.11' route='xmpp:evil:5222'",
            "",
        ),
        1,
        t(0),
        &|_| false,
    );
    assert_eq!(
        out,
        vec![
            Step::Reply {
                request: 1,
                status: 200,
                body: format!("<body xmlns='{NS}' type='terminate' condition='host-unknown'/>"),
                content_type: None,
            },
            Step::End("creation-refused"),
        ]
    );
}

#[test]
fn payloads_are_held_to_the_stanza_limits_as_on_the_websocket_route() {
    // The body is parsed against the body limits; each payload, as passed
    // on (declarations from <body> copied onto it), is held to the stanza
    // limits of `xmpp`: too large, or too many attributes, is a
    // policy-violation stream error, and nothing of it reaches the server.
    let limits = SessionLimits {
        xml: Limits {
            max_bytes: 300,
            max_depth: 8,
            max_attributes: 4,
        },
        ..SessionLimits::default()
    };
    let long = format!(
        "<message to='b@x'><body>{}</body></message>",
        "z".repeat(300)
    );
    for (decl, payload) in [
        ("", long.as_str()),
        (" xmlns:x='urn:x'", "<message to='b@x' id='1' x:y='1'/>"),
    ] {
        let mut b = Bridge::new("s1".into(), limits);
        b.on_request(create(), 1, t(0), &any_route);
        b.on_server(ServerEvent::Connected(ServerTls::AlreadySecureOrNone), t(0));
        b.on_server_bytes(format!("{HDR}{FEATURES}").as_bytes(), t(0));
        let out = b.on_request(
            rq(&format!("sid='s1' rid='101'{decl}"), payload),
            2,
            t(1),
            &any_route,
        );
        assert_eq!(to_server(&out), "</stream:stream>", "{payload}");
        let (_, _, body) = &replies(&out)[0];
        assert!(
            body.contains("condition='remote-stream-error'") && body.contains("<policy-violation "),
            "{body}"
        );
        assert_eq!(out.last(), Some(&Step::End("remote-stream-error")));
    }
}
