//! Who the client is: the one place that decides a connection's client
//! address, and the per-address connection limit enforced at accept.
//!
//! Every use of "the client's address" (logs, `bosh.max_sessions_per_ip`,
//! `server.max_connections_per_ip`, the SIP `received` of a WebSocket
//! client) takes the value decided here:
//!
//! * per connection, [`client_addr`] of the TCP peer, or of the source in
//!   the PROXY protocol header a trusted proxy sent (`server.rs`); that is
//!   the address `server.max_connections_per_ip` counts;
//! * per request, [`request_client`]: when that address is one of
//!   `server.trusted_proxies`, the client its `Forwarded` or
//!   `X-Forwarded-*` headers name (rules in `ucgate_proto::forwarded`),
//!   with the scheme and host the client used, for the same-origin check.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use http::HeaderMap;
use ucgate_proto::forwarded::{self, Headers, Outcome};
use ucgate_proto::side::Side;

use crate::Shared;

/// The client's address of a connection accepted from `tcp_peer`. Today
/// that is the TCP peer itself, with IPv4-mapped IPv6 addresses (a dual
/// stack listener) written as IPv4, so that one client is one key.
pub(crate) fn client_addr(tcp_peer: SocketAddr) -> SocketAddr {
    match tcp_peer.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), tcp_peer.port()),
            None => tcp_peer,
        },
        IpAddr::V4(_) => tcp_peer,
    }
}

/// The client of one request, as the same-origin check and every
/// per-client rule see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestClient {
    /// The client's address (port 0 when a forwarding header named the
    /// address without its port).
    pub(crate) addr: SocketAddr,
    /// The page's scheme is `https`: the connection came over TLS, or a
    /// trusted proxy said the client used `https`.
    pub(crate) secure: bool,
    /// The `Host` the client sent to a trusted proxy, when it said so.
    pub(crate) host: Option<String>,
}

/// The client of a request that arrived on a connection whose client is
/// `peer` (over TLS when `secure`).
pub(crate) fn request_client(
    shared: &Shared,
    peer: SocketAddr,
    secure: bool,
    headers: &HeaderMap,
) -> RequestClient {
    let own = RequestClient {
        addr: peer,
        secure,
        host: None,
    };
    let trusted = &shared.config.server.trusted_proxies;
    if !trusted.contains(peer.ip()) {
        return own;
    }
    // Bytes that are not text fail the parse, as they should.
    let lines = |name: &str| -> Vec<Cow<'_, str>> {
        headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .collect()
    };
    let (f, xf, xp, xh) = (
        lines("forwarded"),
        lines("x-forwarded-for"),
        lines("x-forwarded-proto"),
        lines("x-forwarded-host"),
    );
    let h = Headers {
        forwarded: refs(&f),
        x_forwarded_for: refs(&xf),
        x_forwarded_proto: refs(&xp),
        x_forwarded_host: refs(&xh),
    };
    match forwarded::resolve(peer.ip(), trusted, &h) {
        Outcome::Ignored | Outcome::Absent => own,
        Outcome::Found(c) => RequestClient {
            addr: SocketAddr::new(c.ip, c.port.unwrap_or(0)),
            secure: c.secure().unwrap_or(secure),
            host: c.host,
        },
        Outcome::Invalid(source, e) => {
            shared
                .metrics
                .error("none", Side::Client, "forwarded_invalid");
            tracing::info!(%peer, header = source.header(), error = %e, "a trusted proxy sent a malformed header; the request keeps the proxy's address");
            own
        }
    }
}

fn refs<'a>(v: &'a [Cow<'_, str>]) -> Vec<&'a str> {
    v.iter().map(|c| c.as_ref()).collect()
}

/// Open connections per client address (`server.max_connections_per_ip`).
/// A map entry exists only while its address has a connection open.
pub(crate) struct PerIpLimit {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; dropping it frees the slot.
pub(crate) struct IpSlot {
    limit: Arc<PerIpLimit>,
    ip: IpAddr,
}

impl PerIpLimit {
    /// `max` connections per address; 0 means no limit (nothing is counted).
    pub(crate) fn new(max: usize) -> Arc<PerIpLimit> {
        Arc::new(PerIpLimit {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more connection from `ip`, or `None` at the limit.
    /// `Some(None)` when there is no limit.
    pub(crate) fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<Option<IpSlot>> {
        if self.max == 0 {
            return Some(None);
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Some(IpSlot {
            limit: Arc::clone(self),
            ip,
        }))
    }

    /// Connections open from `ip` (for tests and the status view).
    #[cfg(test)]
    fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.limit.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ipv6_is_the_ipv4_client() {
        let mapped: SocketAddr = "[::ffff:192.0.2.7]:4000".parse().unwrap();
        assert_eq!(client_addr(mapped), "192.0.2.7:4000".parse().unwrap());
        let v6: SocketAddr = "[2001:db8::1]:4000".parse().unwrap();
        assert_eq!(client_addr(v6), v6);
    }

    #[test]
    fn the_limit_counts_per_address_and_frees_on_drop() {
        let limit = PerIpLimit::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let s1 = limit.acquire(a).unwrap();
        let _s2 = limit.acquire(a).unwrap();
        assert!(limit.acquire(a).is_none(), "third from a refused");
        let _sb = limit.acquire(b).expect("b has its own count");
        drop(s1);
        assert_eq!(limit.open_from(a), 1);
        let _s3 = limit.acquire(a).expect("a slot freed");
        drop(_s2);
        drop(_s3);
        assert_eq!(limit.open_from(a), 0);
        assert!(
            limit.open.lock().unwrap().get(&a).is_none(),
            "no entry kept"
        );
    }

    #[test]
    fn zero_means_no_limit_and_no_state() {
        let limit = PerIpLimit::new(0);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let slots: Vec<_> = (0..1000).map(|_| limit.acquire(a).unwrap()).collect();
        assert!(slots.iter().all(Option::is_none));
        assert_eq!(limit.open_from(a), 0);
    }
}
