//! Authentication of BOSH requests one cluster node forwards to another
//! (issue 17; see docs/cluster.md for why an HMAC rather than mutual TLS).
//!
//! The forwarding node adds one header, [`AUTH_HEADER`]:
//!
//! ```text
//! v1 <from> <timestamp> <mac>
//! ```
//!
//! `from` is the forwarding node's name, `timestamp` the Unix time in
//! seconds when it signed, `mac` the HMAC-SHA256 (64 lowercase hex digits),
//! keyed by the cluster's shared secret, of
//!
//! ```text
//! ucgate-cluster-v1 LF from LF method LF path LF timestamp LF hex(sha256(body))
//! ```
//!
//! The receiving node checks the MAC in constant time and refuses a
//! timestamp more than `max_skew` away from its own clock, either way. The
//! header is also the hop marker: a request that carries it is never
//! forwarded again (at most one hop), and it names who forwarded it.
//!
//! Pure: the secret, the clock and the body are inputs.

use super::sid::NodeName;
use crate::sip::hmac::{constant_time_eq, hmac_sha256, sha256};

/// The header of a forwarded request (lower case, as HTTP/2 sends it).
pub const AUTH_HEADER: &str = "x-ucgate-cluster-auth";

const DOMAIN: &[u8] = b"ucgate-cluster-v1";

/// What a forwarded request is signed over.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The path (with its query, if any), as sent.
    pub path: &'a str,
    /// The whole body.
    pub body: &'a [u8],
}

/// Why a forwarded request is refused. The receiving node answers every
/// case alike (HTTP 401), and logs which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The header is not `v1 <from> <timestamp> <mac>`.
    #[error("malformed cluster authentication header")]
    Malformed,
    /// The timestamp is too far in the past or the future.
    #[error("the timestamp is {0} s away from this node's clock")]
    Stale(u64),
    /// The MAC does not match (another secret, or a changed request).
    #[error("the MAC does not match (another secret, or a changed request)")]
    BadMac,
}

fn mac(secret: &[u8], from: &str, timestamp: u64, req: &Signed<'_>) -> [u8; 32] {
    let ts = timestamp.to_string();
    let digest = hex(&sha256(req.body));
    hmac_sha256(
        secret,
        &[
            DOMAIN,
            b"\n",
            from.as_bytes(),
            b"\n",
            req.method.as_bytes(),
            b"\n",
            req.path.as_bytes(),
            b"\n",
            ts.as_bytes(),
            b"\n",
            digest.as_bytes(),
        ],
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The [`AUTH_HEADER`] value for `req`, forwarded by `from` at `now`
/// (Unix seconds).
pub fn sign(secret: &[u8], from: &NodeName, now: u64, req: &Signed<'_>) -> String {
    format!(
        "v1 {from} {now} {}",
        hex(&mac(secret, from.as_str(), now, req))
    )
}

/// Checks an [`AUTH_HEADER`] value against `req` at `now` (Unix seconds);
/// returns the forwarding node's name.
pub fn verify(
    secret: &[u8],
    header: &str,
    req: &Signed<'_>,
    now: u64,
    max_skew: u64,
) -> Result<NodeName, AuthError> {
    let mut parts = header.split(' ');
    let (Some("v1"), Some(from), Some(ts), Some(given), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(AuthError::Malformed);
    };
    let from = NodeName::parse(from).map_err(|_| AuthError::Malformed)?;
    if ts.is_empty() || ts.len() > 20 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::Malformed);
    }
    let ts: u64 = ts.parse().map_err(|_| AuthError::Malformed)?;
    if given.len() != 64 {
        return Err(AuthError::Malformed);
    }
    let skew = now.abs_diff(ts);
    if skew > max_skew {
        return Err(AuthError::Stale(skew));
    }
    let want = hex(&mac(secret, from.as_str(), ts, req));
    if constant_time_eq(want.as_bytes(), given.as_bytes()) {
        Ok(from)
    } else {
        Err(AuthError::BadMac)
    }
}

/// Who handed a BOSH request to this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// A client (or the balancer in front of the nodes).
    Client,
    /// Another node, forwarding a client's request: never forwarded again.
    Peer,
}

/// Where a BOSH request is served, read from its `sid` alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Here: no sid (a new session), a sid of this node, or a sid that is
    /// not a cluster sid (this node's sessions answer `item-not-found`).
    Here,
    /// At the owner, a configured peer: forward the request unchanged.
    Peer(NodeName),
    /// `item-not-found` at once, without asking anyone.
    NotFound(NotHere),
}

/// Why a sid of another node is not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotHere {
    /// The sid names a node that is not among the configured peers (and
    /// nothing is ever sent to an address taken from a request).
    UnknownNode,
    /// The request was already forwarded once (at most one hop).
    SecondHop,
}

/// Where a request whose body names `sid` is served on node `me`;
/// `is_peer` says whether a node name is a configured peer.
pub fn destination(
    me: &NodeName,
    sid: Option<&str>,
    hop: Hop,
    is_peer: impl Fn(&NodeName) -> bool,
) -> Destination {
    let Some(owner) = sid.and_then(|s| super::sid::ClusterSid::parse(s).ok()) else {
        return Destination::Here;
    };
    if owner.node == *me {
        Destination::Here
    } else if hop == Hop::Peer {
        Destination::NotFound(NotHere::SecondHop)
    } else if is_peer(&owner.node) {
        Destination::Peer(owner.node)
    } else {
        Destination::NotFound(NotHere::UnknownNode)
    }
}

/// Why a forwarded request brought no answer from the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No connection to the owner (refused or failed): it is gone, and its
    /// sessions with it.
    Unreachable,
    /// No answer within the longest BOSH wait plus `cluster.forward_timeout`.
    Timeout,
    /// The owner refused the forwarding itself (401: another secret, or
    /// clocks too far apart).
    Refused,
    /// Anything else (an answer too large, a broken stream).
    Failed,
}

impl Failure {
    /// The `result` label of `ucgate_cluster_forwards_total`.
    pub fn label(self) -> &'static str {
        match self {
            Failure::Unreachable => "unreachable",
            Failure::Timeout => "timeout",
            Failure::Refused => "refused",
            Failure::Failed => "failed",
        }
    }

    /// What the client is told: its session ended with an unreachable
    /// owner (`item-not-found`, it logs in again); otherwise the session
    /// may live on, but this request failed (`remote-connection-failed`).
    pub fn condition(self) -> super::Condition {
        match self {
            Failure::Unreachable => super::Condition::ItemNotFound,
            Failure::Timeout | Failure::Refused | Failure::Failed => {
                super::Condition::RemoteConnectionFailed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn req(body: &[u8]) -> Signed<'_> {
        Signed {
            method: "POST",
            path: "/http-bind",
            body,
        }
    }

    fn gw1() -> NodeName {
        NodeName::parse("gw-1").unwrap()
    }

    #[test]
    fn signs_byte_by_byte() {
        let body = b"<body rid='1'/>";
        let h = sign(KEY, &gw1(), 1_700_000_000, &req(body));
        // The MAC computed independently from the documented layout.
        let text = format!(
            "ucgate-cluster-v1\ngw-1\nPOST\n/http-bind\n1700000000\n{}",
            hex(&sha256(body))
        );
        let want = hex(&hmac_sha256(KEY, &[text.as_bytes()]));
        assert_eq!(h, format!("v1 gw-1 1700000000 {want}"));
    }

    #[test]
    fn a_signed_request_verifies_within_the_skew() {
        let body = b"<body rid='1'/>";
        let h = sign(KEY, &gw1(), 1000, &req(body));
        for now in [970, 1000, 1030] {
            assert_eq!(verify(KEY, &h, &req(body), now, 30), Ok(gw1()), "{now}");
        }
        assert_eq!(
            verify(KEY, &h, &req(body), 1031, 30),
            Err(AuthError::Stale(31))
        );
        assert_eq!(
            verify(KEY, &h, &req(body), 969, 30),
            Err(AuthError::Stale(31))
        );
    }

    #[test]
    fn any_change_breaks_the_mac() {
        let body = b"<body rid='1'/>";
        let h = sign(KEY, &gw1(), 1000, &req(body));
        let bad = |r: &Signed<'_>, key: &[u8], header: &str| verify(key, header, r, 1000, 30);
        assert_eq!(
            bad(&req(b"<body rid='2'/>"), KEY, &h),
            Err(AuthError::BadMac)
        );
        let mut r = req(body);
        r.path = "/other";
        assert_eq!(bad(&r, KEY, &h), Err(AuthError::BadMac));
        let mut r = req(body);
        r.method = "GET";
        assert_eq!(bad(&r, KEY, &h), Err(AuthError::BadMac));
        assert_eq!(
            bad(&req(body), b"another secret of 32 characters!", &h),
            Err(AuthError::BadMac)
        );
        // Another sender name or timestamp in the header.
        let other_from = h.replacen("gw-1", "gw-2", 1);
        assert_eq!(bad(&req(body), KEY, &other_from), Err(AuthError::BadMac));
        let other_ts = h.replacen(" 1000 ", " 1001 ", 1);
        assert_eq!(bad(&req(body), KEY, &other_ts), Err(AuthError::BadMac));
        // A flipped MAC digit.
        let mut flipped = h.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(bad(&req(body), KEY, &flipped), Err(AuthError::BadMac));
    }

    #[test]
    fn malformed_headers() {
        let body = b"";
        let good = sign(KEY, &gw1(), 1000, &req(body));
        let mac = good.rsplit(' ').next().unwrap();
        for h in [
            String::new(),
            "v1".to_string(),
            format!("v2 gw-1 1000 {mac}"),
            format!("v1 GW1 1000 {mac}"),
            format!("v1 gw-1 -1000 {mac}"),
            format!("v1 gw-1 +1000 {mac}"),
            format!("v1 gw-1  {mac}"),
            format!("v1 gw-1 99999999999999999999999 {mac}"),
            format!("v1 gw-1 1000 {}", &mac[1..]),
            format!("v1 gw-1 1000 {mac} extra"),
            format!("v1  gw-1 1000 {mac}"),
        ] {
            assert_eq!(
                verify(KEY, &h, &req(body), 1000, 30),
                Err(AuthError::Malformed),
                "{h:?}"
            );
        }
    }

    #[test]
    fn the_sid_alone_says_where_a_request_goes() {
        let me = NodeName::parse("gw-1").unwrap();
        let gw2 = NodeName::parse("gw-2").unwrap();
        let peers = |n: &NodeName| n.as_str() == "gw-2";
        let of = |node: &str| format!("{node}.0123456789abcdef.fedcba987654321000112233445566ff");
        let here = |sid: Option<&str>, hop| destination(&me, sid, hop, peers);
        assert_eq!(here(None, Hop::Client), Destination::Here);
        assert_eq!(here(Some(&of("gw-1")), Hop::Client), Destination::Here);
        assert_eq!(here(Some(&of("gw-1")), Hop::Peer), Destination::Here);
        assert_eq!(here(Some(&of("gw-2")), Hop::Client), Destination::Peer(gw2));
        assert_eq!(
            here(Some(&of("gw-2")), Hop::Peer),
            Destination::NotFound(NotHere::SecondHop)
        );
        assert_eq!(
            here(Some(&of("gw-9")), Hop::Client),
            Destination::NotFound(NotHere::UnknownNode)
        );
        // Not a cluster sid (a single node's form, or garbage): served
        // here, where no session has it.
        for sid in ["0123456789abcdef0123456789abcdef", "gw-2", "gw-2.1.2", ""] {
            assert_eq!(here(Some(sid), Hop::Client), Destination::Here, "{sid}");
        }
    }

    #[test]
    fn only_an_unreachable_owner_ends_the_session() {
        use super::super::Condition;
        assert_eq!(Failure::Unreachable.condition(), Condition::ItemNotFound);
        for f in [Failure::Timeout, Failure::Refused, Failure::Failed] {
            assert_eq!(f.condition(), Condition::RemoteConnectionFailed, "{f:?}");
        }
        let labels: Vec<_> = [
            Failure::Unreachable,
            Failure::Timeout,
            Failure::Refused,
            Failure::Failed,
        ]
        .iter()
        .map(|f| f.label())
        .collect();
        assert_eq!(labels, ["unreachable", "timeout", "refused", "failed"]);
    }
}
