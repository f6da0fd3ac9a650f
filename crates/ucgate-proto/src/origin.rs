//! `Origin` checks for WebSocket upgrades (RFC 6455 §4.2.2 point 4, §10.2;
//! origins as defined by RFC 6454).
//!
//! A browser always sends `Origin` on a WebSocket handshake; other clients
//! usually do not. The check protects users' browsers from cross-site
//! WebSocket hijacking (a page on another site opening a socket to a service
//! behind the gateway), so:
//!
//! * a request **without** `Origin` is not a browser request and is allowed;
//! * [`OriginPolicy::SameOrigin`] (the default) allows only pages served from
//!   the gateway's own scheme, host and port;
//! * [`OriginPolicy::List`] allows exactly the listed origins, where an entry
//!   may start its host with `*.` to allow every subdomain;
//! * [`OriginPolicy::Any`] allows every origin (`origins = ["*"]`).
//!
//! Comparison is on normalised origins: scheme and host lower-cased, default
//! ports (80 for http/ws, 443 for https/wss) removed.
//!
//! [`check`] decides which configured entries can never match what a
//! browser sends, [`hint`] what to tell the operator when an origin is
//! refused, [`refused`] keeps the recently refused origins of a route.

pub mod check;
pub mod hint;
mod policy;
pub mod refused;

pub(crate) use policy::split_host_port;
pub use policy::{Origin, OriginError, OriginPolicy};

impl OriginPolicy {
    /// Builds a policy from the configured list: empty means same-origin,
    /// `["*"]` means any; the first entry that can never match is the error
    /// ([`check::check_list`] reports them all, with warnings).
    pub fn from_list<S: AsRef<str>>(
        list: &[S],
    ) -> Result<OriginPolicy, (usize, check::EntryError)> {
        match check::check_list(list) {
            (Some(p), _) => Ok(p),
            (None, findings) => Err(findings
                .into_iter()
                .find_map(|(i, f)| match f {
                    check::Finding::Error(e) => Some((i, e)),
                    check::Finding::Warning(_) => None,
                })
                .unwrap_or((0, check::EntryError::Malformed))),
        }
    }
}
