//! Messages from the core (section 3 (b) and (c) of the spec), the
//! transaction key and the edge's own answers to the core.

use super::rewrite::{
    check_and_count_hop, derive_branch, is_dialog_forming, is_ours, our_tag, our_via_flow, respond,
    strict_route, StrictRoute,
};
use super::types::{EdgeConfig, FromCore, FLOW_PARAM};
use crate::sip::flow_token::{Checked, Flow};
use crate::sip::message::{parse_sip_uri, parse_via, Known, Message, SipLimits, StartLine};

/// A request or response from the core (spec 3 (b) and (c)). `msg` comes
/// from [`crate::sip::message::parse`].
pub fn from_core(msg: &Message<'_>, cfg: &EdgeConfig<'_>) -> FromCore {
    if !msg.is_request() {
        // Responses: our top Via names the flow; pop it (RFC 3261 §16.7,
        // §16.11: a response whose top Via is not ours is discarded).
        let Some(flow) = our_via_flow(msg, cfg, cfg.core_host) else {
            return FromCore::Drop("response whose top Via is not ours");
        };
        let values = msg.values(Known::VIA);
        if values.len() < 2 {
            return FromCore::Drop("response with only our Via");
        }
        // The client routes the response by the Via below ours (RFC 3261
        // §18.1.2); one it cannot read would be dropped there, unexplained.
        if parse_via(msg.bytes(), values[1].span.clone()).is_none() {
            return FromCore::Drop("response whose Via below ours is unusable");
        }
        let mut ed = msg.edit();
        ed.remove_value(&values[0]);
        return FromCore::ToClient {
            flow,
            bytes: ed.finish(),
            reply_key: None,
        };
    }
    let is_ack = msg.method() == Some("ACK");
    let refuse = |code: u16, reason: &'static str, extra: &[(&str, &str)]| {
        if is_ack {
            FromCore::Drop(reason)
        } else {
            FromCore::Respond(respond(cfg, msg, code, reason, extra))
        }
    };
    // A valid token of another node or start: the flow cannot be here.
    let gone = || {
        if is_ack {
            FromCore::Drop("ACK for a flow of another node or start")
        } else {
            FromCore::FlowGone
        }
    };
    let b = msg.bytes();
    let mut ed = msg.edit();
    if let Err((code, reason, tags)) = check_and_count_hop(msg, &mut ed) {
        let extra = tags.as_deref().map(|t| ("Unsupported", t));
        return refuse(code, reason, extra.as_slice());
    }
    // A strict router upstream (RFC 3261 §16.4): the Request-URI is one of
    // our Record-Route/Path URIs; restore it from the last Route value and
    // take the flow from its token, if any.
    let mut found: Option<Flow> = None;
    let mut routes = msg.routes();
    let strict = strict_route(msg, cfg);
    if let Some(StrictRoute { last, target, user }) = &strict {
        let Some(target) = target else {
            return refuse(400, "Bad Route", &[]);
        };
        if let StartLine::Request { uri_span, .. } = msg.start_line() {
            ed.replace(uri_span.clone(), &b[target.clone()]);
        }
        ed.remove_value(last);
        routes.pop();
        if let Some(user) = user {
            match cfg.tokens().check(user) {
                Checked::Here(f) => found = Some(f),
                Checked::Elsewhere { .. } => return gone(),
                Checked::Forged => return refuse(403, "Forbidden", &[]),
            }
        }
    }
    // Pop our Route entries (Path for initial requests, the Record-Route
    // pair for in-dialog ones) and take the flow from the token.
    for (value, na) in routes {
        let Some(uri) = na.and_then(|na| parse_sip_uri(b, na.uri)) else {
            break;
        };
        if !is_ours(&uri, cfg) {
            break;
        }
        if let Some(user) = uri.user {
            match cfg.tokens().check(user) {
                Checked::Here(f) => found = found.or(Some(f)),
                Checked::Elsewhere { .. } => return gone(),
                Checked::Forged => return refuse(403, "Forbidden", &[]),
            }
        }
        ed.remove_value(&value);
    }
    if found.is_none() && strict.is_none() {
        // A Request-URI naming us with a token and no Route (a core that
        // used the Path URI as the target).
        if let StartLine::Request { uri_span, .. } = msg.start_line() {
            if let Some(uri) = parse_sip_uri(b, uri_span.clone()) {
                if is_ours(&uri, cfg) {
                    match uri.user.map(|u| cfg.tokens().check(u)) {
                        Some(Checked::Here(f)) => found = Some(f),
                        Some(Checked::Elsewhere { .. }) => return gone(),
                        Some(Checked::Forged) => return refuse(403, "Forbidden", &[]),
                        None => {}
                    }
                }
            }
        }
    }
    let Some(flow) = found else {
        return refuse(404, "Not Found", &[]);
    };
    let (bytes, branch) = deliver_to_flow(msg, ed, cfg, flow);
    let reply_key = match msg.cseq() {
        Some((_, method)) if !is_ack => Some(key_of(branch.as_bytes(), method)),
        _ => None,
    };
    FromCore::ToClient {
        flow,
        bytes,
        reply_key,
    }
}

/// The last steps toward a client (spec 3 (c) 5–6): our Via on top, then
/// (dialog-forming requests only) the Record-Route pair, client-facing
/// entry first. Returns the message and our Via's branch.
pub(super) fn deliver_to_flow(
    msg: &Message<'_>,
    mut ed: crate::sip::message::Editor<'_, '_>,
    cfg: &EdgeConfig<'_>,
    flow: Flow,
) -> (Vec<u8>, String) {
    let token = cfg.tokens().encode(flow.flow_id, flow.transport);
    let branch = derive_branch(cfg.key, msg, flow.flow_id);
    ed.prepend_top(
        "Via",
        format!(
            "SIP/2.0/{} {};branch={branch};{FLOW_PARAM}={token}",
            flow.transport.via(),
            cfg.ws_host
        )
        .as_bytes(),
    );
    if is_dialog_forming(msg) {
        ed.insert_top(
            "Record-Route",
            format!(
                "<sip:{token}@{};transport={};lr>, <sip:{};transport={};lr>",
                cfg.ws_host,
                flow.transport.param(),
                cfg.core_host,
                cfg.core_transport.param()
            )
            .as_bytes(),
        );
    }
    (ed.finish(), branch)
}

/// The transaction a message belongs to at the top Via (RFC 3261 §17.1.3,
/// §17.2.3): that Via's branch and the CSeq method (a CANCEL shares its
/// INVITE's branch). A request relayed from the core to a client (our Via
/// on top) and the client's responses to it (our Via still on top) have
/// the same key, which is how the glue sends those responses back the way
/// the request came (§18.2.2). `None` without a branch or a CSeq.
pub fn transaction_key(msg: &Message<'_>) -> Option<Vec<u8>> {
    let branch = msg.top_via()?.branch()?;
    let (_, method) = msg.cseq()?;
    Some(key_of(branch, method))
}

fn key_of(branch: &[u8], method: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(branch.len() + 1 + method.len());
    k.extend_from_slice(branch);
    k.push(b' ');
    k.extend_from_slice(method);
    k
}

/// The answer to the core when the flow of a [`FromCore::ToClient`] request
/// is gone: `430 Flow Failed` (RFC 5626 §5.3) or, with `use_480`, `480
/// Temporarily Unavailable`; `None` for ACK (dropped) and for responses.
pub fn flow_gone_response(
    msg: &Message<'_>,
    cfg: &EdgeConfig<'_>,
    use_480: bool,
) -> Option<Vec<u8>> {
    if !msg.is_request() || msg.method() == Some("ACK") {
        return None;
    }
    Some(if use_480 {
        respond(cfg, msg, 480, "Temporarily Unavailable", &[])
    } else {
        respond(cfg, msg, 430, "Flow Failed", &[])
    })
}

/// The answer to a message [`crate::sip::message::parse`] refused, if it has one
/// (see [`crate::sip::message::error_response`]); the To tag is derived from the
/// key, the Call-ID and the From tag.
pub fn parse_error_response(
    bytes: &[u8],
    limits: &crate::sip::message::SipLimits,
    err: &crate::sip::message::SipError,
    key: &[u8],
) -> Option<Vec<u8>> {
    let m = crate::sip::message::scan(bytes, &SipLimits::UNLIMITED).ok()?;
    crate::sip::message::error_response(bytes, limits, err, &our_tag(key, &m))
}
