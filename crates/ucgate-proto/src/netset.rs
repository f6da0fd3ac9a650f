//! Sets of IP networks: single addresses and CIDR ranges (RFC 4632 §3.1,
//! RFC 4291 §2.3), parsed from configuration and asked "is this peer
//! address in the set?".
//!
//! Used for the SIP core's source addresses (`sip.core_sources`); general
//! enough for any allowlist of peers. An IPv4-mapped IPv6 address
//! (`::ffff:192.0.2.1`, what a dual-stack socket reports for an IPv4 peer)
//! is looked up as the IPv4 address it carries.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One network: an address and a prefix length (`192.0.2.0/24`,
/// `2001:db8::/32`; a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// Why a network could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// Neither an IP address nor `address/prefix`.
    #[error(
        "expected an IP address or a CIDR range such as \"192.0.2.0/24\" or \"2001:db8::/32\""
    )]
    Syntax,
    /// The prefix length is not a number up to 32 (IPv4) or 128 (IPv6).
    #[error("the prefix length must be a number from 0 to {0}")]
    Prefix(u8),
    /// Bits are set after the prefix (`10.1.2.3/8`): almost always a typo.
    #[error("bits are set after the prefix length: did you mean \"{0}\"?")]
    HostBits(IpNet),
}

fn bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn width(a: IpAddr) -> u8 {
    if a.is_ipv4() {
        32
    } else {
        128
    }
}

/// The mask of `prefix` leading ones in an address of `width` bits.
fn mask(width: u8, prefix: u8) -> u128 {
    let all: u128 = if width == 32 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    if prefix == 0 {
        0
    } else {
        all & (all << (width - prefix))
    }
}

fn with_bits(like: IpAddr, b: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(b as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(b)),
    }
}

impl IpNet {
    /// The network of `addr` with `prefix` bits (host bits cleared);
    /// `None` when `prefix` is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpNet> {
        let w = width(addr);
        (prefix <= w).then(|| IpNet {
            addr: with_bits(addr, bits(addr) & mask(w, prefix)),
            prefix,
        })
    }

    /// A single address (/32 or /128).
    pub fn host(addr: IpAddr) -> IpNet {
        IpNet {
            addr,
            prefix: width(addr),
        }
    }

    /// Parses `ADDRESS` or `ADDRESS/PREFIX` (IPv6 without brackets).
    pub fn parse(s: &str) -> Result<IpNet, NetError> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| NetError::Syntax)?;
        let w = width(addr);
        let Some(p) = p else {
            return Ok(IpNet::host(addr));
        };
        let prefix = (!p.is_empty() && p.len() <= 3 && p.bytes().all(|c| c.is_ascii_digit()))
            .then(|| p.parse::<u8>().ok())
            .flatten()
            .filter(|n| *n <= w)
            .ok_or(NetError::Prefix(w))?;
        let net = IpNet::new(addr, prefix).ok_or(NetError::Prefix(w))?;
        if net.addr != addr {
            return Err(NetError::HostBits(net));
        }
        Ok(net)
    }

    /// The first address of the network.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// `ip` is in this network (same family, same leading `prefix` bits).
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4()
            && bits(ip) & mask(width(ip), self.prefix) == bits(self.addr)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix == width(self.addr) {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// A set of networks; empty contains nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetSet {
    nets: Vec<IpNet>,
}

impl NetSet {
    /// The set of `nets`.
    pub fn new(nets: Vec<IpNet>) -> NetSet {
        NetSet { nets }
    }

    /// Parses each string with [`IpNet::parse`]; the error names the index
    /// of the first bad one.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<NetSet, (usize, NetError)> {
        items
            .iter()
            .enumerate()
            .map(|(i, s)| IpNet::parse(s.as_ref()).map_err(|e| (i, e)))
            .collect::<Result<Vec<_>, _>>()
            .map(NetSet::new)
    }

    /// The networks, in the order given.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// No network at all.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// `ip` (or, for an IPv4-mapped IPv6 address, the IPv4 address it
    /// carries) is in one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let canonical = ip.to_canonical();
        self.nets
            .iter()
            .any(|n| n.contains(canonical) || n.contains(ip))
    }
}

impl fmt::Display for NetSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.nets.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_addresses_and_ranges() {
        let n = IpNet::parse("192.0.2.0/24").unwrap();
        assert_eq!((n.addr(), n.prefix()), (ip("192.0.2.0"), 24));
        assert_eq!(n.to_string(), "192.0.2.0/24");
        let n = IpNet::parse("127.0.0.1").unwrap();
        assert_eq!((n.addr(), n.prefix()), (ip("127.0.0.1"), 32));
        assert_eq!(n.to_string(), "127.0.0.1");
        let n = IpNet::parse("2001:db8::/32").unwrap();
        assert_eq!((n.addr(), n.prefix()), (ip("2001:db8::"), 32));
        assert_eq!(IpNet::parse("::1").unwrap().prefix(), 128);
        assert_eq!(IpNet::parse("0.0.0.0/0").unwrap().prefix(), 0);
        assert_eq!(IpNet::parse("::/0").unwrap().prefix(), 0);
        assert_eq!(IpNet::parse("10.0.0.0/32").unwrap().to_string(), "10.0.0.0");
    }

    #[test]
    fn refuses_bad_input() {
        for s in [
            "",
            "/24",
            "example.com",
            "192.0.2",
            "192.0.2.0.1",
            "[::1]",
            "192.0.2.1:5060",
            " 192.0.2.1",
            "192.0.2.1 ",
        ] {
            assert_eq!(IpNet::parse(s), Err(NetError::Syntax), "{s:?}");
        }
        for s in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0.0/0008",
        ] {
            assert_eq!(IpNet::parse(s), Err(NetError::Prefix(32)), "{s:?}");
        }
        assert_eq!(IpNet::parse("::/129"), Err(NetError::Prefix(128)));
        assert_eq!(
            IpNet::parse("10.1.2.3/8"),
            Err(NetError::HostBits(IpNet::parse("10.0.0.0/8").unwrap()))
        );
        assert_eq!(
            IpNet::parse("10.1.2.3/8").unwrap_err().to_string(),
            "bits are set after the prefix length: did you mean \"10.0.0.0/8\"?"
        );
        assert_eq!(
            IpNet::parse("2001:db8::1/64"),
            Err(NetError::HostBits(IpNet::parse("2001:db8::/64").unwrap()))
        );
    }

    #[test]
    fn contains_by_prefix_bits() {
        let n = IpNet::parse("192.0.2.0/25").unwrap();
        assert!(n.contains(ip("192.0.2.0")));
        assert!(n.contains(ip("192.0.2.127")));
        assert!(!n.contains(ip("192.0.2.128")));
        assert!(!n.contains(ip("192.0.3.1")));
        let one = IpNet::parse("127.0.0.1").unwrap();
        assert!(one.contains(ip("127.0.0.1")));
        assert!(!one.contains(ip("127.0.0.2")));
        let all4 = IpNet::parse("0.0.0.0/0").unwrap();
        assert!(all4.contains(ip("255.255.255.255")));
        assert!(!all4.contains(ip("::1")), "families never mix");
        let v6 = IpNet::parse("2001:db8:1::/48").unwrap();
        assert!(v6.contains(ip("2001:db8:1:ffff::1")));
        assert!(!v6.contains(ip("2001:db8:2::1")));
        assert!(
            !v6.contains(ip("32.1.13.184")),
            "the same leading bits in IPv4"
        );
        let odd = IpNet::parse("10.0.0.0/9").unwrap();
        assert!(odd.contains(ip("10.127.255.255")));
        assert!(!odd.contains(ip("10.128.0.0")));
    }

    #[test]
    fn sets() {
        let s = NetSet::parse(&["127.0.0.1", "10.0.0.0/8", "fd00::/8"]).unwrap();
        assert_eq!(s.to_string(), "127.0.0.1, 10.0.0.0/8, fd00::/8");
        assert!(s.contains(ip("127.0.0.1")));
        assert!(!s.contains(ip("127.0.0.2")));
        assert!(s.contains(ip("10.200.0.1")));
        assert!(s.contains(ip("fd12::1")));
        assert!(!s.contains(ip("fe80::1")));
        // What a dual-stack socket reports for an IPv4 peer.
        assert!(s.contains(ip("::ffff:127.0.0.1")));
        assert!(s.contains(ip("::ffff:10.1.1.1")));
        assert!(!s.contains(ip("::ffff:127.0.0.2")));
        assert!(!NetSet::default().contains(ip("127.0.0.1")));
        assert!(NetSet::default().is_empty());
        assert_eq!(
            NetSet::parse(&["127.0.0.1", "nope"]),
            Err((1, NetError::Syntax))
        );
    }
}
