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
//! connection (in ucgate, the RFC 7395 translator of `crate::xmpp_ws` fed
//! with `<open/>` / elements / `<close/>`).
//!
//! See `docs/bosh.md` for every rule and the choices made where the
//! specifications leave room.

use core::time::Duration;
use std::collections::VecDeque;

use super::ridmap::RidMap;

use super::body::{render_body, Request, Route, NS_CLIENT, NS_STREAMS};
use super::condition::{
    recoverable_error_body, render_terminate, terminate_body_legacy, Condition,
};
use super::sha1::sha1_hex;
use crate::xml::tag::{escape, parse_start_tag};
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
    /// A namespace-complete element for the server, in order.
    ToServer(Vec<u8>),
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

/// One BOSH session.
#[derive(Debug, Clone)]
pub struct Session {
    sid: String,
    max_pending_bytes: usize,
    // negotiated (whole seconds, as advertised)
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
    // request sequence
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
    route: Option<Route>,
    // server side
    queue: VecDeque<Vec<u8>>,
    pending_bytes: usize,
    backlog: Vec<Vec<u8>>,
    awaiting_features: bool,
    opened_once: bool,
    pending_attrs: Vec<(&'static str, String)>,
    server_gone: bool,
    terminal: Option<Terminal>,
    secure: bool,
    ended: bool,
}

fn is_sha1_hex(k: &str) -> bool {
    k.len() == 40 && k.bytes().all(|b| b.is_ascii_hexdigit())
}

fn keys_equal(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

/// Checks a re-sent copy of a request against what is kept of the first
/// (§14.3): with keys in use (§15) it must carry the same key
/// (`item-not-found`), and one `rid` may be re-sent at most
/// [`MAX_RESENDS_PER_RID`] times (`policy-violation`).
fn resend_allowed(
    key_mode: bool,
    kept: &Option<String>,
    sent: &Option<String>,
    resends: &mut u32,
) -> Result<(), Condition> {
    if key_mode && !keys_equal(kept, sent) {
        return Err(Condition::ItemNotFound);
    }
    *resends += 1;
    if *resends > MAX_RESENDS_PER_RID {
        return Err(Condition::PolicyViolation);
    }
    Ok(())
}

/// `<stream:error/>` for a client asking for a pre-1.0 XMPP stream.
fn unsupported_version() -> String {
    format!("<stream:error xmlns:stream='{NS_STREAMS}'><unsupported-version xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>")
}

/// True for a `<stream:error/>` element (namespace declared on it, as the
/// server side delivers namespace-complete elements).
fn is_stream_error(el: &[u8]) -> bool {
    let Ok(Some(tag)) = parse_start_tag(el) else {
        return false;
    };
    if tag.local() != "error" {
        return false;
    }
    let decl = match tag.prefix() {
        Some(p) => tag.attr(&format!("xmlns:{p}")),
        None => tag.attr("xmlns"),
    };
    decl == Some(NS_STREAMS)
}

/// The stanzas namespace (RFC 6120 §8.3).
const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// XEP-0206 §7: what to send back to the server for a stanza that can no
/// longer reach the client: a `recipient-unavailable` error for a
/// `<message/>`, `service-unavailable` for an `<iq/>` get/set, nothing for
/// presence, errors, results or anything else. `from` is left for the
/// server to stamp.
pub fn recipient_unavailable(el: &[u8]) -> Option<Vec<u8>> {
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
    let mut s = format!("<{name} xmlns='{NS_CLIENT}' type='error'");
    if let Some(from) = tag.attr("from") {
        s.push_str(&format!(" to='{}'", escape(from)));
    }
    if let Some(id) = tag.attr("id") {
        s.push_str(&format!(" id='{}'", escape(id)));
    }
    s.push_str(&format!(
        "><error type='{error_type}'><{condition} xmlns='{NS_STANZAS}'/></error></{name}>"
    ));
    Some(s.into_bytes())
}

/// The condition without the element it carries (for the extra requests
/// answered along with the one that carries it).
fn bare(c: &Condition) -> Condition {
    match c {
        Condition::RemoteStreamError(_) => Condition::RemoteStreamError(None),
        c => c.clone(),
    }
}

impl Session {
    /// Creates a session from its creation request (`req.sid` absent).
    /// `sid` must be unpredictable and unique (the glue's job). The
    /// `route` attribute is ignored (XEP-0124 §7.1 allows this for a
    /// gateway serving a fixed list of domains). `Err` is the immediate
    /// answer (status, terminate body) for a creation request that is
    /// refused.
    #[allow(clippy::result_large_err)]
    pub fn create(
        req: &Request,
        sid: String,
        limits: &SessionLimits,
        request: RequestId,
        now: Duration,
    ) -> Result<(Session, Vec<Action>), (u16, String)> {
        Self::create_inner(req, sid, limits, request, now, None)
    }

    /// [`create`](Self::create), honouring `route` when `allowed` says it
    /// names an allowed backend: [`route`](Self::route) then returns it
    /// (for the glue, when it carries out `Action::OpenStream`). A `route`
    /// that does not parse is `bad-request`; one that `allowed` refuses is
    /// `host-unknown`.
    #[allow(clippy::result_large_err)]
    pub fn create_with_route(
        req: &Request,
        sid: String,
        limits: &SessionLimits,
        request: RequestId,
        now: Duration,
        allowed: &dyn Fn(&Route) -> bool,
    ) -> Result<(Session, Vec<Action>), (u16, String)> {
        Self::create_inner(req, sid, limits, request, now, Some(allowed))
    }

    #[allow(clippy::result_large_err)]
    fn create_inner(
        req: &Request,
        sid: String,
        limits: &SessionLimits,
        request: RequestId,
        now: Duration,
        route_hook: Option<&dyn Fn(&Route) -> bool>,
    ) -> Result<(Session, Vec<Action>), (u16, String)> {
        let legacy = req.ver.is_none();
        let refuse = |c: Condition| Err(terminate_body_legacy(&c, legacy));
        if req.sid.is_some() || req.is_terminate() {
            return refuse(Condition::BadRequest);
        }
        let to = req.to.as_deref().map(str::trim).unwrap_or_default();
        if to.is_empty() {
            return refuse(Condition::ImproperAddressing);
        }
        let route = match (route_hook, req.route.as_deref()) {
            (Some(allowed), Some(r)) => {
                let Some(route) = Route::parse(r) else {
                    return refuse(Condition::BadRequest);
                };
                if !allowed(&route) {
                    return refuse(Condition::HostUnknown);
                }
                Some(route)
            }
            _ => None,
        };
        if req.xmpp_version.is_some_and(|(major, _)| major < 1) {
            return refuse(Condition::RemoteStreamError(Some(unsupported_version())));
        }
        let key = match &req.newkey {
            Some(k) if is_sha1_hex(k) => Some(k.to_ascii_lowercase()),
            Some(_) => return refuse(Condition::BadRequest),
            None => None,
        };
        let max_wait = limits.max_wait.as_secs();
        let wait = req.wait.unwrap_or(max_wait).min(max_wait);
        let max_requests = limits.max_requests.max(1);
        let hold = req
            .hold
            .unwrap_or(1)
            .min(limits.max_hold)
            .min(max_requests - 1);
        let polling_session = hold == 0 || wait == 0;
        let polling = limits.polling.as_secs();
        let mut inactivity = limits.inactivity.as_secs();
        if polling_session && inactivity > 0 {
            // §12: a polling session gets a longer inactivity period, by
            // more than `polling`.
            inactivity += 2 * polling;
        }
        let ver = match req.ver {
            Some(v) => v.min(limits.ver),
            None => limits.ver,
        };
        let mut s = Session {
            sid,
            max_pending_bytes: limits.max_pending_bytes,
            wait,
            hold,
            requests: hold + 1,
            inactivity,
            polling,
            max_pause: limits.max_pause.as_secs(),
            ver,
            legacy,
            content: req
                .content
                .clone()
                .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_string()),
            to: to.to_string(),
            acks: req.ack.is_some(),
            polling_session,
            creation_rid: req.rid,
            next_rid: req.rid + 1,
            held: VecDeque::new(),
            buffered: RidMap::new(),
            cache: RidMap::new(),
            cache_bytes: 0,
            last_responded: req.rid - 1,
            last_response_at: now,
            client_ack: req.rid - 1,
            report: None,
            last_reported: 0,
            prev: Some(Prev {
                rid: req.rid,
                arrived: now,
                empty: req.payload.is_empty(),
            }),
            pause_inactivity: None,
            key,
            route,
            queue: VecDeque::new(),
            pending_bytes: 0,
            backlog: req.payload.clone(),
            awaiting_features: true,
            opened_once: false,
            pending_attrs: Vec::new(),
            server_gone: false,
            terminal: None,
            secure: false,
            ended: false,
        };
        let mut out = vec![Action::OpenStream {
            to: s.to.clone(),
            lang: req.lang.clone(),
            from: req.from.clone(),
        }];
        s.held.push_back(Held {
            rid: req.rid,
            http: Some(request),
            since: now,
            immediate: false,
            no_payload: false,
            key: None,
            resends: 0,
        });
        s.flush(now, &mut out);
        Ok((s, out))
    }

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
        &self.content
    }

    /// True if the client is legacy (no `ver` at creation): some
    /// conditions use HTTP error codes (XEP-0124 §17.1).
    pub fn is_legacy(&self) -> bool {
        self.legacy
    }

    /// The negotiated `wait` in seconds.
    pub fn wait(&self) -> u64 {
        self.wait
    }

    /// The negotiated `hold`.
    pub fn hold(&self) -> u32 {
        self.hold
    }

    /// The advertised `requests` (hold + 1).
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// True once the session has ended (every input is then ignored).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Server data (bytes) waiting for a request.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// False while [`pending_bytes`](Self::pending_bytes) is at or above
    /// `max_pending_bytes`: the glue stops reading the server until it is
    /// true again (backpressure; nothing is dropped).
    pub fn accepts_server_data(&self) -> bool {
        self.pending_bytes < self.max_pending_bytes
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
            let (status, body) = terminate_body_legacy(&Condition::ItemNotFound, self.legacy);
            out.push(Action::Respond {
                request,
                status,
                body,
            });
            return out;
        }
        if self.terminal.is_some() {
            self.deliver_terminal(Some(request), now, &mut out);
            return out;
        }
        let rid = req.rid;
        if rid < self.next_rid {
            self.resent_processed(req, request, now, &mut out);
        } else if self.buffered.contains_key(&rid) {
            self.resent_buffered(req, request, now, &mut out);
        } else {
            self.new_request(req, request, now, &mut out);
        }
        if !self.ended {
            self.flush(now, &mut out);
        }
        out
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
            let (status, body) = terminate_body_legacy(&Condition::ItemNotFound, self.legacy);
            out.push(Action::Respond {
                request,
                status,
                body,
            });
            return out;
        }
        self.end_with(condition, Some(request), true, true, now, &mut out);
        out
    }

    /// The server stream was opened (first time or after a restart):
    /// `authid` is its `id`, `from` its `from`. Both are passed to the
    /// client once, on the next response (`authid`, `from`; XEP-0124 §7.2,
    /// XEP-0206 §4).
    pub fn on_stream_open(
        &mut self,
        authid: String,
        from: Option<String>,
        now: Duration,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        if !self.opened_once {
            self.opened_once = true;
            if !authid.is_empty() {
                self.pending_attrs.push(("authid", authid));
            }
            if let Some(f) = from.filter(|f| !f.is_empty()) {
                self.pending_attrs.push(("from", f));
            }
        }
        self.flush(now, &mut out);
        out
    }

    /// One element from the server (stanza, features, SASL …), already
    /// namespace-complete. A `<stream:error/>` ends the session with
    /// `remote-stream-error`.
    pub fn on_server_element(&mut self, element: Vec<u8>, now: Duration) -> Vec<Action> {
        self.on_server_elements(vec![element], now)
    }

    /// Several elements received together: they are batched into one
    /// response when a request is held.
    pub fn on_server_elements(&mut self, elements: Vec<Vec<u8>>, now: Duration) -> Vec<Action> {
        self.server_elements(elements, true, now)
    }

    /// One element from the server known not to be a stream error (the
    /// translator reports those apart): queued without being read.
    pub fn on_server_stanza(&mut self, element: Vec<u8>, now: Duration) -> Vec<Action> {
        self.server_elements(vec![element], false, now)
    }

    fn server_elements(
        &mut self,
        elements: Vec<Vec<u8>>,
        check: bool,
        now: Duration,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if self.ended || self.server_gone {
            return out;
        }
        for el in elements {
            if check && is_stream_error(&el) {
                let xml = String::from_utf8_lossy(&el).into_owned();
                out.extend(self.on_server_error(Condition::RemoteStreamError(Some(xml)), now));
                return out;
            }
            if self.awaiting_features {
                // The first element of a (re)started stream: the stream is
                // usable; client payloads held back until now go out.
                self.awaiting_features = false;
                out.extend(self.backlog.drain(..).map(Action::ToServer));
            }
            self.pending_bytes += el.len();
            self.queue.push_back(el);
        }
        self.flush(now, &mut out);
        out
    }

    /// The server side failed (`RemoteConnectionFailed`, `HostUnknown`,
    /// `HostGone`, `RemoteStreamError(Some(xml))`, `SystemShutdown`, …).
    /// Queued elements and the condition go to the oldest open request; if
    /// none is open they wait for the next request (or inactivity).
    pub fn on_server_error(&mut self, condition: Condition, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if self.ended || self.server_gone {
            return out;
        }
        self.server_gone = true;
        self.terminal = Some(Terminal::Error(condition));
        if self.has_open() {
            self.deliver_terminal(None, now, &mut out);
        }
        out
    }

    /// The server closed its stream (`</stream:stream>`): queued elements
    /// and `<body type='terminate'/>` go to the client like an error.
    pub fn on_server_close(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if self.ended || self.server_gone {
            return out;
        }
        self.server_gone = true;
        self.terminal = Some(Terminal::Closed);
        if self.has_open() {
            self.deliver_terminal(None, now, &mut out);
        }
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
        for h in self.held.iter_mut() {
            if h.http == Some(request) {
                h.http = None;
            }
        }
        for p in self.buffered.values_mut() {
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
            match self.terminal.take() {
                Some(Terminal::Error(c)) => out.push(Action::Terminated(c)),
                Some(Terminal::Closed) => out.push(Action::Ended(EndReason::ServerClosed)),
                None => {
                    if !self.server_gone {
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
        let wait = Duration::from_secs(self.wait);
        let held = self
            .held
            .iter()
            .filter(|h| h.http.is_some())
            .map(|h| h.since)
            .chain(
                self.buffered
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
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        self.end_with(Condition::SystemShutdown, None, false, true, now, &mut out);
        out
    }

    // ---- internals ----

    fn live_held(&self) -> usize {
        self.held.iter().filter(|h| h.http.is_some()).count()
    }

    fn live_buffered(&self) -> usize {
        self.buffered.values().filter(|p| p.http.is_some()).count()
    }

    fn has_open(&self) -> bool {
        self.live_held() > 0 || self.live_buffered() > 0
    }

    fn inactivity_deadline(&self) -> Option<Duration> {
        if self.ended || self.has_open() {
            return None;
        }
        let period = match self.pause_inactivity {
            Some(p) => p,
            None if self.inactivity == 0 => return None,
            None => Duration::from_secs(self.inactivity),
        };
        Some(self.last_response_at + period)
    }

    fn finish(&mut self) {
        self.ended = true;
        self.held.clear();
        self.buffered.clear();
        self.cache.clear();
        self.cache_bytes = 0;
        self.queue.clear();
        self.backlog.clear();
        self.pending_bytes = 0;
        self.terminal = None;
    }

    fn respond(
        &mut self,
        request: RequestId,
        status: u16,
        body: String,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        self.last_response_at = now;
        out.push(Action::Respond {
            request,
            status,
            body,
        });
    }

    /// A copy of a `rid` already processed: replay its response, or take
    /// over the held request (the old one gets an empty body).
    fn resent_processed(
        &mut self,
        req: Request,
        request: RequestId,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        let rid = req.rid;
        let key_mode = self.key.is_some();
        if let Some(c) = self.cache.get_mut(&rid) {
            match resend_allowed(key_mode, &c.key, &req.key, &mut c.resends) {
                Ok(()) => {
                    let body = c.body.clone();
                    self.respond(request, 200, body, now, out);
                }
                Err(cond) => self.end_with(cond, Some(request), true, true, now, out),
            }
            return;
        }
        let Some(h) = self.held.iter_mut().find(|h| h.rid == rid) else {
            // Before what is cached: §14.3 item-not-found.
            self.end_with(Condition::ItemNotFound, Some(request), true, true, now, out);
            return;
        };
        let taken = resend_allowed(key_mode, &h.key, &req.key, &mut h.resends).map(|()| {
            h.since = now;
            h.http.replace(request)
        });
        self.took_over(taken, request, rid, now, out);
    }

    /// A copy of a `rid` waiting for lower ones: the new HTTP request takes
    /// its place (the old one, if still open, gets an empty body).
    fn resent_buffered(
        &mut self,
        req: Request,
        request: RequestId,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        let key_mode = self.key.is_some();
        let Some(p) = self.buffered.get_mut(&req.rid) else {
            return;
        };
        let taken = resend_allowed(key_mode, &p.req.key, &req.key, &mut p.resends).map(|()| {
            p.since = now;
            p.http.replace(request)
        });
        self.took_over(taken, request, req.rid, now, out);
    }

    /// After a re-sent copy of `rid` took over a held or buffered request
    /// (`Ok`, with the HTTP request it replaced), or was refused (`Err`,
    /// the condition the session ends with).
    fn took_over(
        &mut self,
        taken: Result<Option<RequestId>, Condition>,
        request: RequestId,
        rid: u64,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        match taken {
            Ok(Some(old)) => {
                let body = self.superseded_body(rid);
                self.respond(old, 200, body, now, out);
            }
            Ok(None) => {}
            Err(cond) => self.end_with(cond, Some(request), true, true, now, out),
        }
    }

    /// The answer to an HTTP request whose `rid` a re-sent copy took over:
    /// an empty body, as Prosody sends. Not the recoverable `type='error'`
    /// (§17.3), which tells the client to re-send its requests: the client
    /// has just done so. `ack` as on any response (§9.1), so that a client
    /// still reading it learns nothing false about lower `rid`s.
    fn superseded_body(&self, rid: u64) -> String {
        let ack = self.next_rid - 1;
        let attrs = if self.acks && ack != rid {
            vec![("ack", ack.to_string())]
        } else {
            Vec::new()
        };
        render_body(&attrs, &[], false)
    }

    fn new_request(
        &mut self,
        req: Request,
        request: RequestId,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        let rid = req.rid;
        let extra = req.pause.is_some() || req.is_terminate();
        // §14.2: the window is `requests` rids past the last one received
        // in sequence, one more for a pause or terminate request (§11).
        let max = self.next_rid - 1 + u64::from(self.requests) + u64::from(extra);
        if rid > max {
            self.end_with(Condition::ItemNotFound, Some(request), true, true, now, out);
            return;
        }
        // §11 overactivity: more unanswered requests than `requests`
        // (one more if the last of them pauses or terminates).
        let outstanding = self.live_held() + self.live_buffered() + 1;
        let requests = self.requests as usize;
        if outstanding > requests {
            let last_is_extra = match self.buffered.last_key_value() {
                Some((r, p)) if *r > rid => p.req.pause.is_some() || p.req.is_terminate(),
                _ => extra,
            };
            if !(last_is_extra && outstanding == requests + 1) {
                self.end_with(
                    Condition::PolicyViolation,
                    Some(request),
                    true,
                    true,
                    now,
                    out,
                );
                return;
            }
        }
        self.buffered.insert(
            rid,
            Pending {
                http: Some(request),
                arrived: now,
                since: now,
                req,
                resends: 0,
            },
        );
        while let Some(p) = self.buffered.remove(&self.next_rid) {
            self.process(p, now, out);
            if self.ended {
                return;
            }
        }
    }

    /// Processes the next request in `rid` order.
    fn process(&mut self, p: Pending, now: Duration, out: &mut Vec<Action>) {
        let Pending {
            http,
            arrived,
            since,
            req,
            resends,
        } = p;
        let rid = req.rid;
        // §15: the key chain, verified before anything else.
        if let Some(expected) = &self.key {
            let ok = req
                .key
                .as_deref()
                .is_some_and(|k| sha1_hex(k.as_bytes()) == *expected);
            if !ok {
                self.end_with(
                    Condition::ItemNotFound,
                    http,
                    http.is_some(),
                    true,
                    now,
                    out,
                );
                return;
            }
            let next = match &req.newkey {
                Some(nk) if is_sha1_hex(nk) => nk.to_ascii_lowercase(),
                Some(_) => {
                    self.end_with(Condition::BadRequest, http, http.is_some(), true, now, out);
                    return;
                }
                None => req.key.as_deref().unwrap_or_default().to_ascii_lowercase(),
            };
            self.key = Some(next);
        }
        if let Some(pause) = req.pause {
            // §10: pausing beyond maxpause (or when none was offered).
            if self.max_pause == 0 || pause > self.max_pause {
                self.end_with(
                    Condition::PolicyViolation,
                    http,
                    http.is_some(),
                    true,
                    now,
                    out,
                );
                return;
            }
        }
        let empty =
            req.payload.is_empty() && !req.restart && req.pause.is_none() && !req.is_terminate();
        if empty && self.polling > 0 && self.too_frequent(rid, arrived) {
            self.end_with(
                Condition::PolicyViolation,
                http,
                http.is_some(),
                true,
                now,
                out,
            );
            return;
        }
        self.next_rid = rid + 1;
        self.prev = Some(Prev {
            rid,
            arrived,
            empty,
        });
        // §10: the inactivity period is back to normal on the next request.
        self.pause_inactivity = None;
        if self.acks {
            self.client_acked(req.ack.unwrap_or(rid - 1), now);
        }
        if req.is_terminate() {
            self.client_terminate(http, req.payload, now, out);
            return;
        }
        if req.restart {
            // XEP-0206 §5: the body SHOULD be empty; payloads are ignored.
            out.push(Action::RestartStream);
            self.awaiting_features = true;
        } else {
            self.forward(req.payload, out);
        }
        self.held.push_back(Held {
            rid,
            http,
            since,
            immediate: false,
            no_payload: req.pause.is_some(),
            key: req.key,
            resends,
        });
        if let Some(pause) = req.pause {
            // §10: answer every pending request now (the pause request
            // without payloads) and stretch the inactivity period.
            for h in self.held.iter_mut() {
                h.immediate = true;
            }
            self.pause_inactivity = Some(Duration::from_secs(pause));
        }
    }

    /// §11 / §12: an empty request too soon after the previous one.
    fn too_frequent(&self, rid: u64, arrived: Duration) -> bool {
        let Some(prev) = self.prev else {
            return false;
        };
        if prev.rid + 1 != rid
            || arrived.abs_diff(prev.arrived) >= Duration::from_secs(self.polling)
        {
            return false;
        }
        if self.polling_session {
            // §12: two consecutive empty requests, the first answered
            // without payloads.
            prev.empty && self.cache.get(&prev.rid).is_some_and(|c| !c.had_payload)
        } else {
            // §11: `requests` unanswered requests, the last one empty.
            self.live_held() + 1 >= self.requests as usize
        }
    }

    /// The client's `ack` (§9.2): trims the cache, and reports a response
    /// it has evidently not received.
    fn client_acked(&mut self, ack: u64, now: Duration) {
        let ack = ack.min(self.last_responded);
        if ack > self.client_ack {
            self.client_ack = ack;
            self.prune_cache();
        }
        if ack < self.last_responded {
            let missing = ack + 1;
            if let Some(c) = self.cache.get(&missing) {
                if now.saturating_sub(c.sent_at) >= REPORT_AFTER && self.last_reported < missing {
                    self.report = Some(missing);
                    self.last_reported = missing;
                }
            }
        }
    }

    fn forward(&mut self, payload: Vec<Vec<u8>>, out: &mut Vec<Action>) {
        if self.awaiting_features {
            self.backlog.extend(payload);
        } else {
            out.extend(payload.into_iter().map(Action::ToServer));
        }
    }

    /// §13: deliver the payload, close the stream, acknowledge on the
    /// oldest open request, empty bodies on the others.
    fn client_terminate(
        &mut self,
        http: Option<RequestId>,
        payload: Vec<Vec<u8>>,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        if !self.server_gone {
            if !self.awaiting_features {
                out.extend(payload.into_iter().map(Action::ToServer));
            }
            out.push(Action::CloseStream);
        }
        let mut open: Vec<RequestId> = self.held.iter().filter_map(|h| h.http).collect();
        open.extend(http);
        open.extend(self.buffered.values().filter_map(|p| p.http));
        self.end_gracefully(open, EndReason::ClientTerminate, now, out);
    }

    fn end_gracefully(
        &mut self,
        open: Vec<RequestId>,
        reason: EndReason,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        let payload: Vec<Vec<u8>> = self.queue.drain(..).collect();
        for (i, r) in open.into_iter().enumerate() {
            let body = if i == 0 {
                render_body(&[("type", "terminate".to_string())], &payload, false)
            } else {
                render_body(&[], &[], false)
            };
            self.respond(r, 200, body, now, out);
        }
        out.push(Action::Ended(reason));
        self.finish();
    }

    /// Ends the session with `cond`. Open requests are answered in `rid`
    /// order, then `new` (a request that is not queued). If `culprit`,
    /// `new` caused it and carries `cond`, the others get `other-request`;
    /// otherwise the first carries `cond` (with queued payloads and the
    /// condition's element) and the others the bare condition.
    fn end_with(
        &mut self,
        cond: Condition,
        new: Option<RequestId>,
        culprit: bool,
        close_stream: bool,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        let mut open: Vec<RequestId> = self.held.iter().filter_map(|h| h.http).collect();
        open.extend(self.buffered.values().filter_map(|p| p.http));
        if let Some(n) = new {
            open.retain(|r| *r != n);
            open.push(n);
        }
        let carrier = if culprit { new } else { open.first().copied() };
        if carrier.is_none() && close_stream && !self.server_gone {
            // nobody to deliver queued stanzas to (XEP-0206 §7)
            self.bounce_queue(out);
        }
        let payload: Vec<Vec<u8>> = self.queue.drain(..).collect();
        for r in open {
            if Some(r) == carrier {
                let body = render_terminate(&cond, &payload);
                self.respond(r, cond.http_status(self.legacy), body, now, out);
            } else if culprit {
                self.respond(
                    r,
                    200,
                    render_terminate(&Condition::OtherRequest, &[]),
                    now,
                    out,
                );
            } else {
                let b = bare(&cond);
                self.respond(
                    r,
                    b.http_status(self.legacy),
                    render_terminate(&b, &[]),
                    now,
                    out,
                );
            }
        }
        if close_stream && !self.server_gone {
            out.push(Action::CloseStream);
        }
        out.push(Action::Terminated(cond));
        self.finish();
    }

    /// Tells the client about a server-side end, on the open requests plus
    /// `new`.
    fn deliver_terminal(&mut self, new: Option<RequestId>, now: Duration, out: &mut Vec<Action>) {
        match self.terminal.take() {
            Some(Terminal::Error(c)) => self.end_with(c, new, false, false, now, out),
            Some(Terminal::Closed) => {
                let mut open: Vec<RequestId> = self.held.iter().filter_map(|h| h.http).collect();
                open.extend(self.buffered.values().filter_map(|p| p.http));
                open.extend(new);
                self.end_gracefully(open, EndReason::ServerClosed, now, out);
            }
            None => {}
        }
    }

    /// XEP-0206 §7: errors to the server for queued stanzas that will not
    /// be delivered.
    fn bounce_queue(&mut self, out: &mut Vec<Action>) {
        let queued: Vec<Vec<u8>> = self.queue.drain(..).collect();
        self.pending_bytes = 0;
        out.extend(
            queued
                .iter()
                .filter_map(|el| recipient_unavailable(el))
                .map(Action::ToServer),
        );
    }

    fn prune_cache(&mut self) {
        // What the client acknowledged is no longer needed; beyond that,
        // the cache is bounded (oldest out first, the newest stays).
        while let Some((&rid, _)) = self.cache.first_key_value() {
            let len = self.cache.len();
            let over =
                len > CACHE_MAX_RESPONSES || (self.cache_bytes > self.max_pending_bytes && len > 1);
            if rid > self.client_ack && !over {
                break;
            }
            if let Some(c) = self.cache.remove(&rid) {
                self.cache_bytes -= c.body.len();
            }
        }
    }

    fn creation_attrs(&self) -> Vec<(&'static str, String)> {
        let mut a = vec![
            ("sid", self.sid.clone()),
            ("wait", self.wait.to_string()),
            ("requests", self.requests.to_string()),
            ("hold", self.hold.to_string()),
        ];
        if self.inactivity > 0 {
            a.push(("inactivity", self.inactivity.to_string()));
        }
        if self.polling > 0 {
            a.push(("polling", self.polling.to_string()));
        }
        if self.max_pause > 0 {
            a.push(("maxpause", self.max_pause.to_string()));
        }
        a.push(("ver", format!("{}.{}", self.ver.0, self.ver.1)));
        a.push(("to", self.to.clone()));
        if self.acks {
            a.push(("ack", self.creation_rid.to_string()));
        }
        a.push(("xmpp:version", "1.0".to_string()));
        a.push(("xmpp:restartlogic", "true".to_string()));
        a
    }

    /// Answers held requests that are due, oldest first (responses go out
    /// in `rid` order, §8).
    fn flush(&mut self, now: Duration, out: &mut Vec<Action>) {
        if self.ended {
            return;
        }
        let wait = Duration::from_secs(self.wait);
        // A request still waiting for a lower rid after `wait`: §17.3's
        // recoverable error asks the client to re-send the requests it has
        // no response for (the missing one). It keeps its place and
        // payload; a re-sent copy takes over its slot.
        let expired: Vec<RequestId> = self
            .buffered
            .values_mut()
            .filter(|p| p.http.is_some() && now >= p.since + wait)
            .filter_map(|p| p.http.take())
            .collect();
        for r in expired {
            self.respond(r, 200, recoverable_error_body(), now, out);
        }
        loop {
            while self.held.front().is_some_and(|h| h.http.is_none()) {
                let h = self.held.pop_front().expect("front exists");
                self.answer(h, now, out);
            }
            let Some(front) = self.held.front() else {
                break;
            };
            let due = self
                .held
                .iter()
                .any(|h| h.http.is_some() && (h.immediate || now >= h.since + wait));
            let data = !self.queue.is_empty() && !front.no_payload;
            if !(self.live_held() > self.hold as usize || data || due || self.report.is_some()) {
                break;
            }
            let h = self.held.pop_front().expect("front exists");
            self.answer(h, now, out);
        }
    }

    /// Builds, caches and (if the HTTP request is still there) sends the
    /// response for `h`.
    fn answer(&mut self, h: Held, now: Duration, out: &mut Vec<Action>) {
        let live = h.http.is_some();
        let mut attrs = if h.rid == self.creation_rid {
            self.creation_attrs()
        } else {
            let mut a = Vec::new();
            // §9.1: the highest rid received in sequence, unless it is the
            // rid being answered.
            let ack = self.next_rid - 1;
            if self.acks && ack != h.rid {
                a.push(("ack", ack.to_string()));
            }
            a
        };
        let mut payload = Vec::new();
        if live {
            attrs.append(&mut self.pending_attrs);
            if let Some(r) = self.report.take() {
                if let Some(c) = self.cache.get(&r) {
                    attrs.push(("report", r.to_string()));
                    attrs.push((
                        "time",
                        now.saturating_sub(c.sent_at).as_millis().to_string(),
                    ));
                }
            }
            if !h.no_payload {
                payload.extend(self.queue.drain(..));
                self.pending_bytes = 0;
            }
        }
        let body = render_body(&attrs, &payload, false);
        self.cache_bytes += body.len();
        if let Some(old) = self.cache.insert(
            h.rid,
            Cached {
                body: body.clone(),
                sent_at: now,
                key: h.key,
                resends: h.resends,
                had_payload: !payload.is_empty(),
            },
        ) {
            self.cache_bytes -= old.body.len();
        }
        self.last_responded = self.last_responded.max(h.rid);
        self.last_response_at = now;
        self.prune_cache();
        if let Some(r) = h.http {
            out.push(Action::Respond {
                request: r,
                status: 200,
                body,
            });
        }
    }
}
