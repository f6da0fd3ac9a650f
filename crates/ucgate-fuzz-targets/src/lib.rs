//! The bodies of ucgate's fuzz targets.
//!
//! Each module has one `run(&[u8])`: the cargo-fuzz target in
//! `fuzz/fuzz_targets/<name>.rs` calls it, and the stable test
//! `tests/replay.rs` calls it on every committed corpus file and crash
//! reproducer, so the replay runs exactly the code the fuzzer ran. A target
//! panics (an `assert!`) when an invariant breaks, not only when the code
//! under test panics. See `docs/fuzzing.md`.
#![forbid(unsafe_code)]

pub mod input;

pub mod bosh_body;
pub mod bosh_session;
pub mod config;
pub mod forwarded;
pub mod proxy_protocol;
pub mod sip_edge;
pub mod sip_message;
pub mod websocket_handshake;
pub mod xml_splitter;
pub mod xml_validate;
pub mod xmpp_ws_translator;

/// A target: its name (the file in `fuzz/fuzz_targets/` and the folders in
/// `fuzz/corpus/` and `fuzz/regressions/`) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: &[Target] = &[
    ("bosh_body", bosh_body::run),
    ("bosh_session", bosh_session::run),
    ("config", config::run),
    ("forwarded", forwarded::run),
    ("proxy_protocol", proxy_protocol::run),
    ("sip_edge", sip_edge::run),
    ("sip_message", sip_message::run),
    ("websocket_handshake", websocket_handshake::run),
    ("xml_splitter", xml_splitter::run),
    ("xml_validate", xml_validate::run),
    ("xmpp_ws_translator", xmpp_ws_translator::run),
];
