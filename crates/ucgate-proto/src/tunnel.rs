//! The generic WebSocket ⇄ TCP tunnel: message policy and close codes.
//!
//! * Client → backend: the payload of every data message (binary, or text
//!   taken as its UTF-8 bytes) is written to the backend as is. Message
//!   boundaries are not preserved (TCP is a byte stream).
//! * Backend → client: bytes read from the backend are sent as binary
//!   messages of at most the route's `max_message_size`.
//! * WebSocket has no half-close, so each side's end is mapped to the
//!   closest signal on the other side without cutting data still in flight
//!   (see `docs/lifecycle-websocket.md`): the backend's EOF becomes a close
//!   frame 1000 after every byte before it was sent, and data frames the
//!   client sent before it saw that close are still written to the backend;
//!   the client's close frame becomes a TCP FIN (`shutdown(Write)`) toward the
//!   backend after every message before it was written.
//!
//! [`CloseCause`] is the single table from "why the gateway closes a
//! WebSocket" to the close code (RFC 6455 §7.4.1) and the metric labels,
//! for every WebSocket route; [`ReceiveError`] is how a client's frames can
//! break the protocol, and maps onto it; [`EndReason`] names how a
//! connection ended.

use crate::side::Side;

/// Why the gateway closes a tunnel's WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCause {
    /// The backend closed its side normally (EOF).
    BackendClosed,
    /// No data in either direction for the route's `idle_timeout`.
    Idle,
    /// The gateway is shutting down.
    Shutdown,
    /// A client message exceeded `max_message_size` or `max_frame_size`.
    MessageTooBig,
    /// Reading from or writing to the backend failed (reset, TLS error…).
    BackendError,
    /// The client broke the WebSocket framing (unmasked frame, RSV bits,
    /// reserved opcode, bad control frame, bad continuation…).
    ProtocolError,
    /// A text message from the client was not UTF-8.
    InvalidUtf8,
    /// The client stopped answering pings.
    DeadPeer,
    /// A fault inside the gateway.
    Internal,
}

impl CloseCause {
    /// The close code and reason sent to the client.
    pub fn code(self) -> (u16, &'static str) {
        match self {
            CloseCause::BackendClosed => (1000, "backend closed"),
            CloseCause::Idle => (1000, "idle timeout"),
            CloseCause::Shutdown => (1001, "gateway shutting down"),
            CloseCause::MessageTooBig => (1009, "message too big"),
            CloseCause::BackendError => (1011, "backend error"),
            CloseCause::ProtocolError => (1002, "protocol error"),
            CloseCause::InvalidUtf8 => (1007, "invalid UTF-8 in a text message"),
            CloseCause::DeadPeer => (1001, "no pong received"),
            CloseCause::Internal => (1011, "internal error"),
        }
    }

    /// Which side the cause is attributed to in metrics (`side` label).
    pub fn side(self) -> Side {
        match self {
            CloseCause::BackendClosed | CloseCause::BackendError => Side::Backend,
            CloseCause::MessageTooBig
            | CloseCause::ProtocolError
            | CloseCause::InvalidUtf8
            | CloseCause::DeadPeer => Side::Client,
            CloseCause::Idle | CloseCause::Shutdown | CloseCause::Internal => Side::Gateway,
        }
    }

    /// A stable label for metrics and logs (`kind` label).
    pub fn label(self) -> &'static str {
        match self {
            CloseCause::BackendClosed => "backend_closed",
            CloseCause::Idle => "idle",
            CloseCause::Shutdown => "shutdown",
            CloseCause::MessageTooBig => "message_too_big",
            CloseCause::BackendError => "backend_error",
            CloseCause::ProtocolError => "protocol_error",
            CloseCause::InvalidUtf8 => "invalid_utf8",
            CloseCause::DeadPeer => "dead_peer",
            CloseCause::Internal => "internal",
        }
    }

    /// True for endings that are errors (counted in `ucgate_errors_total`).
    pub fn is_error(self) -> bool {
        !matches!(
            self,
            CloseCause::BackendClosed | CloseCause::Idle | CloseCause::Shutdown
        )
    }
}

/// How a WebSocket connection ended: the `reason` label of
/// `ucgate_ws_closes_total` and the `end` of the closing log line, for
/// every WebSocket route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The gateway closed it for this cause (its [`CloseCause::label`]).
    Gateway(CloseCause),
    /// The client sent a close frame (`client_closed`).
    ClientClosed,
    /// The connection broke without a close frame (`client_gone`).
    ClientGone,
    /// An ending of the route's own protocol, labelled by its pure module
    /// (SIP `rate_limit`, XMPP stream conditions…).
    Route(&'static str),
}

impl EndReason {
    /// The label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            EndReason::Gateway(c) => c.label(),
            EndReason::ClientClosed => "client_closed",
            EndReason::ClientGone => "client_gone",
            EndReason::Route(label) => label,
        }
    }
}

impl From<CloseCause> for EndReason {
    fn from(c: CloseCause) -> EndReason {
        EndReason::Gateway(c)
    }
}

/// How the frames a client sent break RFC 6455, as far as the receiving
/// side can tell. Each one fails the connection (§7.1.7): the gateway sends
/// the close frame of [`CloseCause::from`] and closes the TCP connection
/// without reading further frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiveError {
    /// A frame breaks §5: unmasked (§5.1), non-zero RSV bits without an
    /// extension (§5.2), a reserved opcode, a control frame over 125 bytes
    /// or fragmented (§5.5), a continuation without a start or a new
    /// message inside one (§5.4), a malformed close frame (§5.5.1).
    Protocol,
    /// A text message (or a close reason) is not valid UTF-8 (§8.1).
    InvalidUtf8,
    /// A frame or message over the route's `max_frame_size` or
    /// `max_message_size`.
    TooBig,
}

impl From<ReceiveError> for CloseCause {
    /// RFC 6455 §7.4.1: 1002 protocol error, 1007 data inconsistent with
    /// the message type, 1009 message too big.
    fn from(e: ReceiveError) -> CloseCause {
        match e {
            ReceiveError::Protocol => CloseCause::ProtocolError,
            ReceiveError::InvalidUtf8 => CloseCause::InvalidUtf8,
            ReceiveError::TooBig => CloseCause::MessageTooBig,
        }
    }
}

/// Rule for a backend that cannot be reached: the gateway dials the backend
/// *before* answering the upgrade, and a failure is answered with HTTP 502
/// (or 504 when the connect timed out). Browsers report an HTTP error status
/// on a failed handshake clearly, whereas a 1014 close after a successful
/// upgrade looks like a dropped connection. Returns the HTTP status.
pub fn backend_unreachable_status(timed_out: bool) -> u16 {
    if timed_out {
        504
    } else {
        502
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_follow_rfc6455() {
        assert_eq!(CloseCause::BackendClosed.code().0, 1000);
        assert_eq!(CloseCause::Shutdown.code().0, 1001);
        assert_eq!(CloseCause::MessageTooBig.code().0, 1009);
        assert_eq!(CloseCause::BackendError.code().0, 1011);
        assert_eq!(CloseCause::Internal.code().0, 1011);
        assert_eq!(CloseCause::ProtocolError.code().0, 1002);
        assert_eq!(CloseCause::InvalidUtf8.code().0, 1007);
        // reasons fit in a control frame (123 bytes max, RFC 6455 §5.5)
        for c in [
            CloseCause::BackendClosed,
            CloseCause::Idle,
            CloseCause::Shutdown,
            CloseCause::MessageTooBig,
            CloseCause::BackendError,
            CloseCause::ProtocolError,
            CloseCause::InvalidUtf8,
            CloseCause::DeadPeer,
            CloseCause::Internal,
        ] {
            assert!(c.code().1.len() <= 123);
            assert!(!c.label().is_empty());
        }
        assert!(!CloseCause::BackendClosed.is_error());
        assert!(CloseCause::BackendError.is_error());
        assert_eq!(CloseCause::BackendError.side().label(), "backend");
    }

    #[test]
    fn receive_errors_are_client_errors_with_their_rfc6455_code() {
        for (e, code, label) in [
            (ReceiveError::Protocol, 1002, "protocol_error"),
            (ReceiveError::InvalidUtf8, 1007, "invalid_utf8"),
            (ReceiveError::TooBig, 1009, "message_too_big"),
        ] {
            let c = CloseCause::from(e);
            assert_eq!(c.code().0, code, "{e:?}");
            assert_eq!(c.label(), label);
            assert_eq!(c.side().label(), "client");
            assert!(c.is_error());
        }
    }

    #[test]
    fn end_reasons_have_one_label_each() {
        assert_eq!(EndReason::ClientGone.label(), "client_gone");
        assert_eq!(EndReason::ClientClosed.label(), "client_closed");
        assert_eq!(EndReason::from(CloseCause::Idle).label(), "idle");
        assert_eq!(EndReason::Route("rate_limit").label(), "rate_limit");
    }

    #[test]
    fn unreachable_backend_is_an_http_error() {
        assert_eq!(backend_unreachable_status(false), 502);
        assert_eq!(backend_unreachable_status(true), 504);
    }
}
