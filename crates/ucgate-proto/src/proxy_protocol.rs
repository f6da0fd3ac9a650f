//! The PROXY protocol header (HAProxy's "PROXY protocol" specification,
//! versions 1 and 2) that a trusted load balancer sends at the start of a
//! TCP connection to say whose connection it is relaying.
//!
//! [`parse`] is check-then-parse: given the bytes read so far it answers
//! [`Parse::Incomplete`] (a prefix of a valid header: read more),
//! [`Parse::Done`] (the header and how many bytes it took; the rest is the
//! client's own stream) or [`Parse::Invalid`] (no header, or a broken one:
//! the connection is refused). It decides as early as possible: the first
//! byte that cannot start or continue a header is refused at once, without
//! waiting for more.
//!
//! * v1 is one text line of at most [`V1_MAX`] bytes, CRLF included:
//!   `PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n` or
//!   `PROXY UNKNOWN[ anything]\r\n`.
//! * v2 is the 12-byte signature, a version/command byte, a family byte, a
//!   16-bit length and that many bytes of addresses and TLVs. TLVs are
//!   skipped; a header longer than [`V2_MAX`] is refused.
//!
//! `UNKNOWN` (v1), `LOCAL` (v2: the balancer's own health check) and the
//! families without an IP address (`AF_UNSPEC`, `AF_UNIX`) give
//! [`Header::Local`]: the connection's own address stands.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The longest v1 header, `\r\n` included (the specification's 107 bytes).
pub const V1_MAX: usize = 107;
/// The longest v2 header accepted: the 16 fixed bytes and 1 KiB of
/// addresses and TLVs (an `AF_UNIX` block is 216 bytes; the TLVs balancers
/// send — ALPN, authority, SSL details, a unique id — fit easily).
pub const V2_MAX: usize = 16 + 1024;
/// The v2 signature.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

const V1_PREFIX: &[u8] = b"PROXY ";

/// A complete header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// The relayed connection's addresses.
    Proxied {
        /// The protocol version (1 or 2).
        version: u8,
        /// The client's address and port.
        source: SocketAddr,
        /// The address and port the client connected to.
        destination: SocketAddr,
    },
    /// No address to use (v1 `UNKNOWN`, v2 `LOCAL`, or a family without an
    /// IP address): the connection's own peer address stands.
    Local {
        /// The protocol version (1 or 2).
        version: u8,
    },
}

/// What the bytes read so far are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    /// A valid beginning: read more.
    Incomplete,
    /// A complete header, and the number of bytes it took.
    Done(Header, usize),
    /// Not a (valid) header: refuse the connection.
    Invalid(ProxyError),
}

/// Why a header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// The connection does not start with a PROXY header at all.
    #[error("the connection does not start with a PROXY protocol header")]
    Missing,
    /// A v1 line longer than 107 bytes or a v2 header over [`V2_MAX`].
    #[error("PROXY protocol header too long")]
    TooLong,
    /// A v1 line that is not `PROXY TCP4|TCP6|UNKNOWN ...` as specified.
    #[error("malformed PROXY protocol v1 line")]
    BadV1,
    /// A v2 version other than 2, or a command other than LOCAL and PROXY.
    #[error("unsupported PROXY protocol v2 version or command")]
    BadV2Command,
    /// A v2 address family that does not exist.
    #[error("unknown PROXY protocol v2 address family")]
    BadV2Family,
    /// A v2 length too short for its address family.
    #[error("PROXY protocol v2 length too short for its addresses")]
    BadV2Length,
}

/// Looks at the first bytes of a connection.
pub fn parse(buf: &[u8]) -> Parse {
    let Some(&first) = buf.first() else {
        return Parse::Incomplete;
    };
    match first {
        b'P' => parse_v1(buf),
        b'\r' => parse_v2(buf),
        _ => Parse::Invalid(ProxyError::Missing),
    }
}

/// `true` when `buf` and `expected` agree on their common length.
fn agrees(buf: &[u8], expected: &[u8]) -> bool {
    let n = buf.len().min(expected.len());
    buf[..n] == expected[..n]
}

fn parse_v1(buf: &[u8]) -> Parse {
    if !agrees(buf, V1_PREFIX) {
        return Parse::Invalid(ProxyError::Missing);
    }
    let window = &buf[..buf.len().min(V1_MAX)];
    // Only printable ASCII and spaces before the CR; the LF right after it.
    let mut end = None;
    for (i, &b) in window.iter().enumerate() {
        match b {
            b'\r' => {
                match window.get(i + 1) {
                    Some(b'\n') => end = Some(i),
                    Some(_) => return Parse::Invalid(ProxyError::BadV1),
                    None => {}
                }
                break;
            }
            b' '..=b'~' => {}
            _ => return Parse::Invalid(ProxyError::BadV1),
        }
    }
    let Some(end) = end else {
        return if window.len() >= V1_MAX {
            Parse::Invalid(ProxyError::TooLong)
        } else {
            Parse::Incomplete
        };
    };
    // ASCII only, checked above.
    let line = core::str::from_utf8(&buf[V1_PREFIX.len()..end]).unwrap_or("");
    match v1_line(line) {
        Some(header) => Parse::Done(header, end + 2),
        None => Parse::Invalid(ProxyError::BadV1),
    }
}

/// `TCP4 src dst sport dport`, `TCP6 ...` or `UNKNOWN[ ...]`.
fn v1_line(line: &str) -> Option<Header> {
    if line == "UNKNOWN" || line.starts_with("UNKNOWN ") {
        return Some(Header::Local { version: 1 });
    }
    let mut parts = line.split(' ');
    let family = parts.next()?;
    let (src, dst, sport, dport) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (src, dst): (IpAddr, IpAddr) = match family {
        "TCP4" => (
            src.parse::<Ipv4Addr>().ok()?.into(),
            dst.parse::<Ipv4Addr>().ok()?.into(),
        ),
        "TCP6" => (
            src.parse::<Ipv6Addr>().ok()?.into(),
            dst.parse::<Ipv6Addr>().ok()?.into(),
        ),
        _ => return None,
    };
    Some(Header::Proxied {
        version: 1,
        source: SocketAddr::new(src, v1_port(sport)?),
        destination: SocketAddr::new(dst, v1_port(dport)?),
    })
}

/// A decimal port, 0 to 65535, without a sign or leading zeros.
fn v1_port(s: &str) -> Option<u16> {
    let digits = !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = s.len() > 1 && s.starts_with('0');
    if !digits || leading_zero {
        return None;
    }
    s.parse().ok()
}

fn parse_v2(buf: &[u8]) -> Parse {
    if !agrees(buf, &V2_SIGNATURE) {
        return Parse::Invalid(ProxyError::Missing);
    }
    if let Some(&ver_cmd) = buf.get(12) {
        if ver_cmd >> 4 != 2 || ver_cmd & 0x0f > 1 {
            return Parse::Invalid(ProxyError::BadV2Command);
        }
    }
    if let Some(&fam) = buf.get(13) {
        if fam >> 4 > 3 || fam & 0x0f > 2 {
            return Parse::Invalid(ProxyError::BadV2Family);
        }
    }
    let (Some(&hi), Some(&lo)) = (buf.get(14), buf.get(15)) else {
        return Parse::Incomplete;
    };
    let (ver_cmd, fam) = (buf[12], buf[13]);
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    let total = 16 + len;
    if total > V2_MAX {
        return Parse::Invalid(ProxyError::TooLong);
    }
    let needed = match fam >> 4 {
        1 => 12,
        2 => 36,
        3 => 216,
        _ => 0,
    };
    // A LOCAL header's address block may be anything: it is ignored.
    let local = ver_cmd & 0x0f == 0;
    if !local && len < needed {
        return Parse::Invalid(ProxyError::BadV2Length);
    }
    if buf.len() < total {
        return Parse::Incomplete;
    }
    let a = &buf[16..total];
    let header = match (local, fam >> 4) {
        (false, 1) => {
            let ip = |i: usize| IpAddr::from([a[i], a[i + 1], a[i + 2], a[i + 3]]);
            let port = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
            Header::Proxied {
                version: 2,
                source: SocketAddr::new(ip(0), port(8)),
                destination: SocketAddr::new(ip(4), port(10)),
            }
        }
        (false, 2) => {
            let ip = |i: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&a[i..i + 16]);
                IpAddr::from(o)
            };
            let port = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
            Header::Proxied {
                version: 2,
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
            }
        }
        _ => Header::Local { version: 2 },
    };
    Parse::Done(header, total)
}

#[cfg(test)]
#[path = "proxy_protocol_tests.rs"]
mod tests;
