//! `[bosh]`: limits of the BOSH connection manager (XEP-0124/0206).
//! Documented in docs/config.md and docs/bosh.md.

use std::time::Duration;

use super::common::SEC;
use super::reader::{Ctx, Table};

/// `[bosh]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoshConfig {
    /// Longest a request is held before an empty answer (the client's `wait` is clamped to it).
    pub max_wait: Duration,
    /// Most requests held at once (the client's `hold` is clamped to it).
    pub max_hold: u32,
    /// Most simultaneous requests (`requests`, normally hold + 1).
    pub max_requests: u32,
    /// A session with no request for this long is terminated.
    pub inactivity: Duration,
    /// Shortest interval between empty requests of a polling session.
    pub polling: Duration,
    /// Longest `pause` a client may ask for.
    pub max_pause: Duration,
    /// Server data waiting for a request, per session, before the gateway stops reading the server.
    pub max_pending_bytes: usize,
    /// Largest request body.
    pub max_body_size: usize,
    /// Most sessions at once.
    pub max_sessions: usize,
    /// Most sessions at once from one client IP address.
    pub max_sessions_per_ip: usize,
    /// Answer CORS with `Access-Control-Allow-Credentials: true`.
    pub cors_credentials: bool,
    /// At the end of the drain, `see-other-uri` with this http(s) URI
    /// instead of `system-shutdown`.
    pub drain_see_other_uri: Option<String>,
}

impl Default for BoshConfig {
    fn default() -> Self {
        BoshConfig {
            max_wait: 60 * SEC,
            max_hold: 1,
            max_requests: 2,
            inactivity: 60 * SEC,
            polling: 2 * SEC,
            max_pause: 120 * SEC,
            max_pending_bytes: 1 << 20,
            max_body_size: 256 << 10,
            max_sessions: 10_000,
            max_sessions_per_ip: 100,
            cors_credentials: false,
            drain_see_other_uri: None,
        }
    }
}

pub(super) const BOSH_KEYS: &[&str] = &[
    "max_wait",
    "max_hold",
    "max_requests",
    "inactivity",
    "polling",
    "max_pause",
    "max_pending_bytes",
    "max_body_size",
    "max_sessions",
    "max_sessions_per_ip",
    "cors_credentials",
    "drain_see_other_uri",
];

/// Reads `[bosh]` (defaults when absent).
pub(super) fn read_bosh(ctx: &mut Ctx<'_>, top: &mut Table<'_, '_>) -> BoshConfig {
    let mut b = BoshConfig::default();
    let Some(mut t) = top.table(ctx, "bosh", BOSH_KEYS) else {
        return b;
    };
    if let Some(d) = t.duration(ctx, "max_wait", SEC..=Duration::from_secs(3600)) {
        b.max_wait = d;
    }
    if let Some(n) = t.integer(ctx, "max_hold", 0..=16) {
        b.max_hold = n as u32;
    }
    if let Some(n) = t.integer(ctx, "max_requests", 1..=17) {
        b.max_requests = n as u32;
    }
    if let Some(d) = t.duration(ctx, "inactivity", SEC..=Duration::from_secs(3600)) {
        b.inactivity = d;
    }
    if let Some(d) = t.duration(ctx, "polling", Duration::ZERO..=Duration::from_secs(3600)) {
        b.polling = d;
    }
    if let Some(d) = t.duration(
        ctx,
        "max_pause",
        Duration::ZERO..=Duration::from_secs(86_400),
    ) {
        b.max_pause = d;
    }
    if let Some(n) = t.size(ctx, "max_pending_bytes", 1024..=256 << 20) {
        b.max_pending_bytes = n as usize;
    }
    if let Some(n) = t.size(ctx, "max_body_size", 1024..=64 << 20) {
        b.max_body_size = n as usize;
    }
    if let Some(n) = t.integer(ctx, "max_sessions", 1..=10_000_000) {
        b.max_sessions = n as usize;
    }
    if let Some(n) = t.integer(ctx, "max_sessions_per_ip", 1..=10_000_000) {
        b.max_sessions_per_ip = n as usize;
    }
    if let Some(v) = t.bool(ctx, "cors_credentials") {
        b.cors_credentials = v;
    }
    if let Some(u) = t.string(
        ctx,
        "drain_see_other_uri",
        "a URL such as \"https://chat.example.org/http-bind\"",
    ) {
        match super::xmpp::check_url(&u.value, &["http", "https"]) {
            Ok(()) => b.drain_see_other_uri = Some(u.value),
            Err(e) => ctx.error(
                u.span,
                &u.key,
                format!("{e}; expected an absolute http:// or https:// URL such as \"https://chat.example.org/http-bind\", where the clients log in again"),
            ),
        }
    }
    if b.max_requests < b.max_hold + 1 {
        ctx.error(
            t.value_span("max_requests").unwrap_or(t.span()),
            &t.key("max_requests"),
            "must be at least `max_hold` + 1 (XEP-0124 §11: a client holding `hold` requests needs one more to send data)",
        );
    }
    t.finish(ctx);
    b
}
