//! SIP over WebSocket (route kind `sip-websocket`, RFC 7118): the I/O glue
//! around the pure edge proxy in `ucgate_proto::sip`.
//!
//! | module | owns |
//! |---|---|
//! | [`core`] | per-route [`SipRuntime`]: the flow table, the UDP socket and TCP connections to and from the core |
//! | [`adapter`] | one task per WebSocket client (a flow) |
//!
//! See `docs/sip.md`.

pub(crate) mod adapter;
pub(crate) mod core;

pub(crate) use self::core::SipRuntime;
