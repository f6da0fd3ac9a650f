//! Edge rewrite rules, byte by byte.

use super::*;
use crate::sip::flow_token::{encode, WsTransport};
use crate::sip::framing::CoreTransport;
use crate::sip::message::{parse, SipLimits};

const KEY: &[u8] = b"shared key";

fn cfg() -> EdgeConfig<'static> {
    EdgeConfig {
        key: KEY,
        ws_host: "gw.example.com",
        core_host: "10.0.0.1:5070",
        core_transport: CoreTransport::Udp,
        udp_threshold: 1300,
        require_path_support: false,
    }
}

fn flow() -> FlowCtx<'static> {
    FlowCtx {
        flow_id: 7,
        transport: WsTransport::Wss,
        peer_ip: "192.0.2.9",
        peer_port: 51000,
    }
}

fn crlf(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

fn to_core(input: &[u8]) -> (String, CoreTransport) {
    let m = parse(input, &SipLimits::default()).unwrap();
    match from_client(&m, &cfg(), &flow()) {
        FromClient::ToCore { bytes, transport } => (String::from_utf8(bytes).unwrap(), transport),
        other => panic!("{other:?}"),
    }
}

fn branch_for(msg: &[u8]) -> String {
    let m = parse(msg, &SipLimits::default()).unwrap();
    derive_branch(KEY, &m, 7)
}

/// JsSIP's REGISTER (spec §4), with Content-Length absent as on WS.
const REGISTER: &str = "REGISTER sip:127.0.0.1 SIP/2.0
Via: SIP/2.0/WSS tctoiqaivdl9.invalid;branch=z9hG4bK7745645
Max-Forwards: 69
To: <sip:alice@127.0.0.1>
From: <sip:alice@127.0.0.1>;tag=abc
Call-ID: reg1
CSeq: 1 REGISTER
Contact: <sip:797u6qgc@tctoiqaivdl9.invalid;transport=ws>;+sip.ice;reg-id=1;expires=300
Supported: path,gruu,outbound

";

#[test]
fn register_gets_via_received_rport_path_and_length() {
    let input = crlf(REGISTER);
    let (out, t) = to_core(&input);
    let tok = encode(KEY, 7, WsTransport::Wss);
    let br = branch_for(&input);
    let expected = crlf(&format!(
        "REGISTER sip:127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5070;branch={br};rport;ucgf={tok}
Via: SIP/2.0/WSS tctoiqaivdl9.invalid;branch=z9hG4bK7745645;received=192.0.2.9;rport=51000
Max-Forwards: 68
To: <sip:alice@127.0.0.1>
From: <sip:alice@127.0.0.1>;tag=abc
Call-ID: reg1
CSeq: 1 REGISTER
Contact: <sip:797u6qgc@tctoiqaivdl9.invalid;transport=ws>;+sip.ice;reg-id=1;expires=300
Supported: path,gruu,outbound
Path: <sip:{tok}@10.0.0.1:5070;transport=udp;lr;ob>
Content-Length: 0

"
    ));
    assert_eq!(out, String::from_utf8(expected).unwrap());
    assert_eq!(t, CoreTransport::Udp);
    assert!(br.starts_with("z9hG4bK"));
}

#[test]
fn register_without_path_support() {
    let input = crlf(&REGISTER.replace("Supported: path,gruu,outbound\n", ""));
    let m = parse(&input, &SipLimits::default()).unwrap();
    let strict = EdgeConfig {
        require_path_support: true,
        ..cfg()
    };
    match from_client(&m, &strict, &flow()) {
        FromClient::Respond(r) => {
            let r = String::from_utf8(r).unwrap();
            assert!(r.starts_with("SIP/2.0 421 Extension Required\r\n"), "{r}");
            assert!(r.contains("\r\nRequire: path\r\n"));
        }
        other => panic!("{other:?}"),
    }
    let (out, _) = to_core(&input);
    assert!(out.contains("\r\nPath: <sip:"));
}

#[test]
fn client_received_rport_overwritten_sent_by_kept() {
    let input = crlf(&REGISTER.replace(
        "branch=z9hG4bK7745645\n",
        "branch=z9hG4bK7745645;rport=1;received=1.2.3.4;x=y\n",
    ));
    let (out, _) = to_core(&input);
    assert!(out.contains("\r\nVia: SIP/2.0/WSS tctoiqaivdl9.invalid;branch=z9hG4bK7745645;x=y;received=192.0.2.9;rport=51000\r\n"), "{out}");
}

fn invite(extra: &str) -> String {
    format!(
        "INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bKinv1
Max-Forwards: 70
To: <sip:bob@example.com>
From: <sip:alice@example.com>;tag=a1
Call-ID: call1
CSeq: 1 INVITE
Contact: <sip:x@abc.invalid;transport=ws;ob>
{extra}Content-Type: application/sdp
Content-Length: 5

v=0
"
    )
}

#[test]
fn invite_double_record_route_and_route_stripping() {
    // The client preloads our route and a foreign one: ours is popped, the
    // foreign one dropped (out-of-dialog requests go to the core only).
    let input = crlf(&invite(
        "Route: <sip:gw.example.com;transport=wss;lr>, <sip:evil.example.net;lr>\n",
    ));
    let (out, _) = to_core(&input);
    let tok = encode(KEY, 7, WsTransport::Wss);
    let br = branch_for(&input);
    let expected = format!(
        "INVITE sip:bob@example.com SIP/2.0\r
Via: SIP/2.0/UDP 10.0.0.1:5070;branch={br};rport;ucgf={tok}\r
Record-Route: <sip:10.0.0.1:5070;transport=udp;lr>, <sip:{tok}@gw.example.com;transport=wss;lr>\r
Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bKinv1;received=192.0.2.9;rport=51000\r
Max-Forwards: 69\r
To: <sip:bob@example.com>\r
From: <sip:alice@example.com>;tag=a1\r
Call-ID: call1\r
CSeq: 1 INVITE\r
Contact: <sip:x@abc.invalid;transport=ws;ob>\r
Content-Type: application/sdp\r
Content-Length: 5\r
\r
v=0\r
"
    );
    assert_eq!(out, expected);
}

#[test]
fn in_dialog_request_keeps_route_set_no_record_route() {
    let input = crlf(
        "BYE sip:bob@10.0.0.9 SIP/2.0
Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bKbye1
Max-Forwards: 70
Route: <sip:TOKEN@gw.example.com;transport=wss;lr>,<sip:10.0.0.1:5070;transport=udp;lr>
Route: <sip:core.example.com;lr>
To: <sip:bob@example.com>;tag=b1
From: <sip:alice@example.com>;tag=a1
Call-ID: call1
CSeq: 2 BYE
Content-Length: 0

",
    );
    let (out, _) = to_core(&input);
    assert!(!out.contains("Record-Route"));
    assert!(!out.contains("gw.example.com"));
    assert!(
        out.contains("\r\nRoute: <sip:core.example.com;lr>\r\n"),
        "{out}"
    );
    assert!(!out.contains("\r\nRoute: \r\n"));
}

#[test]
fn max_forwards_rules() {
    let zero = crlf(&invite("").replace("Max-Forwards: 70", "Max-Forwards: 0"));
    let m = parse(&zero, &SipLimits::default()).unwrap();
    match from_client(&m, &cfg(), &flow()) {
        FromClient::Respond(r) => {
            let r = String::from_utf8(r).unwrap();
            assert!(r.starts_with("SIP/2.0 483 Too Many Hops\r\nVia: SIP/2.0/WSS abc.invalid;branch=z9hG4bKinv1\r\n"), "{r}");
            assert!(r.contains("\r\nTo: <sip:bob@example.com>;tag="));
        }
        other => panic!("{other:?}"),
    }
    let ack = crlf(
        &invite("")
            .replace("Max-Forwards: 70", "Max-Forwards: 0")
            .replace("INVITE sip", "ACK sip")
            .replace("1 INVITE", "1 ACK"),
    );
    let m = parse(&ack, &SipLimits::default()).unwrap();
    assert!(matches!(
        from_client(&m, &cfg(), &flow()),
        FromClient::Drop(_)
    ));
    let none = crlf(&invite("").replace("Max-Forwards: 70\n", ""));
    let (out, _) = to_core(&none);
    assert!(out.contains("\r\nMax-Forwards: 70\r\n"), "{out}");
}

#[test]
fn cancel_and_non_2xx_ack_share_the_invite_branch() {
    let inv = crlf(&invite(""));
    let cancel = crlf(
        &invite("")
            .replace("INVITE sip", "CANCEL sip")
            .replace("1 INVITE", "1 CANCEL"),
    );
    let (a, _) = to_core(&inv);
    let (c, _) = to_core(&cancel);
    let top = |s: &str| s.lines().nth(1).unwrap().to_owned();
    assert_eq!(top(&a), top(&c));
    assert!(!c.contains("Record-Route"));
    // Stable across retransmissions, different for another flow.
    assert_eq!(to_core(&inv).0, a);
    let m = parse(&inv, &SipLimits::default()).unwrap();
    assert_ne!(derive_branch(KEY, &m, 8), derive_branch(KEY, &m, 7));
}

#[test]
fn large_message_to_udp_core_goes_over_tcp() {
    let big = crlf(&invite(&format!("X-Pad: {}\n", "a".repeat(1400))));
    let (out, t) = to_core(&big);
    assert_eq!(t, CoreTransport::Tcp);
    assert!(
        out.starts_with("INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1:5070;")
    );
}

fn from_core_ok(input: &[u8]) -> (Flow, String) {
    let m = parse(input, &SipLimits::default()).unwrap();
    match from_core(&m, &cfg()) {
        FromCore::ToClient { flow, bytes } => (flow, String::from_utf8(bytes).unwrap()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn core_response_pops_our_via() {
    let (req, _) = to_core(&crlf(&invite("")));
    let our_via = req.lines().nth(1).unwrap().to_owned();
    let client_via =
        "Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bKinv1;received=192.0.2.9;rport=51000";
    let resp = crlf(&format!(
        "SIP/2.0 180 Ringing
{our_via}
{client_via}
Record-Route: <sip:10.0.0.1:5070;transport=udp;lr>
To: <sip:bob@example.com>;tag=b1
From: <sip:alice@example.com>;tag=a1
Call-ID: call1
CSeq: 1 INVITE
Content-Length: 0

"
    ));
    let (f, out) = from_core_ok(&resp);
    assert_eq!(
        f,
        Flow {
            flow_id: 7,
            transport: WsTransport::Wss
        }
    );
    let expected = String::from_utf8(resp)
        .unwrap()
        .replace(&format!("{our_via}\r\n"), "");
    assert_eq!(out, expected);
    // A response whose top Via is not ours, or forged, is dropped.
    let forged = String::from_utf8(crlf(&format!("SIP/2.0 200 OK\n{}\n{client_via}\nTo: <sip:b@e>;tag=1\nFrom: <sip:a@e>;tag=2\nCall-ID: c\nCSeq: 1 INVITE\nl: 0\n\n", our_via.replace("ucgf=", "ucgf=X")))).unwrap();
    let m = parse(forged.as_bytes(), &SipLimits::default()).unwrap();
    assert!(matches!(from_core(&m, &cfg()), FromCore::Drop(_)));
}

fn core_invite(route: &str) -> Vec<u8> {
    crlf(&format!(
        "INVITE sip:797u6qgc@tctoiqaivdl9.invalid;transport=ws SIP/2.0
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKcore1
Max-Forwards: 69
{route}To: <sip:alice@example.com>
From: <sip:bob@example.com>;tag=b1
Call-ID: in1
CSeq: 10 INVITE
Content-Length: 0

"
    ))
}

#[test]
fn core_request_to_client_by_path_token() {
    let tok = encode(KEY, 7, WsTransport::Wss);
    let input = core_invite(&format!(
        "Route: <sip:{tok}@10.0.0.1:5070;transport=udp;lr;ob>\n"
    ));
    let (f, out) = from_core_ok(&input);
    assert_eq!(f.flow_id, 7);
    let m = parse(&input, &SipLimits::default()).unwrap();
    let br = derive_branch(KEY, &m, 7);
    let expected = format!(
        "INVITE sip:797u6qgc@tctoiqaivdl9.invalid;transport=ws SIP/2.0\r
Via: SIP/2.0/WSS gw.example.com;branch={br};ucgf={tok}\r
Record-Route: <sip:{tok}@gw.example.com;transport=wss;lr>, <sip:10.0.0.1:5070;transport=udp;lr>\r
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKcore1\r
Max-Forwards: 68\r
To: <sip:alice@example.com>\r
From: <sip:bob@example.com>;tag=b1\r
Call-ID: in1\r
CSeq: 10 INVITE\r
Content-Length: 0\r
\r
"
    );
    assert_eq!(out, expected);
}

#[test]
fn core_in_dialog_request_pops_record_route_pair() {
    let tok = encode(KEY, 7, WsTransport::Wss);
    let input = core_invite(&format!(
        "Route: <sip:10.0.0.1:5070;transport=udp;lr>, <sip:{tok}@gw.example.com;transport=wss;lr>\n"
    ));
    let input = String::from_utf8(input)
        .unwrap()
        .replace("INVITE sip", "BYE sip")
        .replace("10 INVITE", "11 BYE")
        .replace(
            "To: <sip:alice@example.com>",
            "To: <sip:alice@example.com>;tag=a1",
        );
    let (f, out) = from_core_ok(input.as_bytes());
    assert_eq!(f.flow_id, 7);
    assert!(!out.contains("Route"), "{out}");
    assert!(out.contains("\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKcore1\r\n"));
}

#[test]
fn forged_token_403_and_missing_token_404() {
    let forged = encode(b"another key", 7, WsTransport::Wss);
    let input = core_invite(&format!(
        "Route: <sip:{forged}@10.0.0.1:5070;transport=udp;lr;ob>\n"
    ));
    let m = parse(&input, &SipLimits::default()).unwrap();
    match from_core(&m, &cfg()) {
        FromCore::Respond(r) => assert!(r.starts_with(
            b"SIP/2.0 403 Forbidden\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKcore1\r\n"
        )),
        other => panic!("{other:?}"),
    }
    let input = core_invite("");
    let m = parse(&input, &SipLimits::default()).unwrap();
    match from_core(&m, &cfg()) {
        FromCore::Respond(r) => assert!(r.starts_with(b"SIP/2.0 404 Not Found\r\n")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn flow_gone_gives_430_or_480_and_ack_is_dropped() {
    let tok = encode(KEY, 7, WsTransport::Wss);
    let input = core_invite(&format!("Route: <sip:{tok}@10.0.0.1:5070;lr;ob>\n"));
    let m = parse(&input, &SipLimits::default()).unwrap();
    let r = flow_gone_response(&m, &cfg(), false).unwrap();
    assert!(r.starts_with(b"SIP/2.0 430 Flow Failed\r\n"));
    let r = flow_gone_response(&m, &cfg(), true).unwrap();
    assert!(r.starts_with(b"SIP/2.0 480 Temporarily Unavailable\r\n"));
    let ack = String::from_utf8(input)
        .unwrap()
        .replace("INVITE sip", "ACK sip")
        .replace("10 INVITE", "10 ACK");
    let m = parse(ack.as_bytes(), &SipLimits::default()).unwrap();
    assert_eq!(flow_gone_response(&m, &cfg(), false), None);
}

#[test]
fn client_response_pops_our_via() {
    let tok = encode(KEY, 7, WsTransport::Wss);
    let resp = crlf(&format!(
        "SIP/2.0 200 OK
Via: SIP/2.0/WSS gw.example.com;branch=z9hG4bKx;ucgf={tok}
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKcore1
To: <sip:alice@example.com>;tag=a1
From: <sip:bob@example.com>;tag=b1
Call-ID: in1
CSeq: 10 INVITE

"
    ));
    let m = parse(&resp, &SipLimits::default()).unwrap();
    match from_client(&m, &cfg(), &flow()) {
        FromClient::ToCore { bytes, transport } => {
            assert_eq!(transport, CoreTransport::Udp);
            let expected = String::from_utf8(resp.clone())
                .unwrap()
                .replace(
                    &format!("Via: SIP/2.0/WSS gw.example.com;branch=z9hG4bKx;ucgf={tok}\r\n"),
                    "",
                )
                .replace(
                    "CSeq: 10 INVITE\r\n",
                    "CSeq: 10 INVITE\r\nContent-Length: 0\r\n",
                );
            assert_eq!(String::from_utf8(bytes).unwrap(), expected);
        }
        other => panic!("{other:?}"),
    }
    // The same response arriving on another flow is dropped.
    let other = FlowCtx {
        flow_id: 8,
        ..flow()
    };
    assert!(matches!(
        from_client(&m, &cfg(), &other),
        FromClient::Drop(_)
    ));
}

#[test]
fn parse_error_response_for_bad_client_request() {
    let b = crlf(
        "OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bK1\nCSeq: 1 OPTIONS\n\n",
    );
    let lim = SipLimits::default();
    let err = parse(&b, &lim).unwrap_err();
    let r = parse_error_response(&b, &lim, &err, KEY).unwrap();
    assert!(r.starts_with(
        b"SIP/2.0 400 Missing From\r\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bK1\r\n"
    ));
}
