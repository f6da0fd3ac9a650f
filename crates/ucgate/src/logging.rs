//! Logging that can neither stop the gateway nor leak a secret.
//!
//! Two rules, both enforced here for every filter an operator can set
//! (`log.level`, `--log-level`, `RUST_LOG`):
//!
//! * **A log write never blocks or fails a task.** Lines go through a
//!   bounded in-memory queue to one writer thread (tracing-appender's
//!   non-blocking writer, lossy): when stderr is a full pipe nobody reads,
//!   lines are dropped instead of stalling a worker; when stderr is closed
//!   (`ucgate run 2>&1 | head`, a crashed log collector) write errors are
//!   ignored. tracing-subscriber's own report of a failed write is turned
//!   off, because it uses `eprintln!`, which panics on a closed stderr and
//!   took the signal task down with it (SIGTERM then did nothing).
//! * **No payload of a third-party library reaches the log.** Only ucgate's
//!   own targets may log at `trace`; every other crate is capped at `debug`.
//!   At `trace`, tungstenite prints whole WebSocket frames (with the base64
//!   SASL `<auth>` of an XMPP login) and the HTTP libraries print buffers.
//!   ucgate itself never logs message contents or keys at any level.

use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, FilterExt, FilterFn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::config::LogFormat;

/// Keeps the log writer thread alive; dropping it flushes what is queued
/// (waiting at most about a second, so a stuck stderr cannot hold the exit).
pub struct LogGuard(#[allow(dead_code)] tracing_appender::non_blocking::WorkerGuard);

/// Lines queued for stderr before further lines are dropped.
const QUEUE_LINES: usize = 16_384;

/// The log thread's buffer: lines queued together leave in one write.
const BATCH_BYTES: usize = 64 * 1024;

/// Stderr behind a buffer that the log thread flushes after each batch
/// (tracing-appender's worker flushes whenever its queue runs empty): a
/// burst of access-log lines is one `write(2)` rather than one per line,
/// which was most of the access log's cost (docs/performance.md). A failed
/// flush is not reported: tracing-appender would `eprintln!` it at exit,
/// which panics when stderr is closed (the first rule above).
struct BatchedStderr(std::io::BufWriter<std::io::Stderr>);

impl std::io::Write for BatchedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}

/// A log line that may come thousands of times (a client's refusal, a peer
/// with another secret): one per key and window, with the number left out
/// since the last one. `ucgate_proto::throttle` decides; this holds its
/// clock and its lock.
pub(crate) struct LogThrottle<K> {
    started: std::time::Instant,
    throttle: std::sync::Mutex<ucgate_proto::throttle::Throttle<K>>,
}

impl<K: std::hash::Hash + Eq> LogThrottle<K> {
    /// One line per key and `window`, remembering at most `max_keys` keys.
    pub(crate) fn new(window: std::time::Duration, max_keys: usize) -> Self {
        LogThrottle {
            started: std::time::Instant::now(),
            throttle: std::sync::Mutex::new(ucgate_proto::throttle::Throttle::new(
                window, max_keys,
            )),
        }
    }

    /// `Some(lines left out since the last one)` when a line for `key` is
    /// due now; `None` when it is left out.
    pub(crate) fn due(&self, key: K) -> Option<u64> {
        let now = self.started.elapsed();
        match self
            .throttle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check(key, now)
        {
            ucgate_proto::throttle::Verdict::Write { suppressed } => Some(suppressed),
            ucgate_proto::throttle::Verdict::Suppress => None,
        }
    }
}

/// True for the targets allowed to log at `trace` (ucgate's own code).
fn may_trace(target: &str) -> bool {
    target == "ucgate" || target.starts_with("ucgate::") || target.starts_with("ucgate_")
}

/// The filter every event passes: the operator's filter, and the ceiling
/// that keeps other crates at `debug` or less.
fn ceiling() -> FilterFn {
    tracing_subscriber::filter::filter_fn(|meta| {
        *meta.level() < Level::TRACE || may_trace(meta.target())
    })
}

/// Installs the global subscriber. `RUST_LOG`, when set, not empty and valid, wins over
/// `level`; an invalid `level` falls back to `info`. The access log
/// ([`crate::access`]) is written when `access` is true, whatever the filter
/// says, and never when it is false.
pub fn init(format: LogFormat, level: &str, access: bool) -> LogGuard {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info")));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUE_LINES)
        .thread_name("ucgate-log")
        .finish(BatchedStderr(std::io::BufWriter::with_capacity(
            BATCH_BYTES,
            std::io::stderr(),
        )));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(use_colour(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .log_internal_errors(false);
    let records = log_ceiling(&filter);
    let layer = match format {
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
        LogFormat::Human => fmt.boxed(),
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(access_or(filter, access).and(ceiling())))
        .init();
    // `init` lets every `log` record through to the tracing filters, which
    // then refuse it: tungstenite's per-frame `trace!`/`debug!` calls cost
    // about a quarter of the tunnel's user-space CPU that way
    // (docs/performance.md). The facade's own switch refuses them for free.
    log::set_max_level(records);
    LogGuard(guard)
}

/// The most verbose `log` record the filters can pass. `log` records come
/// only from dependencies (ucgate logs through tracing), which the ceiling
/// keeps at `debug`.
fn log_ceiling(filter: &EnvFilter) -> log::LevelFilter {
    use tracing::level_filters::LevelFilter;
    match filter.max_level_hint().unwrap_or(LevelFilter::DEBUG) {
        LevelFilter::OFF => log::LevelFilter::Off,
        LevelFilter::ERROR => log::LevelFilter::Error,
        LevelFilter::WARN => log::LevelFilter::Warn,
        LevelFilter::INFO => log::LevelFilter::Info,
        _ => log::LevelFilter::Debug,
    }
}

/// The operator's filter for everything but the access log, which only
/// `access` decides.
fn access_or(
    filter: EnvFilter,
    access: bool,
) -> impl tracing_subscriber::layer::Filter<tracing_subscriber::Registry> {
    let is_access =
        || tracing_subscriber::filter::filter_fn(|meta| meta.target() == crate::access::TARGET);
    filter
        .and(is_access().not())
        .or(is_access().and(tracing_subscriber::filter::filter_fn(move |_| access)))
}

/// Colour codes only on a terminal, and never with `NO_COLOR` set to a
/// non-empty value (no-color.org): a log file or a journal keeps plain text.
fn use_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Writes a line to stderr for the command line (usage and configuration
/// errors, before or without logging); a closed stderr is ignored.
pub fn eprint_line(s: &str) {
    use std::io::Write;
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{s}");
}

/// Writes a line to stdout; a closed stdout is ignored.
pub fn print_line(s: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{s}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_records_pass_the_facade_only_up_to_the_filters_level() {
        let ceiling = |f: &str| log_ceiling(&EnvFilter::try_new(f).unwrap());
        assert_eq!(ceiling("info"), log::LevelFilter::Info);
        assert_eq!(ceiling("warn"), log::LevelFilter::Warn);
        assert_eq!(ceiling("off"), log::LevelFilter::Off);
        assert_eq!(ceiling("error,ucgate=debug"), log::LevelFilter::Debug);
        // trace is ucgate's own only: a dependency stays at debug
        assert_eq!(ceiling("tungstenite=trace"), log::LevelFilter::Debug);
        assert_eq!(ceiling("trace"), log::LevelFilter::Debug);
    }

    #[test]
    fn a_throttled_line_is_due_once_per_key_and_window_with_the_count_left_out() {
        let t = LogThrottle::new(std::time::Duration::from_millis(50), 8);
        assert_eq!(t.due("a"), Some(0));
        assert_eq!(t.due("a"), None);
        assert_eq!(t.due("a"), None);
        assert_eq!(t.due("b"), Some(0), "each key on its own");
        std::thread::sleep(std::time::Duration::from_millis(60));
        assert_eq!(
            t.due("a"),
            Some(2),
            "the next window's line counts the two left out"
        );
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
    }

    /// Records the target and level of every event it sees.
    struct Record(std::sync::Arc<std::sync::Mutex<Vec<(String, Level)>>>);

    impl<S: tracing::Subscriber> Layer<S> for Record {
        fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            let m = e.metadata();
            self.0
                .lock()
                .unwrap()
                .push((m.target().to_string(), *m.level()));
        }
    }

    /// What passes the filter for `level` and `access`: (an access line, an
    /// info line of ucgate's, a warning of ucgate's).
    fn passes(level: &str, access: bool) -> (bool, bool, bool) {
        let seen = std::sync::Arc::default();
        let layer = Record(std::sync::Arc::clone(&seen))
            .with_filter(access_or(EnvFilter::new(level), access));
        let sub = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(sub, || {
            tracing::info!(target: "ucgate::access", "access");
            tracing::info!(target: "ucgate::bosh", "info");
            tracing::warn!(target: "ucgate::bosh", "warn");
        });
        let seen = seen.lock().unwrap();
        let hit = |t: &str, l: Level| seen.iter().any(|(st, sl)| st == t && *sl == l);
        (
            hit("ucgate::access", Level::INFO),
            hit("ucgate::bosh", Level::INFO),
            hit("ucgate::bosh", Level::WARN),
        )
    }

    #[test]
    fn the_access_log_depends_on_log_access_only() {
        assert_eq!(passes("warn", true), (true, false, true));
        assert_eq!(passes("warn", false), (false, false, true));
        assert_eq!(passes("info", false), (false, true, true));
        assert_eq!(passes("info", true), (true, true, true));
        assert_eq!(passes("off", true), (true, false, false));
    }

    #[test]
    fn only_ucgate_targets_may_trace() {
        assert!(may_trace("ucgate"));
        assert!(may_trace("ucgate::bosh::actor"));
        assert!(may_trace("ucgate_proto::xml"));
        assert!(!may_trace("tungstenite::protocol"));
        assert!(!may_trace("tokio_tungstenite"));
        assert!(!may_trace("hyper::proto::h1"));
        assert!(!may_trace("ucgatex"));
    }
}
