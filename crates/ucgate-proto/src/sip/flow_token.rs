//! RFC 5626 flow tokens: the name of a WebSocket connection (a *flow*) in the
//! gateway's own URIs (Path, Record-Route, our Via). Two formats, told apart
//! by their first byte; a process issues and accepts only one of them.
//!
//! **Single node** (no `[cluster]`), version 1: 20 bytes, 27 base64url
//! characters, no padding:
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
//! `boot` its MAC fails, exactly like a forged token's (`403`).
//!
//! **Cluster node** (`[cluster]`, issue 17), version 2: 29 bytes plus the
//! node name (33 bytes, 44 characters for a 4-character name such as
//! `gw-1`; at most 45 bytes, 60 characters):
//!
//! ```text
//! version (1 byte, = 2) | flags (1 byte: bit 0 = wss) | n (1 byte, 1..=16)
//!   | node name (n bytes, [a-z0-9-]) | start (8 bytes, big endian) | flow id (8 bytes, big endian)
//!   | HMAC-SHA256(cluster key, "ucgate-sip-flow" | everything before)[..10]
//! ```
//!
//! The cluster key is [`cluster_key`] of `cluster.secret`, the same on every
//! node, so any node verifies any node's token, and the token says which
//! node issued it and at which start (the node's `boot`, now carried). A
//! node receiving a valid token that names another node, or a previous
//! start of itself, knows that the flow is not here and cannot be (the flow
//! table lives in the process that issued the token): `430 Flow Failed`
//! (RFC 5626 §5.3), whoever receives it; a token failing the MAC is forged
//! (`403`), as on a single node. See [`Issuer::check`].
//!
//! The MAC is truncated to 80 bits (as RFC 5626 §5.2's example suggests).
//! The flow id is chosen by the glue (one per connection). No expiry is
//! encoded: a token stays valid as long as its flow is alive, which only the
//! glue's flow table knows (a gone flow gives `430 Flow Failed`). Every
//! character is legal in a SIP URI user part.

use super::base64url;
use super::hmac::{constant_time_eq, hmac_sha256};
use crate::node::{NodeName, NODE_NAME_MAX};

const VERSION: u8 = 1;
const CLUSTER_VERSION: u8 = 2;
const MAC_LEN: usize = 10;
const DOMAIN: &[u8] = b"ucgate-sip-flow";
/// What [`cluster_key`] mixes with the secret, so that a MAC under the
/// derived key never stands for one under the secret itself (the BOSH
/// forwarding header, [`crate::bosh::forward`]).
const KEY_DOMAIN: &[u8] = b"ucgate-sip-flow-key-v2";
/// Length of an encoded single-node token in characters.
pub const TOKEN_LEN: usize = 27;
/// Length of a cluster token's fixed part (all but the node name), in bytes.
const CLUSTER_FIXED: usize = 3 + 8 + 8 + MAC_LEN;
/// Longest encoded cluster token, in characters (a 16-character node name).
pub const CLUSTER_TOKEN_MAX: usize = ((CLUSTER_FIXED + NODE_NAME_MAX) * 4).div_ceil(3);

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

/// The single-node token for `flow_id` under `key` in the process started
/// as `boot`.
pub fn encode(key: &[u8], boot: u64, flow_id: u64, transport: WsTransport) -> String {
    let p = payload(flow_id, transport);
    let mac = hmac_sha256(key, &[DOMAIN, &boot.to_be_bytes(), &p]);
    let mut raw = [0u8; 10 + MAC_LEN];
    raw[..10].copy_from_slice(&p);
    raw[10..].copy_from_slice(&mac[..MAC_LEN]);
    base64url::encode(&raw)
}

/// Check a single-node token: `Some(flow)` if it was made by [`encode`] with
/// `key` and `boot`, `None` if it is malformed, forged or from another start
/// of the process. The MAC is compared in constant time.
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
        transport: transport_of(raw[1]),
    })
}

fn transport_of(flags: u8) -> WsTransport {
    if flags == 1 {
        WsTransport::Wss
    } else {
        WsTransport::Ws
    }
}

/// The key of the cluster's flow tokens, derived from `cluster.secret`:
/// HMAC-SHA256(secret, "ucgate-sip-flow-key-v2").
pub fn cluster_key(secret: &[u8]) -> [u8; 32] {
    hmac_sha256(secret, &[KEY_DOMAIN])
}

/// What a valid cluster token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFlow {
    /// The node that issued it.
    pub node: NodeName,
    /// That node's start value when it issued it.
    pub start: u64,
    /// The flow on that node.
    pub flow: Flow,
}

/// The cluster token for `flow_id` of `node` started as `start`, under
/// `key` (see [`cluster_key`]).
pub fn encode_cluster(
    key: &[u8],
    node: &NodeName,
    start: u64,
    flow_id: u64,
    transport: WsTransport,
) -> String {
    let name = node.as_str().as_bytes();
    let mut raw = Vec::with_capacity(CLUSTER_FIXED + name.len());
    raw.push(CLUSTER_VERSION);
    raw.push(u8::from(transport == WsTransport::Wss));
    // A NodeName has at most 16 bytes.
    raw.push(name.len() as u8);
    raw.extend_from_slice(name);
    raw.extend_from_slice(&start.to_be_bytes());
    raw.extend_from_slice(&flow_id.to_be_bytes());
    let mac = hmac_sha256(key, &[DOMAIN, &raw]);
    raw.extend_from_slice(&mac[..MAC_LEN]);
    base64url::encode(&raw)
}

/// Check a cluster token: `Some` if it was made by [`encode_cluster`] under
/// `key` (by any node, at any start), `None` if it is malformed or forged.
/// The MAC is compared in constant time.
pub fn verify_cluster(key: &[u8], token: &[u8]) -> Option<NodeFlow> {
    if token.len() > CLUSTER_TOKEN_MAX {
        return None;
    }
    let raw = base64url::decode(token)?;
    if raw.len() < CLUSTER_FIXED + 1 || raw[0] != CLUSTER_VERSION || raw[1] > 1 {
        return None;
    }
    let n = usize::from(raw[2]);
    if raw.len() != CLUSTER_FIXED + n {
        return None;
    }
    let signed = raw.len() - MAC_LEN;
    let mac = hmac_sha256(key, &[DOMAIN, &raw[..signed]]);
    if !constant_time_eq(&mac[..MAC_LEN], &raw[signed..]) {
        return None;
    }
    let node = NodeName::parse(core::str::from_utf8(&raw[3..3 + n]).ok()?).ok()?;
    let mut start = [0u8; 8];
    start.copy_from_slice(&raw[3 + n..11 + n]);
    let mut id = [0u8; 8];
    id.copy_from_slice(&raw[11 + n..19 + n]);
    Some(NodeFlow {
        node,
        start: u64::from_be_bytes(start),
        flow: Flow {
            flow_id: u64::from_be_bytes(id),
            transport: transport_of(raw[1]),
        },
    })
}

/// The tokens of one running edge: the key, this start of the process and,
/// in a cluster, this node's name.
#[derive(Debug, Clone, Copy)]
pub struct Issuer<'a> {
    /// The single-node key (`sip.flow_token_key` or a random one), or the
    /// [`cluster_key`].
    pub key: &'a [u8],
    /// The value drawn at this start (`boot`).
    pub start: u64,
    /// This node's name: `Some` in a cluster (version 2 tokens), `None` on
    /// a single node (version 1).
    pub node: Option<&'a NodeName>,
}

/// What a token read back means to the [`Issuer`] reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// A flow of this process (alive or not: the glue's flow table knows).
    Here(Flow),
    /// A valid token of another node of the cluster, or of a previous start
    /// of this node: its flow is not here (`430 Flow Failed` from whoever
    /// receives it).
    Elsewhere {
        /// The node that issued it.
        node: NodeName,
        /// Its start value then.
        start: u64,
    },
    /// Malformed, forged, under another key, or (single node) from a
    /// previous start: refused like a forgery (`403`).
    Forged,
}

impl Checked {
    /// The flow, for [`Checked::Here`] only.
    pub fn here(self) -> Option<Flow> {
        match self {
            Checked::Here(f) => Some(f),
            _ => None,
        }
    }
}

impl Issuer<'_> {
    /// The token naming `flow_id` of this process.
    pub fn encode(&self, flow_id: u64, transport: WsTransport) -> String {
        match self.node {
            None => encode(self.key, self.start, flow_id, transport),
            Some(node) => encode_cluster(self.key, node, self.start, flow_id, transport),
        }
    }

    /// Reads a token back: see [`Checked`]. A single node accepts only
    /// version 1 tokens, a cluster node only version 2.
    pub fn check(&self, token: &[u8]) -> Checked {
        let Some(me) = self.node else {
            return verify(self.key, self.start, token).map_or(Checked::Forged, Checked::Here);
        };
        match verify_cluster(self.key, token) {
            None => Checked::Forged,
            Some(t) if t.node == *me && t.start == self.start => Checked::Here(t.flow),
            Some(t) => Checked::Elsewhere {
                node: t.node,
                start: t.start,
            },
        }
    }
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

    // --- Version 2: cluster tokens (issue 17). ---

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn node(n: &str) -> NodeName {
        NodeName::parse(n).unwrap()
    }

    /// Computed independently (Python `hmac`): the derived key, then
    /// base64url of 02 | 00 | 04 "gw-1" | B | 00..01 | the first 10 MAC bytes.
    const CLUSTER_KEY_HEX: &str =
        "b386a4e9171c7c5bbe058fbd777b37c33eee1a766c93116ca7886368a97c4dcd";
    const KNOWN_CLUSTER: &str = "AgAEZ3ctMQEjRWeJq83vAAAAAAAAAAEZljQZQYux_9U0";
    const KNOWN_CLUSTER_LONG: &str = "AgEQMDEyMzQ1Njc4OWFiY2RlZgEjRWeJq83v__________8TdjlK1SFJaWm2";

    #[test]
    fn cluster_known_answers() {
        let key = cluster_key(SECRET);
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, CLUSTER_KEY_HEX);
        assert_eq!(
            encode_cluster(&key, &node("gw-1"), B, 1, WsTransport::Ws),
            KNOWN_CLUSTER
        );
        let long = encode_cluster(
            &key,
            &node("0123456789abcdef"),
            B,
            u64::MAX,
            WsTransport::Wss,
        );
        assert_eq!(long, KNOWN_CLUSTER_LONG);
        assert_eq!(long.len(), CLUSTER_TOKEN_MAX);
        assert_eq!(
            verify_cluster(&key, KNOWN_CLUSTER.as_bytes()),
            Some(NodeFlow {
                node: node("gw-1"),
                start: B,
                flow: Flow {
                    flow_id: 1,
                    transport: WsTransport::Ws
                }
            })
        );
        assert_eq!(
            verify_cluster(&key, long.as_bytes()).map(|t| (t.node, t.flow)),
            Some((
                node("0123456789abcdef"),
                Flow {
                    flow_id: u64::MAX,
                    transport: WsTransport::Wss
                }
            ))
        );
        // URI user part safe, and short.
        assert!(long
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(KNOWN_CLUSTER.len(), 44);
    }

    fn issuer<'a>(key: &'a [u8], me: &'a NodeName, start: u64) -> Issuer<'a> {
        Issuer {
            key,
            start,
            node: Some(me),
        }
    }

    #[test]
    fn cluster_check_tells_here_elsewhere_and_forged() {
        let key = cluster_key(SECRET);
        let (a, b) = (node("gw-a"), node("gw-b"));
        let on_a = issuer(&key, &a, B);
        let tok = on_a.encode(7, WsTransport::Wss);
        assert_eq!(tok, encode_cluster(&key, &a, B, 7, WsTransport::Wss));
        let flow = Flow {
            flow_id: 7,
            transport: WsTransport::Wss,
        };
        // (a) this node, this start.
        assert_eq!(on_a.check(tok.as_bytes()), Checked::Here(flow));
        // (b) another node, sharing the secret.
        assert_eq!(
            issuer(&key, &b, B).check(tok.as_bytes()),
            Checked::Elsewhere {
                node: a.clone(),
                start: B
            }
        );
        assert_eq!(
            issuer(&key, &b, 99).check(tok.as_bytes()),
            Checked::Elsewhere {
                node: a.clone(),
                start: B
            }
        );
        // (b) this node after a restart (another start value).
        for other in [0, B ^ 1, B ^ (1 << 63), u64::MAX] {
            assert_eq!(
                issuer(&key, &a, other).check(tok.as_bytes()),
                Checked::Elsewhere {
                    node: a.clone(),
                    start: B
                },
                "{other:x}"
            );
        }
        // (c) another cluster's secret, or the secret itself as the key.
        let other_key = cluster_key(b"another secret of thirty-two chars!");
        assert_eq!(
            issuer(&other_key, &a, B).check(tok.as_bytes()),
            Checked::Forged
        );
        assert_eq!(issuer(SECRET, &a, B).check(tok.as_bytes()), Checked::Forged);
        // A single node's token is not a cluster token, and the other way round.
        let single = encode(&key, B, 7, WsTransport::Wss);
        assert_eq!(on_a.check(single.as_bytes()), Checked::Forged);
        let alone = Issuer {
            key: &key,
            start: B,
            node: None,
        };
        assert_eq!(alone.check(tok.as_bytes()), Checked::Forged);
        assert_eq!(alone.check(single.as_bytes()), Checked::Here(flow));
        assert_eq!(alone.encode(7, WsTransport::Wss), single);
    }

    #[test]
    fn cluster_forgeries_refused() {
        let key = cluster_key(SECRET);
        let a = node("gw-a");
        let on_a = issuer(&key, &a, B);
        let tok = on_a.encode(1234, WsTransport::Ws);
        // Flip every character in turn: never accepted, never "elsewhere".
        for i in 0..tok.len() {
            let mut b = tok.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            assert_eq!(on_a.check(&b), Checked::Forged, "position {i}");
            assert_eq!(verify_cluster(&key, &b), None, "position {i}");
        }
        // Another node name or start with the old MAC: the MAC covers them.
        let raw = base64url::decode(tok.as_bytes()).unwrap();
        for pos in [3, 6, 7, 14, 15, 22] {
            let mut r = raw.clone();
            r[pos] ^= 1;
            let t = base64url::encode(&r);
            assert_eq!(on_a.check(t.as_bytes()), Checked::Forged, "byte {pos}");
        }
        // Truncated, lengthened, wrong name length, bad version or flags.
        for cut in [0, 1, 3, raw.len() - 1] {
            let t = base64url::encode(&raw[..cut]);
            assert_eq!(verify_cluster(&key, t.as_bytes()), None, "cut {cut}");
        }
        let mut longer = raw.clone();
        longer.push(0);
        assert_eq!(
            verify_cluster(&key, base64url::encode(&longer).as_bytes()),
            None
        );
        for (pos, v) in [(0, 1), (0, 3), (1, 2), (2, 0), (2, 5), (2, 3), (2, 17)] {
            let mut r = raw.clone();
            r[pos] = v;
            let t = base64url::encode(&r);
            assert_eq!(verify_cluster(&key, t.as_bytes()), None, "byte {pos} = {v}");
        }
        // A name outside [a-z0-9-] never verifies, even with a right MAC.
        let mut bad = vec![2, 0, 4];
        bad.extend_from_slice(b"GW-1");
        bad.extend_from_slice(&B.to_be_bytes());
        bad.extend_from_slice(&1u64.to_be_bytes());
        let mac = hmac_sha256(&key, &[DOMAIN, &bad]);
        bad.extend_from_slice(&mac[..MAC_LEN]);
        assert_eq!(
            verify_cluster(&key, base64url::encode(&bad).as_bytes()),
            None
        );
        assert_eq!(on_a.check(b""), Checked::Forged);
        assert_eq!(on_a.check(b"alice"), Checked::Forged);
        assert_eq!(on_a.check(&[b'A'; 44]), Checked::Forged);
        assert_eq!(on_a.check(&[b'A'; 4000]), Checked::Forged);
    }
}
