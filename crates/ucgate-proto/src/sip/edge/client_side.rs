//! Messages from a WebSocket client (section 3 (a) and (d) of the spec).

use super::core_side::{deliver_to_flow, from_core};
use super::rewrite::{
    check_and_count_hop, derive_branch, has_option, is_dialog_forming, is_ours, our_via_flow,
    respond, same_host, strict_route, StrictRoute,
};
use super::types::{
    ClientAction, ClientState, EdgeConfig, FlowCtx, FromClient, FromCore, FLOW_PARAM,
};
use crate::sip::flow_token::{Checked, Flow};
use crate::sip::framing::{transport_for, CoreTransport};
use crate::sip::message::{parse, parse_sip_uri, parse_via, Known, Message, SipLimits, StartLine};

/// A request or response from a WebSocket client (section 3 (a) and (d) of
/// the spec), without per-connection state: [`route_client`] with a fresh
/// [`ClientState`]. A request that RFC 5626 §5.3 makes "incoming" for
/// another flow (which only [`route_client`] can deliver) is refused with
/// `403 Forbidden` here (ACK: dropped) and never sent to the core; a
/// response for another flow is dropped.
pub fn from_client(msg: &Message<'_>, cfg: &EdgeConfig<'_>, flow: &FlowCtx<'_>) -> FromClient {
    match route_client(msg, cfg, flow, &mut ClientState::new()) {
        ClientAction::ToCore { bytes, transport } => FromClient::ToCore { bytes, transport },
        ClientAction::Respond(r) => FromClient::Respond(r),
        ClientAction::FlowGone => FromClient::FlowGone,
        ClientAction::Drop(reason) => FromClient::Drop(reason),
        ClientAction::ToFlow { .. } if msg.is_request() && msg.method() != Some("ACK") => {
            FromClient::Respond(respond(cfg, msg, 403, "Forbidden", &[]))
        }
        ClientAction::ToFlow { .. } => FromClient::Drop("message for another flow"),
    }
}

/// A request or response from a WebSocket client (section 3 (a) and (d) of
/// the spec). `msg` comes from [`crate::sip::message::parse`]; `state` belongs to
/// the connection `flow` (see [`ClientState`]).
pub fn route_client(
    msg: &Message<'_>,
    cfg: &EdgeConfig<'_>,
    flow: &FlowCtx<'_>,
    state: &mut ClientState,
) -> ClientAction {
    if msg.is_request() {
        client_request(msg, cfg, flow, state)
    } else {
        client_response(msg, cfg, flow)
    }
}

/// How a flow token in one of our URIs relates to the sender.
enum TokenOf {
    /// The sender's own flow ("outgoing", RFC 5626 §5.3).
    Sender,
    /// Another flow ("incoming").
    Other(Flow),
    /// A flow of another node of the cluster or of a previous start
    /// (`430`).
    Elsewhere,
    /// Fails the HMAC (`403`, RFC 5626 §5.3.1).
    Forged,
}

fn token_of(cfg: &EdgeConfig<'_>, flow: &FlowCtx<'_>, user: &[u8]) -> TokenOf {
    match cfg.tokens().check(user) {
        Checked::Forged => TokenOf::Forged,
        Checked::Elsewhere { .. } => TokenOf::Elsewhere,
        Checked::Here(f) if f.flow_id == flow.flow_id => TokenOf::Sender,
        Checked::Here(f) => TokenOf::Other(f),
    }
}

/// A request from a client (spec 3 (a)).
fn client_request(
    msg: &Message<'_>,
    cfg: &EdgeConfig<'_>,
    flow: &FlowCtx<'_>,
    state: &mut ClientState,
) -> ClientAction {
    let method = msg.method().unwrap_or("");
    let is_ack = method == "ACK";
    // Never answer an ACK (RFC 3261 §17.2.3, spec 3 (a)6).
    let refuse = |code: u16, reason: &'static str, extra: &[(&str, &str)]| {
        if is_ack {
            ClientAction::Drop(reason)
        } else {
            ClientAction::Respond(respond(cfg, msg, code, reason, extra))
        }
    };
    let gone = || {
        if is_ack {
            ClientAction::Drop("ACK for a flow of another node or start")
        } else {
            ClientAction::FlowGone
        }
    };
    let Some(via) = msg.top_via() else {
        return ClientAction::Drop("no top Via");
    };
    let mut ed = msg.edit();
    if let Err((code, reason, tags)) = check_and_count_hop(msg, &mut ed) {
        let extra = tags.as_deref().map(|t| ("Unsupported", t));
        return refuse(code, reason, extra.as_slice());
    }

    // REGISTER needs Path support (RFC 3327 §5.1).
    let token = cfg.tokens().encode(flow.flow_id, flow.transport);
    if method == "REGISTER" && cfg.require_path_support && !has_option(msg, "Supported", b"path") {
        return refuse(421, "Extension Required", &[("Require", "path")]);
    }

    // received / rport on the client's Via (RFC 3261 §18.2.1, RFC 3581 §4),
    // sent-by and the other parameters untouched.
    let b = msg.bytes();
    let mut new_via = b[via.span.start..via.params.start].to_vec();
    let mut pos = via.params.start;
    for p in crate::sip::message::params(b, via.params.clone()) {
        let name = &b[p.name.clone()];
        if name.eq_ignore_ascii_case(b"received") || name.eq_ignore_ascii_case(b"rport") {
            new_via.extend_from_slice(&b[pos..p.whole.start]);
            pos = p.whole.end;
        }
    }
    new_via.extend_from_slice(&b[pos..via.span.end]);
    let ip = flow.peer_ip.trim_start_matches('[').trim_end_matches(']');
    new_via.extend_from_slice(format!(";received={ip}").as_bytes());
    // Port 0: a proxy named the client's address without its port.
    if flow.peer_port != 0 {
        new_via.extend_from_slice(format!(";rport={}", flow.peer_port).as_bytes());
    }
    ed.replace(via.span.clone(), &new_via);

    // Route information (RFC 3261 §16.4). A strict router upstream: the
    // Request-URI is ours; restore it from the last Route value.
    let in_dialog = msg.to_tag().is_some();
    let mut routes = msg.routes();
    let mut other: Option<Flow> = None;
    if let Some(StrictRoute { last, target, user }) = strict_route(msg, cfg) {
        let Some(target) = target else {
            return refuse(400, "Bad Route", &[]);
        };
        if let StartLine::Request { uri_span, .. } = msg.start_line() {
            ed.replace(uri_span.clone(), &b[target]);
        }
        ed.remove_value(&last);
        routes.pop();
        if let (true, Some(user)) = (in_dialog, user) {
            match token_of(cfg, flow, user) {
                TokenOf::Sender => {}
                TokenOf::Other(f) => other = Some(f),
                TokenOf::Elsewhere => return gone(),
                TokenOf::Forged => return refuse(403, "Forbidden", &[]),
            }
        }
    }
    // Out-of-dialog requests go to the core with every preloaded Route
    // removed (spec §0.10: no open relay; a token of another flow does not
    // let a client reach it around the core). In-dialog requests: our
    // leading entries are popped; a flow token in them is compared with
    // the sender (RFC 5626 §5.3): its own flow is "outgoing" (popped), any
    // other flow makes the request "incoming" for that flow (delivered
    // there, never to the core), a forged one gives 403.
    let mut popping = true;
    for (value, na) in routes {
        if !in_dialog {
            ed.remove_value(&value);
            continue;
        }
        if !popping {
            continue;
        }
        let uri = na.and_then(|na| parse_sip_uri(b, na.uri));
        let Some(uri) = uri.filter(|u| is_ours(u, cfg)) else {
            popping = false;
            continue;
        };
        if let Some(user) = uri.user {
            match token_of(cfg, flow, user) {
                TokenOf::Sender => {}
                TokenOf::Other(f) => {
                    other.get_or_insert(f);
                }
                TokenOf::Elsewhere => return gone(),
                TokenOf::Forged => return refuse(403, "Forbidden", &[]),
            }
        }
        ed.remove_value(&value);
    }

    if method == "REGISTER" && other.is_none() {
        // After any existing Path (RFC 3327 §5.1), flow token in the user
        // part and `ob` (RFC 5626 §5.1).
        ed.append(
            "Path",
            format!(
                "<sip:{token}@{};transport={};lr;ob>",
                cfg.core_host,
                cfg.core_transport.param()
            )
            .as_bytes(),
        );
    }
    // The Record-Route pair (RFC 5658, RFC 7118 §8.2: core-facing first,
    // client-facing with the token second), above any existing one.
    if is_dialog_forming(msg) {
        ed.insert_top(
            "Record-Route",
            format!(
                "<sip:{};transport={};lr>, <sip:{token}@{};transport={};lr>",
                cfg.core_host,
                cfg.core_transport.param(),
                cfg.ws_host,
                flow.transport.param()
            )
            .as_bytes(),
        );
    }
    // Our Via on top (RFC 3261 §16.6 step 8), its transport matching the
    // one chosen by the UDP size rule (§18.1.1), or the one its INVITE took
    // for a CANCEL or ACK (§9.1, §16.11).
    let branch = derive_branch(cfg.key, msg, flow.flow_id);
    let finish = |transport: CoreTransport| -> Vec<u8> {
        let mut e = ed.clone();
        e.prepend_top(
            "Via",
            format!(
                "SIP/2.0/{} {};branch={branch};rport;{FLOW_PARAM}={token}",
                transport.via(),
                cfg.core_host
            )
            .as_bytes(),
        );
        e.finish()
    };

    if let Some(target) = other {
        // Incoming for another flow: what the core would get, processed
        // as a request from the core for that flow (our core-facing Via
        // stays, so the response finds the sender's flow again).
        let outgoing = finish(cfg.core_transport);
        let Ok(m) = parse(&outgoing, &SipLimits::UNLIMITED) else {
            return ClientAction::Drop("request for another flow could not be rewritten");
        };
        let (bytes, _) = deliver_to_flow(&m, m.edit(), cfg, target);
        return ClientAction::ToFlow {
            flow: target,
            bytes,
        };
    }

    let remembered = match method {
        "CANCEL" | "ACK" => state.transport_of(&branch),
        _ => None,
    };
    let first = finish(remembered.unwrap_or(cfg.core_transport));
    let transport = remembered
        .unwrap_or_else(|| transport_for(cfg.core_transport, first.len(), cfg.udp_threshold));
    let bytes = if transport == remembered.unwrap_or(cfg.core_transport) {
        first
    } else {
        finish(transport)
    };
    if method == "INVITE" && transport != cfg.core_transport {
        state.remember(branch.clone(), transport);
    }
    ClientAction::ToCore { bytes, transport }
}

/// A response from a client to a request we relayed (spec 3 (d)): pop our
/// Via, send the rest to the core (RFC 3261 §18.2.2) or, when the next Via
/// is our core-facing one (a request we delivered from another client),
/// to that client's flow.
fn client_response(msg: &Message<'_>, cfg: &EdgeConfig<'_>, flow: &FlowCtx<'_>) -> ClientAction {
    match our_via_flow(msg, cfg, cfg.ws_host) {
        Some(f) if f.flow_id == flow.flow_id => {}
        _ => return ClientAction::Drop("response whose top Via is not ours for this flow"),
    }
    let values = msg.values(Known::VIA);
    let Some(next) = values
        .get(1)
        .and_then(|v| parse_via(msg.bytes(), v.span.clone()))
    else {
        return ClientAction::Drop("response with only our Via");
    };
    let mut ed = msg.edit();
    ed.remove_value(&values[0]);
    let bytes = ed.finish();
    let ours_next = same_host(next.host, next.port, cfg.core_host)
        && next
            .param(FLOW_PARAM)
            .flatten()
            .is_some_and(|t| matches!(cfg.tokens().check(t), Checked::Here(_)));
    if ours_next {
        let Ok(m) = parse(&bytes, &SipLimits::UNLIMITED) else {
            return ClientAction::Drop("response for another flow could not be rewritten");
        };
        return match from_core(&m, cfg) {
            FromCore::ToClient { flow, bytes, .. } => ClientAction::ToFlow { flow, bytes },
            FromCore::Respond(_) | FromCore::FlowGone | FromCore::Drop(_) => {
                ClientAction::Drop("response for another flow without our Via")
            }
        };
    }
    let transport = match &next.transport.to_ascii_uppercase()[..] {
        b"UDP" => CoreTransport::Udp,
        b"TCP" => CoreTransport::Tcp,
        b"TLS" => CoreTransport::Tls,
        _ => cfg.core_transport,
    };
    ClientAction::ToCore { bytes, transport }
}
