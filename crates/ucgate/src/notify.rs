//! Service-manager notifications (`sd_notify(3)`, systemd's `Type=notify`):
//! `READY=1` once both listeners listen and the gateway serves,
//! `RELOADING=1` and then `READY=1` around a SIGHUP reload, `STOPPING=1` when
//! the drain starts, each with a `STATUS=` line for `systemctl status`.
//! Without `NOTIFY_SOCKET` (not started by a service manager) nothing is sent.

use sd_notify::NotifyState;

/// Startup or a reload is finished: serving.
pub(crate) fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload starts. systemd 253 and later want the monotonic time with it.
pub(crate) fn reloading(status: &str) {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now, NotifyState::Status(status)]),
        Err(_) => send(&[NotifyState::Reloading, NotifyState::Status(status)]),
    }
}

/// The drain starts.
pub(crate) fn stopping(status: &str) {
    send(&[NotifyState::Stopping, NotifyState::Status(status)]);
}

/// A new status line only.
pub(crate) fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify the service manager (NOTIFY_SOCKET)");
    }
}
