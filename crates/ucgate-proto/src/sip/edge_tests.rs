//! Edge rewrite rules, byte by byte.

use super::*;
use crate::sip::flow_token::{encode, WsTransport};
use crate::sip::framing::CoreTransport;
use crate::sip::message::{parse, SipLimits};

const KEY: &[u8] = b"shared key";
const BOOT: u64 = 42;

fn cfg() -> EdgeConfig<'static> {
    EdgeConfig {
        key: KEY,
        boot: BOOT,
        node: None,
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
    let tok = encode(KEY, BOOT, 7, WsTransport::Wss);
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

#[test]
fn an_unknown_client_port_gets_no_rport() {
    let input = crlf(&REGISTER.replace("branch=z9hG4bK7745645\n", "branch=z9hG4bK7745645;rport\n"));
    let m = parse(&input, &SipLimits::default()).unwrap();
    let flow = FlowCtx {
        peer_port: 0,
        ..flow()
    };
    let FromClient::ToCore { bytes, .. } = from_client(&m, &cfg(), &flow) else {
        panic!("not relayed");
    };
    let out = String::from_utf8(bytes).unwrap();
    assert!(
        out.contains("\r\nVia: SIP/2.0/WSS tctoiqaivdl9.invalid;branch=z9hG4bK7745645;received=192.0.2.9\r\n"),
        "{out}"
    );
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
    let tok = encode(KEY, BOOT, 7, WsTransport::Wss);
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
    let tok = encode(KEY, BOOT, 7, WsTransport::Wss);
    let input = crlf(&format!(
        "BYE sip:bob@10.0.0.9 SIP/2.0
Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bKbye1
Max-Forwards: 70
Route: <sip:{tok}@gw.example.com;transport=wss;lr>,<sip:10.0.0.1:5070;transport=udp;lr>
Route: <sip:core.example.com;lr>
To: <sip:bob@example.com>;tag=b1
From: <sip:alice@example.com>;tag=a1
Call-ID: call1
CSeq: 2 BYE
Content-Length: 0

"
    ));
    let (out, _) = to_core(&input);
    let br = branch_for(&input);
    let expected = format!(
        "BYE sip:bob@10.0.0.9 SIP/2.0\r
Via: SIP/2.0/UDP 10.0.0.1:5070;branch={br};rport;ucgf={tok}\r
Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bKbye1;received=192.0.2.9;rport=51000\r
Max-Forwards: 69\r
Route: <sip:core.example.com;lr>\r
To: <sip:bob@example.com>;tag=b1\r
From: <sip:alice@example.com>;tag=a1\r
Call-ID: call1\r
CSeq: 2 BYE\r
Content-Length: 0\r
\r
"
    );
    assert_eq!(out, expected);
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
        FromCore::ToClient {
            flow,
            bytes,
            reply_key,
        } => {
            // The key the glue files the request under is the one the
            // relayed request itself has (and so the client's responses).
            let relayed = parse(&bytes, &SipLimits::default()).unwrap();
            if m.is_request() && m.method() != Some("ACK") {
                assert_eq!(reply_key, transaction_key(&relayed));
                assert!(reply_key.is_some());
            } else {
                assert_eq!(reply_key, None);
            }
            (flow, String::from_utf8(bytes).unwrap())
        }
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
    let expected = String::from_utf8(resp.clone())
        .unwrap()
        .replace(&format!("{our_via}\r\n"), "");
    assert_eq!(out, expected);
    // A response whose top Via is not ours, or forged, is dropped.
    let forged = String::from_utf8(crlf(&format!("SIP/2.0 200 OK\n{}\n{client_via}\nTo: <sip:b@e>;tag=1\nFrom: <sip:a@e>;tag=2\nCall-ID: c\nCSeq: 1 INVITE\nl: 0\n\n", our_via.replace("ucgf=", "ucgf=X")))).unwrap();
    let m = parse(forged.as_bytes(), &SipLimits::default()).unwrap();
    assert!(matches!(from_core(&m, &cfg()), FromCore::Drop(_)));
    // So is one whose Via below ours the client could not route by (found
    // by the sip_edge fuzz target: a NUL in the host).
    let broken = String::from_utf8(resp.clone()).unwrap().replace(
        client_via,
        "Via: SIP/2.0/WSS abc.inval[\0id;branch=z9hG4bKinv1",
    );
    let m = parse(broken.as_bytes(), &SipLimits::default()).unwrap();
    assert_eq!(
        from_core(&m, &cfg()),
        FromCore::Drop("response whose Via below ours is unusable")
    );
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
    let tok = encode(KEY, BOOT, 7, WsTransport::Wss);
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
    let tok = encode(KEY, BOOT, 7, WsTransport::Wss);
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
    let forged = encode(b"another key", BOOT, 7, WsTransport::Wss);
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
    let tok = encode(KEY, BOOT, 7, WsTransport::Wss);
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
    let tok = encode(KEY, BOOT, 7, WsTransport::Wss);
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

// ---------------------------------------------------------------------------
// RFC 5626 §5.3: flow tokens in a client's Route compared with the sender.

fn flow8() -> FlowCtx<'static> {
    FlowCtx {
        flow_id: 8,
        transport: WsTransport::Ws,
        peer_ip: "198.51.100.4",
        peer_port: 40000,
    }
}

fn act(input: &[u8], flow: &FlowCtx<'_>, state: &mut ClientState) -> ClientAction {
    let m = parse(input, &SipLimits::default()).unwrap();
    route_client(&m, &cfg(), flow, state)
}

/// Alice (flow 7) and Bob (flow 8) in a dialog through a core that does not
/// Record-Route: Alice's route set is our pair for her, then our pair for
/// Bob.
fn hairpin_bye() -> Vec<u8> {
    let t7 = encode(KEY, BOOT, 7, WsTransport::Wss);
    let t8 = encode(KEY, BOOT, 8, WsTransport::Ws);
    crlf(&format!(
        "BYE sip:5nf8ccig@vmcqvnus9lmo.invalid;transport=ws SIP/2.0
Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bKbye1
Max-Forwards: 70
Route: <sip:{t7}@gw.example.com;transport=wss;lr>, <sip:10.0.0.1:5070;transport=udp;lr>, <sip:10.0.0.1:5070;transport=udp;lr>, <sip:{t8}@gw.example.com;transport=ws;lr>
To: <sip:bob@example.com>;tag=b1
From: <sip:alice@example.com>;tag=a1
Call-ID: call1
CSeq: 2 BYE
Content-Length: 0

"
    ))
}

#[test]
fn in_dialog_request_for_another_flow_is_delivered_there() {
    let t7 = encode(KEY, BOOT, 7, WsTransport::Wss);
    let t8 = encode(KEY, BOOT, 8, WsTransport::Ws);
    let input = hairpin_bye();
    let br1 = branch_for(&input);
    // What the core would have got from us, then processed as a request
    // from the core for flow 8: our core-facing Via stays below ours.
    let outgoing = format!(
        "BYE sip:5nf8ccig@vmcqvnus9lmo.invalid;transport=ws SIP/2.0\r
Via: SIP/2.0/UDP 10.0.0.1:5070;branch={br1};rport;ucgf={t7}\r
Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bKbye1;received=192.0.2.9;rport=51000\r
Max-Forwards: 69\r
To: <sip:bob@example.com>;tag=b1\r
From: <sip:alice@example.com>;tag=a1\r
Call-ID: call1\r
CSeq: 2 BYE\r
Content-Length: 0\r
\r
"
    );
    let m = parse(outgoing.as_bytes(), &SipLimits::default()).unwrap();
    let br2 = derive_branch(KEY, &m, 8);
    let expected = outgoing.replacen(
        "Via: ",
        &format!("Via: SIP/2.0/WS gw.example.com;branch={br2};ucgf={t8}\r\nVia: "),
        1,
    );
    match act(&input, &flow(), &mut ClientState::new()) {
        ClientAction::ToFlow { flow: f, bytes } => {
            assert_eq!(
                f,
                Flow {
                    flow_id: 8,
                    transport: WsTransport::Ws
                }
            );
            assert_eq!(String::from_utf8(bytes).unwrap(), expected);
        }
        other => panic!("{other:?}"),
    }
    // Without per-connection routing (from_client), it is refused and never
    // sent to the core.
    let m = parse(&input, &SipLimits::default()).unwrap();
    match from_client(&m, &cfg(), &flow()) {
        FromClient::Respond(r) => assert!(r.starts_with(
            b"SIP/2.0 403 Forbidden\r\nVia: SIP/2.0/WSS abc.invalid;branch=z9hG4bKbye1\r\n"
        )),
        other => panic!("{other:?}"),
    }

    // Bob's 200 goes back to Alice's flow, both our Vias popped.
    let resp = crlf(&format!(
        "SIP/2.0 200 OK
Via: SIP/2.0/WS gw.example.com;branch={br2};ucgf={t8}
Via: SIP/2.0/UDP 10.0.0.1:5070;branch={br1};rport;ucgf={t7}
Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bKbye1;received=192.0.2.9;rport=51000
To: <sip:bob@example.com>;tag=b1
From: <sip:alice@example.com>;tag=a1
Call-ID: call1
CSeq: 2 BYE
Content-Length: 0

"
    ));
    match act(&resp, &flow8(), &mut ClientState::new()) {
        ClientAction::ToFlow { flow: f, bytes } => {
            assert_eq!(f.flow_id, 7);
            assert_eq!(
                String::from_utf8(bytes).unwrap(),
                "SIP/2.0 200 OK\r
Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bKbye1;received=192.0.2.9;rport=51000\r
To: <sip:bob@example.com>;tag=b1\r
From: <sip:alice@example.com>;tag=a1\r
Call-ID: call1\r
CSeq: 2 BYE\r
Content-Length: 0\r
\r
"
            );
        }
        other => panic!("{other:?}"),
    }
    let m = parse(&resp, &SipLimits::default()).unwrap();
    assert!(matches!(
        from_client(&m, &cfg(), &flow8()),
        FromClient::Drop(_)
    ));
    // The same response from flow 7 (not the flow of our top Via): dropped.
    assert!(matches!(
        act(&resp, &flow(), &mut ClientState::new()),
        ClientAction::Drop(_)
    ));
}

#[test]
fn client_route_tokens_forged_or_out_of_dialog() {
    // A forged token in an in-dialog request: 403 (RFC 5626 §5.3.1); an ACK
    // is dropped instead.
    let forged = encode(b"another key", BOOT, 7, WsTransport::Wss);
    let bye = String::from_utf8(hairpin_bye()).unwrap();
    let t8 = encode(KEY, BOOT, 8, WsTransport::Ws);
    let input = bye.replace(&t8, &forged);
    match act(input.as_bytes(), &flow(), &mut ClientState::new()) {
        ClientAction::Respond(r) => {
            assert!(r.starts_with(b"SIP/2.0 403 Forbidden\r\nVia: SIP/2.0/WSS abc.invalid;branch=z9hG4bKbye1\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b1\r\n"))
        }
        other => panic!("{other:?}"),
    }
    let ack = input
        .replace("BYE sip", "ACK sip")
        .replace("2 BYE", "2 ACK");
    assert!(matches!(
        act(ack.as_bytes(), &flow(), &mut ClientState::new()),
        ClientAction::Drop(_)
    ));
    // Out of dialog, a token of another flow gives no way around the core:
    // every preloaded Route is dropped and the request goes to the core.
    let input = crlf(&invite(&format!(
        "Route: <sip:{t8}@gw.example.com;transport=ws;lr>\n"
    )));
    match act(&input, &flow(), &mut ClientState::new()) {
        ClientAction::ToCore { bytes, .. } => {
            let out = String::from_utf8(bytes).unwrap();
            assert!(!out.contains("\r\nRoute:"), "{out}");
            assert!(out.starts_with(
                "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;"
            ));
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------
// RFC 3261 §16.4: strict routers.

#[test]
fn strict_router_from_the_core() {
    let t7 = encode(KEY, BOOT, 7, WsTransport::Wss);
    let input = crlf(&format!(
        "BYE sip:10.0.0.1:5070;transport=udp;lr SIP/2.0
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKcore2
Max-Forwards: 69
Route: <sip:{t7}@gw.example.com;transport=wss;lr>
Route: <sip:797u6qgc@tctoiqaivdl9.invalid;transport=ws>
To: <sip:alice@example.com>;tag=a1
From: <sip:bob@example.com>;tag=b1
Call-ID: in1
CSeq: 11 BYE
Content-Length: 0

"
    ));
    let (f, out) = from_core_ok(&input);
    assert_eq!(f.flow_id, 7);
    let br = branch_for_core(&input, 7);
    assert_eq!(
        out,
        format!(
            "BYE sip:797u6qgc@tctoiqaivdl9.invalid;transport=ws SIP/2.0\r
Via: SIP/2.0/WSS gw.example.com;branch={br};ucgf={t7}\r
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKcore2\r
Max-Forwards: 68\r
To: <sip:alice@example.com>;tag=a1\r
From: <sip:bob@example.com>;tag=b1\r
Call-ID: in1\r
CSeq: 11 BYE\r
Content-Length: 0\r
\r
"
        )
    );
    // The Request-URI is our client-facing URI with the token: the flow
    // comes from it.
    let input = crlf(&format!(
        "BYE sip:{t7}@gw.example.com;transport=wss;lr SIP/2.0
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKcore3
Max-Forwards: 69
Route: <sip:797u6qgc@tctoiqaivdl9.invalid;transport=ws>
To: <sip:alice@example.com>;tag=a1
From: <sip:bob@example.com>;tag=b1
Call-ID: in1
CSeq: 12 BYE
Content-Length: 0

"
    ));
    let (f, out) = from_core_ok(&input);
    assert_eq!(f.flow_id, 7);
    assert!(out.starts_with(
        "BYE sip:797u6qgc@tctoiqaivdl9.invalid;transport=ws SIP/2.0\r\nVia: SIP/2.0/WSS gw.example.com;"
    ));
    assert!(!out.contains("Route"), "{out}");
    // Same with a forged token: 403.
    let forged = encode(b"another key", BOOT, 7, WsTransport::Wss);
    let text = String::from_utf8(input).unwrap();
    let input = text.replace(&t7, &forged);
    let m = parse(input.as_bytes(), &SipLimits::default()).unwrap();
    assert!(
        matches!(from_core(&m, &cfg()), FromCore::Respond(r) if r.starts_with(b"SIP/2.0 403 Forbidden\r\n"))
    );
    // A token of flow 7 issued before a restart (same key, another boot
    // value): the same 403, never flow 7 of this process.
    let stale = encode(KEY, BOOT + 1, 7, WsTransport::Wss);
    let input = text.replace(&t7, &stale);
    let m = parse(input.as_bytes(), &SipLimits::default()).unwrap();
    match from_core(&m, &cfg()) {
        FromCore::Respond(r) => assert!(r.starts_with(b"SIP/2.0 403 Forbidden\r\n")),
        other => panic!("a token from before the restart was accepted: {other:?}"),
    }
}

fn branch_for_core(msg: &[u8], flow_id: u64) -> String {
    let m = parse(msg, &SipLimits::default()).unwrap();
    derive_branch(KEY, &m, flow_id)
}

#[test]
fn strict_router_from_a_client() {
    let t7 = encode(KEY, BOOT, 7, WsTransport::Wss);
    let input = crlf(&format!(
        "BYE sip:{t7}@gw.example.com;transport=wss;lr SIP/2.0
Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bKbye2
Max-Forwards: 70
Route: <sip:10.0.0.1:5070;transport=udp;lr>, <sip:core.example.com;lr>
Route: <sip:bob@10.0.0.9>
To: <sip:bob@example.com>;tag=b1
From: <sip:alice@example.com>;tag=a1
Call-ID: call1
CSeq: 3 BYE
Content-Length: 0

"
    ));
    let (out, _) = to_core(&input);
    let br = branch_for(&input);
    assert_eq!(
        out,
        format!(
            "BYE sip:bob@10.0.0.9 SIP/2.0\r
Via: SIP/2.0/UDP 10.0.0.1:5070;branch={br};rport;ucgf={t7}\r
Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bKbye2;received=192.0.2.9;rport=51000\r
Max-Forwards: 69\r
Route: <sip:core.example.com;lr>\r
To: <sip:bob@example.com>;tag=b1\r
From: <sip:alice@example.com>;tag=a1\r
Call-ID: call1\r
CSeq: 3 BYE\r
Content-Length: 0\r
\r
"
        )
    );
}

/// Found by the `sip_edge` fuzz target (fuzz/regressions/sip_edge/): a
/// strict-routed request whose last Route URI cannot be a Request-URI (here
/// `<s:>`, accepted as a Route value) was relayed with that URI as its
/// Request-URI, a message no SIP parser accepts. It is a `400 Bad Route`
/// from either side (ACK: dropped).
#[test]
fn strict_route_to_an_unusable_uri_is_400() {
    let t7 = encode(KEY, BOOT, 7, WsTransport::Wss);
    for last in ["<s:>", "<tel:+15551234>", "<sip:bob@10.0.0.9?Subject=x>"] {
        let core = crlf(&format!(
            "BYE sip:{t7}@gw.example.com;lr SIP/2.0
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKcore9
Max-Forwards: 69
Route: {last}
To: <sip:alice@example.com>;tag=a1
From: <sip:bob@example.com>;tag=b1
Call-ID: in9
CSeq: 2 BYE

"
        ));
        let m = parse(&core, &SipLimits::default()).unwrap();
        match from_core(&m, &cfg()) {
            FromCore::Respond(r) => assert!(r.starts_with(b"SIP/2.0 400 Bad Route\r\n"), "{last}"),
            other => panic!("{last}: {other:?}"),
        }
        let client = crlf(&format!(
            "BYE sip:{t7}@gw.example.com;transport=wss;lr SIP/2.0
Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bKbye9
Max-Forwards: 70
Route: {last}
To: <sip:bob@example.com>;tag=b1
From: <sip:alice@example.com>;tag=a1
Call-ID: call9
CSeq: 3 BYE

"
        ));
        let m = parse(&client, &SipLimits::default()).unwrap();
        match from_client(&m, &cfg(), &flow()) {
            FromClient::Respond(r) => {
                assert!(r.starts_with(b"SIP/2.0 400 Bad Route\r\n"), "{last}")
            }
            other => panic!("{last}: {other:?}"),
        }
        let ack = String::from_utf8(client).unwrap().replace("BYE", "ACK");
        let m = parse(ack.as_bytes(), &SipLimits::default()).unwrap();
        assert!(matches!(
            from_client(&m, &cfg(), &flow()),
            FromClient::Drop(_)
        ));
    }
}

#[test]
fn only_our_exact_uris_count_as_ours() {
    // A REGISTER to our address without `lr` is not strict-routed, and a
    // Route naming our host on another port (a core on the same address,
    // port 5060) is not popped.
    let t7 = encode(KEY, BOOT, 7, WsTransport::Wss);
    let reg = crlf(&REGISTER.replace("REGISTER sip:127.0.0.1", "REGISTER sip:10.0.0.1:5070"));
    let (out, _) = to_core(&reg);
    assert!(out.starts_with("REGISTER sip:10.0.0.1:5070 SIP/2.0\r\n"));
    let input = crlf(&format!(
        "BYE sip:bob@10.0.0.9 SIP/2.0
Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bKbye3
Route: <sip:{t7}@gw.example.com;transport=wss;lr>, <sip:10.0.0.1;lr>
To: <sip:bob@example.com>;tag=b1
From: <sip:alice@example.com>;tag=a1
Call-ID: call1
CSeq: 4 BYE
Content-Length: 0

"
    ));
    let (out, _) = to_core(&input);
    assert!(out.contains("\r\nRoute: <sip:10.0.0.1;lr>\r\n"), "{out}");
    assert!(!out.contains("gw.example.com"));
}

// ---------------------------------------------------------------------------
// CANCEL and ACK (RFC 3261 §9.1, §16.10, §16.11, §17.1.1.3).

fn variant(base: &str, method: &str, to_tag: bool) -> Vec<u8> {
    let s = base
        .replace("INVITE sip", &format!("{method} sip"))
        .replace("1 INVITE", &format!("1 {method}"))
        .replace(
            "Content-Type: application/sdp\nContent-Length: 5\n\nv=0\n",
            "Content-Length: 0\n\n",
        );
    let s = if to_tag {
        s.replace(
            "To: <sip:bob@example.com>",
            "To: <sip:bob@example.com>;tag=b9",
        )
    } else {
        s
    };
    crlf(&s)
}

#[test]
fn cancel_and_non_2xx_ack_follow_their_invite_to_tcp() {
    let tok = encode(KEY, BOOT, 7, WsTransport::Wss);
    let pad = format!("X-Pad: {}\n", "a".repeat(1400));
    let base = invite(&pad);
    let mut state = ClientState::new();
    let (inv_via, inv_branch) = match act(&crlf(&base), &flow(), &mut state) {
        ClientAction::ToCore { bytes, transport } => {
            assert_eq!(transport, CoreTransport::Tcp);
            let s = String::from_utf8(bytes).unwrap();
            let via = s.lines().nth(1).unwrap().to_owned();
            (via, branch_for(&crlf(&base)))
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(state.len(), 1);
    let cancel = variant(&base.replace(&pad, ""), "CANCEL", false);
    match act(&cancel, &flow(), &mut state) {
        ClientAction::ToCore { bytes, transport } => {
            assert_eq!(transport, CoreTransport::Tcp);
            assert_eq!(
                String::from_utf8(bytes).unwrap(),
                format!(
                    "CANCEL sip:bob@example.com SIP/2.0\r
Via: SIP/2.0/TCP 10.0.0.1:5070;branch={inv_branch};rport;ucgf={tok}\r
Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bKinv1;received=192.0.2.9;rport=51000\r
Max-Forwards: 69\r
To: <sip:bob@example.com>\r
From: <sip:alice@example.com>;tag=a1\r
Call-ID: call1\r
CSeq: 1 CANCEL\r
Contact: <sip:x@abc.invalid;transport=ws;ob>\r
Content-Length: 0\r
\r
"
                )
            );
            assert_eq!(
                format!("Via: SIP/2.0/TCP 10.0.0.1:5070;branch={inv_branch};rport;ucgf={tok}"),
                inv_via
            );
        }
        other => panic!("{other:?}"),
    }
    // Non-2xx ACK: same branch, same transport; never answered.
    let ack = variant(&base.replace(&pad, ""), "ACK", true);
    match act(&ack, &flow(), &mut state) {
        ClientAction::ToCore { bytes, transport } => {
            assert_eq!(transport, CoreTransport::Tcp);
            assert!(String::from_utf8(bytes)
                .unwrap()
                .contains(&format!("\r\n{inv_via}\r\n")));
        }
        other => panic!("{other:?}"),
    }
    // Without the connection's state (from_client) the CANCEL would take
    // the size rule: UDP.
    let m = parse(&cancel, &SipLimits::default()).unwrap();
    assert!(matches!(
        from_client(&m, &cfg(), &flow()),
        FromClient::ToCore {
            transport: CoreTransport::Udp,
            ..
        }
    ));
    // A 2xx ACK is a new transaction routed by its Route set: new branch,
    // the size rule, the core's Route kept.
    let ack2 = String::from_utf8(ack)
        .unwrap()
        .replace("branch=z9hG4bKinv1", "branch=z9hG4bKack2")
        .replace(
            "Max-Forwards: 70\r\n",
            &format!("Max-Forwards: 70\r\nRoute: <sip:{tok}@gw.example.com;transport=wss;lr>, <sip:10.0.0.1:5070;transport=udp;lr>, <sip:core.example.com;lr>\r\n"),
        );
    match act(ack2.as_bytes(), &flow(), &mut state) {
        ClientAction::ToCore { bytes, transport } => {
            assert_eq!(transport, CoreTransport::Udp);
            let s = String::from_utf8(bytes).unwrap();
            assert!(
                s.contains("\r\nRoute: <sip:core.example.com;lr>\r\n"),
                "{s}"
            );
            assert!(!s.contains(&inv_branch));
            assert!(!s.contains("Record-Route"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn client_state_is_bounded() {
    let mut state = ClientState::new();
    let pad = format!("X-Pad: {}\n", "a".repeat(1400));
    for i in 0..CLIENT_STATE_BRANCHES + 6 {
        let inv = invite(&pad).replace("z9hG4bKinv1", &format!("z9hG4bKinv{i}x"));
        assert!(matches!(
            act(&crlf(&inv), &flow(), &mut state),
            ClientAction::ToCore {
                transport: CoreTransport::Tcp,
                ..
            }
        ));
    }
    assert_eq!(state.len(), CLIENT_STATE_BRANCHES);
    // The oldest INVITEs are forgotten: their CANCEL takes the size rule.
    let cancel = |i: usize| variant(&invite(""), "CANCEL", false).replace_branch(i);
    assert!(matches!(
        act(&cancel(0), &flow(), &mut state),
        ClientAction::ToCore {
            transport: CoreTransport::Udp,
            ..
        }
    ));
    assert!(matches!(
        act(&cancel(CLIENT_STATE_BRANCHES + 5), &flow(), &mut state),
        ClientAction::ToCore {
            transport: CoreTransport::Tcp,
            ..
        }
    ));
    // A retransmitted INVITE is not remembered twice.
    let inv = invite(&pad).replace("z9hG4bKinv1", "z9hG4bKinv69x");
    act(&crlf(&inv), &flow(), &mut state);
    assert_eq!(state.len(), CLIENT_STATE_BRANCHES);
}

trait ReplaceBranch {
    fn replace_branch(self, i: usize) -> Vec<u8>;
}

impl ReplaceBranch for Vec<u8> {
    fn replace_branch(self, i: usize) -> Vec<u8> {
        String::from_utf8(self)
            .unwrap()
            .replace("z9hG4bKinv1", &format!("z9hG4bKinv{i}x"))
            .into_bytes()
    }
}

#[test]
fn core_cancel_and_ack_share_the_invite_branch() {
    let tok = encode(KEY, BOOT, 7, WsTransport::Wss);
    let route = format!("Route: <sip:{tok}@10.0.0.1:5070;transport=udp;lr;ob>\n");
    let inv = core_invite(&route);
    let s = String::from_utf8(inv.clone()).unwrap();
    let cancel = s
        .replace("INVITE sip", "CANCEL sip")
        .replace("10 INVITE", "10 CANCEL");
    let ack = s
        .replace("INVITE sip", "ACK sip")
        .replace("10 INVITE", "10 ACK")
        .replace(
            "To: <sip:alice@example.com>",
            "To: <sip:alice@example.com>;tag=a9",
        );
    let top = |b: &[u8]| from_core_ok(b).1.lines().nth(1).unwrap().to_owned();
    let inv_via = top(&inv);
    assert_eq!(top(cancel.as_bytes()), inv_via);
    assert_eq!(top(ack.as_bytes()), inv_via);
    let (_, c) = from_core_ok(cancel.as_bytes());
    assert!(!c.contains("Record-Route"));
}

#[test]
fn ack_is_never_answered() {
    let tok = encode(KEY, BOOT, 7, WsTransport::Wss);
    // From the core: Max-Forwards 0, no token, a forged token, Proxy-Require.
    let ack = |route: &str, extra: &str| {
        String::from_utf8(core_invite(route))
            .unwrap()
            .replace("INVITE sip", "ACK sip")
            .replace("10 INVITE", "10 ACK")
            .replace("Max-Forwards: 69\r\n", extra)
    };
    let good = format!("Route: <sip:{tok}@10.0.0.1:5070;lr;ob>\n");
    let forged = format!(
        "Route: <sip:{}@10.0.0.1:5070;lr;ob>\n",
        encode(b"x", BOOT, 7, WsTransport::Wss)
    );
    for a in [
        ack(&good, "Max-Forwards: 0\r\n"),
        ack("", "Max-Forwards: 69\r\n"),
        ack(&forged, "Max-Forwards: 69\r\n"),
        ack(&good, "Max-Forwards: 69\r\nProxy-Require: foo\r\n"),
    ] {
        let m = parse(a.as_bytes(), &SipLimits::default()).unwrap();
        assert!(matches!(from_core(&m, &cfg()), FromCore::Drop(_)), "{a}");
    }
    // From a client: Max-Forwards 0, Proxy-Require.
    for extra in ["Max-Forwards: 0", "Max-Forwards: 70\nProxy-Require: foo"] {
        let a = variant(&invite("").replace("Max-Forwards: 70", extra), "ACK", true);
        assert!(matches!(
            act(&a, &flow(), &mut ClientState::new()),
            ClientAction::Drop(_)
        ));
    }
}

/// RFC 3261 §16.3 step 5 with RFC 4475 §3.3.5 "bext01": 420 listing the
/// Proxy-Require option tags (Require is for the UAS, not the proxy).
#[test]
fn proxy_require_gets_420() {
    let b = crlf("OPTIONS sip:user@example.com SIP/2.0\nTo: sip:j_user@example.com\nFrom: sip:caller@example.net;tag=242etr\nMax-Forwards: 6\nCall-ID: bext01.0ha0isndaksdj\nRequire: nothingSupportsThis, nothingSupportsThisEither\nProxy-Require: noProxiesSupportThis, norDoAnyProxiesSupportThis\nCSeq: 8 OPTIONS\nVia: SIP/2.0/TLS fold-and-staple.example.com;branch=z9hG4bKkdjuw\nContent-Length: 0\n\n");
    let m = parse(&b, &SipLimits::default()).unwrap();
    let expected = format!("SIP/2.0 420 Bad Extension\r\nVia: SIP/2.0/TLS fold-and-staple.example.com;branch=z9hG4bKkdjuw\r\nFrom: sip:caller@example.net;tag=242etr\r\nTo: sip:j_user@example.com;tag={}\r\nCall-ID: bext01.0ha0isndaksdj\r\nCSeq: 8 OPTIONS\r\nUnsupported: noProxiesSupportThis, norDoAnyProxiesSupportThis\r\nContent-Length: 0\r\n\r\n", our_tag(KEY, &m));
    match from_client(&m, &cfg(), &flow()) {
        FromClient::Respond(r) => assert_eq!(String::from_utf8(r).unwrap(), expected),
        other => panic!("{other:?}"),
    }
    match from_core(&m, &cfg()) {
        FromCore::Respond(r) => assert_eq!(String::from_utf8(r).unwrap(), expected),
        other => panic!("{other:?}"),
    }
    // Without Proxy-Require it goes on (Require is not the proxy's).
    let ok = String::from_utf8(b).unwrap().replace(
        "Proxy-Require: noProxiesSupportThis, norDoAnyProxiesSupportThis\r\n",
        "",
    );
    let m = parse(ok.as_bytes(), &SipLimits::default()).unwrap();
    assert!(matches!(
        from_client(&m, &cfg(), &flow()),
        FromClient::ToCore { .. }
    ));
}

/// 513 for every limit, 414 for the request line, through the edge's
/// `parse_error_response` (To tag from the key).
#[test]
fn limits_are_answered() {
    let input = crlf(&invite(""));
    let m = parse(&input, &SipLimits::default()).unwrap();
    let tag = our_tag(KEY, &m);
    let answer = |status: &str| {
        format!("SIP/2.0 {status}\r\nVia: SIP/2.0/WSS abc.invalid;branch=z9hG4bKinv1\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag={tag}\r\nCall-ID: call1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
    };
    for (limits, status) in [
        (
            SipLimits {
                max_headers: 8,
                ..SipLimits::default()
            },
            "513 Message Too Large",
        ),
        (
            SipLimits {
                max_line: 40,
                ..SipLimits::default()
            },
            "513 Message Too Large",
        ),
        (
            SipLimits {
                max_message: 100,
                ..SipLimits::default()
            },
            "513 Message Too Large",
        ),
        (
            SipLimits {
                max_line: 30,
                ..SipLimits::default()
            },
            "414 Request-URI Too Long",
        ),
    ] {
        let err = parse(&input, &limits).unwrap_err();
        let r = parse_error_response(&input, &limits, &err, KEY).unwrap();
        assert_eq!(String::from_utf8(r).unwrap(), answer(status), "{limits:?}");
    }
}

#[test]
fn transaction_key_pairs_a_relayed_request_with_the_clients_responses() {
    let tok = encode(KEY, BOOT, 7, WsTransport::Wss);
    let route = format!("Route: <sip:{tok}@10.0.0.1:5070;transport=udp;lr;ob>\n");
    let inv = core_invite(&route);
    let (_, relayed) = from_core_ok(&inv);
    // The client answers with every Via of the relayed request, ours on top.
    let response = |req: &str, status: &str| {
        let mut r = format!("SIP/2.0 {status}\r\n");
        for l in req.split("\r\n").skip(1).take_while(|l| !l.is_empty()) {
            let name = l.split(':').next().unwrap().to_ascii_lowercase();
            if ["via", "from", "to", "call-id", "cseq"].contains(&name.as_str()) {
                r.push_str(l);
                r.push_str("\r\n");
            }
        }
        r.push_str("Content-Length: 0\r\n\r\n");
        r
    };
    let key = |b: &[u8]| transaction_key(&parse(b, &SipLimits::default()).unwrap());
    let req_key = key(relayed.as_bytes()).expect("a key for the relayed request");
    assert!(req_key.ends_with(b" INVITE"));
    assert_eq!(
        key(response(&relayed, "180 Ringing").as_bytes()),
        Some(req_key.clone())
    );
    assert_eq!(
        key(response(&relayed, "200 OK").as_bytes()),
        Some(req_key.clone())
    );
    // A CANCEL shares the INVITE's branch but is its own transaction.
    let cancel = String::from_utf8(inv)
        .unwrap()
        .replace("INVITE sip", "CANCEL sip")
        .replace("10 INVITE", "10 CANCEL");
    let (_, relayed_cancel) = from_core_ok(cancel.as_bytes());
    let cancel_key = key(relayed_cancel.as_bytes()).unwrap();
    assert_ne!(cancel_key, req_key);
    assert_eq!(
        cancel_key[..cancel_key.len() - 7],
        req_key[..req_key.len() - 7]
    );
    // No branch on the top Via: no key.
    let no_branch = response(&relayed, "200 OK").replacen(";branch=", ";xbranch=", 1);
    assert_eq!(key(no_branch.as_bytes()), None);
}
