//! WebSocket keepalive and idle rules as a pure timer state machine.
//!
//! Time is a [`Duration`] since the connection started, given by the caller.
//!
//! * Every `ping_interval` without a ping, a ping is due (keeps NAT and proxy
//!   mappings alive and probes the peer).
//! * A ping that sees no frame at all from the client (pong, data or other)
//!   within `ping_timeout` means the peer is dead.
//! * No data message in either direction for `idle_timeout` closes the
//!   connection as idle (pings and pongs do not count as activity).
//!
//! A zero `ping_interval` or `idle_timeout` disables that rule.

use core::time::Duration;

/// What the connection should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepaliveAction {
    /// Nothing is due.
    Wait,
    /// Send a ping now.
    SendPing,
    /// Close: no data for `idle_timeout`.
    Idle,
    /// Close: the peer did not answer a ping in time.
    DeadPeer,
}

/// Keepalive state for one WebSocket.
#[derive(Debug, Clone)]
pub struct Keepalive {
    ping_interval: Duration,
    ping_timeout: Duration,
    idle_timeout: Duration,
    last_data: Duration,
    last_frame_in: Duration,
    last_ping: Duration,
    /// Ping sent and not yet answered by any frame.
    awaiting: Option<Duration>,
}

impl Keepalive {
    /// A new state at time `now`.
    pub fn new(
        ping_interval: Duration,
        ping_timeout: Duration,
        idle_timeout: Duration,
        now: Duration,
    ) -> Self {
        Keepalive {
            ping_interval,
            ping_timeout,
            idle_timeout,
            last_data: now,
            last_frame_in: now,
            last_ping: now,
            awaiting: None,
        }
    }

    /// A data message passed (either direction).
    pub fn on_data(&mut self, now: Duration) {
        self.last_data = self.last_data.max(now);
    }

    /// Any frame arrived from the client.
    pub fn on_frame_in(&mut self, now: Duration) {
        self.last_frame_in = self.last_frame_in.max(now);
        if self.awaiting.is_some_and(|sent| now >= sent) {
            self.awaiting = None;
        }
    }

    /// A ping was sent.
    pub fn on_ping_sent(&mut self, now: Duration) {
        self.last_ping = now;
        if self.awaiting.is_none() {
            self.awaiting = Some(now);
        }
    }

    /// What is due at `now`. Closing conditions win over pings.
    pub fn poll(&self, now: Duration) -> KeepaliveAction {
        if !self.idle_timeout.is_zero() && now >= self.last_data + self.idle_timeout {
            return KeepaliveAction::Idle;
        }
        if let Some(sent) = self.awaiting {
            if self.last_frame_in < sent && now >= sent + self.ping_timeout {
                return KeepaliveAction::DeadPeer;
            }
        }
        if !self.ping_interval.is_zero()
            && self.awaiting.is_none()
            && now >= self.last_ping + self.ping_interval
        {
            return KeepaliveAction::SendPing;
        }
        KeepaliveAction::Wait
    }

    /// When [`Keepalive::poll`] may next return something other than `Wait`.
    pub fn next_deadline(&self) -> Option<Duration> {
        let mut d: Option<Duration> = None;
        let mut consider = |t: Duration| d = Some(d.map_or(t, |d| d.min(t)));
        if !self.idle_timeout.is_zero() {
            consider(self.last_data + self.idle_timeout);
        }
        match self.awaiting {
            Some(sent) => consider(sent + self.ping_timeout),
            None if !self.ping_interval.is_zero() => consider(self.last_ping + self.ping_interval),
            None => {}
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn pings_on_schedule_and_detects_dead_peer() {
        let mut k = Keepalive::new(s(30), s(10), Duration::ZERO, s(0));
        assert_eq!(k.poll(s(29)), KeepaliveAction::Wait);
        assert_eq!(k.next_deadline(), Some(s(30)));
        assert_eq!(k.poll(s(30)), KeepaliveAction::SendPing);
        k.on_ping_sent(s(30));
        assert_eq!(k.next_deadline(), Some(s(40)));
        assert_eq!(k.poll(s(39)), KeepaliveAction::Wait);
        assert_eq!(k.poll(s(40)), KeepaliveAction::DeadPeer);
    }

    #[test]
    fn any_frame_answers_a_ping() {
        let mut k = Keepalive::new(s(30), s(10), Duration::ZERO, s(0));
        k.on_ping_sent(s(30));
        k.on_frame_in(s(31));
        assert_eq!(k.poll(s(45)), KeepaliveAction::Wait);
        assert_eq!(k.next_deadline(), Some(s(60)));
        assert_eq!(k.poll(s(60)), KeepaliveAction::SendPing);
    }

    #[test]
    fn idle_counts_data_only() {
        let mut k = Keepalive::new(s(10), s(5), s(60), s(0));
        k.on_data(s(20));
        k.on_ping_sent(s(30));
        k.on_frame_in(s(31)); // a pong is not data
                              // pings continue (the pong answered), but no data: idle at 20 + 60
        assert_eq!(k.poll(s(79)), KeepaliveAction::SendPing);
        assert_eq!(k.poll(s(80)), KeepaliveAction::Idle);
    }

    #[test]
    fn disabled_rules() {
        let k = Keepalive::new(Duration::ZERO, s(5), Duration::ZERO, s(0));
        assert_eq!(k.poll(s(1_000_000)), KeepaliveAction::Wait);
        assert_eq!(k.next_deadline(), None);
    }
}
