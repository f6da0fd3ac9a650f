//! What the section readers share: time units, paths relative to the
//! configuration file, `host:port`, and the certificate settings used by
//! more than one section.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::reader::{self, Ctx};

pub(crate) const SEC: Duration = Duration::from_secs(1);
pub(super) const DAY: Duration = Duration::from_secs(86_400);

/// TLS toward a backend (always verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendTls {
    /// Name checked in the backend's certificate (default: the backend host).
    pub server_name: String,
    /// PEM CA bundle to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
}

/// `[[server.tls.certificate]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateConfig {
    /// PEM certificate chain (leaf first).
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `p` resolved against the directory of the configuration file.
pub(super) fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// `host:port` or `[ipv6]:port` (no scheme); `expected` ends every error.
pub(super) fn parse_host_port(rest: &str, expected: &str) -> Result<(String, u16), String> {
    let (host, port, bracketed) = if let Some(r) = rest.strip_prefix('[') {
        let (h, p) = r.split_once("]:").ok_or_else(|| expected.to_string())?;
        (h, p, true)
    } else {
        let (h, p) = rest.rsplit_once(':').ok_or_else(|| expected.to_string())?;
        (h, p, false)
    };
    if host.contains(':') && !bracketed {
        return Err(format!("an IPv6 address needs brackets; {expected}"));
    }
    if host.is_empty()
        || host.contains(['/', ' ', '@', '?', '#'])
        || (host.contains(':') && host.parse::<std::net::Ipv6Addr>().is_err())
    {
        return Err(expected.to_string());
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("the port must be 1 to 65535; {expected}"))?;
    Ok((host.to_string(), port))
}

/// Loads a `cert`/`key` pair of PEM files (paths resolved against `base`)
/// to check them now; errors are reported at the key of the file at fault.
pub(super) fn cert_pair(
    ctx: &mut Ctx<'_>,
    base: &Path,
    cert: reader::At<String>,
    key: reader::At<String>,
) -> Option<CertificateConfig> {
    let cp = resolve(base, &cert.value);
    let kp = resolve(base, &key.value);
    match crate::tls::load_listener_key(&cp, &kp, crate::tls_explain::now_secs()) {
        Ok(_) => Some(CertificateConfig { cert: cp, key: kp }),
        Err(e) => {
            let (span, k) = match e.which {
                crate::tls::PemFile::Cert => (cert.span, cert.key),
                crate::tls::PemFile::Key => (key.span, key.key),
            };
            ctx.error(span, &k, e.message);
            None
        }
    }
}
