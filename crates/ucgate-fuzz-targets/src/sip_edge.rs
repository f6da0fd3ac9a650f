//! The SIP edge proxy's decisions (`ucgate_proto::sip::edge`): a message
//! from a WebSocket client (`route_client`) or from the core (`from_core`).
//!
//! Input: a flags byte (direction, client transport, core transport,
//! `require_path_support`, UDP threshold, single node or cluster node),
//! then the message. A flow token cannot be forged by the fuzzer, so `{t7}`
//! and `{t8}` in the message are replaced by valid tokens for flows 7 (wss)
//! and 8 (ws), and `{t9}` by a valid token of another node (cluster) or of
//! another start (single node), as in the module's tests.
//!
//! Invariants: whatever the edge sends (to the core, to a flow, as a
//! response) parses; a request relayed from the core carries the
//! transaction key it reports; the same message gives the same decision
//! again; and Via routing round-trips: the core's response to a relayed
//! client request goes back to that client's flow with the client's
//! branch, and a client's response to a request relayed from the core goes
//! back toward the core; `FlowGone` only for requests other than ACK.

use crate::input::Input;
use ucgate_proto::node::NodeName;
use ucgate_proto::sip::edge::{
    from_core, route_client, transaction_key, ClientAction, ClientState, EdgeConfig, FlowCtx,
    FromCore,
};
use ucgate_proto::sip::flow_token::{cluster_key, Flow, Issuer, WsTransport};
use ucgate_proto::sip::framing::CoreTransport;
use ucgate_proto::sip::message::{make_response, parse, Message, SipLimits};

const KEY: &[u8] = b"shared key";
/// The per-start value mixed into the tokens (any fixed value).
const BOOT: u64 = 42;

fn parsed(bytes: &[u8]) -> Message<'_> {
    match parse(bytes, &SipLimits::UNLIMITED) {
        Ok(m) => m,
        Err(e) => panic!(
            "the edge produced a message that does not parse ({e}):\n{}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

fn branch(m: &Message<'_>) -> Option<Vec<u8>> {
    m.top_via().and_then(|v| v.branch()).map(<[u8]>::to_vec)
}

/// The target body.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.u8();
    let transport = if flags & 2 == 0 {
        WsTransport::Ws
    } else {
        WsTransport::Wss
    };
    let (me, other) = (
        NodeName::parse("gw-a").expect("a node name"),
        NodeName::parse("gw-b").expect("a node name"),
    );
    let cluster = flags & 64 != 0;
    let ckey = cluster_key(KEY);
    let key: &[u8] = if cluster { &ckey } else { KEY };
    let cfg = EdgeConfig {
        key,
        boot: BOOT,
        node: cluster.then_some(&me),
        ws_host: "gw.example.com",
        core_host: "10.0.0.1:5070",
        core_transport: [CoreTransport::Udp, CoreTransport::Tcp, CoreTransport::Tls]
            [usize::from(flags >> 2 & 3) % 3],
        udp_threshold: if flags & 32 == 0 { 1300 } else { 200 },
        require_path_support: flags & 16 != 0,
    };
    let flow = FlowCtx {
        flow_id: 7,
        transport,
        peer_ip: "192.0.2.9",
        peer_port: 51000,
    };
    let tokens = cfg.tokens();
    let elsewhere = Issuer {
        node: cluster.then_some(&other),
        start: BOOT + 1,
        ..tokens
    };
    let bytes = replace(
        input.rest(),
        b"{t7}",
        tokens.encode(7, WsTransport::Wss).as_bytes(),
    );
    let bytes = replace(
        &bytes,
        b"{t8}",
        tokens.encode(8, WsTransport::Ws).as_bytes(),
    );
    let bytes = replace(
        &bytes,
        b"{t9}",
        elsewhere.encode(7, WsTransport::Wss).as_bytes(),
    );
    let Ok(msg) = parse(&bytes, &SipLimits::default()) else {
        return;
    };
    if flags & 1 == 0 {
        from_client(&msg, &cfg, &flow);
    } else {
        core(&msg, &cfg, &flow);
    }
}

fn from_client(msg: &Message<'_>, cfg: &EdgeConfig<'_>, flow: &FlowCtx<'_>) {
    let mut state = ClientState::new();
    let action = route_client(msg, cfg, flow, &mut state);
    assert_eq!(
        route_client(msg, cfg, flow, &mut state),
        action,
        "a retransmission got another decision"
    );
    match &action {
        ClientAction::ToCore { bytes, .. } => {
            let out = parsed(bytes);
            if !msg.is_request() || msg.method() == Some("ACK") {
                return;
            }
            // The core answers what it got: the answer goes back to this
            // client with the client's own top Via (and branch) on top.
            let resp = make_response(&out, 200, "OK", "coretag", &[]);
            let resp = parsed(&resp);
            match from_core(&resp, cfg) {
                FromCore::ToClient { flow: f, bytes, .. } => {
                    assert_eq!(
                        f,
                        Flow {
                            flow_id: flow.flow_id,
                            transport: flow.transport
                        }
                    );
                    assert_eq!(branch(&parsed(&bytes)), branch(msg));
                }
                other => panic!("the core's response to our relayed request: {other:?}"),
            }
        }
        ClientAction::ToFlow { bytes, .. } | ClientAction::Respond(bytes) => {
            parsed(bytes);
        }
        ClientAction::FlowGone => assert_gone_ok(msg),
        ClientAction::Drop(_) => {}
    }
}

fn assert_gone_ok(msg: &Message<'_>) {
    assert!(
        msg.is_request() && msg.method() != Some("ACK"),
        "FlowGone for a response or an ACK"
    );
}

fn core(msg: &Message<'_>, cfg: &EdgeConfig<'_>, flow: &FlowCtx<'_>) {
    let decision = from_core(msg, cfg);
    assert_eq!(from_core(msg, cfg), decision, "not deterministic");
    match &decision {
        FromCore::ToClient {
            flow: to,
            bytes,
            reply_key,
        } => {
            let out = parsed(bytes);
            if !msg.is_request() {
                assert_eq!(*reply_key, None);
                return;
            }
            if msg.method() == Some("ACK") {
                assert_eq!(*reply_key, None);
                return;
            }
            assert_eq!(*reply_key, transaction_key(&out));
            // The client answers: the answer goes toward the core (or the
            // flow named by the next Via) with our Via popped.
            let resp = make_response(&out, 200, "OK", "clienttag", &[]);
            let resp = parsed(&resp);
            let flow = FlowCtx {
                flow_id: to.flow_id,
                transport: to.transport,
                ..*flow
            };
            match route_client(&resp, cfg, &flow, &mut ClientState::new()) {
                ClientAction::ToCore { bytes, .. } => {
                    assert_eq!(branch(&parsed(&bytes)), branch(msg));
                }
                ClientAction::ToFlow { bytes, .. } => {
                    parsed(&bytes);
                }
                other => panic!("the client's response to a relayed request: {other:?}"),
            }
        }
        FromCore::Respond(bytes) => {
            parsed(bytes);
        }
        FromCore::FlowGone => assert_gone_ok(msg),
        FromCore::Drop(_) => {}
    }
}
