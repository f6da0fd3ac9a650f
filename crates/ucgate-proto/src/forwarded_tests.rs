use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn nets(list: &[&str]) -> NetSet {
    NetSet::parse(list).unwrap()
}

fn fwd<'a>(lines: &[&'a str]) -> Headers<'a> {
    Headers {
        forwarded: lines.to_vec(),
        ..Headers::default()
    }
}

fn xff<'a>(fors: &[&'a str], protos: &[&'a str], hosts: &[&'a str]) -> Headers<'a> {
    Headers {
        x_forwarded_for: fors.to_vec(),
        x_forwarded_proto: protos.to_vec(),
        x_forwarded_host: hosts.to_vec(),
        ..Headers::default()
    }
}

fn found(o: Outcome) -> Client {
    match o {
        Outcome::Found(c) => c,
        other => panic!("expected a client, got {other:?}"),
    }
}

#[test]
fn rfc_7239_examples() {
    // §4 and §7.1-7.4 examples, one element each.
    let one = |v: &str| parse_forwarded(&[v]).unwrap();
    assert_eq!(
        one(r#"for="_gazonk""#),
        vec![Hop {
            node: Some(Node::Obfuscated),
            ..Hop::default()
        }]
    );
    assert_eq!(
        one(r#"For="[2001:db8:cafe::17]:4711""#)[0].node,
        Some(Node::Ip(ip("2001:db8:cafe::17"), Some(4711)))
    );
    assert_eq!(
        one("for=192.0.2.60;proto=http;by=203.0.113.43"),
        vec![Hop {
            node: Some(Node::Ip(ip("192.0.2.60"), None)),
            proto: Some("http".into()),
            host: None,
        }]
    );
    let two = one("for=192.0.2.43, for=198.51.100.17");
    assert_eq!(two.len(), 2);
    assert_eq!(two[1].node, Some(Node::Ip(ip("198.51.100.17"), None)));
    assert_eq!(one("for=unknown")[0].node, Some(Node::Unknown));
    assert_eq!(
        one(r#"for="192.0.2.43:47011""#)[0].node,
        Some(Node::Ip(ip("192.0.2.43"), Some(47011)))
    );
    assert_eq!(
        one(r#"for="[2001:db8:cafe::17]""#)[0].node,
        Some(Node::Ip(ip("2001:db8:cafe::17"), None))
    );
    assert_eq!(
        one(r#"for="_SEVKISEK:_abc""#)[0].node,
        Some(Node::Obfuscated)
    );
    assert_eq!(
        one(r#"for="192.0.2.43:_hidden""#)[0].node,
        Some(Node::Ip(ip("192.0.2.43"), None))
    );
    // §7.4: two headers are one list.
    let lines = parse_forwarded(&[
        "for=192.0.2.43",
        "for=198.51.100.17;by=203.0.113.60;proto=http;host=example.com",
    ])
    .unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1].host.as_deref(), Some("example.com"));
}

#[test]
fn forwarded_syntax_details() {
    // Case-insensitive names and "unknown", OWS around separators, empty
    // elements and pairs, extensions ignored, escapes in quoted strings.
    let h = parse_forwarded(&[
        r#" , FOR=UNKNOWN ;PROTO=HTTPS; ; ext="a,b;c" ,for="\[::1\]:80";host="chat.example.com:443""#,
    ])
    .unwrap();
    assert_eq!(
        h,
        vec![
            Hop {
                node: Some(Node::Unknown),
                proto: Some("https".into()),
                host: None,
            },
            Hop {
                node: Some(Node::Ip(ip("::1"), Some(80))),
                proto: None,
                host: Some("chat.example.com:443".into()),
            },
        ]
    );
    assert_eq!(parse_forwarded(&["", "  "]), Ok(vec![]));
}

#[test]
fn forwarded_refusals() {
    for (v, e) in [
        ("for", ForwardedError::Syntax),
        ("for=", ForwardedError::Syntax),
        ("=1.2.3.4", ForwardedError::Syntax),
        ("for=[::1]", ForwardedError::Syntax), // ':' and '[' need quotes
        ("for=1.2.3.4:80", ForwardedError::Syntax),
        (r#"for="1.2.3.4"x"#, ForwardedError::Syntax),
        (r#"for="1.2.3.4"#, ForwardedError::Unclosed),
        (r#"for="a"b"c""#, ForwardedError::Syntax),
        (r#"for="a"b""#, ForwardedError::Unclosed),
        ("for=1.2.3.4;for=5.6.7.8", ForwardedError::Duplicate("for")),
        ("proto=http;Proto=https", ForwardedError::Duplicate("proto")),
        (r#"for="::1""#, ForwardedError::Node("::1".into())),
        (r#"for="[::1]80""#, ForwardedError::Node("[::1]80".into())),
        (
            r#"for="[1.2.3.4]""#,
            ForwardedError::Node("[1.2.3.4]".into()),
        ),
        (
            "for=example.com",
            ForwardedError::Node("example.com".into()),
        ),
        ("for=_", ForwardedError::Node("_".into())),
        (
            r#"for="1.2.3.4:65536""#,
            ForwardedError::Node("1.2.3.4:65536".into()),
        ),
        (r#"for="1.2.3.4:""#, ForwardedError::Node("1.2.3.4:".into())),
        ("for=1.2.3.04", ForwardedError::Node("1.2.3.04".into())),
        ("proto=1http", ForwardedError::Proto("1http".into())),
        (r#"proto="ht tp""#, ForwardedError::Proto("ht tp".into())),
        (r#"host="a/b""#, ForwardedError::Host("a/b".into())),
        (r#"host="a:b:c""#, ForwardedError::Host("a:b:c".into())),
        (r#"host="user@a""#, ForwardedError::Host("user@a".into())),
    ] {
        assert_eq!(parse_forwarded(&[v]), Err(e), "{v}");
    }
    // A control character, even quoted.
    assert_eq!(
        parse_forwarded(&["host=\"a\u{1}\""]),
        Err(ForwardedError::Syntax)
    );
}

#[test]
fn x_forwarded_entries() {
    let nodes = parse_x_forwarded_for(&[
        "203.0.113.7, 2001:db8::1",
        " [2001:db8::2]:443 ,, 192.0.2.1:8080,unknown",
    ])
    .unwrap();
    assert_eq!(
        nodes,
        vec![
            Node::Ip(ip("203.0.113.7"), None),
            Node::Ip(ip("2001:db8::1"), None),
            Node::Ip(ip("2001:db8::2"), Some(443)),
            Node::Ip(ip("192.0.2.1"), Some(8080)),
            Node::Unknown,
        ]
    );
    for bad in ["example.com", "1.2.3.4:x", "_hidden", "1.2.3.4 5.6.7.8"] {
        assert_eq!(
            parse_x_forwarded_for(&[bad]),
            Err(ForwardedError::Node(bad.into())),
            "{bad}"
        );
    }
    let trusted = nets(&["127.0.0.1"]);
    assert_eq!(
        resolve(
            ip("127.0.0.1"),
            &trusted,
            &xff(&["1.2.3.4"], &["h ttp"], &[])
        ),
        Outcome::Invalid(Source::XForwarded, ForwardedError::Proto("h ttp".into()))
    );
}

#[test]
fn what_a_client_wrote_left_of_its_address_is_not_read() {
    // nginx appends the client's address to the client's own header.
    let trusted = nets(&["127.0.0.1"]);
    let c = found(resolve(
        ip("127.0.0.1"),
        &trusted,
        &xff(&["garbage, 127.0.0.1, 192.0.2.8"], &[], &[]),
    ));
    assert_eq!(c.ip, ip("192.0.2.8"));
    let c = found(resolve(
        ip("127.0.0.1"),
        &trusted,
        &fwd(&[
            "for=nonsense;proto=999",
            r#"for="192.0.2.8:4000";proto=https"#,
        ]),
    ));
    assert_eq!(
        (c.ip, c.port, c.secure()),
        (ip("192.0.2.8"), Some(4000), Some(true))
    );
    // An unclosed quote anywhere breaks the list itself.
    assert_eq!(
        resolve(
            ip("127.0.0.1"),
            &trusted,
            &fwd(&["for=\"x", "for=192.0.2.8"])
        ),
        Outcome::Invalid(Source::Forwarded, ForwardedError::Unclosed)
    );
}

#[test]
fn untrusted_peers_are_ignored_whatever_they_send() {
    let trusted = nets(&["10.0.0.0/8"]);
    for h in [
        fwd(&["for=198.51.100.1;proto=https"]),
        xff(&["198.51.100.1"], &["https"], &["chat.example.com"]),
        fwd(&["garbage"]),
    ] {
        assert_eq!(resolve(ip("192.0.2.9"), &trusted, &h), Outcome::Ignored);
    }
    assert_eq!(
        resolve(ip("10.0.0.1"), &NetSet::default(), &fwd(&["for=1.2.3.4"])),
        Outcome::Ignored,
        "nothing trusted by default"
    );
}

#[test]
fn a_trusted_peer_without_headers() {
    let trusted = nets(&["10.0.0.0/8"]);
    assert_eq!(
        resolve(ip("10.0.0.1"), &trusted, &Headers::default()),
        Outcome::Absent
    );
    assert_eq!(
        resolve(ip("10.0.0.1"), &trusted, &fwd(&[" ", ","])),
        Outcome::Absent
    );
    // IPv4-mapped IPv6 peer, as a dual-stack socket reports it.
    assert!(matches!(
        resolve(ip("::ffff:10.0.0.1"), &trusted, &fwd(&["for=192.0.2.1"])),
        Outcome::Found(_)
    ));
    // ... and, when the walk stops at it, the client as IPv4 (found by the
    // forwarded fuzz target).
    let c = found(resolve(
        ip("::ffff:10.0.0.1"),
        &trusted,
        &fwd(&["for=unknown"]),
    ));
    assert_eq!(c.ip, ip("10.0.0.1"));
}

#[test]
fn the_walk_skips_trusted_hops_from_the_right() {
    let trusted = nets(&["10.0.0.0/8", "2001:db8:1::/48"]);
    // client 198.51.100.1 → proxy 10.1.1.1 → proxy 10.2.2.2 → us.
    let c = found(resolve(
        ip("10.2.2.2"),
        &trusted,
        &xff(&["203.0.113.66, 198.51.100.1, 10.1.1.1"], &[], &[]),
    ));
    assert_eq!(
        (c.ip, c.port, c.source),
        (ip("198.51.100.1"), None, Source::XForwarded),
        "a client's own X-Forwarded-For entry (203.0.113.66) is left of it"
    );
    let c = found(resolve(
        ip("2001:db8:1::5"),
        &trusted,
        &fwd(&[
            r#"for="[2001:db8:2::9]:5000";proto=https;host=chat.example.com, for=10.0.0.3;proto=http"#,
        ]),
    ));
    assert_eq!(c.ip, ip("2001:db8:2::9"));
    assert_eq!(c.port, Some(5000));
    assert_eq!(c.proto.as_deref(), Some("https"), "the client's own hop");
    assert_eq!(c.host.as_deref(), Some("chat.example.com"));
    assert_eq!(c.secure(), Some(true));
    assert_eq!(c.source, Source::Forwarded);
    // Every address trusted: the leftmost.
    let c = found(resolve(
        ip("10.0.0.1"),
        &trusted,
        &xff(&["10.0.0.9, 10.0.0.8"], &[], &[]),
    ));
    assert_eq!(c.ip, ip("10.0.0.9"));
    // unknown stops the walk at the last trusted hop.
    let c = found(resolve(
        ip("10.0.0.1"),
        &trusted,
        &fwd(&["for=198.51.100.1, for=unknown;proto=https, for=10.0.0.7"]),
    ));
    assert_eq!((c.ip, c.proto.as_deref()), (ip("10.0.0.7"), Some("https")));
    let c = found(resolve(ip("10.0.0.1"), &trusted, &fwd(&["for=_hidden"])));
    assert_eq!(c.ip, ip("10.0.0.1"), "the peer itself");
    // An element without `for` (only the scheme): the peer, with it.
    let c = found(resolve(
        ip("10.0.0.1"),
        &trusted,
        &fwd(&["proto=https;host=a.example"]),
    ));
    assert_eq!(
        (c.ip, c.secure(), c.host.as_deref()),
        (ip("10.0.0.1"), Some(true), Some("a.example"))
    );
    // A mapped address in a header is the IPv4 client.
    let c = found(resolve(
        ip("10.0.0.1"),
        &trusted,
        &xff(&["::ffff:192.0.2.5"], &[], &[]),
    ));
    assert_eq!(c.ip, ip("192.0.2.5"));
}

#[test]
fn forwarded_wins_over_x_forwarded() {
    let trusted = nets(&["127.0.0.1"]);
    let h = Headers {
        forwarded: vec!["for=192.0.2.1;proto=http"],
        x_forwarded_for: vec!["192.0.2.99"],
        x_forwarded_proto: vec!["https"],
        x_forwarded_host: vec![],
    };
    let c = found(resolve(ip("127.0.0.1"), &trusted, &h));
    assert_eq!((c.ip, c.secure()), (ip("192.0.2.1"), Some(false)));
    // Even a malformed Forwarded: no fallback to the other headers.
    let h = Headers {
        forwarded: vec!["for=nope"],
        ..h
    };
    assert_eq!(
        resolve(ip("127.0.0.1"), &trusted, &h),
        Outcome::Invalid(Source::Forwarded, ForwardedError::Node("nope".into()))
    );
}

#[test]
fn x_forwarded_proto_and_host_single_aligned_or_ignored() {
    let trusted = nets(&["127.0.0.0/8"]);
    // One value: taken as is.
    let c = found(resolve(
        ip("127.0.0.1"),
        &trusted,
        &xff(&["192.0.2.1, 127.0.0.5"], &["HTTPS"], &["chat.example.com"]),
    ));
    assert_eq!(
        (c.ip, c.proto.as_deref(), c.host.as_deref()),
        (ip("192.0.2.1"), Some("https"), Some("chat.example.com"))
    );
    // As many values as addresses: the client's position.
    let c = found(resolve(
        ip("127.0.0.1"),
        &trusted,
        &xff(
            &["192.0.2.1, 127.0.0.5"],
            &["https, http"],
            &["a.example", "b.example"],
        ),
    ));
    assert_eq!(
        (c.proto.as_deref(), c.host.as_deref()),
        (Some("https"), Some("a.example"))
    );
    // Any other count: ambiguous, ignored.
    let c = found(resolve(
        ip("127.0.0.1"),
        &trusted,
        &xff(&["192.0.2.1"], &["https, http"], &[]),
    ));
    assert_eq!(c.proto, None);
    // Scheme without addresses: the peer, with that scheme.
    let c = found(resolve(
        ip("127.0.0.1"),
        &trusted,
        &xff(&[], &["https"], &[]),
    ));
    assert_eq!((c.ip, c.secure()), (ip("127.0.0.1"), Some(true)));
    // Other schemes say nothing about TLS.
    let c = found(resolve(
        ip("127.0.0.1"),
        &trusted,
        &xff(&[], &["gopher"], &[]),
    ));
    assert_eq!(c.secure(), None);
    assert_eq!(
        resolve(
            ip("127.0.0.1"),
            &trusted,
            &xff(&["1.2.3.4", "bad"], &[], &[])
        ),
        Outcome::Invalid(Source::XForwarded, ForwardedError::Node("bad".into()))
    );
}
