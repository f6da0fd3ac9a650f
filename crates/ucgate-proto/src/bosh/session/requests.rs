//! The client's side of a session: the `rid` sequence and window,
//! re-sent requests, overactivity and polling, keys, acknowledgements and
//! reports, and answering held requests (responses in `rid` order, the
//! response cache).

use core::time::Duration;

use super::*;

pub(super) fn keys_equal(a: &Option<String>, b: &Option<String>) -> bool {
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
pub(super) fn resend_allowed(
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

impl Session {
    pub(super) fn respond(
        &mut self,
        request: RequestId,
        status: u16,
        body: String,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        self.seq.last_response_at = now;
        out.push(Action::Respond {
            request,
            status,
            body,
        });
    }

    /// A copy of a `rid` already processed: replay its response, or take
    /// over the held request (the old one gets an empty body).
    pub(super) fn resent_processed(
        &mut self,
        req: Request,
        request: RequestId,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        let rid = req.rid;
        let key_mode = self.seq.key.is_some();
        if let Some(c) = self.seq.cache.get_mut(&rid) {
            match resend_allowed(key_mode, &c.key, &req.key, &mut c.resends) {
                Ok(()) => {
                    let body = c.body.clone();
                    self.respond(request, 200, body, now, out);
                }
                Err(cond) => self.end_with(cond, Some(request), true, true, now, out),
            }
            return;
        }
        let Some(h) = self.seq.held.iter_mut().find(|h| h.rid == rid) else {
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
    pub(super) fn resent_buffered(
        &mut self,
        req: Request,
        request: RequestId,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        let key_mode = self.seq.key.is_some();
        let Some(p) = self.seq.buffered.get_mut(&req.rid) else {
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
    pub(super) fn took_over(
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
    pub(super) fn superseded_body(&self, rid: u64) -> String {
        let ack = self.seq.next_rid - 1;
        let attrs = if self.terms.acks && ack != rid {
            vec![("ack", ack.to_string())]
        } else {
            Vec::new()
        };
        render_body(&attrs, &[], false)
    }

    pub(super) fn new_request(
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
        let max = self.seq.next_rid - 1 + u64::from(self.terms.requests) + u64::from(extra);
        if rid > max {
            self.end_with(Condition::ItemNotFound, Some(request), true, true, now, out);
            return;
        }
        // §11 overactivity: more unanswered requests than `requests`
        // (one more if the last of them pauses or terminates).
        let outstanding = self.live_held() + self.live_buffered() + 1;
        let requests = self.terms.requests as usize;
        if outstanding > requests {
            let last_is_extra = match self.seq.buffered.last_key_value() {
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
        self.seq.buffered.insert(
            rid,
            Pending {
                http: Some(request),
                arrived: now,
                since: now,
                req,
                resends: 0,
            },
        );
        while let Some(p) = self.seq.buffered.remove(&self.seq.next_rid) {
            self.process(p, now, out);
            if self.ended {
                return;
            }
        }
    }

    /// Processes the next request in `rid` order.
    pub(super) fn process(&mut self, p: Pending, now: Duration, out: &mut Vec<Action>) {
        let Pending {
            http,
            arrived,
            since,
            req,
            resends,
        } = p;
        let rid = req.rid;
        // §15: the key chain, verified before anything else.
        if let Some(expected) = &self.seq.key {
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
            self.seq.key = Some(next);
        }
        // §10: pausing beyond maxpause (or when none was offered); §12:
        // empty requests more often than `polling`.
        let over_pause = req
            .pause
            .is_some_and(|p| self.terms.max_pause == 0 || p > self.terms.max_pause);
        let empty =
            req.payload.is_empty() && !req.restart && req.pause.is_none() && !req.is_terminate();
        if over_pause || (empty && self.terms.polling > 0 && self.too_frequent(rid, arrived)) {
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
        self.seq.next_rid = rid + 1;
        self.seq.prev = Some(Prev {
            rid,
            arrived,
            empty,
        });
        // §10: the inactivity period is back to normal on the next request.
        self.seq.pause_inactivity = None;
        if self.terms.acks {
            self.client_acked(req.ack.unwrap_or(rid - 1), now);
        }
        if req.is_terminate() {
            self.client_terminate(http, req.payload, now, out);
            return;
        }
        if req.restart {
            // XEP-0206 §5: the body SHOULD be empty; payloads are ignored.
            out.push(Action::RestartStream);
            self.stream.awaiting_features = true;
        } else {
            self.forward(req.payload, out);
        }
        self.seq.held.push_back(Held {
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
            for h in self.seq.held.iter_mut() {
                h.immediate = true;
            }
            self.seq.pause_inactivity = Some(Duration::from_secs(pause));
        }
    }

    /// §11 / §12: an empty request too soon after the previous one.
    pub(super) fn too_frequent(&self, rid: u64, arrived: Duration) -> bool {
        let Some(prev) = self.seq.prev else {
            return false;
        };
        if prev.rid + 1 != rid
            || arrived.abs_diff(prev.arrived) >= Duration::from_secs(self.terms.polling)
        {
            return false;
        }
        if self.terms.polling_session {
            // §12: two consecutive empty requests, the first answered
            // without payloads.
            prev.empty
                && self
                    .seq
                    .cache
                    .get(&prev.rid)
                    .is_some_and(|c| !c.had_payload)
        } else {
            // §11: `requests` unanswered requests, the last one empty.
            self.live_held() + 1 >= self.terms.requests as usize
        }
    }

    /// The client's `ack` (§9.2): trims the cache, and reports a response
    /// it has evidently not received.
    pub(super) fn client_acked(&mut self, ack: u64, now: Duration) {
        let ack = ack.min(self.seq.last_responded);
        if ack > self.seq.client_ack {
            self.seq.client_ack = ack;
            self.prune_cache();
        }
        if ack < self.seq.last_responded {
            let missing = ack + 1;
            if let Some(c) = self.seq.cache.get(&missing) {
                if now.saturating_sub(c.sent_at) >= REPORT_AFTER && self.seq.last_reported < missing
                {
                    self.seq.report = Some(missing);
                    self.seq.last_reported = missing;
                }
            }
        }
    }

    pub(super) fn forward(&mut self, payload: Vec<ParsedElement>, out: &mut Vec<Action>) {
        if self.stream.awaiting_features {
            self.stream.backlog.extend(payload);
        } else {
            out.extend(payload.into_iter().map(Action::ToServer));
        }
    }

    pub(super) fn prune_cache(&mut self) {
        // What the client acknowledged is no longer needed; beyond that,
        // the cache is bounded (oldest out first, the newest stays).
        while let Some((&rid, _)) = self.seq.cache.first_key_value() {
            let len = self.seq.cache.len();
            let over = len > CACHE_MAX_RESPONSES
                || (self.seq.cache_bytes > self.terms.max_pending_bytes && len > 1);
            if rid > self.seq.client_ack && !over {
                break;
            }
            if let Some(c) = self.seq.cache.remove(&rid) {
                self.seq.cache_bytes -= c.body.len();
            }
        }
    }

    pub(super) fn creation_attrs(&self) -> Vec<(&'static str, String)> {
        let mut a = vec![
            ("sid", self.sid.clone()),
            ("wait", self.terms.wait.to_string()),
            ("requests", self.terms.requests.to_string()),
            ("hold", self.terms.hold.to_string()),
        ];
        if self.terms.inactivity > 0 {
            a.push(("inactivity", self.terms.inactivity.to_string()));
        }
        if self.terms.polling > 0 {
            a.push(("polling", self.terms.polling.to_string()));
        }
        if self.terms.max_pause > 0 {
            a.push(("maxpause", self.terms.max_pause.to_string()));
        }
        a.push(("ver", format!("{}.{}", self.terms.ver.0, self.terms.ver.1)));
        a.push(("to", self.terms.to.clone()));
        if self.terms.acks {
            a.push(("ack", self.terms.creation_rid.to_string()));
        }
        a.push(("xmpp:version", "1.0".to_string()));
        a.push(("xmpp:restartlogic", "true".to_string()));
        a
    }

    /// Answers held requests that are due, oldest first (responses go out
    /// in `rid` order, §8).
    pub(super) fn flush(&mut self, now: Duration, out: &mut Vec<Action>) {
        if self.ended {
            return;
        }
        let wait = Duration::from_secs(self.terms.wait);
        // A request still waiting for a lower rid after `wait`: §17.3's
        // recoverable error asks the client to re-send the requests it has
        // no response for (the missing one). It keeps its place and
        // payload; a re-sent copy takes over its slot.
        let expired: Vec<RequestId> = self
            .seq
            .buffered
            .values_mut()
            .filter(|p| p.http.is_some() && now >= p.since + wait)
            .filter_map(|p| p.http.take())
            .collect();
        for r in expired {
            self.respond(r, 200, recoverable_error_body(), now, out);
        }
        loop {
            while self.seq.held.front().is_some_and(|h| h.http.is_none()) {
                let h = self.seq.held.pop_front().expect("front exists");
                self.answer(h, now, out);
            }
            let Some(front) = self.seq.held.front() else {
                break;
            };
            let due = self
                .seq
                .held
                .iter()
                .any(|h| h.http.is_some() && (h.immediate || now >= h.since + wait));
            let data = !self.stream.queue.is_empty() && !front.no_payload;
            if !(self.live_held() > self.terms.hold as usize
                || data
                || due
                || self.seq.report.is_some())
            {
                break;
            }
            let h = self.seq.held.pop_front().expect("front exists");
            self.answer(h, now, out);
        }
    }

    /// Builds, caches and (if the HTTP request is still there) sends the
    /// response for `h`.
    pub(super) fn answer(&mut self, h: Held, now: Duration, out: &mut Vec<Action>) {
        let live = h.http.is_some();
        let mut attrs = if h.rid == self.terms.creation_rid {
            self.creation_attrs()
        } else {
            let mut a = Vec::new();
            // §9.1: the highest rid received in sequence, unless it is the
            // rid being answered.
            let ack = self.seq.next_rid - 1;
            if self.terms.acks && ack != h.rid {
                a.push(("ack", ack.to_string()));
            }
            a
        };
        let mut payload = Vec::new();
        if live {
            attrs.append(&mut self.stream.pending_attrs);
            if let Some(r) = self.seq.report.take() {
                if let Some(c) = self.seq.cache.get(&r) {
                    attrs.push(("report", r.to_string()));
                    attrs.push((
                        "time",
                        now.saturating_sub(c.sent_at).as_millis().to_string(),
                    ));
                }
            }
            if !h.no_payload {
                payload.extend(self.stream.queue.drain(..));
                self.stream.pending_bytes = 0;
            }
        }
        let body = render_body(&attrs, &payload, false);
        self.seq.cache_bytes += body.len();
        if let Some(old) = self.seq.cache.insert(
            h.rid,
            Cached {
                body: body.clone(),
                sent_at: now,
                key: h.key,
                resends: h.resends,
                had_payload: !payload.is_empty(),
            },
        ) {
            self.seq.cache_bytes -= old.body.len();
        }
        self.seq.last_responded = self.seq.last_responded.max(h.rid);
        self.seq.last_response_at = now;
        self.prune_cache();
        if let Some(r) = h.http {
            out.push(Action::Respond {
                request: r,
                status: 200,
                body,
            });
        }
    }

    pub(super) fn live_held(&self) -> usize {
        self.seq.held.iter().filter(|h| h.http.is_some()).count()
    }

    pub(super) fn live_buffered(&self) -> usize {
        self.seq
            .buffered
            .values()
            .filter(|p| p.http.is_some())
            .count()
    }

    pub(super) fn has_open(&self) -> bool {
        self.live_held() > 0 || self.live_buffered() > 0
    }

    pub(super) fn inactivity_deadline(&self) -> Option<Duration> {
        if self.ended || self.has_open() {
            return None;
        }
        let period = match self.seq.pause_inactivity {
            Some(p) => p,
            None if self.terms.inactivity == 0 => return None,
            None => Duration::from_secs(self.terms.inactivity),
        };
        Some(self.seq.last_response_at + period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resend_must_carry_the_same_key_and_not_repeat_too_often() {
        let kept = Some("ABCDEF".to_string());
        let mut n = 0;
        assert_eq!(
            resend_allowed(true, &kept, &Some("abcdef".into()), &mut n),
            Ok(()),
            "keys compare without case"
        );
        assert_eq!(
            resend_allowed(true, &kept, &None, &mut n),
            Err(Condition::ItemNotFound)
        );
        assert_eq!(n, 1, "a refused copy is not counted");
        assert_eq!(
            resend_allowed(false, &kept, &None, &mut n),
            Ok(()),
            "no keys in use"
        );
        while n < MAX_RESENDS_PER_RID {
            assert_eq!(resend_allowed(false, &None, &None, &mut n), Ok(()));
        }
        assert_eq!(
            resend_allowed(false, &None, &None, &mut n),
            Err(Condition::PolicyViolation)
        );
    }
}
