//! BOSH session ids that name the node owning the session (issue 17).
//!
//! In a cluster any node may receive any request of a session, so the `sid`
//! itself says where the session lives: no shared table, no sticky
//! sessions. Its text is
//!
//! ```text
//! <node>.<start>.<random>
//! ```
//!
//! * `node`: the owner's [`NodeName`] (`[a-z0-9-]`, 1 to 16 characters);
//! * `start`: a 64-bit value the owner drew when its process started, as 16
//!   lowercase hex digits. A node that restarted has another one, so the
//!   sids of its previous life are recognisably stale;
//! * `random`: 128 random bits, as 32 lowercase hex digits.
//!
//! The node name and start value are routing, not secrets; the 128 random
//! bits alone keep the sid unpredictable (XEP-0124 §7), as the 128-bit sid
//! of a single node does. Clients treat the sid as opaque and never see a
//! difference. Parsing is strict (exact lengths, lowercase), so each sid has
//! one spelling and the string a client sends back is the one issued.
//!
//! Pure: the start value and the random bits are inputs, drawn by the caller.

pub use crate::node::{NodeName, NodeNameError, NODE_NAME_MAX};

/// A session id naming its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSid {
    /// The owning node.
    pub node: NodeName,
    /// The owner's start value when it issued the sid.
    pub start: u64,
    /// The unpredictable part.
    pub random: [u8; 16],
}

/// Why a text is not a [`ClusterSid`]. Every case is `item-not-found` to
/// the client, like an unknown sid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SidError {
    /// Not three `.`-separated parts.
    #[error("not of the form <node>.<start>.<random>")]
    Shape,
    /// The first part is not a node name.
    #[error("bad node name: {0}")]
    Node(NodeNameError),
    /// The second part is not 16 lowercase hex digits.
    #[error("the start value is not 16 lowercase hex digits")]
    Start,
    /// The third part is not 32 lowercase hex digits.
    #[error("the random part is not 32 lowercase hex digits")]
    Random,
}

impl ClusterSid {
    /// The sid text.
    pub fn encode(&self) -> String {
        let mut s = String::with_capacity(NODE_NAME_MAX + 2 + 16 + 32);
        s.push_str(self.node.as_str());
        s.push('.');
        push_hex(&mut s, &self.start.to_be_bytes());
        s.push('.');
        push_hex(&mut s, &self.random);
        s
    }

    /// Reads a sid text (strictly: the exact form [`ClusterSid::encode`] writes).
    pub fn parse(s: &str) -> Result<ClusterSid, SidError> {
        let mut parts = s.split('.');
        let (Some(node), Some(start), Some(random), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SidError::Shape);
        };
        let node = NodeName::parse(node).map_err(SidError::Node)?;
        let mut sb = [0u8; 8];
        read_hex(start, &mut sb).ok_or(SidError::Start)?;
        let mut random_b = [0u8; 16];
        read_hex(random, &mut random_b).ok_or(SidError::Random)?;
        Ok(ClusterSid {
            node,
            start: u64::from_be_bytes(sb),
            random: random_b,
        })
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(s: &mut String, bytes: &[u8]) {
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
}

/// Fills `out` from exactly `2 * out.len()` lowercase hex digits.
fn read_hex(s: &str, out: &mut [u8]) -> Option<()> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let b = s.as_bytes();
    if b.len() != 2 * out.len() {
        return None;
    }
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid() -> ClusterSid {
        ClusterSid {
            node: NodeName::parse("node-b2").unwrap(),
            start: 0x0123_4567_89ab_cdef,
            random: [
                0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
                0x66, 0xff,
            ],
        }
    }

    #[test]
    fn encodes_byte_by_byte() {
        assert_eq!(
            sid().encode(),
            "node-b2.0123456789abcdef.fedcba987654321000112233445566ff"
        );
    }

    #[test]
    fn parse_returns_node_and_start() {
        let text = sid().encode();
        let back = ClusterSid::parse(&text).unwrap();
        assert_eq!(back, sid());
        assert_eq!(back.node.as_str(), "node-b2");
        assert_eq!(back.start, 0x0123_4567_89ab_cdef);
        // Leading zeros are kept: a fixed width, one spelling.
        let zero = ClusterSid {
            node: NodeName::parse("a").unwrap(),
            start: 1,
            random: [0; 16],
        };
        let t = zero.encode();
        assert_eq!(t, format!("a.0000000000000001.{}", "0".repeat(32)));
        assert_eq!(ClusterSid::parse(&t).unwrap(), zero);
    }

    #[test]
    fn node_names() {
        assert!(NodeName::parse("gw-1").is_ok());
        assert!(NodeName::parse("0123456789abcdef").is_ok());
        assert_eq!(NodeName::parse(""), Err(NodeNameError::Empty));
        assert_eq!(
            NodeName::parse("0123456789abcdefg"),
            Err(NodeNameError::TooLong)
        );
        for bad in ["Gw1", "gw.1", "gw_1", "gw 1", "gw/1", "é"] {
            assert_eq!(
                NodeName::parse(bad),
                Err(NodeNameError::BadCharacter),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_every_other_spelling() {
        let good = sid().encode();
        let (node, rest) = good.split_once('.').unwrap();
        let (start, random) = rest.split_once('.').unwrap();
        let cases: Vec<(String, SidError)> = vec![
            (String::new(), SidError::Shape),
            (random.to_string(), SidError::Shape),
            (format!("{node}.{start}"), SidError::Shape),
            (format!("{good}.x"), SidError::Shape),
            (
                format!(".{start}.{random}"),
                SidError::Node(NodeNameError::Empty),
            ),
            (
                format!("Node.{start}.{random}"),
                SidError::Node(NodeNameError::BadCharacter),
            ),
            (
                format!("{node}.{}.{random}", start.to_uppercase()),
                SidError::Start,
            ),
            (format!("{node}.{}.{random}", &start[1..]), SidError::Start),
            (format!("{node}.{start}0.{random}"), SidError::Start),
            (format!("{node}.+123456789abcdef.{random}"), SidError::Start),
            (format!("{node}.{start}.{}", &random[2..]), SidError::Random),
            (format!("{node}.{start}.{random}00"), SidError::Random),
            (
                format!("{node}.{start}.{}", random.to_uppercase()),
                SidError::Random,
            ),
            (
                format!("{node}.{start}.{}g", &random[1..]),
                SidError::Random,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(ClusterSid::parse(&text), Err(want), "{text:?}");
        }
    }

    #[test]
    fn a_single_node_sid_is_not_a_cluster_sid() {
        // The 32-hex-digit form a gateway without [cluster] issues.
        assert_eq!(
            ClusterSid::parse("00112233445566778899aabbccddeeff"),
            Err(SidError::Shape)
        );
    }
}
