//! Creating a session from its creation request (XEP-0124 §7.1, XEP-0206
//! §3): the terms agreed, or the refusal.

use core::time::Duration;

use super::*;

/// `<stream:error/>` for a client asking for a pre-1.0 XMPP stream.
fn unsupported_version() -> String {
    format!("<stream:error xmlns:stream='{NS_STREAMS}'><unsupported-version xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>")
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
            route,
            secure: false,
            ended: false,
            terms: Terms {
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
            },
            seq: Sequence {
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
            },
            stream: Stream {
                queue: VecDeque::new(),
                pending_bytes: 0,
                backlog: req.payload.clone(),
                awaiting_features: true,
                opened_once: false,
                pending_attrs: Vec::new(),
                server_gone: false,
                terminal: None,
            },
        };
        let mut out = vec![Action::OpenStream {
            to: s.terms.to.clone(),
            lang: req.lang.clone(),
            from: req.from.clone(),
        }];
        s.seq.held.push_back(Held {
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
}
