//! A byte-preserving SIP message scanner and editor (RFC 3261 §7, §20).
//!
//! [`parse`] finds the start line, the header lines and the body without
//! copying or re-encoding anything: every header is a set of byte spans into
//! the original message. [`Editor`] builds the output by copying the original
//! bytes and splicing in only the edited lines, so odd-but-legal formatting
//! (folding, compact names, spacing, case) survives untouched.
//!
//! Scanning is lenient where RFC 3261 is (leading CRLFs, bare LF line ends,
//! LWS around `:` `/` `;` `=`), strict where an edge proxy must be (limits,
//! mandatory headers, Content-Length, one message per WebSocket message).
//!
//! | file | owns |
//! |---|---|
//! | `types.rs` | the types ([`Message`], [`Header`], [`SipError`], [`SipLimits`]), header names, the accessors |
//! | `lex.rs` | tokens, LWS, line ends, comma lists, `;name=value` parameters |
//! | `grammar.rs` | strict whole-value checks ([`address_ok`], [`via_ok`], parameters, URIs) |
//! | `values.rs` | [`Via`], [`NameAddr`], [`SipUri`] parsed into spans |
//! | `scan.rs` | [`scan`], [`parse`], [`parse_datagram`] and their checks |
//! | `editor.rs` | [`Editor`] |
//! | `response.rs` | [`make_response`], [`error_response`] |

mod editor;
mod grammar;
mod lex;
mod response;
mod scan;
mod types;
mod values;

pub use editor::Editor;
pub use grammar::{address_ok, via_ok};
pub(crate) use lex::is_token;
pub use lex::{param, params, split_commas, Param};
pub use response::{error_response, make_response};
pub use scan::{parse, parse_datagram, scan};
pub use types::{
    canonical_name, Header, HeaderName, Known, Message, SipError, SipLimits, StartLine, Value,
};
pub use values::{parse_name_addr, parse_sip_uri, parse_via, NameAddr, SipUri, Via};
