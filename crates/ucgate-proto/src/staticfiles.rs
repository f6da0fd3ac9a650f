//! The decisions of a `static` route (files served from a directory), with
//! no file access: the glue passes the request's raw path and headers in
//! and the file's size and modification time, and does what is decided.
//!
//! * [`locate`]: the request path under the route → safe relative
//!   segments, a redirect to the directory's slash form, or a refusal.
//!   Nothing that could leave the directory gets through: `.` and `..`
//!   segments, percent-encoded dots, slashes, backslashes and NUL, raw
//!   backslashes, control characters, bad escapes, bytes that are not
//!   UTF-8, and names starting with a dot (`.git`, `.htpasswd`). The glue
//!   still resolves symlinks and checks that the result is inside the root.
//! * [`content_type`]: the `Content-Type` for a file name's extension.
//! * [`encodings`]: which precompressed siblings (`.br`, then `.gz`) the
//!   client's `Accept-Encoding` allows.
//! * [`etag`] and [`not_modified`]: validators and the conditional-request
//!   decision of RFC 9110 §13.2.2 for GET and HEAD.

/// Why a request path was refused (the response is 404 either way; the
/// reason is for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathRefusal {
    /// A `.` or `..` segment, raw or percent-encoded.
    #[error("a `.` or `..` segment")]
    DotSegment,
    /// A segment starting with `.` (hidden files are not served).
    #[error("a name starting with `.`")]
    HiddenName,
    /// `%2e`, `%2f` or `%5c`: an encoded dot, slash or backslash.
    #[error("a percent-encoded dot, slash or backslash")]
    EncodedSeparator,
    /// `%00` or another control character, raw or encoded.
    #[error("a NUL or control character")]
    ControlCharacter,
    /// A raw backslash.
    #[error("a backslash")]
    Backslash,
    /// `%` not followed by two hex digits.
    #[error("a malformed percent escape")]
    BadEscape,
    /// Decoded bytes that are not UTF-8.
    #[error("bytes that are not UTF-8")]
    NotUtf8,
    /// The path is not under the route's path.
    #[error("not under the route's path")]
    NotUnderRoute,
}

/// Where a request path leads inside the route's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// A file or directory: decoded path segments (never empty strings,
    /// `.`, `..`, or containing `/`, `\` or NUL); `directory` when the path
    /// ends with `/` (serve the directory's index file).
    Path {
        /// The segments below the root.
        segments: Vec<String>,
        /// The request path ends with `/`.
        directory: bool,
    },
    /// The route's own path without its final slash (`/chat` for a route
    /// at `/chat/`): redirect here so that relative links resolve.
    Redirect(String),
}

/// Maps the raw (still percent-encoded) request path to what it names
/// under a route at `route_path` (`/chat`, `/chat/` and `/` alike cover
/// everything below them). The query string is not part of `path`.
pub fn locate(route_path: &str, path: &str) -> Result<Located, PathRefusal> {
    let base = route_path.trim_end_matches('/');
    let rest = path.strip_prefix(base).ok_or(PathRefusal::NotUnderRoute)?;
    if rest.is_empty() {
        return Ok(Located::Redirect(format!("{base}/")));
    }
    let rest = rest.strip_prefix('/').ok_or(PathRefusal::NotUnderRoute)?;
    let directory = rest.is_empty() || rest.ends_with('/');
    let mut segments = Vec::new();
    // Empty segments (`a//b`) are skipped, as most servers merge slashes.
    for raw in rest.split('/').filter(|s| !s.is_empty()) {
        segments.push(segment(raw)?);
    }
    Ok(Located::Path {
        segments,
        directory,
    })
}

/// One decoded, checked path segment.
fn segment(raw: &str) -> Result<String, PathRefusal> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let decoded = match b {
            b'%' => {
                let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
                let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                    return Err(PathRefusal::BadEscape);
                };
                i += 3;
                let d = (hi * 16 + lo) as u8;
                if matches!(d, b'.' | b'/' | b'\\') {
                    return Err(PathRefusal::EncodedSeparator);
                }
                d
            }
            b'\\' => return Err(PathRefusal::Backslash),
            _ => {
                i += 1;
                b
            }
        };
        if decoded < 0x20 || decoded == 0x7f {
            return Err(PathRefusal::ControlCharacter);
        }
        out.push(decoded);
    }
    let s = String::from_utf8(out).map_err(|_| PathRefusal::NotUtf8)?;
    match s.as_str() {
        "." | ".." => Err(PathRefusal::DotSegment),
        _ if s.starts_with('.') => Err(PathRefusal::HiddenName),
        _ => Ok(s),
    }
}

/// The `Content-Type` for a file name, by its extension (case-insensitive);
/// `application/octet-stream` when unknown. Text types say UTF-8.
pub fn content_type(name: &str) -> &'static str {
    let ext = match name.rsplit_once('.') {
        Some((_, e)) => e.to_ascii_lowercase(),
        None => return "application/octet-stream",
    };
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "wasm" => "application/wasm",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// A precompressed sibling a file may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `file.br`, `Content-Encoding: br`.
    Brotli,
    /// `file.gz`, `Content-Encoding: gzip`.
    Gzip,
}

impl Encoding {
    /// The `Content-Encoding` value.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }

    /// The sibling file's suffix.
    pub fn suffix(self) -> &'static str {
        match self {
            Encoding::Brotli => ".br",
            Encoding::Gzip => ".gz",
        }
    }
}

/// The precompressed encodings `accept_encoding` (every `Accept-Encoding`
/// header's value, joined with `,`) allows, in the order to try them:
/// `br`, then `gzip`. A coding is allowed when named (`gzip` or `x-gzip`)
/// or matched by `*` with a non-zero `q`; an explicit `q=0` refuses it even
/// if `*` allows it (RFC 9110 §12.5.3).
pub fn encodings(accept_encoding: &[u8]) -> Vec<Encoding> {
    // For each of br, gzip: the q of its own entry, and the q of `*`.
    let mut own: [Option<bool>; 2] = [None, None];
    let mut star: Option<bool> = None;
    for item in accept_encoding.split(|b| *b == b',') {
        let mut parts = item.split(|b| *b == b';');
        let name = trim(parts.next().unwrap_or_default()).to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        let mut allowed = true;
        for p in parts {
            let p = trim(p);
            if p.len() > 2 && p[..2].eq_ignore_ascii_case(b"q=") {
                allowed = q_positive(&p[2..]);
            }
        }
        let slot = match name.as_slice() {
            b"br" => &mut own[0],
            b"gzip" | b"x-gzip" => &mut own[1],
            b"*" => &mut star,
            _ => continue,
        };
        // Several entries for one coding: the first wins.
        slot.get_or_insert(allowed);
    }
    [Encoding::Brotli, Encoding::Gzip]
        .into_iter()
        .zip(own)
        .filter(|(_, q)| q.or(star).unwrap_or(false))
        .map(|(e, _)| e)
        .collect()
}

/// Whether a qvalue (`0`, `0.5`, `1.000`) is above zero; malformed values
/// count as zero.
fn q_positive(v: &[u8]) -> bool {
    let ok = match v {
        [b'0'] | [b'1'] => true,
        [b'0' | b'1', b'.', rest @ ..] => rest.len() <= 3 && rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    ok && v.iter().any(|b| (b'1'..=b'9').contains(b))
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !matches!(c, b' ' | b'\t'));
    let Some(start) = start else { return &[] };
    let end = b
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\t'))
        .unwrap_or(start);
    &b[start..=end]
}

/// The strong entity tag of a file version: its size and modification time
/// (nanoseconds since 1970) in hex, and the encoding of a precompressed
/// sibling, so that each representation has its own tag. Quoted.
pub fn etag(size: u64, mtime_nanos: u128, encoding: Option<Encoding>) -> String {
    let suffix = encoding.map_or(String::new(), |e| format!("-{}", e.token()));
    format!("\"{size:x}-{mtime_nanos:x}{suffix}\"")
}

/// Whether a GET or HEAD gets 304 Not Modified (RFC 9110 §13.2.2):
/// `If-None-Match` (every header's value joined with `,`) decides when
/// present, by weak comparison against `etag` or `*`; otherwise
/// `If-Modified-Since` (already parsed to seconds since 1970, `None` when
/// absent or not a date) when the file is not newer than it.
pub fn not_modified(
    etag: &str,
    mtime_secs: u64,
    if_none_match: Option<&[u8]>,
    if_modified_since: Option<u64>,
) -> bool {
    if let Some(inm) = if_none_match {
        let ours = opaque(etag.as_bytes());
        return inm.split(|b| *b == b',').any(|t| {
            let t = trim(t);
            t == b"*" || opaque(t) == ours
        });
    }
    if_modified_since.is_some_and(|since| mtime_secs <= since)
}

/// An entity tag without its weakness marker (`W/"x"` → `"x"`).
fn opaque(tag: &[u8]) -> &[u8] {
    tag.strip_prefix(b"W/").unwrap_or(tag)
}

#[cfg(test)]
#[path = "staticfiles_tests.rs"]
mod tests;
