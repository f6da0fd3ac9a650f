//! The WebSocket opening-handshake decision (`ucgate_proto::websocket`) and
//! the `Origin` checks it uses (`ucgate_proto::origin`).
//!
//! Input: a flags byte (HTTP version, TLS, `require_subprotocol`, which
//! fields are present), then newline-separated fields (lossy UTF-8):
//! method, Upgrade, Connection, `:protocol`, Sec-WebSocket-Version,
//! Sec-WebSocket-Key, Sec-WebSocket-Protocol, Origin, Host, the route's
//! allowed origins (comma-separated) and its subprotocols
//! (comma-separated).
//!
//! Invariants: the decision is deterministic; an accepted handshake is a
//! handshake (`is_handshake`), over HTTP/1.1 carries a valid key, and
//! selects a subprotocol the client offered and the route serves (one when
//! the route requires it); a refusal has one of the statuses the module
//! documents; an origin that parses normalises to a fixed point.

use crate::input::Input;
use ucgate_proto::origin::{Origin, OriginPolicy};
use ucgate_proto::websocket::{
    decide, is_handshake, valid_key, Decision, HandshakeRequest, HttpVersion, Policy,
};

/// The target body.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.u8();
    let text = String::from_utf8_lossy(input.rest());
    let mut f = text.split('\n');
    let mut field = || f.next().unwrap_or("");
    let (method, upgrade, connection, protocol) = (field(), field(), field(), field());
    let (ws_version, ws_key, subprotocol, origin, host) =
        (field(), field(), field(), field(), field());
    let (allowed, served) = (field(), field());

    let opt = |bit: u8, v| (flags & bit == 0).then_some(v);
    let version = if flags & 1 == 0 {
        HttpVersion::Http1
    } else {
        HttpVersion::Http2
    };
    let req = HandshakeRequest {
        version: Some(version),
        method,
        upgrade: opt(4, upgrade),
        connection: opt(8, connection),
        protocol: opt(16, protocol),
        ws_version: Some(ws_version),
        ws_key: opt(32, ws_key),
        subprotocols: if subprotocol.is_empty() {
            Vec::new()
        } else {
            subprotocol.split('|').collect()
        },
        origin: opt(64, origin),
        host: opt(128, host),
        secure: flags & 2 != 0,
    };
    let list: Vec<&str> = allowed.split(',').filter(|s| !s.is_empty()).collect();
    let origins = OriginPolicy::from_list(&list).unwrap_or(OriginPolicy::SameOrigin);
    let served: Vec<String> = served
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let policy = Policy {
        origins: &origins,
        subprotocols: &served,
        require_subprotocol: flags & 4 != 0 && flags & 8 != 0,
    };

    let decision = decide(&req, policy);
    assert_eq!(decide(&req, policy), decision, "not deterministic");
    match &decision {
        Decision::Accept { subprotocol, key } => {
            assert!(
                is_handshake(&req),
                "accepted something that is not a handshake"
            );
            if version == HttpVersion::Http1 {
                assert!(key.as_deref().is_some_and(valid_key));
            } else {
                assert_eq!(*key, None);
            }
            match subprotocol {
                Some(p) => {
                    assert!(served.contains(p));
                    assert!(req
                        .subprotocols
                        .iter()
                        .flat_map(|h| h.split(','))
                        .any(|o| o.trim() == p));
                }
                None => assert!(!policy.require_subprotocol),
            }
        }
        Decision::Refuse(r) => {
            assert!(matches!(r.status(), 400 | 403 | 405 | 426));
            let _ = (r.label(), r.headers(version), r.message(version));
        }
    }
    for s in [origin, host, allowed] {
        if let Ok(o) = Origin::parse(s) {
            let again = Origin::parse(&o.as_string()).expect("a normalised origin parses");
            assert_eq!(again, o);
        }
    }
}
