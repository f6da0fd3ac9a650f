//! The RFC 7395 translator (`ucgate_proto::xmpp_ws::Translator`): client
//! text messages, server bytes and connection events interleaved as the
//! input says.
//!
//! Input: a setup byte (server TLS mode, limits), then operations: an
//! opcode byte and, for client text and server bytes, a length-prefixed
//! chunk (see `Input::chunk`).
//!
//! Invariants: every message to the client is exactly one complete element
//! (RFC 7395 §3.3.3), as the splitter cuts it; while the server has sent
//! nothing, every message (all made by the gateway) is one the strict
//! checker accepts (relayed server elements are not checked that strictly:
//! the server is trusted to be well-formed, and the splitter only finds
//! element boundaries); the client and the
//! server connection are each closed at most once, and nothing is sent to
//! a side after it was closed; a closed translator ignores everything.

use crate::input::Input;
use ucgate_proto::xml::splitter::{Event, Splitter};
use ucgate_proto::xml::validate::check_element;
use ucgate_proto::xml::Limits;
use ucgate_proto::xmpp_ws::{Output, ServerTls, Translator, Unavailable};

const HEADER: &str =
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

#[derive(Default)]
struct Seen {
    server_spoke: bool,
    client_closed: bool,
    server_closed: bool,
    connects: usize,
}

impl Seen {
    fn check(&mut self, was_closed: bool, out: &[Output]) {
        if was_closed {
            assert!(out.is_empty(), "a closed translator produced {out:?}");
        }
        let loose = Limits {
            max_bytes: usize::MAX,
            max_depth: usize::MAX,
            max_attributes: usize::MAX,
        };
        for o in out {
            match o {
                Output::ToClient(event) => {
                    let msg = event.to_text();
                    let msg = msg.as_str();
                    assert!(!self.client_closed, "{msg:?} after the client was closed");
                    let mut s = Splitter::new(usize::MAX / 2);
                    s.feed(HEADER.as_bytes());
                    s.feed(msg.as_bytes());
                    assert!(matches!(s.next_event(), Ok(Some(Event::Header(_)))));
                    assert_eq!(
                        s.next_event(),
                        Ok(Some(Event::Element(msg.as_bytes().to_vec()))),
                        "message to the client {msg:?} is not one element"
                    );
                    if !self.server_spoke {
                        if let Err(e) = check_element(msg, &loose) {
                            panic!("message to the client {msg:?} is not valid: {e}");
                        }
                    }
                }
                Output::CloseClient(code) => {
                    assert!(!self.client_closed, "client closed twice");
                    assert!(matches!(
                        code,
                        1000 | 1001 | 1003 | 1007 | 1008 | 1009 | 1011
                    ));
                    self.client_closed = true;
                }
                Output::ToServer(_) | Output::StartTls => {
                    assert!(!self.server_closed, "{o:?} after the server was closed");
                }
                Output::CloseServer => {
                    assert!(!self.server_closed, "server closed twice");
                    self.server_closed = true;
                }
                Output::Connect { domain } => {
                    self.connects += 1;
                    assert_eq!(self.connects, 1, "connect asked twice");
                    assert_eq!(*domain, domain.to_ascii_lowercase());
                }
                Output::Log(..) => {}
            }
        }
    }
}

/// The target body.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let setup = input.u8();
    let tls = if setup & 1 == 0 {
        ServerTls::AlreadySecureOrNone
    } else {
        ServerTls::StartTls
    };
    let limits = Limits {
        max_bytes: [512, 64 * 1024][usize::from(setup >> 1 & 1)],
        ..Limits::default()
    };
    let mut t = Translator::new(limits, tls);
    let mut seen = Seen::default();
    let mut steps = 0;
    while !input.is_empty() && steps < 500 {
        steps += 1;
        let was_closed = t.is_closed();
        let out = match input.u8() % 12 {
            0 | 1 => {
                let text = String::from_utf8_lossy(input.chunk());
                t.on_client_text(&text)
            }
            2..=4 => {
                let bytes = input.chunk();
                seen.server_spoke |= !bytes.is_empty();
                t.on_server_bytes(bytes)
            }
            5 => t.on_server_connected(),
            6 => {
                let why = if input.u8() & 1 == 0 {
                    Unavailable::HostUnknown
                } else {
                    Unavailable::RemoteConnectionFailed
                };
                t.on_server_unavailable(why, "fuzz")
            }
            7 => t.on_tls_ready(),
            8 => t.on_server_eof(),
            9 => match input.u8() % 6 {
                0 => t.on_shutdown(),
                1 => t.on_idle(),
                2 => t.on_client_dead(),
                3 => t.on_client_gone(),
                4 => t.on_close_timeout(),
                _ => t.on_client_binary(),
            },
            10 => {
                t.set_server_tls(tls);
                Vec::new()
            }
            _ => {
                let _ = (t.domain(), t.is_open(), t.is_closing());
                Vec::new()
            }
        };
        seen.check(was_closed, &out);
    }
}
