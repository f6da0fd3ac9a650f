//! A failed TLS handshake toward a backend, an XMPP server or a SIP core,
//! in words an operator understands (`ucgate_proto::certs::explain`): the
//! rustls error is mapped onto a [`Failure`] here, the certificate the
//! server presented is summarised with x509-parser, and the library's own
//! error is kept as a detail for the log's `error` field.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::{AlertDescription, CertificateError, Error, InvalidMessage};
use ucgate_proto::certs::{Failure, Peer, Presented, Validity};
use x509_parser::extensions::GeneralName;

/// An explained handshake failure.
#[derive(Debug, Clone)]
pub struct Explained {
    /// The sentence for the operator.
    pub message: String,
    /// The library's error (the log's `error` field).
    pub detail: String,
}

impl std::fmt::Display for Explained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The rustls error inside an I/O error from `tokio_rustls`, if any.
pub(crate) fn rustls_error(e: &std::io::Error) -> Option<&Error> {
    e.get_ref()?.downcast_ref::<Error>()
}

/// Seconds since the epoch, now.
pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Explains `err`, the failure of a TLS handshake with `peer` at `addr`
/// which was to present a certificate for `expected`; `seen`: the
/// certificate it presented, when the verifier kept it.
pub(crate) fn explain(
    peer: Peer<'_>,
    addr: &str,
    expected: &str,
    ca_file: Option<&Path>,
    err: &std::io::Error,
    seen: Option<&[u8]>,
) -> Explained {
    let mut failure = rustls_error(err).map(failure).unwrap_or(Failure::Other);
    let seen = seen.and_then(presented);
    if let (Failure::NotValidForName { presented }, Some(p)) = (&mut failure, &seen) {
        presented.clone_from(&p.names);
    }
    let ca = ca_file.map(|p| p.display().to_string());
    Explained {
        message: ucgate_proto::certs::explain(
            peer,
            addr,
            expected,
            ca.as_deref(),
            &failure,
            seen.as_ref(),
            now_secs(),
        ),
        detail: err.to_string(),
    }
}

/// What an operator needs to know of a rustls error.
pub(crate) fn failure(e: &Error) -> Failure {
    use CertificateError as C;
    match e {
        Error::InvalidCertificate(c) => match c {
            C::NotValidForName => Failure::NotValidForName { presented: vec![] },
            C::NotValidForNameContext { presented, .. } => Failure::NotValidForName {
                presented: presented.iter().map(|n| unwrap_name(n)).collect(),
            },
            C::UnknownIssuer => Failure::UnknownIssuer,
            C::Expired => Failure::Expired { not_after: None },
            C::ExpiredContext { not_after, .. } => Failure::Expired {
                not_after: Some(not_after.as_secs() as i64),
            },
            C::NotValidYet => Failure::NotValidYet { not_before: None },
            C::NotValidYetContext { not_before, .. } => Failure::NotValidYet {
                not_before: Some(not_before.as_secs() as i64),
            },
            C::BadSignature => Failure::BadSignature,
            #[allow(deprecated)]
            C::UnsupportedSignatureAlgorithm
            | C::UnsupportedSignatureAlgorithmContext { .. }
            | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                Failure::UnsupportedAlgorithm
            }
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => Failure::InvalidPurpose,
            C::Revoked => Failure::Revoked,
            C::BadEncoding => Failure::BadEncoding,
            C::Other(o) => match o.0.downcast_ref::<webpki::Error>() {
                Some(webpki::Error::CaUsedAsEndEntity) => Failure::CaUsedAsEndEntity,
                _ => Failure::Other,
            },
            _ => Failure::Other,
        },
        Error::AlertReceived(a) => Failure::Alert(alert_name(*a)),
        Error::PeerIncompatible(_) => Failure::NoCommonParameters,
        Error::InvalidMessage(InvalidMessage::InvalidContentType)
        | Error::InvalidMessage(InvalidMessage::UnknownProtocolVersion) => Failure::NotTls,
        _ => Failure::Other,
    }
}

/// `localhost` for webpki's `DnsName("localhost")` (and `IpAddress(…)`).
fn unwrap_name(n: &str) -> String {
    for prefix in ["DnsName(", "IpAddress(", "UriName("] {
        if let Some(inner) = n.strip_prefix(prefix).and_then(|r| r.strip_suffix(')')) {
            return inner.trim_matches('"').to_string();
        }
    }
    n.to_string()
}

/// An alert's name as in the TLS RFCs (`handshake_failure`).
fn alert_name(a: AlertDescription) -> String {
    let debug = format!("{a:?}");
    let mut out = String::with_capacity(debug.len() + 4);
    for (i, ch) in debug.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// The names, subject, issuer and validity of a DER certificate.
pub(crate) fn presented(der: &[u8]) -> Option<Presented> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(Presented {
        names: san_names(&c),
        subject: c.subject().to_string(),
        issuer: c.issuer().to_string(),
        self_signed: c.subject().as_raw() == c.issuer().as_raw(),
        validity: Some(Validity {
            not_before: c.validity().not_before.timestamp(),
            not_after: c.validity().not_after.timestamp(),
        }),
    })
}

/// The DNS names and IP addresses of a certificate's subjectAltName.
pub(crate) fn san_names(c: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = c.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_string()),
            GeneralName::IPAddress(b) => match b.len() {
                4 => <[u8; 4]>::try_from(*b)
                    .ok()
                    .map(|a| std::net::Ipv4Addr::from(a).to_string()),
                16 => <[u8; 16]>::try_from(*b)
                    .ok()
                    .map(|a| std::net::Ipv6Addr::from(a).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn rustls_errors_map_to_failures() {
        let io = |e: Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let e = io(Error::InvalidCertificate(CertificateError::UnknownIssuer));
        assert_eq!(failure(rustls_error(&e).unwrap()), Failure::UnknownIssuer);
        let ca = Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
            webpki::Error::CaUsedAsEndEntity,
        ))));
        assert_eq!(failure(&ca), Failure::CaUsedAsEndEntity);
        assert_eq!(
            failure(&Error::AlertReceived(AlertDescription::UnrecognisedName)),
            Failure::Alert("unrecognised_name".into())
        );
        assert_eq!(
            failure(&Error::AlertReceived(AlertDescription::HandshakeFailure)),
            Failure::Alert("handshake_failure".into())
        );
        assert_eq!(
            failure(&Error::InvalidMessage(InvalidMessage::InvalidContentType)),
            Failure::NotTls
        );
        assert_eq!(
            failure(&Error::InvalidCertificate(
                CertificateError::ExpiredContext {
                    time: rustls_pki_types::UnixTime::since_unix_epoch(
                        std::time::Duration::from_secs(20)
                    ),
                    not_after: rustls_pki_types::UnixTime::since_unix_epoch(
                        std::time::Duration::from_secs(10)
                    ),
                }
            )),
            Failure::Expired {
                not_after: Some(10)
            }
        );
        assert_eq!(unwrap_name("DnsName(\"a.example\")"), "a.example");
        assert_eq!(unwrap_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(unwrap_name("b.example"), "b.example");
        let plain = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "eof");
        let x = explain(
            Peer::Backend { route: "/t" },
            "127.0.0.1:1",
            "localhost",
            None,
            &plain,
            None,
        );
        assert!(
            x.message
                .starts_with("TLS with the backend of route `/t` at 127.0.0.1:1 failed"),
            "{}",
            x.message
        );
        assert_eq!(x.detail, "eof");
    }

    #[test]
    fn a_presented_certificate_is_summarised() {
        let ck = rcgen::generate_simple_self_signed(vec!["a.example".into(), "127.0.0.1".into()])
            .unwrap();
        let p = presented(ck.cert.der()).unwrap();
        assert_eq!(p.names, ["a.example", "127.0.0.1"]);
        assert!(p.self_signed);
        assert!(p.validity.is_some());
    }
}
