//! TLS with rustls (ring provider): the listener's certificates (several,
//! chosen by SNI, reloadable on SIGHUP) and client configurations for TLS to
//! backends (always verified).
//!
//! Certificate selection: for the client's SNI name, the first configured
//! certificate that is valid for that name (checked with webpki, wildcards
//! included) is used; without SNI, or when none matches, the first
//! certificate is the default. Reload swaps the whole set atomically under a
//! `RwLock`; handshakes in progress keep the `Arc` they already hold, so
//! nothing is dropped. A reload that fails (unreadable file, key not matching
//! the certificate) keeps the old set and is logged and counted.
//!
//! With `[server.acme]`, the store also holds the ACME certificate, which
//! wins for its own names (and is the default when there is no static
//! certificate), and the TLS-ALPN-01 challenge certificates (RFC 8737),
//! answered only to a ClientHello that offers `acme-tls/1` alone. Both are
//! swapped in the same way as a reload.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, ServerName};
use ucgate_proto::acme::{is_validation_hello, ACME_TLS_ALPN};

/// The crypto provider used everywhere (ring: smaller build than aws-lc-rs,
/// see docs/architecture.md).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Which file of a pair was at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemFile {
    /// The certificate chain.
    Cert,
    /// The private key.
    Key,
}

/// A certificate/key loading problem.
#[derive(Debug, Clone)]
pub struct PemError {
    /// Which file.
    pub which: PemFile,
    /// What is wrong.
    pub message: String,
}

/// Loads a PEM certificate chain and private key and checks they match
/// (no time check: see [`load_listener_key`]).
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, PemError> {
    let cert_err = |message| PemError {
        which: PemFile::Cert,
        message,
    };
    let key_err = |message| PemError {
        which: PemFile::Key,
        message,
    };
    let chain = crate::certcheck::read_certificates(cert, ucgate_proto::certfile::Wanted::Chain)
        .map_err(cert_err)?;
    webpki::EndEntityCert::try_from(&chain[0]).map_err(|e| {
        cert_err(format!(
            "the first certificate in `{}` cannot be parsed: {e}",
            cert.display()
        ))
    })?;
    let pk = crate::certcheck::read_private_key(key).map_err(key_err)?;
    crate::certcheck::certified_key(chain, pk, cert, key, &provider()).map_err(key_err)
}

/// [`load_certified_key`], refusing a certificate that is expired or not
/// yet valid at `now` (seconds since the epoch): the listener's
/// certificates, at start, in `check-config` and on reload.
pub fn load_listener_key(cert: &Path, key: &Path, now: i64) -> Result<CertifiedKey, PemError> {
    let k = load_certified_key(cert, key)?;
    match crate::certcheck::leaf_time_problem(&k.cert[0], cert, now) {
        Some(message) => Err(PemError {
            which: PemFile::Cert,
            message,
        }),
        None => Ok(k),
    }
}

/// Loads a PEM CA bundle into a root store.
pub fn load_ca_file(path: &Path) -> Result<rustls::RootCertStore, String> {
    let certs =
        crate::certcheck::read_certificates(path, ucgate_proto::certfile::Wanted::CaBundle)?;
    crate::certcheck::roots_of(path, &certs)
}

/// The current set of server certificates.
struct CertSet {
    keys: Vec<Arc<CertifiedKey>>,
    /// SNI name → index into `keys`; bounded, cleared on reload.
    cache: Mutex<HashMap<String, usize>>,
}

const SNI_CACHE_MAX: usize = 4096;

impl CertSet {
    fn pick(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let Some(sni) = sni else {
            return self.keys.first().cloned();
        };
        let sni = sni.to_ascii_lowercase();
        if let Some(i) = self.cache.lock().ok().and_then(|c| c.get(&sni).copied()) {
            return self.keys.get(i).cloned();
        }
        let name = ServerName::try_from(sni.as_str()).ok();
        let found = name.and_then(|name| {
            self.keys.iter().position(|k| {
                webpki::EndEntityCert::try_from(&k.cert[0])
                    .map(|ee| ee.verify_is_valid_for_subject_name(&name).is_ok())
                    .unwrap_or(false)
            })
        });
        let i = found.unwrap_or(0);
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= SNI_CACHE_MAX {
                c.clear();
            }
            c.insert(sni, i);
        }
        self.keys.get(i).cloned()
    }
}

/// The ACME certificate and the pending challenge certificates.
#[derive(Default)]
struct AcmeCerts {
    /// The ordered certificate's DNS names (lower case) and key.
    current: RwLock<Option<(Vec<String>, Arc<CertifiedKey>)>>,
    /// Domain (lower case) → TLS-ALPN-01 challenge certificate.
    challenges: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl AcmeCerts {
    /// The ACME certificate for `sni`: a name it carries, or any name when
    /// there is no static certificate to fall back to.
    fn pick(&self, sni: Option<&str>, fallback: bool) -> Option<Arc<CertifiedKey>> {
        let cur = self.current.read().unwrap_or_else(|p| p.into_inner());
        let (names, key) = cur.as_ref()?;
        let named = sni.is_some_and(|s| names.iter().any(|n| n.eq_ignore_ascii_case(s)));
        (named || fallback).then(|| Arc::clone(key))
    }

    fn challenge(&self, sni: &str) -> Option<Arc<CertifiedKey>> {
        let c = self.challenges.lock().unwrap_or_else(|p| p.into_inner());
        c.get(&sni.to_ascii_lowercase()).cloned()
    }
}

/// Server certificates, chosen by SNI and reloadable.
pub struct CertStore {
    current: RwLock<Arc<CertSet>>,
    /// `(certificate chain, private key)` PEM files, the default first.
    sources: Vec<(PathBuf, PathBuf)>,
    /// With `[server.acme]`.
    acme: Option<AcmeCerts>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("sources", &self.sources)
            .finish()
    }
}

fn load_set(sources: &[(PathBuf, PathBuf)], acme: bool) -> Result<CertSet, String> {
    let mut keys = Vec::new();
    let now = crate::tls_explain::now_secs();
    for (cert, key) in sources {
        let k = load_listener_key(cert, key, now).map_err(|e| e.message)?;
        keys.push(Arc::new(k));
    }
    if keys.is_empty() && !acme {
        return Err("no certificate configured".into());
    }
    Ok(CertSet {
        keys,
        cache: Mutex::new(HashMap::new()),
    })
}

impl CertStore {
    /// Loads every `(certificate chain, private key)` pair of PEM files;
    /// the first is the default, the others are chosen by SNI.
    pub fn load(sources: Vec<(PathBuf, PathBuf)>) -> Result<Arc<CertStore>, String> {
        Self::build(sources, false)
    }

    /// Like [`CertStore::load`], with room for an ACME certificate (which
    /// [`CertStore::set_acme`] installs later); `sources` may be empty.
    pub fn load_with_acme(sources: Vec<(PathBuf, PathBuf)>) -> Result<Arc<CertStore>, String> {
        Self::build(sources, true)
    }

    fn build(sources: Vec<(PathBuf, PathBuf)>, acme: bool) -> Result<Arc<CertStore>, String> {
        let set = load_set(&sources, acme)?;
        Ok(Arc::new(CertStore {
            current: RwLock::new(Arc::new(set)),
            sources,
            acme: acme.then(AcmeCerts::default),
        }))
    }

    /// Whether the store answers ACME (TLS-ALPN-01) validations.
    pub fn has_acme(&self) -> bool {
        self.acme.is_some()
    }

    /// Swaps in the ACME certificate for `names`; handshakes in progress
    /// keep the one they hold.
    pub fn set_acme(&self, names: Vec<String>, key: CertifiedKey) {
        if let Some(a) = &self.acme {
            let names = names.iter().map(|n| n.to_ascii_lowercase()).collect();
            let mut cur = a.current.write().unwrap_or_else(|p| p.into_inner());
            *cur = Some((names, Arc::new(key)));
        }
    }

    /// Answers TLS-ALPN-01 validations of `domain` with `key` until
    /// [`CertStore::clear_challenges`].
    pub fn set_challenge(&self, domain: &str, key: CertifiedKey) {
        if let Some(a) = &self.acme {
            let mut c = a.challenges.lock().unwrap_or_else(|p| p.into_inner());
            c.insert(domain.to_ascii_lowercase(), Arc::new(key));
        }
    }

    /// Forgets every challenge certificate.
    pub fn clear_challenges(&self) {
        if let Some(a) = &self.acme {
            a.challenges
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
    }

    /// Re-reads the files; on failure the old certificates stay in use.
    pub fn reload(&self) -> Result<usize, String> {
        let set = load_set(&self.sources, self.acme.is_some())?;
        let n = set.keys.len();
        match self.current.write() {
            Ok(mut cur) => *cur = Arc::new(set),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(set),
        }
        Ok(n)
    }

    fn snapshot(&self) -> Arc<CertSet> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let set = self.snapshot();
        if let Some(acme) = &self.acme {
            if hello.alpn().is_some_and(is_validation_hello) {
                return hello.server_name().and_then(|s| acme.challenge(s));
            }
            if let Some(k) = acme.pick(hello.server_name(), set.keys.is_empty()) {
                return Some(k);
            }
        }
        set.pick(hello.server_name())
    }
}

/// The listener's rustls configuration. `http2` adds `h2` to ALPN.
pub fn server_config(
    store: Arc<CertStore>,
    http2: bool,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let acme = store.has_acme();
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(store);
    cfg.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    if acme {
        cfg.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
    }
    Ok(Arc::new(cfg))
}

/// A verifying TLS client toward one kind of server (a backend, an XMPP
/// domain's server, a SIP core) that can say in words why a handshake
/// failed (`tls_explain.rs`).
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<rustls::ClientConfig>,
    verifier: Arc<crate::tls_pin::PinnedOrWebPki>,
    ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl ClientTls {
    /// Trusts the CA bundle `ca_file` (each of its certificates also as
    /// itself), else the system's trusted roots.
    pub fn new(ca_file: Option<&Path>) -> Result<ClientTls, String> {
        let (roots, pinned) = match ca_file {
            Some(p) => (load_ca_file(p)?, ca_file_certs(p)?),
            None => {
                let mut roots = rustls::RootCertStore::empty();
                let found = rustls_native_certs::load_native_certs();
                for c in found.certs {
                    let _ = roots.add(c);
                }
                (roots, Vec::new())
            }
        };
        let verifier = Arc::new(crate::tls_pin::PinnedOrWebPki::new(
            roots,
            pinned,
            provider(),
        )?);
        let cfg = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        Ok(ClientTls {
            config: Arc::new(cfg),
            verifier,
            ca_file: ca_file.map(Path::to_path_buf),
        })
    }

    /// The same client offering `alpn` (e.g. `http/1.1`).
    pub fn with_alpn(&self, alpn: &[&[u8]]) -> ClientTls {
        let mut cfg = (*self.config).clone();
        cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
        ClientTls {
            config: Arc::new(cfg),
            ..self.clone()
        }
    }

    /// A connector using this configuration.
    pub fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(Arc::clone(&self.config))
    }

    /// Says in words why the handshake with `peer` at `addr`, expected to
    /// present a certificate for `expected`, failed with `err`.
    pub(crate) fn explain(
        &self,
        peer: ucgate_proto::certs::Peer<'_>,
        addr: &str,
        expected: &str,
        err: &std::io::Error,
    ) -> crate::tls_explain::Explained {
        let seen = self.verifier.refused(expected);
        crate::tls_explain::explain(
            peer,
            addr,
            expected,
            self.ca_file.as_deref(),
            err,
            seen.as_ref().map(|c| c.as_ref()),
        )
    }
}

/// The certificates of a `ca_file`, each trusted as itself when a server
/// presents exactly it (`tls_pin.rs`).
fn ca_file_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    crate::certcheck::read_certificates(path, ucgate_proto::certfile::Wanted::CaBundle)
}
