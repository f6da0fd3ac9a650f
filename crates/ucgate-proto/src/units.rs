//! Human-readable durations (`"250ms"`, `"10s"`, `"5m"`, `"1h"`) and byte sizes
//! (`"512"`, `"64KiB"`, `"1MiB"`, `"16kB"`) as written in configuration files.
//!
//! Pure parsing; the configuration loader attaches file positions to errors.

use core::time::Duration;

/// Why a duration or size string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// The string has no number in front.
    #[error("expected a number followed by a unit, e.g. {example}")]
    NoNumber {
        /// An example of a valid value.
        example: &'static str,
    },
    /// The unit is not one we know.
    #[error("unknown unit `{unit}`; expected one of {expected}")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The list of accepted units.
        expected: &'static str,
    },
    /// A fraction such as `1.5s` or `.5s`: only whole numbers are read.
    #[error("fractions are not accepted (`{written}`); write a whole number of a smaller unit, e.g. {example}")]
    Fraction {
        /// The value as written.
        written: String,
        /// The same kind of value in whole numbers.
        example: &'static str,
    },
    /// The value does not fit.
    #[error("value is too large")]
    Overflow,
}

const DURATION_UNITS: &str = "ms, s, m, h";
const SIZE_UNITS: &str = "B, KiB, MiB, GiB, kB, MB, GB (or no unit for bytes)";

/// `Fraction` when `s` is a decimal number (`1.5s`, `.5s`, `0,5s`).
fn refuse_fraction(s: &str, example: &'static str) -> Result<(), UnitError> {
    let t = s.trim();
    let digits = t.trim_start_matches(|c: char| c.is_ascii_digit());
    let mut rest = digits.chars();
    if matches!(rest.next(), Some('.' | ',')) && rest.next().is_some_and(|c| c.is_ascii_digit()) {
        return Err(UnitError::Fraction {
            written: t.to_string(),
            example,
        });
    }
    Ok(())
}

fn split_number(s: &str) -> Option<(u64, &str)> {
    let s = s.trim();
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    let n = s[..end].parse::<u64>().ok()?;
    Some((n, s[end..].trim()))
}

/// Parses a duration such as `"10s"`, `"250ms"`, `"5m"` or `"1h"`.
/// A bare number is refused: the unit must be explicit.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    refuse_fraction(s, "\"500ms\" rather than \"0.5s\"")?;
    let (n, unit) = split_number(s).ok_or(UnitError::NoNumber { example: "\"10s\"" })?;
    let ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "" => {
            return Err(UnitError::UnknownUnit {
                unit: String::new(),
                expected: DURATION_UNITS,
            })
        }
        other => {
            return Err(UnitError::UnknownUnit {
                unit: other.to_string(),
                expected: DURATION_UNITS,
            })
        }
    };
    let total = n.checked_mul(ms).ok_or(UnitError::Overflow)?;
    Ok(Duration::from_millis(total))
}

/// Parses a byte size such as `"4096"`, `"64KiB"`, `"1MiB"` or `"16kB"`.
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    refuse_fraction(s, "\"1536KiB\" rather than \"1.5MiB\"")?;
    let (n, unit) = split_number(s).ok_or(UnitError::NoNumber {
        example: "\"64KiB\"",
    })?;
    let mult: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(UnitError::UnknownUnit {
                unit: other.to_string(),
                expected: SIZE_UNITS,
            })
        }
    };
    n.checked_mul(mult).ok_or(UnitError::Overflow)
}

/// Formats a duration the way [`parse_duration`] reads it (used in docs and messages).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration(" 1h "), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(matches!(
            parse_duration("10"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_duration("10 parsecs"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_duration("s"),
            Err(UnitError::NoNumber { .. })
        ));
        assert_eq!(
            parse_duration("99999999999999999h"),
            Err(UnitError::Overflow)
        );
    }

    #[test]
    fn fractions_are_refused_as_fractions() {
        for (s, written) in [(".5s", ".5s"), ("1.5s", "1.5s"), (" 0,25h", "0,25h")] {
            let e = parse_duration(s).unwrap_err();
            assert_eq!(
                e,
                UnitError::Fraction {
                    written: written.into(),
                    example: "\"500ms\" rather than \"0.5s\""
                }
            );
            assert_eq!(
                e.to_string(),
                format!("fractions are not accepted (`{written}`); write a whole number of a smaller unit, e.g. \"500ms\" rather than \"0.5s\"")
            );
        }
        assert!(matches!(
            parse_size("1.5MiB"),
            Err(UnitError::Fraction { .. })
        ));
        // a dot that is not a decimal point stays an unknown unit
        assert!(matches!(
            parse_duration("5.s"),
            Err(UnitError::UnknownUnit { .. })
        ));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("16kB"), Ok(16_000));
        assert!(matches!(
            parse_size("1 lb"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(parse_size(""), Err(UnitError::NoNumber { .. })));
    }

    #[test]
    fn format_round_trips() {
        for s in ["10s", "250ms", "5m", "1h", "0s"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}
