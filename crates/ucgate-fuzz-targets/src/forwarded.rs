//! The client behind trusted proxies (`ucgate_proto::forwarded`).
//!
//! Input: a flags byte, then newline-separated fields (lossy UTF-8): the
//! peer's address, the trusted networks (comma-separated), then lines
//! tagged by their first character: `f` a `Forwarded` line, `x` an
//! `X-Forwarded-For` line, `p` `X-Forwarded-Proto`, `h` `X-Forwarded-Host`.
//!
//! Invariants: deterministic; an untrusted peer is `Ignored` whatever it
//! sends; the client found is the peer, an address the headers name, or
//! (for an IPv4-mapped one) its IPv4 form;
//! a scheme is lower-case;
//! `Forwarded` lines that parse as a whole never make `resolve` fail.

use std::net::IpAddr;

use ucgate_proto::forwarded::{
    parse_forwarded, parse_x_forwarded_for, resolve, Headers, Node, Outcome, Source,
};
use ucgate_proto::netset::NetSet;

use crate::input::Input;

/// The target body.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.u8();
    let text = String::from_utf8_lossy(input.rest());
    let mut lines = text.split('\n');
    let peer: IpAddr = lines
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(if flags & 1 == 0 {
            IpAddr::from([127, 0, 0, 1])
        } else {
            IpAddr::from([10, 0, 0, 1])
        });
    let trusted_list: Vec<&str> = lines
        .next()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .collect();
    let trusted = NetSet::parse(&trusted_list)
        .unwrap_or_else(|_| NetSet::parse(&["127.0.0.0/8", "10.0.0.0/8"]).expect("literal"));
    let mut h = Headers::default();
    for l in lines {
        let mut chars = l.chars();
        let tag = chars.next();
        let rest = chars.as_str();
        match tag {
            Some('f') => h.forwarded.push(rest),
            Some('x') => h.x_forwarded_for.push(rest),
            Some('p') => h.x_forwarded_proto.push(rest),
            Some('h') => h.x_forwarded_host.push(rest),
            _ => {}
        }
    }
    let out = resolve(peer, &trusted, &h);
    assert_eq!(out, resolve(peer, &trusted, &h), "deterministic");
    if !trusted.contains(peer) {
        assert_eq!(out, Outcome::Ignored);
        return;
    }
    let present = |v: &[&str]| v.iter().any(|l| !l.trim_matches([' ', '\t']).is_empty());
    // Every address the chain names, when it parses as a whole.
    let named: Option<Vec<IpAddr>> = if present(&h.forwarded) {
        parse_forwarded(&h.forwarded).ok().map(|hops| {
            hops.into_iter()
                .filter_map(|hop| match hop.node {
                    Some(Node::Ip(ip, _)) => Some(ip.to_canonical()),
                    _ => None,
                })
                .collect()
        })
    } else {
        parse_x_forwarded_for(&h.x_forwarded_for).ok().map(|nodes| {
            nodes
                .into_iter()
                .filter_map(|n| match n {
                    Node::Ip(ip, _) => Some(ip.to_canonical()),
                    _ => None,
                })
                .collect()
        })
    };
    if present(&h.forwarded) && named.is_some() {
        assert!(
            !matches!(out, Outcome::Invalid(Source::Forwarded, _)),
            "{out:?}"
        );
    }
    if let Outcome::Found(c) = &out {
        if let Some(p) = &c.proto {
            assert_eq!(*p, p.to_ascii_lowercase());
        }
        if let Some(named) = named {
            assert!(
                c.ip == peer.to_canonical() || named.contains(&c.ip),
                "{} is neither the peer nor in the headers",
                c.ip
            );
        }
    }
}
