//! The timer of a connection's event loop. Each turn of the loop asks to
//! be woken by some deadline (the keepalive's, a close or negotiation
//! deadline), and most turns are a message passing, which moves none of
//! them closer. Building a fresh sleep each turn put one timer-wheel entry
//! per message; this one moves only when the deadline asked for is earlier
//! than the one it stands at, or after it fired. Waking early is harmless:
//! every deadline's handler checks the time itself (`Keepalive::poll`
//! answers `Wait`), which is what makes the shortcut sound.

use std::pin::Pin;
use std::time::Instant;

use tokio::time::Sleep;

/// Whether a pinned `Sleep` is set (its branch enabled) and re-arming it.
/// The flag is kept rather than read from `Sleep::is_elapsed`: a version
/// that read it (tokio 1.54) left the SIP WebSocket's keepalive unarmed and
/// its idle test waiting for a close that never came.
#[derive(Debug, Default)]
pub(crate) struct Wakeup {
    armed: bool,
}

impl Wakeup {
    /// Makes `sleep` fire no later than `deadline` (`None`: nothing asked;
    /// an armed sleep stays, to wake early at worst).
    pub(crate) fn by(&mut self, sleep: Pin<&mut Sleep>, deadline: Option<Instant>) {
        let Some(d) = deadline else { return };
        let d = tokio::time::Instant::from_std(d);
        if !self.armed || d < sleep.deadline() {
            sleep.reset(d);
            self.armed = true;
        }
    }

    /// True while the sleep is set: the `select!` branch's condition.
    pub(crate) fn armed(&self) -> bool {
        self.armed
    }

    /// The sleep fired: the next [`Wakeup::by`] sets it again.
    pub(crate) fn fired(&mut self) {
        self.armed = false;
    }
}

/// A sleep to pin in a connection's loop and hand to [`Wakeup::by`].
pub(crate) fn unarmed() -> Sleep {
    tokio::time::sleep_until(tokio::time::Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(t: Instant) -> tokio::time::Instant {
        tokio::time::Instant::from_std(t)
    }

    #[tokio::test]
    async fn moves_only_earlier_and_fires_by_the_earliest_deadline() {
        let sleep = unarmed();
        tokio::pin!(sleep);
        let mut w = Wakeup::default();
        w.by(sleep.as_mut(), None);
        assert!(!w.armed(), "nothing asked, nothing set");
        let t0 = Instant::now();
        w.by(sleep.as_mut(), Some(t0 + Duration::from_secs(10)));
        assert!(w.armed());
        // a later deadline does not move it (the message-per-turn case)
        w.by(sleep.as_mut(), Some(t0 + Duration::from_secs(20)));
        assert_eq!(sleep.deadline(), at(t0 + Duration::from_secs(10)));
        // an earlier one does
        w.by(sleep.as_mut(), Some(t0 + Duration::from_millis(30)));
        assert_eq!(sleep.deadline(), at(t0 + Duration::from_millis(30)));
        sleep.as_mut().await;
        w.fired();
        assert!(!w.armed());
        assert!(Instant::now() >= t0 + Duration::from_millis(30));
        // after firing, a later deadline is taken as it is
        w.by(sleep.as_mut(), Some(t0 + Duration::from_secs(30)));
        assert!(w.armed());
        assert_eq!(sleep.deadline(), at(t0 + Duration::from_secs(30)));
    }
}
