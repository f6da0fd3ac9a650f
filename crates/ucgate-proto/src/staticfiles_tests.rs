use super::*;

fn path(segments: &[&str], directory: bool) -> Result<Located, PathRefusal> {
    Ok(Located::Path {
        segments: segments.iter().map(|s| s.to_string()).collect(),
        directory,
    })
}

#[test]
fn locates_files_and_directories_under_the_route() {
    for route in ["/chat", "/chat/"] {
        assert_eq!(locate(route, "/chat/"), path(&[], true));
        assert_eq!(locate(route, "/chat/a.js"), path(&["a.js"], false));
        assert_eq!(
            locate(route, "/chat/dist/x.css"),
            path(&["dist", "x.css"], false)
        );
        assert_eq!(locate(route, "/chat/dist/"), path(&["dist"], true));
        assert_eq!(locate(route, "/chat//a//b"), path(&["a", "b"], false));
        assert_eq!(
            locate(route, "/chat"),
            Ok(Located::Redirect("/chat/".into()))
        );
        assert_eq!(locate(route, "/chatty"), Err(PathRefusal::NotUnderRoute));
        assert_eq!(locate(route, "/other"), Err(PathRefusal::NotUnderRoute));
    }
    assert_eq!(locate("/", "/"), path(&[], true));
    assert_eq!(locate("/", "/index.html"), path(&["index.html"], false));
}

#[test]
fn decodes_percent_escapes() {
    assert_eq!(locate("/", "/a%20b.txt"), path(&["a b.txt"], false));
    assert_eq!(locate("/", "/%C3%A9t%c3%a9"), path(&["été"], false));
    assert_eq!(locate("/", "/a+b"), path(&["a+b"], false));
}

#[test]
fn refuses_every_way_out_of_the_directory() {
    use PathRefusal::*;
    let cases: &[(&str, PathRefusal)] = &[
        ("/x/../../etc/passwd", DotSegment),
        ("/x/..", DotSegment),
        ("/x/../", DotSegment),
        ("/x/./a", DotSegment),
        ("/x/%2e%2e/etc/passwd", EncodedSeparator),
        ("/x/%2E%2E/", EncodedSeparator),
        ("/x/.%2e/", EncodedSeparator),
        ("/x/%2e./", EncodedSeparator),
        ("/x/..%2fetc%2fpasswd", EncodedSeparator),
        ("/x/..%2Fetc", EncodedSeparator),
        ("/x/a%2fb", EncodedSeparator),
        ("/x/..%5c..%5cetc", EncodedSeparator),
        ("/x/a%5Cb", EncodedSeparator),
        ("/x/..\\..\\etc\\passwd", Backslash),
        ("/x/a\\b", Backslash),
        ("/x/a.js%00.png", ControlCharacter),
        ("/x/%00", ControlCharacter),
        ("/x/a%0ab", ControlCharacter),
        ("/x/a%7f", ControlCharacter),
        ("/x/a\u{1}b", ControlCharacter),
        ("/x/%", BadEscape),
        ("/x/%2", BadEscape),
        ("/x/%zz", BadEscape),
        ("/x/%%32%65", BadEscape),
        ("/x/%c3", NotUtf8),
        ("/x/%ff", NotUtf8),
        ("/x/.git/config", HiddenName),
        ("/x/.htpasswd", HiddenName),
        ("/x/...", HiddenName),
    ];
    for (p, why) in cases {
        assert_eq!(locate("/x", p), Err(*why), "{p}");
    }
}

#[test]
fn content_types_by_extension() {
    let cases = [
        ("index.html", "text/html; charset=utf-8"),
        ("INDEX.HTM", "text/html; charset=utf-8"),
        ("converse.min.js", "text/javascript; charset=utf-8"),
        ("m.mjs", "text/javascript; charset=utf-8"),
        ("a.css", "text/css; charset=utf-8"),
        ("emoji.json", "application/json"),
        ("converse.js.map", "application/json"),
        ("i.svg", "image/svg+xml"),
        ("i.png", "image/png"),
        ("i.jpg", "image/jpeg"),
        ("i.JPEG", "image/jpeg"),
        ("i.gif", "image/gif"),
        ("i.webp", "image/webp"),
        ("favicon.ico", "image/x-icon"),
        ("f.woff", "font/woff"),
        ("f.woff2", "font/woff2"),
        ("f.ttf", "font/ttf"),
        ("c.wasm", "application/wasm"),
        ("r.txt", "text/plain; charset=utf-8"),
        ("d.xml", "application/xml"),
        ("s.mp3", "audio/mpeg"),
        ("s.ogg", "audio/ogg"),
        ("LICENSE", "application/octet-stream"),
        ("a.exe", "application/octet-stream"),
        ("a.", "application/octet-stream"),
    ];
    for (name, ct) in cases {
        assert_eq!(content_type(name), ct, "{name}");
    }
}

#[test]
fn precompressed_encodings_from_accept_encoding() {
    use Encoding::*;
    let cases: &[(&[u8], &[Encoding])] = &[
        (b"", &[]),
        (b"identity", &[]),
        (b"gzip, deflate, br, zstd", &[Brotli, Gzip]),
        (b"gzip", &[Gzip]),
        (b"x-gzip", &[Gzip]),
        (b"BR", &[Brotli]),
        (b"br;q=0, gzip", &[Gzip]),
        (b"br; q=0.0, gzip;q=0.001", &[Gzip]),
        (b"br;q=1.0,gzip;q=0", &[Brotli]),
        (b"*", &[Brotli, Gzip]),
        (b"*;q=0.5, gzip;q=0", &[Brotli]),
        (b"*;q=0", &[]),
        (b"gzip;q=2", &[]),
        (b"gzip;q=0.5x", &[]),
        (b" , ,gzip", &[Gzip]),
        (b"gzip;q=1, gzip;q=0", &[Gzip]),
    ];
    for (header, want) in cases {
        assert_eq!(
            encodings(header),
            want.to_vec(),
            "{}",
            String::from_utf8_lossy(header)
        );
    }
    assert_eq!((Brotli.token(), Brotli.suffix()), ("br", ".br"));
    assert_eq!((Gzip.token(), Gzip.suffix()), ("gzip", ".gz"));
}

#[test]
fn etags_differ_per_version_and_encoding() {
    assert_eq!(etag(255, 0x10, None), "\"ff-10\"");
    assert_eq!(etag(255, 0x10, Some(Encoding::Brotli)), "\"ff-10-br\"");
    assert_eq!(etag(255, 0x10, Some(Encoding::Gzip)), "\"ff-10-gzip\"");
    assert_ne!(etag(255, 0x11, None), etag(255, 0x10, None));
    assert_ne!(etag(254, 0x10, None), etag(255, 0x10, None));
}

#[test]
fn conditional_requests() {
    let tag = "\"ff-10\"";
    // If-None-Match decides when present.
    assert!(not_modified(tag, 100, Some(b"\"ff-10\""), None));
    assert!(not_modified(tag, 100, Some(b"W/\"ff-10\""), None));
    assert!(not_modified(tag, 100, Some(b"\"a\", \"ff-10\""), None));
    assert!(not_modified(tag, 100, Some(b"*"), None));
    assert!(!not_modified(tag, 100, Some(b"\"ff-11\""), None));
    assert!(!not_modified(tag, 100, Some(b"ff-10"), None));
    assert!(!not_modified(tag, 100, Some(b"\"ff-10-br\""), None));
    assert!(!not_modified(tag, 100, Some(b"\"ff-11\""), Some(200)));
    // Otherwise If-Modified-Since.
    assert!(not_modified(tag, 100, None, Some(100)));
    assert!(not_modified(tag, 100, None, Some(101)));
    assert!(!not_modified(tag, 100, None, Some(99)));
    assert!(!not_modified(tag, 100, None, None));
}
