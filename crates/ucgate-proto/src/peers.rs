//! A cluster node's peers: the static `[cluster.peers]` list and the peers
//! found in DNS (`cluster.peers_srv`), merged into one table name → address
//! (issue 17; docs/cluster.md).
//!
//! Peers found by DNS are SRV records whose **target's first label is the
//! node's name**: a Kubernetes headless Service in front of a StatefulSet
//! answers `_cluster._tcp.ucgate-peers.ns.svc.cluster.local` with one record
//! per pod, `ucgate-0.ucgate-peers.ns.svc.cluster.local:5291`, and the pod
//! `ucgate-0` has `node = "@hostname"`, so its name is `ucgate-0` too. The
//! address is the target's address record and the SRV port.
//!
//! The rules, in [`merge`]:
//! * a static peer always wins over a DNS record of the same name (the
//!   operator wrote it);
//! * this node's own name is never a peer (its own record is in the answer);
//! * a target whose first label is not a node name is skipped and reported;
//! * two records naming one node with different addresses: the first in
//!   the answer's order after sorting by address wins, reported.
//!
//! Pure: the DNS answers are inputs.

use core::net::SocketAddr;
use std::collections::BTreeMap;

use crate::node::{NodeName, NodeNameError};

/// One SRV record of the peers' name, with its target's address resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The SRV target, e.g. `ucgate-1.ucgate-peers.default.svc.cluster.local.`.
    pub target: String,
    /// The target's address with the SRV port.
    pub addr: SocketAddr,
}

/// Something in the DNS answer that was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skipped {
    /// The target's first label is not a node name.
    BadName {
        /// The SRV target.
        target: String,
        /// Why its first label is not a node name.
        why: NodeNameError,
    },
    /// A second address for one node.
    Duplicate {
        /// The node.
        node: NodeName,
        /// The address not used.
        addr: SocketAddr,
    },
}

/// The node name an SRV target stands for: its first label, lowercased
/// (DNS names are case-insensitive).
pub fn node_of_target(target: &str) -> Result<NodeName, NodeNameError> {
    let first = target.split('.').next().unwrap_or("");
    NodeName::parse(&first.to_ascii_lowercase())
}

/// The node name for `node = "@hostname"`: the host name's first label,
/// lowercased (a pod's name in Kubernetes).
pub fn node_of_hostname(hostname: &str) -> Result<NodeName, NodeNameError> {
    node_of_target(hostname.trim())
}

/// The peers of node `me`: `statics` and what DNS `found`, with what was
/// skipped and why.
pub fn merge(
    me: &NodeName,
    statics: &[(NodeName, SocketAddr)],
    found: &[Found],
) -> (BTreeMap<NodeName, SocketAddr>, Vec<Skipped>) {
    let mut peers: BTreeMap<NodeName, SocketAddr> = statics.iter().cloned().collect();
    let mut skipped = Vec::new();
    let mut found: Vec<&Found> = found.iter().collect();
    found.sort_by_key(|f| f.addr);
    let mut from_dns: BTreeMap<NodeName, SocketAddr> = BTreeMap::new();
    for f in found {
        let node = match node_of_target(&f.target) {
            Ok(n) => n,
            Err(why) => {
                skipped.push(Skipped::BadName {
                    target: f.target.clone(),
                    why,
                });
                continue;
            }
        };
        if node == *me || peers.contains_key(&node) {
            continue;
        }
        match from_dns.get(&node) {
            Some(a) if *a == f.addr => {}
            Some(_) => skipped.push(Skipped::Duplicate { node, addr: f.addr }),
            None => {
                from_dns.insert(node, f.addr);
            }
        }
    }
    peers.extend(from_dns);
    (peers, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> NodeName {
        NodeName::parse(s).unwrap()
    }

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn found(target: &str, addr: &str) -> Found {
        Found {
            target: target.into(),
            addr: a(addr),
        }
    }

    #[test]
    fn a_target_names_its_node_by_its_first_label() {
        assert_eq!(
            node_of_target("ucgate-1.ucgate-peers.default.svc.cluster.local."),
            Ok(n("ucgate-1"))
        );
        assert_eq!(node_of_target("GW-2.example."), Ok(n("gw-2")));
        assert_eq!(
            node_of_target("gw_2.example."),
            Err(NodeNameError::BadCharacter)
        );
        assert_eq!(node_of_target(".example."), Err(NodeNameError::Empty));
        assert_eq!(
            node_of_target("a-very-long-pod-name-0.x."),
            Err(NodeNameError::TooLong)
        );
        assert_eq!(node_of_hostname("ucgate-0\n"), Ok(n("ucgate-0")));
        assert_eq!(node_of_hostname("gw-1.example.org"), Ok(n("gw-1")));
    }

    #[test]
    fn dns_peers_join_the_static_ones_and_never_include_this_node() {
        let me = n("ucgate-0");
        let statics = [(n("edge"), a("10.0.0.9:5291"))];
        let answer = [
            found("ucgate-2.peers.ns.svc.", "10.1.0.12:5291"),
            found("ucgate-0.peers.ns.svc.", "10.1.0.10:5291"),
            found("ucgate-1.peers.ns.svc.", "10.1.0.11:5291"),
        ];
        let (peers, skipped) = merge(&me, &statics, &answer);
        let list: Vec<(String, String)> = peers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(
            list,
            [
                ("edge".to_string(), "10.0.0.9:5291".to_string()),
                ("ucgate-1".to_string(), "10.1.0.11:5291".to_string()),
                ("ucgate-2".to_string(), "10.1.0.12:5291".to_string()),
            ]
        );
        assert!(skipped.is_empty());
    }

    #[test]
    fn a_static_peer_wins_and_bad_or_duplicate_records_are_reported() {
        let me = n("gw-1");
        let statics = [(n("gw-2"), a("10.0.0.2:5291"))];
        let answer = [
            found("gw-2.x.", "10.9.9.9:5291"),
            found("gw_3.x.", "10.0.0.3:5291"),
            found("gw-4.x.", "10.0.0.5:5291"),
            found("gw-4.x.", "10.0.0.4:5291"),
            found("gw-4.x.", "10.0.0.4:5291"),
        ];
        let (peers, skipped) = merge(&me, &statics, &answer);
        assert_eq!(peers.get(&n("gw-2")), Some(&a("10.0.0.2:5291")));
        assert_eq!(
            peers.get(&n("gw-4")),
            Some(&a("10.0.0.4:5291")),
            "lowest address"
        );
        assert_eq!(peers.len(), 2);
        assert_eq!(
            skipped,
            [
                Skipped::BadName {
                    target: "gw_3.x.".into(),
                    why: NodeNameError::BadCharacter
                },
                Skipped::Duplicate {
                    node: n("gw-4"),
                    addr: a("10.0.0.5:5291")
                },
            ]
        );
    }
}
