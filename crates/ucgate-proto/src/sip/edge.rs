//! The edge proxy's decisions, pure: what to send to the core for a message
//! from a WebSocket client, and where to send (and how to rewrite) a message
//! from the core. Stateless: flows are named by flow tokens
//! ([`super::flow_token`]) in our Via, Path and Record-Route entries; the
//! glue keeps the table flow id → live connection.
//!
//! Rules, each with its source (see `docs/sip.md`):
//!
//! * client request: `received`/`rport` on the top Via, sent-by untouched
//!   (RFC 3261 §18.2.1, RFC 3581 §4); Max-Forwards checked (483) and
//!   decremented, added as 70 when missing (§16.6 step 3); our own Route
//!   entries popped (loose routing, §16.4); the client's other preloaded
//!   Route entries dropped on out-of-dialog requests (no open relay);
//!   `Path` on REGISTER (RFC 3327 §5.1, RFC 5626 §5.1); double
//!   Record-Route on dialog-forming requests (RFC 5658, RFC 7118 §8.2); our
//!   Via on top with a branch derived from the client's branch and the flow
//!   (stable for CANCEL and non-2xx ACK, §16.11 / §17.1.1.3); Content-Length
//!   set; the UDP size rule (§18.1.1). Always sent to the configured core.
//! * client response: our top Via popped, sent to the core (§18.2.2).
//! * core response: our top Via identifies the flow; popped (§16.7 step 3).
//! * core request: our Route entries popped, the token verified (forged:
//!   403, RFC 5626 §5.3); Record-Route pair on dialog-forming requests; our
//!   Via on top. Flow gone: [`flow_gone_response`] (430 or 480; ACK dropped).

use super::base64url;
use super::flow_token::{self, Flow, WsTransport};
use super::framing::{transport_for, CoreTransport};
use super::hmac::hmac_sha256;
use super::message::{make_response, parse_sip_uri, parse_via, Message};

/// The Via parameter carrying the flow token in our Via entries.
pub const FLOW_PARAM: &str = "ucgf";

/// Static configuration of one edge (one route).
#[derive(Debug, Clone)]
pub struct EdgeConfig<'a> {
    /// Flow-token key (shared by every node in front of the same core).
    pub key: &'a [u8],
    /// `host[:port]` the WebSocket clients reach us at (client-facing
    /// Record-Route entries and our Via toward clients).
    pub ws_host: &'a str,
    /// `host:port` the core reaches us at (Path, core-facing Record-Route,
    /// our Via toward the core).
    pub core_host: &'a str,
    /// Transport configured toward the core.
    pub core_transport: CoreTransport,
    /// UDP size threshold (default [`super::framing::UDP_THRESHOLD`]).
    pub udp_threshold: usize,
    /// REGISTER without `Supported: path`: `true` answers `421 Extension
    /// Required`, `false` adds Path anyway (JsSIP and SIP.js always send it).
    pub require_path_support: bool,
}

/// The client connection a message arrived on.
#[derive(Debug, Clone, Copy)]
pub struct FlowCtx<'a> {
    /// The flow id of the connection (see [`flow_token`]).
    pub flow_id: u64,
    /// `ws` or `wss`.
    pub transport: WsTransport,
    /// Peer address as text (IPv6 with or without brackets).
    pub peer_ip: &'a str,
    /// Peer port.
    pub peer_port: u16,
}

/// What to do with a message from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromClient {
    /// Send these bytes to the configured core over `transport`.
    ToCore {
        /// The rewritten message.
        bytes: Vec<u8>,
        /// The transport (matches our Via; UDP switched to TCP when large).
        transport: CoreTransport,
    },
    /// Answer the client with this response; nothing goes to the core.
    Respond(Vec<u8>),
    /// Drop silently (count it).
    Drop(&'static str),
}

/// What to do with a message from the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromCore {
    /// Send on this flow, if it is alive; otherwise use
    /// [`flow_gone_response`].
    ToClient {
        /// The flow named by the token.
        flow: Flow,
        /// The rewritten message.
        bytes: Vec<u8>,
    },
    /// Answer the core with this response.
    Respond(Vec<u8>),
    /// Drop silently (count it).
    Drop(&'static str),
}

fn split_host(s: &str) -> (&[u8], Option<u16>) {
    let b = s.as_bytes();
    if b.first() == Some(&b'[') {
        if let Some(close) = s.find(']') {
            let port = s[close + 1..]
                .strip_prefix(':')
                .and_then(|p| p.parse().ok());
            return (&b[..=close], port);
        }
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.as_bytes(), p.parse().ok()),
        _ => (b, None),
    }
}

fn same_host(host: &[u8], port: Option<u16>, ours: &str) -> bool {
    let (h, p) = split_host(ours);
    host.eq_ignore_ascii_case(h) && (port == p || port.is_none() || p.is_none())
}

/// A deterministic To tag for our own responses.
fn our_tag(key: &[u8], msg: &Message<'_>) -> String {
    let mac = hmac_sha256(
        key,
        &[
            b"ucgate-sip-tag",
            msg.call_id().unwrap_or(b""),
            msg.from_tag().unwrap_or(b""),
        ],
    );
    base64url::encode(&mac[..9])
}

fn respond(
    cfg: &EdgeConfig<'_>,
    msg: &Message<'_>,
    code: u16,
    reason: &str,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    make_response(msg, code, reason, &our_tag(cfg.key, msg), extra)
}

/// Branch for our Via: `z9hG4bK` + 22 base64url characters derived from the
/// previous hop's branch (or the transaction's identifying headers when it
/// has none) and the flow, so CANCEL and non-2xx ACK get the INVITE's branch
/// and retransmissions get the same branch, with no randomness.
fn derive_branch(key: &[u8], msg: &Message<'_>, flow_id: u64) -> String {
    let via = msg.top_via();
    let mac = match via
        .as_ref()
        .and_then(|v| v.branch())
        .filter(|b| b.starts_with(b"z9hG4bK"))
    {
        Some(b) => hmac_sha256(key, &[b"ucgate-sip-branch", b, &flow_id.to_be_bytes()]),
        None => {
            // RFC 2543 peers: Call-ID, CSeq number, From tag, top Via, R-URI.
            let (n, _) = msg.cseq().unwrap_or((0, b""));
            let uri: &[u8] = match msg.start_line() {
                super::message::StartLine::Request { uri, .. } => uri,
                super::message::StartLine::Response { .. } => b"",
            };
            let via_bytes = via.as_ref().map_or(&b""[..], |v| msg.slice(v.span.clone()));
            hmac_sha256(
                key,
                &[
                    b"ucgate-sip-branch-2543",
                    msg.call_id().unwrap_or(b""),
                    &n.to_be_bytes(),
                    msg.from_tag().unwrap_or(b""),
                    via_bytes,
                    uri,
                    &flow_id.to_be_bytes(),
                ],
            )
        }
    };
    format!("z9hG4bK{}", base64url::encode(&mac[..16]))
}

fn is_dialog_forming(msg: &Message<'_>) -> bool {
    msg.to_tag().is_none()
        && matches!(
            msg.method(),
            Some("INVITE" | "SUBSCRIBE" | "REFER" | "NOTIFY")
        )
}

fn has_option(msg: &Message<'_>, header: &str, option: &[u8]) -> bool {
    msg.values(header)
        .iter()
        .any(|v| msg.slice(v.span.clone()).eq_ignore_ascii_case(option))
}

/// A request or response from a WebSocket client (section 3 (a) and (d) of
/// the spec). `msg` comes from [`super::message::parse`].
pub fn from_client(msg: &Message<'_>, cfg: &EdgeConfig<'_>, flow: &FlowCtx<'_>) -> FromClient {
    if !msg.is_request() {
        return client_response(msg, cfg, flow);
    }
    let method = msg.method().unwrap_or("");
    let is_ack = method == "ACK";
    let Some(via) = msg.top_via() else {
        return FromClient::Drop("no top Via");
    };
    let mut ed = msg.edit();

    // Max-Forwards (RFC 3261 §16.3 step 3, §16.6 step 3).
    match (msg.header_index("Max-Forwards"), msg.max_forwards()) {
        (Some(_), Some(0)) if is_ack => return FromClient::Drop("ACK with Max-Forwards 0"),
        (Some(_), Some(0)) => {
            return FromClient::Respond(respond(cfg, msg, 483, "Too Many Hops", &[]))
        }
        (Some(i), Some(n)) => {
            ed.replace(
                msg.headers()[i].value.clone(),
                (n - 1).to_string().as_bytes(),
            );
        }
        _ => {
            ed.append("Max-Forwards", b"70");
        }
    }

    // REGISTER needs Path support (RFC 3327 §5.1).
    let token = flow_token::encode(cfg.key, flow.flow_id, flow.transport);
    if method == "REGISTER" && cfg.require_path_support && !has_option(msg, "Supported", b"path") {
        return FromClient::Respond(respond(
            cfg,
            msg,
            421,
            "Extension Required",
            &[("Require", "path")],
        ));
    }

    // received / rport on the client's Via (RFC 3261 §18.2.1, RFC 3581 §4),
    // sent-by and the other parameters untouched.
    let b = msg.bytes();
    let mut new_via = b[via.span.start..via.params.start].to_vec();
    let mut pos = via.params.start;
    for p in super::message::params(b, via.params.clone()) {
        let name = &b[p.name.clone()];
        if name.eq_ignore_ascii_case(b"received") || name.eq_ignore_ascii_case(b"rport") {
            new_via.extend_from_slice(&b[pos..p.whole.start]);
            pos = p.whole.end;
        }
    }
    new_via.extend_from_slice(&b[pos..via.span.end]);
    let ip = flow.peer_ip.trim_start_matches('[').trim_end_matches(']');
    new_via.extend_from_slice(format!(";received={ip};rport={}", flow.peer_port).as_bytes());
    ed.replace(via.span.clone(), &new_via);

    // Loose routing (RFC 3261 §16.4): pop our own entries at the top; on
    // out-of-dialog requests drop the client's other preloaded Routes too.
    let in_dialog = msg.to_tag().is_some();
    let mut popping = true;
    for (value, na) in msg.routes() {
        let uri = na.and_then(|na| parse_sip_uri(b, na.uri));
        let ours = uri.as_ref().is_some_and(|u| {
            same_host(u.host, u.port, cfg.ws_host) || same_host(u.host, u.port, cfg.core_host)
        });
        if (popping && ours) || !in_dialog {
            ed.remove_value(&value);
        } else {
            popping = false;
        }
    }

    if method == "REGISTER" {
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
    // one chosen by the UDP size rule (§18.1.1).
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
    let first = finish(cfg.core_transport);
    let transport = transport_for(cfg.core_transport, first.len(), cfg.udp_threshold);
    let bytes = if transport == cfg.core_transport {
        first
    } else {
        finish(transport)
    };
    FromClient::ToCore { bytes, transport }
}

/// Our Via on a message: sent-by is `host`, and the flow parameter verifies.
fn our_via_flow(msg: &Message<'_>, key: &[u8], host: &str) -> Option<Flow> {
    let via = msg.top_via()?;
    if !same_host(via.host, via.port, host) {
        return None;
    }
    flow_token::verify(key, via.param(FLOW_PARAM)??)
}

/// A response from a client to a request we relayed from the core (spec
/// 3 (d)): pop our Via, send the rest to the core (RFC 3261 §18.2.2).
fn client_response(msg: &Message<'_>, cfg: &EdgeConfig<'_>, flow: &FlowCtx<'_>) -> FromClient {
    match our_via_flow(msg, cfg.key, cfg.ws_host) {
        Some(f) if f.flow_id == flow.flow_id => {}
        _ => return FromClient::Drop("response whose top Via is not ours for this flow"),
    }
    let values = msg.values("Via");
    let Some(next) = values
        .get(1)
        .and_then(|v| parse_via(msg.bytes(), v.span.clone()))
    else {
        return FromClient::Drop("response with only our Via");
    };
    let transport = match &next.transport.to_ascii_uppercase()[..] {
        b"UDP" => CoreTransport::Udp,
        b"TCP" => CoreTransport::Tcp,
        b"TLS" => CoreTransport::Tls,
        _ => cfg.core_transport,
    };
    let mut ed = msg.edit();
    ed.remove_value(&values[0]);
    FromClient::ToCore {
        bytes: ed.finish(),
        transport,
    }
}

/// A request or response from the core (spec 3 (b) and (c)). `msg` comes
/// from [`super::message::parse`].
pub fn from_core(msg: &Message<'_>, cfg: &EdgeConfig<'_>) -> FromCore {
    if !msg.is_request() {
        // Responses: our top Via names the flow; pop it (RFC 3261 §16.7).
        let Some(flow) = our_via_flow(msg, cfg.key, cfg.core_host) else {
            return FromCore::Drop("response whose top Via is not ours");
        };
        let values = msg.values("Via");
        if values.len() < 2 {
            return FromCore::Drop("response with only our Via");
        }
        let mut ed = msg.edit();
        ed.remove_value(&values[0]);
        return FromCore::ToClient {
            flow,
            bytes: ed.finish(),
        };
    }
    let is_ack = msg.method() == Some("ACK");
    let refuse = |code: u16, reason: &str| {
        if is_ack {
            FromCore::Drop("ACK refused")
        } else {
            FromCore::Respond(respond(cfg, msg, code, reason, &[]))
        }
    };
    let b = msg.bytes();
    let mut ed = msg.edit();
    match (msg.header_index("Max-Forwards"), msg.max_forwards()) {
        (Some(_), Some(0)) => return refuse(483, "Too Many Hops"),
        (Some(i), Some(n)) => {
            ed.replace(
                msg.headers()[i].value.clone(),
                (n - 1).to_string().as_bytes(),
            );
        }
        _ => {
            ed.append("Max-Forwards", b"70");
        }
    }
    // Pop our Route entries (Path for initial requests, the Record-Route
    // pair for in-dialog ones) and take the flow from the token.
    let mut found: Option<Flow> = None;
    for (value, na) in msg.routes() {
        let Some(uri) = na.and_then(|na| parse_sip_uri(b, na.uri)) else {
            break;
        };
        if !(same_host(uri.host, uri.port, cfg.core_host)
            || same_host(uri.host, uri.port, cfg.ws_host))
        {
            break;
        }
        if let Some(user) = uri.user {
            match flow_token::verify(cfg.key, user) {
                Some(f) => found = found.or(Some(f)),
                None => return refuse(403, "Forbidden"),
            }
        }
        ed.remove_value(&value);
    }
    if found.is_none() {
        // A Request-URI naming us with a token (a core that used the Path
        // URI as the target).
        if let super::message::StartLine::Request { uri_span, .. } = msg.start_line() {
            if let Some(uri) = parse_sip_uri(b, uri_span.clone()) {
                if same_host(uri.host, uri.port, cfg.core_host)
                    || same_host(uri.host, uri.port, cfg.ws_host)
                {
                    match uri.user.map(|u| flow_token::verify(cfg.key, u)) {
                        Some(Some(f)) => found = Some(f),
                        Some(None) => return refuse(403, "Forbidden"),
                        None => {}
                    }
                }
            }
        }
    }
    let Some(flow) = found else {
        return refuse(404, "Not Found");
    };
    let token = flow_token::encode(cfg.key, flow.flow_id, flow.transport);
    // Our Via on top, then (dialog-forming only) the Record-Route pair,
    // client-facing entry first (spec 3 (c) 5).
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
    FromCore::ToClient {
        flow,
        bytes: ed.finish(),
    }
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

/// The answer to a message [`super::message::parse`] refused, if it has one
/// (see [`super::message::error_response`]); the To tag is derived from the
/// key, the Call-ID and the From tag.
pub fn parse_error_response(
    bytes: &[u8],
    limits: &super::message::SipLimits,
    err: &super::message::SipError,
    key: &[u8],
) -> Option<Vec<u8>> {
    let relaxed = super::message::SipLimits {
        max_message: usize::MAX,
        ..*limits
    };
    let m = super::message::scan(bytes, &relaxed).ok()?;
    super::message::error_response(bytes, limits, err, &our_tag(key, &m))
}

#[cfg(test)]
#[path = "edge_tests.rs"]
mod tests;
