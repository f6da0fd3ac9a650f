//! What happens to a WebSocket message from a SIP client before the edge
//! routes it ([`super::edge::route_client`]), and the answer when the core
//! cannot take a request: the per-connection rate limit (one-second windows,
//! `sip.max_messages_per_second`), the CRLF keep-alive (RFC 5626 §4.4.1, as
//! JsSIP and SIP.js send it over WebSocket), parse errors answered with
//! their 4xx, unparseable messages counted until `sip.max_garbage` in a row
//! ends the connection with 1008, and 503 for what cannot be delivered (ACK
//! never gets an answer, RFC 3261 §17.1.1.3).
//!
//! Time is an input: the glue passes the time since the connection opened.

use std::time::Duration;

use super::edge;
use super::message::{self, Message, SipLimits};

/// The limits of one route's client connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateLimits {
    /// Messages per one-second window; the first one over ends the
    /// connection.
    pub max_messages_per_second: u32,
    /// Unparseable messages in a row that end the connection.
    pub max_garbage: u32,
}

/// How the gate ends a connection: the WebSocket close and the label of
/// the end for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateClose {
    /// WebSocket close code.
    pub code: u16,
    /// Close reason.
    pub reason: &'static str,
    /// The end's label (`ucgate_ws_closes_total{cause}` and logs).
    pub end: &'static str,
}

/// The close for a client over its rate: 1008 (policy violation).
pub const RATE_LIMIT_CLOSE: GateClose = GateClose {
    code: 1008,
    reason: "too many messages",
    end: "rate_limit",
};

/// The close after `max_garbage` unparseable messages in a row: 1008.
pub const GARBAGE_CLOSE: GateClose = GateClose {
    code: 1008,
    reason: "unparseable SIP messages",
    end: "garbage",
};

/// The answer to a CRLF CRLF keep-alive ping (RFC 5626 §4.4.1), sent as a
/// text message.
pub const KEEPALIVE_PONG: &str = "\r\n";

/// What to do with one message from the client.
#[derive(Debug, Clone)]
pub enum Inbound<'a> {
    /// A CRLF keep-alive: answer [`KEEPALIVE_PONG`] when `pong` (a CRLF
    /// CRLF ping), else nothing.
    Keepalive {
        /// Answer the ping.
        pong: bool,
    },
    /// A parsed message for [`super::edge::route_client`].
    Route(Message<'a>),
    /// A message the parser refused, with its answer (400 and the like);
    /// counted as `error`.
    Answer {
        /// The response to send the client.
        response: Vec<u8>,
        /// Error kind label.
        error: &'static str,
    },
    /// An unparseable message with no answer, counted as `error`; the
    /// connection goes on.
    Ignore {
        /// Error kind label.
        error: &'static str,
    },
    /// End the connection: send `response` (if any), then close; counted
    /// as `error`.
    End {
        /// An answer to send first (503 to a request over the rate).
        response: Option<Vec<u8>>,
        /// Error kind label.
        error: &'static str,
        /// The close.
        close: GateClose,
    },
}

/// Per-connection state: the rate window and the run of unparseable
/// messages. A few words; no storage.
#[derive(Debug, Clone)]
pub struct ClientGate {
    limits: GateLimits,
    window_start: Duration,
    window_count: u32,
    garbage: u32,
}

impl ClientGate {
    /// A gate for a connection opened at time zero.
    pub fn new(limits: GateLimits) -> Self {
        ClientGate {
            limits,
            window_start: Duration::ZERO,
            window_count: 0,
            garbage: 0,
        }
    }

    /// Decides about one client message `data` received at `now` (since
    /// the connection opened). `key` derives the To tag of a parse error's
    /// answer; `flow_id` names the connection in the 503's To tag.
    pub fn on_message<'a>(
        &mut self,
        now: Duration,
        data: &'a [u8],
        limits: &SipLimits,
        key: &[u8],
        flow_id: u64,
    ) -> Inbound<'a> {
        if now.saturating_sub(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.window_count = 0;
        }
        self.window_count = self.window_count.saturating_add(1);
        if self.window_count > self.limits.max_messages_per_second {
            let response = message::parse(data, limits)
                .ok()
                .and_then(|m| service_unavailable(&m, &format!("ucgate-rl{flow_id}")));
            return Inbound::End {
                response,
                error: "sip_rate_limit",
                close: RATE_LIMIT_CLOSE,
            };
        }
        if data.iter().all(|b| *b == b'\r' || *b == b'\n') {
            return Inbound::Keepalive {
                pong: data == b"\r\n\r\n",
            };
        }
        match message::parse(data, limits) {
            Ok(m) => {
                self.garbage = 0;
                Inbound::Route(m)
            }
            Err(e) => match edge::parse_error_response(data, limits, &e, key) {
                Some(response) => {
                    self.garbage = 0;
                    Inbound::Answer {
                        response,
                        error: "sip_bad_request",
                    }
                }
                None => {
                    self.garbage = self.garbage.saturating_add(1);
                    if self.garbage >= self.limits.max_garbage {
                        Inbound::End {
                            response: None,
                            error: "sip_garbage",
                            close: GARBAGE_CLOSE,
                        }
                    } else {
                        Inbound::Ignore {
                            error: "sip_garbage",
                        }
                    }
                }
            },
        }
    }
}

/// The answer to a client's request the core cannot take (no link, or the
/// link failed while the request waited): `503 Service Unavailable` with
/// `Retry-After: 5`, rather than letting the client's transaction time out.
/// `None` for ACK (never answered) and for responses.
pub fn core_unreachable_response(msg: &Message<'_>, flow_id: u64) -> Option<Vec<u8>> {
    service_unavailable(msg, &format!("ucgate-core{flow_id}"))
}

fn service_unavailable(msg: &Message<'_>, tag: &str) -> Option<Vec<u8>> {
    if !msg.is_request() || msg.method() == Some("ACK") {
        return None;
    }
    Some(message::make_response(
        msg,
        503,
        "Service Unavailable",
        tag,
        &[("Retry-After", "5")],
    ))
}

#[cfg(test)]
#[path = "gate_tests.rs"]
mod tests;
