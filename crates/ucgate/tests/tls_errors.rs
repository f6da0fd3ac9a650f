//! A failed TLS handshake toward a backend or an XMPP server is logged in
//! words (issue 15 item 3): the server and its address, the name expected,
//! the names its certificate carries, and the configuration key to change,
//! with the TLS library's error kept in the `error` field. The real binary,
//! JSON logs.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::process::{self, wait_ready, KillOnDrop, Spawned, Stderr};
use common::tls::*;
use common::xmpp_server::scripted_server;
use common::*;
use futures_util::SinkExt;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio_tungstenite::tungstenite::Message;

const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";

fn start(dir: &Path, body: &str) -> (Spawned, KillOnDrop) {
    let cfg =
        format!("[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n{body}");
    let s = process::spawn(&cfg, dir, &[], &[], Stderr::Collect);
    let guard = KillOnDrop(s.child.id());
    (s, guard)
}

/// The first JSON log line whose message contains `needle`, parsed.
async fn log_line(s: &Spawned, needle: &str) -> serde_json::Value {
    for _ in 0..400 {
        let found = s
            .log
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains(needle))
            .cloned();
        if let Some(l) = found {
            return serde_json::from_str(&l).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "no log line with {needle:?} in:\n{}",
        s.log.lock().unwrap().join("\n")
    );
}

fn xmpp_domain(server: std::net::SocketAddr, ca: &Path, server_name: &str) -> String {
    format!(
        "[[route]]\npath = \"/xmpp-websocket\"\nkind = \"xmpp-websocket\"\n\
         [xmpp.domains.\"localhost\"]\naddress = \"{server}\"\ntls = \"starttls\"\nca_file = \"{}\"\nserver_name = \"{server_name}\"\n",
        ca.display()
    )
}

/// Opens an XMPP WebSocket session for `localhost`: the gateway dials the
/// server.
async fn open_xmpp(s: &Spawned) -> Ws {
    let (mut ws, _) = ws_connect(
        &format!("ws://{}/xmpp-websocket", s.main),
        None,
        Some("xmpp"),
    )
    .await
    .unwrap();
    ws.send(Message::Text(
        format!("<open xmlns='{FRAMING}' to='localhost' version='1.0'/>").into(),
    ))
    .await
    .unwrap();
    ws
}

fn field<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
    v.get(k)
        .or_else(|| v.get("fields").and_then(|f| f.get(k)))
        .and_then(|x| x.as_str())
        .unwrap_or_else(|| panic!("no `{k}` in {v}"))
}

#[tokio::test]
async fn an_xmpp_server_with_a_certificate_for_another_name() {
    let dir = TempDir::new("tlserr-name");
    let (ca, server_tls) = ca_and_server(dir.path(), &["localhost", "xmpp.internal"]);
    let (server, _) = scripted_server(server_tls).await;
    let (s, _guard) = start(dir.path(), &xmpp_domain(server, &ca, "chat.example.org"));
    wait_ready(s.admin).await;
    let _ws = open_xmpp(&s).await;
    let line = log_line(&s, "was expected").await;
    assert_eq!(
        field(&line, "message"),
        format!(
            "the XMPP server for domain `localhost` at {server} presented a certificate for `localhost`, `xmpp.internal` but `chat.example.org` was expected; set `xmpp.domains.\"localhost\".server_name` to a name in its certificate, or give the server a certificate for `chat.example.org`"
        )
    );
    assert_eq!(field(&line, "level"), "WARN");
    assert!(
        field(&line, "error").contains("certificate not valid for name \"chat.example.org\""),
        "{line}"
    );
}

#[tokio::test]
async fn an_xmpp_server_with_a_certificate_from_an_unknown_ca() {
    let dir = TempDir::new("tlserr-ca");
    let (_, server_tls) = ca_and_server(dir.path(), &["localhost"]);
    // another CA, of another name, is the one configured
    let ca = dir.path().join("other-ca.crt");
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "another CA");
    let other = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(&ca, other.pem()).unwrap();
    let (server, _) = scripted_server(server_tls).await;
    let (s, _guard) = start(dir.path(), &xmpp_domain(server, &ca, "localhost"));
    wait_ready(s.admin).await;
    let _ws = open_xmpp(&s).await;
    let line = log_line(&s, "no trusted CA vouches for").await;
    let msg = field(&line, "message");
    assert!(
        msg.starts_with(&format!(
            "the XMPP server for domain `localhost` at {server} presented a certificate for `localhost` issued by `CN=ucgate test CA`, which no trusted CA vouches for (expected: a certificate for `localhost` from a CA in `xmpp.domains.\"localhost\".ca_file` (now `{}`)); add its CA",
            ca.display()
        )),
        "{msg}"
    );
    assert!(field(&line, "error").contains("UnknownIssuer"), "{line}");
}

/// A TLS echo server presenting a certificate for `localhost` that expired
/// on 2021-01-01, signed by a CA written to `dir/ca.crt`.
async fn expired_backend(dir: &Path) -> std::net::SocketAddr {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ucgate test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let leaf = params.signed_by(&key, &ca).unwrap();
    let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let cfg = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], der)
        .unwrap(),
    );
    tls_echo(cfg).await
}

#[tokio::test]
async fn a_backend_with_an_expired_certificate() {
    let dir = TempDir::new("tlserr-expired");
    let backend = expired_backend(dir.path()).await;
    let route = format!(
        "[[route]]\npath = \"/echo\"\nkind = \"tcp\"\nbackend = \"tls://{backend}\"\nbackend_server_name = \"localhost\"\nbackend_ca_file = \"{}\"\n",
        dir.path().join("ca.crt").display()
    );
    let (s, _guard) = start(dir.path(), &route);
    wait_ready(s.admin).await;
    let err = ws_connect(&format!("ws://{}/echo", s.main), None, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("502"), "{err}");
    let line = log_line(&s, "that expired on").await;
    let msg = field(&line, "message");
    assert!(
        msg.starts_with(&format!(
            "the backend of route `/echo` at {backend} presented a certificate for `localhost` that expired on 2021-01-01 00:00:00 UTC (it is now "
        )),
        "{msg}"
    );
    assert!(
        msg.ends_with("); renew the certificate on that server; refusing the upgrade"),
        "{msg}"
    );
    assert_eq!(field(&line, "route"), "/echo");
    assert!(
        field(&line, "error").contains("certificate expired"),
        "{line}"
    );
}

/// A SIP core presenting a self-signed `CA:TRUE` certificate (what
/// `openssl req -x509` makes) that is not in `core_ca_file`.
#[tokio::test]
async fn a_sip_core_with_an_unpinned_self_signed_ca_certificate() {
    let dir = TempDir::new("tlserr-sip");
    write_cert(dir.path(), "gw", &["localhost"]);
    let (ca, _) = ca_and_server(dir.path(), &["localhost"]);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let cert = params.self_signed(&key).unwrap();
    let core_tls = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap(),
    );
    let core = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let core_addr = core.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = core.accept().await {
            let acc = tokio_rustls::TlsAcceptor::from(core_tls.clone());
            tokio::spawn(async move {
                let _ = acc.accept(tcp).await;
            });
        }
    });
    let route = format!(
        "[[route]]\npath = \"/sip\"\nkind = \"sip-websocket\"\ncore = \"sip:{core_addr};transport=tls\"\ncore_server_name = \"localhost\"\ncore_ca_file = \"{}\"\n\n[sip]\nflow_token_key = \"{}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        ca.display(),
        common::sip::KEY,
        dir.path().join("gw.crt").display(),
        dir.path().join("gw.key").display()
    );
    let (s, _guard) = start(dir.path(), &route);
    wait_ready(s.admin).await;
    let (mut ws, _) = ws_connect(&format!("ws://{}/sip", s.main), None, Some("sip"))
        .await
        .unwrap();
    ws.send(Message::Text(common::sip::REGISTER.to_string().into()))
        .await
        .unwrap();
    let line = log_line(&s, "CA:TRUE").await;
    let msg = field(&line, "message");
    assert_eq!(
        msg,
        format!("the SIP core of route `/sip` at {core_addr} presented a certificate for `localhost` that is a CA certificate (CA:TRUE), which is not accepted as a server's own certificate unless pinned; put this exact certificate into `core_ca_file` of route `/sip` to trust it as itself, or give the server a certificate signed by that CA")
    );
    assert!(
        field(&line, "error").contains("CaUsedAsEndEntity"),
        "{line}"
    );
    assert_eq!(field(&line, "expected"), "localhost");
}
