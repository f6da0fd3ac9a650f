//! The keys of a `static` route (files served from a directory), and the
//! errors for keys that do not belong to it or to other kinds.

use std::path::{Path, PathBuf};

use super::common::resolve;
use super::reader::{Ctx, Table};

/// What a `static` route serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticFiles {
    /// The directory (relative paths resolved against the config file's
    /// directory); its symlinks are resolved at each request, so that a
    /// `current` symlink swapped by a deployment takes effect at once.
    pub root: PathBuf,
    /// The file served for a directory (`index.html`).
    pub index: String,
    /// The `Cache-Control` of every file response.
    pub cache_control: String,
    /// Larger files are refused (404) and logged.
    pub max_file_size: u64,
}

/// The keys only a `static` route has (part of `ROUTE_KEYS`).
pub(super) const STATIC_KEYS: [&str; 4] = ["root", "index", "cache_control", "max_file_size"];

/// Keys of the WebSocket and backend kinds a `static` route has no use for
/// (part of `ROUTE_KEYS`).
pub(super) const NOT_STATIC: [&str; 11] = [
    "origins",
    "subprotocols",
    "require_subprotocol",
    "max_message_size",
    "max_frame_size",
    "buffer_size",
    "ping_interval",
    "ping_timeout",
    "idle_timeout",
    "connect_timeout",
    "close_timeout",
];

/// The `static` keys of a route: `Some(Some(_))` for a valid `static`
/// route, `Some(None)` for another kind without them, `None` after an error.
pub(super) fn read_static(
    ctx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    base: &Path,
    is_static: bool,
) -> Option<Option<StaticFiles>> {
    if !is_static {
        let mut ok = true;
        for key in STATIC_KEYS {
            if let Some(span) = t.value_span(key) {
                ctx.error(span, &t.key(key), "only used by a `static` route");
                t.skip(key);
                ok = false;
            }
        }
        return ok.then_some(None);
    }
    let not_used = "not used by a `static` route (it serves files from `root`)";
    for key in NOT_STATIC {
        if let Some(span) = t.value_span(key) {
            ctx.error(span, &t.key(key), not_used);
        }
    }
    // (the generic reading of a route reads the keys above, not these)
    for key in ["backend", "backend_server_name", "backend_ca_file"] {
        if let Some(v) = t.string(ctx, key, "a string") {
            ctx.error(v.span, &v.key, not_used);
        }
    }
    let root = match t.string(ctx, "root", "a path to a directory") {
        Some(r) => {
            let path = resolve(base, &r.value);
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() => Some(path),
                Ok(_) => {
                    ctx.error(
                        r.span,
                        &r.key,
                        format!("{} is not a directory; `root` names the directory whose files the route serves", path.display()),
                    );
                    None
                }
                Err(e) => {
                    let why = match e.kind() {
                        std::io::ErrorKind::NotFound => "does not exist".to_string(),
                        std::io::ErrorKind::PermissionDenied => {
                            "cannot be read by this user (permission denied)".to_string()
                        }
                        _ => format!("cannot be read: {e}"),
                    };
                    ctx.error(
                        r.span,
                        &r.key,
                        format!("the directory {} {why}", path.display()),
                    );
                    None
                }
            }
        }
        None => {
            ctx.error(
                t.span(),
                &t.key("root"),
                "missing: a `static` route needs a `root` directory such as \"/usr/share/converse.js/dist\"",
            );
            None
        }
    };
    let index = match t.string(ctx, "index", "a file name such as \"index.html\"") {
        Some(i) => {
            let bad = i.value.is_empty()
                || i.value.starts_with('.')
                || i.value.contains(['/', '\\', '\0']);
            if bad {
                ctx.error(
                    i.span,
                    &i.key,
                    "expected a file name such as \"index.html\" (no `/`, not starting with `.`)",
                );
                None
            } else {
                Some(i.value)
            }
        }
        None => Some("index.html".to_string()),
    };
    let cache_control = match t.string(ctx, "cache_control", "a Cache-Control value") {
        Some(c) => {
            let ok = !c.value.is_empty()
                && http::HeaderValue::from_str(&c.value).is_ok()
                && c.value.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
            if ok {
                Some(c.value)
            } else {
                ctx.error(
                    c.span,
                    &c.key,
                    "expected a Cache-Control header value such as \"no-cache\" or \"public, max-age=3600\"",
                );
                None
            }
        }
        None => Some("no-cache".to_string()),
    };
    let max_file_size = t
        .size(ctx, "max_file_size", 1..=1 << 30)
        .unwrap_or(16 << 20);
    Some(Some(StaticFiles {
        root: root?,
        index: index?,
        cache_control: cache_control?,
        max_file_size,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::{Config, RouteKind};
    use std::path::Path;

    fn parse(route: &str) -> Result<Config, Vec<String>> {
        let text = format!("[[route]]\npath = \"/chat/\"\nkind = \"static\"\n{route}\n");
        Config::parse(&text, "t.toml", Path::new("/")).map_err(|e| {
            e.errors
                .iter()
                .map(|e| format!("{}:{}: {}: {}", e.line, e.column, e.key, e.message))
                .collect()
        })
    }

    #[test]
    fn defaults_and_values() {
        let c = parse("root = \"/tmp\"").unwrap();
        let RouteKind::Static(f) = &c.routes[0].kind else {
            panic!("not static")
        };
        assert_eq!(f.root, Path::new("/tmp"));
        assert_eq!(f.index, "index.html");
        assert_eq!(f.cache_control, "no-cache");
        assert_eq!(f.max_file_size, 16 << 20);
        assert!(!c.routes[0].kind.is_websocket() && c.routes[0].kind.is_prefix());
        assert_eq!(c.route_table.lookup("/chat/a/b.js"), Some(0));
        let c = parse("root = \"tmp\"\nindex = \"main.html\"\ncache_control = \"public, max-age=3600\"\nmax_file_size = \"1MiB\"").unwrap();
        let RouteKind::Static(f) = &c.routes[0].kind else {
            panic!("not static")
        };
        assert_eq!((f.index.as_str(), f.max_file_size), ("main.html", 1 << 20));
        assert_eq!(f.cache_control, "public, max-age=3600");
    }

    #[test]
    fn errors_in_plain_words() {
        let cases = [
            (
                "",
                "1:1: route[0].root: missing: a `static` route needs a `root` directory",
            ),
            (
                "root = \"/nonexistent-ucgate\"",
                "4:8: route[0].root: the directory /nonexistent-ucgate does not exist",
            ),
            (
                "root = \"/etc/hostname\"",
                "4:8: route[0].root: /etc/hostname is not a directory",
            ),
            (
                "root = \"/tmp\"\nindex = \"../x.html\"",
                "route[0].index: expected a file name",
            ),
            (
                "root = \"/tmp\"\nindex = \".env\"",
                "route[0].index: expected a file name",
            ),
            (
                "root = \"/tmp\"\ncache_control = \"a\\nb\"",
                "route[0].cache_control: expected a Cache-Control header value",
            ),
            (
                "root = \"/tmp\"\nmax_file_size = 0",
                "route[0].max_file_size: expected a size from 1",
            ),
            (
                "root = \"/tmp\"\nbackend = \"127.0.0.1:1\"",
                "route[0].backend: not used by a `static` route",
            ),
            (
                "root = \"/tmp\"\norigins = [\"*\"]",
                "route[0].origins: not used by a `static` route",
            ),
            (
                "root = \"/tmp\"\nping_interval = \"5s\"",
                "route[0].ping_interval: not used by a `static` route",
            ),
        ];
        for (route, want) in cases {
            let errs = parse(route).unwrap_err();
            assert!(errs.iter().any(|e| e.contains(want)), "{route}: {errs:?}");
            assert_eq!(errs.len(), 1, "{route}: {errs:?}");
        }
        let text = "[[route]]\npath = \"/c\"\nkind = \"static\"\nroot = \"/tmp\"\n[[route]]\npath = \"/c/\"\nkind = \"static\"\nroot = \"/tmp\"\n";
        let e = Config::parse(text, "t.toml", Path::new("/")).unwrap_err();
        assert_eq!(e.errors.len(), 1);
        assert_eq!(
            (e.errors[0].line, e.errors[0].key.as_str()),
            (6, "route[1].path")
        );
        assert!(e.errors[0]
            .message
            .contains("are the same `static` route path"));
        let text = "[[route]]\npath = \"/e\"\nkind = \"tcp\"\nbackend = \"127.0.0.1:1\"\nroot = \"/tmp\"\n";
        let e = Config::parse(text, "t.toml", Path::new("/")).unwrap_err();
        assert_eq!(e.errors.len(), 1);
        assert_eq!(e.errors[0].message, "only used by a `static` route");
    }
}
