//! Summaries: one JSON line on stdout, a human summary on stderr; the
//! once-a-second progress line.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use url::Url;

use crate::net::Dialer;
use crate::stats::{Clock, Percentiles, Shared};

/// The JSON summary every mode prints (snake_case fields).
#[derive(Debug, Serialize)]
pub struct Summary {
    pub mode: String,
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    pub duration_s: f64,
    pub messages: u64,
    pub bytes: u64,
    pub rate: f64,
    pub throughput_bytes_s: f64,
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,
    pub latency_us: Percentiles,
    /// Mode-specific fields, flattened into the object.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Summary {
    /// A summary from the run's counters over a measured window.
    pub fn from_shared(mode: &str, target: &str, shared: &Shared, measured: Duration) -> Summary {
        let secs = measured.as_secs_f64();
        let messages = shared.messages.load(Ordering::Relaxed);
        let bytes = shared.bytes.load(Ordering::Relaxed);
        let per_s = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        Summary {
            mode: mode.to_string(),
            target: target.to_string(),
            connections: None,
            clients: None,
            size: None,
            duration_s: round3(secs),
            messages,
            bytes,
            rate: round3(per_s(messages)),
            throughput_bytes_s: round3(per_s(bytes)),
            errors: shared.error_count(),
            error_kinds: shared.error_kinds(),
            latency_us: shared.latency().percentiles(),
            extra: serde_json::Map::new(),
        }
    }

    /// Adds a mode-specific field.
    pub fn set(&mut self, key: &str, value: impl Serialize) {
        self.extra.insert(
            key.to_string(),
            serde_json::to_value(value).unwrap_or(serde_json::Value::Null),
        );
    }

    /// Adds `route`: how the modes that dial through [`Dialer`] reached
    /// `url` (`direct (…)` or `proxy http://host:port (from VAR)`, as in
    /// probe, never with credentials). Left out when the route cannot be
    /// chosen (every connection then fails with the reason).
    pub fn set_route(&mut self, dialer: &Dialer, url: &Url) {
        if let Ok(route) = dialer.route(url) {
            self.set("route", route.describe(url.host_str().unwrap_or("")));
        }
    }
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Prints the JSON line on stdout and the human summary (with the first
/// error details) on stderr; exit 0 without errors, 1 with.
pub fn finish(summary: &Summary, details: &[String]) -> ExitCode {
    let json = serde_json::to_string(summary).expect("summary serializes");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{json}");
    let _ = out.flush();
    let mut e = std::io::stderr().lock();
    let who = match (summary.connections, summary.clients) {
        (Some(n), _) => format!("{n} connections"),
        (None, Some(n)) => format!("{n} clients"),
        _ => String::new(),
    };
    let _ = writeln!(
        e,
        "ucgate-bench {} {}: {who}, {:.1} s measured",
        summary.mode, summary.target, summary.duration_s
    );
    if summary.messages > 0 || summary.mode.ends_with("echo") {
        let _ = writeln!(
            e,
            "  {} messages, {:.1} msg/s, {:.2} MB/s",
            summary.messages,
            summary.rate,
            summary.throughput_bytes_s / 1e6
        );
    }
    let l = summary.latency_us;
    let _ = writeln!(
        e,
        "  latency µs: p50 {} p90 {} p99 {} max {}",
        l.p50, l.p90, l.p99, l.max
    );
    for (k, v) in &summary.extra {
        let _ = writeln!(e, "  {k}: {v}");
    }
    if summary.errors == 0 {
        let _ = writeln!(e, "  no errors");
        ExitCode::SUCCESS
    } else {
        let _ = writeln!(
            e,
            "  {} ERRORS: {}",
            summary.errors,
            serde_json::to_string(&summary.error_kinds).unwrap_or_default()
        );
        for d in details {
            let _ = writeln!(e, "    {d}");
        }
        ExitCode::from(1)
    }
}

/// Prints a progress line on stderr every second while the run lasts, when
/// it lasts more than 3 s. `what` names the counted unit.
pub fn progress(
    shared: Arc<Shared>,
    clock: Clock,
    what: &'static str,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if clock.end - clock.start <= Duration::from_secs(3) {
            return;
        }
        let mut tick =
            tokio::time::interval_at(clock.start + Duration::from_secs(1), Duration::from_secs(1));
        let mut last = 0u64;
        loop {
            let now = tick.tick().await;
            if now > clock.end + Duration::from_millis(500) {
                return;
            }
            let n = shared.messages.load(Ordering::Relaxed);
            let elapsed = now
                .saturating_duration_since(clock.measure_from)
                .as_secs_f64();
            let phase = if now <= clock.measure_from {
                "warm-up"
            } else {
                "measuring"
            };
            let avg = if elapsed > 0.0 {
                n as f64 / elapsed
            } else {
                0.0
            };
            eprintln!(
                "ucgate-bench: {:>4.0}s {phase}: {} {what}/s last second, {avg:.0}/s average, {n} {what}, {} errors",
                (now - clock.start).as_secs_f64(),
                n - last,
                shared.error_count()
            );
            last = n;
        }
    })
}
