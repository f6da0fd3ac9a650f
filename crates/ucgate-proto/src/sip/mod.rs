//! SIP over WebSocket (RFC 7118) with ucgate as the edge proxy in front of a
//! SIP core (RFC 5626 flows, RFC 3327 Path, RFC 3261 §16–18, RFC 3581).
//!
//! | module | owns |
//! |---|---|
//! | [`message`] | byte-preserving scanner, accessors, editor, error → response |
//! | [`framing`] | stream splitter (Content-Length, CRLF keep-alives) and the UDP size rule |
//! | [`flow_token`] | HMAC-authenticated flow tokens naming a WebSocket connection |
//! | [`gate`] | a client message before the edge: rate limit, CRLF keep-alive, parse errors, unparseable runs; 503 when the core cannot take a request |
//! | [`edge`] | the edge proxy's rewrites and routing decisions |
//! | [`calls`] | whether a flow has a call in progress (for the drain) |
//! | [`hmac`] | SHA-256 and HMAC-SHA256 (no dependency) |
//! | [`base64url`] | unpadded base64url |
//!
//! See `docs/sip.md`.

pub mod base64url;
pub mod calls;
pub mod edge;
pub mod flow_token;
pub mod framing;
pub mod gate;
pub mod hmac;
pub mod message;

#[cfg(test)]
mod message_tests;
