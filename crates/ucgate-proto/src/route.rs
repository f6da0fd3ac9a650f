//! Path → route lookup.
//!
//! A route table maps exact request paths (the query string is not part of
//! the match) to an index into the configured routes. Matching is exact and
//! case-sensitive, as URI paths are (RFC 3986 §6.2.2.1); `/echo` and `/echo/`
//! are different routes, so an operator sees exactly what is exposed.
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
}

impl RouteTable {
    /// Builds a table from paths in configuration order. The index of each
    /// path in `paths` is what [`RouteTable::lookup`] returns.
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a str>) -> Result<Self, RoutePathError> {
        let mut entries: Vec<(String, usize)> = Vec::new();
        for (i, p) in paths.into_iter().enumerate() {
            validate_path(p)?;
            entries.push((p.to_string(), i));
        }
        entries.sort();
        for w in entries.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(RoutePathError::Duplicate(w[0].0.clone()));
            }
        }
        Ok(RouteTable { entries })
    }

    /// Finds the route for a request path (without the query string).
    pub fn lookup(&self, path: &str) -> Option<usize> {
        self.entries
            .binary_search_by(|(p, _)| p.as_str().cmp(path))
            .ok()
            .map(|i| self.entries[i].1)
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
