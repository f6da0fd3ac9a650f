//! A minimal XMPP server for the tests: plain TCP (no TLS), SASL PLAIN with
//! password `secret` (any user) and ANONYMOUS, resource binding, a
//! required session, and chat messages routed back to their sender. A fault
//! can be injected on the messages it routes.

use std::net::SocketAddr;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use ucgate_proto::xml::splitter::{Event, Splitter};
use ucgate_proto::xml::tag::parse_start_tag;

/// What the server does to the chat messages it routes (counted from 1 on
/// each connection).
#[derive(Clone, Copy, Debug)]
pub enum XFault {
    None,
    /// Never delivers message n.
    Drop(usize),
    /// Changes a character of message n's body.
    Corrupt(usize),
    /// Delivers message n after message n + 1.
    Swap(usize),
    /// Delivers message n twice.
    Duplicate(usize),
    /// Refuses every login.
    RefuseLogin,
    /// Ends the stream when message n arrives.
    CloseAt(usize),
}

const FEATURES_1: &str = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism><mechanism>ANONYMOUS</mechanism></mechanisms></stream:features>";
const FEATURES_2: &str = "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></stream:features>";

fn header(id: &str) -> String {
    format!("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='{id}' from='localhost' version='1.0'>")
}

pub async fn xmpp_server(fault: XFault) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                let _ = session(s, fault).await;
            });
        }
    });
    addr
}

async fn next(s: &mut TcpStream, sp: &mut Splitter) -> Option<Event> {
    loop {
        match sp.next_event() {
            Ok(Some(e)) => return Some(e),
            Ok(None) => {}
            Err(_) => return None,
        }
        let mut b = [0u8; 8192];
        let n = s.read(&mut b).await.ok()?;
        if n == 0 {
            return None;
        }
        sp.feed(&b[..n]);
    }
}

async fn session(mut s: TcpStream, fault: XFault) -> Option<()> {
    let mut sp = Splitter::new(1 << 20);
    let mut user = String::from("anon");
    let Event::Header(_) = next(&mut s, &mut sp).await? else {
        return None;
    };
    s.write_all(format!("{}{FEATURES_1}", header("s1")).as_bytes())
        .await
        .ok()?;
    let Event::Element(auth) = next(&mut s, &mut sp).await? else {
        return None;
    };
    let auth = String::from_utf8(auth).ok()?;
    let ok = if auth.contains("mechanism='PLAIN'") {
        let b64 = auth.split('>').nth(1)?.split('<').next()?;
        let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        let parts: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
        user = String::from_utf8_lossy(parts.get(1)?).into_owned();
        parts.get(2) == Some(&&b"secret"[..])
    } else {
        auth.contains("mechanism='ANONYMOUS'")
    };
    if !ok || matches!(fault, XFault::RefuseLogin) {
        s.write_all(
            b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>",
        )
        .await
        .ok()?;
        return None;
    }
    s.write_all(b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
        .await
        .ok()?;
    sp.restart();
    let Event::Header(_) = next(&mut s, &mut sp).await? else {
        return None;
    };
    s.write_all(format!("{}{FEATURES_2}", header("s2")).as_bytes())
        .await
        .ok()?;
    let mut jid = String::new();
    let mut n = 0usize;
    let mut held: Option<Vec<u8>> = None;
    loop {
        let el = match next(&mut s, &mut sp).await? {
            Event::Element(el) => el,
            Event::End => {
                let _ = s.write_all(b"</stream:stream>").await;
                return Some(());
            }
            Event::Header(_) => return None,
        };
        let tag = parse_start_tag(&el).ok()??;
        let id = tag.attr("id").unwrap_or("").to_string();
        let text = String::from_utf8_lossy(&el).into_owned();
        match tag.local() {
            "iq" if text.contains("xmpp-bind") => {
                let res = text
                    .split("<resource>")
                    .nth(1)
                    .and_then(|r| r.split('<').next())
                    .unwrap_or("r");
                jid = format!("{user}@localhost/{res}");
                let reply = format!("<iq type='result' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>{jid}</jid></bind></iq>");
                s.write_all(reply.as_bytes()).await.ok()?;
            }
            "iq" => {
                s.write_all(format!("<iq type='result' id='{id}'/>").as_bytes())
                    .await
                    .ok()?;
            }
            "message" => {
                n += 1;
                let to = tag.attr("to").unwrap_or("");
                if to != jid {
                    continue;
                }
                let mut out = text.replacen("<message ", &format!("<message from='{jid}' "), 1);
                match fault {
                    XFault::CloseAt(k) if k == n => {
                        let _ = s.write_all(b"</stream:stream>").await;
                        return Some(());
                    }
                    XFault::Drop(k) if k == n => continue,
                    XFault::Corrupt(k) if k == n => {
                        out = out.replacen("</body>", "X</body>", 1);
                    }
                    XFault::Swap(k) if k == n => {
                        held = Some(out.into_bytes());
                        continue;
                    }
                    XFault::Duplicate(k) if k == n => {
                        out = format!("{out}{out}");
                    }
                    _ => {}
                }
                let mut bytes = out.into_bytes();
                if let Some(h) = held.take() {
                    bytes.extend_from_slice(&h);
                }
                s.write_all(&bytes).await.ok()?;
            }
            _ => {}
        }
    }
}
