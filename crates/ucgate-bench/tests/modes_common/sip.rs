//! A minimal SIP core on UDP for the tests: a registrar (remembers each
//! AOR's Contact and Path) and a proxy that answers every MESSAGE with 200
//! and sends it on to the registered contact through the Path (so it comes
//! back over the client's WebSocket). Optional digest authentication
//! (password `secret`) and faults on the forwarded MESSAGEs.

use std::collections::HashMap;
use std::net::SocketAddr;

use md5::{Digest, Md5};
use tokio::net::UdpSocket;
use ucgate_proto::sip::message::{parse, Message, SipLimits};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SFault {
    None,
    /// REGISTER needs digest auth (401), MESSAGE proxy auth (407).
    Challenge,
    /// The nth MESSAGE (per core) is not forwarded.
    Drop(usize),
    /// The nth MESSAGE is forwarded with a changed body.
    Corrupt(usize),
    /// The nth MESSAGE is forwarded twice.
    Duplicate(usize),
    /// The nth MESSAGE is forwarded after the next one.
    Swap(usize),
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn md5_hex(s: &str) -> String {
    hex(&Md5::digest(s.as_bytes()))
}

fn params(v: &str) -> HashMap<String, String> {
    let v = v.trim().trim_start_matches("Digest").trim();
    let mut out = HashMap::new();
    for part in v.split(", ") {
        if let Some((k, val)) = part.split_once('=') {
            out.insert(
                k.trim().to_string(),
                val.trim().trim_matches('"').to_string(),
            );
        }
    }
    out
}

/// Checks a digest response computed with password `secret`.
fn digest_ok(m: &Message<'_>, header: &str, method: &str) -> bool {
    let Some(v) = m.header(header) else {
        return false;
    };
    let p = params(&String::from_utf8_lossy(v));
    let get = |k: &str| p.get(k).cloned().unwrap_or_default();
    let ha1 = md5_hex(&format!("{}:{}:secret", get("username"), get("realm")));
    let ha2 = md5_hex(&format!("{method}:{}", get("uri")));
    let expect = if p.contains_key("qop") {
        md5_hex(&format!(
            "{ha1}:{}:{}:{}:auth:{ha2}",
            get("nonce"),
            get("nc"),
            get("cnonce")
        ))
    } else {
        md5_hex(&format!("{ha1}:{}:{ha2}", get("nonce")))
    };
    get("response") == expect
}

fn h(m: &Message<'_>, name: &str) -> String {
    m.header(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

fn response(m: &Message<'_>, status: &str, extra: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for hd in m.headers() {
        if hd.canonical.map(|k| k.name()) == Some("Via") {
            out.push_str(&format!(
                "Via: {}\r\n",
                String::from_utf8_lossy(m.slice(hd.value.clone()))
            ));
        }
    }
    let to = h(m, "To");
    let to = if to.contains("tag=") {
        to
    } else {
        format!("{to};tag=core")
    };
    out.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
        h(m, "From"),
        h(m, "Call-ID"),
        h(m, "CSeq")
    ));
    out
}

fn uri_in_brackets(v: &str) -> String {
    v.split('<')
        .nth(1)
        .and_then(|r| r.split('>').next())
        .unwrap_or("")
        .to_string()
}

/// Starts the core; returns its UDP address.
pub async fn sip_core(fault: SFault) -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut bindings: HashMap<String, (String, String)> = HashMap::new();
        let mut n = 0usize;
        let mut held: Option<String> = None;
        let mut buf = vec![0u8; 65_536];
        loop {
            let Ok((len, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let data = buf[..len].to_vec();
            let Ok(m) = parse(&data, &SipLimits::default()) else {
                continue; // keep-alives
            };
            let Some(method) = m.method() else {
                continue; // responses (the clients' 200s)
            };
            let aor = uri_in_brackets(&h(&m, "To"));
            let reply = match method {
                "REGISTER" => {
                    if fault == SFault::Challenge && !digest_ok(&m, "Authorization", "REGISTER") {
                        if m.header("Authorization").is_some() {
                            response(&m, "403 Forbidden", "")
                        } else {
                            response(&m, "401 Unauthorized", "WWW-Authenticate: Digest realm=\"localhost\", nonce=\"n0nce\", qop=\"auth\", algorithm=MD5\r\n")
                        }
                    } else {
                        let contact = h(&m, "Contact");
                        bindings.insert(
                            aor,
                            (uri_in_brackets(&contact), uri_in_brackets(&h(&m, "Path"))),
                        );
                        response(&m, "200 OK", &format!("Contact: {contact}\r\n"))
                    }
                }
                "MESSAGE" => {
                    if fault == SFault::Challenge
                        && !digest_ok(&m, "Proxy-Authorization", "MESSAGE")
                    {
                        let r = response(&m, "407 Proxy Authentication Required", "Proxy-Authenticate: Digest realm=\"localhost\", nonce=\"n0nce2\", algorithm=MD5\r\n");
                        let _ = sock.send_to(r.as_bytes(), from).await;
                        continue;
                    }
                    n += 1;
                    let ok = response(&m, "200 OK", "");
                    let _ = sock.send_to(ok.as_bytes(), from).await;
                    let Some((contact, path)) = bindings.get(&aor) else {
                        continue;
                    };
                    let mut body = String::from_utf8_lossy(m.body()).into_owned();
                    if fault == SFault::Corrupt(n) {
                        body.pop();
                        body.push('#');
                    }
                    let fwd = format!(
                        "MESSAGE {contact} SIP/2.0\r\nVia: SIP/2.0/UDP {addr};branch=z9hG4bKfwd{n}\r\nRoute: <{path}>\r\nMax-Forwards: 69\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                        h(&m, "From"),
                        h(&m, "To"),
                        h(&m, "Call-ID"),
                        h(&m, "CSeq"),
                        body.len()
                    );
                    match fault {
                        SFault::Drop(k) if k == n => continue,
                        SFault::Swap(k) if k == n => {
                            held = Some(fwd);
                            continue;
                        }
                        SFault::Duplicate(k) if k == n => {
                            let _ = sock.send_to(fwd.as_bytes(), from).await;
                        }
                        _ => {}
                    }
                    let _ = sock.send_to(fwd.as_bytes(), from).await;
                    if let Some(h) = held.take() {
                        let _ = sock.send_to(h.as_bytes(), from).await;
                    }
                    continue;
                }
                _ => response(&m, "200 OK", ""),
            };
            let _ = sock.send_to(reply.as_bytes(), from).await;
        }
    });
    addr
}
