//! When each WebSocket closes during the drain, so that a rolling restart
//! does not send every client of a node to the others at the same instant.
//!
//! The drain spreads the closes over a window (`server.drain_spread`) in
//! batches [`BATCH`] apart. Each connection finds its own batch from its
//! sequence number alone, so no list of connections is kept: the number is
//! scattered over the batches by the golden-ratio sequence (a Weyl sequence:
//! consecutive numbers land far apart, and any run of `n` numbers covers the
//! batches evenly), so a node whose first thousand connections are still
//! open closes them evenly too.
//!
//! BOSH sessions of a cluster node are served until [`goodbye_deadline`]:
//! before `server.drain_timeout`, so that the last answers reach the
//! clients before the process exits. SIP connections with a call in
//! progress wait past their turn for the call's end, until
//! [`call_deadline`] at the latest: the end of the window, after every
//! connection without a call.
//!
//! Time is a [`Duration`] since the drain started, given by the caller.

use core::time::Duration;

/// Time between two batches.
pub const BATCH: Duration = Duration::from_millis(100);

/// At most this many batches, whatever the window.
pub const MAX_BATCHES: u64 = 1000;

/// The end of `server.drain_timeout` kept for the last goodbyes to be
/// written and read: this much, or a quarter of a shorter drain.
pub const GOODBYE_MARGIN: Duration = Duration::from_secs(2);

/// When, counted from the drain's start, whatever still runs gets its
/// goodbye: `drain_timeout` less [`GOODBYE_MARGIN`] (less a quarter of it
/// when that is smaller), so never after the drain deadline and never
/// before the drain starts.
pub fn goodbye_deadline(drain_timeout: Duration) -> Duration {
    drain_timeout - GOODBYE_MARGIN.min(drain_timeout / 4)
}

/// When, counted from the drain's start, a connection kept open past its
/// turn for a call closes at the latest: at the end of the `window` (after
/// every turn), and never after the [`goodbye_deadline`]. A zero window
/// (a single node) closes it at once, like everything else.
pub fn call_deadline(window: Duration, drain_timeout: Duration) -> Duration {
    window.min(goodbye_deadline(drain_timeout))
}

/// 2^64 / φ, the step of the golden-ratio sequence.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// How closes are spread over the drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainSpread {
    window: Duration,
    batches: u64,
}

impl DrainSpread {
    /// Closes spread over `window` (zero: all at once).
    pub fn new(window: Duration) -> Self {
        let batches = (window.as_millis() / BATCH.as_millis()) as u64;
        DrainSpread {
            window,
            batches: batches.clamp(1, MAX_BATCHES),
        }
    }

    /// The number of batches.
    pub fn batches(&self) -> u64 {
        self.batches
    }

    /// The batch of connection number `seq`, in `0..batches()`.
    pub fn batch(&self, seq: u64) -> u64 {
        let scattered = seq.wrapping_mul(GOLDEN);
        ((u128::from(scattered) * u128::from(self.batches)) >> 64) as u64
    }

    /// How long after the drain starts connection number `seq` closes:
    /// always below the window (zero for a zero window).
    pub fn delay(&self, seq: u64) -> Duration {
        let nanos = self.window.as_nanos() * u128::from(self.batch(seq)) / u128::from(self.batches);
        Duration::from_nanos(nanos as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_zero_window_closes_everything_at_once() {
        let s = DrainSpread::new(Duration::ZERO);
        assert_eq!(s.batches(), 1);
        assert!((0..1000).all(|i| s.delay(i) == Duration::ZERO));
    }

    #[test]
    fn batches_are_a_tenth_of_a_second_apart_and_capped() {
        assert_eq!(DrainSpread::new(50 * MS).batches(), 1);
        assert_eq!(DrainSpread::new(1000 * MS).batches(), 10);
        assert_eq!(DrainSpread::new(15_000 * MS).batches(), 150);
        assert_eq!(DrainSpread::new(Duration::from_secs(3600)).batches(), 1000);
        let s = DrainSpread::new(1000 * MS);
        for i in 0..100 {
            let d = s.delay(i);
            assert_eq!(d.as_nanos() % (100 * MS).as_nanos(), 0, "{d:?}");
        }
    }

    #[test]
    fn every_delay_is_inside_the_window_and_the_window_is_used() {
        for window in [100 * MS, 999 * MS, 10_000 * MS, Duration::from_secs(7200)] {
            let s = DrainSpread::new(window);
            let delays: Vec<_> = (0..5000).map(|i| s.delay(i)).collect();
            assert!(delays.iter().all(|d| *d < window), "{window:?}");
            // the last batch is used
            let last = delays.iter().max().unwrap();
            let n = s.batches() as u32;
            assert_eq!(*last, window * (n - 1) / n, "{window:?}");
        }
    }

    #[test]
    fn consecutive_connections_fill_the_batches_evenly() {
        let s = DrainSpread::new(Duration::from_secs(2));
        assert_eq!(s.batches(), 20);
        let mut count = [0u32; 20];
        for i in 0..200 {
            count[s.batch(i) as usize] += 1;
        }
        // 10 per batch on average; the golden-ratio sequence keeps every
        // batch within a few of that (random slots would not).
        assert!(count.iter().all(|c| (7..=13).contains(c)), "{count:?}");
        // and the first ten connections go to ten different batches
        let mut first: Vec<_> = (0..10).map(|i| s.batch(i)).collect();
        first.sort();
        first.dedup();
        assert_eq!(first.len(), 10);
    }

    #[test]
    fn the_goodbye_deadline_leaves_a_margin_before_the_drain_deadline() {
        assert_eq!(goodbye_deadline(Duration::ZERO), Duration::ZERO);
        assert_eq!(goodbye_deadline(1000 * MS), 750 * MS);
        assert_eq!(goodbye_deadline(3000 * MS), 2250 * MS);
        assert_eq!(goodbye_deadline(8000 * MS), 6000 * MS);
        assert_eq!(goodbye_deadline(30_000 * MS), 28_000 * MS);
        assert_eq!(
            goodbye_deadline(Duration::from_secs(86_400)),
            Duration::from_secs(86_398)
        );
        for ms in [1, 3, 99, 7999, 8001, 120_000] {
            let d = ms * MS;
            let g = goodbye_deadline(d);
            assert!(g < d && d - g <= GOODBYE_MARGIN, "{d:?} -> {g:?}");
        }
    }

    #[test]
    fn calls_wait_until_the_end_of_the_window_before_the_goodbye_deadline() {
        let s = |ms| ms * MS;
        assert_eq!(call_deadline(s(0), s(30_000)), s(0));
        assert_eq!(call_deadline(s(15_000), s(30_000)), s(15_000));
        assert_eq!(call_deadline(s(3_000), s(4_000)), s(3_000));
        assert_eq!(call_deadline(s(30_000), s(30_000)), s(28_000));
        assert_eq!(call_deadline(s(4_000), s(4_000)), s(3_000));
        // after every turn of the window
        let spread = DrainSpread::new(s(3_000));
        assert!((0..1000).all(|i| spread.delay(i) < call_deadline(s(3_000), s(4_000))));
    }

    #[test]
    fn the_batch_is_a_pure_function_of_the_number() {
        let s = DrainSpread::new(Duration::from_secs(10));
        assert_eq!(s.batch(0), 0);
        assert_eq!(s.delay(0), Duration::ZERO);
        // 1 * 2^64/φ is 0.618.. of the way: batch 61 of 100
        assert_eq!(s.batch(1), 61);
        assert_eq!(s.delay(1), 6100 * MS);
        assert_eq!(s.batch(2), 23);
        assert_eq!(s.delay(u64::MAX), s.delay(u64::MAX));
    }
}
