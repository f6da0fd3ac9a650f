//! Responses built from a request: [`make_response`] and the answer to a
//! refused message ([`error_response`]).

use super::scan::*;
use super::types::*;

/// Build a response to `req` (RFC 3261 §8.2.6): Via, From, To, Call-ID and
/// CSeq lines copied byte for byte, `tag` added to To when it has none (not
/// for 100), then `extra` headers and `Content-Length: 0`.
pub fn make_response(
    req: &Message<'_>,
    code: u16,
    reason: &str,
    to_tag: &str,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n").into_bytes();
    let b = req.bytes;
    let push_line = |out: &mut Vec<u8>, h: &Header| {
        out.extend_from_slice(&b[h.line.clone()]);
        if !out.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    };
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        for (_, h) in req.named(name) {
            if name == "To" && code != 100 && req.to_tag().is_none() {
                out.extend_from_slice(&b[h.name.clone()]);
                out.extend_from_slice(b": ");
                out.extend_from_slice(&b[h.value.clone()]);
                out.extend_from_slice(b";tag=");
                out.extend_from_slice(to_tag.as_bytes());
                out.extend_from_slice(b"\r\n");
            } else {
                push_line(&mut out, h);
            }
        }
    }
    for (n, v) in extra {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    out
}

/// For a message [`parse`] refused: the response to send, if the error has
/// one and the message is a request whose top Via (and start line) could be
/// scanned. The message is scanned again without any limit, so a request
/// refused for its size, its header count or a header line (`513`) or its
/// request line (`414`) is answered like any other (the work stays linear in
/// the bytes the transport accepted).
pub fn error_response(
    bytes: &[u8],
    _limits: &SipLimits,
    err: &SipError,
    to_tag: &str,
) -> Option<Vec<u8>> {
    let (code, reason) = err.status()?;
    let m = scan(bytes, &SipLimits::UNLIMITED).ok()?;
    if !m.is_request() || m.top_via().is_none() || m.method() == Some("ACK") {
        return None;
    }
    Some(make_response(&m, code, reason, to_tag, &[]))
}
