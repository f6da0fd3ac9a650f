//! Whether a SIP flow has a call in progress, for the drain: a connection
//! without one is closed at its turn, one with a call waits for the call to
//! end (see `docs/sip.md`, "The drain").
//!
//! A call in progress is an INVITE dialog being set up or established and
//! not yet ended, in either direction. [`Calls`] is fed every message the
//! flow passes, both ways, and keeps the Call-IDs of such dialogs:
//!
//! | message | effect |
//! |---|---|
//! | INVITE | its Call-ID in progress (being set up; a re-INVITE: established) |
//! | 2xx to an INVITE | established (also after a CANCEL that crossed it) |
//! | 3xx–6xx to an INVITE | a call being set up ends; an established one ends only on 481 or 408 (RFC 5057 §5.1: the dialog is gone), a failed re-INVITE leaves it |
//! | CANCEL | a call being set up ends (its INVITE gets 487) |
//! | BYE | the call ends (RFC 3261 §15: whatever the response) |
//!
//! Calls are told apart by Call-ID alone (forks of one INVITE are one
//! call). At most [`MAX_CALLS`] are kept: beyond, a new INVITE is not
//! recorded, which the drain cannot tell from the calls already there
//! (the flow has a call either way). A call whose BYE never passes
//! through this flow keeps it open until the end of the drain spread, no
//! longer.

use super::message::Message;

/// Most calls recorded per flow.
pub const MAX_CALLS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    SettingUp,
    Established,
}

/// The calls in progress on one flow.
#[derive(Debug, Default, Clone)]
pub struct Calls {
    calls: Vec<(Vec<u8>, State)>,
}

impl Calls {
    /// No call yet.
    pub fn new() -> Calls {
        Calls::default()
    }

    /// True while a call is in progress.
    pub fn in_progress(&self) -> bool {
        !self.calls.is_empty()
    }

    /// How many calls are recorded.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// True with no call recorded.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// A message the flow passed, in either direction.
    pub fn on_message(&mut self, msg: &Message<'_>) {
        let Some(call_id) = msg.call_id() else {
            return;
        };
        let at = self.calls.iter().position(|(c, _)| c == call_id);
        let setting_up = at.is_some_and(|i| self.calls[i].1 == State::SettingUp);
        let room = self.calls.len() < MAX_CALLS;
        let invite_response = msg.cseq().is_some_and(|(_, m)| m == b"INVITE");
        match (msg.method(), msg.status(), at) {
            (Some("INVITE"), _, None) if room => {
                let state = match msg.to_tag() {
                    Some(_) => State::Established,
                    None => State::SettingUp,
                };
                self.calls.push((call_id.to_vec(), state));
            }
            (Some("BYE"), _, Some(i)) => self.forget(i),
            (Some("CANCEL"), _, Some(i)) if setting_up => self.forget(i),
            (None, Some(200..=299), Some(i)) if invite_response => {
                self.calls[i].1 = State::Established
            }
            (None, Some(200..=299), None) if invite_response && room => {
                self.calls.push((call_id.to_vec(), State::Established))
            }
            // RFC 5057 §5.1: 481 and 408 end the dialog; another error
            // only the INVITE transaction
            (None, Some(300..), Some(i))
                if invite_response && (setting_up || matches!(msg.status(), Some(408 | 481))) =>
            {
                self.forget(i)
            }
            _ => {}
        }
    }

    /// Whether a message, as bytes, can change the calls: an INVITE, BYE or
    /// CANCEL request, or a response naming INVITE (in its CSeq). A cheap
    /// look that spares parsing the messages the glue would parse for this
    /// alone (MESSAGE, REGISTER, OPTIONS and their responses, most of them).
    pub fn may_concern(bytes: &[u8]) -> bool {
        if bytes.starts_with(b"SIP/2.0 ") {
            return bytes.windows(6).any(|w| w == b"INVITE");
        }
        [&b"INVITE "[..], b"BYE ", b"CANCEL "]
            .iter()
            .any(|m| bytes.starts_with(m))
    }

    fn forget(&mut self, i: usize) {
        self.calls.swap_remove(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{parse, SipLimits};

    fn request(method: &str, call: &str, to_tag: bool) -> String {
        let tag = if to_tag { ";tag=b" } else { "" };
        format!(
            "{method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bK1\r\n\
             Max-Forwards: 70\r\nTo: <sip:bob@example.com>{tag}\r\nFrom: <sip:alice@example.com>;tag=a\r\n\
             Call-ID: {call}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        )
    }

    fn response(code: u16, method: &str, call: &str) -> String {
        format!(
            "SIP/2.0 {code} X\r\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bK1\r\n\
             To: <sip:bob@example.com>;tag=b\r\nFrom: <sip:alice@example.com>;tag=a\r\n\
             Call-ID: {call}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        )
    }

    fn feed(calls: &mut Calls, text: &str) {
        let limits = SipLimits::UNLIMITED;
        let msg = parse(text.as_bytes(), &limits).unwrap_or_else(|e| panic!("{e:?}: {text}"));
        calls.on_message(&msg);
    }

    #[test]
    fn a_call_is_in_progress_from_its_invite_to_its_bye() {
        let mut c = Calls::new();
        assert!(!c.in_progress());
        feed(&mut c, &request("REGISTER", "r1", false));
        feed(&mut c, &response(200, "REGISTER", "r1"));
        feed(&mut c, &request("MESSAGE", "m1", false));
        assert!(!c.in_progress(), "no INVITE, no call");
        feed(&mut c, &request("INVITE", "c1", false));
        assert!(c.in_progress(), "being set up");
        feed(&mut c, &response(180, "INVITE", "c1"));
        feed(&mut c, &response(200, "INVITE", "c1"));
        feed(&mut c, &request("ACK", "c1", true));
        feed(&mut c, &request("INVITE", "c1", true));
        feed(&mut c, &response(488, "INVITE", "c1"));
        assert!(c.in_progress(), "a failed re-INVITE leaves the call");
        feed(&mut c, &request("BYE", "c1", true));
        assert!(!c.in_progress());
        feed(&mut c, &response(200, "BYE", "c1"));
        assert!(!c.in_progress());
    }

    #[test]
    fn a_call_that_fails_or_is_cancelled_ends() {
        let mut c = Calls::new();
        feed(&mut c, &request("INVITE", "c1", false));
        feed(&mut c, &response(486, "INVITE", "c1"));
        assert!(!c.in_progress(), "busy");
        feed(&mut c, &request("INVITE", "c2", false));
        feed(&mut c, &request("CANCEL", "c2", false));
        assert!(!c.in_progress(), "cancelled");
        feed(&mut c, &response(487, "INVITE", "c2"));
        assert!(!c.in_progress());
        // a 200 that crossed the CANCEL: the call is up after all
        feed(&mut c, &response(200, "INVITE", "c2"));
        assert!(c.in_progress());
        feed(&mut c, &request("CANCEL", "c2", false));
        assert!(c.in_progress(), "too late to cancel an established call");
        feed(&mut c, &response(481, "INVITE", "c2"));
        assert!(!c.in_progress(), "481: the dialog is gone");
    }

    #[test]
    fn calls_are_counted_by_call_id_and_bounded() {
        let mut c = Calls::new();
        feed(&mut c, &request("INVITE", "a", false));
        feed(&mut c, &request("INVITE", "a", false));
        feed(&mut c, &request("INVITE", "b", false));
        assert_eq!(c.len(), 2, "a retransmission is the same call");
        feed(&mut c, &request("BYE", "a", true));
        assert_eq!(c.len(), 1);
        feed(&mut c, &request("BYE", "zzz", true));
        assert_eq!(c.len(), 1, "a BYE of no known call changes nothing");
        for i in 0..40 {
            feed(&mut c, &request("INVITE", &format!("x{i}"), false));
        }
        assert_eq!(c.len(), MAX_CALLS);
        for i in 0..40 {
            feed(&mut c, &request("BYE", &format!("x{i}"), true));
        }
        assert_eq!(c.len(), 1);
        feed(&mut c, &request("BYE", "b", true));
        assert!(c.is_empty());
    }

    #[test]
    fn only_messages_that_can_change_the_calls_need_parsing() {
        for (text, concerns) in [
            (request("INVITE", "c1", false), true),
            (request("BYE", "c1", true), true),
            (request("CANCEL", "c1", false), true),
            (response(200, "INVITE", "c1"), true),
            (response(487, "INVITE", "c1"), true),
            (request("MESSAGE", "c1", false), false),
            (request("REGISTER", "c1", false), false),
            (request("ACK", "c1", true), false),
            (response(200, "MESSAGE", "c1"), false),
            (response(200, "BYE", "c1"), false),
        ] {
            assert_eq!(Calls::may_concern(text.as_bytes()), concerns, "{text}");
            // What is skipped really changes nothing.
            if !concerns {
                let mut calls = Calls::new();
                feed(&mut calls, &request("INVITE", "c1", false));
                let before = calls.clone();
                feed(&mut calls, &text);
                assert_eq!(calls.calls, before.calls, "{text}");
            }
        }
    }
}
