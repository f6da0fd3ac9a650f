//! Transcript tests for the RFC 7395 translator. Server input is replayed
//! whole, split at every offset, and one byte at a time; the outputs must
//! be identical.

use super::*;

const HDR1: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0' xml:lang='en'>";
const TLS_FEATURES: &str = "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>";
const PROCEED: &str = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
const HDR2: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s2' from='localhost' version='1.0' xml:lang='en'>";
const SASL_FEATURES: &str = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms><compression xmlns='http://jabber.org/features/compress'><method>zlib</method></compression></stream:features>";
const SUCCESS: &str = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
const HDR3: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s3' from='localhost' version='1.0' xml:lang='en'>";
const BIND_FEATURES: &str =
    "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>";

fn limits() -> Limits {
    Limits::default()
}

fn open_msg() -> &'static str {
    "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='LocalHost' version='1.0' xml:lang='en'/>"
}

/// Feeds server bytes in the given chunking and collects outputs.
fn feed(t: &mut Translator, input: &str, chunks: &[usize]) -> Vec<Output> {
    let b = input.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    for c in chunks {
        let end = (at + c).min(b.len());
        out.extend(t.on_server_bytes(&b[at..end]));
        at = end;
    }
    out.extend(t.on_server_bytes(&b[at..]));
    out
}

fn to_client(out: &[Output]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Output::ToClient(e) => Some(e.to_text()),
            _ => None,
        })
        .collect()
}

fn to_server(out: &[Output]) -> String {
    out.iter()
        .filter_map(|o| match o {
            Output::ToServer(b) => Some(String::from_utf8(b.clone()).unwrap()),
            _ => None,
        })
        .collect()
}

/// Runs the whole login with a given way of chunking server input.
fn login_transcript(chunking: &dyn Fn(usize) -> Vec<usize>) -> Vec<Output> {
    let mut t = Translator::new(limits(), ServerTls::StartTls);
    let mut all = Vec::new();
    let out = t.on_client_text(open_msg());
    assert_eq!(
        out,
        vec![Output::Connect {
            domain: "localhost".into()
        }]
    );
    all.extend(out);
    let out = t.on_server_connected();
    assert!(to_server(&out).contains("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0' xml:lang='en'>"));
    all.extend(out);
    let s1 = format!("{HDR1}{TLS_FEATURES}");
    let out = feed(&mut t, &s1, &chunking(s1.len()));
    assert_eq!(
        to_server(&out),
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    );
    assert!(
        to_client(&out).is_empty(),
        "nothing reaches the client before TLS"
    );
    all.extend(out);
    let out = feed(&mut t, PROCEED, &chunking(PROCEED.len()));
    assert_eq!(out, vec![Output::StartTls]);
    all.extend(out);
    let out = t.on_tls_ready();
    assert!(to_server(&out).starts_with("<?xml version='1.0'?><stream:stream"));
    all.extend(out);
    let s2 = format!("{HDR2}  {SASL_FEATURES}");
    let out = feed(&mut t, &s2, &chunking(s2.len()));
    assert_eq!(
        to_client(&out),
        vec![
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='localhost' id='s2' version='1.0' xml:lang='en'/>".to_string(),
            "<stream:features xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>".to_string(),
        ]
    );
    all.extend(out);
    let auth =
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHBhc3M=</auth>";
    let out = t.on_client_text(auth);
    assert_eq!(to_server(&out), auth);
    all.extend(out);
    // success and (pipelined, as a hostile or eager server might) the new header
    let s3 = format!("{SUCCESS}{HDR3}{BIND_FEATURES}");
    let out = feed(&mut t, &s3, &chunking(s3.len()));
    assert_eq!(to_client(&out), vec![SUCCESS.to_string()]);
    all.extend(out);
    let out = t.on_client_text(open_msg());
    assert!(to_server(&out).contains("to='localhost'"));
    // the buffered new stream is parsed only now, as a new stream
    assert_eq!(
        to_client(&out),
        vec![
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='localhost' id='s3' version='1.0' xml:lang='en'/>".to_string(),
            "<stream:features xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>".to_string(),
        ]
    );
    all.extend(out);
    let bind = "<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>";
    all.extend(t.on_client_text(bind));
    let s4 = "<iq type='result' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/web</jid></bind></iq> \n <message from='bob@localhost' type='chat'><body>hi</body></message>";
    let out = feed(&mut t, s4, &chunking(s4.len()));
    assert_eq!(
        to_client(&out),
        vec![
            "<iq xmlns='jabber:client' type='result' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/web</jid></bind></iq>".to_string(),
            "<message xmlns='jabber:client' from='bob@localhost' type='chat'><body>hi</body></message>".to_string(),
        ]
    );
    all.extend(out);
    let out = t.on_client_text("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    assert_eq!(to_server(&out), "</stream:stream>");
    all.extend(out);
    let out = feed(&mut t, "</stream:stream>", &chunking(16));
    assert_eq!(
        out,
        vec![
            Output::ToClient(ClientEvent::Close),
            Output::CloseClient(1000),
            Output::CloseServer
        ]
    );
    all.extend(out);
    assert!(t.is_closed());
    all
}

#[test]
fn full_login_whole_split_and_byte_by_byte() {
    let whole = login_transcript(&|_| vec![]);
    for cut in 0..200 {
        let split = login_transcript(&|_len| vec![cut]);
        assert_eq!(split, whole, "split at {cut}");
    }
    let bytewise = login_transcript(&|len| vec![1; len]);
    assert_eq!(bytewise, whole);
}

fn opened(tls: ServerTls) -> Translator {
    let mut t = Translator::new(limits(), tls);
    t.on_client_text(open_msg());
    t.on_server_connected();
    let out = t.on_server_bytes(format!("{HDR2}{SASL_FEATURES}").as_bytes());
    assert_eq!(to_client(&out).len(), 2);
    assert!(t.is_open());
    t
}

#[test]
fn every_message_to_the_client_carries_its_namespaces() {
    let mut t = opened(ServerTls::AlreadySecureOrNone);
    let out = t.on_server_bytes(b"<presence from='x@y'/><stream:features><x xmlns='urn:x'/></stream:features><iq xmlns='jabber:client' type='get' id='1'/><r xmlns='urn:xmpp:sm:3'/>");
    for m in to_client(&out) {
        let c = check_element(&m, &limits()).unwrap_or_else(|e| panic!("{m}: {e}"));
        assert!(!c.ns.is_empty(), "{m}");
    }
    assert_eq!(
        to_client(&out)[0],
        "<presence xmlns='jabber:client' from='x@y'/>"
    );
    assert_eq!(to_client(&out)[3], "<r xmlns='urn:xmpp:sm:3'/>");
}

#[test]
fn whitespace_keepalives_are_not_forwarded() {
    let mut t = opened(ServerTls::AlreadySecureOrNone);
    for _ in 0..10 {
        assert!(t.on_server_bytes(b" ").is_empty());
    }
}

#[test]
fn unknown_domain_gets_host_unknown() {
    let mut t = Translator::new(limits(), ServerTls::StartTls);
    t.on_client_text(
        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='nope.example' version='1.0'/>",
    );
    let out = t.on_server_unavailable(Unavailable::HostUnknown, "not configured");
    let msgs = to_client(&out);
    assert_eq!(
        msgs[0],
        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='nope.example' version='1.0'/>"
    );
    assert!(msgs[1].contains("<host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"));
    assert_eq!(msgs[2], close_element());
    assert!(out.contains(&Output::CloseClient(1000)));
    assert!(to_server(&out).is_empty(), "nothing was sent to any server");
}

#[test]
fn server_without_starttls_fails_and_a_refusal_fails() {
    let mut t = Translator::new(limits(), ServerTls::StartTls);
    t.on_client_text(open_msg());
    t.on_server_connected();
    let out = t.on_server_bytes(format!("{HDR1}{SASL_FEATURES}").as_bytes());
    assert!(to_client(&out)[1].contains("remote-connection-failed"));
    let mut t = Translator::new(limits(), ServerTls::StartTls);
    t.on_client_text(open_msg());
    t.on_server_connected();
    t.on_server_bytes(format!("{HDR1}{TLS_FEATURES}").as_bytes());
    let out = t.on_server_bytes(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert!(to_client(&out)[1].contains("remote-connection-failed"));
}

#[test]
fn plaintext_after_proceed_is_refused() {
    let mut t = Translator::new(limits(), ServerTls::StartTls);
    t.on_client_text(open_msg());
    t.on_server_connected();
    t.on_server_bytes(format!("{HDR1}{TLS_FEATURES}").as_bytes());
    let out = t.on_server_bytes(
        format!("{PROCEED}<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>").as_bytes(),
    );
    assert!(!out.contains(&Output::StartTls));
    assert!(to_client(&out)[1].contains("remote-connection-failed"));
}

#[test]
fn server_stream_errors_are_relayed_then_closed() {
    let mut t = opened(ServerTls::AlreadySecureOrNone);
    let out = t.on_server_bytes(b"<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>other.example:5222</see-other-host></stream:error></stream:stream>");
    let msgs = to_client(&out);
    assert_eq!(msgs[0], "<stream:error xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>other.example:5222</see-other-host></stream:error>");
    assert_eq!(msgs[1], close_element());
    assert!(out.contains(&Output::CloseClient(1000)));
    assert!(t.is_closed());
}

#[test]
fn server_stream_errors_are_kept_for_the_end() {
    // a server's own error, text and all, byte by byte
    let mut t = opened(ServerTls::AlreadySecureOrNone);
    let err = "<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Received SIGTERM</text></stream:error>";
    let mut out = Vec::new();
    for b in format!("{err}</stream:stream>").bytes() {
        out.extend(t.on_server_bytes(&[b]));
    }
    let relayed = "<stream:error xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Received SIGTERM</text></stream:error>";
    assert_eq!(to_client(&out), vec![relayed.to_string(), close_element()]);
    assert_eq!(t.end(), Some(&StreamEnd::ServerError(relayed.into())));
    assert!(
        t.on_server_eof().is_empty(),
        "the close after it changes nothing"
    );
    assert_eq!(t.end(), Some(&StreamEnd::ServerError(relayed.into())));
    // the gateway's own error
    let mut t = opened(ServerTls::AlreadySecureOrNone);
    assert_eq!(t.end(), None);
    t.on_shutdown();
    assert_eq!(
        t.end(),
        Some(&StreamEnd::GatewayError {
            condition: "system-shutdown",
            element: stream_error("system-shutdown", None)
        })
    );
}

#[test]
fn server_close_becomes_close() {
    let mut t = opened(ServerTls::AlreadySecureOrNone);
    let out = t.on_server_bytes(b"</stream:stream>");
    assert_eq!(to_client(&out), vec![close_element()]);
    assert!(out.contains(&Output::CloseClient(1000)));
    assert_eq!(t.end(), Some(&StreamEnd::Closed));
    // the connection closing after </stream:stream> changes nothing
    assert!(t.on_server_eof().is_empty());
    // after the client's <close/>, a server that just drops the
    // connection ends it as the client asked
    let mut t = opened(ServerTls::AlreadySecureOrNone);
    t.on_client_text("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    let out = t.on_server_eof();
    assert_eq!(
        out,
        vec![
            Output::ToClient(ClientEvent::Close),
            Output::CloseClient(1000),
            Output::CloseServer
        ]
    );
    assert_eq!(t.end(), Some(&StreamEnd::Closed));
}

#[test]
fn a_lost_server_connection_is_remote_connection_failed() {
    let lost = "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><remote-connection-failed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>the connection to the XMPP server was lost</text></stream:error>";
    // reset, or closed without </stream:stream>: also in the middle of a
    // stanza, and after SASL success before the restart
    for before in [
        "",
        "<message from='b@x'><body>cut",
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
    ] {
        let mut t = opened(ServerTls::AlreadySecureOrNone);
        t.on_server_bytes(before.as_bytes());
        let out = t.on_server_eof();
        assert_eq!(
            out,
            vec![
                Output::Log(
                    Side::Backend,
                    "remote-connection-failed",
                    "the connection to the XMPP server was lost without the end of its stream"
                        .into()
                ),
                Output::ToClient(ClientEvent::Error(StreamError::Gateway {
                    condition: "remote-connection-failed",
                    text: Some("the connection to the XMPP server was lost")
                })),
                Output::ToClient(ClientEvent::Close),
                Output::CloseClient(1000),
                Output::CloseServer,
            ],
            "nothing is written to the lost server ({before:?})"
        );
        assert_eq!(to_client(&out), vec![lost.to_string(), close_element()]);
        assert_eq!(
            t.end(),
            Some(&StreamEnd::GatewayError {
                condition: "remote-connection-failed",
                element: lost.into()
            })
        );
        assert!(t.is_closed());
    }
}

#[test]
fn bad_client_input_gets_the_right_stream_error() {
    let cases: &[(&str, &str)] = &[
        ("not xml", "not-well-formed"),
        (
            "<message xmlns='jabber:client'><body>x</body>",
            "not-well-formed",
        ),
        (
            "<message xmlns='jabber:client'/><message xmlns='jabber:client'/>",
            "not-well-formed",
        ),
        (
            "<message xmlns='jabber:client'><!-- x --></message>",
            "restricted-xml",
        ),
        (
            "<?xml version='1.0'?><message xmlns='jabber:client'/>",
            "restricted-xml",
        ),
        (
            "<message xmlns='jabber:client'>&ent;</message>",
            "restricted-xml",
        ),
        ("<message/>", "invalid-namespace"),
        ("<x:message xmlns='jabber:client'/>", "invalid-namespace"),
        (
            "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
            "policy-violation",
        ),
        (
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>",
            "bad-format",
        ),
    ];
    for (input, cond) in cases {
        let mut t = opened(ServerTls::AlreadySecureOrNone);
        let out = t.on_client_text(input);
        let msgs = to_client(&out);
        assert!(msgs[0].contains(&format!("<{cond} ")), "{input}: {msgs:?}");
        assert_eq!(msgs[1], close_element());
        assert!(out.contains(&Output::CloseClient(1000)));
        assert_eq!(
            to_server(&out),
            "</stream:stream>",
            "{input}: the server stream is closed"
        );
        assert!(out.contains(&Output::CloseServer));
    }
    let big = format!(
        "<message xmlns='jabber:client'><body>{}</body></message>",
        "x".repeat(300_000)
    );
    let mut t = opened(ServerTls::AlreadySecureOrNone);
    assert!(to_client(&t.on_client_text(&big))[0].contains("policy-violation"));
}

#[test]
fn stanzas_before_open_and_wrong_versions() {
    let mut t = Translator::new(limits(), ServerTls::StartTls);
    let out = t.on_client_text("<message xmlns='jabber:client'/>");
    let msgs = to_client(&out);
    assert!(
        msgs[0].starts_with("<open "),
        "an <open/> precedes the error"
    );
    assert!(msgs[1].contains("not-authorized"));
    assert!(!out.iter().any(|o| matches!(o, Output::ToServer(_))));
    let mut t = Translator::new(limits(), ServerTls::StartTls);
    let out = t.on_client_text(
        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='2.0'/>",
    );
    assert!(to_client(&out)[1].contains("unsupported-version"));
    let mut t = Translator::new(limits(), ServerTls::StartTls);
    let out = t.on_client_text("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' version='1.0'/>");
    assert!(to_client(&out)[1].contains("host-unknown"));
}

#[test]
fn binary_messages_close_with_1003() {
    let mut t = opened(ServerTls::AlreadySecureOrNone);
    let out = t.on_client_binary();
    assert!(out.contains(&Output::CloseClient(1003)));
    assert_eq!(to_server(&out), "</stream:stream>");
}

#[test]
fn shutdown_sends_system_shutdown_and_1001() {
    let mut t = opened(ServerTls::AlreadySecureOrNone);
    let out = t.on_shutdown();
    let msgs = to_client(&out);
    assert!(msgs[0].contains("<system-shutdown "));
    assert_eq!(msgs[1], close_element());
    assert!(out.contains(&Output::CloseClient(1001)));
    assert_eq!(to_server(&out), "</stream:stream>");
    assert!(
        t.on_client_text("<message xmlns='jabber:client'/>")
            .is_empty(),
        "closed translators ignore input"
    );
}

#[test]
fn a_drain_cut_leaves_the_session_resumable() {
    let mut t = opened(ServerTls::AlreadySecureOrNone);
    let out = t.on_drain_cut();
    // no stream error, no <close/>, no </stream:stream>: a lost connection
    assert_eq!(out, vec![Output::CloseClient(1001), Output::CloseServer]);
    assert_eq!(
        t.end(),
        Some(&StreamEnd::GatewayError {
            condition: "system-shutdown",
            element: stream_error("system-shutdown", None)
        })
    );
    assert!(t
        .on_client_text("<message xmlns='jabber:client'/>")
        .is_empty());
    assert!(t.on_server_eof().is_empty());
    assert!(t.on_drain_cut().is_empty());
}

#[test]
fn a_drain_cut_before_the_stream_is_open_is_a_shutdown() {
    let mut t = Translator::new(limits(), ServerTls::AlreadySecureOrNone);
    t.on_client_text(open_msg());
    let out = t.on_drain_cut();
    assert!(to_client(&out)[1].contains("<system-shutdown "));
    assert!(out.contains(&Output::CloseClient(1001)));
    assert_eq!(to_server(&out), "");
}

#[test]
fn oversized_server_stanza_is_a_policy_violation() {
    let mut t = Translator::new(
        Limits {
            max_bytes: 1000,
            ..limits()
        },
        ServerTls::AlreadySecureOrNone,
    );
    t.on_client_text(open_msg());
    t.on_server_connected();
    t.on_server_bytes(format!("{HDR2}{SASL_FEATURES}").as_bytes());
    let out = t.on_server_bytes(format!("<message><body>{}", "y".repeat(2000)).as_bytes());
    assert!(to_client(&out)[0].contains("policy-violation"));
}

#[test]
fn client_close_before_the_server_answers_times_out_cleanly() {
    let mut t = opened(ServerTls::AlreadySecureOrNone);
    t.on_client_text("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    // stanzas still in flight from the server are delivered
    let out = t.on_server_bytes(b"<message from='b@x'><body>late</body></message>");
    assert_eq!(to_client(&out).len(), 1);
    let out = t.on_close_timeout();
    assert_eq!(to_client(&out), vec![close_element()]);
    assert!(t.is_closed());
}

#[test]
fn an_oversized_client_message_is_a_policy_violation_then_1009() {
    let mut t = opened(ServerTls::AlreadySecureOrNone);
    let out = t.on_client_too_big();
    assert_eq!(
        out,
        vec![
            Output::ToClient(ClientEvent::Error(StreamError::Gateway {
                condition: "policy-violation",
                text: None
            })),
            Output::ToClient(ClientEvent::Close),
            Output::CloseClient(1009),
            Output::ToServer(b"</stream:stream>".to_vec()),
            Output::CloseServer,
        ]
    );
    assert_eq!(
        to_client(&out),
        vec![stream_error("policy-violation", None), close_element()]
    );
    assert!(t.is_closed());
    // before <open/>: the client gets its <open/> first (RFC 6120 §4.9.1.2)
    let mut t = Translator::new(limits(), ServerTls::StartTls);
    let out = t.on_client_too_big();
    let msgs = to_client(&out);
    assert!(msgs[0].starts_with("<open "), "{msgs:?}");
    assert!(msgs[1].contains("<policy-violation "), "{msgs:?}");
    assert!(out.contains(&Output::CloseClient(1009)));
    assert_eq!(to_server(&out), "");
}

#[test]
fn typed_client_input_does_what_the_text_does() {
    // the open
    let mut a = Translator::new(limits(), ServerTls::AlreadySecureOrNone);
    let mut b = Translator::new(limits(), ServerTls::AlreadySecureOrNone);
    assert_eq!(
        a.on_client_text(open_msg()),
        b.on_client_open(&ClientOpen {
            to: Some("LocalHost"),
            version: Some("1.0"),
            lang: Some("en"),
            from: None,
        })
    );
    for t in [&mut a, &mut b] {
        t.on_server_connected();
        t.on_server_bytes(format!("{HDR2}{SASL_FEATURES}").as_bytes());
        assert!(t.is_open());
    }
    // stanzas: the element is passed on as it is, without being parsed again
    for el in [
        "<message xmlns='jabber:client' to='b@x'><body>hi</body></message>",
        "<x:iq xmlns:x='jabber:client' type='get' id='1'/>",
    ] {
        assert_eq!(a.on_client_text(el), b.on_client_element(parsed(el)));
    }
    // the close
    assert_eq!(a.on_client_text(&close_element()), b.on_client_close());
    assert!(a.is_closing() && b.is_closing());
    // framing elements passed as checked elements are framing still
    for el in [
        close_element(),
        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>"
            .to_string(),
        "<other xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>".to_string(),
    ] {
        let mut a = opened(ServerTls::AlreadySecureOrNone);
        let mut b = opened(ServerTls::AlreadySecureOrNone);
        let out = b.on_client_element(parsed(&el));
        assert_eq!(a.on_client_text(&el), out, "{el}");
        assert!(!to_server(&out).contains("framing"), "{el}");
    }
    // refusals: TLS over the stream, a client's stream error
    for el in [
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
        "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
    ] {
        let mut a = opened(ServerTls::AlreadySecureOrNone);
        let mut b = opened(ServerTls::AlreadySecureOrNone);
        let out = b.on_client_element(parsed(el));
        assert_eq!(a.on_client_text(el), out);
        assert!(b.is_closed(), "{el}");
    }
    // the limits hold for checked elements too: the stanza size, and the
    // attributes of the element as passed on
    let small = Limits {
        max_bytes: 300,
        max_depth: 8,
        max_attributes: 4,
    };
    let long = format!(
        "<message xmlns='jabber:client' to='b@x'><body>{}</body></message>",
        "z".repeat(260)
    );
    for el in [
        long.as_str(),
        "<message xmlns='jabber:client' xmlns:x='urn:x' to='b@x' id='1' x:y='1'/>",
    ] {
        let mut a = Translator::new(small, ServerTls::AlreadySecureOrNone);
        let mut b = Translator::new(small, ServerTls::AlreadySecureOrNone);
        for t in [&mut a, &mut b] {
            t.on_client_text(open_msg());
            t.on_server_connected();
            t.on_server_bytes(format!("{HDR2}{BIND_FEATURES}").as_bytes());
            assert!(t.is_open());
        }
        let out = b.on_client_element(parsed(el));
        assert_eq!(a.on_client_text(el), out, "{el}");
        assert!(to_client(&out)[0].contains("<policy-violation "), "{el}");
        assert_eq!(to_server(&out), "</stream:stream>", "{el}");
    }
    // a version other than 1.0 is refused
    let mut t = Translator::new(limits(), ServerTls::StartTls);
    let out = t.on_client_open(&ClientOpen {
        to: Some("localhost"),
        ..ClientOpen::default()
    });
    assert!(to_client(&out)[1].contains("<unsupported-version "));
}

#[test]
fn the_clients_open_says_whether_the_server_opened_the_stream() {
    let mut t = Translator::new(limits(), ServerTls::AlreadySecureOrNone);
    t.on_client_text(open_msg());
    t.on_server_connected();
    let out = t.on_server_bytes(HDR2.as_bytes());
    assert_eq!(
        out,
        vec![Output::ToClient(ClientEvent::Open(Box::new(StreamOpen {
            from: "localhost".into(),
            id: Some("s2".into()),
            lang: Some("en".into()),
            negotiated: true,
        })))]
    );
    // failing before the server answered: an <open/> only to carry the error
    let mut t = Translator::new(limits(), ServerTls::StartTls);
    t.on_client_text(open_msg());
    let out = t.on_server_unavailable(Unavailable::RemoteConnectionFailed, "refused");
    assert_eq!(
        out[1],
        Output::ToClient(ClientEvent::Open(Box::new(StreamOpen {
            from: "localhost".into(),
            id: None,
            lang: Some("en".into()),
            negotiated: false,
        })))
    );
    assert_eq!(
        out[2],
        Output::ToClient(ClientEvent::Error(StreamError::Gateway {
            condition: "remote-connection-failed",
            text: None,
        }))
    );
    // the server's own error, kept whole
    let mut t = opened(ServerTls::AlreadySecureOrNone);
    let out = t.on_server_bytes(
        b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
    );
    assert!(out.contains(&Output::ToClient(ClientEvent::Error(StreamError::Server(
        "<stream:error xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>".into()
    )))));
}

/// Found by the `xmpp_ws_translator` fuzz target
/// (fuzz/regressions/xmpp_ws_translator/): the negotiation timer can fire
/// after the stream already ended (here: the server closed during
/// negotiation); that must not log and count a second error.
#[test]
fn server_unavailable_after_close_is_ignored() {
    let mut t = Translator::new(limits(), ServerTls::AlreadySecureOrNone);
    let out = t.on_server_eof();
    assert!(out.contains(&Output::CloseClient(1000)), "{out:?}");
    assert!(t.is_closed());
    for why in [
        Unavailable::HostUnknown,
        Unavailable::RemoteConnectionFailed,
    ] {
        assert_eq!(t.on_server_unavailable(why, "late"), Vec::new());
    }
}

/// An element as the BOSH body parser hands it on.
fn parsed(el: &str) -> crate::xml::tag::ParsedElement {
    crate::xml::tag::ParsedElement::parse(el.as_bytes()).unwrap()
}
