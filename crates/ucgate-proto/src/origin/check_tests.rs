use super::*;

fn err(entry: &str) -> String {
    match check_entry(entry) {
        Err(e) => e.to_string(),
        Ok(e) => panic!("{entry:?} accepted as {e:?}"),
    }
}

fn ok(entry: &str) -> (String, Option<String>) {
    let e = check_entry(entry).unwrap_or_else(|e| panic!("{entry:?}: {e}"));
    (e.origin.as_string(), e.warning())
}

#[test]
fn what_browsers_send_is_accepted_as_is() {
    for entry in [
        "https://app.example.com",
        "http://localhost:8080",
        "https://*.example.com",
        "https://*.example.com:8443",
        "http://127.0.0.1:5280",
        "http://[::1]:8080",
        "capacitor://localhost",
        "chrome-extension://abcdefghijklmnop",
    ] {
        assert_eq!(ok(entry), (entry.to_string(), None));
    }
}

#[test]
fn websocket_urls_are_not_origins() {
    assert_eq!(
        err("wss://chat.example.com/xmpp-websocket"),
        "never matches: browsers send the origin of the page that opens the socket (http:// or https://), not the WebSocket URL (ws:// or wss://); did you mean `https://chat.example.com`?"
    );
    assert_eq!(
        check_entry("ws://localhost:80"),
        Err(EntryError::WebSocketScheme {
            fix: Some("http://localhost".into())
        })
    );
    assert_eq!(
        check_entry("WSS://a.example:8443"),
        Err(EntryError::WebSocketScheme {
            fix: Some("https://a.example:8443".into())
        })
    );
    assert_eq!(
        check_entry("wss://"),
        Err(EntryError::WebSocketScheme { fix: None })
    );
}

#[test]
fn wildcards() {
    assert_eq!(
        err("https://*"),
        "`*` as the whole host matches nothing: write `origins = [\"*\"]` to allow every page, or `https://*.example.com` for the subdomains of one domain"
    );
    assert_eq!(
        err("https://*example.com"),
        "a wildcard stands for whole labels, so a `*` joined to a name matches nothing; did you mean `https://*.example.com` (the subdomains only: list the domain itself separately)?"
    );
    assert_eq!(
        check_entry("https://*Example.com:8443"),
        Err(EntryError::WildcardWithoutDot {
            fix: "https://*.example.com:8443".into()
        })
    );
    let misplaced = "never matches: `*` may only be the leftmost label, as in `https://*.example.com` (every subdomain of example.com)";
    for entry in [
        "https://chat.*.example.com",
        "https://*.*.example.com",
        "https://chat*.example.com",
        "https://example.*",
        "https://*.",
        "https://*..example.com",
        "https://**.example.com",
    ] {
        assert_eq!(err(entry), misplaced, "{entry}");
    }
}

#[test]
fn paths_queries_fragments_and_userinfo() {
    assert_eq!(
        err("https://example.com/chat"),
        "never matches: an Origin has no path (browsers send scheme, host and port only); did you mean `https://example.com`?"
    );
    assert_eq!(
        err("https://example.com?room=1"),
        "never matches: an Origin has no query; did you mean `https://example.com`?"
    );
    assert_eq!(
        err("https://example.com#x"),
        "never matches: an Origin has no fragment; did you mean `https://example.com`?"
    );
    assert_eq!(
        err("https://user:pw@Example.com:443/x"),
        "never matches: an Origin has no user name or password; did you mean `https://example.com`?"
    );
    assert_eq!(
        check_entry("https://example.com//"),
        Err(EntryError::Path {
            fix: Some("https://example.com".into())
        })
    );
    assert_eq!(
        check_entry("https://*/x"),
        Err(EntryError::Path { fix: None })
    );
}

#[test]
fn schemes_null_files_and_whitespace() {
    assert_eq!(
        err("example.com"),
        "an origin starts with its scheme (`https://` or `http://`); did you mean `https://example.com`?"
    );
    assert_eq!(
        check_entry("localhost:8080"),
        Err(EntryError::NoScheme { fix: None })
    );
    assert_eq!(
        check_entry("[::1]:8080"),
        Err(EntryError::NoScheme {
            fix: Some("https://[::1]:8080".into())
        })
    );
    assert_eq!(
        err("null"),
        "`null` is the Origin of file:// pages, sandboxed iframes and some redirects: any page can send it, so it cannot be allowed by name (only `origins = [\"*\"]` lets such pages in); serve the page from http(s)://"
    );
    assert_eq!(check_entry(" NULL "), Err(EntryError::Null));
    assert_eq!(
        err("file:///home/me/chat.html"),
        "never matches: pages opened from file:// send the Origin `null`, which cannot be allowed by name; serve the page from http(s)://"
    );
    assert_eq!(
        err("https://chat .example.com"),
        "never matches: contains whitespace or a control character"
    );
    assert_eq!(
        check_entry("https://a\t.example"),
        Err(EntryError::Whitespace)
    );
    assert_eq!(check_entry("not an origin"), Err(EntryError::Malformed));
    assert_eq!(err("   "), "an empty entry matches no origin; remove it");
    assert_eq!(
        err("https://bücher.example"),
        "never matches: browsers send an internationalised host name in its ASCII form (`xn--…`; `idn2 NAME` prints it)"
    );
}

#[test]
fn ports_and_malformed_entries() {
    for entry in [
        "https://a.example:0",
        "https://a.example:65536",
        "https://a.example:",
        "https://a.example:+80",
        "https://a.example:*",
    ] {
        assert_eq!(
            err(entry),
            "the port must be a number from 1 to 65535",
            "{entry}"
        );
    }
    for entry in [
        "https://",
        "://a.example",
        "ht tp://a",
        "https://a:b:80",
        "https://[::1",
        "https://[::1]x",
        "https://[]",
    ] {
        assert!(check_entry(entry).is_err(), "{entry}");
    }
    assert_eq!(check_entry("https://"), Err(EntryError::Malformed));
    for entry in [
        "https://a\"b.example",
        "https://a<b>",
        "https://[::g]",
        "https://a,b.example",
        "https://a%2eb",
    ] {
        assert_eq!(check_entry(entry), Err(EntryError::Malformed), "{entry}");
    }
    assert!(check_entry("https://my_host.example").is_ok());
    assert!(check_entry("http://[::ffff:127.0.0.1]:8080").is_ok());
    assert_eq!(check_entry("https://[::1"), Err(EntryError::Malformed));
    assert_eq!(check_entry("ht_tp://a"), Err(EntryError::Malformed));
}

#[test]
fn forms_that_match_only_after_normalising_are_warnings() {
    assert_eq!(
        ok("https://example.com:443"),
        (
            "https://example.com".into(),
            Some("matches, but browsers send `https://example.com` (without the scheme's default port): write it that way".into())
        )
    );
    assert_eq!(
        ok(" HTTPS://Chat.Example.com/ "),
        (
            "https://chat.example.com".into(),
            Some("matches, but browsers send `https://chat.example.com` (without spaces, in lower case, without a trailing `/`): write it that way".into())
        )
    );
    assert_eq!(
        check_entry("http://[::1]:80").unwrap().unusual,
        [Unusual::DefaultPort]
    );
    assert_eq!(
        check_entry("https://*.Example.com").unwrap().unusual,
        [Unusual::Uppercase]
    );
}

#[test]
fn a_list_reports_every_entry() {
    let (policy, findings) = check_list(&[
        "https://ok.example",
        "wss://a.example",
        "https://B.example",
        "*",
        "https://c.example/",
        "https://*",
    ]);
    assert_eq!(policy, None);
    let at: Vec<(usize, bool)> = findings
        .iter()
        .map(|(i, f)| (*i, matches!(f, Finding::Error(_))))
        .collect();
    assert_eq!(
        at,
        [(1, true), (2, false), (3, true), (4, false), (5, true)]
    );
    assert_eq!(findings[2].1, Finding::Error(EntryError::StarNotAlone));

    let (policy, findings) = check_list(&["https://A.example", "http://b.example:80"]);
    assert_eq!(
        policy,
        Some(OriginPolicy::List(vec![
            Origin::parse("https://a.example").unwrap(),
            Origin::parse("http://b.example").unwrap(),
        ]))
    );
    assert_eq!(findings.len(), 2);
    assert_eq!(check_list(&[" * "]), (Some(OriginPolicy::Any), vec![]));
    let none: [&str; 0] = [];
    assert_eq!(check_list(&none), (Some(OriginPolicy::SameOrigin), vec![]));
}

#[test]
fn accepted_entries_match_what_browsers_send() {
    for (entry, sent) in [
        ("https://example.com:443", "https://example.com"),
        ("HTTPS://EXAMPLE.COM", "https://example.com"),
        ("https://*.example.com", "https://a.example.com"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ] {
        let p = OriginPolicy::from_list(&[entry]).unwrap();
        assert!(p.allows(Some(sent), None, true), "{entry} vs {sent}");
    }
}
