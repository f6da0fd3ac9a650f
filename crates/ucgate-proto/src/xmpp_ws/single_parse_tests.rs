//! Issue 14 item 1: no stanza is parsed more than once between client and
//! server. `tag::parses()` counts the start tags this thread parsed; each
//! path hands the start tag its reader parsed on instead of parsing again.

use super::*;
use crate::bosh::parse_request;
use crate::xml::tag::parses;

const HDR: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s2' from='localhost' version='1.0' xml:lang='en'>";
const FEATURES: &str =
    "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>";
const OPEN: &str =
    "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>";

fn open() -> Translator {
    let mut t = Translator::new(Limits::default(), ServerTls::AlreadySecureOrNone);
    t.on_client_text(OPEN);
    t.on_server_connected();
    t.on_server_bytes(format!("{HDR}{FEATURES}").as_bytes());
    assert!(t.is_open());
    t
}

/// The start tags `f` parses.
fn count<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = parses();
    let r = f();
    (r, parses() - before)
}

#[test]
fn a_websocket_stanza_is_parsed_once_by_the_validator() {
    let mut t = open();
    let (out, n) = count(|| t.on_client_text("<presence xmlns='jabber:client' id='p1'/>"));
    assert_eq!(n, 1, "the validator's parse only");
    assert!(out.contains(&Output::ToServer(
        b"<presence xmlns='jabber:client' id='p1'/>".to_vec()
    )));
}

#[test]
fn a_server_stanza_is_parsed_once_by_the_splitter() {
    let mut t = open();
    // fed in pieces: the top-level start tag is still parsed once, when
    // its `>` arrives
    let msg = "<message from='b@x' to='a@x' type='chat'/>";
    let (out, n) = count(|| {
        let mut out = Vec::new();
        for piece in msg.as_bytes().chunks(5) {
            out.extend(t.on_server_bytes(piece));
        }
        out
    });
    assert_eq!(n, 1, "the splitter's parse only");
    assert!(out.contains(&Output::ToClient(ClientEvent::Element(
        "<message xmlns='jabber:client' from='b@x' to='a@x' type='chat'/>".into()
    ))));
    // a stream error too: found from the splitter's tag
    let (out, n) = count(|| {
        t.on_server_bytes(
            b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
        )
    });
    assert_eq!(n, 1, "the splitter's parse only");
    assert!(t.is_closed());
    assert!(matches!(
        &out[..],
        [Output::Log(Side::Backend, "stream-error", _), ..]
    ));
}

#[test]
fn a_bosh_payload_reaches_the_translator_parsed() {
    let body = |payloads: &str| {
        format!(
            "<body rid='7' sid='s' xmlns='http://jabber.org/protocol/httpbind'>{payloads}</body>"
        )
    };
    let one = "<presence id='p1'/>";
    let (req1, n1) = count(|| parse_request(body(one).as_bytes(), &Limits::default()).unwrap());
    let (req2, n2) =
        count(|| parse_request(body(&one.repeat(2)).as_bytes(), &Limits::default()).unwrap());
    // per payload, the body parser reads its start tag once: the body's
    // validation hands over the children it found (it used to be read
    // again to cut the child out and twice more to complete its namespaces)
    assert_eq!(n2 - n1, 1);
    // and every tag inside a payload once too
    let nested = "<message to='b@x'><body>hi</body><x:y xmlns:x='urn:x'/></message>";
    let (req3, n3) = count(|| parse_request(body(nested).as_bytes(), &Limits::default()).unwrap());
    assert_eq!(
        n3 - (n1 - 1),
        3,
        "three tags in the payload, each read once"
    );
    assert_eq!(
        req3.payload[0].bytes,
        b"<message xmlns='jabber:client' to='b@x'><body>hi</body><x:y xmlns:x='urn:x'/></message>"
            .to_vec()
    );
    assert_eq!(req1.payload.len(), 1);
    assert_eq!(req2.payload.len(), 2);
    let payload = req1.payload.into_iter().next().unwrap();
    // the tag handed on matches the bytes (namespace declaration added)
    assert_eq!(
        payload.bytes,
        b"<presence xmlns='jabber:client' id='p1'/>".to_vec()
    );
    assert_eq!(
        payload.tag,
        ParsedElement::parse(payload.bytes.clone()).unwrap().tag
    );
    let mut t = open();
    let (out, n) = count(|| t.on_client_element(payload));
    assert_eq!(n, 0, "the translator does not parse it again");
    assert_eq!(
        out,
        vec![Output::ToServer(
            b"<presence xmlns='jabber:client' id='p1'/>".to_vec()
        )]
    );
}

#[test]
fn handed_on_tags_match_their_bytes() {
    // namespaces added from <body>, a prefixed child, an explicit httpbind
    // stanza rewritten to jabber:client
    let body = "<body rid='7' sid='s' xmlns='http://jabber.org/protocol/httpbind' xmlns:x='urn:x' xmlns:c='jabber:client'>\
        <message to='a@b' x:y='1'><body>hi</body></message>\
        <c:iq type='get' id='1'><q xmlns='urn:q'/></c:iq>\
        <presence xmlns='http://jabber.org/protocol/httpbind' id='p'/></body>";
    let req = parse_request(body.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(req.payload.len(), 3);
    for p in &req.payload {
        let again = ParsedElement::parse(p.bytes.clone()).unwrap();
        assert_eq!(p.tag, again.tag, "{}", String::from_utf8_lossy(&p.bytes));
    }
}
