//! The helpers both directions share: our hosts, our tags and branches, the
//! hop checks (Max-Forwards, Proxy-Require), strict routes and our Via.

use super::types::{EdgeConfig, FLOW_PARAM};
use crate::sip::base64url;
use crate::sip::flow_token::Flow;
use crate::sip::hmac::hmac_sha256;
use crate::sip::message::{
    make_response, param, parse_sip_uri, Known, Message, SipUri, StartLine, Value,
};
use std::ops::Range;

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
pub(super) fn same_host(host: &[u8], port: Option<u16>, ours: &str) -> bool {
    let (h, p) = split_host(ours);
    host.eq_ignore_ascii_case(h) && port.unwrap_or(5060) == p.unwrap_or(5060)
}

/// A URI of ours (client-facing or core-facing).
pub(super) fn is_ours(uri: &SipUri<'_>, cfg: &EdgeConfig<'_>) -> bool {
    same_host(uri.host, uri.port, cfg.ws_host) || same_host(uri.host, uri.port, cfg.core_host)
}

/// A deterministic To tag for our own responses.
pub(super) fn our_tag(key: &[u8], msg: &Message<'_>) -> String {
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

pub(super) fn respond(
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
pub(super) fn derive_branch(key: &[u8], msg: &Message<'_>, flow_id: u64) -> String {
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

pub(super) fn is_dialog_forming(msg: &Message<'_>) -> bool {
    msg.to_tag().is_none()
        && matches!(
            msg.method(),
            Some("INVITE" | "SUBSCRIBE" | "REFER" | "NOTIFY")
        )
}

pub(super) fn has_option(msg: &Message<'_>, header: &str, option: &[u8]) -> bool {
    msg.values(header)
        .iter()
        .any(|v| msg.slice(v.span.clone()).eq_ignore_ascii_case(option))
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
pub(super) fn check_and_count_hop(
    msg: &Message<'_>,
    ed: &mut crate::sip::message::Editor<'_, '_>,
) -> Result<(), (u16, &'static str, Option<String>)> {
    match (msg.header_index(Known::MAX_FORWARDS), msg.max_forwards()) {
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
pub(super) struct StrictRoute<'a> {
    pub(super) last: Value,
    pub(super) target: Option<Range<usize>>,
    pub(super) user: Option<&'a [u8]>,
}

/// RFC 3261 §16.4: a Request-URI that is one of our Record-Route (or Path)
/// URIs means a strict router upstream. Ours: a sip/sips URI naming
/// `ws_host` or `core_host` with the `lr` parameter we always write, and a
/// Route to restore the Request-URI from. Gives the last Route value, the
/// span of its URI (the new Request-URI) and the user part (flow token) of
/// the Request-URI.
pub(super) fn strict_route<'a>(msg: &Message<'a>, cfg: &EdgeConfig<'_>) -> Option<StrictRoute<'a>> {
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

/// Our Via on a message: sent-by is `host`, and the flow parameter verifies.
pub(super) fn our_via_flow(msg: &Message<'_>, cfg: &EdgeConfig<'_>, host: &str) -> Option<Flow> {
    let via = msg.top_via()?;
    if !same_host(via.host, via.port, host) {
        return None;
    }
    cfg.tokens().check(via.param(FLOW_PARAM)??).here()
}
