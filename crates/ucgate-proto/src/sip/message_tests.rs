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

/// RFC 4475 §3.1.1.13 "noreason" style and a response with compact headers.
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

/// RFC 4475 §3.1.1.10 "transports": Via values with several transports.
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
    // §3.1.2.7 ltgtruri: <> around the Request-URI.
    let b = request("INVITE <sip:user@example.com> SIP/2.0", "l: 0\n");
    assert_eq!(
        parse(&b, &lim()).unwrap_err(),
        SipError::BadRequest("Bad Request-URI")
    );
    // §3.1.2.8 lwsruri: LWS inside the Request-URI.
    let b = request("INVITE sip:user@example.com; lr SIP/2.0", "l: 0\n");
    assert_eq!(
        parse(&b, &lim()).unwrap_err(),
        SipError::BadRequest("Bad Request-URI")
    );
    // §3.1.2.9 lwsstart: several SP between elements.
    let b = request("INVITE  sip:user@example.com  SIP/2.0", "l: 0\n");
    assert_eq!(
        parse(&b, &lim()).unwrap_err(),
        SipError::BadRequest("Bad Request-URI")
    );
    // §3.1.2.10 trws: SP at the end of the Request-Line (see also
    // `rfc4475_trws`).
    let b = request("OPTIONS sip:remote-target@example.com SIP/2.0  ", "l: 0\n");
    assert_eq!(
        parse(&b, &lim()).unwrap_err(),
        SipError::BadRequest("Bad Request-Line")
    );
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
    // A missing mandatory header is named before a duplicated one, and a
    // duplicate alone (here To in its compact form) is `Duplicate header`.
    let b = crlf("OPTIONS sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP h.example.net;branch=z9hG4bK1\nFrom: <sip:a@example.com>;tag=1\nFrom: <sip:b@example.com>;tag=2\nTo: <sip:bob@example.com>\nCSeq: 1 OPTIONS\nl: 0\n\n");
    assert_eq!(
        parse(&b, &lim()).unwrap_err(),
        SipError::BadRequest("Missing Call-ID")
    );
    let b = request(
        "OPTIONS sip:bob@example.com SIP/2.0",
        "t: <sip:eve@example.com>\nl: 0\n",
    );
    assert_eq!(
        parse(&b, &lim()).unwrap_err(),
        SipError::BadRequest("Duplicate header")
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
    // §3.3.9 mcl01-like: conflicting Content-Length values.
    let b = request(
        "OPTIONS sip:bob@example.com SIP/2.0",
        "Content-Length: 0\nl: 2\n",
    );
    assert_eq!(
        parse(&b, &lim()).unwrap_err(),
        SipError::BadRequest("Conflicting Content-Length")
    );
    // §3.1.1.8 dblreq-like: two messages in one WebSocket message (RFC 7118
    // §5.1; over UDP see `parse_datagram`).
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

/// The response `error_response` gives to `request(...)`-built messages.
fn answer_to_request(status: &str) -> Vec<u8> {
    crlf(&format!("SIP/2.0 {status}\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKnashds7\nFrom: <sip:alice@example.com>;tag=9fxced76sl\nTo: <sip:bob@example.com>;tag=t1\nCall-ID: 3848276298220188511@atlanta.example.com\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n"))
}

#[test]
fn limits() {
    // Every limit is refused, and every refusal of a request with a usable
    // Via is answered: 513 for the size, the header count and a header
    // line (RFC 3261 §21.5.7), 414 for the request line (§21.4.12).
    let b = request("OPTIONS sip:bob@example.com SIP/2.0", "l: 0\n");
    let small = SipLimits {
        max_message: b.len() - 1,
        ..lim()
    };
    let few = SipLimits {
        max_headers: 3,
        ..lim()
    };
    let short = SipLimits {
        max_line: 40,
        ..lim()
    };
    for limits in [small, few, short] {
        let err = parse(&b, &limits).unwrap_err();
        assert_eq!(err, SipError::TooLarge, "{limits:?}");
        assert_eq!(
            error_response(&b, &limits, &err, "t1").unwrap(),
            answer_to_request("513 Message Too Large"),
            "{limits:?}"
        );
    }
    // The limits are exact: one more header or byte is accepted.
    assert!(parse(
        &b,
        &SipLimits {
            max_headers: 7,
            ..lim()
        }
    )
    .is_ok());
    assert!(parse(
        &b,
        &SipLimits {
            max_message: b.len(),
            ..lim()
        }
    )
    .is_ok());
    assert!(parse(
        &b,
        &SipLimits {
            max_headers: 6,
            ..lim()
        }
    )
    .is_err());
    // A request line over max_line: 414.
    let long_uri = request(
        &format!("OPTIONS sip:{}@example.com SIP/2.0", "b".repeat(60)),
        "l: 0\n",
    );
    let err = parse(&long_uri, &short).unwrap_err();
    assert_eq!(err, SipError::UriTooLong);
    let r = error_response(&long_uri, &short, &err, "t1").unwrap();
    assert_eq!(r, answer_to_request("414 Request-URI Too Long"));
    // A response's status line over the limit is TooLarge (never answered).
    let resp = crlf(&format!("SIP/2.0 200 {}\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\nTo: <sip:a@b>;tag=1\nFrom: <sip:c@d>;tag=2\nCall-ID: x\nCSeq: 1 OPTIONS\nl: 0\n\n", "O".repeat(60)));
    let err = parse(&resp, &short).unwrap_err();
    assert_eq!(err, SipError::TooLarge);
    assert_eq!(error_response(&resp, &short, &err, "t1"), None);
    assert_eq!(
        SipError::TooLarge.status(),
        Some((513, "Message Too Large"))
    );
    assert_eq!(
        SipError::UriTooLong.status(),
        Some((414, "Request-URI Too Long"))
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
        let name = |n: &[u8]| canonical_name(n).map(Known::name);
        assert_eq!(name(c.as_bytes()), Some(long));
        assert_eq!(name(c.to_uppercase().as_bytes()), Some(long));
        assert_eq!(name(long.to_lowercase().as_bytes()), Some(long));
    }
    assert_eq!(canonical_name(b"q"), None);
    assert_eq!(canonical_name(b"Vias"), None);
}

#[test]
fn known_headers_name_themselves() {
    for (k, name, list) in [
        (Known::VIA, "Via", true),
        (Known::FROM, "From", false),
        (Known::TO, "To", false),
        (Known::CALL_ID, "Call-ID", false),
        (Known::CSEQ, "CSeq", false),
        (Known::MAX_FORWARDS, "Max-Forwards", false),
        (Known::CONTENT_LENGTH, "Content-Length", false),
        (Known::CONTACT, "Contact", true),
        (Known::ROUTE, "Route", true),
        (Known::RECORD_ROUTE, "Record-Route", true),
        (Known::PATH, "Path", true),
    ] {
        assert_eq!(k.name(), name);
        assert_eq!(k.is_list(), list, "{name}");
        assert_eq!(canonical_name(name.as_bytes()), Some(k));
    }
    // a lookup by any spelling finds the header by number
    let m = parse(
        b"MESSAGE sip:a@b SIP/2.0\r\nv: SIP/2.0/WSS x.invalid;branch=z9hG4bK1\r\nf: <sip:a@b>;tag=1\r\nt: <sip:a@b>\r\ni: c1\r\nCSEQ: 1 MESSAGE\r\nX-Odd: 1\r\nl: 0\r\n\r\n",
        &lim(),
    )
    .unwrap();
    assert_eq!(m.header("call-id"), Some(&b"c1"[..]));
    assert_eq!(m.header(Known::CALL_ID), Some(&b"c1"[..]));
    assert_eq!(m.header("x-odd"), Some(&b"1"[..]));
    assert_eq!(m.header_index(Known::CSEQ), m.header_index("cseq"));
    assert_eq!(m.values("Via").len(), 1);
}

// ---------------------------------------------------------------------------
// RFC 4475 §3.1.2 invalid messages that an edge used to forward: each is
// refused with 400 and a reason naming the bad header, answered byte for
// byte (Via, From, To + tag, Call-ID, CSeq copied from the request).

/// The SDP body of several RFC 4475 messages (152 octets with
/// `192.0.2.15`, 150 with `192.0.2.1` or `192.0.2.5`).
fn sdp(ip: &str) -> String {
    format!("v=0\no=mhandley 29739 7272939 IN IP4 {ip}\ns=-\nc=IN IP4 {ip}\nt=0 0\nm=audio 49217 RTP/AVP 0 12\nm=video 3227 RTP/AVP 31\na=rtpmap:31 LPC\n")
}

/// `parse` refuses `msg` with `400 <reason>`, and the answer is `answer`.
fn refused_with_400(msg: &[u8], reason: &'static str, answer: &str) {
    let err = parse(msg, &lim()).unwrap_err();
    assert_eq!(err, SipError::BadRequest(reason));
    let r = error_response(msg, &lim(), &err, "t1").unwrap();
    assert_eq!(
        String::from_utf8(r).unwrap(),
        String::from_utf8(crlf(answer)).unwrap()
    );
}

/// §3.1.2.1 "badinv01": extraneous `;` and `,` in Via and Contact.
#[test]
fn rfc4475_badinv01() {
    let b = crlf(&format!("INVITE sip:user@example.com SIP/2.0\nTo: sip:j.user@example.com\nFrom: sip:caller@example.net;tag=134161461246\nMax-Forwards: 7\nCall-ID: badinv01.0ha0isndaksdjasdf3234nas\nCSeq: 8 INVITE\nVia: SIP/2.0/UDP 192.0.2.15;;,;,,\nContact: \"Joe\" <sip:joe@example.org>;;;;\nContent-Length: 152\nContent-Type: application/sdp\n\n{}", sdp("192.0.2.15")));
    assert_eq!(scan(&b, &lim()).unwrap().body().len(), 152);
    refused_with_400(&b, "Bad Via", "SIP/2.0 400 Bad Via\nVia: SIP/2.0/UDP 192.0.2.15;;,;,,\nFrom: sip:caller@example.net;tag=134161461246\nTo: sip:j.user@example.com;tag=t1\nCall-ID: badinv01.0ha0isndaksdjasdf3234nas\nCSeq: 8 INVITE\nContent-Length: 0\n\n");
    // Each half on its own is refused too.
    let via_only = String::from_utf8(b.clone()).unwrap().replace(
        "Contact: \"Joe\" <sip:joe@example.org>;;;;",
        "Contact: \"Joe\" <sip:joe@example.org>",
    );
    assert_eq!(
        parse(via_only.as_bytes(), &lim()).unwrap_err(),
        SipError::BadRequest("Bad Via")
    );
    let contact_only = String::from_utf8(b)
        .unwrap()
        .replace("192.0.2.15;;,;,,", "192.0.2.15;branch=z9hG4bK1");
    assert_eq!(
        parse(contact_only.as_bytes(), &lim()).unwrap_err(),
        SipError::BadRequest("Bad Contact")
    );
}

/// §3.1.2.6 "quotbal": unterminated quoted display name in To.
#[test]
fn rfc4475_quotbal() {
    let b = crlf(&format!("INVITE sip:user@example.com SIP/2.0\nTo: \"Mr. J. User <sip:j.user@example.com>\nFrom: sip:caller@example.net;tag=93334\nMax-Forwards: 10\nCall-ID: quotbal.aksdj\nContact: <sip:caller@host59.example.net>\nCSeq: 8 INVITE\nVia: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234\nContent-Type: application/sdp\nContent-Length: 152\n\n{}", sdp("192.0.2.15")));
    refused_with_400(&b, "Bad To", "SIP/2.0 400 Bad To\nVia: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234\nFrom: sip:caller@example.net;tag=93334\nTo: \"Mr. J. User <sip:j.user@example.com>;tag=t1\nCall-ID: quotbal.aksdj\nCSeq: 8 INVITE\nContent-Length: 0\n\n");
}

/// §3.1.2.11 "escruri": escaped headers in the Request-URI.
#[test]
fn rfc4475_escruri() {
    let b = crlf(&format!("INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0\nTo: sip:user@example.com\nFrom: sip:caller@example.net;tag=341518\nMax-Forwards: 7\nContact: <sip:caller@host39923.example.net>\nCall-ID: escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5\nCSeq: 149209342 INVITE\nVia: SIP/2.0/UDP host-of-the-hour.example.com;branch=z9hG4bKkdjuw\nContent-Type: application/sdp\nContent-Length: 150\n\n{}", sdp("192.0.2.1")));
    assert_eq!(scan(&b, &lim()).unwrap().body().len(), 150);
    refused_with_400(&b, "Bad Request-URI", "SIP/2.0 400 Bad Request-URI\nVia: SIP/2.0/UDP host-of-the-hour.example.com;branch=z9hG4bKkdjuw\nFrom: sip:caller@example.net;tag=341518\nTo: sip:user@example.com;tag=t1\nCall-ID: escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5\nCSeq: 149209342 INVITE\nContent-Length: 0\n\n");
}

/// §3.1.2.13 "regbadct": an addr-spec Contact with escaped headers (the
/// name-addr form is required then).
#[test]
fn rfc4475_regbadct() {
    let b = crlf("REGISTER sip:example.com SIP/2.0\nTo: sip:user@example.com\nFrom: sip:user@example.com;tag=998332\nMax-Forwards: 70\nCall-ID: regbadct.k345asrl3fdbv@10.0.0.1\nCSeq: 1 REGISTER\nVia: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw\nContact: sip:user@example.com?Route=%3Csip:sip.example.com%3E\nl: 0\n\n");
    refused_with_400(&b, "Bad Contact", "SIP/2.0 400 Bad Contact\nVia: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw\nFrom: sip:user@example.com;tag=998332\nTo: sip:user@example.com;tag=t1\nCall-ID: regbadct.k345asrl3fdbv@10.0.0.1\nCSeq: 1 REGISTER\nContent-Length: 0\n\n");
}

/// §3.1.2.14 "badaspec": spaces inside `<>` in To.
#[test]
fn rfc4475_badaspec() {
    let b = crlf("OPTIONS sip:user@example.org SIP/2.0\nVia: SIP/2.0/UDP host4.example.com:5060;branch=z9hG4bKkdju43234\nMax-Forwards: 70\nFrom: \"Bell, Alexander\" <sip:a.g.bell@example.com>;tag=433423\nTo: \"Watson, Thomas\" < sip:t.watson@example.org >\nCall-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3\nAccept: application/sdp\nCSeq: 3923239 OPTIONS\nl: 0\n\n");
    refused_with_400(&b, "Bad To", "SIP/2.0 400 Bad To\nVia: SIP/2.0/UDP host4.example.com:5060;branch=z9hG4bKkdju43234\nFrom: \"Bell, Alexander\" <sip:a.g.bell@example.com>;tag=433423\nTo: \"Watson, Thomas\" < sip:t.watson@example.org >;tag=t1\nCall-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3\nCSeq: 3923239 OPTIONS\nContent-Length: 0\n\n");
}

/// §3.1.2.15 "baddn": unquoted display names with non-token characters.
#[test]
fn rfc4475_baddn() {
    let b = crlf("OPTIONS sip:t.watson@example.org SIP/2.0\nVia:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw\nMax-Forwards:      70\nFrom:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43\nTo:      Watson, Thomas <sip:t.watson@example.org>\nCall-ID: baddn.31415@c.example.com\nAccept: application/sdp\nCSeq:    3923239 OPTIONS\nl: 0\n\n");
    refused_with_400(&b, "Bad From", "SIP/2.0 400 Bad From\nVia:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw\nFrom:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43\nTo: Watson, Thomas <sip:t.watson@example.org>;tag=t1\nCall-ID: baddn.31415@c.example.com\nCSeq:    3923239 OPTIONS\nContent-Length: 0\n\n");
}

/// §3.1.2.15 "baddn" as the RFC's archive carries it: the headers end at
/// `l: 0` and no empty line follows. Still a request with a usable Via:
/// answered 400, not dropped as garbage; likewise when even the last line
/// end is missing.
#[test]
fn rfc4475_baddn_without_empty_line() {
    const BADDN: &[u8] = b"OPTIONS sip:t.watson@example.org SIP/2.0\r\nVia:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw\r\nMax-Forwards:      70\r\nFrom:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43\r\nTo:      Watson, Thomas <sip:t.watson@example.org>\r\nCall-ID: baddn.31415@c.example.com\r\nAccept: application/sdp\r\nCSeq:    3923239 OPTIONS\r\nl: 0\r\n";
    let answer = "SIP/2.0 400 Missing Empty Line\nVia:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw\nFrom:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43\nTo: Watson, Thomas <sip:t.watson@example.org>;tag=t1\nCall-ID: baddn.31415@c.example.com\nCSeq:    3923239 OPTIONS\nContent-Length: 0\n\n";
    refused_with_400(BADDN, "Missing Empty Line", answer);
    refused_with_400(&BADDN[..BADDN.len() - 2], "Missing Empty Line", answer);
    assert_eq!(
        parse_datagram(BADDN, &lim()).unwrap_err(),
        SipError::BadRequest("Missing Empty Line")
    );
    let m = scan(BADDN, &lim()).unwrap();
    assert_eq!(m.headers().len(), 8);
    assert!(m.body().is_empty());
    // A response without the empty line cannot be answered: dropped.
    let r = crlf("SIP/2.0 200 OK\nVia: SIP/2.0/UDP c.example.com;branch=z9hG4bK1\nFrom: <sip:a@example.com>;tag=1\nTo: <sip:b@example.com>;tag=2\nCall-ID: c\nCSeq: 1 OPTIONS\nl: 0\n");
    assert!(matches!(parse(&r, &lim()), Err(SipError::Unparseable(_))));
    // Without a usable Via there is nobody to answer: garbage.
    let no_via = crlf("OPTIONS sip:a@example.com SIP/2.0\nFrom: <sip:a@example.com>;tag=1\nTo: <sip:b@example.com>\nCall-ID: c\nCSeq: 1 OPTIONS\nl: 0\n");
    assert!(matches!(
        parse(&no_via, &lim()),
        Err(SipError::Unparseable(_))
    ));
    // Bytes that are not a SIP message at all stay garbage.
    for g in [
        &b"this is not SIP"[..],
        b"\x01\x02 garbage",
        b"hello world\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n",
    ] {
        let e = parse(g, &lim()).unwrap_err();
        assert!(matches!(e, SipError::Unparseable(_)), "{g:?}: {e:?}");
        assert_eq!(error_response(g, &lim(), &e, "t1"), None);
    }
}

/// §3.1.2.10 "trws": SP characters at the end of the Request-Line.
#[test]
fn rfc4475_trws() {
    let b = crlf("OPTIONS sip:remote-target@example.com SIP/2.0  \nVia: SIP/2.0/TCP host1.examle.com;branch=z9hG4bK299342093\nTo: <sip:remote-target@example.com>\nFrom: <sip:local-resource@example.com>;tag=329429089\nCall-ID: trws.oicu34958239neffasdhr2345r\nAccept: application/sdp\nCSeq: 238923 OPTIONS\nMax-Forwards: 70\nContent-Length: 0\n\n");
    refused_with_400(&b, "Bad Request-Line", "SIP/2.0 400 Bad Request-Line\nVia: SIP/2.0/TCP host1.examle.com;branch=z9hG4bK299342093\nFrom: <sip:local-resource@example.com>;tag=329429089\nTo: <sip:remote-target@example.com>;tag=t1\nCall-ID: trws.oicu34958239neffasdhr2345r\nCSeq: 238923 OPTIONS\nContent-Length: 0\n\n");
}

/// §3.1.2.18 "mismatch02": unknown method, CSeq method differs.
#[test]
fn rfc4475_mismatch02() {
    let b = crlf("NEWMETHOD sip:user@example.com SIP/2.0\nTo: sip:j.user@example.com\nFrom: sip:caller@example.net;tag=34525\nMax-Forwards: 6\nCall-ID: mismatch02.dj0234sxdfl3\nCSeq: 8 INVITE\nContact: <sip:caller@host.example.net>\nVia: SIP/2.0/UDP host.example.net;branch=z9hG4bKkdjuw\nContent-Type: application/sdp\nl: 138\n\nv=0\no=mhandley 29739 7272939 IN IP4 192.0.2.1\nc=IN IP4 192.0.2.1\nm=audio 49217 RTP/AVP 0 12\nm=video 3227 RTP/AVP 31\na=rtpmap:31 LPC\n");
    refused_with_400(&b, "CSeq method does not match", "SIP/2.0 400 CSeq method does not match\nVia: SIP/2.0/UDP host.example.net;branch=z9hG4bKkdjuw\nFrom: sip:caller@example.net;tag=34525\nTo: sip:j.user@example.com;tag=t1\nCall-ID: mismatch02.dj0234sxdfl3\nCSeq: 8 INVITE\nContent-Length: 0\n\n");
}

/// §3.1.2.12 "baddate" is *not* refused: the edge does not use Date, and
/// RFC 3261 §16.3 step 1 says a proxy "would not reject a request because of
/// a malformed Date header field" (RFC 4475: "an element shouldn't do that
/// unless the contents of the Date header field were actually important").
#[test]
fn rfc4475_baddate_accepted() {
    let b = crlf(&format!("INVITE sip:user@example.com SIP/2.0\nTo: sip:user@example.com\nFrom: sip:caller@example.net;tag=2234923\nMax-Forwards: 70\nCall-ID: baddate.239423mnsadf3j23lj42--sedfnm234\nCSeq: 1392934 INVITE\nVia: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\nDate: Fri, 01 Jan 2010 16:00:00 EST\nContact: <sip:caller@host5.example.net>\nContent-Type: application/sdp\nContent-Length: 150\n\n{}", sdp("192.0.2.5")));
    let m = parse(&b, &lim()).unwrap();
    assert_eq!(m.edit().finish(), b);
}

/// The stricter header checks still accept RFC 4475's valid and
/// application-layer messages (§3.1.1, §3.3) and common client forms.
#[test]
fn rfc4475_valid_messages_still_accepted() {
    let valid = [
        // §3.1.1.3 esc01
        format!("INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0\nTo: sip:%75se%72@example.com\nFrom: <sip:I%20have%20spaces@example.net>;tag=938\nMax-Forwards: 87\ni: esc01.239409asdfakjkn23onasd0-3234\nCSeq: 234234 INVITE\nVia: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw\nC: application/sdp\nContact:\n  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>\nContent-Length: 150\n\n{}", sdp("192.0.2.1")),
        // §3.1.1.4 escnull
        "REGISTER sip:example.com SIP/2.0\nTo: sip:null-%00-null@example.com\nFrom: sip:null-%00-null@example.com;tag=839923423\nMax-Forwards: 70\nCall-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd\nCSeq: 14398234 REGISTER\nVia: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw\nContact: <sip:%00@host5.example.com>\nContact: <sip:%00%00@host5.example.com>\nL:0\n\n".to_owned(),
        // §3.1.1.5 esc02
        "RE%47IST%45R sip:registrar.example.com SIP/2.0\nTo: \"%Z%45\" <sip:resource@example.com>\nFrom: \"%Z%45\" <sip:resource@example.com>;tag=f232jadfj23\nCall-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf\nVia: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234\nCSeq: 29344 RE%47IST%45R\nMax-Forwards: 70\nContact: <sip:alias1@host1.example.com>\nC%6Fntact: <sip:alias2@host2.example.com>\nContact: <sip:alias3@host3.example.com>\nl: 0\n\n".to_owned(),
        // §3.1.1.6 lwsdisp
        "OPTIONS sip:user@example.com SIP/2.0\nTo: sip:user@example.com\nFrom: caller<sip:caller@example.com>;tag=323\nMax-Forwards: 70\nCall-ID: lwsdisp.1234abcd@funky.example.com\nCSeq: 60 OPTIONS\nVia: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw\nl: 0\n\n".to_owned(),
        // §3.1.1.7 longreq (shortened: the long To, From and Via forms)
        "INVITE sip:user@example.com SIP/2.0\nTo: \"I have a user name of extremeextremeextremeextremeextremeextremeextremeextremeextremeextreme proportion\"<sip:user@example.com:6000;unknownparam1=verylonglonglonglonglonglonglongvalue;longparamnamenamenamename=shortvalue;verylonglonglongParameterNameWithNoValue>\nF: sip:amazinglylongcallername@example.net;tag=12982424;unknownheaderparamnamenamename=unknowheaderparamvaluevalue;unknownValuelessparamnameparamname\nCall-ID: longreq.onereallyreallyreallylongcallid\nCSeq: 3882340 INVITE\nVia: SIP/2.0/TCP sip33.example.com\nv: SIP/2.0/TCP sip32.example.com\nV :  SIP/2.0/TCP sip22.example.com\nVia: SIP/2.0/TCP host.example.com;received=192.0.2.5;branch=verylonglonglongbranchvalue\nMax-Forwards: 70\nContact: <sip:amazinglylongcallername@host5.example.net>\nl: 0\n\n".to_owned(),
        // §3.1.1.9 semiuri
        "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0\nTo: sip:j_user@example.com\nFrom: sip:caller@example.org;tag=33242\nMax-Forwards: 3\nCall-ID: semiuri.0ha0isndaksdj\nCSeq: 8 OPTIONS\nAccept: application/sdp, application/pkcs7-mime,\n        multipart/mixed, multipart/signed,\n        message/sip, message/sipfrag\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw\nl: 0\n\n".to_owned(),
        // §3.3.4 unksm2: unknown schemes in To, From, Contact
        "REGISTER sip:example.com SIP/2.0\nTo: isbn:2983792873\nFrom: <http://www.example.com>;tag=3234233\nCall-ID: unksm2.daksdj@hyphenated-host.example.com\nCSeq: 234902 REGISTER\nMax-Forwards: 70\nVia: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKkdjuw\nContact: <name:John_Smith>\nl: 0\n\n".to_owned(),
        // §3.3.12/13 cparam01/02, §3.1.1.? regescrt: headers in a name-addr
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw\nMax-Forwards: 70\nFrom: sip:watson@example.com;tag=DkfVgjkrtMwaerKKpe\nTo: sip:watson@example.com\nCall-ID: cparam01.70710@saturn.example.com\nCSeq: 2 REGISTER\nContact: sip:+19725552222@gw1.example.net;unknownparam\nl: 0\n\n".to_owned(),
        "REGISTER sip:example.com SIP/2.0\nTo: sip:user@example.com\nFrom: sip:user@example.com;tag=8\nMax-Forwards: 70\nCall-ID: regescrt.k345asrl3fdbv@192.0.2.1\nCSeq: 14398234 REGISTER\nVia: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw\nM: <sip:user@example.com?Route=%3Csip:sip.example.com%3E>\nL:0\n\n".to_owned(),
        // §3.3.15?/§3.1.1 inv2543: RFC 2543 request (no branch, no Max-Forwards)
        "INVITE sip:UserB@example.com SIP/2.0\nVia: SIP/2.0/UDP iftgw.example.com\nFrom: <sip:+13035551111@ift.client.example.net;user=phone>\nRecord-Route: <sip:UserB@example.com;maddr=ss1.example.com>\nTo: sip:+16505552222@ss1.example.net;user=phone\nCall-ID: inv2543.1717@ift.client.example.com\nCSeq: 56 INVITE\nContent-Type: application/sdp\n\nv=0\n".to_owned(),
        // REGISTER Contact `*`, JsSIP's Contact parameters, IPv6 received.
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bK1;received=2001:db8::1;rport=5\nTo: <sip:a@example.com>\nFrom: \"A b\" <sip:a@example.com>;tag=1\nCall-ID: star\nCSeq: 3 REGISTER\nContact: *\nExpires: 0\nl: 0\n\n".to_owned(),
        "REGISTER sip:127.0.0.1 SIP/2.0\nVia: SIP/2.0/WS tctoiqaivdl9.invalid;branch=z9hG4bK7745645\nTo: <sip:alice@127.0.0.1>\nFrom: <sip:alice@127.0.0.1>;tag=abc\nCall-ID: reg1\nCSeq: 1 REGISTER\nContact: <sip:797u6qgc@tctoiqaivdl9.invalid;transport=ws>;+sip.ice;reg-id=1;+sip.instance=\"<urn:uuid:0f3e0a66-1b8c-4e7f-9a70-6b06e5a1a1a1>\";expires=300\nRoute: <sip:127.0.0.1:5062;transport=ws;lr>\nPath: <sip:tok@10.0.0.1:5070;transport=udp;lr;ob>\nl: 0\n\n".to_owned(),
    ];
    for m in valid {
        let b = crlf(&m);
        if let Err(e) = parse(&b, &lim()) {
            panic!("{e:?} for\n{m}");
        }
    }
    // And the valid torture messages above (wsinv, intmeth, transports).
    for m in [WSINV, INTMETH] {
        assert!(parse(&crlf(m), &lim()).is_ok());
    }
}

/// Strict forms refused for each header the edge reads.
#[test]
fn header_syntax_refusals() {
    let cases: [(&str, &str, &str); 12] = [
        (
            "Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKnashds7",
            "Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKnashds7,",
            "Bad Via",
        ),
        (
            "Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKnashds7",
            "Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKnashds7;x=",
            "Bad Via",
        ),
        (
            "Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKnashds7",
            "Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKnashds7\nVia: garbage",
            "Bad Via",
        ),
        (
            "To: <sip:bob@example.com>",
            "To: <sip:bob@example.com",
            "Bad To",
        ),
        (
            "To: <sip:bob@example.com>",
            "To: <sip:bob@example.com>;",
            "Bad To",
        ),
        ("To: <sip:bob@example.com>", "To: bob@example.com", "Bad To"),
        (
            "From: <sip:alice@example.com>;tag=9fxced76sl",
            "From: <sip:alice@exa mple.com>;tag=9fxced76sl",
            "Bad From",
        ),
        (
            "From: <sip:alice@example.com>;tag=9fxced76sl",
            "From: <sip:alice@example.com>;tag=\"9fx",
            "Bad From",
        ),
        (
            "Max-Forwards: 70",
            "Max-Forwards: 70\nContact: *, <sip:a@b>",
            "Bad Contact",
        ),
        (
            "Max-Forwards: 70",
            "Max-Forwards: 70\nRoute: sip:p1.example.com;lr",
            "Bad Route",
        ),
        (
            "Max-Forwards: 70",
            "Max-Forwards: 70\nRecord-Route: <sip:p1.example.com;lr>,,<sip:p2;lr>",
            "Bad Record-Route",
        ),
        (
            "Max-Forwards: 70",
            "Max-Forwards: 70\nPath: <sip:[::1;lr>",
            "Bad Path",
        ),
    ];
    let base = String::from_utf8(request("OPTIONS sip:bob@example.com SIP/2.0", "l: 0\n")).unwrap();
    assert!(parse(base.as_bytes(), &lim()).is_ok());
    for (from, to, reason) in cases {
        let b = base.replace(from, &to.replace('\n', "\r\n"));
        assert_ne!(b, base);
        assert_eq!(
            parse(b.as_bytes(), &lim()).unwrap_err(),
            SipError::BadRequest(reason),
            "{to}"
        );
    }
    // Responses are not held to these forms (a proxy forwards them).
    let resp = crlf("SIP/2.0 200 OK\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\nTo: Watson, Thomas <sip:t@e>;tag=1\nFrom: <sip:c@d>;tag=2\nCall-ID: x\nCSeq: 1 OPTIONS\nContact: sip:a@b?x=y\nl: 0\n\n");
    assert!(parse(&resp, &lim()).is_ok());
}

/// Over UDP, octets after the body are discarded (RFC 3261 §18.3, RFC 4475
/// §3.1.1.8 "dblreq"); over WebSocket they are a second message (400).
#[test]
fn datagram_trailing_octets_discarded() {
    let register = "REGISTER sip:example.com SIP/2.0\nTo: sip:j.user@example.com\nFrom: sip:j.user@example.com;tag=43251j3j324\nMax-Forwards: 8\nI: dblreq.0ha0isndaksdj99sdfafnl3lk233412\nContact: sip:j.user@host.example.com\nCSeq: 8 REGISTER\nVia: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492\nContent-Length: 0\n\n";
    let invite = format!("INVITE sip:joe@example.com SIP/2.0\nt: sip:joe@example.com\nFrom: sip:caller@example.net;tag=141334\nMax-Forwards: 8\nCall-ID: dblreq.0ha0isnda977644900765@192.0.2.15\nCSeq: 8 INVITE\nVia: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234\nContent-Type: application/sdp\nContent-Length: 150\n\n{}", sdp("192.0.2.15"));
    let b = crlf(&format!("{register}{invite}"));
    let m = parse_datagram(&b, &lim()).unwrap();
    assert_eq!(m.method(), Some("REGISTER"));
    assert_eq!(m.edit().finish(), crlf(register));
    assert_eq!(
        parse(&b, &lim()).unwrap_err(),
        SipError::BadRequest("More than one message")
    );
}
