//! The edge as a node of a cluster (issue 17): flow tokens name the node
//! and its start value; a token of another node or of a previous start is
//! `FlowGone` (430 from the glue), a forged one 403. Byte by byte.

use super::*;
use crate::node::NodeName;
use crate::sip::flow_token::{cluster_key, encode, encode_cluster, Flow, WsTransport};
use crate::sip::framing::CoreTransport;
use crate::sip::message::{parse, SipLimits};

const SECRET: &[u8] = b"a shared secret of more than 32 characters";
const START: u64 = 0x0123_4567_89ab_cdef;

fn name(n: &str) -> NodeName {
    NodeName::parse(n).unwrap()
}

/// Node `me` started as `start`; its core-facing address is its own.
fn node_cfg<'a>(key: &'a [u8], me: &'a NodeName, start: u64) -> EdgeConfig<'a> {
    EdgeConfig {
        key,
        boot: start,
        node: Some(me),
        ws_host: "10.0.0.11:5070",
        core_host: "10.0.0.11:5070",
        core_transport: CoreTransport::Udp,
        udp_threshold: 1300,
        require_path_support: false,
    }
}

fn flow7() -> FlowCtx<'static> {
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

fn core_request(method: &str, to_tag: &str, route: &str) -> Vec<u8> {
    crlf(&format!(
        "{method} sip:797u6qgc@tctoiqaivdl9.invalid;transport=ws SIP/2.0
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKcore1
Max-Forwards: 69
{route}To: <sip:alice@example.com>{to_tag}
From: <sip:bob@example.com>;tag=b1
Call-ID: in1
CSeq: 10 {method}
Content-Length: 0

"
    ))
}

fn decide(input: &[u8], cfg: &EdgeConfig<'_>) -> FromCore {
    from_core(&parse(input, &SipLimits::default()).unwrap(), cfg)
}

#[test]
fn register_gets_a_path_naming_this_node_and_its_start() {
    let key = cluster_key(SECRET);
    let me = name("gw-a");
    let cfg = node_cfg(&key, &me, START);
    let input = crlf(
        "REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/WSS tctoiqaivdl9.invalid;branch=z9hG4bK7745645
Max-Forwards: 69
To: <sip:alice@example.com>
From: <sip:alice@example.com>;tag=abc
Call-ID: reg1
CSeq: 1 REGISTER
Contact: <sip:797u6qgc@tctoiqaivdl9.invalid;transport=ws>;reg-id=1
Supported: path,outbound

",
    );
    let m = parse(&input, &SipLimits::default()).unwrap();
    let FromClient::ToCore { bytes, .. } = from_client(&m, &cfg, &flow7()) else {
        panic!("not sent to the core");
    };
    let tok = encode_cluster(&key, &me, START, 7, WsTransport::Wss);
    assert_eq!(tok.len(), 44);
    let br = rewrite::derive_branch(&key, &m, 7);
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        format!(
            "REGISTER sip:example.com SIP/2.0\r
Via: SIP/2.0/UDP 10.0.0.11:5070;branch={br};rport;ucgf={tok}\r
Via: SIP/2.0/WSS tctoiqaivdl9.invalid;branch=z9hG4bK7745645;received=192.0.2.9;rport=51000\r
Max-Forwards: 68\r
To: <sip:alice@example.com>\r
From: <sip:alice@example.com>;tag=abc\r
Call-ID: reg1\r
CSeq: 1 REGISTER\r
Contact: <sip:797u6qgc@tctoiqaivdl9.invalid;transport=ws>;reg-id=1\r
Supported: path,outbound\r
Path: <sip:{tok}@10.0.0.11:5070;transport=udp;lr;ob>\r
Content-Length: 0\r
\r
"
        )
    );
}

#[test]
fn a_token_of_this_node_and_start_reaches_its_flow() {
    let key = cluster_key(SECRET);
    let me = name("gw-a");
    let cfg = node_cfg(&key, &me, START);
    let tok = encode_cluster(&key, &me, START, 7, WsTransport::Wss);
    let input = core_request(
        "INVITE",
        "",
        &format!("Route: <sip:{tok}@10.0.0.11:5070;transport=udp;lr;ob>\n"),
    );
    let m = parse(&input, &SipLimits::default()).unwrap();
    let br = rewrite::derive_branch(&key, &m, 7);
    match from_core(&m, &cfg) {
        FromCore::ToClient { flow, bytes, .. } => {
            assert_eq!(
                flow,
                Flow {
                    flow_id: 7,
                    transport: WsTransport::Wss
                }
            );
            assert_eq!(
                String::from_utf8(bytes).unwrap(),
                format!(
                    "INVITE sip:797u6qgc@tctoiqaivdl9.invalid;transport=ws SIP/2.0\r
Via: SIP/2.0/WSS 10.0.0.11:5070;branch={br};ucgf={tok}\r
Record-Route: <sip:{tok}@10.0.0.11:5070;transport=wss;lr>, <sip:10.0.0.11:5070;transport=udp;lr>\r
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKcore1\r
Max-Forwards: 68\r
To: <sip:alice@example.com>\r
From: <sip:bob@example.com>;tag=b1\r
Call-ID: in1\r
CSeq: 10 INVITE\r
Content-Length: 0\r
\r
"
                )
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn core_requests_for_another_node_or_start_are_flow_gone() {
    let key = cluster_key(SECRET);
    let (a, b) = (name("gw-a"), name("gw-b"));
    let on_a = node_cfg(&key, &a, START);
    // The same address, as when another node took it over (or the core
    // reaches every node at one name): only the token tells them apart.
    let on_b = node_cfg(&key, &b, START);
    let a_restarted = node_cfg(&key, &a, START ^ 1);
    let tok = encode_cluster(&key, &a, START, 7, WsTransport::Wss);
    let routes = [
        // Initial request, by Path.
        ("", format!("Route: <sip:{tok}@10.0.0.11:5070;transport=udp;lr;ob>\n")),
        // In dialog, by the Record-Route pair.
        (
            ";tag=a1",
            format!("Route: <sip:10.0.0.11:5070;transport=udp;lr>, <sip:{tok}@10.0.0.11:5070;transport=wss;lr>\n"),
        ),
    ];
    for (tag, route) in &routes {
        for method in ["INVITE", "BYE", "MESSAGE", "OPTIONS"] {
            let input = core_request(method, tag, route);
            assert!(matches!(decide(&input, &on_a), FromCore::ToClient { .. }));
            assert_eq!(decide(&input, &on_b), FromCore::FlowGone, "{method} on b");
            assert_eq!(decide(&input, &a_restarted), FromCore::FlowGone, "{method}");
            // What the glue answers then: 430 with the core's Via.
            let m = parse(&input, &SipLimits::default()).unwrap();
            let r = flow_gone_response(&m, &on_b, false).unwrap();
            assert!(
                r.starts_with(
                    b"SIP/2.0 430 Flow Failed\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKcore1\r\n"
                ),
                "{}",
                String::from_utf8_lossy(&r)
            );
        }
        // ACK is never answered.
        let ack = core_request("ACK", tag, route);
        assert!(matches!(decide(&ack, &on_b), FromCore::Drop(_)));
        assert!(matches!(decide(&ack, &a_restarted), FromCore::Drop(_)));
    }
    // A strict router upstream: the token in the Request-URI.
    let strict = crlf(&format!(
        "BYE sip:{tok}@10.0.0.11:5070;transport=wss;lr SIP/2.0
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKcore1
Max-Forwards: 69
Route: <sip:797u6qgc@tctoiqaivdl9.invalid;transport=ws>
To: <sip:alice@example.com>;tag=a1
From: <sip:bob@example.com>;tag=b1
Call-ID: in1
CSeq: 11 BYE
Content-Length: 0

"
    ));
    assert!(matches!(decide(&strict, &on_a), FromCore::ToClient { .. }));
    assert_eq!(decide(&strict, &on_b), FromCore::FlowGone);
    // A Request-URI naming us with a token, no Route.
    let by_uri = String::from_utf8(core_request("MESSAGE", "", ""))
        .unwrap()
        .replace(
            "MESSAGE sip:797u6qgc@tctoiqaivdl9.invalid;transport=ws",
            &format!("MESSAGE sip:{tok}@10.0.0.11:5070;transport=udp"),
        );
    assert!(matches!(
        decide(by_uri.as_bytes(), &on_a),
        FromCore::ToClient { .. }
    ));
    assert_eq!(decide(by_uri.as_bytes(), &a_restarted), FromCore::FlowGone);
}

#[test]
fn forged_and_foreign_tokens_are_403_on_every_node() {
    let key = cluster_key(SECRET);
    let (a, b) = (name("gw-a"), name("gw-b"));
    let good = encode_cluster(&key, &a, START, 7, WsTransport::Wss);
    let mut flipped = good.clone().into_bytes();
    flipped[20] = if flipped[20] == b'A' { b'B' } else { b'A' };
    let forged = [
        // Another cluster's secret.
        encode_cluster(
            &cluster_key(b"not our cluster's secret at all!!"),
            &a,
            START,
            7,
            WsTransport::Wss,
        ),
        // The secret itself as the key (never the derived key).
        encode_cluster(SECRET, &a, START, 7, WsTransport::Wss),
        // A single node's token under the cluster key.
        encode(&key, START, 7, WsTransport::Wss),
        String::from_utf8(flipped).unwrap(),
        "alice".to_string(),
    ];
    for cfg in [node_cfg(&key, &a, START), node_cfg(&key, &b, START)] {
        for tok in &forged {
            let input = core_request(
                "INVITE",
                "",
                &format!("Route: <sip:{tok}@10.0.0.11:5070;transport=udp;lr;ob>\n"),
            );
            match decide(&input, &cfg) {
                FromCore::Respond(r) => assert!(
                    r.starts_with(b"SIP/2.0 403 Forbidden\r\n"),
                    "{}",
                    String::from_utf8_lossy(&r)
                ),
                other => panic!("{tok}: {other:?}"),
            }
        }
    }
    // A single node refuses a cluster token as forged (no 430: it has no
    // cluster to name).
    let single = EdgeConfig {
        key: &key,
        boot: START,
        node: None,
        ..node_cfg(&key, &a, START)
    };
    let input = core_request(
        "INVITE",
        "",
        &format!("Route: <sip:{good}@10.0.0.11:5070;transport=udp;lr;ob>\n"),
    );
    assert!(
        matches!(decide(&input, &single), FromCore::Respond(r) if r.starts_with(b"SIP/2.0 403 "))
    );
}

#[test]
fn responses_with_another_nodes_via_are_dropped() {
    let key = cluster_key(SECRET);
    let (a, b) = (name("gw-a"), name("gw-b"));
    let tok = encode_cluster(&key, &a, START, 7, WsTransport::Wss);
    let resp = crlf(&format!(
        "SIP/2.0 200 OK
Via: SIP/2.0/UDP 10.0.0.11:5070;branch=z9hG4bKx;rport;ucgf={tok}
Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bKinv1
To: <sip:bob@example.com>;tag=b1
From: <sip:alice@example.com>;tag=a1
Call-ID: call1
CSeq: 1 INVITE
Content-Length: 0

"
    ));
    assert!(matches!(
        decide(&resp, &node_cfg(&key, &a, START)),
        FromCore::ToClient { .. }
    ));
    assert!(matches!(
        decide(&resp, &node_cfg(&key, &b, START)),
        FromCore::Drop(_)
    ));
    assert!(matches!(
        decide(&resp, &node_cfg(&key, &a, START + 1)),
        FromCore::Drop(_)
    ));
}

#[test]
fn client_in_dialog_requests_for_another_node_or_start_are_flow_gone() {
    let key = cluster_key(SECRET);
    let (a, b) = (name("gw-a"), name("gw-b"));
    let cfg = node_cfg(&key, &a, START);
    let mine = encode_cluster(&key, &a, START, 7, WsTransport::Wss);
    for other in [
        encode_cluster(&key, &b, START, 8, WsTransport::Ws),
        encode_cluster(&key, &a, START + 1, 8, WsTransport::Ws),
    ] {
        let bye = |method: &str| {
            crlf(&format!(
                "{method} sip:5nf8ccig@vmcqvnus9lmo.invalid;transport=ws SIP/2.0
Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bKbye1
Max-Forwards: 70
Route: <sip:{mine}@10.0.0.11:5070;transport=wss;lr>, <sip:10.0.0.11:5070;transport=udp;lr>, <sip:10.0.0.11:5070;transport=udp;lr>, <sip:{other}@10.0.0.11:5070;transport=ws;lr>
To: <sip:bob@example.com>;tag=b1
From: <sip:alice@example.com>;tag=a1
Call-ID: call1
CSeq: 2 {method}
Content-Length: 0

"
            ))
        };
        let input = bye("BYE");
        let m = parse(&input, &SipLimits::default()).unwrap();
        let mut state = ClientState::new();
        assert_eq!(
            route_client(&m, &cfg, &flow7(), &mut state),
            ClientAction::FlowGone
        );
        assert_eq!(from_client(&m, &cfg, &flow7()), FromClient::FlowGone);
        let r = flow_gone_response(&m, &cfg, false).unwrap();
        assert!(r.starts_with(
            b"SIP/2.0 430 Flow Failed\r\nVia: SIP/2.0/WSS abc.invalid;branch=z9hG4bKbye1\r\n"
        ));
        let ack = bye("ACK");
        let m = parse(&ack, &SipLimits::default()).unwrap();
        assert!(matches!(
            route_client(&m, &cfg, &flow7(), &mut state),
            ClientAction::Drop(_)
        ));
    }
}
