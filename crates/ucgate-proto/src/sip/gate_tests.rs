//! The client gate, with explicit times.

use super::*;

const KEY: &[u8] = b"shared key";

fn crlf(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

fn request(method: &str) -> Vec<u8> {
    crlf(&format!(
        "{method} sip:bob@example.com SIP/2.0\n\
         Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bK1\n\
         Max-Forwards: 70\n\
         From: <sip:alice@example.com>;tag=a1\n\
         To: <sip:bob@example.com>\n\
         Call-ID: c1\n\
         CSeq: 1 {method}\n\
         Content-Length: 0\n\n"
    ))
}

fn is_ignore(i: Inbound<'_>) -> bool {
    matches!(
        i,
        Inbound::Ignore {
            error: "sip_garbage"
        }
    )
}

fn gate(per_second: u32, garbage: u32) -> ClientGate {
    ClientGate::new(GateLimits {
        max_messages_per_second: per_second,
        max_garbage: garbage,
    })
}

fn at(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn step<'a>(g: &mut ClientGate, ms: u64, data: &'a [u8]) -> Inbound<'a> {
    g.on_message(at(ms), data, &SipLimits::default(), KEY, 7)
}

const RETRY_503: &str = "SIP/2.0 503 Service Unavailable\r\n\
     Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bK1\r\n\
     From: <sip:alice@example.com>;tag=a1\r\n\
     To: <sip:bob@example.com>;tag=TAG\r\n\
     Call-ID: c1\r\n\
     CSeq: 1 INVITE\r\n\
     Retry-After: 5\r\n\
     Content-Length: 0\r\n\r\n";

#[test]
fn keepalive_ping_is_answered_lone_crlf_is_not() {
    let mut g = gate(20, 5);
    assert!(matches!(
        step(&mut g, 0, b"\r\n\r\n"),
        Inbound::Keepalive { pong: true }
    ));
    assert!(matches!(
        step(&mut g, 1, b"\r\n"),
        Inbound::Keepalive { pong: false }
    ));
    assert!(matches!(
        step(&mut g, 2, b""),
        Inbound::Keepalive { pong: false }
    ));
    assert_eq!(KEEPALIVE_PONG, "\r\n");
}

#[test]
fn parsed_message_is_routed() {
    let mut g = gate(20, 5);
    let b = request("INVITE");
    match step(&mut g, 0, &b) {
        Inbound::Route(m) => assert_eq!(m.method(), Some("INVITE")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rate_window_of_one_second_then_503_and_1008() {
    let mut g = gate(3, 5);
    let b = request("INVITE");
    for ms in [0, 100, 999] {
        assert!(matches!(step(&mut g, ms, &b), Inbound::Route(_)), "{ms}");
    }
    // The fourth in the window [0, 1s) ends the connection, with a 503.
    match step(&mut g, 999, &b) {
        Inbound::End {
            response: Some(r),
            error,
            close,
        } => {
            assert_eq!(
                String::from_utf8(r).unwrap(),
                RETRY_503.replace("TAG", "ucgate-rl7")
            );
            assert_eq!(error, "sip_rate_limit");
            assert_eq!(close, RATE_LIMIT_CLOSE);
            assert_eq!((close.code, close.reason), (1008, "too many messages"));
            assert_eq!(close.end, "rate_limit");
        }
        other => panic!("{other:?}"),
    }
    // A new window at 1 s: three more.
    let mut g = gate(3, 5);
    for ms in [0, 100, 200, 1000, 1500, 1999] {
        assert!(matches!(step(&mut g, ms, &b), Inbound::Route(_)), "{ms}");
    }
    assert!(matches!(step(&mut g, 1999, &b), Inbound::End { .. }));
}

#[test]
fn keepalives_count_toward_the_rate() {
    let mut g = gate(2, 5);
    assert!(matches!(
        step(&mut g, 0, b"\r\n\r\n"),
        Inbound::Keepalive { .. }
    ));
    assert!(matches!(
        step(&mut g, 0, b"\r\n\r\n"),
        Inbound::Keepalive { .. }
    ));
    assert!(matches!(
        step(&mut g, 0, b"\r\n\r\n"),
        Inbound::End {
            response: None,
            error: "sip_rate_limit",
            close: RATE_LIMIT_CLOSE
        }
    ));
}

#[test]
fn over_the_rate_ack_and_responses_get_no_answer() {
    for data in [
        request("ACK"),
        crlf("SIP/2.0 200 OK\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK1\nFrom: <sip:a@b>;tag=1\nTo: <sip:c@d>;tag=2\nCall-ID: c\nCSeq: 1 INVITE\nContent-Length: 0\n\n"),
        b"garbage".to_vec(),
    ] {
        let mut g = gate(1, 5);
        step(&mut g, 0, &data);
        assert!(matches!(
        step(&mut g, 10, &data),
        Inbound::End {
                response: None,
                error: "sip_rate_limit",
                close: RATE_LIMIT_CLOSE
            }
    ));
    }
}

#[test]
fn garbage_in_a_row_ends_with_1008_and_a_good_message_resets_it() {
    let mut g = gate(100, 3);
    assert!(is_ignore(step(&mut g, 0, b"hello")));
    assert!(is_ignore(step(&mut g, 1, b"hello")));
    let b = request("OPTIONS");
    assert!(matches!(step(&mut g, 2, &b), Inbound::Route(_)));
    assert!(is_ignore(step(&mut g, 3, b"hello")));
    assert!(is_ignore(step(&mut g, 4, b"hello")));
    assert!(matches!(
        step(&mut g, 5, b"hello"),
        Inbound::End {
            response: None,
            error: "sip_garbage",
            close: GARBAGE_CLOSE
        }
    ));
    assert_eq!(
        (GARBAGE_CLOSE.code, GARBAGE_CLOSE.reason, GARBAGE_CLOSE.end),
        (1008, "unparseable SIP messages", "garbage")
    );
}

#[test]
fn parse_errors_with_an_answer_reset_the_garbage_run() {
    let mut g = gate(100, 2);
    let bad = crlf(
        "OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bK1\nCSeq: 1 OPTIONS\n\n",
    );
    assert!(matches!(step(&mut g, 0, b"x"), Inbound::Ignore { .. }));
    match step(&mut g, 1, &bad) {
        Inbound::Answer { response, error } => {
            assert!(response.starts_with(b"SIP/2.0 400 Missing From\r\n"));
            assert_eq!(error, "sip_bad_request");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(step(&mut g, 2, b"x"), Inbound::Ignore { .. }));
    assert!(matches!(step(&mut g, 3, b"x"), Inbound::End { .. }));
}

#[test]
fn core_unreachable_is_503_except_for_ack_and_responses() {
    let lim = SipLimits::default();
    let b = request("INVITE");
    let m = message::parse(&b, &lim).unwrap();
    assert_eq!(
        String::from_utf8(core_unreachable_response(&m, 9).unwrap()).unwrap(),
        RETRY_503.replace("TAG", "ucgate-core9")
    );
    let b = request("ACK");
    let m = message::parse(&b, &lim).unwrap();
    assert_eq!(core_unreachable_response(&m, 9), None);
    let b = crlf("SIP/2.0 180 Ringing\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK1\nFrom: <sip:a@b>;tag=1\nTo: <sip:c@d>;tag=2\nCall-ID: c\nCSeq: 1 INVITE\nContent-Length: 0\n\n");
    let m = message::parse(&b, &lim).unwrap();
    assert_eq!(core_unreachable_response(&m, 9), None);
}
