//! Server certificate verification for the gateway's own TLS clients
//! (`tls://` backends, XMPP servers, SIP cores).
//!
//! The usual WebPKI path to the configured roots, plus one rule: a
//! certificate listed in the operator's `ca_file` is trusted **as itself**
//! when the server presents exactly it. That is what `openssl req -x509`
//! and Prosody's own certificate generator make: a self-signed certificate
//! with `CA:TRUE`, which WebPKI refuses as an end entity
//! (`CaUsedAsEndEntity`) even when it is the very certificate the operator
//! pinned, so every login failed although `check-config` had accepted the
//! file. OpenSSL-based peers (HAProxy's `ca-file`, Prosody, ejabberd) accept
//! such a pinned certificate. The exact match is compared byte for byte;
//! the certificate must still be valid now and name the server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use ucgate_proto::certs::{TimeCheck, Validity};

/// WebPKI, or an exact match with a certificate of `ca_file`.
#[derive(Debug)]
pub(crate) struct PinnedOrWebPki {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
    /// The last certificate refused per expected server name, so that the
    /// log can say what the server presented (`tls_explain.rs`); bounded.
    refused: Mutex<HashMap<String, CertificateDer<'static>>>,
}

const REFUSED_MAX: usize = 64;

impl PinnedOrWebPki {
    /// `pinned`: the certificates of the operator's `ca_file` (empty with
    /// the system roots: nothing is pinned then).
    pub(crate) fn new(
        roots: rustls::RootCertStore,
        pinned: Vec<CertificateDer<'static>>,
        provider: Arc<CryptoProvider>,
    ) -> Result<PinnedOrWebPki, String> {
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(PinnedOrWebPki {
            webpki,
            pinned,
            refused: Mutex::new(HashMap::new()),
        })
    }
}

/// Checks a pinned certificate's validity period and names.
fn check_pinned(
    cert: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), Error> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let validity = Validity {
        not_before: parsed.validity().not_before.timestamp(),
        not_after: parsed.validity().not_after.timestamp(),
    };
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    match validity.at(now) {
        TimeCheck::Valid => {}
        TimeCheck::NotYetValid => {
            return Err(Error::InvalidCertificate(CertificateError::NotValidYet))
        }
        TimeCheck::Expired => return Err(Error::InvalidCertificate(CertificateError::Expired)),
    }
    let ee = webpki::EndEntityCert::try_from(cert)
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    ee.verify_is_valid_for_subject_name(server_name)
        .map_err(|_| Error::InvalidCertificate(CertificateError::NotValidForName))
}

impl PinnedOrWebPki {
    /// The certificate last refused for `server_name`, if any.
    pub(crate) fn refused(&self, server_name: &str) -> Option<CertificateDer<'static>> {
        let r = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        r.get(&server_name.to_ascii_lowercase()).cloned()
    }

    fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            check_pinned(end_entity, server_name, now)?;
            return Ok(ServerCertVerified::assertion());
        }
        self.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }
}

impl ServerCertVerifier for PinnedOrWebPki {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let r = self.verify(end_entity, intermediates, server_name, ocsp_response, now);
        if r.is_err() {
            let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
            if refused.len() >= REFUSED_MAX {
                refused.clear();
            }
            refused.insert(
                server_name.to_str().to_ascii_lowercase(),
                end_entity.clone().into_owned(),
            );
        }
        r
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refused_certificates_kept_are_bounded() {
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertificateParams::new(vec!["ca.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let v = PinnedOrWebPki::new(
            roots,
            Vec::new(),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .unwrap();
        let refuse = |i: usize| {
            let name = ServerName::try_from(format!("S{i}.test")).unwrap();
            let bad = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, i as u8]);
            assert!(v
                .verify_server_cert(&bad, &[], &name, &[], UnixTime::now())
                .is_err());
        };
        for i in 0..REFUSED_MAX {
            refuse(i);
        }
        // by name, case-insensitively, up to the bound
        assert_eq!(v.refused("s0.TEST").unwrap().as_ref()[4], 0);
        assert_eq!(v.refused.lock().unwrap().len(), REFUSED_MAX);
        // one more: the map is emptied rather than grown
        refuse(REFUSED_MAX);
        assert_eq!(v.refused.lock().unwrap().len(), 1);
        assert!(v.refused("s0.test").is_none());
        assert!(v.refused(&format!("s{REFUSED_MAX}.test")).is_some());
    }
}
