//! Recent events by cause, for the status page: how many of each cause in
//! the last few minutes (one-minute buckets), how many since the start,
//! and when the last one happened. Time is an input (seconds since any
//! fixed start, never decreasing).
//!
//! At most `max_keys` causes are kept; a new cause that finds the table
//! full replaces the one seen least recently, so a client that invents
//! causes cannot grow it (the metrics keep every count).

use core::hash::Hash;
use std::collections::HashMap;

/// Minutes in the recent window.
pub const WINDOW_MINUTES: u64 = 10;

/// One cause's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Since the start (or since the cause entered the table).
    pub total: u64,
    /// In the last [`WINDOW_MINUTES`] minutes.
    pub recent: u64,
    /// When the last one happened (seconds since the start).
    pub last_secs: u64,
}

#[derive(Debug, Clone, Default)]
struct Entry {
    total: u64,
    last_secs: u64,
    /// (minute, count) for the minutes in the window, oldest first.
    minutes: Vec<(u64, u64)>,
}

/// Counts per cause over a sliding window of minutes.
#[derive(Debug)]
pub struct Recent<K> {
    max_keys: usize,
    entries: HashMap<K, Entry>,
}

impl<K: Hash + Eq + Clone> Recent<K> {
    /// Keeps at most `max_keys` causes.
    pub fn new(max_keys: usize) -> Self {
        Recent {
            max_keys: max_keys.max(1),
            entries: HashMap::new(),
        }
    }

    /// One event of `key` at `now_secs`.
    pub fn record(&mut self, key: K, now_secs: u64) {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max_keys {
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_secs)
                .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        let e = self.entries.entry(key).or_default();
        e.total += 1;
        e.last_secs = now_secs;
        let minute = now_secs / 60;
        match e.minutes.last_mut() {
            Some((m, n)) if *m == minute => *n += 1,
            _ => e.minutes.push((minute, 1)),
        }
        e.minutes.retain(|(m, _)| m + WINDOW_MINUTES > minute);
    }

    /// Every cause with its counts at `now_secs`, the most recent in the
    /// window first (then the most recently seen).
    pub fn snapshot(&self, now_secs: u64) -> Vec<(K, Counts)> {
        let minute = now_secs / 60;
        let mut out: Vec<(K, Counts)> = self
            .entries
            .iter()
            .map(|(k, e)| {
                let recent = e
                    .minutes
                    .iter()
                    .filter(|(m, _)| m + WINDOW_MINUTES > minute)
                    .map(|(_, n)| n)
                    .sum();
                (
                    k.clone(),
                    Counts {
                        total: e.total,
                        recent,
                        last_secs: e.last_secs,
                    },
                )
            })
            .collect();
        out.sort_by_key(|(_, c)| core::cmp::Reverse((c.recent, c.last_secs)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_in_the_window_and_since_the_start() {
        let mut r = Recent::new(10);
        r.record("a", 5);
        r.record("a", 70);
        r.record("b", 71);
        r.record("a", 130);
        let s = r.snapshot(130);
        assert_eq!(
            s[0],
            (
                "a",
                Counts {
                    total: 3,
                    recent: 3,
                    last_secs: 130
                }
            )
        );
        assert_eq!(s[1].1.recent, 1);
        // ten minutes on, the first minute has left the window
        let s = r.snapshot(5 + 600);
        let a = s.iter().find(|(k, _)| *k == "a").unwrap().1;
        assert_eq!((a.total, a.recent), (3, 2));
        let s = r.snapshot(10_000);
        assert!(s.iter().all(|(_, c)| c.recent == 0));
        assert_eq!(s.iter().map(|(_, c)| c.total).sum::<u64>(), 4);
    }

    #[test]
    fn a_full_table_drops_the_cause_seen_least_recently() {
        let mut r = Recent::new(2);
        r.record(1, 1);
        r.record(2, 2);
        r.record(1, 3);
        r.record(3, 4);
        let keys: Vec<i32> = r.snapshot(4).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys.len(), 2);
        assert!(keys.contains(&1) && keys.contains(&3), "{keys:?}");
    }
}
