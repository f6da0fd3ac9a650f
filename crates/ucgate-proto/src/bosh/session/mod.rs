//! One BOSH session (XEP-0124 + XEP-0206) as a pure state machine driven by
//! explicit time (`now`: a [`Duration`] since an arbitrary origin that
//! never goes backwards).
//!
//! The glue creates a session from a parsed creation request
//! ([`Session::create`]), then feeds it every later request of the same
//! `sid` ([`Session::on_request`]), the server side's events (stream
//! opened, elements, errors, close), lost HTTP requests and timer expiry.
//! Each call returns the [`Action`]s to carry out, in order. The session
//! never talks to the XMPP server itself: `ToServer` elements, `OpenStream`,
//! `RestartStream` and `CloseStream` are for the glue's XMPP client
//! connection ([`super::Bridge`] joins them to the RFC 7395 translator of
//! `crate::xmpp_ws`).
//!
//! The state is grouped: `Terms` (what was agreed at creation;
//! `create.rs`), `Sequence` (the client's requests; `requests.rs`),
//! `Stream` (the server's side; `server.rs`); how a session ends is in
//! `ending.rs`.
//!
//! See `docs/bosh.md` for every rule and the choices made where the
//! specifications leave room.

use core::time::Duration;
use std::collections::VecDeque;

use super::ridmap::RidMap;

/// The stanzas namespace (RFC 6120 §8.3).
const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

mod create;
mod ending;
mod requests;
mod server;

use super::body::{render_body, Request, Route, NS_CLIENT, NS_STREAMS};
use super::condition::{
    recoverable_error_body, render_terminate, terminate_body_legacy, Condition,
};
use super::sha1::sha1_hex;
use crate::xml::tag::{escape, parse_start_tag, Attr, ParsedElement, StartTag};
use crate::xml::Limits;

/// The Content-Type of responses when the client gave no `content`.
pub const DEFAULT_CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// How long after sending a response the gateway waits before it believes
/// a client whose `ack` does not cover that response has lost it, and
/// answers with `report`/`time` (XEP-0124 §9.2 "e.g., if some time has
/// passed since it responded"). Shorter would flag responses that are
/// merely still in flight.
pub const REPORT_AFTER: Duration = Duration::from_secs(1);

/// Most responses kept for re-sending (§14.3). Responses leave the cache
/// when the client acknowledges them (§9.2) or, oldest first, when there
/// are more than this many or their bodies exceed `max_pending_bytes`
/// together (the newest is always kept).
pub const CACHE_MAX_RESPONSES: usize = 32;

/// How many times one `rid` may be re-sent (XEP-0124 §14.3 allows a limit
/// so that repeats cannot be used to poll faster than allowed); one more
/// is `policy-violation`.
pub const MAX_RESENDS_PER_RID: u32 = 4;

/// Server-side limits of every session of a route (config `[bosh]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Longest `wait`: the client's value is lowered to this (whole seconds).
    pub max_wait: Duration,
    /// Largest `hold`: the client's value is lowered to this.
    pub max_hold: u32,
    /// Longest period with no request held before the session is
    /// forgotten (`inactivity`, whole seconds; zero: never, not advised).
    pub inactivity: Duration,
    /// Shortest interval between empty requests (`polling`, whole
    /// seconds; zero: not enforced).
    pub polling: Duration,
    /// Longest `pause` a client may ask for (`maxpause`, whole seconds;
    /// zero: pausing is not offered).
    pub max_pause: Duration,
    /// Cap on `requests` (= hold + 1): `hold` is also lowered so that
    /// hold + 1 ≤ max_requests. At least 1.
    pub max_requests: u32,
    /// Server data waiting for a request, per session, above which the
    /// glue should stop reading the server ([`Session::accepts_server_data`]).
    pub max_pending_bytes: usize,
    /// XML limits of request bodies (`max_bytes` is the largest body).
    pub xml: Limits,
    /// Our BOSH version (1.11).
    pub ver: (u32, u32),
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_wait: Duration::from_secs(60),
            max_hold: 1,
            inactivity: Duration::from_secs(60),
            polling: Duration::from_secs(2),
            max_pause: Duration::from_secs(120),
            max_requests: 2,
            max_pending_bytes: 1024 * 1024,
            xml: Limits::default(),
            ver: (1, 11),
        }
    }
}

/// Opaque id of one HTTP request, chosen by the glue (unique per request).
pub type RequestId = u64;

/// Why a session ended without an error condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The client sent `type='terminate'` (XEP-0124 §13).
    ClientTerminate,
    /// No request for the inactivity period (§10): forgotten silently.
    Inactivity,
    /// The server closed its stream (`</stream:stream>`).
    ServerClosed,
}

/// What the glue must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer this HTTP request now (Content-Type: [`Session::content_type`]).
    Respond {
        /// The request.
        request: RequestId,
        /// HTTP status (200 except legacy error codes, see `Condition`).
        status: u16,
        /// The `<body/>`.
        body: String,
    },
    /// A namespace-complete element for the server, in order, with its
    /// start tag (parsed by the body parser for client payloads).
    ToServer(ParsedElement),
    /// Open the (first) server stream; `to` is the domain to reach.
    OpenStream {
        /// The `to` of the creation request (as sent; trimmed).
        to: String,
        /// Its `xml:lang`.
        lang: Option<String>,
        /// Its `from` (the client's identity), for the stream header.
        from: Option<String>,
    },
    /// XEP-0206 `xmpp:restart='true'`: open a new stream on the same
    /// connection (after SASL success).
    RestartStream,
    /// Close the server stream gracefully, after the `ToServer` above.
    CloseStream,
    /// The session ended with this condition (after the `Respond`s above):
    /// drop it; later requests for its `sid` get `item-not-found`.
    Terminated(Condition),
    /// The session ended without an error: drop it likewise.
    Ended(EndReason),
}

/// A request received out of order, waiting for the lower `rid`s.
#[derive(Debug, Clone)]
struct Pending {
    http: Option<RequestId>,
    arrived: Duration,
    since: Duration,
    req: Request,
    resends: u32,
}

/// A processed request waiting for its response.
#[derive(Debug, Clone)]
struct Held {
    rid: u64,
    /// `None`: the HTTP request went away; answered (into the cache only)
    /// when its turn comes, never with payloads.
    http: Option<RequestId>,
    since: Duration,
    /// Answer as soon as possible (pause).
    immediate: bool,
    /// The response must not carry payloads (the pause request, §10).
    no_payload: bool,
    key: Option<String>,
    resends: u32,
}

/// A response kept for re-sending (§14.3).
#[derive(Debug, Clone)]
struct Cached {
    body: String,
    sent_at: Duration,
    key: Option<String>,
    resends: u32,
    had_payload: bool,
}

#[derive(Debug, Clone, Copy)]
struct Prev {
    rid: u64,
    arrived: Duration,
    empty: bool,
}

/// The server side ended before the client could be told.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Terminal {
    Error(Condition),
    Closed,
}

/// What was agreed at creation (times in whole seconds, as advertised).
#[derive(Debug, Clone)]
struct Terms {
    wait: u64,
    hold: u32,
    requests: u32,
    inactivity: u64,
    polling: u64,
    max_pause: u64,
    ver: (u32, u32),
    legacy: bool,
    content: String,
    to: String,
    acks: bool,
    polling_session: bool,
    creation_rid: u64,
    max_pending_bytes: usize,
}

/// The client's side: the `rid` sequence, held and buffered requests, the
/// response cache, acknowledgements and reports, the key chain.
#[derive(Debug, Clone)]
struct Sequence {
    next_rid: u64,
    held: VecDeque<Held>,
    buffered: RidMap<Pending>,
    cache: RidMap<Cached>,
    cache_bytes: usize,
    last_responded: u64,
    last_response_at: Duration,
    client_ack: u64,
    report: Option<u64>,
    last_reported: u64,
    prev: Option<Prev>,
    pause_inactivity: Option<Duration>,
    key: Option<String>,
}

/// The server's side: elements waiting for a request, client payloads
/// held back until the stream is usable, how the stream ended.
#[derive(Debug, Clone)]
struct Stream {
    queue: VecDeque<Vec<u8>>,
    pending_bytes: usize,
    backlog: Vec<ParsedElement>,
    awaiting_features: bool,
    opened_once: bool,
    pending_attrs: Vec<(&'static str, String)>,
    server_gone: bool,
    terminal: Option<Terminal>,
}

/// One BOSH session.
#[derive(Debug, Clone)]
pub struct Session {
    sid: String,
    route: Option<Route>,
    secure: bool,
    ended: bool,
    terms: Terms,
    seq: Sequence,
    stream: Stream,
}

impl Session {
    /// The session id.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// The `route` of the creation request, if the glue's hook allowed it
    /// ([`create_with_route`](Self::create_with_route)); `None` otherwise.
    pub fn route(&self) -> Option<&Route> {
        self.route.as_ref()
    }

    /// The Content-Type of every response (`content` of the creation
    /// request, default `text/xml; charset=utf-8`).
    pub fn content_type(&self) -> &str {
        &self.terms.content
    }

    /// True if the client is legacy (no `ver` at creation): some
    /// conditions use HTTP error codes (XEP-0124 §17.1).
    pub fn is_legacy(&self) -> bool {
        self.terms.legacy
    }

    /// The negotiated `wait` in seconds.
    pub fn wait(&self) -> u64 {
        self.terms.wait
    }

    /// The negotiated `hold`.
    pub fn hold(&self) -> u32 {
        self.terms.hold
    }

    /// The advertised `requests` (hold + 1).
    pub fn requests(&self) -> u32 {
        self.terms.requests
    }

    /// True once the session has ended (every input is then ignored).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Server data (bytes) waiting for a request.
    pub fn pending_bytes(&self) -> usize {
        self.stream.pending_bytes
    }

    /// False while [`pending_bytes`](Self::pending_bytes) is at or above
    /// `max_pending_bytes`: the glue stops reading the server until it is
    /// true again (backpressure; nothing is dropped).
    pub fn accepts_server_data(&self) -> bool {
        self.stream.pending_bytes < self.terms.max_pending_bytes
    }

    /// Marks the session as created over an encrypted connection
    /// (XEP-0124 §19.1): every later request must be encrypted too.
    pub fn set_secure_transport(&mut self, secure: bool) {
        self.secure = secure;
    }

    /// False if a request arriving over this kind of connection must not
    /// be processed: the glue then simply closes the connection, without
    /// answering and without terminating the session (§19.1).
    pub fn transport_ok(&self, secure: bool) -> bool {
        secure || !self.secure
    }

    /// A later request of this session (the glue found it by `sid`).
    pub fn on_request(&mut self, req: Request, request: RequestId, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if self.ended || req.sid.as_deref() != Some(self.sid.as_str()) {
            self.item_not_found(request, &mut out);
            return out;
        }
        if self.stream.terminal.is_some() {
            self.deliver_terminal(Some(request), now, &mut out);
            return out;
        }
        let rid = req.rid;
        if rid < self.seq.next_rid {
            self.resent_processed(req, request, now, &mut out);
        } else if self.seq.buffered.contains_key(&rid) {
            self.resent_buffered(req, request, now, &mut out);
        } else {
            self.new_request(req, request, now, &mut out);
        }
        if !self.ended {
            self.flush(now, &mut out);
        }
        out
    }

    /// Answers a request for a session that is over (or another session's
    /// sid) with `item-not-found` (XEP-0124 §17.2).
    fn item_not_found(&self, request: RequestId, out: &mut Vec<Action>) {
        let (status, body) = terminate_body_legacy(&Condition::ItemNotFound, self.terms.legacy);
        out.push(Action::Respond {
            request,
            status,
            body,
        });
    }

    /// A request that could not be parsed but names this session
    /// (`peek_sid`): answers it with `condition` (from
    /// `BodyError::condition`) and ends the session.
    pub fn on_bad_request(
        &mut self,
        request: RequestId,
        condition: Condition,
        now: Duration,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if self.ended {
            self.item_not_found(request, &mut out);
            return out;
        }
        self.end_with(condition, Some(request), true, true, now, &mut out);
        out
    }

    /// The HTTP client went away while its request was open. A held
    /// request is answered into the response cache only (an empty body),
    /// so that a re-sent copy gets it; a request waiting for a lower `rid`
    /// keeps its place and payload.
    pub fn on_request_gone(&mut self, request: RequestId, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        for h in self.seq.held.iter_mut() {
            if h.http == Some(request) {
                h.http = None;
            }
        }
        for p in self.seq.buffered.values_mut() {
            if p.http == Some(request) {
                p.http = None;
            }
        }
        self.flush(now, &mut out);
        out
    }

    /// Timers: `wait` expiry (empty responses) and inactivity.
    pub fn on_timeout(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        self.flush(now, &mut out);
        if self.inactivity_deadline().is_some_and(|d| now >= d) {
            match self.stream.terminal.take() {
                Some(Terminal::Error(c)) => out.push(Action::Terminated(c)),
                Some(Terminal::Closed) => out.push(Action::Ended(EndReason::ServerClosed)),
                None => {
                    if !self.stream.server_gone {
                        self.bounce_queue(&mut out);
                        out.push(Action::CloseStream);
                    }
                    out.push(Action::Ended(EndReason::Inactivity));
                }
            }
            self.finish();
        }
        out
    }

    /// When to call [`on_timeout`](Self::on_timeout) next.
    pub fn next_deadline(&self) -> Option<Duration> {
        if self.ended {
            return None;
        }
        let wait = Duration::from_secs(self.terms.wait);
        let held = self
            .seq
            .held
            .iter()
            .filter(|h| h.http.is_some())
            .map(|h| h.since)
            .chain(
                self.seq
                    .buffered
                    .values()
                    .filter(|p| p.http.is_some())
                    .map(|p| p.since),
            )
            .min()
            .map(|since| since + wait);
        match (held, self.inactivity_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The gateway is shutting down: `system-shutdown` to every open
    /// request, the server stream closed, the session ended.
    pub fn on_shutdown(&mut self, now: Duration) -> Vec<Action> {
        self.on_shutdown_with(Condition::SystemShutdown, now)
    }

    /// [`on_shutdown`](Self::on_shutdown) with another condition
    /// (`see-other-uri` at the end of the drain).
    pub fn on_shutdown_with(&mut self, condition: Condition, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        self.end_with(condition, None, false, true, now, &mut out);
        out
    }

    // ---- internals ----
}

/// XEP-0206 §7: what to send back to the server for a stanza that can no
/// longer reach the client: a `recipient-unavailable` error for a
/// `<message/>`, `service-unavailable` for an `<iq/>` get/set, nothing for
/// presence, errors, results or anything else. `from` is left for the
/// server to stamp. The error is built with its start tag, not parsed.
///
/// The undelivered stanza's own start tag is read here, once more: queued
/// stanzas are kept as bytes, since keeping every queued stanza's parsed
/// tag would cost memory on each of them to save a parse on a path taken
/// only by stanzas that never reached the client (docs/architecture.md).
pub fn recipient_unavailable(el: &[u8]) -> Option<ParsedElement> {
    let tag = parse_start_tag(el).ok().flatten()?;
    let ns = match tag.prefix() {
        Some(p) => tag.attr(&format!("xmlns:{p}")),
        None => tag.attr("xmlns"),
    };
    if ns != Some(NS_CLIENT) {
        return None;
    }
    let kind = tag.attr("type").unwrap_or_default();
    let (error_type, condition) = match (tag.local(), kind) {
        ("message", "error") => return None,
        ("message", _) => ("wait", "recipient-unavailable"),
        ("iq", "get" | "set") => ("cancel", "service-unavailable"),
        _ => return None,
    };
    let name = tag.local();
    let mut attrs = vec![("xmlns", NS_CLIENT), ("type", "error")];
    attrs.extend(tag.attr("from").map(|from| ("to", from)));
    attrs.extend(tag.attr("id").map(|id| ("id", id)));
    let mut s = format!("<{name}");
    for (a, v) in &attrs {
        s.push_str(&format!(" {a}='{}'", escape(v)));
    }
    s.push('>');
    let reply = StartTag {
        name: name.to_string(),
        attrs: attrs
            .iter()
            .map(|(a, v)| Attr {
                name: a.to_string(),
                value: v.to_string(),
            })
            .collect(),
        self_closing: false,
        len: s.len(),
    };
    s.push_str(&format!(
        "<error type='{error_type}'><{condition} xmlns='{NS_STANZAS}'/></error></{name}>"
    ));
    Some(ParsedElement {
        bytes: s.into_bytes(),
        tag: reply,
    })
}

fn is_sha1_hex(k: &str) -> bool {
    k.len() == 40 && k.bytes().all(|b| b.is_ascii_hexdigit())
}
