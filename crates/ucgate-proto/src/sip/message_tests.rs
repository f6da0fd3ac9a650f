//! Scanner and editor tests, with messages after RFC 4475 (SIP torture
//! tests). The RFC text shows messages with bare line ends; `crlf` turns
//! them into CRLF as on the wire.

use super::message::*;

fn crlf(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

fn lim() -> SipLimits {
    SipLimits::default()
}

/// RFC 4475 §3.1.1.1 "wsinv": a short tortuous INVITE.
const WSINV: &str = "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : 150
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.3
s=-
c=IN IP4 192.0.2.4
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
";

#[test]
fn wsinv_scanned() {
    let bytes = crlf(WSINV);
    let m = parse(&bytes, &lim()).expect("wsinv is valid");
    assert_eq!(m.method(), Some("INVITE"));
    match m.start_line() {
        StartLine::Request { uri, .. } => {
            assert_eq!(*uri, b"sip:vivekg@chair-dnrc.example.com;unknownparam")
        }
        StartLine::Response { .. } => panic!(),
    }
    assert_eq!(m.max_forwards(), Some(68));
    assert_eq!(m.call_id(), Some(&b"wsinv.ndaksdj@192.0.2.1"[..]));
    assert_eq!(m.cseq(), Some((9, &b"INVITE"[..])));
    assert_eq!(m.to_tag(), Some(&b"1918181833n"[..]));
    assert_eq!(m.from_tag(), Some(&b"98asjd8"[..]));
    assert_eq!(m.content_length(), Some(150));
    assert_eq!(m.body().len(), 150);
    assert!(m.body().starts_with(b"v=0\r\n"));
    let vias = m.vias();
    assert_eq!(vias.len(), 3);
    let top = vias[0].clone().unwrap();
    assert_eq!(top.transport, b"UDP");
    assert_eq!(top.host, b"192.0.2.2");
    assert_eq!(top.port, None);
    assert_eq!(top.branch(), Some(&b"390skdjuw"[..]));
    let second = vias[1].clone().unwrap();
    assert_eq!(
        (second.transport, second.host),
        (&b"TCP"[..], &b"spindle.example.com"[..])
    );
    assert_eq!(second.branch(), Some(&b"z9hG4bK9ikj8"[..]));
    let third = vias[2].clone().unwrap();
    assert_eq!(third.host, b"192.168.255.111");
    assert_eq!(third.branch(), Some(&b"z9hG4bK30239"[..]));
    assert_eq!(m.header("Subject"), Some(&b""[..]));
    assert_eq!(
        m.header("newfangledheader"),
        Some(&b"newfangled value\r\n continued newfangled value"[..])
    );
    assert_eq!(
        m.header("UnknownHeaderWithUnusualValue"),
        Some(&b";;,,;;,;"[..])
    );
    let route = m.top_route_uri().unwrap();
    assert_eq!(route.host, b"services.example.com");
    assert_eq!(param(m.bytes(), route.params.clone(), "lr"), Some(None));
    assert_eq!(
        param(m.bytes(), route.params, "unknownwith"),
        Some(Some(&b"value"[..]))
    );
    let contacts = m.values("Contact");
    assert_eq!(contacts.len(), 1);
    let na = parse_name_addr(m.bytes(), contacts[0].span.clone()).unwrap();
    assert_eq!(m.slice(na.uri), b"sip:jdrosen@example.com");
    assert_eq!(
        param(m.bytes(), na.params.clone(), "newparam"),
        Some(Some(&b"newvalue"[..]))
    );
    assert_eq!(
        param(m.bytes(), na.params.clone(), "secondparam"),
        Some(None)
    );
    assert_eq!(param(m.bytes(), na.params, "q"), Some(Some(&b"0.33"[..])));
}

#[test]
fn wsinv_unedited_copy_is_identical() {
    let bytes = crlf(WSINV);
    let m = parse(&bytes, &lim()).unwrap();
    assert_eq!(m.edit().finish(), bytes);
}

/// RFC 4475 §3.1.1.2 "intmeth": wide range of characters.
const INTMETH: &str = "!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0
Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~
To: \"BEL:\\\u{7} NUL:\\\u{0} DEL:\\\u{7f}\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>
From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"работающий\";tag=_token~1'+`*%!-.
Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{
CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~
Max-Forwards: 255
extensionHeader-!.%*+_`'~:\u{feff}大停電
Content-Length: 0

";

#[test]
fn intmeth_scanned() {
    let bytes = crlf(INTMETH);
    let m = parse(&bytes, &lim()).expect("intmeth is valid");
    assert_eq!(
        m.method(),
        Some("!interesting-Method0123456789_*+`.%indeed'~")
    );
    assert_eq!(
        m.top_via().unwrap().branch(),
        Some(&b"z9hG4bK-.!%66*_+`'~"[..])
    );
    assert_eq!(m.from_tag(), Some(&b"_token~1'+`*%!-."[..]));
    assert_eq!(
        m.call_id(),
        Some(&b"intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"[..])
    );
    assert_eq!(m.max_forwards(), Some(255));
    assert_eq!(
        m.header("extensionHeader-!.%*+_`'~"),
        Some("\u{feff}大停電".as_bytes())
    );
    assert_eq!(m.edit().finish(), bytes);
}

/// RFC 4475 §3.1.1.4 "noreason" style and a response with compact headers.
#[test]
fn responses() {
    let bytes = crlf(
        "SIP/2.0 100 \nVia: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe\nCall-ID: noreason.asndj203insdf99223ndf\nCSeq: 35 INVITE\nFrom: <sip:user@example.com>;tag=39ansfi3\nTo: <sip:user@example.edu>;tag=902jndnke3\nContent-Length: 0\nContact: <sip:user@host105.example.com>\n\n",
    );
    let m = parse(&bytes, &lim()).unwrap();
    assert_eq!(m.status(), Some(100));
    match m.start_line() {
        StartLine::Response { reason, .. } => assert_eq!(*reason, b""),
        StartLine::Request { .. } => panic!(),
    }
    let bytes = crlf("SIP/2.0 200 OK\nv: SIP/2.0/UDP a;branch=z9hG4bKx\ni: c1\nf: <sip:a@b>;tag=1\nt: <sip:c@d>;tag=2\nCSeq: 1 MESSAGE\nl: 0\n\n");
    let m = parse(&bytes, &lim()).unwrap();
    assert_eq!(m.call_id(), Some(&b"c1"[..]));
    assert_eq!(m.to_tag(), Some(&b"2"[..]));
}

/// RFC 4475 §3.1.1.9 "transports": Via values with several transports.
#[test]
fn transports_and_ipv6() {
    let bytes = crlf("OPTIONS sip:user@example.com SIP/2.0\nTo: sip:user@example.com\nFrom: <sip:caller@example.com>;tag=323\nMax-Forwards: 70\nCall-ID:  transports.kijh4akdnaqjkwendsasfdj\nAccept: application/sdp\nCSeq: 60 OPTIONS\nVia: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw\nVia: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf\nVia: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj\nVia: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en\nVia: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee\nVia: SIP/2.0/WSS [2001:db8::9:1]:8443;branch=z9hG4bK6\nl: 0\n\n");
    let m = parse(&bytes, &lim()).unwrap();
    let t: Vec<Vec<u8>> = m
        .vias()
        .into_iter()
        .map(|v| v.unwrap().transport.to_vec())
        .collect();
    assert_eq!(
        t,
        [&b"UDP"[..], b"SCTP", b"TLS", b"UNKNOWN", b"TCP", b"WSS"]
    );
    let last = m.vias().pop().unwrap().unwrap();
    assert_eq!(
        (last.host, last.port),
        (&b"[2001:db8::9:1]"[..], Some(8443))
    );
}

fn request(start: &str, extra: &str) -> Vec<u8> {
    crlf(&format!(
        "{start}\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKnashds7\nTo: <sip:bob@example.com>\nFrom: <sip:alice@example.com>;tag=9fxced76sl\nCall-ID: 3848276298220188511@atlanta.example.com\nCSeq: 1 OPTIONS\nMax-Forwards: 70\n{extra}\n"
    ))
}

#[test]
fn rfc4475_invalid_messages_refused() {
    // §3.1.2.2 clerr-like: Content-Length larger than the body.
    let b = request(
        "OPTIONS sip:bob@example.com SIP/2.0",
        "Content-Length: 9999\n\nshort",
    );
    assert_eq!(
        parse(&b, &lim()).unwrap_err(),
        SipError::BadRequest("Content-Length larger than the body")
    );
    // §3.1.2.3 ncl: negative Content-Length.
    let b = request(
        "OPTIONS sip:bob@example.com SIP/2.0",
        "Content-Length: -999\n",
    );
    assert_eq!(
        parse(&b, &lim()).unwrap_err(),
        SipError::BadRequest("Bad Content-Length")
    );
    // §3.1.2.4 scalar02 / §3.1.2.5 scalarlg: out-of-range scalars.
    let b = crlf("OPTIONS sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP host5.example.net;branch=z9hG4bK1\nTo: <sip:bob@example.com>\nFrom: <sip:a@example.com>;tag=1\nCall-ID: s\nCSeq: 36893488147419103232 OPTIONS\nMax-Forwards: 70\nl: 0\n\n");
    assert_eq!(
        parse(&b, &lim()).unwrap_err(),
        SipError::BadRequest("Bad CSeq")
    );
    let b = crlf("OPTIONS sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP host5.example.net;branch=z9hG4bK1\nTo: <sip:bob@example.com>\nFrom: <sip:a@example.com>;tag=1\nCall-ID: s\nCSeq: 1 OPTIONS\nMax-Forwards: 300\nl: 0\n\n");
    assert_eq!(
        parse(&b, &lim()).unwrap_err(),
        SipError::BadRequest("Bad Max-Forwards")
    );
    // §3.1.2.8 ltgtruri: <> around the Request-URI.
    let b = request("INVITE <sip:user@example.com> SIP/2.0", "l: 0\n");
    assert_eq!(
        parse(&b, &lim()).unwrap_err(),
        SipError::BadRequest("Bad Request-URI")
    );
    // §3.1.2.9 lwsruri: LWS inside the Request-URI.
    let b = request("INVITE sip:user@example.com; lr SIP/2.0", "l: 0\n");
    assert_eq!(
        parse(&b, &lim()).unwrap_err(),
        SipError::BadRequest("Bad Request-URI")
    );
    // §3.1.2.10 lwsstart: several SP between elements.
    let b = request("INVITE  sip:user@example.com  SIP/2.0", "l: 0\n");
    assert_eq!(
        parse(&b, &lim()).unwrap_err(),
        SipError::BadRequest("Bad Request-URI")
    );
    // §3.1.2.11 trws: SP at the end of the Request-Line.
    let b = request("OPTIONS sip:remote-target@example.com SIP/2.0  ", "l: 0\n");
    assert!(matches!(
        parse(&b, &lim()).unwrap_err(),
        SipError::Unparseable(_)
    ));
    // §3.1.2.16 badvers: SIP/7.0.
    let b = request("OPTIONS sip:t.watson@example.org SIP/7.0", "l: 0\n");
    assert_eq!(
        parse(&b, &lim()).unwrap_err(),
        SipError::VersionNotSupported
    );
    // §3.1.2.17 mismatch01: CSeq method differs from the method.
    let b = request("INVITE sip:bob@example.com SIP/2.0", "l: 0\n");
    assert_eq!(
        parse(&b, &lim()).unwrap_err(),
        SipError::BadRequest("CSeq method does not match")
    );
    // §3.1.2.19 bigcode: status code out of range.
    let b = crlf("SIP/2.0 4294967301 better not break the receiver\nVia: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe\nCall-ID: bigcode.asdof3uj203asdnf3429uasdhfas3\nCSeq: 3882340 INVITE\nFrom: <sip:user@example.com>;tag=39ansfi3\nTo: <sip:user@example.edu>;tag=902jndnke3\nContent-Length: 0\n\n");
    assert!(matches!(
        parse(&b, &lim()).unwrap_err(),
        SipError::Unparseable(_)
    ));
    // §3.3.1 insuf: missing Call-ID, From, To.
    let b = crlf("INVITE sip:user@example.com SIP/2.0\nCSeq: 193942 INVITE\nVia: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf\nContent-Type: application/sdp\nl: 0\n\n");
    assert_eq!(
        parse(&b, &lim()).unwrap_err(),
        SipError::BadRequest("Missing From")
    );
    // §3.3.2 unkscm: unknown Request-URI scheme.
    let b = request(
        "OPTIONS nobodyKnowsThisScheme:totallyopaque SIP/2.0",
        "l: 0\n",
    );
    assert_eq!(
        parse(&b, &lim()).unwrap_err(),
        SipError::UnsupportedUriScheme
    );
    // §3.1.2.6? mcl01-like: conflicting Content-Length values.
    let b = request(
        "OPTIONS sip:bob@example.com SIP/2.0",
        "Content-Length: 0\nl: 2\n",
    );
    assert_eq!(
        parse(&b, &lim()).unwrap_err(),
        SipError::BadRequest("Conflicting Content-Length")
    );
    // §3.3.5 dblreq-like: two messages in one WebSocket message (RFC 7118 §5.1).
    let mut b = request("OPTIONS sip:bob@example.com SIP/2.0", "l: 0\n");
    b.extend_from_slice(&request("OPTIONS sip:bob@example.com SIP/2.0", "l: 0\n"));
    assert_eq!(
        parse(&b, &lim()).unwrap_err(),
        SipError::BadRequest("More than one message")
    );
}

#[test]
fn garbage_is_unparseable() {
    for g in [
        &b""[..],
        b"\r\n",
        b"hello",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nno colon here\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\n folded first\r\n\r\n",
        b"\x00\x01\x02 x SIP/2.0\r\n\r\n",
    ] {
        assert!(
            matches!(parse(g, &lim()), Err(SipError::Unparseable(_))),
            "{g:?}"
        );
    }
    // No Via: nothing can be answered.
    let b = crlf("OPTIONS sip:a@b SIP/2.0\nTo: <sip:a@b>\nFrom: <sip:c@d>;tag=1\nCall-ID: x\nCSeq: 1 OPTIONS\n\n");
    assert!(matches!(parse(&b, &lim()), Err(SipError::Unparseable(_))));
}

#[test]
fn limits() {
    let b = request("OPTIONS sip:bob@example.com SIP/2.0", "l: 0\n");
    let small = SipLimits {
        max_message: b.len() - 1,
        ..lim()
    };
    assert_eq!(parse(&b, &small).unwrap_err(), SipError::TooLarge);
    let few = SipLimits {
        max_headers: 3,
        ..lim()
    };
    assert_eq!(parse(&b, &few).unwrap_err(), SipError::TooLarge);
    let short = SipLimits {
        max_line: 30,
        ..lim()
    };
    assert_eq!(parse(&b, &short).unwrap_err(), SipError::TooLarge);
    assert_eq!(
        SipError::TooLarge.status(),
        Some((513, "Message Too Large"))
    );
}

#[test]
fn error_responses() {
    let b = crlf("INVITE sip:user@example.com SIP/2.0\nCSeq: 193942 INVITE\nVia: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf\nl: 0\n\n");
    let err = parse(&b, &lim()).unwrap_err();
    let r = error_response(&b, &lim(), &err, "t1").unwrap();
    assert_eq!(
        r,
        crlf("SIP/2.0 400 Missing From\nVia: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf\nCSeq: 193942 INVITE\nContent-Length: 0\n\n")
    );
    let b = request(
        "OPTIONS nobodyKnowsThisScheme:totallyopaque SIP/2.0",
        "l: 0\n",
    );
    let r = error_response(&b, &lim(), &SipError::UnsupportedUriScheme, "t1").unwrap();
    assert!(r.starts_with(b"SIP/2.0 416 Unsupported URI Scheme\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKnashds7\r\nFrom: <sip:alice@example.com>;tag=9fxced76sl\r\nTo: <sip:bob@example.com>;tag=t1\r\n"));
    let b = request("OPTIONS sip:bob@example.com SIP/2.0", "l: 0\n");
    let r = error_response(
        &b,
        &SipLimits {
            max_message: 10,
            ..lim()
        },
        &SipError::TooLarge,
        "t",
    )
    .unwrap();
    assert!(r.starts_with(b"SIP/2.0 513 Message Too Large\r\n"));
    assert!(error_response(b"junk", &lim(), &SipError::Unparseable("x"), "t").is_none());
}

#[test]
fn list_headers_split_respecting_quotes_and_angles() {
    let b = crlf("OPTIONS sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TCP b;branch=z9hG4bK2\nVia: SIP/2.0/UDP c;branch=z9hG4bK3\nTo: <sip:bob@example.com>\nFrom: \"A, B\" <sip:alice@example.com>;tag=1\nCall-ID: x\nCSeq: 1 OPTIONS\nContact: \"x, <y>\" <sip:a@b;p=1,2>;q=0.1, <sip:c@d>\nRoute: <sip:p1;lr>,<sip:p2;lr>\nl: 0\n\n");
    let m = parse(&b, &lim()).unwrap();
    assert_eq!(m.values("via").len(), 3);
    assert_eq!(m.values("v").len(), 3);
    let c: Vec<&[u8]> = m
        .values("m")
        .iter()
        .map(|v| m.slice(v.span.clone()))
        .collect();
    assert_eq!(c, [&b"\"x, <y>\" <sip:a@b;p=1,2>;q=0.1"[..], b"<sip:c@d>"]);
    assert_eq!(m.values("From").len(), 1);
    let r: Vec<&[u8]> = m
        .values("Route")
        .iter()
        .map(|v| m.slice(v.span.clone()))
        .collect();
    assert_eq!(r, [&b"<sip:p1;lr>"[..], b"<sip:p2;lr>"]);
}

#[test]
fn editing_copies_untouched_bytes() {
    let b = crlf("INVITE sip:bob@example.com SIP/2.0\nv: SIP/2.0/WS x.invalid;branch=z9hG4bK1\nRoute: <sip:p1;lr>,  <sip:p2;lr>\nRoute: <sip:p3;lr>\nTo:   <sip:bob@example.com>\nFrom: <sip:alice@example.com>;tag=1\nCall-ID: x\nCSeq: 1 INVITE\nMax-Forwards: 70\n\nbody");
    let m = parse(&b, &lim()).unwrap();
    let routes = m.values("Route");
    // remove the first value of a multi-value line
    let mut e = m.edit();
    e.remove_value(&routes[0]);
    assert_eq!(
        e.finish(),
        crlf("INVITE sip:bob@example.com SIP/2.0\nv: SIP/2.0/WS x.invalid;branch=z9hG4bK1\nRoute: <sip:p2;lr>\nRoute: <sip:p3;lr>\nTo:   <sip:bob@example.com>\nFrom: <sip:alice@example.com>;tag=1\nCall-ID: x\nCSeq: 1 INVITE\nMax-Forwards: 70\nContent-Length: 4\n\nbody")
    );
    // remove the last value, a whole line, insert at top, replace a value
    let mut e = m.edit();
    e.remove_value(&routes[1]);
    e.remove_value(&routes[2]);
    e.insert_top("Via", b"SIP/2.0/TCP gw:5060;branch=z9hG4bKgw");
    e.prepend_top("X-First", b"1");
    let mf = m.header_index("Max-Forwards").unwrap();
    e.replace(m.headers()[mf].value.clone(), b"69");
    assert_eq!(
        e.finish(),
        crlf("INVITE sip:bob@example.com SIP/2.0\nX-First: 1\nVia: SIP/2.0/TCP gw:5060;branch=z9hG4bKgw\nv: SIP/2.0/WS x.invalid;branch=z9hG4bK1\nRoute: <sip:p1;lr>\nTo:   <sip:bob@example.com>\nFrom: <sip:alice@example.com>;tag=1\nCall-ID: x\nCSeq: 1 INVITE\nMax-Forwards: 69\nContent-Length: 4\n\nbody")
    );
    // remove a whole line
    let mut e = m.edit();
    e.remove_line(routes[2].header);
    let out = e.finish();
    assert!(!out.windows(5).any(|w| w == b"p3;lr"));
    // remove every value of a line, and middle/trailing values
    let b3 = crlf("OPTIONS sip:b@e SIP/2.0\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\nRoute: <sip:1;lr>, <sip:2;lr> ,<sip:3;lr>,<sip:4;lr>\nTo: <sip:b@e>\nFrom: <sip:a@e>;tag=1\nCall-ID: x\nCSeq: 1 OPTIONS\nl: 0\n\n");
    let m3 = parse(&b3, &lim()).unwrap();
    let r3 = m3.values("Route");
    let mut e = m3.edit();
    for v in &r3 {
        e.remove_value(v);
    }
    assert!(!String::from_utf8(e.finish()).unwrap().contains("Route"));
    let mut e = m3.edit();
    e.remove_value(&r3[1]).remove_value(&r3[3]);
    assert!(String::from_utf8(e.finish())
        .unwrap()
        .contains("\r\nRoute: <sip:1;lr>, <sip:3;lr>\r\n"));
    let mut e = m3.edit();
    e.remove_value(&r3[0])
        .remove_value(&r3[2])
        .remove_value(&r3[3]);
    assert!(String::from_utf8(e.finish())
        .unwrap()
        .contains("\r\nRoute: <sip:2;lr>\r\n"));
}

#[test]
fn content_length_rewritten_when_wrong_and_kept_when_right() {
    let b = request(
        "MESSAGE sip:bob@example.com SIP/2.0",
        "Content-Length:   2\n\nhi",
    );
    let b = String::from_utf8(b)
        .unwrap()
        .replace("1 OPTIONS", "1 MESSAGE")
        .into_bytes();
    let b = b[..b.len() - 2].to_vec();
    let m = parse(&b, &lim()).unwrap();
    assert_eq!(m.edit().finish(), b);
    // Leading CRLFs are skipped (RFC 3261 §7.5), not copied.
    let mut with_crlf = b"\r\n\r\n".to_vec();
    with_crlf.extend_from_slice(&b);
    let m = parse(&with_crlf, &lim()).unwrap();
    assert_eq!(m.edit().finish(), b);
}

#[test]
fn compact_names() {
    for (c, long) in [
        ("i", "Call-ID"),
        ("f", "From"),
        ("t", "To"),
        ("m", "Contact"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("k", "Supported"),
        ("s", "Subject"),
        ("e", "Content-Encoding"),
        ("o", "Event"),
        ("r", "Refer-To"),
        ("u", "Allow-Events"),
        ("x", "Session-Expires"),
        ("y", "Identity"),
        ("b", "Referred-By"),
        ("v", "Via"),
    ] {
        assert_eq!(canonical_name(c.as_bytes()), Some(long));
        assert_eq!(canonical_name(c.to_uppercase().as_bytes()), Some(long));
        assert_eq!(canonical_name(long.to_lowercase().as_bytes()), Some(long));
    }
    assert_eq!(canonical_name(b"q"), None);
}
