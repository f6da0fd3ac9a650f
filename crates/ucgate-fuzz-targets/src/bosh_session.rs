//! One BOSH session (`ucgate_proto::bosh::Session`) driven by a sequence of
//! client requests, server events and timer firings decoded from the input,
//! with explicit time.
//!
//! Server elements are well-formed (the server is trusted to send
//! well-formed XML; the splitter only finds the element boundaries).
//!
//! Input: a limits byte, a creation byte, then operations: an opcode byte,
//! a time step byte (×100 ms), and the operation's own bytes (see `step`).
//!
//! Invariants: every HTTP request is answered at most once, only while it
//! is open (issued, not yet answered, not gone); every response body is a
//! `<body/>` that parses; the session ends at most once, and an ended
//! session does nothing but answer new requests with `item-not-found`; no
//! deadline is asked for once it has ended; and at shutdown every open
//! request gets its answer.

use crate::input::Input;
use std::collections::BTreeSet;
use std::time::Duration;
use ucgate_proto::bosh::sha1::sha1_hex;
use ucgate_proto::bosh::{
    parse_request, parse_response, peek_sid, Action, Condition, Request, RequestId, Session,
    SessionLimits,
};
use ucgate_proto::xml::tag::ParsedElement;
use ucgate_proto::xml::validate::check_element;
use ucgate_proto::xml::Limits;

const SID: &str = "s1";
const PAYLOADS: &[&str] = &[
    "<message xmlns='jabber:client' to='bob@localhost'><body>hi</body></message>",
    "<presence xmlns='jabber:client'/>",
    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>",
];
const SERVER: &[&str] = &[
    "<stream:features xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>",
    "<message xmlns='jabber:client' from='bob@localhost'><body>yo</body></message>",
    "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
    "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
];
const KEYS: usize = 8;

struct Harness {
    session: Session,
    now: Duration,
    next_request: RequestId,
    open: BTreeSet<RequestId>,
    gone: BTreeSet<RequestId>,
    answered: BTreeSet<RequestId>,
    ended: bool,
    next_rid: u64,
    keys: Vec<String>,
}

impl Harness {
    fn issue(&mut self) -> RequestId {
        self.next_request += 1;
        self.open.insert(self.next_request);
        self.next_request
    }

    fn check(&mut self, actions: Vec<Action>) {
        let loose = Limits {
            max_bytes: usize::MAX,
            max_depth: usize::MAX,
            max_attributes: usize::MAX,
        };
        let was_ended = self.ended;
        for a in actions {
            match a {
                Action::Respond { request, body, .. } => {
                    assert!(
                        self.open.remove(&request),
                        "answered request {request} that is not open (gone: {}, answered: {})",
                        self.gone.contains(&request),
                        self.answered.contains(&request)
                    );
                    self.answered.insert(request);
                    if let Err(e) = parse_response(body.as_bytes(), &loose) {
                        panic!("response {body:?} does not parse: {e}");
                    }
                    if was_ended {
                        assert!(body.contains("item-not-found"), "{body}");
                    }
                }
                Action::Terminated(_) | Action::Ended(_) => {
                    assert!(!self.ended, "the session ended twice");
                    self.ended = true;
                    assert!(self.session.is_ended());
                }
                other => assert!(!was_ended, "{other:?} after the session ended"),
            }
        }
        if self.ended {
            assert_eq!(self.session.next_deadline(), None);
        }
    }

    fn request(&mut self, input: &mut Input<'_>) -> Request {
        let flags = input.u8();
        let delta = i64::from(input.u8() as i8);
        let rid = (self.next_rid as i64 + delta).max(1) as u64;
        self.next_rid = self.next_rid.max(rid + 1);
        let mut req = Request::new(rid);
        req.sid = Some(if flags & 1 == 0 { SID } else { "other" }.to_string());
        for i in 0..(flags >> 1 & 3) {
            let p = PAYLOADS[(usize::from(flags) + usize::from(i)) % PAYLOADS.len()];
            req.payload
                .push(ParsedElement::parse(p).expect("a valid payload"));
        }
        if flags & 8 != 0 {
            req.ack = Some(rid.saturating_sub(u64::from(input.u8() % 4)).max(1));
        }
        if flags & 16 != 0 {
            req.pause = Some(u64::from(input.u8()));
        }
        if flags & 32 != 0 {
            req.restart = true;
        }
        if flags & 64 != 0 {
            req.key = self.keys.pop();
        }
        if flags == 0xff {
            req.type_ = Some(ucgate_proto::bosh::BodyType::Terminate);
        }
        req
    }

    fn step(&mut self, input: &mut Input<'_>) {
        let op = input.u8();
        self.now += Duration::from_millis(u64::from(input.u8()) * 100);
        let now = self.now;
        let actions = match op % 11 {
            0 => {
                let req = self.request(input);
                let id = self.issue();
                self.session.on_request(req, id, now)
            }
            1 => {
                let body = input.chunk();
                let id = self.issue();
                match parse_request(body, &Limits::default()) {
                    Ok(req) => self.session.on_request(req, id, now),
                    Err(e) if peek_sid(body).as_deref() == Some(SID) => {
                        self.session.on_bad_request(id, e.condition(), now)
                    }
                    Err(_) => {
                        self.open.remove(&id);
                        Vec::new()
                    }
                }
            }
            2 => {
                let n = usize::from(input.u8() % 4) + 1;
                let els = (0..n)
                    .map(|_| {
                        SERVER[usize::from(input.u8()) % SERVER.len()]
                            .as_bytes()
                            .to_vec()
                    })
                    .collect();
                self.session.on_server_elements(els, now)
            }
            3 => {
                // The XMPP server is trusted to send well-formed XML (the
                // splitter only finds element boundaries): a raw element
                // from the input is used only if it is one.
                let raw = input.chunk();
                let ok = std::str::from_utf8(raw)
                    .is_ok_and(|s| check_element(s, &Limits::default()).is_ok());
                if !ok {
                    return;
                }
                self.session.on_server_element(raw.to_vec(), now)
            }
            4 => self.session.on_server_close(now),
            5 => {
                let c = [
                    Condition::RemoteConnectionFailed,
                    Condition::HostGone,
                    Condition::SystemShutdown,
                    Condition::RemoteStreamError(None),
                ];
                self.session
                    .on_server_error(c[usize::from(input.u8()) % c.len()].clone(), now)
            }
            6 => {
                let known: Vec<RequestId> = self.open.iter().copied().collect();
                if known.is_empty() {
                    return;
                }
                let id = known[usize::from(input.u8()) % known.len()];
                self.open.remove(&id);
                self.gone.insert(id);
                self.session.on_request_gone(id, now)
            }
            7 => self
                .session
                .on_stream_open("srv1".into(), Some("localhost".into()), now),
            8 => self.session.on_timeout(now),
            9 => {
                if let Some(d) = self.session.next_deadline() {
                    self.now = self.now.max(d);
                }
                self.session.on_timeout(self.now)
            }
            _ => {
                self.session.set_secure_transport(input.u8() & 1 == 1);
                Vec::new()
            }
        };
        self.check(actions);
    }
}

/// The target body.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let sel = input.u8();
    let limits = SessionLimits {
        max_hold: u32::from(sel & 3),
        max_requests: u32::from(sel >> 2 & 3) + 1,
        polling: Duration::from_secs(u64::from(sel >> 4 & 1) * 2),
        max_pause: Duration::from_secs(u64::from(sel >> 5 & 1) * 120),
        inactivity: Duration::from_secs(u64::from(sel >> 6 & 1) * 60),
        max_pending_bytes: if sel & 0x80 != 0 { 200 } else { 1 << 20 },
        ..SessionLimits::default()
    };
    let create = input.u8();
    let rid = u64::from(input.u16()) + 1;
    let mut req = Request::new(rid);
    req.to = Some("localhost".into());
    req.wait = Some(u64::from(input.u8() % 8) * 10);
    req.hold = Some(u32::from(create & 3));
    if create & 4 != 0 {
        req.ver = Some((1, 11));
    }
    if create & 8 != 0 {
        req.ack = Some(1);
    }
    if create & 16 != 0 {
        req.xmpp_version = Some((1, 0));
    }
    if create & 32 != 0 {
        req.payload
            .push(ParsedElement::parse(PAYLOADS[0]).expect("a valid payload"));
    }
    let mut keys: Vec<String> = Vec::new();
    if create & 64 != 0 {
        let mut k = "fuzz".to_string();
        for _ in 0..KEYS {
            k = sha1_hex(k.as_bytes());
            keys.push(k.clone());
        }
        // The last key of the chain is sent first (as `newkey`); each
        // request then sends the one before it.
        req.newkey = keys.pop();
    }
    let now = Duration::ZERO;
    let Ok((session, actions)) = Session::create(&req, SID.into(), &limits, 1, now) else {
        return;
    };
    let mut h = Harness {
        session,
        now,
        next_request: 1,
        open: BTreeSet::from([1]),
        gone: BTreeSet::new(),
        answered: BTreeSet::new(),
        ended: false,
        next_rid: rid + 1,
        keys,
    };
    h.check(actions);
    let mut steps = 0;
    while !input.is_empty() && steps < 200 {
        h.step(&mut input);
        steps += 1;
    }
    let actions = h.session.on_shutdown(h.now);
    h.check(actions);
    if !h.ended {
        panic!("the session did not end at shutdown");
    }
    assert!(
        h.open.is_empty(),
        "requests left unanswered at shutdown: {:?}",
        h.open
    );
}
