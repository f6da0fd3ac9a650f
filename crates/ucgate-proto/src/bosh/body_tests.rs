//! Request parsing and response rendering, byte by byte.

use super::*;
use crate::bosh::condition::Condition;

fn parse(s: &str) -> Result<Request, BodyError> {
    parse_request(s.as_bytes(), &Limits::default())
}

fn ok(s: &str) -> Request {
    parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn payload(r: &Request) -> Vec<String> {
    r.payload
        .iter()
        .map(|p| String::from_utf8(p.bytes.clone()).unwrap())
        .collect()
}

#[test]
fn creation_request_attributes() {
    let r = ok("<body content='text/xml; charset=utf-8' from='user@example.com' hold='1' rid='1573741820' to='example.com' route='xmpp:example.com:9999' ver='1.6' wait='60' ack='1' xml:lang='en' secure='true' newkey='ca393b51b682f61f98e7877d61146407f3d0a770' xmpp:version='1.0' xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>");
    assert_eq!(r.sid, None);
    assert_eq!(r.rid, 1573741820);
    assert_eq!(r.content.as_deref(), Some("text/xml; charset=utf-8"));
    assert_eq!(r.from.as_deref(), Some("user@example.com"));
    assert_eq!(r.hold, Some(1));
    assert_eq!(r.to.as_deref(), Some("example.com"));
    assert_eq!(r.route.as_deref(), Some("xmpp:example.com:9999"));
    assert_eq!(r.ver, Some((1, 6)));
    assert_eq!(r.wait, Some(60));
    assert_eq!(r.ack, Some(1));
    assert_eq!(r.lang.as_deref(), Some("en"));
    assert_eq!(r.secure, Some(true));
    assert_eq!(r.xmpp_version, Some((1, 0)));
    assert_eq!(
        r.newkey.as_deref(),
        Some("ca393b51b682f61f98e7877d61146407f3d0a770")
    );
    assert!(!r.restart);
    assert!(r.payload.is_empty());
}

#[test]
fn xbosh_attributes_under_any_prefix() {
    for (decl, p) in [
        ("xmlns:xmpp='urn:xmpp:xbosh'", "xmpp"),
        ("xmlns:x='urn:xmpp:xbosh'", "x"),
        ("xmlns:xbosh='urn:xmpp:xbosh'", "xbosh"),
    ] {
        let r = ok(&format!("<body rid='5' sid='s' {p}:restart='true' {p}:version='1.0' to='d' xmlns='http://jabber.org/protocol/httpbind' {decl}/>"));
        assert!(r.restart, "{p}");
        assert_eq!(r.xmpp_version, Some((1, 0)));
    }
    // `xmpp:` bound to something else is not XEP-0206
    let r = ok("<body rid='5' xmpp:restart='true' xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:other'/>");
    assert!(!r.restart);
    // an undeclared prefix is a namespace error
    assert!(matches!(
        parse("<body rid='5' xmpp:restart='true' xmlns='http://jabber.org/protocol/httpbind'/>"),
        Err(BodyError::Xml(XmlError::Namespace(_)))
    ));
    // a prefixed body element works too
    let r = ok("<b:body rid='7' type='terminate' xmlns:b='http://jabber.org/protocol/httpbind'><presence xmlns='jabber:client' type='unavailable'/></b:body>");
    assert_eq!(r.type_, Some(BodyType::Terminate));
    assert_eq!(
        payload(&r),
        ["<presence xmlns='jabber:client' type='unavailable'/>"]
    );
}

#[test]
fn attribute_values_are_checked() {
    let base = |a: &str| format!("<body {a} xmlns='http://jabber.org/protocol/httpbind'/>");
    for (attrs, field) in [
        ("rid='0'", "rid"),
        ("rid='9007199254740992'", "rid"),
        ("rid='-1'", "rid"),
        ("rid='+5'", "rid"),
        ("rid='1e3'", "rid"),
        ("rid=''", "rid"),
        ("rid='1' ack='x'", "ack"),
        ("rid='1' ack='0'", "ack"),
        ("rid='1' wait='-1'", "wait"),
        ("rid='1' hold='one'", "hold"),
        ("rid='1' ver='1'", "ver"),
        ("rid='1' ver='1.x'", "ver"),
        ("rid='1' pause='1.5'", "pause"),
        ("rid='1' type='quit'", "type"),
        ("rid='1' secure='yes'", "secure"),
        ("rid='1' content='x&#10;y/z'", "content"),
    ] {
        assert_eq!(
            parse(&base(attrs)),
            Err(BodyError::Attribute(field)),
            "{attrs}"
        );
    }
    assert_eq!(parse(&base("sid='x'")), Err(BodyError::MissingRid));
    let r = ok(&base(
        "rid='9007199254740991' ver='1.11' hold='300' wait='100000' unknown='x'",
    ));
    assert_eq!(r.rid, MAX_RID);
    assert_eq!(
        r.ver,
        Some((1, 11)),
        "the minor version is a separate integer"
    );
    assert_eq!(r.hold, Some(300));
    assert_eq!(r.wait, Some(100000));
    assert_eq!(BodyError::MissingRid.condition(), Condition::BadRequest);
}

#[test]
fn restricted_xml_and_wrong_roots() {
    let cases: &[(&str, &str)] = &[
        ("<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><!-- x --></body>", "restricted-xml"),
        ("<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><?pi x?></body>", "restricted-xml"),
        ("<!DOCTYPE body [<!ENTITY x 'y'>]><body rid='1' xmlns='http://jabber.org/protocol/httpbind'/>", "restricted-xml"),
        ("<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><message xmlns='jabber:client'>&x;</message></body>", "restricted-xml"),
        ("<?xml-stylesheet href='a'?><body rid='1' xmlns='http://jabber.org/protocol/httpbind'/>", "restricted-xml"),
        ("<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><message xmlns='jabber:client'>", "not-well-formed"),
        ("<body rid='1' xmlns='http://jabber.org/protocol/httpbind'/><body/>", "not-well-formed"),
    ];
    for (s, cond) in cases {
        match parse(s) {
            Err(BodyError::Xml(e)) => assert_eq!(e.condition(), *cond, "{s}"),
            other => panic!("{s}: {other:?}"),
        }
    }
    assert_eq!(
        parse("<body rid='1'/>"),
        Err(BodyError::Xml(XmlError::Namespace(
            "the element has no namespace"
        )))
    );
    assert_eq!(
        parse("<body rid='1' xmlns='jabber:client'/>"),
        Err(BodyError::NotBody)
    );
    assert_eq!(
        parse("<bodyx rid='1' xmlns='http://jabber.org/protocol/httpbind'/>"),
        Err(BodyError::NotBody)
    );
    assert_eq!(
        parse("<body rid='1' xmlns='http://jabber.org/protocol/httpbind'>hello<message xmlns='jabber:client'/></body>"),
        Err(BodyError::Text)
    );
    assert_eq!(
        parse("<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><![CDATA[x]]></body>"),
        Err(BodyError::Text)
    );
    assert!(parse_request(
        b"<body rid='1' xmlns='http://jabber.org/protocol/httpbind'>\xff</body>",
        &Limits::default()
    )
    .is_err());
    // limits: too big is policy-violation, too deep likewise
    let small = Limits {
        max_bytes: 80,
        max_depth: 3,
        max_attributes: 8,
    };
    let big = format!(
        "<body rid='1' xmlns='http://jabber.org/protocol/httpbind'>{}</body>",
        " ".repeat(100)
    );
    let e = parse_request(big.as_bytes(), &small).unwrap_err();
    assert_eq!(e.condition(), Condition::PolicyViolation);
    let deep = "<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><a xmlns='x'><b><c/></b></a></body>";
    assert_eq!(
        parse_request(
            deep.as_bytes(),
            &Limits {
                max_bytes: 1000,
                ..small
            }
        )
        .unwrap_err()
        .condition(),
        Condition::PolicyViolation
    );
}

#[test]
fn prologue_bom_and_declaration() {
    let r = ok("\u{feff}<?xml version='1.0' encoding='UTF-8'?>\n<body rid='3' xmlns='http://jabber.org/protocol/httpbind'/>");
    assert_eq!(r.rid, 3);
    ok("<?xml version=\"1.0\"?><body rid='3' xmlns='http://jabber.org/protocol/httpbind'/>");
    for bad in [
        "<?xml version='1.1'?><body rid='3' xmlns='http://jabber.org/protocol/httpbind'/>",
        "<?xml version='1.0' encoding='ISO-8859-1'?><body rid='3' xmlns='http://jabber.org/protocol/httpbind'/>",
        "<?xml encoding='utf-8'?><body rid='3' xmlns='http://jabber.org/protocol/httpbind'/>",
        "<?xml version='1.0'",
    ] {
        assert!(matches!(parse(bad), Err(BodyError::Declaration(_))), "{bad}");
    }
    // a second declaration is a processing instruction
    assert!(parse("<?xml version='1.0'?><?xml version='1.0'?><body rid='3' xmlns='http://jabber.org/protocol/httpbind'/>").is_err());
}

#[test]
fn payloads_are_exact_bytes() {
    let m1 = "<message to='contact@example.com' xmlns='jabber:client'>\n    <body>Good morning!</body>\n  </message>";
    let m2 = "<message to='friend@example.com' xmlns='jabber:client'><body>Hey, what&apos;s up? <![CDATA[</body>]]></body></message>";
    let r = ok(&format!("<body rid='1249243562' sid='SomeSID' xmlns='http://jabber.org/protocol/httpbind'>\n  {m1}\n  {m2}\n</body>"));
    assert_eq!(payload(&r), [m1, m2]);
    assert_eq!(r.sid.as_deref(), Some("SomeSID"));
}

#[test]
fn unqualified_stanzas_become_jabber_client() {
    let r = ok("<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><message to='a@b'><body>x</body></message><presence/><iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq></body>");
    assert_eq!(
        payload(&r),
        [
            "<message xmlns='jabber:client' to='a@b'><body>x</body></message>",
            "<presence xmlns='jabber:client'/>",
            "<iq xmlns='jabber:client' type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>",
        ]
    );
    // other unqualified elements are refused
    assert!(matches!(
        parse("<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><auth mechanism='PLAIN'/></body>"),
        Err(BodyError::Payload(_))
    ));
    // other elements in the httpbind namespace declared explicitly, or
    // any through a prefix
    assert!(matches!(
        parse("<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><auth xmlns='http://jabber.org/protocol/httpbind'/></body>"),
        Err(BodyError::Payload(_))
    ));
    assert!(matches!(
        parse(
            "<b:body rid='1' xmlns:b='http://jabber.org/protocol/httpbind'><b:message/></b:body>"
        ),
        Err(BodyError::Payload(_))
    ));
    // no namespace at all
    assert!(matches!(
        parse("<b:body rid='1' xmlns:b='http://jabber.org/protocol/httpbind'><message/></b:body>"),
        Err(BodyError::Payload(_))
    ));
}

#[test]
fn stanzas_declaring_httpbind_become_jabber_client() {
    let r = ok("<body rid='1' xmlns='http://jabber.org/protocol/httpbind' xmlns:x='urn:x'>\
        <message to='bob@localhost' xmlns='http://jabber.org/protocol/httpbind' type='chat'><body>hi</body><x:y/></message>\
        <presence\n xmlns = \"http://jabber.org/protocol/httpbind\"/>\
        <iq xmlns='http://jabber.org/protocol/httpbind' type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>\
        </body>");
    assert_eq!(
        payload(&r),
        [
            "<message xmlns:x='urn:x' to='bob@localhost' xmlns='jabber:client' type='chat'><body>hi</body><x:y/></message>",
            "<presence\n xmlns = \"jabber:client\"/>",
            "<iq xmlns='jabber:client' type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>",
        ]
    );
    for p in &r.payload {
        let c = check_element(std::str::from_utf8(p).unwrap(), &Limits::default()).unwrap();
        assert_eq!(c.ns, NS_CLIENT);
    }
    // an attribute value that merely looks like a declaration is left alone
    let r = ok("<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><message id=\"xmlns='x'\" xmlns='http://jabber.org/protocol/httpbind'/></body>");
    assert_eq!(
        payload(&r),
        ["<message id=\"xmlns='x'\" xmlns='jabber:client'/>"]
    );
}

#[test]
fn prefixes_from_body_are_redeclared() {
    let r = ok("<body rid='1' xmlns='http://jabber.org/protocol/httpbind' xmlns:stream='http://etherx.jabber.org/streams' xmlns:c='jabber:client' xmlns:x='urn:x' xmlns:unused='urn:u'>\
        <c:message to='a@b'><x:y x:attr='1'/><c:body>t</c:body></c:message>\
        <iq xmlns='jabber:client' type='set' id='2'><q xmlns='urn:q' x:a='v'/></iq>\
        <stream:error><z xmlns:x='urn:inner'><x:w/></z></stream:error>\
        </body>");
    assert_eq!(
        payload(&r),
        [
            "<c:message xmlns:c='jabber:client' xmlns:x='urn:x' to='a@b'><x:y x:attr='1'/><c:body>t</c:body></c:message>",
            "<iq xmlns:x='urn:x' xmlns='jabber:client' type='set' id='2'><q xmlns='urn:q' x:a='v'/></iq>",
            // x is redeclared inside; the unprefixed <z> inherits httpbind → jabber:client
            "<stream:error xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client'><z xmlns:x='urn:inner'><x:w/></z></stream:error>",
        ]
    );
    // each payload is a standalone, namespace-complete element
    for p in &r.payload {
        let c = check_element(std::str::from_utf8(p).unwrap(), &Limits::default()).unwrap();
        assert_ne!(c.ns, NS_HTTPBIND);
    }
    // a child that declares what it uses gets nothing added
    let m = "<message xmlns='jabber:client' xmlns:x='urn:x'><x:y/></message>";
    let r = ok(&format!(
        "<body rid='1' xmlns='http://jabber.org/protocol/httpbind' xmlns:x='urn:other'>{m}</body>"
    ));
    assert_eq!(payload(&r), [m]);
    // a default namespace other than httpbind (prefixed body) is re-declared as is
    let r = ok("<b:body rid='1' xmlns:b='http://jabber.org/protocol/httpbind' xmlns='jabber:client'><message/></b:body>");
    assert_eq!(payload(&r), ["<message xmlns='jabber:client'/>"]);
}

#[test]
fn routes() {
    assert_eq!(
        Route::parse("xmpp:example.com:9999"),
        Some(Route {
            proto: "xmpp".into(),
            host: "example.com".into(),
            port: 9999
        })
    );
    assert_eq!(
        Route::parse("xmpp:[::1]:5222"),
        Some(Route {
            proto: "xmpp".into(),
            host: "::1".into(),
            port: 5222
        })
    );
    for bad in [
        "example.com:9999",
        "xmpp:example.com",
        "xmpp::5222",
        "xmpp:a b:1",
        "xmpp:h:0",
        "xmpp:h:+1",
        "xmpp:::1:5222",
        ":h:1",
        "xmpp:h:99999",
    ] {
        assert_eq!(Route::parse(bad), None, "{bad}");
    }
}

#[test]
fn rendering_and_response_parsing() {
    let body = render_body(
        &[("sid", "a'b".into()), ("xmpp:version", "1.0".into())],
        &[b"<stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>".to_vec()],
        false,
    );
    assert_eq!(body, "<body xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' xmlns:stream='http://etherx.jabber.org/streams' sid='a&apos;b' xmpp:version='1.0'><stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features></body>");
    let r = parse_response(body.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(r.attr("sid"), Some("a'b"));
    assert_eq!(r.attr("xmpp:version"), Some("1.0"));
    assert_eq!(r.payload.len(), 1);
    assert_eq!(
        render_body(&[], &[], false),
        "<body xmlns='http://jabber.org/protocol/httpbind'/>"
    );
    // XEP-0206 example (prefix `stream` declared on body only)
    let r = parse_response(b"<body xmlns='http://jabber.org/protocol/httpbind' xmlns:stream='http://etherx.jabber.org/streams'><stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features></body>", &Limits::default()).unwrap();
    assert_eq!(r.payload, vec![b"<stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>".to_vec()]);
    assert_eq!(
        peek_sid(b"<body sid='abc' rid='x'><unclosed>"),
        Some("abc".into())
    );
    assert_eq!(peek_sid(b"garbage"), None);
}
