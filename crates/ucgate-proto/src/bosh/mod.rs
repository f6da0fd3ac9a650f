//! BOSH connection manager core (XEP-0124 1.11 + XEP-0206 1.4), pure.
//!
//! * [`body`]: strict parsing of request `<body/>` wrappers (payloads made
//!   standalone and namespace-complete) and rendering of responses.
//! * [`condition`]: the terminal binding conditions with their HTTP
//!   status, and [`terminate_body`] for requests with no session.
//! * [`session`]: one session as a state machine with explicit time:
//!   creation and clamping, the `rid` window and in-order processing,
//!   `hold`/`requests`/`wait`, acknowledgements and reports, the response
//!   cache for re-sent requests, overactivity and polling, inactivity and
//!   pause, termination, stream restarts, keys.
//! * [`sha1`]: SHA-1 for the §15 key sequence.
//! * [`sid`]: session ids that name their owning node in a cluster.
//! * [`forward`]: the HMAC that authenticates a request one cluster node
//!   forwards to another.
//!
//! * [`drain`]: when and how sessions end in the gateway's drain.
//! * [`bridge`]: the session joined to the RFC 7395 translator of
//!   `crate::xmpp_ws` through typed events: what a BOSH actor carries out
//!   ([`Step`]) and what it reports back from the XMPP server connection.
//!
//! What the glue does around it: HTTP (POST only, CORS, Content-Type from
//! [`Session::content_type`]), choosing unpredictable `sid`s, mapping
//! `sid` → session (unknown `sid`: [`terminate_body`] with
//! `item-not-found`), the socket to the XMPP server (the bridge's
//! [`Step::Server`] steps), and timers ([`Bridge::next_deadline`]) and
//! backpressure ([`Bridge::accepts_server_data`]). See `docs/bosh.md`.

pub mod body;
pub mod bridge;
pub mod condition;
pub mod drain;
pub mod forward;
mod ridmap;
pub mod session;
pub mod sha1;
pub mod sid;

#[cfg(test)]
mod tests;

pub use body::{
    parse_request, parse_response, peek_sid, BodyError, BodyType, Request, Response, Route,
};
pub use bridge::{Bridge, Step};
pub use condition::{terminate_body, terminate_body_legacy, Condition};
pub use drain::DrainEnd;
pub use session::{Action, EndReason, RequestId, Session, SessionLimits};
