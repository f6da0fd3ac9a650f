//! Once per cause and window: which repeated log lines to write.
//!
//! A refusal the client caused (an origin not on the list, an unknown XMPP
//! domain, a subprotocol the route does not speak) is the client's problem,
//! not the gateway's, and one misconfigured page can cause thousands an
//! hour. Every one is counted in the metrics; the log gets the first of each
//! cause in a window, and the next line of that cause says how many were
//! left out in between.
//!
//! Keys are the caller's (route, cause, detail). At most `max_keys` are
//! remembered: a key that finds the table full is written if its window
//! allows, and the table starts over at the next window, so varying the
//! detail cannot grow memory or hide a new cause for longer than a window.

use core::hash::Hash;
use core::time::Duration;
use std::collections::HashMap;

/// What [`Throttle::check`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Write the line.
    Write {
        /// Lines of this key left out since the last one written.
        suppressed: u64,
    },
    /// Leave it out (counted for the next line of this key).
    Suppress,
}

/// Per-key log throttling with explicit time.
#[derive(Debug)]
pub struct Throttle<K> {
    window: Duration,
    max_keys: usize,
    /// Per key: when its last line was written, and lines left out since.
    seen: HashMap<K, (Duration, u64)>,
    /// When the table was last emptied because it was full.
    full_since: Option<Duration>,
}

impl<K: Hash + Eq> Throttle<K> {
    /// One line per key and `window`, remembering at most `max_keys` keys.
    pub fn new(window: Duration, max_keys: usize) -> Self {
        Throttle {
            window,
            max_keys: max_keys.max(1),
            seen: HashMap::new(),
            full_since: None,
        }
    }

    /// Whether to write a line for `key` at `now` (time since any fixed
    /// start, never decreasing).
    pub fn check(&mut self, key: K, now: Duration) -> Verdict {
        if let Some((last, suppressed)) = self.seen.get_mut(&key) {
            if now.saturating_sub(*last) < self.window {
                *suppressed += 1;
                return Verdict::Suppress;
            }
            let n = *suppressed;
            *last = now;
            *suppressed = 0;
            return Verdict::Write { suppressed: n };
        }
        if self.seen.len() >= self.max_keys {
            match self.full_since {
                Some(t) if now.saturating_sub(t) < self.window => {}
                _ => {
                    self.seen.clear();
                    self.full_since = Some(now);
                }
            }
            if self.seen.len() >= self.max_keys {
                return Verdict::Suppress;
            }
        }
        self.seen.insert(key, (now, 0));
        Verdict::Write { suppressed: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn one_line_per_key_and_window_with_the_count_left_out() {
        let mut t = Throttle::new(60 * S, 100);
        assert_eq!(t.check("a", S), Verdict::Write { suppressed: 0 });
        assert_eq!(t.check("a", 2 * S), Verdict::Suppress);
        assert_eq!(t.check("a", 60 * S), Verdict::Suppress);
        // another key is not held back by the first
        assert_eq!(t.check("b", 3 * S), Verdict::Write { suppressed: 0 });
        assert_eq!(t.check("a", 61 * S), Verdict::Write { suppressed: 2 });
        assert_eq!(t.check("a", 62 * S), Verdict::Suppress);
        assert_eq!(t.check("a", 200 * S), Verdict::Write { suppressed: 1 });
    }

    #[test]
    fn a_full_table_starts_over_once_per_window() {
        let mut t = Throttle::new(60 * S, 2);
        assert_eq!(t.check(1, S), Verdict::Write { suppressed: 0 });
        assert_eq!(t.check(2, S), Verdict::Write { suppressed: 0 });
        // full: the table starts over for the new key
        assert_eq!(t.check(3, 2 * S), Verdict::Write { suppressed: 0 });
        assert_eq!(t.check(4, 3 * S), Verdict::Write { suppressed: 0 });
        // full again within the window: new keys wait
        assert_eq!(t.check(5, 4 * S), Verdict::Suppress);
        assert_eq!(t.check(3, 5 * S), Verdict::Suppress);
        // a window later the table starts over again
        assert_eq!(t.check(5, 63 * S), Verdict::Write { suppressed: 0 });
        assert!(t.seen.len() <= 2);
    }
}
