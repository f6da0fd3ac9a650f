//! SIP over a byte stream (TCP/TLS toward the core, RFC 3261 §18.3) and the
//! UDP size rule (RFC 3261 §18.1.1).
//!
//! On a stream every message must carry Content-Length; messages are cut at
//! the end of the headers plus that many bytes. CRLF keep-alives (RFC 5626
//! §4.4.1) between messages are reported: `\r\n\r\n` is a ping (answer with
//! `\r\n`), a lone `\r\n` is a pong.

use super::message::{canonical_name, is_token, Known};

/// One thing cut from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole SIP message (headers and body), to give to
    /// [`super::message::parse`].
    Message(Vec<u8>),
    /// `\r\n\r\n`: a keep-alive ping; answer with [`PONG`].
    Ping,
    /// A lone `\r\n`: the answer to our ping.
    Pong,
}

/// The keep-alive ping (RFC 5626 §4.4.1).
pub const PING: &[u8] = b"\r\n\r\n";
/// The keep-alive pong.
pub const PONG: &[u8] = b"\r\n";

/// Stream framing errors: the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// Headers or the message exceed the size limit.
    #[error("SIP message over the size limit")]
    TooLarge,
    /// A message on a stream without a usable Content-Length.
    #[error("SIP message without Content-Length on a stream")]
    MissingContentLength,
    /// Bytes that cannot start a message.
    #[error("garbage on the SIP stream")]
    Garbage,
}

/// Cuts a byte stream into [`Frame`]s.
///
/// A ping split between reads right after its first `\r\n` is reported as
/// `Pong` then `Ping`: both are harmless (a pong only proves liveness).
#[derive(Debug)]
pub struct StreamSplitter {
    buf: Vec<u8>,
    max: usize,
    after_lone_crlf: bool,
}

impl StreamSplitter {
    /// A splitter refusing messages larger than `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        StreamSplitter {
            buf: Vec::new(),
            max: max_message,
            after_lone_crlf: false,
        }
    }

    /// Add received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held, not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        let b = &self.buf;
        if b.is_empty() {
            return Ok(None);
        }
        if b[0] == b'\r' || b[0] == b'\n' {
            if b.starts_with(PING) {
                self.buf.drain(..4);
                self.after_lone_crlf = false;
                return Ok(Some(Frame::Ping));
            }
            if b.len() < 2 {
                return Ok(None);
            }
            if b.starts_with(b"\r\n") {
                if b.len() >= 3 && b[2] == b'\r' && b.len() < 4 {
                    return Ok(None);
                }
                self.buf.drain(..2);
                let frame = if self.after_lone_crlf {
                    Frame::Ping
                } else {
                    Frame::Pong
                };
                self.after_lone_crlf = frame == Frame::Pong;
                return Ok(Some(frame));
            }
            return Err(FramingError::Garbage);
        }
        self.after_lone_crlf = false;
        if !is_token(b[0]) {
            return Err(FramingError::Garbage);
        }
        let Some(head_end) = find_head_end(b) else {
            if b.len() > self.max {
                return Err(FramingError::TooLarge);
            }
            return Ok(None);
        };
        let cl = content_length(&b[..head_end]).ok_or(FramingError::MissingContentLength)?;
        let total = head_end.checked_add(cl).ok_or(FramingError::TooLarge)?;
        if total > self.max {
            return Err(FramingError::TooLarge);
        }
        if b.len() < total {
            return Ok(None);
        }
        let msg: Vec<u8> = self.buf.drain(..total).collect();
        Ok(Some(Frame::Message(msg)))
    }
}

/// Index just past the empty line ending the headers.
fn find_head_end(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = b[i..].iter().position(|&c| c == b'\n') {
        let nl = i + p;
        let rest = &b[nl + 1..];
        if rest.starts_with(b"\r\n") {
            return Some(nl + 3);
        }
        if rest.starts_with(b"\n") {
            return Some(nl + 2);
        }
        i = nl + 1;
    }
    None
}

/// The Content-Length of a header block (`None` if missing, malformed or
/// conflicting).
fn content_length(head: &[u8]) -> Option<usize> {
    let mut found: Option<usize> = None;
    for line in head.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii_end();
        if name.first().is_some_and(|c| *c == b' ' || *c == b'\t')
            || canonical_name(name) != Some(Known::CONTENT_LENGTH)
        {
            continue;
        }
        let v = line[colon + 1..].trim_ascii();
        if v.is_empty() || v.len() > 9 || !v.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n: usize = std::str::from_utf8(v).ok()?.parse().ok()?;
        if found.is_some_and(|f| f != n) {
            return None;
        }
        found = Some(n);
    }
    found
}

/// Transport toward the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreTransport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl CoreTransport {
    /// `UDP`, `TCP` or `TLS` for a Via.
    pub fn via(self) -> &'static str {
        match self {
            CoreTransport::Udp => "UDP",
            CoreTransport::Tcp => "TCP",
            CoreTransport::Tls => "TLS",
        }
    }
    /// `udp`, `tcp` or `tls` for a URI `transport` parameter.
    pub fn param(self) -> &'static str {
        match self {
            CoreTransport::Udp => "udp",
            CoreTransport::Tcp => "tcp",
            CoreTransport::Tls => "tls",
        }
    }
}

/// Default UDP threshold (RFC 3261 §18.1.1: 1300 bytes when the path MTU
/// is unknown).
pub const UDP_THRESHOLD: usize = 1300;

/// RFC 3261 §18.1.1: a request over `threshold` bytes that would go over
/// UDP goes over TCP instead; TCP and TLS are kept. (Responses cannot
/// switch transport: do not use this for them.)
pub fn transport_for(
    configured: CoreTransport,
    message_len: usize,
    threshold: usize,
) -> CoreTransport {
    match configured {
        CoreTransport::Udp if message_len > threshold => CoreTransport::Tcp,
        t => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M1: &[u8] =
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nl: 5\r\n\r\nhello";
    const M2: &[u8] =
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length:0\r\n\r\n";

    fn drain(s: &mut StreamSplitter) -> Result<Vec<Frame>, FramingError> {
        let mut out = Vec::new();
        while let Some(f) = s.next_frame()? {
            out.push(f);
        }
        Ok(out)
    }

    fn messages(frames: &[Frame]) -> Vec<Vec<u8>> {
        frames
            .iter()
            .filter_map(|f| match f {
                Frame::Message(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn whole_stream_at_once() {
        let mut stream = Vec::new();
        stream.extend_from_slice(M1);
        stream.extend_from_slice(PING);
        stream.extend_from_slice(M2);
        stream.extend_from_slice(PONG);
        stream.extend_from_slice(M1);
        let mut s = StreamSplitter::new(4096);
        s.push(&stream);
        let frames = drain(&mut s).unwrap();
        assert_eq!(
            frames,
            vec![
                Frame::Message(M1.to_vec()),
                Frame::Ping,
                Frame::Message(M2.to_vec()),
                Frame::Pong,
                Frame::Message(M1.to_vec()),
            ]
        );
        assert_eq!(s.buffered(), 0);
    }

    #[test]
    fn split_at_every_byte() {
        let mut stream = Vec::new();
        stream.extend_from_slice(M1);
        stream.extend_from_slice(M2);
        stream.extend_from_slice(PING);
        stream.extend_from_slice(M1);
        for cut in 0..=stream.len() {
            let mut s = StreamSplitter::new(4096);
            s.push(&stream[..cut]);
            let mut frames = drain(&mut s).unwrap();
            s.push(&stream[cut..]);
            frames.extend(drain(&mut s).unwrap());
            assert_eq!(
                messages(&frames),
                vec![M1.to_vec(), M2.to_vec(), M1.to_vec()],
                "cut {cut}"
            );
            let pings = frames.iter().filter(|f| **f == Frame::Ping).count();
            assert_eq!(pings, 1, "cut {cut}");
            assert_eq!(s.buffered(), 0);
        }
    }

    #[test]
    fn byte_by_byte() {
        let mut stream = Vec::new();
        stream.extend_from_slice(M2);
        stream.extend_from_slice(M1);
        let mut s = StreamSplitter::new(4096);
        let mut frames = Vec::new();
        for &b in &stream {
            s.push(&[b]);
            frames.extend(drain(&mut s).unwrap());
        }
        assert_eq!(messages(&frames), vec![M2.to_vec(), M1.to_vec()]);
    }

    #[test]
    fn missing_content_length_is_fatal() {
        let mut s = StreamSplitter::new(4096);
        s.push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n");
        assert_eq!(s.next_frame(), Err(FramingError::MissingContentLength));
        let mut s = StreamSplitter::new(4096);
        s.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -3\r\n\r\n");
        assert_eq!(s.next_frame(), Err(FramingError::MissingContentLength));
    }

    #[test]
    fn size_limits() {
        let mut s = StreamSplitter::new(64);
        s.push(&[b'A'; 65]);
        assert_eq!(s.next_frame(), Err(FramingError::TooLarge));
        let mut s = StreamSplitter::new(80);
        s.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 999999\r\n\r\n");
        assert_eq!(s.next_frame(), Err(FramingError::TooLarge));
        let mut s = StreamSplitter::new(4096);
        s.push(b"\x00\x01");
        assert_eq!(s.next_frame(), Err(FramingError::Garbage));
    }

    #[test]
    fn udp_threshold() {
        assert_eq!(
            transport_for(CoreTransport::Udp, 1300, UDP_THRESHOLD),
            CoreTransport::Udp
        );
        assert_eq!(
            transport_for(CoreTransport::Udp, 1301, UDP_THRESHOLD),
            CoreTransport::Tcp
        );
        assert_eq!(
            transport_for(CoreTransport::Tls, 5000, UDP_THRESHOLD),
            CoreTransport::Tls
        );
        assert_eq!(
            transport_for(CoreTransport::Tcp, 10, UDP_THRESHOLD),
            CoreTransport::Tcp
        );
    }
}
