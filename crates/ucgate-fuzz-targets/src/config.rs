//! The configuration reader (`ucgate::config::Config::parse`): TOML text
//! to a validated `Config` or every error with its position. Nothing is
//! read from disk (`parse` only joins relative paths onto the base).
//!
//! Input: the file's text (invalid UTF-8 is skipped: the file loader
//! refuses it before parsing).
//!
//! Invariants: parsing is deterministic; a refused file has at least one
//! error, each with a 1-based position inside the text (line ≤ lines + 1)
//! and a message, in file order.

use std::path::Path;
use ucgate::config::Config;

/// The target body.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let base = Path::new("/nonexistent/ucgate-fuzz");
    match Config::parse(text, "fuzz.toml", base) {
        Ok(cfg) => {
            let again = Config::parse(text, "fuzz.toml", base).expect("parses twice");
            assert_eq!(format!("{cfg:?}"), format!("{again:?}"));
        }
        Err(errs) => {
            assert!(!errs.errors.is_empty(), "refused without an error");
            let lines = text.lines().count() + 1;
            let mut prev = (0, 0);
            for e in &errs.errors {
                assert!(e.line >= 1 && e.line <= lines, "{e:?} outside the text");
                assert!(e.column >= 1, "{e:?}");
                assert!(!e.message.is_empty());
                assert!((e.line, e.column) >= prev, "errors out of order");
                prev = (e.line, e.column);
            }
            let _ = errs.to_string();
        }
    }
}
