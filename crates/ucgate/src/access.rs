//! The access log (`log.access`): one line per HTTP request, per ended
//! WebSocket and per ended BOSH session, on the `ucgate::access` target, in
//! the format of the rest of the log (human or JSON).
//!
//! A WebSocket's line is written when it ends (its handshake gets none, as
//! nginx logs an upgraded connection once), with the first close code that
//! crossed it, either way (`-` when it ended without one). A BOSH session's
//! line comes after the lines of its requests. Lines carry no payload, no
//! query string and no session id (a `sid` lets whoever holds it act in the
//! session).

use std::net::SocketAddr;

use std::time::Duration;

/// The target of every access line; [`crate::logging`] lets it through
/// whatever `log.level` says, unless `log.access = false`.
pub(crate) const TARGET: &str = "ucgate::access";

/// Longest request path written; the rest is cut (a client chooses it).
const MAX_PATH: usize = 256;

/// Bytes each way of one request or session.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Bytes {
    /// From the client.
    pub(crate) from_client: u64,
    /// To the client.
    pub(crate) to_client: u64,
}

/// One HTTP request answered (not an accepted WebSocket upgrade).
pub(crate) struct HttpLine<'a> {
    pub(crate) client: SocketAddr,
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) route: &'a str,
    pub(crate) http: &'static str,
    pub(crate) status: u16,
    pub(crate) took: Duration,
    pub(crate) bytes: Bytes,
}

pub(crate) fn http(l: HttpLine<'_>) {
    let path = cut(l.path, MAX_PATH);
    tracing::info!(
        target: TARGET,
        client = %l.client,
        kind = "http",
        method = l.method,
        path,
        route = l.route,
        http = l.http,
        status = l.status,
        ms = millis(l.took),
        bytes_in = l.bytes.from_client,
        bytes_out = l.bytes.to_client,
        "request"
    );
}

/// One WebSocket ended: `close` is the first close code sent or received,
/// `end` the reason counted in `ucgate_ws_closes_total`.
pub(crate) fn websocket(
    client: SocketAddr,
    route: &str,
    close: Option<u16>,
    end: &str,
    took: Duration,
    bytes: Bytes,
) {
    tracing::info!(
        target: TARGET,
        client = %client,
        kind = "websocket",
        route,
        close = %Code(close),
        end,
        ms = millis(took),
        bytes_in = bytes.from_client,
        bytes_out = bytes.to_client,
        "websocket ended"
    );
}

/// One BOSH session ended with `end` (its terminate condition or reason
/// label), after `requests` requests.
pub(crate) fn bosh(
    client: SocketAddr,
    route: &str,
    end: &str,
    requests: u64,
    took: Duration,
    bytes: Bytes,
) {
    tracing::info!(
        target: TARGET,
        client = %client,
        kind = "bosh",
        route,
        end,
        requests,
        ms = millis(took),
        bytes_in = bytes.from_client,
        bytes_out = bytes.to_client,
        "bosh session ended"
    );
}

/// `s` cut to at most `max` bytes on a character boundary: what a client
/// chose (a path, an Origin) goes into a log line bounded.
pub(crate) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

/// A close code, or `-` for none.
struct Code(Option<u16>);

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(c) => write!(f, "{c}"),
            None => f.write_str("-"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_are_cut_on_a_character_boundary() {
        assert_eq!(cut("/x", MAX_PATH), "/x");
        let long = format!("/{}", "é".repeat(200));
        let c = cut(&long, MAX_PATH);
        assert!(c.len() <= MAX_PATH && long.starts_with(c));
        assert_eq!(Code(None).to_string(), "-");
        assert_eq!(Code(Some(1001)).to_string(), "1001");
    }
}
