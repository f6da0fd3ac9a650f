//! The ACME state directory: per CA directory URL, a folder with the
//! account credentials and the current certificate and key, so that a
//! restart serves the stored certificate instead of ordering again, and a
//! change of CA (staging → production) starts afresh.
//!
//! ```text
//! <state_dir>/<host>_<path>/account.json   (0600)
//!                          /certificate.pem
//!                          /certificate.key (0600)
//! ```

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use ucgate_proto::acme::Validity;
use x509_parser::extensions::GeneralName;

pub(super) struct StateFiles {
    dir: PathBuf,
}

/// What the certificate says about itself.
pub(super) struct CertInfo {
    pub(super) names: Vec<String>,
    pub(super) validity: Validity,
    pub(super) issuer: String,
}

impl StateFiles {
    pub(super) fn new(state_dir: &Path, directory_url: &str) -> Self {
        let key: String = directory_url
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        StateFiles {
            dir: state_dir.join(key),
        }
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(super) fn account(&self) -> PathBuf {
        self.dir.join("account.json")
    }

    pub(super) fn cert(&self) -> PathBuf {
        self.dir.join("certificate.pem")
    }

    pub(super) fn key(&self) -> PathBuf {
        self.dir.join("certificate.key")
    }

    /// Creates the folder (0700) if needed.
    pub(super) fn ensure_dir(&self) -> Result<(), String> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| {
                format!(
                    "cannot create the ACME state directory `{}`: {e} (it must be writable by the user ucgate runs as; see server.acme.state_dir)",
                    self.dir.display()
                )
            })
    }

    /// Writes `data` to `path` through a temporary file and a rename, so a
    /// crash never leaves half a key; `secret` files are 0600.
    pub(super) fn write(&self, path: &Path, data: &[u8], secret: bool) -> Result<(), String> {
        self.ensure_dir()?;
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(if secret { 0o600 } else { 0o644 })
                .open(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| format!("cannot write `{}`: {e}", path.display()))
    }
}

/// Reads the names, validity and issuer of the first certificate of a PEM chain.
pub(super) fn cert_info_pem(pem: &[u8]) -> Result<CertInfo, String> {
    let der = CertificateDer::pem_slice_iter(pem)
        .next()
        .ok_or("no certificate in the PEM text")?
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    cert_info(&der)
}

/// Reads the names, validity and issuer of a DER certificate.
pub(super) fn cert_info(der: &[u8]) -> Result<CertInfo, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("the certificate cannot be parsed: {e}"))?;
    let v = cert.validity();
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    Ok(CertInfo {
        names,
        validity: Validity {
            not_before: v.not_before.timestamp(),
            not_after: v.not_after.timestamp(),
        },
        issuer: cert.issuer().to_string(),
    })
}
