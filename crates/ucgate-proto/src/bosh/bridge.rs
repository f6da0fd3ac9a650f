//! XEP-0206 on top of the RFC 7395 translator: one BOSH session's
//! [`Session`] (HTTP request rules) and the [`Translator`] that speaks to
//! the XMPP server (domain choice, STARTTLS, restarts, namespaces: the
//! same code as the WebSocket route), joined through typed events.
//!
//! Session actions become translator inputs (`OpenStream` and
//! `RestartStream` a [`ClientOpen`], each `ToServer` payload an element,
//! `CloseStream` the client's close); translator events become session
//! inputs (the stream's `<open/>` its `authid` and `from`, each element a
//! payload, the close or stream error the session's end, through
//! [`Condition::from_stream_end`]). No stanza is parsed on the way: body
//! parsing checked client payloads, the translator's splitter server ones.
//!
//! The glue keeps the mailbox, the socket to the server and the timers: it
//! carries out the [`Step`]s in order and reports what the server
//! connection did ([`Bridge::on_server`], [`Bridge::on_server_bytes`]).

use core::time::Duration;
use std::collections::VecDeque;

use super::body::{Request, Route};
use super::condition::{terminate_body, Condition};
use super::session::{Action, EndReason, RequestId, Session, SessionLimits};
use crate::side::Side;
use crate::xmpp_ws::{ClientEvent, ClientOpen, Output, ServerEvent, ServerTls, Translator};

/// What the glue must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Answer this HTTP request.
    Reply {
        /// The request.
        request: RequestId,
        /// HTTP status.
        status: u16,
        /// The `<body/>`.
        body: String,
        /// The session's Content-Type (`None`: no session, the default).
        content_type: Option<String>,
    },
    /// A server-side step of the translator: `Connect`, `ToServer`,
    /// `StartTls` or `CloseServer`; report what became of `Connect` and
    /// `StartTls` through [`Bridge::on_server`].
    Server(Output),
    /// A problem worth counting and a log line: (side, condition, detail).
    Log(Side, &'static str, String),
    /// The session is over (after the steps before): the label for metrics
    /// and logs. A later `End` replaces an earlier one.
    End(&'static str),
}

enum Work {
    Session(Action),
    Stream(Output),
}

/// One BOSH session and its server stream.
#[derive(Debug)]
pub struct Bridge {
    sid: String,
    limits: SessionLimits,
    session: Option<Session>,
    translator: Translator,
    /// The creation request's `to` and `xml:lang`, for restarts.
    to: String,
    lang: Option<String>,
    /// Once the drain has begun: when the session ends, and with what.
    drain: Option<(Duration, Condition)>,
}

impl Bridge {
    /// A bridge waiting for its creation request. `sid` must be
    /// unpredictable and unique (the glue's job).
    pub fn new(sid: String, limits: SessionLimits) -> Bridge {
        Bridge {
            sid,
            limits,
            session: None,
            translator: Translator::new(limits.xml, ServerTls::StartTls),
            to: String::new(),
            lang: None,
            drain: None,
        }
    }

    /// The session id.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// The session, once created.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// When [`Bridge::on_timeout`] is due next.
    pub fn next_deadline(&self) -> Option<Duration> {
        let session = self.session.as_ref().and_then(Session::next_deadline);
        match (session, &self.drain) {
            (Some(a), Some((b, _))) => Some(a.min(*b)),
            (a, drain) => a.or(drain.as_ref().map(|(b, _)| *b)),
        }
    }

    /// True while the server may be read (see
    /// [`Session::accepts_server_data`]).
    pub fn accepts_server_data(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(Session::accepts_server_data)
    }

    /// A request for the session. The first one creates it, honouring its
    /// `route` only where `allowed` says so (see
    /// [`Session::create_with_route`]); a refused creation is answered and
    /// ends with `creation-refused`.
    pub fn on_request(
        &mut self,
        req: Request,
        request: RequestId,
        now: Duration,
        allowed: &dyn Fn(&Route) -> bool,
    ) -> Vec<Step> {
        if let Some(s) = self.session.as_mut() {
            let actions = s.on_request(req, request, now);
            return self.run(actions, now);
        }
        match Session::create_with_route(
            &req,
            self.sid.clone(),
            &self.limits,
            request,
            now,
            allowed,
        ) {
            Ok((s, actions)) => {
                self.session = Some(s);
                self.run(actions, now)
            }
            Err((status, body)) => vec![
                Step::Reply {
                    request,
                    status,
                    body,
                    content_type: None,
                },
                Step::End("creation-refused"),
            ],
        }
    }

    /// A request naming the session whose body could not be parsed.
    pub fn on_bad_request(
        &mut self,
        request: RequestId,
        condition: Condition,
        now: Duration,
    ) -> Vec<Step> {
        match self.session.as_mut() {
            Some(s) => {
                let actions = s.on_bad_request(request, condition, now);
                self.run(actions, now)
            }
            None => {
                let (status, body) = terminate_body(&condition);
                vec![Step::Reply {
                    request,
                    status,
                    body,
                    content_type: None,
                }]
            }
        }
    }

    /// The HTTP client of an open request went away.
    pub fn on_request_gone(&mut self, request: RequestId, now: Duration) -> Vec<Step> {
        match self.session.as_mut() {
            Some(s) => {
                let actions = s.on_request_gone(request, now);
                self.run(actions, now)
            }
            None => Vec::new(),
        }
    }

    /// [`Bridge::next_deadline`] has passed.
    pub fn on_timeout(&mut self, now: Duration) -> Vec<Step> {
        if let Some((end, _)) = &self.drain {
            if now >= *end {
                let (_, condition) = self.drain.take().expect("checked");
                if self.session.as_ref().is_some_and(Session::is_ended) {
                    return Vec::new();
                }
                return self.shutdown(condition, now);
            }
        }
        match self.session.as_mut() {
            Some(s) => {
                let actions = s.on_timeout(now);
                self.run(actions, now)
            }
            None => Vec::new(),
        }
    }

    /// The gateway is shutting down: `system-shutdown` to the client's
    /// open requests, the server's stream closed.
    pub fn on_shutdown(&mut self, now: Duration) -> Vec<Step> {
        self.shutdown(Condition::SystemShutdown, now)
    }

    /// The gateway's drain has begun: the session goes on as before until
    /// `end` (the same clock as `now`; see
    /// [`DrainEnd`](super::drain::DrainEnd)), then its open requests get
    /// `condition` (`system-shutdown` or `see-other-uri`) and the server's
    /// stream is closed. An `end` that has come ends it now.
    pub fn on_drain(&mut self, now: Duration, end: Duration, condition: Condition) -> Vec<Step> {
        if now >= end {
            return self.shutdown(condition, now);
        }
        self.drain = Some((end, condition));
        Vec::new()
    }

    fn shutdown(&mut self, condition: Condition, now: Duration) -> Vec<Step> {
        let mut work: VecDeque<Work> = VecDeque::new();
        let mut first = Vec::new();
        match self.session.as_mut() {
            Some(s) => work.extend(
                s.on_shutdown_with(condition, now)
                    .into_iter()
                    .map(Work::Session),
            ),
            None => first.push(Step::End(condition.name())),
        }
        // (the translator's stream error has no client: the session tells it)
        work.extend(
            self.translator
                .on_shutdown()
                .into_iter()
                .filter(|o| !matches!(o, Output::ToClient(_)))
                .map(Work::Stream),
        );
        first.extend(self.drain(work, now));
        first
    }

    /// What became of a `Connect` or `StartTls` step, or the end of the
    /// connection to the server.
    pub fn on_server(&mut self, ev: ServerEvent, now: Duration) -> Vec<Step> {
        let out = self.translator.on_server(ev);
        self.stream(out, now)
    }

    /// Bytes from the server.
    pub fn on_server_bytes(&mut self, bytes: &[u8], now: Duration) -> Vec<Step> {
        let out = self.translator.on_server_bytes(bytes);
        self.stream(out, now)
    }

    /// The session is over: the server-side steps that end its stream
    /// (`</stream:stream>`, close).
    pub fn goodbye(&mut self) -> Vec<Output> {
        self.translator.on_client_gone()
    }

    fn run(&mut self, actions: Vec<Action>, now: Duration) -> Vec<Step> {
        self.drain(actions.into_iter().map(Work::Session).collect(), now)
    }

    fn stream(&mut self, out: Vec<Output>, now: Duration) -> Vec<Step> {
        self.drain(out.into_iter().map(Work::Stream).collect(), now)
    }

    /// Carries out session actions and translator outputs in order; what
    /// each produces goes to the back of the line.
    fn drain(&mut self, mut work: VecDeque<Work>, now: Duration) -> Vec<Step> {
        let mut steps = Vec::new();
        while let Some(w) = work.pop_front() {
            match w {
                Work::Session(a) => {
                    let more = self.session_action(a, &mut steps);
                    work.extend(more.into_iter().map(Work::Stream));
                }
                Work::Stream(Output::ToClient(ev)) => {
                    let more = self.client_event(ev, now);
                    work.extend(more.into_iter().map(Work::Session));
                }
                Work::Stream(Output::CloseClient(_)) => {}
                Work::Stream(Output::Log(side, condition, detail)) => {
                    steps.push(Step::Log(side, condition, detail));
                }
                Work::Stream(o) => steps.push(Step::Server(o)),
            }
        }
        steps
    }

    /// A session action: a step for the glue, or the translator's outputs.
    fn session_action(&mut self, a: Action, steps: &mut Vec<Step>) -> Vec<Output> {
        let t = &mut self.translator;
        match a {
            Action::Respond {
                request,
                status,
                body,
            } => {
                steps.push(Step::Reply {
                    request,
                    status,
                    body,
                    content_type: self.session.as_ref().map(|s| s.content_type().to_string()),
                });
                Vec::new()
            }
            Action::ToServer(el) => t.on_client_element(el),
            Action::OpenStream { to, lang, from } => {
                let out = t.on_client_open(&ClientOpen {
                    to: Some(&to),
                    version: Some("1.0"),
                    lang: lang.as_deref(),
                    from: from.as_deref(),
                });
                self.to = to;
                self.lang = lang;
                out
            }
            Action::RestartStream => t.on_client_open(&ClientOpen {
                to: Some(&self.to),
                version: Some("1.0"),
                lang: self.lang.as_deref(),
                from: None,
            }),
            Action::CloseStream => t.on_client_close(),
            Action::Terminated(c) => {
                steps.push(Step::End(c.name()));
                Vec::new()
            }
            Action::Ended(reason) => {
                steps.push(Step::End(match reason {
                    EndReason::ClientTerminate => "normal",
                    EndReason::Inactivity => "inactivity",
                    EndReason::ServerClosed => "server_closed",
                }));
                Vec::new()
            }
        }
    }

    /// A translator event for the client: what the session makes of it.
    fn client_event(&mut self, ev: ClientEvent, now: Duration) -> Vec<Action> {
        let Some(s) = self.session.as_mut() else {
            return Vec::new();
        };
        match ev {
            ClientEvent::Open(open) if open.negotiated => {
                s.on_stream_open(open.id.unwrap_or_default(), Some(open.from), now)
            }
            // the stream failed before the server opened it: the error and
            // the close follow; no creation response
            ClientEvent::Open(_) => Vec::new(),
            ClientEvent::Element(el) => s.on_server_stanza(el.into_bytes(), now),
            // the close that follows ends the session
            ClientEvent::Error(_) => Vec::new(),
            ClientEvent::Close => {
                match self.translator.end().and_then(Condition::from_stream_end) {
                    Some(c) => s.on_server_error(c, now),
                    None => s.on_server_close(now),
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "bridge_tests.rs"]
mod tests;
