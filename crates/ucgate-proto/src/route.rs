//! Path → route lookup.
//!
//! A route table maps exact request paths (the query string is not part of
//! the match) to an index into the configured routes. Matching is exact and
//! case-sensitive, as URI paths are (RFC 3986 §6.2.2.1); `/echo` and `/echo/`
//! are different routes, so an operator sees exactly what is exposed.
//!
//! A prefix route (a `static` route) also covers every path below it:
//! `/chat` and `/chat/` both cover `/chat` and `/chat/…`, and `/` covers
//! everything. An exact route wins over a prefix route; of two prefix
//! routes the longer wins.
//!
//! No I/O here: the HTTP layer passes the path string in.

/// Why a route path was refused when building the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutePathError {
    /// The path does not start with `/`.
    #[error("a route path must start with `/`")]
    NotAbsolute,
    /// The path contains a query, fragment, whitespace or control character.
    #[error("a route path must not contain `?`, `#`, spaces or control characters")]
    BadCharacter,
    /// Two routes have the same path.
    #[error("the path `{0}` is already used by another route")]
    Duplicate(String),
}

/// Checks that `path` can be a route path.
pub fn validate_path(path: &str) -> Result<(), RoutePathError> {
    if !path.starts_with('/') {
        return Err(RoutePathError::NotAbsolute);
    }
    if path
        .chars()
        .any(|c| c == '?' || c == '#' || c.is_whitespace() || c.is_control())
    {
        return Err(RoutePathError::BadCharacter);
    }
    Ok(())
}

/// An immutable table of route paths.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    // Sorted by path for binary search; the usize is the caller's route index.
    entries: Vec<(String, usize)>,
    // Prefix routes: the path without its final `/`, longest first.
    prefixes: Vec<(String, usize)>,
}

impl RouteTable {
    /// Builds a table from paths in configuration order. The index of each
    /// path in `paths` is what [`RouteTable::lookup`] returns.
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a str>) -> Result<Self, RoutePathError> {
        Self::with_prefixes(paths.into_iter().map(|p| (p, false)))
    }

    /// Like [`RouteTable::new`], with a flag per path: `true` for a prefix
    /// route that also covers every path below it.
    pub fn with_prefixes<'a>(
        paths: impl IntoIterator<Item = (&'a str, bool)>,
    ) -> Result<Self, RoutePathError> {
        let mut entries: Vec<(String, usize)> = Vec::new();
        let mut prefixes: Vec<(String, usize)> = Vec::new();
        for (i, (p, prefix)) in paths.into_iter().enumerate() {
            validate_path(p)?;
            entries.push((p.to_string(), i));
            if prefix {
                prefixes.push((p.trim_end_matches('/').to_string(), i));
            }
        }
        prefixes.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        entries.sort();
        for w in entries.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(RoutePathError::Duplicate(w[0].0.clone()));
            }
        }
        Ok(RouteTable { entries, prefixes })
    }

    /// Finds the route for a request path (without the query string).
    pub fn lookup(&self, path: &str) -> Option<usize> {
        let exact = self
            .entries
            .binary_search_by(|(p, _)| p.as_str().cmp(path))
            .ok()
            .map(|i| self.entries[i].1);
        exact.or_else(|| {
            self.prefixes
                .iter()
                .find(|(base, _)| {
                    path.strip_prefix(base.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
                })
                .map(|(_, i)| *i)
        })
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no routes.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_lookup() {
        let t = RouteTable::new(["/echo", "/a/b", "/"]).unwrap();
        assert_eq!(t.lookup("/echo"), Some(0));
        assert_eq!(t.lookup("/a/b"), Some(1));
        assert_eq!(t.lookup("/"), Some(2));
        assert_eq!(t.lookup("/echo/"), None);
        assert_eq!(t.lookup("/ECHO"), None);
        assert_eq!(t.lookup("/a"), None);
        assert_eq!(t.lookup(""), None);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn prefix_lookup() {
        let t = RouteTable::with_prefixes([
            ("/chat/", true),
            ("/chat/ws", false),
            ("/", true),
            ("/a", true),
            ("/a/b", true),
        ])
        .unwrap();
        assert_eq!(t.lookup("/chat/ws"), Some(1));
        assert_eq!(t.lookup("/chat/ws/x"), Some(0));
        assert_eq!(t.lookup("/chat/"), Some(0));
        assert_eq!(t.lookup("/chat"), Some(0));
        assert_eq!(t.lookup("/chat/x/y.js"), Some(0));
        assert_eq!(t.lookup("/chatty"), Some(2));
        assert_eq!(t.lookup("/a/b/c"), Some(4));
        assert_eq!(t.lookup("/a/bc"), Some(3));
        assert_eq!(t.lookup("/"), Some(2));
        assert_eq!(t.lookup("/x"), Some(2));
        let t = RouteTable::with_prefixes([("/s", true), ("/e", false)]).unwrap();
        assert_eq!(t.lookup("/e/x"), None);
        assert_eq!(t.lookup("/s"), Some(0));
    }

    #[test]
    fn refuses_bad_tables() {
        assert_eq!(
            RouteTable::new(["/x", "/x"]).unwrap_err(),
            RoutePathError::Duplicate("/x".into())
        );
        assert_eq!(
            RouteTable::new(["echo"]).unwrap_err(),
            RoutePathError::NotAbsolute
        );
        assert_eq!(
            RouteTable::new(["/e?x=1"]).unwrap_err(),
            RoutePathError::BadCharacter
        );
        assert_eq!(
            RouteTable::new(["/e x"]).unwrap_err(),
            RoutePathError::BadCharacter
        );
    }
}
