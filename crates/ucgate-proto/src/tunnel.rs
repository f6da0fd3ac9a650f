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
//! [`CloseCause`] is the single table from "why the tunnel ends" to the
//! WebSocket close code (RFC 6455 §7.4.1) and the metric label.

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
    /// The client broke the WebSocket protocol (bad frame, bad UTF-8…).
    ProtocolError,
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
            CloseCause::DeadPeer => (1001, "no pong received"),
            CloseCause::Internal => (1011, "internal error"),
        }
    }

    /// Which side the cause is attributed to in metrics (`side` label).
    pub fn side(self) -> &'static str {
        match self {
            CloseCause::BackendClosed | CloseCause::BackendError => "backend",
            CloseCause::MessageTooBig | CloseCause::ProtocolError | CloseCause::DeadPeer => {
                "client"
            }
            CloseCause::Idle | CloseCause::Shutdown | CloseCause::Internal => "gateway",
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
        // reasons fit in a control frame (123 bytes max, RFC 6455 §5.5)
        for c in [
            CloseCause::BackendClosed,
            CloseCause::Idle,
            CloseCause::Shutdown,
            CloseCause::MessageTooBig,
            CloseCause::BackendError,
            CloseCause::ProtocolError,
            CloseCause::DeadPeer,
            CloseCause::Internal,
        ] {
            assert!(c.code().1.len() <= 123);
            assert!(!c.label().is_empty());
        }
        assert!(!CloseCause::BackendClosed.is_error());
        assert!(CloseCause::BackendError.is_error());
        assert_eq!(CloseCause::BackendError.side(), "backend");
    }

    #[test]
    fn unreachable_backend_is_an_http_error() {
        assert_eq!(backend_unreachable_status(false), 502);
        assert_eq!(backend_unreachable_status(true), 504);
    }
}
