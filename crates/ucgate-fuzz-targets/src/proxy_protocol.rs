//! The PROXY protocol header parser (`ucgate_proto::proxy_protocol`).
//!
//! Input: the first bytes of a connection, as they are.
//!
//! Invariants (check-then-parse): the answer for every prefix is
//! `Incomplete` until the first prefix that is `Done` or `Invalid`, and
//! every longer prefix gives that same answer (a decision never changes
//! with more bytes); `Done` consumed exactly that prefix's length, at most
//! `V1_MAX` for v1 and `V2_MAX` for v2; no input stays `Incomplete` beyond
//! `V2_MAX` bytes.

use ucgate_proto::proxy_protocol::{parse, Header, Parse, V1_MAX, V2_MAX};

/// The target body.
pub fn run(data: &[u8]) {
    let limit = data.len().min(V2_MAX + 1);
    let mut decided: Option<(usize, Parse)> = None;
    for n in 0..=limit {
        let p = parse(&data[..n]);
        match decided {
            Some((_, d)) => assert_eq!(p, d, "the answer changed at {n} bytes"),
            None if p == Parse::Incomplete => {}
            None => decided = Some((n, p)),
        }
    }
    match decided {
        None => assert!(
            data.len() <= V2_MAX,
            "Incomplete after {} bytes",
            data.len()
        ),
        Some((n, Parse::Done(h, consumed))) => {
            assert_eq!(consumed, n, "Done as soon as the header is complete");
            let version = match h {
                Header::Proxied { version, .. } | Header::Local { version } => version,
            };
            let max = if version == 1 { V1_MAX } else { V2_MAX };
            assert!(consumed <= max, "v{version} header of {consumed} bytes");
        }
        Some(_) => {}
    }
}
