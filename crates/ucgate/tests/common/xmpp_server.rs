//! A scripted in-process XMPP server for tests: requires STARTTLS (with a
//! test CA), accepts SASL PLAIN for alice/secret, binds, echoes chat
//! messages back from bob, and answers `flood N` with N numbered messages.
//! A message with the body `drop reset` makes it reset the connection,
//! `drop eof` close it without `</stream:stream>`, and `drop shutdown` end
//! its stream with a `system-shutdown` stream error carrying [`SHUTDOWN_TEXT`].
//! `later MS` makes it wait MS milliseconds, then send a message with the
//! body `late`.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub async fn read_until<S: AsyncRead + Unpin>(s: &mut S, acc: &mut String, needle: &str) -> String {
    loop {
        if let Some(p) = acc.find(needle) {
            let out = acc[..p + needle.len()].to_string();
            acc.drain(..p + needle.len());
            return out;
        }
        let mut b = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b))
            .await
            .unwrap_or_else(|_| panic!("server waited for {needle:?}; has {acc:?}"))
            .unwrap();
        assert!(
            n > 0,
            "client closed while the server waited for {needle:?}; has {acc:?}"
        );
        acc.push_str(std::str::from_utf8(&b[..n]).unwrap());
    }
}

/// Reads a client stream header (`<?xml …?>` optional, then `<stream:stream …>`).
pub async fn read_header<S: AsyncRead + Unpin>(s: &mut S, acc: &mut String) -> String {
    read_until(s, acc, "<stream:stream").await;
    let rest = read_until(s, acc, ">").await;
    format!("<stream:stream{rest}")
}

pub fn header(id: &str) -> String {
    format!("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='{id}' from='localhost' version='1.0' xml:lang='en'>")
}

/// What the scripted server saw.
#[derive(Default, Debug)]
pub struct Seen {
    pub headers: Vec<String>,
    pub stanzas: Vec<String>,
    pub closed_cleanly: bool,
    /// The gateway closed the bound stream's connection (EOF).
    pub eof: bool,
}

/// The text of the scripted server's `system-shutdown` stream error.
pub const SHUTDOWN_TEXT: &str = "Going down for maintenance";

/// How the scripted server ends a connection on `drop …`; returns false
/// for any other body.
async fn drop_connection(
    s: &mut tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    body: &str,
) -> bool {
    match body {
        "drop reset" => {
            // SO_LINGER 0: closing sends RST
            let _ = s.get_ref().0.set_zero_linger();
        }
        "drop eof" => {
            let _ = s.get_mut().0.shutdown().await;
        }
        "drop shutdown" => {
            let _ = s.write_all(format!("<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>{SHUTDOWN_TEXT}</text></stream:error></stream:stream>").as_bytes()).await;
            let _ = s.shutdown().await;
        }
        _ => return false,
    }
    true
}

/// The authenticated part of the session.
async fn after_tls(
    mut s: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    seen: Arc<std::sync::Mutex<Seen>>,
) {
    let mut acc = String::new();
    let h = read_header(&mut s, &mut acc).await;
    seen.lock().unwrap().headers.push(h);
    s.write_all(format!("{}<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>", header("s2")).as_bytes()).await.unwrap();
    let auth = read_until(&mut s, &mut acc, "</auth>").await;
    // base64("\0alice\0secret") = AGFsaWNlAHNlY3JldA==
    if !auth.contains("AGFsaWNlAHNlY3JldA==") {
        s.write_all(
            b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>",
        )
        .await
        .unwrap();
        let _ = read_until(&mut s, &mut acc, "</stream:stream>").await;
        let _ = s.write_all(b"</stream:stream>").await;
        return;
    }
    s.write_all(b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
        .await
        .unwrap();
    let h = read_header(&mut s, &mut acc).await;
    seen.lock().unwrap().headers.push(h);
    s.write_all(
        format!(
            "{}<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
            header("s3")
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let bind = read_until(&mut s, &mut acc, "</iq>").await;
    seen.lock().unwrap().stanzas.push(bind);
    s.write_all(b"<iq type='result' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/web</jid></bind></iq>").await.unwrap();
    // whitespace keepalive, then echo messages back until the stream ends
    s.write_all(b" \n ").await.unwrap();
    loop {
        let mut b = [0u8; 4096];
        let n = match tokio::time::timeout(Duration::from_secs(10), s.read(&mut b)).await {
            Ok(Ok(n)) => n,
            _ => return,
        };
        if n == 0 {
            seen.lock().unwrap().eof = true;
            return;
        }
        acc.push_str(std::str::from_utf8(&b[..n]).unwrap());
        while let Some(p) = acc.find("</message>") {
            let msg = acc[..p + 10].to_string();
            acc.drain(..p + 10);
            seen.lock().unwrap().stanzas.push(msg.clone());
            let body = msg
                .split("<body>")
                .nth(1)
                .and_then(|r| r.split('<').next())
                .unwrap_or_default();
            if drop_connection(&mut s, body).await {
                return;
            }
            if let Some(ms) = body.strip_prefix("later ").and_then(|n| n.parse().ok()) {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                s.write_all(b"<message from='bob@localhost/x' to='alice@localhost/web' type='chat' id='late'><body>late</body></message>").await.unwrap();
                continue;
            }
            if let Some(n) = msg
                .split("<body>flood ")
                .nth(1)
                .and_then(|r| r.split('<').next())
                .and_then(|n| n.parse::<usize>().ok())
            {
                let mut out = String::new();
                for i in 1..=n {
                    out.push_str(&format!("<message from='bob@localhost/x' to='alice@localhost/web' type='chat' id='f{i}'><body>m{i}</body></message>"));
                }
                s.write_all(out.as_bytes()).await.unwrap();
                continue;
            }
            let echo = msg
                .replace("to='bob@localhost'", "from='bob@localhost'")
                .replace(" xmlns='jabber:client'", "");
            s.write_all(echo.as_bytes()).await.unwrap();
        }
        if acc.contains("</stream:stream>") {
            seen.lock().unwrap().closed_cleanly = true;
            let _ = s.write_all(b"</stream:stream>").await;
            let _ = s.shutdown().await;
            return;
        }
    }
}

/// A server on 127.0.0.1:0 that requires STARTTLS with `tls`.
pub async fn scripted_server(
    tls: Arc<rustls::ServerConfig>,
) -> (std::net::SocketAddr, Arc<std::sync::Mutex<Seen>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Seen::default()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let tls = tls.clone();
            let seen = seen2.clone();
            tokio::spawn(async move {
                let mut acc = String::new();
                let h = read_header(&mut s, &mut acc).await;
                seen.lock().unwrap().headers.push(h);
                s.write_all(format!("{}<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>", header("s1")).as_bytes()).await.unwrap();
                read_until(
                    &mut s,
                    &mut acc,
                    "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
                )
                .await;
                s.write_all(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                    .await
                    .unwrap();
                let Ok(tls) = tokio_rustls::TlsAcceptor::from(tls).accept(s).await else {
                    return;
                };
                after_tls(tls, seen).await;
            });
        }
    });
    (addr, seen)
}
