//! The edge proxy's decisions, pure: what to send to the core for a message
//! from a WebSocket client, and where to send (and how to rewrite) a message
//! from the core. Stateless routing: flows are named by flow tokens
//! ([`super::flow_token`]) in our Via, Path and Record-Route entries; the
//! glue keeps the table flow id → live connection. The only state is
//! [`ClientState`] (per connection, bounded, no clock): the transport each
//! size-switched INVITE took, for its CANCEL and non-2xx ACK.
//!
//! Rules, each with its source (see `docs/sip.md`):
//!
//! * every request: Max-Forwards checked (483) and decremented, added as 70
//!   when missing (RFC 3261 §16.3 step 3, §16.6 step 3); `Proxy-Require`
//!   refused with 420 + `Unsupported` (§16.3 step 5); a Request-URI that is
//!   one of our Record-Route/Path URIs (a strict router upstream) restored
//!   from the last Route (§16.4); ACK is never answered (dropped instead).
//! * client request: `received`/`rport` on the top Via, sent-by untouched
//!   (RFC 3261 §18.2.1, RFC 3581 §4); out-of-dialog: every preloaded Route
//!   dropped (no open relay); in-dialog: our leading Route entries popped,
//!   their flow tokens compared with the sender (RFC 5626 §5.3: its own
//!   flow is "outgoing", another flow makes the request "incoming" for that
//!   flow, delivered there with [`route_client`]; forged: 403); `Path` on
//!   REGISTER (RFC 3327 §5.1, RFC 5626 §5.1); double Record-Route on
//!   dialog-forming requests (RFC 5658, RFC 7118 §8.2); our Via on top with
//!   a branch derived from the client's branch and the flow (stable for
//!   CANCEL and non-2xx ACK, §16.11 / §17.1.1.3); Content-Length set; the
//!   UDP size rule (§18.1.1), with CANCEL and non-2xx ACK on their INVITE's
//!   transport (§9.1). Always sent to the configured core.
//! * client response: our top Via popped, sent to the core (§18.2.2), or to
//!   the flow named by our next Via (the response to a request delivered
//!   from another client).
//! * core response: our top Via identifies the flow; popped (§16.7 step 3).
//! * core request: our Route entries popped, the token verified (forged:
//!   403, RFC 5626 §5.3); Record-Route pair on dialog-forming requests; our
//!   Via on top. Flow gone: [`flow_gone_response`] (430 or 480; ACK dropped).

use super::base64url;
use super::flow_token::{self, Flow, WsTransport};
use super::framing::{transport_for, CoreTransport};
use super::hmac::hmac_sha256;
use super::message::{
    make_response, param, parse, parse_sip_uri, parse_via, Message, SipLimits, SipUri, StartLine,
    Value,
};
use std::collections::VecDeque;
use std::ops::Range;

/// The Via parameter carrying the flow token in our Via entries.
pub const FLOW_PARAM: &str = "ucgf";

/// Static configuration of one edge (one route).
#[derive(Debug, Clone)]
pub struct EdgeConfig<'a> {
    /// Flow-token key (shared by every node in front of the same core).
    pub key: &'a [u8],
    /// The value drawn at this start of the process, mixed into every flow
    /// token's MAC (see [`flow_token`]): a token from before a restart
    /// fails like a forged one.
    pub boot: u64,
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

/// What to do with a message from a client, as decided by [`route_client`]
/// ([`FromClient`] plus delivery to another flow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAction {
    /// Send these bytes to the configured core over `transport`.
    ToCore {
        /// The rewritten message.
        bytes: Vec<u8>,
        /// The transport (matches our Via).
        transport: CoreTransport,
    },
    /// Send these bytes on another client's flow (RFC 5626 §5.3 "incoming"
    /// request, or the response to one). If that flow is gone: for a
    /// request, answer the sender with [`flow_gone_response`] (the original
    /// message; `None` for ACK); for a response, drop it.
    ToFlow {
        /// The flow named by the token.
        flow: Flow,
        /// The rewritten message.
        bytes: Vec<u8>,
    },
    /// Answer the client with this response.
    Respond(Vec<u8>),
    /// Drop silently (count it).
    Drop(&'static str),
}

/// How many INVITE branches a [`ClientState`] remembers.
pub const CLIENT_STATE_BRANCHES: usize = 64;

/// Per-connection memory of [`route_client`]: the branches of the INVITEs
/// that went to a UDP core over TCP because of their size (RFC 3261
/// §18.1.1), so that their CANCEL and non-2xx ACK, which are small, take the
/// same transport (§9.1: "the destination address, port, and transport MUST
/// be identical"; §16.11: "CANCEL and non-Routed ACK requests MUST generate
/// the same choice as their associated INVITE"). Bounded: the
/// [`CLIENT_STATE_BRANCHES`] most recent INVITEs, oldest forgotten first; no
/// clock is needed, since an entry only matters to a CANCEL or ACK with the
/// same branch, which RFC 3261 §8.1.1.7 makes unique per transaction. A
/// forgotten entry only means the CANCEL goes over UDP as before. One per
/// WebSocket connection (the glue's adapter task owns it).
#[derive(Debug, Clone, Default)]
pub struct ClientState {
    switched: VecDeque<(String, CoreTransport)>,
}

impl ClientState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    fn remember(&mut self, branch: String, transport: CoreTransport) {
        if self.switched.iter().any(|(b, _)| *b == branch) {
            return;
        }
        if self.switched.len() >= CLIENT_STATE_BRANCHES {
            self.switched.pop_front();
        }
        self.switched.push_back((branch, transport));
    }

    fn transport_of(&self, branch: &str) -> Option<CoreTransport> {
        self.switched
            .iter()
            .find(|(b, _)| b == branch)
            .map(|(_, t)| *t)
    }

    /// How many branches are remembered (at most [`CLIENT_STATE_BRANCHES`]).
    pub fn len(&self) -> usize {
        self.switched.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.switched.is_empty()
    }
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
        /// For a request other than ACK: its [`transaction_key`] as
        /// relayed (our Via on top), which the client's responses will
        /// carry; the glue remembers where the request came from under it
        /// (RFC 3261 §18.2.2). `None` for responses and ACK.
        reply_key: Option<Vec<u8>>,
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

/// `host[:port]` names us (`ours` is `ws_host` or `core_host`): same host
/// (case-insensitive, as written) and same port, a missing port meaning
/// 5060. A URI naming our host on another port is not ours (e.g. a core on
/// the same address whose Record-Route omits its port 5060).
fn same_host(host: &[u8], port: Option<u16>, ours: &str) -> bool {
    let (h, p) = split_host(ours);
    host.eq_ignore_ascii_case(h) && port.unwrap_or(5060) == p.unwrap_or(5060)
}

/// A URI of ours (client-facing or core-facing).
fn is_ours(uri: &SipUri<'_>, cfg: &EdgeConfig<'_>) -> bool {
    same_host(uri.host, uri.port, cfg.ws_host) || same_host(uri.host, uri.port, cfg.core_host)
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
                StartLine::Request { uri, .. } => uri,
                StartLine::Response { .. } => b"",
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
/// the spec), without per-connection state: [`route_client`] with a fresh
/// [`ClientState`]. A request that RFC 5626 §5.3 makes "incoming" for
/// another flow (which only [`route_client`] can deliver) is refused with
/// `403 Forbidden` here (ACK: dropped) and never sent to the core; a
/// response for another flow is dropped.
pub fn from_client(msg: &Message<'_>, cfg: &EdgeConfig<'_>, flow: &FlowCtx<'_>) -> FromClient {
    match route_client(msg, cfg, flow, &mut ClientState::new()) {
        ClientAction::ToCore { bytes, transport } => FromClient::ToCore { bytes, transport },
        ClientAction::Respond(r) => FromClient::Respond(r),
        ClientAction::Drop(reason) => FromClient::Drop(reason),
        ClientAction::ToFlow { .. } if msg.is_request() && msg.method() != Some("ACK") => {
            FromClient::Respond(respond(cfg, msg, 403, "Forbidden", &[]))
        }
        ClientAction::ToFlow { .. } => FromClient::Drop("message for another flow"),
    }
}

/// A request or response from a WebSocket client (section 3 (a) and (d) of
/// the spec). `msg` comes from [`super::message::parse`]; `state` belongs to
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

/// `Proxy-Require` option tags (RFC 3261 §16.3 step 5): the edge
/// understands none, so any tag gives `420 Bad Extension` with
/// `Unsupported` listing them all (RFC 4475 §3.3.5 "bext01").
fn unsupported_proxy_require(msg: &Message<'_>) -> Option<String> {
    let tags: Vec<String> = msg
        .values("Proxy-Require")
        .iter()
        .map(|v| String::from_utf8_lossy(msg.slice(v.span.clone())).into_owned())
        .collect();
    (!tags.is_empty()).then(|| tags.join(", "))
}

/// Max-Forwards (RFC 3261 §16.3 step 3, §16.6 step 3) and Proxy-Require
/// (§16.3 step 5): `Err(code, reason, extra header)` to refuse.
fn check_and_count_hop(
    msg: &Message<'_>,
    ed: &mut super::message::Editor<'_, '_>,
) -> Result<(), (u16, &'static str, Option<String>)> {
    match (msg.header_index("Max-Forwards"), msg.max_forwards()) {
        (Some(_), Some(0)) => return Err((483, "Too Many Hops", None)),
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
    if let Some(tags) = unsupported_proxy_require(msg) {
        return Err((420, "Bad Extension", Some(tags)));
    }
    Ok(())
}

/// A strict-routed request (see [`strict_route`]): the last Route value, the
/// span of its URI (the Request-URI to restore; `None` when that URI cannot
/// be a Request-URI: not sip/sips, or with headers) and the flow token (user
/// part) of the Request-URI that was ours.
struct StrictRoute<'a> {
    last: Value,
    target: Option<Range<usize>>,
    user: Option<&'a [u8]>,
}

/// RFC 3261 §16.4: a Request-URI that is one of our Record-Route (or Path)
/// URIs means a strict router upstream. Ours: a sip/sips URI naming
/// `ws_host` or `core_host` with the `lr` parameter we always write, and a
/// Route to restore the Request-URI from. Gives the last Route value, the
/// span of its URI (the new Request-URI) and the user part (flow token) of
/// the Request-URI.
fn strict_route<'a>(msg: &Message<'a>, cfg: &EdgeConfig<'_>) -> Option<StrictRoute<'a>> {
    let StartLine::Request { uri_span, .. } = msg.start_line() else {
        return None;
    };
    let b = msg.bytes();
    let uri = parse_sip_uri(b, uri_span.clone())?;
    if !is_ours(&uri, cfg) || param(b, uri.params.clone(), "lr").is_none() {
        return None;
    }
    let (last, na) = msg.routes().pop()?;
    let target = na?.uri;
    let usable = parse_sip_uri(b, target.clone()).is_some_and(|t| t.headers.is_none());
    Some(StrictRoute {
        last,
        target: usable.then_some(target),
        user: uri.user,
    })
}

/// How a flow token in one of our URIs relates to the sender.
enum TokenOf {
    /// The sender's own flow ("outgoing", RFC 5626 §5.3).
    Sender,
    /// Another flow ("incoming").
    Other(Flow),
    /// Fails the HMAC (`403`, RFC 5626 §5.3.1).
    Forged,
}

fn token_of(cfg: &EdgeConfig<'_>, flow: &FlowCtx<'_>, user: &[u8]) -> TokenOf {
    match flow_token::verify(cfg.key, cfg.boot, user) {
        None => TokenOf::Forged,
        Some(f) if f.flow_id == flow.flow_id => TokenOf::Sender,
        Some(f) => TokenOf::Other(f),
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
    let Some(via) = msg.top_via() else {
        return ClientAction::Drop("no top Via");
    };
    let mut ed = msg.edit();
    if let Err((code, reason, tags)) = check_and_count_hop(msg, &mut ed) {
        let extra = tags.as_deref().map(|t| ("Unsupported", t));
        return refuse(code, reason, extra.as_slice());
    }

    // REGISTER needs Path support (RFC 3327 §5.1).
    let token = flow_token::encode(cfg.key, cfg.boot, flow.flow_id, flow.transport);
    if method == "REGISTER" && cfg.require_path_support && !has_option(msg, "Supported", b"path") {
        return refuse(421, "Extension Required", &[("Require", "path")]);
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

/// Our Via on a message: sent-by is `host`, and the flow parameter verifies.
fn our_via_flow(msg: &Message<'_>, cfg: &EdgeConfig<'_>, host: &str) -> Option<Flow> {
    let via = msg.top_via()?;
    if !same_host(via.host, via.port, host) {
        return None;
    }
    flow_token::verify(cfg.key, cfg.boot, via.param(FLOW_PARAM)??)
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
    let values = msg.values("Via");
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
            .is_some_and(|t| flow_token::verify(cfg.key, cfg.boot, t).is_some());
    if ours_next {
        let Ok(m) = parse(&bytes, &SipLimits::UNLIMITED) else {
            return ClientAction::Drop("response for another flow could not be rewritten");
        };
        return match from_core(&m, cfg) {
            FromCore::ToClient { flow, bytes, .. } => ClientAction::ToFlow { flow, bytes },
            FromCore::Respond(_) | FromCore::Drop(_) => {
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

/// A request or response from the core (spec 3 (b) and (c)). `msg` comes
/// from [`super::message::parse`].
pub fn from_core(msg: &Message<'_>, cfg: &EdgeConfig<'_>) -> FromCore {
    if !msg.is_request() {
        // Responses: our top Via names the flow; pop it (RFC 3261 §16.7,
        // §16.11: a response whose top Via is not ours is discarded).
        let Some(flow) = our_via_flow(msg, cfg, cfg.core_host) else {
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
            match flow_token::verify(cfg.key, cfg.boot, user) {
                Some(f) => found = Some(f),
                None => return refuse(403, "Forbidden", &[]),
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
            match flow_token::verify(cfg.key, cfg.boot, user) {
                Some(f) => found = found.or(Some(f)),
                None => return refuse(403, "Forbidden", &[]),
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
                    match uri.user.map(|u| flow_token::verify(cfg.key, cfg.boot, u)) {
                        Some(Some(f)) => found = Some(f),
                        Some(None) => return refuse(403, "Forbidden", &[]),
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
fn deliver_to_flow(
    msg: &Message<'_>,
    mut ed: super::message::Editor<'_, '_>,
    cfg: &EdgeConfig<'_>,
    flow: Flow,
) -> (Vec<u8>, String) {
    let token = flow_token::encode(cfg.key, cfg.boot, flow.flow_id, flow.transport);
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

/// The answer to a message [`super::message::parse`] refused, if it has one
/// (see [`super::message::error_response`]); the To tag is derived from the
/// key, the Call-ID and the From tag.
pub fn parse_error_response(
    bytes: &[u8],
    limits: &super::message::SipLimits,
    err: &super::message::SipError,
    key: &[u8],
) -> Option<Vec<u8>> {
    let m = super::message::scan(bytes, &SipLimits::UNLIMITED).ok()?;
    super::message::error_response(bytes, limits, err, &our_tag(key, &m))
}

#[cfg(test)]
#[path = "edge_tests.rs"]
mod tests;
