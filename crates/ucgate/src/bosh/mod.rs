//! The BOSH connection manager (route kind `bosh`, XEP-0124/0206): HTTP
//! handling, the session registry and one actor task per session. The
//! session rules are in `ucgate_proto::bosh`.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::http::Body;
use crate::{RouteRuntime, Shared};

/// Handles a request on a `bosh` route.
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    route: &Arc<RouteRuntime>,
    _peer: SocketAddr,
    _req: Request<Incoming>,
) -> Response<Body> {
    shared.metrics.response(&route.config.path, 501);
    crate::http::text(StatusCode::NOT_IMPLEMENTED, "BOSH is being built")
}
