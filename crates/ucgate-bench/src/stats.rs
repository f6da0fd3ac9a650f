//! Counters shared by every connection of a run, latency histograms and the
//! run's clock (warm-up, measured window, drain).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

/// How many error details are kept to show on stderr.
const KEEP_DETAILS: usize = 8;

/// Counters of a run, shared by every connection task.
#[derive(Default)]
pub struct Shared {
    /// Messages completed in the measured window.
    pub messages: AtomicU64,
    /// Payload bytes of those messages.
    pub bytes: AtomicU64,
    /// Every error (warm-up and drain included).
    pub errors: AtomicU64,
    kinds: Mutex<BTreeMap<String, u64>>,
    details: Mutex<Vec<String>>,
    latency: Mutex<Option<Latency>>,
}

impl Shared {
    /// Counts an error of `kind` (a short snake_case word) with a detail
    /// shown on stderr for the first few.
    pub fn error(&self, kind: &str, detail: impl std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self
            .kinds
            .lock()
            .expect("kinds")
            .entry(kind.to_string())
            .or_default() += 1;
        let mut d = self.details.lock().expect("details");
        if d.len() < KEEP_DETAILS {
            d.push(format!("{kind}: {detail}"));
        }
    }

    /// Counts `n` errors of one kind at once.
    pub fn errors_n(&self, kind: &str, n: u64, detail: impl std::fmt::Display) {
        if n == 0 {
            return;
        }
        self.errors.fetch_add(n - 1, Ordering::Relaxed);
        *self
            .kinds
            .lock()
            .expect("kinds")
            .entry(kind.to_string())
            .or_default() += n - 1;
        self.error(kind, detail);
    }

    pub fn error_count(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    pub fn error_kinds(&self) -> BTreeMap<String, u64> {
        self.kinds.lock().expect("kinds").clone()
    }

    pub fn error_details(&self) -> Vec<String> {
        self.details.lock().expect("details").clone()
    }

    /// Counts one completed message of `bytes` payload bytes.
    pub fn message(&self, bytes: u64) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Adds a connection's latency histogram to the run's.
    pub fn merge_latency(&self, l: &Latency) {
        let mut g = self.latency.lock().expect("latency");
        match g.as_mut() {
            Some(h) => h.merge(l),
            None => *g = Some(l.clone()),
        }
    }

    pub fn latency(&self) -> Latency {
        self.latency
            .lock()
            .expect("latency")
            .clone()
            .unwrap_or_default()
    }
}

/// A latency histogram in microseconds (1 µs .. 1 h, 3 significant digits).
#[derive(Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Latency(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("histogram bounds"))
    }
}

impl Latency {
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        self.0.saturating_record(us);
    }

    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    pub fn percentiles(&self) -> Percentiles {
        if self.0.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            p50: self.0.value_at_quantile(0.50),
            p90: self.0.value_at_quantile(0.90),
            p99: self.0.value_at_quantile(0.99),
            max: self.0.max(),
        }
    }

    /// p50 and p99 in milliseconds (for login and registration times).
    pub fn millis(&self) -> MillisPercentiles {
        let p = self.percentiles();
        MillisPercentiles {
            p50: p.p50 as f64 / 1000.0,
            p99: p.p99 as f64 / 1000.0,
            max: p.max as f64 / 1000.0,
        }
    }
}

/// Latency percentiles in microseconds (0 when nothing was measured).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

/// Percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct MillisPercentiles {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// The run's timeline: load starts at `start`, is counted from
/// `measure_from` (after the warm-up) and stops being sent at `end`;
/// replies still outstanding are awaited until `end + timeout`.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub start: Instant,
    pub measure_from: Instant,
    pub end: Instant,
    pub drain_until: Instant,
}

impl Clock {
    pub fn new(warmup: Duration, duration: Duration, timeout: Duration) -> Clock {
        let start = Instant::now();
        let measure_from = start + warmup;
        let end = measure_from + duration;
        Clock {
            start,
            measure_from,
            end,
            drain_until: end + timeout,
        }
    }

    /// Whether a message sent (or due) at `t` is counted.
    pub fn counted(&self, t: Instant) -> bool {
        t >= self.measure_from && t < self.end
    }

    /// The measured window's length.
    pub fn measured(&self) -> Duration {
        self.end - self.measure_from
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_errors() {
        let mut l = Latency::default();
        for us in 1..=100u64 {
            l.record(Duration::from_micros(us));
        }
        let p = l.percentiles();
        assert_eq!(p.p50, 50);
        assert_eq!(p.p99, 99);
        assert_eq!(p.max, 100);
        let s = Shared::default();
        s.error("lost", "x");
        s.errors_n("lost", 3, "y");
        s.error("corrupted", "z");
        assert_eq!(s.error_count(), 5);
        assert_eq!(s.error_kinds()["lost"], 4);
        assert_eq!(s.error_details().len(), 3);
    }
}
