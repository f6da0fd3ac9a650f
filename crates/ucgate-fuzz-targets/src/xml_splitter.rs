//! The XMPP stream splitter (`ucgate_proto::xml::splitter`), fed a server
//! stream whole and in chunks.
//!
//! Input: a limit selector byte, a chunk-size byte, then the stream.
//!
//! Invariants: the bytes returned (header, elements) never exceed the bytes
//! fed; every element starts with `<`, ends with `>` and is within the
//! limit; an element's start tag, parsed by the splitter as it scans, is
//! the one its bytes have (and a malformed one's does not parse); and
//! chunking does not change the result: the events of a chunked
//! run equal those of the whole run, except that a run may stop earlier
//! with an error (an incomplete item may hit a limit before its end
//! arrives), so the shorter sequence must be a prefix of the longer.

use crate::input::Input;
use ucgate_proto::xml::splitter::{Item, Splitter};
use ucgate_proto::xml::tag::parse_start_tag;

const MAX: [usize; 4] = [64, 256, 4096, 256 * 1024];

/// Events until the first error; the error flag.
fn split(stream: &[u8], max: usize, chunk: usize) -> (Vec<Item>, bool) {
    let mut s = Splitter::new(max);
    let mut events = Vec::new();
    let mut fed = 0;
    let mut returned = 0;
    for piece in stream.chunks(chunk.max(1)) {
        s.feed(piece);
        fed += piece.len();
        loop {
            match s.next_item() {
                Ok(Some(ev)) => {
                    returned += match &ev {
                        Item::Header(tag) => tag.len,
                        Item::Element(el) => {
                            let bytes = &el.bytes;
                            assert!(bytes.first() == Some(&b'<') && bytes.last() == Some(&b'>'));
                            assert!(bytes.len() <= max + 1, "element over the limit");
                            assert_eq!(parse_start_tag(bytes), Ok(Some(el.tag.clone())));
                            bytes.len()
                        }
                        Item::Malformed(bytes) => {
                            assert!(bytes.first() == Some(&b'<') && bytes.last() == Some(&b'>'));
                            assert!(bytes.len() <= max + 1, "element over the limit");
                            assert!(!matches!(parse_start_tag(bytes), Ok(Some(_))));
                            bytes.len()
                        }
                        Item::End => 0,
                    };
                    assert!(returned <= fed, "returned more bytes than fed");
                    assert!(s.buffered() <= fed - returned);
                    events.push(ev);
                }
                Ok(None) => break,
                Err(_) => return (events, true),
            }
        }
    }
    (events, false)
}

/// The target body.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let max = MAX[usize::from(input.u8() % 4)];
    let chunk = usize::from(input.u8() % 32) + 1;
    let stream = input.rest();
    let (whole, whole_err) = split(stream, max, stream.len());
    let (chunked, chunked_err) = split(stream, max, chunk);
    if !whole_err && !chunked_err {
        assert_eq!(whole, chunked, "chunking changed the events");
    } else {
        let n = whole.len().min(chunked.len());
        assert_eq!(whole[..n], chunked[..n], "chunking changed the events");
        if !whole_err {
            assert!(chunked.len() <= whole.len());
        }
        if !chunked_err {
            assert!(whole.len() <= chunked.len());
        }
    }
}
