//! The SIP scanner, validator and editor (`ucgate_proto::sip::message`) and
//! the stream framing (`ucgate_proto::sip::framing`).
//!
//! Input: a mode byte (datagram or not, limits, chunk size), then the
//! message (or, for framing, the stream).
//!
//! Invariants: scanned spans lie inside the message; a message that parses
//! survives an identity edit (the edited message parses, with the same
//! start line, headers and body, and editing it again changes nothing) and
//! an edit that puts a new Via on top and removes the old top Via value;
//! a refused request's error response is a response with the error's
//! status; framing never returns a message over the limit nor more bytes
//! than it was given.

use crate::input::Input;
use ucgate_proto::sip::framing::{Frame, StreamSplitter};
use ucgate_proto::sip::message::{
    error_response, parse, parse_datagram, scan, Message, SipLimits, StartLine,
};

const VIA: &[u8] = b"SIP/2.0/TCP core.example:5060;branch=z9hG4bKfuzz";

fn limits(sel: u8) -> SipLimits {
    match sel & 3 {
        0 => SipLimits::default(),
        1 => SipLimits {
            max_message: 512,
            max_headers: 8,
            max_line: 128,
        },
        2 => SipLimits {
            max_message: 4096,
            max_headers: 32,
            max_line: 1024,
        },
        _ => SipLimits::UNLIMITED,
    }
}

fn reparse(bytes: &[u8]) -> Message<'_> {
    match parse(bytes, &SipLimits::UNLIMITED) {
        Ok(m) => m,
        Err(e) => panic!(
            "edited message does not parse ({e}):\n{}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

fn start_line<'a>(m: &Message<'a>) -> (Option<&'a str>, Option<&'a [u8]>, Option<u16>) {
    let uri = match m.start_line() {
        StartLine::Request { uri, .. } => Some(*uri),
        StartLine::Response { .. } => None,
    };
    (m.method(), uri, m.status())
}

fn check_message(bytes: &[u8], lim: &SipLimits, datagram: bool) {
    let parsed = if datagram {
        parse_datagram(bytes, lim)
    } else {
        parse(bytes, lim)
    };
    let m = match parsed {
        Ok(m) => m,
        Err(e) => {
            if let Some(resp) = error_response(bytes, lim, &e, "fuzztag") {
                let r = scan(&resp, &SipLimits::UNLIMITED).expect("error responses scan");
                assert_eq!(r.status(), e.status().map(|(code, _)| code));
            }
            return;
        }
    };
    for h in m.headers() {
        assert!(h.name.end <= bytes.len() && h.value.end <= bytes.len());
        assert!(h.line.start <= h.name.start && h.value.end <= h.line.end);
    }
    assert!(m.body().len() <= bytes.len());

    let once = m.edit().finish();
    let e = reparse(&once);
    // Same start line (its spans move: leading CRLFs are not copied).
    assert_eq!(start_line(&e), start_line(&m));
    assert_eq!(e.body(), m.body());
    assert_eq!(e.call_id(), m.call_id());
    assert_eq!(e.cseq(), m.cseq());
    assert_eq!(e.content_length(), Some(m.body().len()));
    let twice = e.edit().finish();
    assert_eq!(twice, once, "an identity edit is not idempotent");

    let vias = m.values("Via");
    let mut ed = m.edit();
    ed.prepend_top("Via", VIA);
    if let Some(top) = vias.first() {
        ed.remove_value(top);
    }
    let edited = ed.finish();
    let e = reparse(&edited);
    let top = e.top_via().expect("our Via parses");
    assert_eq!(top.branch(), Some(&b"z9hG4bKfuzz"[..]));
    assert_eq!(e.values("Via").len(), vias.len().max(1));
}

/// The target body.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.u8();
    let lim = limits(mode >> 1);
    let bytes = input.rest();
    check_message(bytes, &lim, mode & 1 == 1);

    let max = lim.max_message.min(1 << 20);
    let mut s = StreamSplitter::new(max);
    let mut fed = 0;
    let mut returned = 0;
    'stream: for piece in bytes.chunks(usize::from(mode >> 3) + 1) {
        s.push(piece);
        fed += piece.len();
        loop {
            match s.next_frame() {
                Ok(Some(Frame::Message(msg))) => {
                    assert!(msg.len() <= max, "frame over the limit");
                    returned += msg.len();
                }
                Ok(Some(Frame::Ping | Frame::Pong)) => returned += 2,
                Ok(None) => break,
                Err(_) => break 'stream,
            }
            assert!(returned + s.buffered() <= fed);
        }
    }
}
