//! The server's side of the translator: its stream header, features
//! (STARTTLS negotiated here, then filtered), stanzas qualified for the
//! client, SASL success restarting the parser at the element boundary, its
//! stream errors and the end of its stream.

use super::element::{has_child, into_text, qualify_owned, remove_children};
use super::*;
use crate::side::Side;
use crate::xml::splitter::Item;
use crate::xml::tag::ParsedElement;

impl Translator {
    /// Parses buffered server bytes as far as the current phase allows.
    /// While waiting for the TLS handshake or for the client's restart
    /// `<open/>`, bytes stay buffered: they belong to the next stream.
    pub(super) fn pump(&mut self, out: &mut Vec<Output>) {
        loop {
            if matches!(
                self.phase,
                Phase::Closed | Phase::TlsHandshake | Phase::AwaitRestartOpen
            ) {
                break;
            }
            let ev = match self.splitter.next_item() {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(e) => {
                    self.server_xml_error(e, out);
                    break;
                }
            };
            self.server_event(ev, out);
        }
    }

    pub(super) fn server_xml_error(&mut self, e: XmlError, out: &mut Vec<Output>) {
        out.push(Output::Log(Side::Backend, e.condition(), e.to_string()));
        let condition = match e {
            XmlError::Limit(_) => "policy-violation",
            _ => "undefined-condition",
        };
        self.fail(
            condition,
            Some("the XMPP server sent data the gateway cannot relay"),
            1000,
            out,
        );
    }

    /// One item from the server's stream: each element's start tag was
    /// parsed by the splitter and is not parsed again here.
    pub(super) fn server_event(&mut self, ev: Item, out: &mut Vec<Output>) {
        match (self.phase, ev) {
            (Phase::ServerHeader { tls_done }, Item::Header(h)) => {
                if h.attr("version").is_none_or(|v| !v.starts_with("1.")) {
                    self.fail(
                        "unsupported-version",
                        Some("the XMPP server does not speak XMPP 1.0"),
                        1000,
                        out,
                    );
                    return;
                }
                self.server_decls = h.ns_decls();
                // kept for the stream's life
                self.server_decls.shrink_to_fit();
                if tls_done {
                    out.push(Output::ToClient(ClientEvent::Open(Box::new(
                        self.stream_open(Some(&h)),
                    ))));
                    self.client_opened = true;
                    self.phase = Phase::Features { tls_done };
                    // The features come next and go to the client after filtering.
                } else {
                    self.phase = Phase::Features { tls_done };
                }
            }
            (_, Item::Header(_)) => {
                self.fail(
                    "undefined-condition",
                    Some("unexpected stream header from the server"),
                    1000,
                    out,
                );
            }
            (Phase::Features { tls_done }, Item::Element(ParsedElement { bytes: el, tag })) => {
                let ns = element_ns(&tag, &self.server_decls).unwrap_or_default();
                if ns == NS_STREAMS && tag.local() == "error" {
                    self.relay_stream_error(&el, &tag, out);
                    return;
                }
                if !(ns == NS_STREAMS && tag.local() == "features") {
                    self.fail(
                        "undefined-condition",
                        Some("the XMPP server did not send stream features"),
                        1000,
                        out,
                    );
                    return;
                }
                if !tls_done {
                    if !has_child(&el, &tag, NS_TLS, "starttls") {
                        out.push(Output::Log(
                            Side::Backend,
                            "no-starttls",
                            "the server does not offer STARTTLS".into(),
                        ));
                        self.fail(
                            "remote-connection-failed",
                            Some("the XMPP server does not offer TLS"),
                            1000,
                            out,
                        );
                        return;
                    }
                    out.push(Output::ToServer(
                        format!("<starttls xmlns='{NS_TLS}'/>").into_bytes(),
                    ));
                    self.phase = Phase::Proceed;
                    return;
                }
                let (filtered, _) = remove_children(&el, &tag, &[NS_TLS, NS_COMPRESS_FEATURE]);
                let qualified = qualify(&filtered, &tag, &self.server_decls);
                out.push(Output::ToClient(ClientEvent::Element(into_text(qualified))));
                self.phase = Phase::Open;
            }
            (Phase::Proceed, Item::Element(ParsedElement { bytes: el, tag })) => {
                let ns = element_ns(&tag, &self.server_decls).unwrap_or_default();
                if ns == NS_TLS && tag.local() == "proceed" {
                    if self.splitter.buffered() > 0 {
                        // Bytes after <proceed/> before the TLS handshake: an
                        // injection attempt (CVE-2011-0411 style). Refuse.
                        out.push(Output::Log(
                            Side::Backend,
                            "starttls-injection",
                            "plaintext after <proceed/>".into(),
                        ));
                        self.fail("remote-connection-failed", None, 1000, out);
                        return;
                    }
                    self.phase = Phase::TlsHandshake;
                    out.push(Output::StartTls);
                } else if ns == NS_STREAMS && tag.local() == "error" {
                    self.relay_stream_error(&el, &tag, out);
                } else {
                    out.push(Output::Log(
                        Side::Backend,
                        "starttls-failure",
                        String::from_utf8_lossy(&el).into_owned(),
                    ));
                    self.fail(
                        "remote-connection-failed",
                        Some("the XMPP server refused STARTTLS"),
                        1000,
                        out,
                    );
                }
            }
            (
                Phase::Open | Phase::ClientClosing | Phase::AwaitRestartOpen,
                Item::Element(ParsedElement { bytes: el, tag }),
            ) => {
                let ns = element_ns(&tag, &self.server_decls).unwrap_or_default();
                if ns == NS_STREAMS && tag.local() == "error" {
                    self.relay_stream_error(&el, &tag, out);
                    return;
                }
                let sasl_success = ns == NS_SASL && tag.local() == "success";
                let qualified = qualify_owned(el, &tag, &self.server_decls);
                out.push(Output::ToClient(ClientEvent::Element(into_text(qualified))));
                if sasl_success {
                    // RFC 6120 §6.4.6: both sides restart; the server's next
                    // bytes are a new stream.
                    self.splitter.restart();
                    self.phase = Phase::AwaitRestartOpen;
                }
            }
            (_, Item::End) => {
                out.push(Output::ToClient(ClientEvent::Close));
                out.push(Output::CloseClient(1000));
                if self.phase != Phase::ClientClosing {
                    out.push(Output::ToServer(b"</stream:stream>".to_vec()));
                }
                out.push(Output::CloseServer);
                self.close();
            }
            (
                Phase::Features { .. }
                | Phase::Proceed
                | Phase::Open
                | Phase::ClientClosing
                | Phase::AwaitRestartOpen,
                Item::Malformed(_),
            ) => {
                self.fail("undefined-condition", None, 1000, out);
            }
            (_, Item::Element(_) | Item::Malformed(_)) => {
                self.fail(
                    "undefined-condition",
                    Some("unexpected data from the XMPP server"),
                    1000,
                    out,
                );
            }
        }
    }

    pub(super) fn relay_stream_error(&mut self, el: &[u8], tag: &StartTag, out: &mut Vec<Output>) {
        if !self.client_opened {
            out.push(Output::ToClient(ClientEvent::Open(Box::new(
                self.stream_open(None),
            ))));
            self.client_opened = true;
        }
        let text = into_text(qualify(el, tag, &self.server_decls));
        out.push(Output::Log(Side::Backend, "stream-error", text.clone()));
        out.push(Output::ToClient(ClientEvent::Error(StreamError::Server(
            text.clone(),
        ))));
        out.push(Output::ToClient(ClientEvent::Close));
        out.push(Output::CloseClient(1000));
        out.push(Output::ToServer(b"</stream:stream>".to_vec()));
        out.push(Output::CloseServer);
        self.phase = Phase::Closed;
        self.end = Some(StreamEnd::ServerError(text));
    }
}
