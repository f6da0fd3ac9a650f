//! The listener's certificate choice with `[server.acme]` (tls.rs): the ACME
//! certificate for its names, static certificates for the others, the
//! TLS-ALPN-01 challenge certificate (RFC 8737) only for a ClientHello that
//! offers `acme-tls/1` alone, and a live swap. In-memory handshakes.

mod common;

use std::sync::Arc;

use common::tls::*;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::sign::CertifiedKey;
use ucgate::tls::{load_certified_key, server_config, CertStore};

fn key(dir: &TempDir, stem: &str, names: &[&str]) -> (CertificateDer<'static>, CertifiedKey) {
    let der = write_cert(dir.path(), stem, names);
    let k = load_certified_key(
        &dir.path().join(format!("{stem}.crt")),
        &dir.path().join(format!("{stem}.key")),
    )
    .unwrap();
    (der, k)
}

/// Handshakes with `sni` offering `alpn`; the certificate presented and
/// the protocol chosen, or the error.
async fn hello(
    store: &Arc<CertStore>,
    sni: &str,
    alpn: &[&[u8]],
) -> Result<(Vec<u8>, Option<Vec<u8>>), String> {
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config(Arc::clone(store), true).unwrap());
    let (cfg, rec) = recording_client(alpn);
    let (c, s) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(async move { acceptor.accept(s).await.map(|_| ()) });
    let name = ServerName::try_from(sni.to_string()).unwrap();
    let client = tokio_rustls::TlsConnector::from(cfg).connect(name, c).await;
    let _ = server.await;
    let tls = client.map_err(|e| e.to_string())?;
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let der = rec.seen.lock().unwrap().clone().expect("a certificate");
    Ok((der.to_vec(), alpn))
}

const H1: &[&[u8]] = &[b"http/1.1"];
const VALIDATION: &[&[u8]] = &[b"acme-tls/1"];

#[tokio::test]
async fn acme_certificate_for_its_names_static_for_the_others() {
    let dir = TempDir::new("acme-resolver");
    let (static_der, _) = key(&dir, "static", &["static.test"]);
    let (acme_der, acme_key) = key(&dir, "acme", &["a.test"]);
    let store = CertStore::load_with_acme(vec![(
        dir.path().join("static.crt"),
        dir.path().join("static.key"),
    )])
    .unwrap();
    // Before the ACME certificate arrives, the static one answers.
    assert_eq!(
        hello(&store, "a.test", H1).await.unwrap().0,
        static_der.to_vec()
    );
    store.set_acme(vec!["A.test".into()], acme_key);
    assert_eq!(
        hello(&store, "a.test", H1).await.unwrap().0,
        acme_der.to_vec()
    );
    assert_eq!(
        hello(&store, "static.test", H1).await.unwrap().0,
        static_der.to_vec()
    );
    assert_eq!(
        hello(&store, "other.test", H1).await.unwrap().0,
        static_der.to_vec()
    );
    // A renewal is swapped in for the next handshake.
    let (renewed_der, renewed_key) = key(&dir, "renewed", &["a.test"]);
    store.set_acme(vec!["a.test".into()], renewed_key);
    assert_eq!(
        hello(&store, "a.test", H1).await.unwrap().0,
        renewed_der.to_vec()
    );
}

#[tokio::test]
async fn without_static_certificates_the_acme_one_is_the_default() {
    let dir = TempDir::new("acme-only");
    let store = CertStore::load_with_acme(Vec::new()).unwrap();
    // No certificate at all yet: the handshake fails, nothing panics.
    assert!(hello(&store, "a.test", H1).await.is_err());
    let (acme_der, acme_key) = key(&dir, "acme", &["a.test"]);
    store.set_acme(vec!["a.test".into()], acme_key);
    assert_eq!(
        hello(&store, "other.test", H1).await.unwrap().0,
        acme_der.to_vec()
    );
    // Without ACME, an empty list is still refused.
    assert!(CertStore::load(Vec::new()).is_err());
}

#[tokio::test]
async fn challenge_certificate_only_for_a_validation_hello() {
    let dir = TempDir::new("acme-challenge");
    let (acme_der, acme_key) = key(&dir, "acme", &["a.test"]);
    let (challenge_der, challenge_key) = key(&dir, "challenge", &["a.test"]);
    let store = CertStore::load_with_acme(Vec::new()).unwrap();
    store.set_acme(vec!["a.test".into()], acme_key);
    // No challenge pending: a validation handshake fails.
    assert!(hello(&store, "a.test", VALIDATION).await.is_err());
    store.set_challenge("A.TEST", challenge_key);
    let (der, alpn) = hello(&store, "a.test", VALIDATION).await.unwrap();
    assert_eq!(der, challenge_der.to_vec());
    assert_eq!(alpn.as_deref(), Some(&b"acme-tls/1"[..]));
    // Another name, or a browser-like ALPN list, never sees it.
    assert!(hello(&store, "b.test", VALIDATION).await.is_err());
    let (der, alpn) = hello(&store, "a.test", &[b"h2", b"acme-tls/1"])
        .await
        .unwrap();
    assert_eq!(der, acme_der.to_vec());
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    store.clear_challenges();
    assert!(hello(&store, "a.test", VALIDATION).await.is_err());
}
