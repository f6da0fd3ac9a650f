//! The strict element checker (`ucgate_proto::xml::validate`), the gate for
//! every WebSocket text message from an XMPP client.
//!
//! Input: a limits byte, then the message (lossy UTF-8: a WebSocket text
//! message is always valid UTF-8).
//!
//! Invariants: an accepted message is accepted again under looser limits
//! and refused under `max_bytes` one byte smaller than the message; its
//! top-level tag is the first thing in it, and it is in a namespace; and
//! the server-side splitter, given the same element inside a stream, cuts
//! out exactly that element (the two parsers agree on where it ends).

use crate::input::Input;
use ucgate_proto::xml::splitter::{Event, Splitter};
use ucgate_proto::xml::validate::check_element;
use ucgate_proto::xml::Limits;

const HEADER: &str =
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

/// The target body.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let sel = input.u8();
    let limits = Limits {
        max_bytes: [128, 1024, 64 * 1024][usize::from(sel % 3)],
        max_depth: usize::from(sel >> 2 & 0x7) + 1,
        max_attributes: usize::from(sel >> 5) * 2,
    };
    let msg = String::from_utf8_lossy(input.rest());
    let Ok(checked) = check_element(&msg, &limits) else {
        return;
    };
    let loose = Limits {
        max_bytes: usize::MAX,
        max_depth: usize::MAX,
        max_attributes: usize::MAX,
    };
    assert_eq!(check_element(&msg, &loose), Ok(checked.clone()));
    let tight = Limits {
        max_bytes: msg.len() - 1,
        ..limits
    };
    assert!(check_element(&msg, &tight).is_err());
    assert!(
        !checked.ns.is_empty(),
        "top-level element without a namespace"
    );
    let trimmed = msg.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
    assert!(trimmed[1..].starts_with(&checked.tag.name));

    let mut s = Splitter::new(usize::MAX / 2);
    s.feed(HEADER.as_bytes());
    s.feed(trimmed.as_bytes());
    assert!(matches!(s.next_event(), Ok(Some(Event::Header(_)))));
    assert_eq!(
        s.next_event(),
        Ok(Some(Event::Element(trimmed.as_bytes().to_vec()))),
        "the splitter and the validator disagree on the element"
    );
    assert_eq!(s.buffered(), 0);
}
