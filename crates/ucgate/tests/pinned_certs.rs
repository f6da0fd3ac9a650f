//! A certificate listed in `backend_ca_file` (likewise `ca_file` of an XMPP
//! domain and `core_ca_file`) is trusted as itself, even when it is a
//! self-signed `CA:TRUE` certificate as `openssl req -x509` and Prosody's
//! generator make (issue 15 item 3). Its names and validity still count,
//! and a different pinned certificate does not vouch for it.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::tls::{tls_echo, TempDir};
use common::*;
use futures_util::SinkExt;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio_tungstenite::tungstenite::Message;

/// A self-signed certificate with `CA:TRUE` for `names`: its PEM file in
/// `dir/<stem>.crt` and a TLS server config presenting it.
fn ca_true_self_signed(dir: &Path, stem: &str, names: &[&str]) -> Arc<rustls::ServerConfig> {
    ca_true_self_signed_with(dir, stem, names, |_| {})
}

/// The same, with `edit` applied to the parameters (e.g. its validity).
fn ca_true_self_signed_with(
    dir: &Path,
    stem: &str,
    names: &[&str],
    edit: impl FnOnce(&mut CertificateParams),
) -> Arc<rustls::ServerConfig> {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0]);
    edit(&mut params);
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join(format!("{stem}.crt")), cert.pem()).unwrap();
    let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], der)
        .unwrap(),
    )
}

fn route(backend: std::net::SocketAddr, ca: &Path, name: &str) -> String {
    format!(
        "[[route]]\npath = \"/echo\"\nkind = \"tcp\"\nbackend = \"tls://localhost:{}\"\nbackend_server_name = \"{name}\"\nbackend_ca_file = \"{}\"\n",
        backend.port(),
        ca.display()
    )
}

#[tokio::test]
async fn a_pinned_ca_true_self_signed_certificate_is_trusted_as_itself() {
    let dir = TempDir::new("pinned");
    let server = ca_true_self_signed(dir.path(), "prosody", &["localhost"]);
    let backend = tls_echo(server).await;
    let gw = TestGateway::start(&route(
        backend,
        &dir.path().join("prosody.crt"),
        "localhost",
    ))
    .await;
    let (mut ws, _) = ws_connect(&gw.ws_url("/echo"), None, None)
        .await
        .expect("the upgrade: the backend's TLS verified");
    ws.send(Message::Binary(b"pinned".to_vec().into()))
        .await
        .unwrap();
    assert_eq!(read_ws_bytes(&mut ws, 6).await, b"pinned");
}

#[tokio::test]
async fn another_pinned_certificate_or_another_name_is_refused() {
    let dir = TempDir::new("pinned-no");
    let server = ca_true_self_signed(dir.path(), "server", &["localhost"]);
    let _other = ca_true_self_signed(dir.path(), "other", &["localhost"]);
    let backend = tls_echo(server).await;
    // a different self-signed certificate pinned: not a root for this one
    let gw = TestGateway::start(&route(backend, &dir.path().join("other.crt"), "localhost")).await;
    let err = ws_connect(&gw.ws_url("/echo"), None, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("502"), "{err}");
    // the right certificate, but the gateway expects another name
    let gw = TestGateway::start(&route(
        backend,
        &dir.path().join("server.crt"),
        "chat.example.org",
    ))
    .await;
    let err = ws_connect(&gw.ws_url("/echo"), None, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("502"), "{err}");
    assert!(
        gw.metric(
            "ucgate_errors_total",
            &[("route", "/echo"), ("side", "backend"), ("kind", "tls")]
        )
        .await
            >= 1.0
    );
}

#[tokio::test]
async fn an_expired_pinned_certificate_is_refused() {
    let dir = TempDir::new("pinned-expired");
    let server = ca_true_self_signed_with(dir.path(), "old", &["localhost"], |p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    let backend = tls_echo(server).await;
    let gw = TestGateway::start(&route(backend, &dir.path().join("old.crt"), "localhost")).await;
    let err = ws_connect(&gw.ws_url("/echo"), None, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("502"), "{err}");
}
