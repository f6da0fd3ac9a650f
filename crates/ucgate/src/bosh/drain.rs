//! BOSH in the drain: a creation request is refused with HTTP 503 once the
//! drain has begun, so that the client (or the load balancer, with
//! `retry-on 503` and `redispatch`) creates the session on another node.
//! Why 503 and not a BOSH terminate condition: docs/cluster.md.

use std::net::SocketAddr;

use http::{header, HeaderValue, Response, StatusCode, Version};

use crate::response::Body;
use crate::{Phase, Shared};

/// True once the drain has begun: no new session here.
pub(super) fn refuses_new_sessions(shared: &Shared) -> bool {
    shared.control.current() >= Phase::Draining
}

/// The answer to a creation request during the drain (counted as a `503`
/// response, not as an error: nothing went wrong). Over HTTP/1.1 the
/// connection is closed after it, so that the client's retry opens a new
/// one, which the balancer sends to another node ([`for_version`] drops
/// the header over HTTP/2, where it does not exist).
pub(super) fn new_session_refused(rpath: &str, peer: SocketAddr) -> Response<Body> {
    tracing::debug!(route = rpath, %peer, "new BOSH session refused: draining");
    let mut r = crate::response::text(
        StatusCode::SERVICE_UNAVAILABLE,
        "this gateway is shutting down; create the session on another one",
    );
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// A response for a request of `version`: HTTP/2 has no `Connection`
/// header (RFC 9113 §8.2.2).
pub(super) fn for_version(mut r: Response<Body>, version: Version) -> Response<Body> {
    if version >= Version::HTTP_2 {
        r.headers_mut().remove(header::CONNECTION);
    }
    r
}
