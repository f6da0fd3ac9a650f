//! How a session ends: the client's terminate, a server-side end told to
//! the client, errors, and stanzas that can no longer be delivered
//! (XEP-0206 §7).

use core::time::Duration;

use super::*;

/// The condition without the element it carries (for the extra requests
/// answered along with the one that carries it).
pub(super) fn bare(c: &Condition) -> Condition {
    match c {
        Condition::RemoteStreamError(_) => Condition::RemoteStreamError(None),
        c => c.clone(),
    }
}

impl Session {
    pub(super) fn finish(&mut self) {
        self.ended = true;
        self.seq.held.clear();
        self.seq.buffered.clear();
        self.seq.cache.clear();
        self.seq.cache_bytes = 0;
        self.stream.queue.clear();
        self.stream.backlog.clear();
        self.stream.pending_bytes = 0;
        self.stream.terminal = None;
    }

    /// §13: deliver the payload, close the stream, acknowledge on the
    /// oldest open request, empty bodies on the others.
    pub(super) fn client_terminate(
        &mut self,
        http: Option<RequestId>,
        payload: Vec<ParsedElement>,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        if !self.stream.server_gone {
            if !self.stream.awaiting_features {
                out.extend(payload.into_iter().map(Action::ToServer));
            }
            out.push(Action::CloseStream);
        }
        let mut open: Vec<RequestId> = self.seq.held.iter().filter_map(|h| h.http).collect();
        open.extend(http);
        open.extend(self.seq.buffered.values().filter_map(|p| p.http));
        self.end_gracefully(open, EndReason::ClientTerminate, now, out);
    }

    pub(super) fn end_gracefully(
        &mut self,
        open: Vec<RequestId>,
        reason: EndReason,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        let payload: Vec<Vec<u8>> = self.stream.queue.drain(..).collect();
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
    pub(super) fn end_with(
        &mut self,
        cond: Condition,
        new: Option<RequestId>,
        culprit: bool,
        close_stream: bool,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        let mut open: Vec<RequestId> = self.seq.held.iter().filter_map(|h| h.http).collect();
        open.extend(self.seq.buffered.values().filter_map(|p| p.http));
        if let Some(n) = new {
            open.retain(|r| *r != n);
            open.push(n);
        }
        let carrier = if culprit { new } else { open.first().copied() };
        if carrier.is_none() && close_stream && !self.stream.server_gone {
            // nobody to deliver queued stanzas to (XEP-0206 §7)
            self.bounce_queue(out);
        }
        let payload: Vec<Vec<u8>> = self.stream.queue.drain(..).collect();
        for r in open {
            if Some(r) == carrier {
                let body = render_terminate(&cond, &payload);
                self.respond(r, cond.http_status(self.terms.legacy), body, now, out);
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
                    b.http_status(self.terms.legacy),
                    render_terminate(&b, &[]),
                    now,
                    out,
                );
            }
        }
        if close_stream && !self.stream.server_gone {
            out.push(Action::CloseStream);
        }
        out.push(Action::Terminated(cond));
        self.finish();
    }

    /// Tells the client about a server-side end, on the open requests plus
    /// `new`.
    pub(super) fn deliver_terminal(
        &mut self,
        new: Option<RequestId>,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        match self.stream.terminal.take() {
            Some(Terminal::Error(c)) => self.end_with(c, new, false, false, now, out),
            Some(Terminal::Closed) => {
                let mut open: Vec<RequestId> =
                    self.seq.held.iter().filter_map(|h| h.http).collect();
                open.extend(self.seq.buffered.values().filter_map(|p| p.http));
                open.extend(new);
                self.end_gracefully(open, EndReason::ServerClosed, now, out);
            }
            None => {}
        }
    }

    /// XEP-0206 §7: errors to the server for queued stanzas that will not
    /// be delivered.
    pub(super) fn bounce_queue(&mut self, out: &mut Vec<Action>) {
        let queued: Vec<Vec<u8>> = self.stream.queue.drain(..).collect();
        self.stream.pending_bytes = 0;
        out.extend(
            queued
                .iter()
                .filter_map(|el| recipient_unavailable(el))
                .map(Action::ToServer),
        );
    }
}
