//! Reading the certificate, key and CA files a configuration names, and
//! saying in words what is wrong with each: missing or unreadable (and as
//! which user), not PEM, the wrong kind of PEM (a key given as the
//! certificate, a CSR, an encrypted key), a key that does not belong to its
//! certificate, a certificate out of its validity period. `check-config`,
//! `run` (before it starts anything) and the SIGHUP reload use these; the
//! decisions (which problem a file has, is a certificate expired) and
//! their wording are `ucgate_proto::certfile` and `ucgate_proto::certs`.

use std::io::ErrorKind;
use std::path::Path;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use ucgate_proto::certfile::{self, Wanted};
use ucgate_proto::certs::{utc, TimeCheck, Validity};

/// Reads `path`, saying why it cannot be.
fn read(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    std::fs::read(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => format!("`{shown}` does not exist"),
        ErrorKind::PermissionDenied => {
            let (who, name) = running_user();
            let group = name.as_deref().unwrap_or("ucgate");
            format!(
                "`{shown}` cannot be read: permission denied to {who}, which runs ucgate; let it read the file (e.g. `chgrp {group} {shown} && chmod g+r {shown}`, and `x` on its directories)"
            )
        }
        ErrorKind::IsADirectory => format!("`{shown}` is a directory, not a PEM file"),
        _ => format!("`{shown}` cannot be read: {e}"),
    })
}

/// `user `name` (uid N)` for the user this process runs as (the owner of
/// `/proc/self`), and the name when `/etc/passwd` has it.
fn running_user() -> (String, Option<String>) {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return ("the user running ucgate".into(), None);
    };
    let name = std::fs::read_to_string("/etc/passwd").ok().and_then(|p| {
        p.lines().find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)? == uid.to_string()).then(|| name.to_string())
        })
    });
    match name {
        Some(n) => (format!("user `{n}` (uid {uid})"), Some(n)),
        None => (format!("uid {uid}"), None),
    }
}

/// The certificates of a PEM file, in order; at least one.
pub(crate) fn read_certificates(
    path: &Path,
    kind: Wanted,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(path)?;
    let shown = path.display().to_string();
    if let Some(p) = certfile::inspect(&bytes, kind) {
        return Err(p.message(&shown, kind));
    }
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("`{shown}` has a damaged PEM block: {e}"))?;
    for (i, c) in certs.iter().enumerate() {
        if let Err(e) = x509_parser::parse_x509_certificate(c.as_ref()) {
            return Err(format!(
                "certificate {} of `{shown}` cannot be parsed: {e}",
                i + 1
            ));
        }
    }
    Ok(certs)
}

/// The private key of a PEM file.
pub(crate) fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read(path)?;
    let shown = path.display().to_string();
    if let Some(p) = certfile::inspect(&bytes, Wanted::Key) {
        return Err(p.message(&shown, Wanted::Key));
    }
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        format!("`{shown}` holds no private key ucgate can read (PKCS#8, PKCS#1 RSA or SEC1 EC, unencrypted): {e}")
    })
}

/// The certificate chain and key made one, checking that they belong
/// together and that ucgate can sign with the key.
pub(crate) fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_path: &Path,
    key_path: &Path,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<CertifiedKey, String> {
    let (c, k) = (cert_path.display(), key_path.display());
    CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => format!(
            "the private key in `{k}` does not belong to the certificate in `{c}` (it is another key pair); give the key the certificate was issued for"
        ),
        e => format!(
            "the private key in `{k}` cannot be used ({e}); ucgate signs with RSA (2048 bits or more), ECDSA P-256/P-384 or Ed25519 keys"
        ),
    })
}

/// The validity period of a DER certificate.
pub(crate) fn validity(cert: &CertificateDer<'_>) -> Option<Validity> {
    let (_, c) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(Validity {
        not_before: c.validity().not_before.timestamp(),
        not_after: c.validity().not_after.timestamp(),
    })
}

/// Why the listener certificate `leaf` (from `path`) cannot be served at
/// `now`: expired or not yet valid.
pub(crate) fn leaf_time_problem(
    leaf: &CertificateDer<'_>,
    path: &Path,
    now: i64,
) -> Option<String> {
    let v = validity(leaf)?;
    let p = v.problem(now)?;
    let fix = match v.at(now) {
        TimeCheck::Expired => "; renew it (or let `[server.acme]` get one)",
        _ => "",
    };
    Some(format!(
        "the certificate in `{}` cannot be served: {p}{fix}",
        path.display()
    ))
}

/// A CA bundle that can be used but will not verify anything now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaWarning(pub String);

/// Checks a CA bundle: readable, PEM, at least one certificate, each
/// usable as a trust anchor (else `Err`); `Ok(Some(_))` when no certificate
/// in it is valid at `now`, so every handshake through it will fail: a
/// warning, not an error, so that one server's expired certificate does not
/// stop the gateway's other routes.
pub(crate) fn check_ca_file(path: &Path, now: i64) -> Result<Option<CaWarning>, String> {
    let certs = read_certificates(path, Wanted::CaBundle)?;
    roots_of(path, &certs)?;
    let periods: Vec<Validity> = certs.iter().filter_map(validity).collect();
    if let Some(last) = ucgate_proto::certs::none_valid(&periods, now) {
        return Ok(Some(CaWarning(format!(
            "no certificate in `{}` is valid now (the last expired on {}): every TLS connection through it will fail; put the server's current CA (or certificate) there",
            path.display(),
            utc(last)
        ))));
    }
    Ok(None)
}

/// The certificates of `path` as trust anchors.
pub(crate) fn roots_of(
    path: &Path,
    certs: &[CertificateDer<'static>],
) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for (i, c) in certs.iter().enumerate() {
        roots.add(c.clone()).map_err(|e| {
            format!(
                "certificate {} of `{}` is not usable as a CA: {e}",
                i + 1,
                path.display()
            )
        })?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("ucgate-certcheck-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn each_kind_of_wrong_file_is_named() {
        let d = dir("kinds");
        let ck = rcgen::generate_simple_self_signed(vec!["a.example".into()]).unwrap();
        let (cert, key) = (d.join("c.pem"), d.join("k.pem"));
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
        assert_eq!(read_certificates(&cert, Wanted::Chain).unwrap().len(), 1);
        read_private_key(&key).unwrap();
        let e = read_certificates(&key, Wanted::Chain).unwrap_err();
        assert!(
            e.ends_with(
                "holds a private key, not a certificate: are the certificate and the key swapped?"
            ),
            "{e}"
        );
        let e = read_private_key(&cert).unwrap_err();
        assert!(e.contains("holds a certificate, not a private key"), "{e}");
        let der = d.join("c.der");
        std::fs::write(&der, ck.cert.der()).unwrap();
        assert!(read_certificates(&der, Wanted::Chain)
            .unwrap_err()
            .contains("binary DER form"));
        let enc = d.join("enc.pem");
        std::fs::write(
            &enc,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = read_private_key(&enc).unwrap_err();
        assert!(
            e.contains("encrypted keys are not supported: decrypt it with `openssl pkey"),
            "{e}"
        );
        let empty = d.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(read_certificates(&empty, Wanted::Chain)
            .unwrap_err()
            .ends_with("is empty"));
        assert!(read_certificates(&d.join("none.pem"), Wanted::CaBundle)
            .unwrap_err()
            .ends_with("does not exist"));
        assert!(read_certificates(&d, Wanted::Chain)
            .unwrap_err()
            .contains("is a directory"));
        let other = rcgen::generate_simple_self_signed(vec!["b.example".into()]).unwrap();
        let okey = d.join("other.key");
        std::fs::write(&okey, other.signing_key.serialize_pem()).unwrap();
        let e = certified_key(
            read_certificates(&cert, Wanted::Chain).unwrap(),
            read_private_key(&okey).unwrap(),
            &cert,
            &okey,
            &rustls::crypto::ring::default_provider(),
        )
        .err()
        .unwrap();
        assert!(e.contains("does not belong to the certificate"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn running_user_is_named() {
        let (u, _) = running_user();
        assert!(u.contains("uid "), "{u}");
    }
}
