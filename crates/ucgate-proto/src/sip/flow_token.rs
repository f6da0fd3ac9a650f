//! RFC 5626 flow tokens: the name of a WebSocket connection (a *flow*) in the
//! gateway's own URIs (Path, Record-Route, our Via).
//!
//! Format (20 bytes, 27 base64url characters, no padding):
//!
//! ```text
//! version (1 byte, = 1) | flags (1 byte: bit 0 = wss) | flow id (8 bytes, big endian)
//!   | HMAC-SHA256(key, "ucgate-sip-flow" | boot (8 bytes, big endian) | the 10 bytes before)[..10]
//! ```
//!
//! `boot` is a value the glue draws at each start of the process and does
//! not carry in the token: flow ids start again at 1 after a restart, so a
//! token issued before it (still in a registrar's Path or a dialog's route
//! set) must not name the new connection that reuses its id. Under another
//! `boot` its MAC fails, exactly like a forged token's.
//!
//! The MAC is truncated to 80 bits (as RFC 5626 §5.2's example suggests).
//! The flow id is chosen by the glue (one per connection). Each process
//! has its own `boot`, so a token verifies only on the process that issued
//! it, even when several gateway nodes share a key. No expiry is
//! encoded: a token stays valid as long as its flow is alive, which only the
//! glue's flow table knows (a gone flow gives `430 Flow Failed`).

use super::base64url;
use super::hmac::{constant_time_eq, hmac_sha256};

const VERSION: u8 = 1;
const MAC_LEN: usize = 10;
const DOMAIN: &[u8] = b"ucgate-sip-flow";
/// Length of an encoded token in characters.
pub const TOKEN_LEN: usize = 27;

/// The WebSocket transport of a client flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsTransport {
    /// `ws` (plain WebSocket).
    Ws,
    /// `wss` (WebSocket over TLS).
    Wss,
}

impl WsTransport {
    /// `ws` or `wss`, the URI `transport` parameter value.
    pub fn param(self) -> &'static str {
        match self {
            WsTransport::Ws => "ws",
            WsTransport::Wss => "wss",
        }
    }

    /// `WS` or `WSS`, the Via transport.
    pub fn via(self) -> &'static str {
        match self {
            WsTransport::Ws => "WS",
            WsTransport::Wss => "WSS",
        }
    }
}

/// What a valid token names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// The flow id given to [`encode`].
    pub flow_id: u64,
    /// The transport given to [`encode`].
    pub transport: WsTransport,
}

fn payload(flow_id: u64, transport: WsTransport) -> [u8; 10] {
    let mut p = [0u8; 10];
    p[0] = VERSION;
    p[1] = u8::from(transport == WsTransport::Wss);
    p[2..].copy_from_slice(&flow_id.to_be_bytes());
    p
}

/// The token for `flow_id` under `key` in the process started as `boot`.
pub fn encode(key: &[u8], boot: u64, flow_id: u64, transport: WsTransport) -> String {
    let p = payload(flow_id, transport);
    let mac = hmac_sha256(key, &[DOMAIN, &boot.to_be_bytes(), &p]);
    let mut raw = [0u8; 10 + MAC_LEN];
    raw[..10].copy_from_slice(&p);
    raw[10..].copy_from_slice(&mac[..MAC_LEN]);
    base64url::encode(&raw)
}

/// Check a token: `Some(flow)` if it was made by [`encode`] with `key` and
/// `boot`, `None` if it is malformed, forged or from another start of the
/// process. The MAC is compared in constant time.
pub fn verify(key: &[u8], boot: u64, token: &[u8]) -> Option<Flow> {
    if token.len() != TOKEN_LEN {
        return None;
    }
    let raw = base64url::decode(token)?;
    if raw.len() != 10 + MAC_LEN || raw[0] != VERSION || raw[1] > 1 {
        return None;
    }
    let mac = hmac_sha256(key, &[DOMAIN, &boot.to_be_bytes(), &raw[..10]]);
    if !constant_time_eq(&mac[..MAC_LEN], &raw[10..]) {
        return None;
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&raw[2..10]);
    Some(Flow {
        flow_id: u64::from_be_bytes(id),
        transport: if raw[1] == 1 {
            WsTransport::Wss
        } else {
            WsTransport::Ws
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: u64 = 0x0123_4567_89ab_cdef;

    #[test]
    fn round_trip() {
        for (id, t) in [
            (0, WsTransport::Ws),
            (42, WsTransport::Wss),
            (u64::MAX, WsTransport::Ws),
        ] {
            let tok = encode(b"secret", B, id, t);
            assert_eq!(tok.len(), TOKEN_LEN);
            assert!(tok
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
            assert_eq!(
                verify(b"secret", B, tok.as_bytes()),
                Some(Flow {
                    flow_id: id,
                    transport: t
                })
            );
        }
    }

    #[test]
    fn deterministic() {
        assert_eq!(
            encode(b"k", B, 7, WsTransport::Ws),
            encode(b"k", B, 7, WsTransport::Ws)
        );
        assert_ne!(
            encode(b"k", B, 7, WsTransport::Ws),
            encode(b"k", B, 8, WsTransport::Ws)
        );
        assert_ne!(
            encode(b"k", B, 7, WsTransport::Ws),
            encode(b"k", B, 7, WsTransport::Wss)
        );
    }

    #[test]
    fn forgeries_refused() {
        let tok = encode(b"secret", B, 1234, WsTransport::Wss);
        assert_eq!(verify(b"other key", B, tok.as_bytes()), None);
        // Flip every character in turn: never accepted.
        for i in 0..tok.len() {
            let mut b = tok.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            assert_eq!(verify(b"secret", B, &b), None, "position {i}");
        }
        // Changing the flow id with the old MAC.
        let other = encode(b"secret", B, 1234 ^ (1 << 60), WsTransport::Wss);
        let mut spliced = other.as_bytes()[..13].to_vec();
        spliced.extend_from_slice(&tok.as_bytes()[13..]);
        assert_eq!(verify(b"secret", B, &spliced), None);
        assert_eq!(verify(b"secret", B, b""), None);
        assert_eq!(verify(b"secret", B, b"alice"), None);
        assert_eq!(verify(b"secret", B, &[b'A'; TOKEN_LEN]), None);
    }

    #[test]
    fn tokens_from_another_start_refused() {
        let tok = encode(b"secret", B, 1, WsTransport::Ws);
        assert!(verify(b"secret", B, tok.as_bytes()).is_some());
        // After a restart: same key, same flow id, another boot value.
        for other in [0, B ^ 1, B ^ (1 << 63), u64::MAX] {
            assert_eq!(verify(b"secret", other, tok.as_bytes()), None, "{other:x}");
            assert_ne!(encode(b"secret", other, 1, WsTransport::Ws), tok);
        }
    }

    /// The encoding, byte by byte, from an independent HMAC-SHA256 (Python
    /// `hmac`): base64url of 01 00 | 00..01 | the first 10 MAC bytes.
    const KNOWN: &str = "AQAAAAAAAAAAAe667iXT1WOxauk";

    #[test]
    fn known_answer() {
        assert_eq!(encode(b"secret", B, 1, WsTransport::Ws), KNOWN);
    }
}
