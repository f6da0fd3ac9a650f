//! XMPP over WebSocket (RFC 7395) toward XMPP servers over TCP: the I/O side.
//! The protocol decisions are in `ucgate_proto` (`srv`, `hostmeta`, …).

pub(crate) mod adapter;
pub mod resolve;
pub(crate) mod server;
