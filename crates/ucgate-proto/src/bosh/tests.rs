//! Scenario tests for the BOSH session, with explicit time (no sleeping).
//! Requests are built from XML with `parse_request`, responses read back
//! with `parse_response`, so every test also exercises the wire format.

use super::session::{CACHE_MAX_RESPONSES, MAX_RESENDS_PER_RID, REPORT_AFTER};
use super::sha1::sha1_hex;
use super::*;
use crate::xml::Limits;
use core::time::Duration;

const NS: &str = "http://jabber.org/protocol/httpbind";
const FEATURES: &str = "<stream:features xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>";
const BIND_FEATURES: &str = "<stream:features xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>";
const CREATE: &str =
    "rid='100' to='localhost' xml:lang='en' ver='1.11' wait='60' hold='1' xmpp:version='1.0'";

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn xml(attrs: &str, children: &str) -> String {
    if children.is_empty() {
        format!("<body xmlns='{NS}' xmlns:xmpp='urn:xmpp:xbosh' {attrs}/>")
    } else {
        format!("<body xmlns='{NS}' xmlns:xmpp='urn:xmpp:xbosh' {attrs}>{children}</body>")
    }
}

fn rq(attrs: &str, children: &str) -> Request {
    let x = xml(attrs, children);
    parse_request(x.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{x}: {e}"))
}

/// An empty request of session `s1`.
fn r(rid: u64) -> Request {
    rq(&format!("sid='s1' rid='{rid}'"), "")
}

/// A request of session `s1` with extra attributes.
fn ra(rid: u64, attrs: &str) -> Request {
    rq(&format!("sid='s1' rid='{rid}' {attrs}"), "")
}

/// A request of session `s1` carrying one message with body `text`
/// (unqualified, as many clients send it).
fn rm(rid: u64, text: &str) -> Request {
    rq(
        &format!("sid='s1' rid='{rid}'"),
        &format!("<message to='bob@localhost'><body>{text}</body></message>"),
    )
}

fn client_msg(text: &str) -> String {
    format!("<message xmlns='jabber:client' to='bob@localhost'><body>{text}</body></message>")
}

fn server_msg(text: &str) -> Vec<u8> {
    format!("<message xmlns='jabber:client' from='bob@localhost'><body>{text}</body></message>")
        .into_bytes()
}

fn responses(out: &[Action]) -> Vec<(RequestId, u16, String)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Respond {
                request,
                status,
                body,
            } => Some((*request, *status, body.clone())),
            _ => None,
        })
        .collect()
}

fn to_server(out: &[Action]) -> Vec<String> {
    out.iter()
        .filter_map(|a| match a {
            Action::ToServer(b) => Some(String::from_utf8(b.bytes.clone()).unwrap()),
            _ => None,
        })
        .collect()
}

fn parse(body: &str) -> Response {
    parse_response(body.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{body}: {e}"))
}

/// The bodies of the messages in a response.
fn texts(body: &str) -> Vec<String> {
    parse(body)
        .payload
        .iter()
        .filter_map(|p| {
            let p = String::from_utf8(p.clone()).unwrap();
            let a = p.find("<body>")? + 6;
            let b = p.find("</body>")?;
            Some(p[a..b].to_string())
        })
        .collect()
}

/// The single response in `out`, for `request`, parsed.
fn one(out: &[Action], request: RequestId) -> Response {
    let rs = responses(out);
    assert_eq!(rs.len(), 1, "{out:?}");
    assert_eq!(rs[0].0, request, "{out:?}");
    assert_eq!(rs[0].1, 200);
    parse(&rs[0].2)
}

fn empty_body() -> String {
    format!("<body xmlns='{NS}'/>")
}

fn terminate(cond: &str) -> String {
    format!("<body xmlns='{NS}' type='terminate' condition='{cond}'/>")
}

/// Creates `s1` at t=0 (HTTP request 1) and answers its creation request
/// with the stream features at t=0.
fn start_with(create: &str, limits: &SessionLimits) -> (Session, Response) {
    let (mut sess, out) =
        Session::create(&rq(create, ""), "s1".into(), limits, 1, s(0)).expect("created");
    assert!(responses(&out).is_empty() || create.contains("hold='0'"));
    sess.on_stream_open("srv1".into(), Some("localhost".into()), s(0));
    let mut out2 = out;
    out2.extend(sess.on_server_element(FEATURES.into(), s(0)));
    let rs = responses(&out2);
    assert_eq!(rs.len(), 1, "{out2:?}");
    (sess, parse(&rs[0].2))
}

fn start() -> Session {
    start_with(CREATE, &SessionLimits::default()).0
}

// ---------------------------------------------------------------- creation

#[test]
fn creation_response_carries_every_attribute_and_the_features() {
    let req = rq("rid='100' to='localhost' xml:lang='en' ver='1.6' wait='300' hold='5' ack='1' from='alice@localhost' content='text/html; charset=utf-8' xmpp:version='1.0'", "");
    let (mut sess, out) =
        Session::create(&req, "s1".into(), &SessionLimits::default(), 1, s(0)).unwrap();
    assert_eq!(
        out,
        vec![Action::OpenStream {
            to: "localhost".into(),
            lang: Some("en".into()),
            from: Some("alice@localhost".into()),
        }],
        "the creation request is held until the server has something to say"
    );
    assert_eq!(sess.content_type(), "text/html; charset=utf-8");
    assert_eq!((sess.wait(), sess.hold(), sess.requests()), (60, 1, 2));
    assert!(sess
        .on_stream_open("srv-id".into(), Some("localhost".into()), s(0))
        .is_empty());
    let out = sess.on_server_element(FEATURES.into(), s(1));
    assert_eq!(
        responses(&out),
        vec![(1, 200, format!("<body xmlns='{NS}' xmlns:xmpp='urn:xmpp:xbosh' xmlns:stream='http://etherx.jabber.org/streams' sid='s1' wait='60' requests='2' hold='1' inactivity='60' polling='2' maxpause='120' ver='1.6' to='localhost' ack='100' xmpp:version='1.0' xmpp:restartlogic='true' authid='srv-id' from='localhost'>{FEATURES}</body>"))]
    );
}

#[test]
fn creation_clamps_to_server_maxima() {
    // (client wait, client hold, max_wait, max_hold, max_requests) → (wait, hold, requests)
    type Row = (Option<u64>, Option<u32>, u64, u32, u32, (u64, u32, u32));
    let table: &[Row] = &[
        (Some(300), Some(5), 60, 1, 2, (60, 1, 2)),
        (Some(30), Some(1), 60, 1, 2, (30, 1, 2)),
        (Some(60), Some(0), 60, 1, 2, (60, 0, 1)),
        (Some(60), Some(3), 60, 4, 3, (60, 2, 3)),
        (None, None, 45, 1, 2, (45, 1, 2)),
        (Some(0), Some(1), 60, 1, 2, (0, 1, 2)),
        (Some(60), Some(1), 60, 1, 1, (60, 0, 1)),
        (Some(60), Some(2), 60, 2, 0, (60, 0, 1)),
    ];
    for &(wait, hold, max_wait, max_hold, max_requests, want) in table {
        let mut attrs = "rid='10' to='d' ver='1.11'".to_string();
        if let Some(w) = wait {
            attrs.push_str(&format!(" wait='{w}'"));
        }
        if let Some(h) = hold {
            attrs.push_str(&format!(" hold='{h}'"));
        }
        let limits = SessionLimits {
            max_wait: s(max_wait),
            max_hold,
            max_requests,
            ..SessionLimits::default()
        };
        let (sess, _) = Session::create(&rq(&attrs, ""), "x".into(), &limits, 1, s(0)).unwrap();
        assert_eq!((sess.wait(), sess.hold(), sess.requests()), want, "{attrs}");
        assert!(
            u64::from(sess.hold()) <= u64::from(hold.unwrap_or(1)),
            "hold never above the client's"
        );
        assert!(
            sess.wait() <= wait.unwrap_or(u64::MAX),
            "wait never above the client's"
        );
    }
}

#[test]
fn creation_version_is_the_lower_one() {
    for (client, want) in [
        ("1.6", "1.6"),
        ("1.11", "1.11"),
        ("1.99", "1.11"),
        ("2.0", "1.11"),
        ("1.10", "1.10"),
    ] {
        let (_, resp) = start_with(
            &format!("rid='100' to='localhost' ver='{client}'"),
            &SessionLimits::default(),
        );
        assert_eq!(resp.attr("ver"), Some(want), "{client}");
    }
}

#[test]
fn creation_refusals() {
    let limits = SessionLimits::default();
    let refuse =
        |attrs: &str| Session::create(&rq(attrs, ""), "x".into(), &limits, 1, s(0)).unwrap_err();
    assert_eq!(
        refuse("rid='1' ver='1.11'"),
        (200, terminate("improper-addressing"))
    );
    assert_eq!(
        refuse("rid='1' ver='1.11' to='  '"),
        (200, terminate("improper-addressing"))
    );
    assert_eq!(
        refuse("rid='1' ver='1.11' to='d' sid='abc'"),
        (200, terminate("bad-request"))
    );
    // a legacy client (no ver) gets the deprecated HTTP code
    assert_eq!(
        refuse("rid='1' to='d' sid='abc'"),
        (400, terminate("bad-request"))
    );
    assert_eq!(
        refuse("rid='1' ver='1.11' to='d' type='terminate'"),
        (200, terminate("bad-request"))
    );
    assert_eq!(
        refuse("rid='1' ver='1.11' to='d' newkey='nothex'"),
        (200, terminate("bad-request"))
    );
    let (status, body) = refuse("rid='1' ver='1.11' to='d' xmpp:version='0.9'");
    assert_eq!(status, 200);
    assert_eq!(body, format!("<body xmlns='{NS}' xmlns:stream='http://etherx.jabber.org/streams' type='terminate' condition='remote-stream-error'><stream:error xmlns:stream='http://etherx.jabber.org/streams'><unsupported-version xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></body>"));
}

#[test]
fn route_is_ignored_unless_the_hook_allows_it() {
    let limits = SessionLimits::default();
    let req = rq("rid='1' ver='1.11' to='d' route='xmpp:evil.example:22'", "");
    let (sess, out) = Session::create(&req, "x".into(), &limits, 1, s(0)).unwrap();
    assert!(matches!(&out[0], Action::OpenStream { .. }));
    assert_eq!(sess.route(), None, "plain create never honours route");
    let allow = |r: &Route| r.host == "xmpp.internal" && r.port == 5222;
    let err = Session::create_with_route(&req, "x".into(), &limits, 1, s(0), &allow).unwrap_err();
    assert_eq!(err, (200, terminate("host-unknown")));
    let good = rq(
        "rid='1' ver='1.11' to='d' route='xmpp:xmpp.internal:5222'",
        "",
    );
    let (sess, out) =
        Session::create_with_route(&good, "x".into(), &limits, 1, s(0), &allow).unwrap();
    assert!(matches!(&out[0], Action::OpenStream { to, .. } if to == "d"));
    assert_eq!(
        sess.route(),
        Some(&Route {
            proto: "xmpp".into(),
            host: "xmpp.internal".into(),
            port: 5222
        })
    );
    let bad = rq("rid='1' ver='1.11' to='d' route='xmpp.internal'", "");
    let err = Session::create_with_route(&bad, "x".into(), &limits, 1, s(0), &allow).unwrap_err();
    assert_eq!(err, (200, terminate("bad-request")));
    // no route attribute: fine with the hook too
    let none = rq("rid='1' ver='1.11' to='d'", "");
    assert!(Session::create_with_route(&none, "x".into(), &limits, 1, s(0), &allow).is_ok());
}

#[test]
fn creation_payload_waits_for_the_stream_then_goes_first() {
    let req = rq(
        CREATE,
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>",
    );
    let (mut sess, out) =
        Session::create(&req, "s1".into(), &SessionLimits::default(), 1, s(0)).unwrap();
    assert!(
        to_server(&out).is_empty(),
        "nothing before the server stream is up"
    );
    sess.on_stream_open("id".into(), None, s(0));
    let out = sess.on_server_element(FEATURES.into(), s(0));
    assert_eq!(
        to_server(&out),
        ["<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>"]
    );
    assert!(
        matches!(out[0], Action::ToServer(_)),
        "payload before the response"
    );
    assert_eq!(responses(&out).len(), 1);
}

#[test]
fn features_after_the_creation_response_carry_authid_and_version() {
    let req = rq("rid='100' to='localhost' ver='1.11' wait='5' hold='1'", "");
    let (mut sess, _) =
        Session::create(&req, "s1".into(), &SessionLimits::default(), 1, s(0)).unwrap();
    // wait expires before the server answers
    let out = sess.on_timeout(s(5));
    let c = one(&out, 1);
    assert_eq!(c.attr("sid"), Some("s1"));
    assert_eq!(c.attr("xmpp:version"), Some("1.0"));
    assert_eq!(c.attr("authid"), None);
    assert!(c.payload.is_empty());
    sess.on_request(r(101), 2, s(5));
    sess.on_stream_open("srv9".into(), Some("localhost".into()), s(6));
    let out = sess.on_server_element(FEATURES.into(), s(6));
    let resp = one(&out, 2);
    assert_eq!(resp.attr("authid"), Some("srv9"));
    assert_eq!(resp.attr("from"), Some("localhost"));
    assert_eq!(
        resp.attr("sid"),
        None,
        "creation attributes only on the creation response"
    );
    assert_eq!(resp.payload.len(), 1);
    assert!(responses(&out)[0]
        .2
        .contains("xmlns:stream='http://etherx.jabber.org/streams'"));
}

#[test]
fn polling_session_creation_is_answered_at_once() {
    let (sess, out) = Session::create(
        &rq("rid='100' to='localhost' ver='1.11' wait='60' hold='0'", ""),
        "s1".into(),
        &SessionLimits::default(),
        1,
        s(0),
    )
    .unwrap();
    let c = one(&out, 1);
    assert_eq!(c.attr("hold"), Some("0"));
    assert_eq!(c.attr("requests"), Some("1"));
    assert_eq!(
        c.attr("inactivity"),
        Some("64"),
        "§12: longer than normal by more than polling"
    );
    assert_eq!(sess.next_deadline(), Some(s(64)));
}

// ------------------------------------------------------------- rid window

#[test]
fn window_upper_edge_is_accepted() {
    let mut sess = start();
    assert!(
        responses(&sess.on_request(rm(101, "a"), 2, s(1))).is_empty(),
        "held"
    );
    assert_eq!(
        responses(&sess.on_server_element(server_msg("x"), s(2)))[0].0,
        2
    );
    // highest received in sequence is 101, requests = 2: 103 is the edge
    let out = sess.on_request(rm(103, "c"), 4, s(3));
    assert!(out.is_empty(), "in the window: waits for 102: {out:?}");
    let out = sess.on_request(rm(102, "b"), 3, s(4));
    assert_eq!(to_server(&out), [client_msg("b"), client_msg("c")]);
    assert_eq!(
        responses(&out),
        vec![(3, 200, empty_body())],
        "102 answered, 103 held"
    );
}

#[test]
fn window_one_past_the_edge_terminates() {
    let mut sess = start();
    sess.on_request(r(101), 2, s(1));
    let out = sess.on_request(rm(104, "d"), 3, s(2));
    assert_eq!(
        out,
        vec![
            Action::Respond {
                request: 2,
                status: 200,
                body: terminate("other-request")
            },
            Action::Respond {
                request: 3,
                status: 200,
                body: terminate("item-not-found")
            },
            Action::CloseStream,
            Action::Terminated(Condition::ItemNotFound),
        ]
    );
    assert!(sess.is_ended());
    // the session is gone: later requests get item-not-found
    assert_eq!(
        responses(&sess.on_request(r(102), 4, s(3))),
        vec![(4, 200, terminate("item-not-found"))]
    );
}

#[test]
fn window_allows_one_more_for_pause_and_terminate() {
    let mut sess = start();
    sess.on_request(r(101), 2, s(1));
    let out = sess.on_request(ra(104, "pause='30'"), 3, s(2));
    assert!(out.is_empty(), "{out:?}");
    let mut sess = start();
    sess.on_request(r(101), 2, s(1));
    let out = sess.on_request(ra(105, "pause='30'"), 3, s(2));
    assert!(out.contains(&Action::Terminated(Condition::ItemNotFound)));
}

#[test]
fn legacy_clients_get_http_error_codes() {
    let (mut sess, _) = start_with(
        "rid='100' to='localhost' wait='60' hold='1'",
        &SessionLimits::default(),
    );
    assert!(sess.is_legacy());
    sess.on_request(r(101), 2, s(1));
    let out = sess.on_request(r(110), 3, s(2));
    assert_eq!(
        responses(&out),
        vec![
            (2, 200, terminate("other-request")),
            (3, 404, terminate("item-not-found"))
        ]
    );
}

// ------------------------------------------------------ out-of-order arrival

#[test]
fn out_of_order_requests_are_processed_in_rid_order() {
    let mut sess = start();
    // 102 overtakes 101
    assert!(sess.on_request(rm(102, "b"), 3, s(1)).is_empty());
    // server data while nothing can be answered: queued
    assert!(sess.on_server_element(server_msg("x"), s(2)).is_empty());
    assert!(sess.pending_bytes() > 0);
    let out = sess.on_request(rm(101, "a"), 2, s(3));
    assert_eq!(
        to_server(&out),
        [client_msg("a"), client_msg("b")],
        "payloads in rid order"
    );
    let rs = responses(&out);
    assert_eq!(rs.len(), 1);
    assert_eq!(
        rs[0].0, 2,
        "the lowest rid answers first, with the queued data"
    );
    assert_eq!(texts(&rs[0].2), ["x"]);
    let out = sess.on_server_element(server_msg("y"), s(4));
    let rs = responses(&out);
    assert_eq!((rs[0].0, texts(&rs[0].2)), (3, vec!["y".to_string()]));
    assert_eq!(sess.pending_bytes(), 0);
}

#[test]
fn a_request_stuck_behind_a_lost_one_gets_a_recoverable_error() {
    let mut sess = start();
    // 101 never arrives; 102 waits for it
    assert!(sess.on_request(rm(102, "b"), 3, s(1)).is_empty());
    assert_eq!(sess.next_deadline(), Some(s(61)));
    let out = sess.on_timeout(s(61));
    assert_eq!(
        responses(&out),
        vec![(3, 200, format!("<body xmlns='{NS}' type='error'/>"))],
        "§17.3: re-send what has no response"
    );
    assert_eq!(sess.next_deadline(), Some(s(121)), "then inactivity runs");
    // the client re-sends both; 102's payload goes to the server once
    let out = sess.on_request(rm(101, "a"), 4, s(62));
    assert_eq!(to_server(&out), [client_msg("a"), client_msg("b")]);
    assert!(responses(&out).is_empty(), "101 held: {out:?}");
    let out = sess.on_request(rm(102, "b"), 5, s(62));
    assert!(to_server(&out).is_empty(), "not forwarded twice");
    assert_eq!(
        responses(&out),
        vec![(4, 200, empty_body())],
        "two held > hold"
    );
    let out = sess.on_server_element(server_msg("x"), s(63));
    assert_eq!(responses(&out)[0].0, 5);
}

#[test]
fn held_requests_answer_oldest_first() {
    let limits = SessionLimits {
        max_hold: 2,
        max_requests: 3,
        ..SessionLimits::default()
    };
    let (mut sess, _) = start_with(
        "rid='100' to='localhost' ver='1.11' wait='60' hold='2'",
        &limits,
    );
    assert_eq!(sess.hold(), 2);
    sess.on_request(r(101), 2, s(1));
    sess.on_request(r(102), 3, s(2));
    let out = sess.on_server_elements(vec![server_msg("a"), server_msg("b")], s(3));
    let rs = responses(&out);
    assert_eq!(rs.len(), 1, "one response carries the whole batch");
    assert_eq!(
        (rs[0].0, texts(&rs[0].2)),
        (2, vec!["a".to_string(), "b".to_string()])
    );
    // a third request makes three held > hold=2: the oldest is answered
    sess.on_request(r(103), 4, s(30));
    let out = sess.on_request(rm(104, "m"), 5, s(31));
    assert_eq!(responses(&out), vec![(3, 200, empty_body())]);
}

// ------------------------------------------------------- repeats and cache

#[test]
fn repeated_rid_gets_the_exact_same_body() {
    let mut sess = start();
    sess.on_request(r(101), 2, s(1));
    let out = sess.on_server_element(server_msg("x"), s(2));
    let first = responses(&out)[0].2.clone();
    for i in 0..MAX_RESENDS_PER_RID {
        let out = sess.on_request(r(101), 10 + u64::from(i), s(3));
        assert_eq!(
            responses(&out),
            vec![(10 + u64::from(i), 200, first.clone())]
        );
    }
    // one re-send too many: §14.3 limit
    let out = sess.on_request(r(101), 20, s(4));
    assert!(out.contains(&Action::Terminated(Condition::PolicyViolation)));
}

#[test]
fn rid_before_the_cache_terminates() {
    let (mut sess, _) = start_with(
        "rid='100' to='localhost' ver='1.11' wait='5' hold='1'",
        &SessionLimits::default(),
    );
    for rid in 101..=140 {
        let t = (rid - 100) * 10;
        assert!(sess.on_request(r(rid), rid, s(t)).is_empty());
        assert_eq!(responses(&sess.on_timeout(s(t + 5))).len(), 1);
    }
    // the newest CACHE_MAX_RESPONSES responses are kept
    let oldest_kept = 140 - CACHE_MAX_RESPONSES as u64 + 1;
    let out = sess.on_request(r(oldest_kept), 500, s(401));
    assert_eq!(responses(&out), vec![(500, 200, empty_body())]);
    let out = sess.on_request(r(oldest_kept - 1), 501, s(402));
    assert!(
        out.contains(&Action::Terminated(Condition::ItemNotFound)),
        "{out:?}"
    );
}

#[test]
fn cache_is_bounded_by_bytes_too() {
    let limits = SessionLimits {
        max_pending_bytes: 3000,
        ..SessionLimits::default()
    };
    let (mut sess, _) = start_with(CREATE, &limits);
    let big = format!(
        "<message xmlns='jabber:client'><body>{}</body></message>",
        "x".repeat(1000)
    )
    .into_bytes();
    for rid in 101..=104 {
        sess.on_request(r(rid), rid, s(rid - 100));
        assert_eq!(
            responses(&sess.on_server_element(big.clone(), s(rid - 100))).len(),
            1
        );
    }
    // about 1 KiB per response, 3000 bytes: the two newest are kept
    assert_eq!(responses(&sess.on_request(r(103), 600, s(10))).len(), 1);
    let out = sess.on_request(r(102), 601, s(10));
    assert!(
        out.contains(&Action::Terminated(Condition::ItemNotFound)),
        "{out:?}"
    );
}

#[test]
fn repeated_held_rid_takes_over_and_the_old_request_gets_an_empty_body() {
    let mut sess = start();
    sess.on_request(r(101), 2, s(1));
    let out = sess.on_request(r(101), 3, s(2));
    // not type='error' (§17.3 asks the client to re-send: it just did)
    assert_eq!(responses(&out), vec![(2, 200, empty_body())]);
    let out = sess.on_server_element(server_msg("x"), s(3));
    let rs = responses(&out);
    assert_eq!((rs[0].0, texts(&rs[0].2)), (3, vec!["x".to_string()]));
    // its wait restarted with the new request
    sess.on_request(r(102), 4, s(10));
    sess.on_request(r(102), 5, s(20));
    assert_eq!(sess.next_deadline(), Some(s(80)));
}

#[test]
fn repeated_buffered_rid_takes_over_too() {
    let mut sess = start();
    sess.on_request(rm(102, "b"), 3, s(1));
    let out = sess.on_request(rm(102, "b"), 4, s(2));
    assert_eq!(responses(&out), vec![(3, 200, empty_body())]);
    let out = sess.on_request(rm(101, "a"), 2, s(3));
    assert_eq!(
        to_server(&out),
        [client_msg("a"), client_msg("b")],
        "b forwarded once"
    );
    assert_eq!(responses(&out), vec![(2, 200, empty_body())]);
    let out = sess.on_server_element(server_msg("x"), s(4));
    assert_eq!(responses(&out)[0].0, 4);
}

#[test]
fn superseded_requests_carry_the_ack_of_any_response() {
    let (mut sess, _) = start_with(&format!("{CREATE} ack='1'"), &SessionLimits::default());
    // held 101, re-sent: ack = rid answered, left out (§9.1)
    sess.on_request(r(101), 2, s(1));
    let out = sess.on_request(r(101), 3, s(2));
    assert_eq!(responses(&out), vec![(2, 200, empty_body())]);
    // 103 waits for 102; its re-sent copy's predecessor says 101 is the
    // highest rid received in order
    let out = sess.on_request(r(103), 4, s(3));
    assert!(responses(&out).is_empty(), "{out:?}");
    let out = sess.on_request(r(103), 5, s(4));
    assert_eq!(
        responses(&out),
        vec![(4, 200, format!("<body xmlns='{NS}' ack='101'/>"))]
    );
    // nothing was cached for the superseded copies: the new ones answer
    let out = sess.on_server_element(server_msg("x"), s(5));
    assert_eq!(responses(&out)[0].0, 3);
}

#[test]
fn request_gone_while_held_is_answered_into_the_cache() {
    let mut sess = start();
    sess.on_request(r(101), 2, s(1));
    assert!(sess.on_request_gone(2, s(2)).is_empty());
    assert_eq!(
        sess.next_deadline(),
        Some(s(62)),
        "nothing held: inactivity runs"
    );
    // server data now waits for the next request, it is not lost in 101
    assert!(sess.on_server_element(server_msg("x"), s(3)).is_empty());
    let out = sess.on_request(r(101), 3, s(4));
    assert_eq!(
        responses(&out),
        vec![(3, 200, empty_body())],
        "the re-sent rid gets the cached empty body"
    );
    let out = sess.on_request(r(102), 4, s(5));
    assert_eq!(texts(&responses(&out)[0].2), ["x"]);
}

// ------------------------------------------------------------------ acks

#[test]
fn server_acks_when_answering_below_the_highest_rid() {
    let (mut sess, c) = start_with(&format!("{CREATE} ack='1'"), &SessionLimits::default());
    assert_eq!(c.attr("ack"), Some("100"));
    sess.on_request(r(101), 2, s(1));
    let out = sess.on_request(rm(102, "m"), 3, s(2));
    assert_eq!(
        one(&out, 2).attr("ack"),
        Some("102"),
        "102 was received while 101 was held"
    );
    let out = sess.on_server_element(server_msg("x"), s(3));
    assert_eq!(
        one(&out, 3).attr("ack"),
        None,
        "ack = rid answered: left out (§9.1)"
    );
}

#[test]
fn no_acks_unless_the_client_asked() {
    let (mut sess, c) = start_with(CREATE, &SessionLimits::default());
    assert_eq!(c.attr("ack"), None);
    sess.on_request(r(101), 2, s(1));
    let out = sess.on_request(ra(102, "ack='101'"), 3, s(4));
    assert_eq!(one(&out, 2).attr("ack"), None);
}

#[test]
fn client_ack_trims_the_cache() {
    let (mut sess, _) = start_with(&format!("{CREATE} ack='1'"), &SessionLimits::default());
    sess.on_request(r(101), 2, s(1));
    sess.on_server_element(server_msg("x"), s(2));
    // 102 acknowledges 101's response (ack left out: all received)
    sess.on_request(r(102), 3, s(3));
    let out = sess.on_request(r(101), 4, s(4));
    assert!(
        out.contains(&Action::Terminated(Condition::ItemNotFound)),
        "acknowledged: dropped: {out:?}"
    );
}

#[test]
fn unacknowledged_response_is_kept_and_reported() {
    let (mut sess, _) = start_with(&format!("{CREATE} ack='1'"), &SessionLimits::default());
    sess.on_request(r(101), 2, s(1));
    // 102 arrives: 101 is answered (its response will be lost)
    let out = sess.on_request(rm(102, "m"), 3, s(2));
    let lost = responses(&out)[0].2.clone();
    let out = sess.on_server_element(server_msg("x"), s(2));
    assert_eq!(responses(&out)[0].0, 3);
    // shortly after, an ack that misses 101 is not reported yet (in flight)
    let out = sess.on_request(ra(103, "ack='100'"), 4, s(2) + REPORT_AFTER / 2);
    assert!(responses(&out).is_empty(), "{out:?}");
    assert_eq!(responses(&sess.on_timeout(s(63))).len(), 1);
    // later, the client still has not got 101: report it at once
    let out = sess.on_request(ra(104, "ack='100'"), 5, s(70));
    let rep = one(&out, 5);
    assert_eq!(rep.attr("report"), Some("101"));
    assert_eq!(
        rep.attr("time"),
        Some("68000"),
        "ms since 101's response was sent"
    );
    assert!(rep.payload.is_empty());
    // the same loss is reported once
    let out = sess.on_request(ra(105, "ack='100'"), 6, s(71));
    assert!(responses(&out).is_empty(), "{out:?}");
    // the client re-sends 101 and gets the kept response
    let out = sess.on_request(r(101), 7, s(72));
    assert_eq!(responses(&out), vec![(7, 200, lost)]);
}

// ------------------------------------------------------------ overactivity

#[test]
fn too_many_simultaneous_requests_is_policy_violation() {
    let mut sess = start();
    sess.on_request(r(101), 2, s(1));
    sess.on_request(rm(103, "c"), 4, s(2));
    // 101 held, 103 waiting, 102 arrives: three unanswered > requests = 2
    let out = sess.on_request(rm(102, "b"), 3, s(3));
    assert_eq!(
        out,
        vec![
            Action::Respond {
                request: 2,
                status: 200,
                body: terminate("other-request")
            },
            Action::Respond {
                request: 4,
                status: 200,
                body: terminate("other-request")
            },
            Action::Respond {
                request: 3,
                status: 200,
                body: terminate("policy-violation")
            },
            Action::CloseStream,
            Action::Terminated(Condition::PolicyViolation),
        ]
    );
}

#[test]
fn one_extra_request_is_allowed_to_pause() {
    let mut sess = start();
    sess.on_request(r(101), 2, s(1));
    sess.on_request(ra(103, "pause='30'"), 4, s(2));
    let out = sess.on_request(rm(102, "b"), 3, s(3));
    assert_eq!(to_server(&out), [client_msg("b")]);
    assert_eq!(
        responses(&out),
        vec![
            (2, 200, empty_body()),
            (3, 200, empty_body()),
            (4, 200, empty_body())
        ],
        "the pause answers every pending request"
    );
}

#[test]
fn one_extra_request_is_allowed_to_terminate() {
    let mut sess = start();
    sess.on_request(r(101), 2, s(1));
    sess.on_request(
        rq(
            "sid='s1' rid='103' type='terminate'",
            "<presence type='unavailable'/>",
        ),
        4,
        s(2),
    );
    let out = sess.on_request(rm(102, "b"), 3, s(3));
    assert_eq!(
        out,
        vec![
            Action::ToServer(parsed(client_msg("b"))),
            Action::ToServer(parsed(
                &b"<presence xmlns='jabber:client' type='unavailable'/>"[..]
            )),
            Action::CloseStream,
            Action::Respond {
                request: 2,
                status: 200,
                body: format!("<body xmlns='{NS}' type='terminate'/>")
            },
            Action::Respond {
                request: 3,
                status: 200,
                body: empty_body()
            },
            Action::Respond {
                request: 4,
                status: 200,
                body: empty_body()
            },
            Action::Ended(EndReason::ClientTerminate),
        ]
    );
}

#[test]
fn two_extra_requests_are_not_allowed_even_to_pause() {
    let mut sess = start();
    sess.on_request(r(101), 2, s(1));
    sess.on_request(rm(103, "c"), 4, s(2));
    sess.on_request(ra(104, "pause='30'"), 5, s(2));
    let out = sess.on_request(rm(102, "b"), 3, s(3));
    assert!(
        out.contains(&Action::Terminated(Condition::PolicyViolation)),
        "{out:?}"
    );
}

// ----------------------------------------------------------------- polling

#[test]
fn too_frequent_empty_requests_in_a_normal_session() {
    // §11: `requests` unanswered, the last one empty, within `polling`
    let mut sess = start();
    sess.on_request(r(101), 2, s(10));
    let out = sess.on_request(r(102), 3, s(11));
    assert_eq!(
        responses(&out),
        vec![
            (2, 200, terminate("other-request")),
            (3, 200, terminate("policy-violation"))
        ]
    );
    // the same after `polling` seconds is fine
    let mut sess = start();
    sess.on_request(r(101), 2, s(10));
    let out = sess.on_request(r(102), 3, s(12));
    assert_eq!(responses(&out), vec![(2, 200, empty_body())]);
    // and a request with payload is never "too frequent"
    let mut sess = start();
    sess.on_request(r(101), 2, s(10));
    let out = sess.on_request(rm(102, "m"), 3, s(10));
    assert_eq!(responses(&out), vec![(2, 200, empty_body())]);
    // nor is a restart request (sent right after SASL success)
    let mut sess = start();
    sess.on_request(r(101), 2, s(10));
    let out = sess.on_request(ra(102, "xmpp:restart='true'"), 3, s(10));
    assert!(out.contains(&Action::RestartStream));
}

#[test]
fn too_frequent_polling_in_a_polling_session() {
    let create = "rid='100' to='localhost' ver='1.11' wait='60' hold='0'";
    let (mut sess, _) = start_with(create, &SessionLimits::default());
    // a poll right after the (payload-less) creation response is too soon
    let out = sess.on_request(r(101), 2, ms(1500));
    let rs = responses(&out);
    assert_eq!(rs.len(), 1);
    assert_eq!(parse(&rs[0].2).attr("condition"), Some("policy-violation"));

    let (mut sess, _) = start_with(create, &SessionLimits::default());
    sess.on_stream_open("x".into(), None, s(1));
    sess.on_server_element(server_msg("late features"), s(1));
    let out = sess.on_request(r(101), 2, s(3));
    assert_eq!(
        texts(&responses(&out)[0].2),
        ["late features"],
        "answered at once"
    );
    // the previous response had payload: polling again soon is allowed
    let out = sess.on_request(r(102), 3, s(4));
    assert_eq!(responses(&out), vec![(3, 200, empty_body())]);
    // two empty exchanges within `polling`: violation
    let out = sess.on_request(r(103), 4, s(5));
    assert_eq!(
        responses(&out),
        vec![(4, 200, terminate("policy-violation"))]
    );
}

#[test]
fn hold_zero_sessions_answer_every_request_at_once() {
    let create = "rid='100' to='localhost' ver='1.11' wait='60' hold='0'";
    // start_with delivered the features after the creation response: queued
    let (mut sess, _) = start_with(create, &SessionLimits::default());
    assert!(sess.pending_bytes() > 0, "nothing held");
    let out = sess.on_request(rm(101, "a"), 2, s(3));
    assert_eq!(to_server(&out), [client_msg("a")]);
    let rs = responses(&out);
    assert_eq!(rs[0].0, 2);
    assert_eq!(parse(&rs[0].2).payload.len(), 1, "features");
    let out = sess.on_request(r(102), 3, s(6));
    assert_eq!(responses(&out), vec![(3, 200, empty_body())]);
    assert_eq!(sess.next_deadline(), Some(s(6 + 64)));
}

// ----------------------------------------------------------- pause and inactivity

#[test]
fn pause_answers_everything_and_stretches_inactivity() {
    let mut sess = start();
    sess.on_request(r(101), 2, s(1));
    let out = sess.on_request(ra(102, "pause='100'"), 3, s(2));
    assert_eq!(
        responses(&out),
        vec![(2, 200, empty_body()), (3, 200, empty_body())]
    );
    assert_eq!(sess.next_deadline(), Some(s(102)));
    assert!(
        sess.on_timeout(s(62)).is_empty(),
        "normal inactivity no longer applies"
    );
    assert_eq!(
        sess.on_timeout(s(102)),
        vec![Action::CloseStream, Action::Ended(EndReason::Inactivity)]
    );
}

#[test]
fn inactivity_is_back_to_normal_after_the_pause() {
    let mut sess = start();
    sess.on_request(ra(101, "pause='100'"), 2, s(1));
    sess.on_request(r(102), 3, s(50));
    let out = sess.on_timeout(s(110));
    assert_eq!(responses(&out), vec![(3, 200, empty_body())]);
    assert_eq!(sess.next_deadline(), Some(s(170)));
}

#[test]
fn pause_response_carries_no_payload() {
    let mut sess = start();
    sess.on_server_element(server_msg("x"), s(1));
    let out = sess.on_request(ra(101, "pause='30'"), 2, s(2));
    assert_eq!(responses(&out), vec![(2, 200, empty_body())]);
    assert!(sess.pending_bytes() > 0, "kept for the next request");
    let out = sess.on_request(r(102), 3, s(20));
    assert_eq!(texts(&responses(&out)[0].2), ["x"]);
}

#[test]
fn pause_beyond_maxpause_is_policy_violation() {
    let mut sess = start();
    let out = sess.on_request(ra(101, "pause='121'"), 2, s(1));
    assert_eq!(
        out,
        vec![
            Action::Respond {
                request: 2,
                status: 200,
                body: terminate("policy-violation")
            },
            Action::CloseStream,
            Action::Terminated(Condition::PolicyViolation),
        ]
    );
    // no maxpause advertised: any pause is refused
    let limits = SessionLimits {
        max_pause: Duration::ZERO,
        ..SessionLimits::default()
    };
    let (mut sess, c) = start_with(CREATE, &limits);
    assert_eq!(c.attr("maxpause"), None);
    let out = sess.on_request(ra(101, "pause='10'"), 2, s(1));
    assert!(out.contains(&Action::Terminated(Condition::PolicyViolation)));
}

#[test]
fn inactivity_without_held_requests_forgets_the_session() {
    let mut sess = start();
    assert_eq!(sess.next_deadline(), Some(s(60)));
    assert!(sess.on_timeout(s(59)).is_empty());
    assert_eq!(
        sess.on_timeout(s(60)),
        vec![Action::CloseStream, Action::Ended(EndReason::Inactivity)]
    );
    assert_eq!(sess.next_deadline(), None);
    assert_eq!(
        responses(&sess.on_request(r(101), 2, s(61))),
        vec![(2, 200, terminate("item-not-found"))]
    );
}

#[test]
fn a_held_request_suspends_inactivity() {
    let mut sess = start();
    sess.on_request(r(101), 2, s(1));
    assert_eq!(
        sess.next_deadline(),
        Some(s(61)),
        "the wait, not inactivity"
    );
    assert!(sess.on_timeout(s(60)).is_empty());
    let out = sess.on_timeout(s(61));
    assert_eq!(
        responses(&out),
        vec![(2, 200, empty_body())],
        "wait expiry: empty body"
    );
    assert_eq!(sess.next_deadline(), Some(s(121)));
    let out = sess.on_timeout(s(121));
    assert!(out.contains(&Action::Ended(EndReason::Inactivity)));
}

#[test]
fn wait_expiry_respects_rid_order() {
    let limits = SessionLimits {
        max_hold: 2,
        max_requests: 3,
        ..SessionLimits::default()
    };
    let (mut sess, _) = start_with(
        "rid='100' to='localhost' ver='1.11' wait='10' hold='2'",
        &limits,
    );
    // 102 arrives (and starts its wait) before 101
    sess.on_request(r(102), 3, s(1));
    sess.on_request(r(101), 2, s(5));
    assert_eq!(sess.next_deadline(), Some(s(11)));
    let out = sess.on_timeout(s(11));
    assert_eq!(
        responses(&out),
        vec![(2, 200, empty_body()), (3, 200, empty_body())]
    );
}

// ------------------------------------------------------------- termination

#[test]
fn client_terminate_delivers_its_payload_then_closes() {
    let mut sess = start();
    sess.on_request(r(101), 2, s(1));
    let out = sess.on_request(
        rq(
            "sid='s1' rid='102' type='terminate'",
            "<presence type='unavailable'/>",
        ),
        3,
        s(2),
    );
    assert_eq!(
        out,
        vec![
            Action::ToServer(parsed(
                &b"<presence xmlns='jabber:client' type='unavailable'/>"[..]
            )),
            Action::CloseStream,
            Action::Respond {
                request: 2,
                status: 200,
                body: format!("<body xmlns='{NS}' type='terminate'/>")
            },
            Action::Respond {
                request: 3,
                status: 200,
                body: empty_body()
            },
            Action::Ended(EndReason::ClientTerminate),
        ]
    );
    // alone, the terminate request gets the acknowledgement itself
    let mut sess = start();
    let out = sess.on_request(ra(101, "type='terminate'"), 2, s(1));
    assert_eq!(
        responses(&out),
        vec![(2, 200, format!("<body xmlns='{NS}' type='terminate'/>"))]
    );
}

#[test]
fn shutdown_tells_every_held_request() {
    let limits = SessionLimits {
        max_hold: 2,
        max_requests: 3,
        ..SessionLimits::default()
    };
    let (mut sess, _) = start_with(
        "rid='100' to='localhost' ver='1.11' wait='60' hold='2'",
        &limits,
    );
    sess.on_request(r(101), 2, s(1));
    sess.on_request(r(102), 3, s(2));
    assert_eq!(
        sess.on_shutdown(s(3)),
        vec![
            Action::Respond {
                request: 2,
                status: 200,
                body: terminate("system-shutdown")
            },
            Action::Respond {
                request: 3,
                status: 200,
                body: terminate("system-shutdown")
            },
            Action::CloseStream,
            Action::Terminated(Condition::SystemShutdown),
        ]
    );
    assert!(sess.on_shutdown(s(4)).is_empty());
}

#[test]
fn server_stream_error_reaches_the_client_with_what_came_before() {
    let err = "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>";
    let mut sess = start();
    assert!(sess.on_server_element(server_msg("last"), s(1)).is_empty());
    assert!(
        sess.on_server_element(err.into(), s(2)).is_empty(),
        "no request to tell yet"
    );
    let out = sess.on_request(r(101), 2, s(3));
    let cond = Condition::RemoteStreamError(Some(err.to_string()));
    assert_eq!(
        out,
        vec![
            Action::Respond {
                request: 2,
                status: 200,
                body: format!("<body xmlns='{NS}' xmlns:stream='http://etherx.jabber.org/streams' type='terminate' condition='remote-stream-error'>{}{err}</body>", String::from_utf8(server_msg("last")).unwrap()),
            },
            Action::Terminated(cond),
        ],
        "no CloseStream: the server side is already gone"
    );
}

#[test]
fn server_failures_with_and_without_a_held_request() {
    let mut sess = start();
    sess.on_request(r(101), 2, s(1));
    let out = sess.on_server_error(Condition::RemoteConnectionFailed, s(2));
    assert_eq!(
        out,
        vec![
            Action::Respond {
                request: 2,
                status: 200,
                body: terminate("remote-connection-failed")
            },
            Action::Terminated(Condition::RemoteConnectionFailed),
        ]
    );
    // nobody comes back: forgotten after the inactivity period
    let mut sess = start();
    assert!(sess
        .on_server_error(Condition::HostUnknown, s(1))
        .is_empty());
    assert_eq!(
        sess.on_timeout(s(60)),
        vec![Action::Terminated(Condition::HostUnknown)]
    );
    // the server closes its stream
    let mut sess = start();
    sess.on_request(r(101), 2, s(1));
    assert_eq!(
        sess.on_server_close(s(2)),
        vec![
            Action::Respond {
                request: 2,
                status: 200,
                body: format!("<body xmlns='{NS}' type='terminate'/>")
            },
            Action::Ended(EndReason::ServerClosed),
        ]
    );
}

#[test]
fn malformed_request_for_a_session_ends_it() {
    let mut sess = start();
    sess.on_request(r(101), 2, s(1));
    let bad = b"<body sid='s1' rid='102' xmlns='http://jabber.org/protocol/httpbind'><message xmlns='jabber:client'>";
    let err = parse_request(bad, &Limits::default()).unwrap_err();
    assert_eq!(peek_sid(bad).as_deref(), Some("s1"));
    let out = sess.on_bad_request(3, err.condition(), s(2));
    assert_eq!(
        out,
        vec![
            Action::Respond {
                request: 2,
                status: 200,
                body: terminate("other-request")
            },
            Action::Respond {
                request: 3,
                status: 200,
                body: terminate("bad-request")
            },
            Action::CloseStream,
            Action::Terminated(Condition::BadRequest),
        ]
    );
}

#[test]
fn a_request_for_another_sid_does_not_touch_the_session() {
    let mut sess = start();
    let out = sess.on_request(rq("sid='other' rid='101'", ""), 2, s(1));
    assert_eq!(responses(&out), vec![(2, 200, terminate("item-not-found"))]);
    assert!(!sess.is_ended());
    assert_eq!(
        terminate_body(&Condition::ItemNotFound),
        (200, terminate("item-not-found"))
    );
}

#[test]
fn undeliverable_stanzas_are_bounced_when_the_session_dies() {
    use super::session::recipient_unavailable;
    let mut sess = start();
    sess.on_server_elements(
        vec![
            b"<message xmlns='jabber:client' from='bob@localhost/x' to='alice@localhost/web' id='m1' type='chat'><body>hi</body></message>".to_vec(),
            b"<presence xmlns='jabber:client' from='bob@localhost/x'/>".to_vec(),
            b"<iq xmlns='jabber:client' from='localhost' to='alice@localhost/web' id='q1' type='get'><ping xmlns='urn:xmpp:ping'/></iq>".to_vec(),
            b"<iq xmlns='jabber:client' from='localhost' id='q2' type='result'/>".to_vec(),
            b"<message xmlns='jabber:client' from='bob@localhost/x' type='error'/>".to_vec(),
        ],
        s(1),
    );
    let out = sess.on_timeout(s(60));
    assert_eq!(
        out,
        vec![
            Action::ToServer(parsed(&b"<message xmlns='jabber:client' type='error' to='bob@localhost/x' id='m1'><error type='wait'><recipient-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"[..])),
            Action::ToServer(parsed(&b"<iq xmlns='jabber:client' type='error' to='localhost' id='q1'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"[..])),
            Action::CloseStream,
            Action::Ended(EndReason::Inactivity),
        ]
    );
    // shutdown with nothing held does the same
    let mut sess = start();
    sess.on_server_element(server_msg("x"), s(1));
    let out = sess.on_shutdown(s(2));
    assert_eq!(to_server(&out).len(), 1);
    assert_eq!(
        out.last(),
        Some(&Action::Terminated(Condition::SystemShutdown))
    );
    // the error's tag is built, not parsed, and matches its bytes
    let e =
        recipient_unavailable(b"<iq xmlns='jabber:client' type='get' from='a&amp;b' id='&lt;1>'/>")
            .unwrap();
    assert_eq!(
        e.tag,
        crate::xml::tag::ParsedElement::parse(e.bytes.clone())
            .unwrap()
            .tag
    );
    assert_eq!(e.tag.attr("to"), Some("a&b"));
    assert_eq!(e.tag.attr("id"), Some("<1>"));
    // other namespaces and stanzas are left alone
    assert_eq!(recipient_unavailable(b"<message from='a'/>"), None);
    assert_eq!(
        recipient_unavailable(b"<x:message xmlns:x='jabber:client' from='a'/>").map(|_| ()),
        Some(())
    );
    assert_eq!(
        recipient_unavailable(
            b"<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>"
        ),
        None
    );
}

// ----------------------------------------------------------------- restart

#[test]
fn restart_reopens_the_stream_and_answers_with_the_new_features() {
    let mut sess = start();
    let out = sess.on_request(
        rq("sid='s1' rid='101'", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHBhc3M=</auth>"),
        2,
        s(1),
    );
    assert_eq!(to_server(&out).len(), 1);
    let out = sess.on_server_element(
        b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>".to_vec(),
        s(2),
    );
    assert_eq!(responses(&out)[0].0, 2);
    // the restart request: a stray payload is ignored (XEP-0206 §5)
    let out = sess.on_request(
        rq(
            "sid='s1' rid='102' to='localhost' xml:lang='en' xmpp:restart='true'",
            "<presence/>",
        ),
        3,
        s(2),
    );
    assert_eq!(out, vec![Action::RestartStream]);
    // an eager client sends its bind before the new features: held back
    let bind = "<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>";
    let out = sess.on_request(rq("sid='s1' rid='103'", bind), 4, s(2));
    assert!(to_server(&out).is_empty(), "{out:?}");
    assert_eq!(responses(&out), vec![(3, 200, empty_body())]);
    assert!(sess
        .on_stream_open("srv2".into(), Some("localhost".into()), s(3))
        .is_empty());
    let out = sess.on_server_element(BIND_FEATURES.into(), s(3));
    assert_eq!(
        out,
        vec![
            Action::ToServer(parsed(bind)),
            Action::Respond {
                request: 4,
                status: 200,
                body: format!("<body xmlns='{NS}' xmlns:stream='http://etherx.jabber.org/streams'>{BIND_FEATURES}</body>"),
            },
        ]
    );
}

#[test]
fn restart_request_held_gets_the_features() {
    let mut sess = start();
    sess.on_request(ra(101, "xmpp:restart='true'"), 2, s(1));
    sess.on_stream_open("srv2".into(), None, s(1));
    let out = sess.on_server_element(BIND_FEATURES.into(), s(1));
    let resp = one(&out, 2);
    assert_eq!(resp.payload.len(), 1);
    assert_eq!(
        resp.attr("authid"),
        None,
        "authid is for the first stream only"
    );
}

// -------------------------------------------------------------------- keys

#[test]
fn key_sequence_from_the_xep_examples() {
    // XEP-0124 §15: K(n) in newkey, then K(n-1), K(n-2) …
    let kn = "ca393b51b682f61f98e7877d61146407f3d0a770";
    let kn1 = "bfb06a6f113cd6fd3838ab9d300fdb4fe3da2f7d";
    let kn2 = "6f825e81f4532b2c5fa2d12457d8a1f22e8f838e";
    assert_eq!(sha1_hex(kn1.as_bytes()), kn);
    assert_eq!(sha1_hex(kn2.as_bytes()), kn1);
    // newkey in upper case: comparisons are case-insensitive
    let (mut sess, _) = start_with(
        &format!("{CREATE} newkey='{}'", kn.to_ascii_uppercase()),
        &SessionLimits::default(),
    );
    sess.on_request(ra(101, &format!("key='{kn1}'")), 2, s(1));
    let out = sess.on_request(
        rq(&format!("sid='s1' rid='102' key='{kn2}'"), "<presence/>"),
        3,
        s(2),
    );
    assert_eq!(to_server(&out), ["<presence xmlns='jabber:client'/>"]);
    // a re-sent copy (same key) is replayed …
    let out = sess.on_request(ra(101, &format!("key='{kn1}'")), 4, s(3));
    assert_eq!(responses(&out), vec![(4, 200, empty_body())]);
    // … an injected one with another key is not
    let out = sess.on_request(ra(101, &format!("key='{kn2}'")), 5, s(3));
    assert!(out.contains(&Action::Terminated(Condition::ItemNotFound)));
}

#[test]
fn broken_key_sequences_terminate_unprocessed() {
    let seed = "my seed";
    let mut chain = vec![sha1_hex(seed.as_bytes())];
    for _ in 0..5 {
        let next = sha1_hex(chain.last().unwrap().as_bytes());
        chain.push(next);
    }
    // chain[i] = K(i+1); start with K(6)
    let create = format!("{CREATE} newkey='{}'", chain[5]);
    // missing key
    let (mut sess, _) = start_with(&create, &SessionLimits::default());
    let out = sess.on_request(rm(101, "x"), 2, s(1));
    assert!(to_server(&out).is_empty(), "MUST NOT process the element");
    assert_eq!(responses(&out), vec![(2, 200, terminate("item-not-found"))]);
    // wrong key (skipping one)
    let (mut sess, _) = start_with(&create, &SessionLimits::default());
    let out = sess.on_request(ra(101, &format!("key='{}'", chain[3])), 2, s(1));
    assert!(out.contains(&Action::Terminated(Condition::ItemNotFound)));
    // the right keys, then a switch to a new sequence with newkey
    let (mut sess, _) = start_with(&create, &SessionLimits::default());
    for (i, rid) in (101..=104).enumerate() {
        let out = sess.on_request(
            ra(rid, &format!("key='{}'", chain[4 - i])),
            rid,
            s((rid - 100) * 3),
        );
        assert!(!sess.is_ended(), "{out:?}");
    }
    let new_seq = sha1_hex(sha1_hex(b"other").as_bytes());
    sess.on_request(
        ra(105, &format!("key='{}' newkey='{new_seq}'", chain[0])),
        105,
        s(15),
    );
    sess.on_request(
        ra(106, &format!("key='{}'", sha1_hex(b"other"))),
        106,
        s(18),
    );
    assert!(!sess.is_ended());
    // the old sequence is no longer accepted
    let out = sess.on_request(ra(107, &format!("key='{}'", chain[0])), 107, s(21));
    assert!(out.contains(&Action::Terminated(Condition::ItemNotFound)));
}

// ----------------------------------------------- multiple streams, misc

#[test]
fn multiple_streams_are_not_offered_and_add_stream_is_a_plain_request() {
    let (mut sess, c) = start_with(CREATE, &SessionLimits::default());
    assert_eq!(
        c.attr("stream"),
        None,
        "§16.2: no stream attribute, no support"
    );
    let out = sess.on_request(
        ra(
            101,
            "to='other.example' route='xmpp:other.example:5222' xml:lang='en' stream='x'",
        ),
        2,
        s(5),
    );
    assert!(out.is_empty(), "a normal empty request, held: {out:?}");
    let out = sess.on_server_element(server_msg("hi"), s(6));
    assert_eq!(texts(&responses(&out)[0].2), ["hi"]);
}

#[test]
fn pending_bytes_and_backpressure() {
    let mut sess = start();
    assert!(sess.accepts_server_data());
    let big = |n: usize| {
        format!(
            "<message xmlns='jabber:client'><body>{}</body></message>",
            "x".repeat(n)
        )
        .into_bytes()
    };
    sess.on_server_element(big(600 * 1024), s(1));
    assert!(sess.accepts_server_data());
    sess.on_server_element(big(500 * 1024), s(1));
    assert!(sess.pending_bytes() >= 1024 * 1024);
    assert!(
        !sess.accepts_server_data(),
        "the glue stops reading the server"
    );
    let out = sess.on_request(r(101), 2, s(2));
    assert_eq!(
        parse_response(
            responses(&out)[0].2.as_bytes(),
            &Limits {
                max_bytes: 4 << 20,
                ..Limits::default()
            }
        )
        .unwrap()
        .payload
        .len(),
        2
    );
    assert_eq!(sess.pending_bytes(), 0);
    assert!(sess.accepts_server_data());
}

#[test]
fn secure_sessions_refuse_plain_connections() {
    let mut sess = start();
    assert!(sess.transport_ok(false));
    sess.set_secure_transport(true);
    assert!(sess.transport_ok(true));
    assert!(!sess.transport_ok(false));
}

// ------------------------------------------------------- lost responses

/// A tiny deterministic PRNG (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A client following XEP-0124: at most `requests` outstanding requests,
/// empty requests only when none is outstanding, exact copies re-sent when
/// a connection breaks, responses processed in rid order.
struct Client {
    next_rid: u64,
    /// rid → (current HTTP request, the request as first sent)
    outstanding: std::collections::BTreeMap<u64, (RequestId, Request)>,
    http: std::collections::HashMap<RequestId, u64>,
    received: std::collections::BTreeMap<u64, String>,
    processed_upto: u64,
    got: Vec<String>,
    next_http: RequestId,
    /// rids whose connection broke, with when the client noticed
    broken: Vec<(u64, Duration)>,
    /// how long the client takes to re-send
    resend_after: Duration,
    reports: usize,
    errors: usize,
    acks: bool,
    keys: Vec<String>,
}

impl Client {
    fn new_http(&mut self, rid: u64) -> RequestId {
        self.next_http += 1;
        self.http.insert(self.next_http, rid);
        self.next_http
    }

    fn request(&mut self, payload: Option<&str>) -> (Request, RequestId) {
        let rid = self.next_rid;
        self.next_rid += 1;
        let mut attrs = format!("sid='s1' rid='{rid}'");
        if self.acks && self.processed_upto < rid - 1 {
            attrs.push_str(&format!(" ack='{}'", self.processed_upto));
        }
        if let Some(k) = self.keys.pop() {
            attrs.push_str(&format!(" key='{k}'"));
        }
        let req = match payload {
            Some(t) => rq(
                &attrs,
                &format!(
                    "<message xmlns='jabber:client' to='bob@localhost'><body>{t}</body></message>"
                ),
            ),
            None => rq(&attrs, ""),
        };
        let http = self.new_http(rid);
        self.outstanding.insert(rid, (http, req.clone()));
        (req, http)
    }

    fn resend(&mut self, rid: u64) -> Option<(Request, RequestId)> {
        let req = self.outstanding.get(&rid)?.1.clone();
        let http = self.new_http(rid);
        self.outstanding.get_mut(&rid).unwrap().0 = http;
        Some((req, http))
    }

    fn is_broken(&self, rid: u64) -> bool {
        self.broken.iter().any(|(r, _)| *r == rid)
    }

    fn receive(&mut self, http: RequestId, body: String) {
        let rid = self.http[&http];
        match self.outstanding.get(&rid) {
            Some((current, _)) if *current == http => {}
            _ => return, // superseded by a re-send (answered empty)
        }
        let resp = parse(&body);
        assert_ne!(resp.attr("type"), Some("terminate"), "{body}");
        if resp.attr("type") == Some("error") {
            // §17.3: re-send it (and what precedes it without a response)
            self.errors += 1;
            for (&r, _) in self.outstanding.range(..=rid) {
                if !self.broken.iter().any(|(b, _)| *b == r) {
                    self.broken.push((r, Duration::ZERO));
                }
            }
            return;
        }
        if let Some(report) = resp.attr("report").and_then(|r| r.parse::<u64>().ok()) {
            // §9.2: the gateway says a response was lost: re-send at once
            self.reports += 1;
            for b in self.broken.iter_mut() {
                if b.0 == report {
                    b.1 = Duration::ZERO;
                }
            }
        }
        self.outstanding.remove(&rid);
        self.received.insert(rid, body);
        while let Some(b) = self.received.remove(&(self.processed_upto + 1)) {
            self.processed_upto += 1;
            self.got
                .extend(texts(&b).into_iter().filter(|t| t.starts_with('s')));
        }
    }
}

fn lost_responses_scenario(seed: u64, acks: bool, keys: bool, resend_after: Duration) -> usize {
    let mut rng = Rng(seed);
    let mut chain = vec![sha1_hex(format!("seed{seed}").as_bytes())];
    for _ in 0..3000 {
        let n = sha1_hex(chain.last().unwrap().as_bytes());
        chain.push(n);
    }
    let mut create =
        "rid='100' to='localhost' xml:lang='en' ver='1.11' wait='20' hold='1' xmpp:version='1.0'"
            .to_string();
    if acks {
        create.push_str(" ack='1'");
    }
    if keys {
        create.push_str(&format!(" newkey='{}'", chain.pop().unwrap()));
    }
    let (mut sess, _) = start_with(&create, &SessionLimits::default());
    let mut c = Client {
        next_rid: 101,
        outstanding: Default::default(),
        http: Default::default(),
        received: Default::default(),
        processed_upto: 100,
        got: Vec::new(),
        next_http: 1000,
        broken: Vec::new(),
        resend_after,
        reports: 0,
        errors: 0,
        acks,
        keys: if keys { chain } else { Vec::new() },
    };
    let total = 300;
    let mut sent_server = 0;
    let mut sent_client = 0;
    let mut to_server_seen: Vec<String> = Vec::new();
    let mut now = s(1);
    for step in 0..20_000 {
        now += ms(300);
        let mut out = Vec::new();
        let draining = sent_server == total && sent_client == total;
        if sent_server < total && rng.chance(30) {
            let n = 1 + rng.next() % 3;
            let mut batch: Vec<Vec<u8>> = Vec::new();
            while sent_server < total && (batch.len() as u64) < n {
                batch.push(server_msg(&format!("s{sent_server}")));
                sent_server += 1;
            }
            out.extend(sess.on_server_elements(batch, now));
        }
        // re-send the exact copy of requests whose connection broke
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut c.broken)
            .into_iter()
            .partition(|(_, at)| now >= *at + c.resend_after || *at == Duration::ZERO);
        c.broken = later;
        for (rid, _) in due {
            if let Some((req, http)) = c.resend(rid) {
                out.extend(sess.on_request(req, http, now));
            }
        }
        if c.outstanding.len() < 2 && sent_client < total && rng.chance(25) {
            let (req, http) = c.request(Some(&format!("c{sent_client}")));
            sent_client += 1;
            if rng.chance(5) {
                c.broken.push((req.rid, now)); // the request itself was lost
            } else {
                out.extend(sess.on_request(req, http, now));
            }
        } else if c.outstanding.is_empty() {
            let (req, http) = c.request(None);
            out.extend(sess.on_request(req, http, now));
        }
        // sometimes a held connection breaks before any response
        if rng.chance(3) {
            if let Some((&rid, &(http, _))) = c.outstanding.iter().next() {
                if !c.is_broken(rid) {
                    out.extend(sess.on_request_gone(http, now));
                    c.broken.push((rid, now));
                }
            }
        }
        out.extend(sess.on_timeout(now));
        for a in out {
            match a {
                Action::Respond {
                    request,
                    status,
                    body,
                } => {
                    assert_eq!(status, 200);
                    let rid = c.http[&request];
                    if rng.chance(15) && !c.is_broken(rid) {
                        // the response is lost on the way: the client sees
                        // a broken connection and will re-send
                        if c.outstanding.get(&rid).is_some_and(|(h, _)| *h == request) {
                            c.broken.push((rid, now));
                        }
                    } else {
                        c.receive(request, body);
                    }
                }
                Action::ToServer(b) => to_server_seen.push(String::from_utf8(b.bytes).unwrap()),
                Action::Terminated(_) | Action::Ended(_) => {
                    panic!("session ended at step {step}: {a:?}")
                }
                _ => {}
            }
        }
        if draining && c.got.len() == total && to_server_seen.len() == total && c.broken.is_empty()
        {
            break;
        }
    }
    let want: Vec<String> = (0..total).map(|i| format!("s{i}")).collect();
    assert_eq!(
        c.got, want,
        "every server stanza exactly once, in order (seed {seed})"
    );
    let want: Vec<String> = (0..total).map(|i| client_msg(&format!("c{i}"))).collect();
    assert_eq!(
        to_server_seen, want,
        "every client stanza exactly once, in order (seed {seed})"
    );
    c.reports
}

#[test]
fn lost_response_is_recovered_by_resending_the_same_rid() {
    let mut sess = start();
    sess.on_request(r(101), 2, s(1));
    let out = sess.on_server_element(server_msg("m1"), s(2));
    let lost = responses(&out)[0].2.clone(); // never reaches the client
    sess.on_server_element(server_msg("m2"), s(3)); // queued
                                                    // the client notices the broken connection and re-sends rid 101
    let out = sess.on_request(r(101), 3, s(4));
    assert_eq!(responses(&out), vec![(3, 200, lost.clone())]);
    assert_eq!(texts(&lost), ["m1"]);
    let out = sess.on_request(r(102), 4, s(5));
    assert_eq!(
        texts(&responses(&out)[0].2),
        ["m2"],
        "m1 is not delivered twice"
    );
}

#[test]
fn lost_responses_lose_nothing_randomised() {
    let mut reports = 0;
    for seed in [1, 2, 3, 0xDEAD_BEEF, 42] {
        // the client notices a broken connection at once …
        lost_responses_scenario(seed, false, false, Duration::ZERO);
        lost_responses_scenario(seed, true, false, Duration::ZERO);
        lost_responses_scenario(seed, true, true, Duration::ZERO);
        // … or only after 10 s (an HTTP timeout), meanwhile it goes on
        // with other requests; with acks, `report` tells it earlier
        lost_responses_scenario(seed, false, false, s(10));
        reports += lost_responses_scenario(seed, true, true, s(10));
        // … or after more than `wait`: requests stuck behind a lost one
        // get the recoverable error and the client re-sends (§17.3)
        lost_responses_scenario(seed, true, false, s(30));
        lost_responses_scenario(seed, false, false, s(30));
    }
    assert!(reports > 0, "reports were exercised");
}

/// An element as the body parser hands it on (bytes and parsed start tag).
fn parsed(el: impl AsRef<[u8]>) -> crate::xml::tag::ParsedElement {
    crate::xml::tag::ParsedElement::parse(el.as_ref()).unwrap()
}
