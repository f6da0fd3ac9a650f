//! A strict reader over a parsed TOML document that keeps positions, so that
//! every problem in a configuration file is reported at once, each with file,
//! line, column, dotted key and what was expected (`ucgate check-config`).
//!
//! serde's `deny_unknown_fields` stops at the first error; operators fixing a
//! file want all of them, so the file is parsed into `toml::de::DeTable`
//! (values with spans) and read key by key here.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// Dotted key, e.g. `route[0].backend`; empty for syntax errors.
    pub key: String,
    /// What is wrong and what is expected.
    pub message: String,
}

/// Every problem found in one file.
#[derive(Debug, Clone)]
pub struct ConfigErrors {
    /// The file name as given (or `<embedded default>`).
    pub file: String,
    /// The problems, in file order.
    pub errors: Vec<ConfigError>,
    /// The warnings found as well, as `FILE:LINE:COL: `key`: warning: …`
    /// lines (`check-config` shows them with the errors).
    pub warnings: Vec<String>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if e.line == 0 {
                write!(f, "{}: {}", self.file, e.message)?;
            } else if e.key.is_empty() {
                write!(f, "{}:{}:{}: {}", self.file, e.line, e.column, e.message)?;
            } else {
                write!(
                    f,
                    "{}:{}:{}: `{}`: {}",
                    self.file, e.line, e.column, e.key, e.message
                )?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects errors with positions for one source text.
pub struct Ctx<'s> {
    src: &'s str,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
}

impl<'s> Ctx<'s> {
    /// A new context over `src`.
    pub fn new(src: &'s str) -> Self {
        Ctx {
            src,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.src.len());
        let before = &self.src[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// The 1-based line of byte `offset`.
    pub fn line(&self, offset: usize) -> usize {
        self.position(offset).0
    }

    /// Records an error at `span`.
    pub fn error(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let (line, column) = self.position(span.start);
        self.errors.push(ConfigError {
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// Reports something that does not stop the gateway but will fail at
    /// run time (e.g. a CA file whose every certificate has expired).
    pub fn warning(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let (line, column) = self.position(span.start);
        self.warnings.push(ConfigError {
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// The warnings as `FILE:LINE:COL: `key`: warning: …` lines, in order.
    pub fn warning_lines(&self, file: &str) -> Vec<String> {
        let mut w = self.warnings.clone();
        w.sort_by_key(|e| (e.line, e.column));
        w.iter()
            .map(|e| {
                format!(
                    "{file}:{}:{}: `{}`: warning: {}",
                    e.line, e.column, e.key, e.message
                )
            })
            .collect()
    }

    /// Finishes, sorting errors by position.
    pub fn into_errors(mut self) -> Vec<ConfigError> {
        self.errors.sort_by_key(|e| (e.line, e.column));
        self.errors
    }

    /// True if nothing was reported yet.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// A value read from the file with its position and dotted key.
#[derive(Debug, Clone)]
pub struct At<T> {
    /// The value.
    pub value: T,
    /// Where it is in the file.
    pub span: Range<usize>,
    /// Its dotted key.
    pub key: String,
}

/// Reads one table, remembering which keys were used.
pub struct Table<'t, 'i> {
    path: String,
    span: Range<usize>,
    entries: Vec<(&'t str, Range<usize>, &'t Spanned<DeValue<'i>>)>,
    used: HashSet<&'t str>,
    allowed: &'static [&'static str],
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

impl<'t, 'i> Table<'t, 'i> {
    /// Wraps a table. `allowed` lists every key the table may hold, for the
    /// unknown-key message.
    pub fn new(
        path: impl Into<String>,
        span: Range<usize>,
        table: &'t DeTable<'i>,
        allowed: &'static [&'static str],
    ) -> Self {
        let entries = table
            .iter()
            .map(|(k, v)| (k.get_ref().as_ref(), k.span(), v))
            .collect();
        Table {
            path: path.into(),
            span,
            entries,
            used: HashSet::new(),
            allowed,
        }
    }

    /// The dotted key of `key` in this table.
    pub fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{}", self.path, key)
        }
    }

    /// Where the table starts.
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// The table's own dotted path.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn raw(&mut self, key: &'static str) -> Option<&'t Spanned<DeValue<'i>>> {
        debug_assert!(self.allowed.contains(&key), "{key} not in allowed list");
        let found = self.entries.iter().find(|(k, _, _)| *k == key).map(|e| e.2);
        if found.is_some() {
            self.used.insert(key);
        }
        found
    }

    fn wrong_type(&self, ctx: &mut Ctx<'_>, key: &str, v: &Spanned<DeValue<'_>>, expected: &str) {
        ctx.error(
            v.span(),
            &self.key(key),
            format!("expected {expected}, found {}", type_name(v.get_ref())),
        );
    }

    /// A string value.
    pub fn string(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
        expected: &str,
    ) -> Option<At<String>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(At {
                value: s.to_string(),
                span: v.span(),
                key: self.key(key),
            }),
            _ => {
                self.wrong_type(ctx, key, v, expected);
                None
            }
        }
    }

    /// A boolean value.
    pub fn bool(&mut self, ctx: &mut Ctx<'_>, key: &'static str) -> Option<bool> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(ctx, key, v, "true or false");
                None
            }
        }
    }

    /// A non-negative integer within `range`.
    pub fn integer(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Option<u64> {
        let v = self.raw(key)?;
        let expected = format!(
            "expected an integer from {} to {}",
            range.start(),
            range.end()
        );
        match v.get_ref() {
            DeValue::Integer(i) => {
                let s = i.as_str().replace('_', "");
                let n = u64::from_str_radix(
                    s.trim_start_matches("0x")
                        .trim_start_matches("0o")
                        .trim_start_matches("0b"),
                    i.radix(),
                )
                .ok()
                .filter(|n| range.contains(n));
                if n.is_none() {
                    ctx.error(v.span(), &self.key(key), expected);
                }
                n
            }
            _ => {
                self.wrong_type(ctx, key, v, expected.trim_start_matches("expected "));
                None
            }
        }
    }

    /// A duration written as a string with a unit (`"10s"`), within `range`.
    pub fn duration(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
        range: std::ops::RangeInclusive<Duration>,
    ) -> Option<Duration> {
        let s = self.string(ctx, key, "a duration such as \"10s\" or \"250ms\"")?;
        match ucgate_proto::units::parse_duration(&s.value) {
            Ok(d) if range.contains(&d) => Some(d),
            Ok(_) => {
                ctx.error(
                    s.span,
                    &s.key,
                    format!(
                        "expected a duration from {} to {}",
                        ucgate_proto::units::format_duration(*range.start()),
                        ucgate_proto::units::format_duration(*range.end())
                    ),
                );
                None
            }
            Err(e) => {
                ctx.error(s.span, &s.key, format!("invalid duration: {e}"));
                None
            }
        }
    }

    /// A byte size: an integer (bytes) or a string with a unit (`"64KiB"`).
    pub fn size(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Option<u64> {
        let v = self.raw(key)?;
        let expected = format!(
            "expected a size from {} to {} bytes (an integer, or a string such as \"64KiB\")",
            range.start(),
            range.end()
        );
        let n = match v.get_ref() {
            DeValue::Integer(i) => i.as_str().replace('_', "").parse::<u64>().ok(),
            DeValue::String(s) => match ucgate_proto::units::parse_size(s) {
                Ok(n) => Some(n),
                Err(e) => {
                    ctx.error(v.span(), &self.key(key), format!("invalid size: {e}"));
                    return None;
                }
            },
            _ => {
                self.wrong_type(ctx, key, v, expected.trim_start_matches("expected "));
                return None;
            }
        };
        match n.filter(|n| range.contains(n)) {
            Some(n) => Some(n),
            None => {
                ctx.error(v.span(), &self.key(key), expected);
                None
            }
        }
    }

    /// A socket address such as `127.0.0.1:5280` or `[::1]:5280`.
    pub fn socket_addr(&mut self, ctx: &mut Ctx<'_>, key: &'static str) -> Option<At<SocketAddr>> {
        let expected = "an IP address and port such as \"127.0.0.1:5280\" or \"[::1]:5280\"";
        let s = self.string(ctx, key, expected)?;
        match s.value.parse::<SocketAddr>() {
            Ok(a) => Some(At {
                value: a,
                span: s.span,
                key: s.key,
            }),
            Err(_) => {
                ctx.error(s.span, &s.key, format!("expected {expected}"));
                None
            }
        }
    }

    /// An array of strings.
    pub fn string_list(&mut self, ctx: &mut Ctx<'_>, key: &'static str) -> Option<Vec<At<String>>> {
        let v = self.raw(key)?;
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(ctx, key, v, "an array of strings");
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let k = format!("{}[{i}]", self.key(key));
            match item.get_ref() {
                DeValue::String(s) => out.push(At {
                    value: s.to_string(),
                    span: item.span(),
                    key: k,
                }),
                other => ctx.error(
                    item.span(),
                    &k,
                    format!("expected a string, found {}", type_name(other)),
                ),
            }
        }
        Some(out)
    }

    /// Marks `key` as read without reading it: for a key the caller refuses
    /// in this context with an error of its own.
    pub fn skip(&mut self, key: &'static str) {
        let _ = self.raw(key);
    }

    /// Where the value of `key` is, if the table has it (without marking the
    /// key as used): for errors about a value that is valid on its own but
    /// not allowed in this context.
    pub fn value_span(&self, key: &str) -> Option<Range<usize>> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|e| e.2.span())
    }

    /// The entries of a table whose keys are names chosen by the user (such
    /// as `[xmpp.domains."example.org"]`), each read as a sub-table with
    /// `allowed` keys, in file order. Each name comes with the span of its
    /// key; the sub-table's dotted key quotes the name
    /// (`xmpp.domains."example.org"`). Entries that are not tables are
    /// reported as errors.
    pub fn named_tables(
        &mut self,
        ctx: &mut Ctx<'_>,
        allowed: &'static [&'static str],
    ) -> Vec<(At<String>, Table<'t, 'i>)> {
        let entries = self.entries.clone();
        let mut out = Vec::new();
        for (name, span, v) in entries {
            self.used.insert(name);
            let quoted = format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""));
            let key = self.key(&quoted);
            match v.get_ref() {
                DeValue::Table(t) => out.push((
                    At {
                        value: name.to_string(),
                        span,
                        key: key.clone(),
                    },
                    Table::new(key, v.span(), t, allowed),
                )),
                other => ctx.error(
                    v.span(),
                    &key,
                    format!("expected a table, found {}", type_name(other)),
                ),
            }
        }
        out
    }

    /// A table whose keys are names chosen by the user and whose values
    /// are strings (such as `[cluster.peers]` `a = "10.0.0.1:7000"`), in file
    /// order: each entry as its name and its value. Values that are not
    /// strings are reported as errors.
    pub fn string_table(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
        expected: &str,
    ) -> Option<Vec<(At<String>, At<String>)>> {
        let v = self.raw(key)?;
        let DeValue::Table(t) = v.get_ref() else {
            self.wrong_type(ctx, key, v, "a table");
            return None;
        };
        let mut out = Vec::new();
        for (k, item) in t.iter() {
            let name: &str = k.get_ref().as_ref();
            let quoted = format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""));
            let dotted = format!("{}.{quoted}", self.key(key));
            match item.get_ref() {
                DeValue::String(s) => out.push((
                    At {
                        value: name.to_string(),
                        span: k.span(),
                        key: dotted.clone(),
                    },
                    At {
                        value: s.to_string(),
                        span: item.span(),
                        key: dotted,
                    },
                )),
                other => ctx.error(
                    item.span(),
                    &dotted,
                    format!("expected {expected}, found {}", type_name(other)),
                ),
            }
        }
        Some(out)
    }

    /// A sub-table.
    pub fn table(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
        allowed: &'static [&'static str],
    ) -> Option<Table<'t, 'i>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some(Table::new(self.key(key), v.span(), t, allowed)),
            _ => {
                self.wrong_type(ctx, key, v, "a table");
                None
            }
        }
    }

    /// An array of tables (`[[key]]`).
    pub fn table_array(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
        allowed: &'static [&'static str],
    ) -> Vec<Table<'t, 'i>> {
        let Some(v) = self.raw(key) else {
            return Vec::new();
        };
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(ctx, key, v, &format!("an array of tables (`[[{key}]]`)"));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let k = format!("{}[{i}]", self.key(key));
            match item.get_ref() {
                DeValue::Table(t) => out.push(Table::new(k, item.span(), t, allowed)),
                other => ctx.error(
                    item.span(),
                    &k,
                    format!("expected a table, found {}", type_name(other)),
                ),
            }
        }
        out
    }

    /// Reports every key that no getter asked for.
    pub fn finish(self, ctx: &mut Ctx<'_>) {
        for (k, span, _) in &self.entries {
            if !self.used.contains(k) {
                let allowed = self
                    .allowed
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let hint = suggest(k, self.allowed)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                ctx.error(
                    span.clone(),
                    &self.key(k),
                    format!("unknown key{hint}; expected one of: {allowed}"),
                );
            }
        }
    }
}

/// The closest allowed key by edit distance, if close enough to be a typo.
fn suggest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                let cost = usize::from(ca != *cb);
                cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }
    allowed
        .iter()
        .map(|a| (distance(key, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4))
        .min()
        .map(|(_, a)| a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(suggest("lisen", &["listen", "tls"]), Some("listen"));
        assert_eq!(suggest("zzzzzz", &["listen", "tls"]), None);
    }

    #[test]
    fn positions_are_one_based() {
        let src = "a = 1\nbb = 2\n";
        let mut ctx = Ctx::new(src);
        ctx.error(6..8, "bb", "x");
        let e = &ctx.into_errors()[0];
        assert_eq!((e.line, e.column), (2, 1));
    }
}
