//! Incremental splitter for the XMPP stream coming from the server.
//!
//! Feed bytes as they arrive ([`Splitter::feed`]) and pull events
//! ([`Splitter::next_event`]): the stream header, each top-level element as its
//! exact bytes, and the stream end. Inter-element white space (keepalives)
//! is consumed silently. "Incomplete" is the normal state: `next_event` returns
//! `Ok(None)` until a whole item is buffered, and resumes scanning where it
//! stopped (no rescans), so feeding one byte at a time costs the same as
//! feeding everything at once.
//!
//! After a stream restart (SASL success, STARTTLS), call
//! [`Splitter::restart`] at the element boundary where the old stream ends:
//! bytes already buffered after it are parsed as the new stream, never with
//! the old stream's state.
//!
//! The server is trusted to be well-formed XML; the splitter checks what it
//! needs to find boundaries correctly and refuses comments, processing
//! instructions and DTDs (RFC 6120 §11.1), non-white-space text between
//! elements, and elements over the size limit.

use super::tag::{parse_start_tag, ParsedElement, StartTag};
use super::XmlError;

/// The streams namespace (RFC 6120 §4.8.1).
pub const NS_STREAMS: &str = "http://etherx.jabber.org/streams";

/// What the splitter found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `<stream:stream …>` (the open tag only).
    Header(StartTag),
    /// One complete top-level element, bytes as received.
    Element(Vec<u8>),
    /// `</stream:stream>`.
    End,
}

/// What the splitter found, each element with its top-level start tag,
/// parsed once as the splitter reads it ([`Splitter::next_item`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `<stream:stream …>` (the open tag only).
    Header(StartTag),
    /// One complete top-level element, bytes as received.
    Element(ParsedElement),
    /// One complete top-level element whose start tag does not parse
    /// (bad name, attribute or entity): the caller decides what to do.
    Malformed(Vec<u8>),
    /// `</stream:stream>`.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    Text,
    Lt,
    StartTag { quote: u8 },
    EndTag,
    CData,
}

/// Capacity a fully consumed splitter may keep; more is released.
const IDLE_KEEP: usize = 256;

/// The incremental splitter.
#[derive(Debug, Clone)]
pub struct Splitter {
    buf: Vec<u8>,
    /// Offset of the first unconsumed byte.
    base: usize,
    /// Next byte to scan (absolute index into `buf`).
    scan: usize,
    /// Start of the element being scanned.
    item_start: usize,
    /// Depth inside the current top-level element (0 between elements).
    depth: usize,
    sub: Sub,
    /// The current stream header's name, once seen: what its end tag must
    /// say. (Only the name: the whole tag, kept for every session, was a
    /// few hundred bytes of idle memory.)
    header: Option<Box<str>>,
    /// The current top-level element's start tag, parsed as soon as its
    /// `>` is scanned (`Some(None)`: it does not parse).
    top: Option<Option<StartTag>>,
    max: usize,
    ended: bool,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl Splitter {
    /// A splitter refusing elements larger than `max_element` bytes.
    pub fn new(max_element: usize) -> Self {
        Splitter {
            buf: Vec::new(),
            base: 0,
            scan: 0,
            item_start: 0,
            depth: 0,
            sub: Sub::Text,
            header: None,
            top: None,
            max: max_element,
            ended: false,
        }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.base
    }

    /// The current stream header's name, once seen.
    pub fn header_name(&self) -> Option<&str> {
        self.header.as_deref()
    }

    /// Starts a new stream at the current position: the next item must be a
    /// new stream header (optionally after an XML declaration).
    pub fn restart(&mut self) {
        debug_assert_eq!(self.depth, 0, "restart only between elements");
        self.header = None;
        self.ended = false;
        self.sub = Sub::Text;
    }

    /// Takes the bytes buffered but not consumed (used when the transport
    /// changes under the stream, e.g. to TLS: there must be none).
    pub fn take_rest(&mut self) -> Vec<u8> {
        let rest = self.buf[self.base..].to_vec();
        self.buf.clear();
        self.base = 0;
        self.scan = 0;
        self.item_start = 0;
        self.top = None;
        rest
    }

    fn consume_to(&mut self, end: usize) {
        self.base = end;
        self.scan = end;
        if self.base == self.buf.len() {
            // Everything consumed: an idle stream keeps no buffer (it is
            // allocated again, at the needed size, when bytes arrive).
            if self.buf.capacity() > IDLE_KEEP {
                self.buf = Vec::new();
            } else {
                self.buf.clear();
            }
            self.base = 0;
            self.scan = 0;
        } else if self.base > 64 * 1024 && self.base * 2 > self.buf.len() {
            self.buf.drain(..self.base);
            self.scan -= self.base;
            self.base = 0;
        }
    }

    /// The next event, `Ok(None)` if more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<Event>, XmlError> {
        Ok(self.next_item()?.map(|item| match item {
            Item::Header(tag) => Event::Header(tag),
            Item::Element(el) => Event::Element(el.bytes),
            Item::Malformed(el) => Event::Element(el),
            Item::End => Event::End,
        }))
    }

    /// The next item, `Ok(None)` if more bytes are needed: as
    /// [`Splitter::next_event`], each element with its parsed start tag.
    pub fn next_item(&mut self) -> Result<Option<Item>, XmlError> {
        if self.ended {
            return Ok(None);
        }
        loop {
            if self.depth > 0 || self.sub != Sub::Text {
                return self.scan_element();
            }
            // Between top-level items.
            while self.scan < self.buf.len() && is_ws(self.buf[self.scan]) {
                self.scan += 1;
            }
            let at = self.scan;
            self.consume_to(at);
            let at = self.scan;
            if at >= self.buf.len() {
                return Ok(None);
            }
            if self.buf[at] != b'<' {
                return Err(XmlError::NotWellFormed("text between top-level elements"));
            }
            let Some(&next) = self.buf.get(at + 1) else {
                return Ok(None);
            };
            match next {
                b'?' => {
                    let Some(end) = find(&self.buf[at..], b"?>") else {
                        if self.buf.len() - at > 256 {
                            return Err(XmlError::Restricted("processing instruction"));
                        }
                        return Ok(None);
                    };
                    let pi = &self.buf[at..at + end + 2];
                    let is_decl = pi.starts_with(b"<?xml") && pi.get(5).is_some_and(|b| is_ws(*b));
                    if !is_decl || self.header.is_some() {
                        return Err(XmlError::Restricted("processing instruction"));
                    }
                    self.consume_to(at + end + 2);
                }
                b'!' => return Err(XmlError::Restricted("comment or DTD")),
                b'/' => {
                    let Some(end) = self.buf[at..].iter().position(|b| *b == b'>') else {
                        return Ok(None);
                    };
                    let name = std::str::from_utf8(&self.buf[at + 2..at + end])
                        .map_err(|_| XmlError::NotWellFormed("invalid UTF-8"))?
                        .trim_end();
                    match &self.header {
                        Some(h) if &**h == name => {
                            self.consume_to(at + end + 1);
                            self.ended = true;
                            return Ok(Some(Item::End));
                        }
                        _ => return Err(XmlError::NotWellFormed("unexpected end tag")),
                    }
                }
                _ if self.header.is_none() => {
                    let Some(tag) = parse_start_tag(&self.buf[at..])? else {
                        if self.buf.len() - at > self.max {
                            return Err(XmlError::Limit("stream header too large"));
                        }
                        return Ok(None);
                    };
                    if tag.self_closing || tag.local() != "stream" {
                        return Err(XmlError::NotWellFormed("expected a stream header"));
                    }
                    let ns_attr = match tag.prefix() {
                        Some(p) => format!("xmlns:{p}"),
                        None => "xmlns".to_string(),
                    };
                    if tag.attr(&ns_attr) != Some(NS_STREAMS) {
                        return Err(XmlError::Namespace(
                            "the stream header is not in the streams namespace",
                        ));
                    }
                    self.consume_to(at + tag.len);
                    self.header = Some(tag.name.as_str().into());
                    return Ok(Some(Item::Header(tag)));
                }
                _ => {
                    self.item_start = at;
                    self.scan = at + 1;
                    self.sub = Sub::Lt;
                    return self.scan_element();
                }
            }
        }
    }

    fn scan_element(&mut self) -> Result<Option<Item>, XmlError> {
        let buf = &self.buf;
        let mut i = self.scan;
        let mut depth = self.depth;
        let mut sub = self.sub;
        let result = loop {
            if i - self.item_start > self.max {
                return Err(XmlError::Limit(
                    "element larger than the maximum stanza size",
                ));
            }
            let Some(&b) = buf.get(i) else {
                break Ok(None);
            };
            match sub {
                Sub::Text => {
                    // skip quickly to the next markup
                    match buf[i..].iter().position(|c| *c == b'<') {
                        Some(p) => {
                            i += p + 1;
                            sub = Sub::Lt;
                        }
                        None => i = buf.len(),
                    }
                }
                Sub::Lt => match b {
                    b'/' => {
                        sub = Sub::EndTag;
                        i += 1;
                    }
                    b'!' => {
                        let rest = &buf[i..];
                        if rest.len() < 8 {
                            if !b"![CDATA[".starts_with(rest) {
                                return Err(XmlError::Restricted("comment or DTD"));
                            }
                            break Ok(None);
                        }
                        if rest.starts_with(b"![CDATA[") {
                            sub = Sub::CData;
                            i += 8;
                        } else {
                            return Err(XmlError::Restricted("comment or DTD"));
                        }
                    }
                    b'?' => return Err(XmlError::Restricted("processing instruction")),
                    _ => sub = Sub::StartTag { quote: 0 },
                },
                Sub::StartTag { quote } => {
                    if quote != 0 {
                        if b == quote {
                            sub = Sub::StartTag { quote: 0 };
                        }
                    } else if b == b'"' || b == b'\'' {
                        sub = Sub::StartTag { quote: b };
                    } else if b == b'>' {
                        if depth == 0 {
                            // The top-level start tag, parsed once, here.
                            self.top =
                                Some(parse_start_tag(&buf[self.item_start..=i]).ok().flatten());
                        }
                        if buf[i - 1] != b'/' {
                            depth += 1;
                        } else if depth == 0 {
                            // a self-closing top-level element
                            i += 1;
                            sub = Sub::Text;
                            break Ok(Some(i));
                        }
                        sub = Sub::Text;
                    } else if b == b'<' {
                        return Err(XmlError::NotWellFormed("`<` inside a tag"));
                    }
                    i += 1;
                }
                Sub::EndTag => {
                    if b == b'>' {
                        depth = depth
                            .checked_sub(1)
                            .ok_or(XmlError::NotWellFormed("unbalanced end tag"))?;
                        i += 1;
                        sub = Sub::Text;
                        if depth == 0 {
                            break Ok(Some(i));
                        }
                    } else {
                        i += 1;
                    }
                }
                Sub::CData => match find(&buf[i..], b"]]>") {
                    Some(p) => {
                        i += p + 3;
                        sub = Sub::Text;
                    }
                    None => {
                        // keep the last two bytes: `]]` may be split
                        i = buf.len().saturating_sub(2).max(i);
                        break Ok(None);
                    }
                },
            }
        };
        self.depth = depth;
        self.sub = sub;
        match result {
            Ok(Some(end)) => {
                if end - self.item_start > self.max {
                    return Err(XmlError::Limit(
                        "element larger than the maximum stanza size",
                    ));
                }
                let bytes = self.buf[self.item_start..end].to_vec();
                self.consume_to(end);
                Ok(Some(match self.top.take().flatten() {
                    Some(tag) => Item::Element(ParsedElement { bytes, tag }),
                    None => Item::Malformed(bytes),
                }))
            }
            Ok(None) => {
                self.scan = i;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='abc' from='localhost' version='1.0' xml:lang='en'>";
    const FEATURES: &str = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>";
    const MSG: &str = "<message to='a@b' type='chat'><body>1 &lt; 2 &amp; &quot;x&quot; → ok</body><x xmlns='y' a='&gt;/'/></message>";
    const CDATA: &str =
        "<iq type='result' id='1'><q xmlns='q'><![CDATA[<not> a </tag> ]] ]>]]></q></iq>";

    #[test]
    fn an_idle_splitter_releases_its_buffer() {
        let mut s = Splitter::new(1 << 20);
        s.feed(STREAM.as_bytes());
        let big = format!("<message><body>{}</body></message>", "x".repeat(4000));
        s.feed(big.as_bytes());
        let ev = events(&mut s);
        assert!(matches!(&ev[..], [Event::Header(_), Event::Element(e)] if e == big.as_bytes()));
        // everything consumed: nothing beyond IDLE_KEEP stays allocated
        assert_eq!(s.buf.capacity(), 0);
        // a small element keeps its small buffer, and splitting goes on
        s.feed(b"<presence/>");
        assert_eq!(
            events(&mut s),
            vec![Event::Element(b"<presence/>".to_vec())]
        );
        assert!(s.buf.capacity() <= IDLE_KEEP);
        // a partly consumed buffer is kept (the rest is still needed)
        s.feed(b"<presence/><mess");
        assert_eq!(
            events(&mut s),
            vec![Event::Element(b"<presence/>".to_vec())]
        );
        s.feed(b"age/>");
        assert_eq!(events(&mut s), vec![Event::Element(b"<message/>".to_vec())]);
    }

    #[test]
    fn only_the_header_name_is_kept_and_it_closes_the_stream() {
        let mut s = Splitter::new(4096);
        assert_eq!(s.header_name(), None);
        s.feed(STREAM.as_bytes());
        assert!(matches!(s.next_item(), Ok(Some(Item::Header(_)))));
        assert_eq!(s.header_name(), Some("stream:stream"));
        s.feed(b"</stream:stream>");
        assert!(matches!(s.next_item(), Ok(Some(Item::End))));
        s.restart();
        assert_eq!(s.header_name(), None);
    }

    fn events(s: &mut Splitter) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(e) = s.next_event().unwrap() {
            out.push(e);
        }
        out
    }

    fn expected() -> Vec<Event> {
        vec![
            Event::Element(FEATURES.as_bytes().to_vec()),
            Event::Element(MSG.as_bytes().to_vec()),
            Event::Element(b"<presence/>".to_vec()),
            Event::Element(CDATA.as_bytes().to_vec()),
            Event::End,
        ]
    }

    fn input() -> String {
        format!("{STREAM}\n{FEATURES} \r\n {MSG}<presence/>{CDATA}\n</stream:stream>")
    }

    fn strip_header(evs: Vec<Event>) -> Vec<Event> {
        assert!(
            matches!(&evs[0], Event::Header(h) if h.attr("id") == Some("abc")),
            "{evs:?}"
        );
        evs[1..].to_vec()
    }

    #[test]
    fn splits_a_whole_stream() {
        let mut s = Splitter::new(1 << 16);
        s.feed(input().as_bytes());
        assert_eq!(strip_header(events(&mut s)), expected());
        assert_eq!(s.buffered(), 0);
    }

    #[test]
    fn split_at_every_offset_gives_the_same_events() {
        let input = input();
        let bytes = input.as_bytes();
        for cut in 0..=bytes.len() {
            let mut s = Splitter::new(1 << 16);
            let mut evs = Vec::new();
            s.feed(&bytes[..cut]);
            evs.extend(events(&mut s));
            s.feed(&bytes[cut..]);
            evs.extend(events(&mut s));
            assert_eq!(strip_header(evs), expected(), "cut at {cut}");
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let mut s = Splitter::new(1 << 16);
        let mut evs = Vec::new();
        for b in input().as_bytes() {
            s.feed(&[*b]);
            evs.extend(events(&mut s));
        }
        assert_eq!(strip_header(evs), expected());
    }

    #[test]
    fn whitespace_keepalives_are_dropped() {
        let mut s = Splitter::new(1 << 16);
        s.feed(STREAM.as_bytes());
        assert!(matches!(s.next_event().unwrap(), Some(Event::Header(_))));
        for _ in 0..1000 {
            s.feed(b" \n");
            assert_eq!(s.next_event().unwrap(), None);
        }
        assert_eq!(s.buffered(), 0);
        s.feed(b"<presence/>");
        assert_eq!(
            s.next_event().unwrap(),
            Some(Event::Element(b"<presence/>".to_vec()))
        );
    }

    #[test]
    fn restart_parses_buffered_bytes_as_the_new_stream() {
        let mut s = Splitter::new(1 << 16);
        let success = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
        let new_header = STREAM.replace("abc", "def");
        s.feed(format!("{STREAM}{success}{new_header}{FEATURES}").as_bytes());
        assert!(matches!(s.next_event().unwrap(), Some(Event::Header(_))));
        assert_eq!(
            s.next_event().unwrap(),
            Some(Event::Element(success.as_bytes().to_vec()))
        );
        s.restart();
        match s.next_event().unwrap() {
            Some(Event::Header(h)) => assert_eq!(h.attr("id"), Some("def")),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            s.next_event().unwrap(),
            Some(Event::Element(FEATURES.as_bytes().to_vec()))
        );
        // without the restart, the new stream's bytes are refused by the old stream's state
        let mut s = Splitter::new(1 << 16);
        s.feed(format!("{STREAM}{success}{new_header}").as_bytes());
        s.next_event().unwrap();
        s.next_event().unwrap();
        assert_eq!(s.next_event().unwrap_err().condition(), "restricted-xml");
    }

    #[test]
    fn refuses_restricted_xml_and_garbage() {
        let cases: &[(&str, &str)] = &[
            ("<!-- c --><stream:stream>", "restricted-xml"),
            ("<!DOCTYPE x>", "restricted-xml"),
            ("junk", "not-well-formed"),
            ("<stream:stream xmlns:stream='wrong'>", "invalid-namespace"),
            ("<foo/>", "not-well-formed"),
        ];
        for (input, cond) in cases {
            let mut s = Splitter::new(1 << 16);
            s.feed(input.as_bytes());
            let err = loop {
                match s.next_event() {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("no error for {input}"),
                    Err(e) => break e,
                }
            };
            assert_eq!(err.condition(), *cond, "{input}: {err}");
        }
        let after_header: &[(&str, &str)] = &[
            ("<message><!-- c --></message>", "restricted-xml"),
            ("<message><?pi x?></message>", "restricted-xml"),
            ("<?xml version='1.0'?>", "restricted-xml"),
            ("text", "not-well-formed"),
            ("</wrong>", "not-well-formed"),
        ];
        for (input, cond) in after_header {
            let mut s = Splitter::new(1 << 16);
            s.feed(STREAM.as_bytes());
            s.next_event().unwrap();
            s.feed(input.as_bytes());
            let err = s.next_event().expect_err(input);
            assert_eq!(err.condition(), *cond, "{input}: {err}");
        }
    }

    #[test]
    fn refuses_elements_over_the_limit_even_when_incomplete() {
        let mut s = Splitter::new(100);
        s.feed(STREAM.as_bytes());
        s.next_event().unwrap();
        s.feed(b"<message><body>");
        assert_eq!(s.next_event().unwrap(), None);
        s.feed(&[b'x'; 200]);
        assert_eq!(s.next_event().unwrap_err().condition(), "policy-violation");
        // exactly at the limit is fine
        let mut s = Splitter::new(11);
        s.feed(STREAM.as_bytes());
        s.next_event().unwrap();
        s.feed(b"<presence/>");
        assert_eq!(
            s.next_event().unwrap(),
            Some(Event::Element(b"<presence/>".to_vec()))
        );
    }
}
