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

/// A Unix time as a date for the log (`Dec  7 13:22:42 2031 +00:00`).
pub(super) fn date(unix: i64) -> String {
    x509_parser::time::ASN1Time::from_timestamp(unix)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_folder_per_directory_url() {
        let f = StateFiles::new(
            Path::new("/var/lib/ucgate/acme"),
            "https://acme-v02.api.letsencrypt.org/directory",
        );
        assert_eq!(
            f.cert(),
            Path::new(
                "/var/lib/ucgate/acme/acme-v02.api.letsencrypt.org_directory/certificate.pem"
            )
        );
        let g = StateFiles::new(Path::new("/s"), "https://127.0.0.1:14000/dir/");
        assert_eq!(
            g.account(),
            Path::new("/s/127.0.0.1_14000_dir/account.json")
        );
    }

    #[test]
    fn names_validity_and_dates() {
        let mut p =
            rcgen::CertificateParams::new(vec!["A.example".into(), "b.example".into()]).unwrap();
        p.not_before = rcgen::date_time_ymd(2030, 1, 2);
        p.not_after = rcgen::date_time_ymd(2030, 4, 2);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        let info = cert_info_pem(cert.pem().as_bytes()).unwrap();
        assert_eq!(info.names, ["a.example", "b.example"]);
        assert_eq!(info.validity.not_before, 1_893_542_400);
        assert_eq!(
            info.validity.not_after - info.validity.not_before,
            90 * 86_400
        );
        assert_eq!(date(0), "Jan  1 00:00:00 1970 +00:00");
        assert!(cert_info_pem(b"not a certificate").is_err());
    }

    #[test]
    fn secret_files_are_0600_and_written_whole() {
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::temp_dir().join(format!("ucgate-acme-files-{}", std::process::id()));
        let f = StateFiles::new(&base, "https://ca.example/dir");
        f.write(&f.key(), b"secret", true).unwrap();
        f.write(&f.cert(), b"public", false).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(f.dir()), 0o700);
        assert_eq!(mode(&f.key()), 0o600);
        assert_eq!(std::fs::read(f.key()).unwrap(), b"secret");
        assert!(!f.key().with_extension("tmp").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
