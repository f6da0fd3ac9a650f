//! The edge proxy's decisions, pure: what to send to the core for a message
//! from a WebSocket client, and where to send (and how to rewrite) a message
//! from the core. Stateless routing: flows are named by flow tokens
//! ([`super::flow_token`]) in our Via, Path and Record-Route entries; the
//! glue keeps the table flow id → live connection. The only state is
//! [`ClientState`] (per connection, bounded, no clock): the transport each
//! size-switched INVITE took, for its CANCEL and non-2xx ACK.
//!
//! Rules, each with its source (see `docs/sip.md`):
//!
//! * every request: Max-Forwards checked (483) and decremented, added as 70
//!   when missing (RFC 3261 §16.3 step 3, §16.6 step 3); `Proxy-Require`
//!   refused with 420 + `Unsupported` (§16.3 step 5); a Request-URI that is
//!   one of our Record-Route/Path URIs (a strict router upstream) restored
//!   from the last Route (§16.4); ACK is never answered (dropped instead).
//! * client request: `received`/`rport` on the top Via, sent-by untouched
//!   (RFC 3261 §18.2.1, RFC 3581 §4); out-of-dialog: every preloaded Route
//!   dropped (no open relay); in-dialog: our leading Route entries popped,
//!   their flow tokens compared with the sender (RFC 5626 §5.3: its own
//!   flow is "outgoing", another flow makes the request "incoming" for that
//!   flow, delivered there with [`route_client`]; forged: 403); `Path` on
//!   REGISTER (RFC 3327 §5.1, RFC 5626 §5.1); double Record-Route on
//!   dialog-forming requests (RFC 5658, RFC 7118 §8.2); our Via on top with
//!   a branch derived from the client's branch and the flow (stable for
//!   CANCEL and non-2xx ACK, §16.11 / §17.1.1.3); Content-Length set; the
//!   UDP size rule (§18.1.1), with CANCEL and non-2xx ACK on their INVITE's
//!   transport (§9.1). Always sent to the configured core.
//! * client response: our top Via popped, sent to the core (§18.2.2), or to
//!   the flow named by our next Via (the response to a request delivered
//!   from another client).
//! * core response: our top Via identifies the flow; popped (§16.7 step 3).
//! * core request: our Route entries popped, the token verified (forged:
//!   403, RFC 5626 §5.3); Record-Route pair on dialog-forming requests; our
//!   Via on top. Flow gone: [`flow_gone_response`] (430 or 480; ACK dropped).
//! * cluster (`EdgeConfig::node`): a valid token naming another node or a
//!   previous start of this one, from the core or in a client's in-dialog
//!   Route, is `FlowGone` (the same answer; ACK dropped).

mod client_side;
mod core_side;
mod rewrite;
mod types;

#[cfg(test)]
use crate::sip::flow_token::Flow;
pub use client_side::{from_client, route_client};
pub use core_side::{flow_gone_response, from_core, parse_error_response, transaction_key};
#[cfg(test)]
use rewrite::{derive_branch, our_tag};
pub use types::{
    ClientAction, ClientState, EdgeConfig, FlowCtx, FromClient, FromCore, CLIENT_STATE_BRANCHES,
    FLOW_PARAM,
};

#[cfg(test)]
#[path = "edge_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "edge_cluster_tests.rs"]
mod cluster_tests;
