//! `[server.acme]`: obtains and renews the listener's certificate from an
//! ACME CA (RFC 8555) with instant-acme, answering TLS-ALPN-01 (RFC 8737)
//! on the listener itself, and swaps it into the [`CertStore`] live.
//!
//! The decisions (is the stored certificate good for the domains, when is
//! renewal due, how long to wait after a failure) are in
//! `ucgate_proto::acme`; this module does the I/O: files, the CA, the clock.

mod files;
mod http;

use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_util::sync::CancellationToken;
use ucgate_proto::acme::{judge, retry_delay, Stored, Validity};

use crate::config::AcmeConfig;
use crate::metrics::{Metrics, ResultLabels};
use crate::tls::CertStore;
use files::{cert_info, cert_info_pem, date, CertInfo, StateFiles};

/// First wait after a failed order; doubled at each failure.
const RETRY_BASE: Duration = Duration::from_secs(60);
/// Longest wait after failed orders.
const RETRY_MAX: Duration = Duration::from_secs(3600);
/// A whole order (account, challenges, issuance) is given up after this.
const ORDER_TIMEOUT: Duration = Duration::from_secs(300);

/// The certificate being served, as the renewal rule sees it.
struct Served {
    names: Vec<String>,
    validity: Validity,
}

/// Runs ACME for the listener.
pub(crate) struct AcmeManager {
    cfg: AcmeConfig,
    files: StateFiles,
    store: Arc<CertStore>,
    metrics: Arc<Metrics>,
    http_tls: crate::tls::ClientTls,
    account: Option<Account>,
    served: Option<Served>,
}

impl AcmeManager {
    /// Prepares the state directory and serves the stored certificate, if
    /// any is still valid for the configured domains.
    pub(crate) fn start(
        cfg: AcmeConfig,
        store: Arc<CertStore>,
        metrics: Arc<Metrics>,
    ) -> Result<AcmeManager, String> {
        let files = StateFiles::new(&cfg.state_dir, &cfg.directory);
        files.ensure_dir()?;
        let http_tls = crate::tls::ClientTls::new(cfg.ca_file.as_deref())
            .map_err(|e| format!("server.acme.ca_file: {e}"))?;
        let mut m = AcmeManager {
            cfg,
            files,
            store,
            metrics,
            http_tls,
            account: None,
            served: None,
        };
        m.load_stored();
        Ok(m)
    }

    fn load_stored(&mut self) {
        let (cert, key) = (self.files.cert(), self.files.key());
        if !cert.exists() {
            return;
        }
        let loaded = crate::tls::load_certified_key(&cert, &key)
            .map_err(|e| e.message)
            .and_then(|k| cert_info(&k.cert[0]).map(|i| (k, i)));
        match loaded {
            Ok((key, info)) => {
                let state = self.judge(Some((&info.names, info.validity)));
                if state.servable() {
                    tracing::info!(
                        domains = ?info.names,
                        issuer = %info.issuer,
                        expires = %date(info.validity.not_after),
                        file = %cert.display(),
                        "ACME: serving the stored certificate"
                    );
                    self.install(key, info);
                } else {
                    tracing::info!(file = %cert.display(), "ACME: not serving the stored certificate: {}", state.describe());
                }
            }
            Err(e) => tracing::warn!(
                file = %cert.display(),
                "ACME: the stored certificate cannot be used ({e}); ordering a new one"
            ),
        }
    }

    fn judge(&self, cert: Option<(&[String], Validity)>) -> Stored {
        judge(
            cert,
            &self.cfg.domains,
            self.cfg.renewal,
            crate::tls_explain::now_secs(),
        )
    }

    fn install(&mut self, key: CertifiedKey, info: CertInfo) {
        self.store.set_acme(info.names.clone(), key);
        self.metrics.acme_cert_expiry.set(info.validity.not_after);
        self.served = Some(Served {
            names: info.names,
            validity: info.validity,
        });
    }

    /// Orders and renews until `stop`.
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        let mut failures = 0u32;
        loop {
            let state = self.judge(self.served.as_ref().map(|s| (&s.names[..], s.validity)));
            let wait = if state.needs_order() {
                tracing::info!(
                    domains = ?self.cfg.domains,
                    directory = %self.cfg.directory,
                    "ACME: ordering a certificate: {}",
                    state.describe()
                );
                let result = tokio::select! {
                    r = tokio::time::timeout(ORDER_TIMEOUT, self.order()) => r
                        .unwrap_or_else(|_| Err(format!("the order did not finish within {}s", ORDER_TIMEOUT.as_secs()))),
                    _ = stop.cancelled() => return,
                };
                self.store.clear_challenges();
                let label = |r: &str| ResultLabels { result: r.into() };
                match result {
                    Ok(()) => {
                        failures = 0;
                        self.metrics.acme_orders.get_or_create(&label("ok")).inc();
                        // Not before `check_interval`, even when the margin
                        // is longer than the lifetime.
                        self.cfg.check_interval
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        self.metrics
                            .acme_orders
                            .get_or_create(&label("error"))
                            .inc();
                        let wait = retry_delay(failures, RETRY_BASE, RETRY_MAX);
                        let serving = if state.servable() {
                            "the current certificate stays in use"
                        } else {
                            "the listener has no certificate for these domains yet"
                        };
                        tracing::error!(
                            domains = ?self.cfg.domains,
                            directory = %self.cfg.directory,
                            failures,
                            retry_in = ?wait,
                            "ACME: could not get a certificate: {e}; {serving}"
                        );
                        wait
                    }
                }
            } else {
                let s = self.served.as_ref().map(|s| s.validity);
                s.map(|v| {
                    self.cfg.renewal.next_check(
                        v,
                        crate::tls_explain::now_secs(),
                        self.cfg.check_interval,
                    )
                })
                .unwrap_or(self.cfg.check_interval)
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    async fn account(&mut self) -> Result<Account, String> {
        if let Some(a) = &self.account {
            return Ok(a.clone());
        }
        let http = || Box::new(http::AcmeHttp::new(&self.http_tls));
        let path = self.files.account();
        let account = match std::fs::read(&path) {
            Ok(bytes) => {
                let creds = serde_json::from_slice(&bytes).map_err(|e| {
                    format!("`{}` is not an ACME account file: {e} (remove it to register a new account)", path.display())
                })?;
                Account::builder_with_http(http())
                    .from_credentials(creds)
                    .await
                    .map_err(|e| format!("the CA's directory at {}: {e}", self.cfg.directory))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let contact: Vec<&str> = self.cfg.contact.iter().map(String::as_str).collect();
                let (account, creds) = Account::builder_with_http(http())
                    .create(
                        &NewAccount {
                            contact: &contact,
                            terms_of_service_agreed: true,
                            only_return_existing: false,
                        },
                        self.cfg.directory.clone(),
                        None,
                    )
                    .await
                    .map_err(|e| {
                        format!("registering an account at {}: {e}", self.cfg.directory)
                    })?;
                let json = serde_json::to_vec_pretty(&creds).map_err(|e| e.to_string())?;
                self.files.write(&path, &json, true)?;
                tracing::info!(directory = %self.cfg.directory, file = %path.display(), "ACME: account registered");
                account
            }
            Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
        };
        self.account = Some(account.clone());
        Ok(account)
    }

    async fn order(&mut self) -> Result<(), String> {
        let account = self.account().await?;
        let ids: Vec<Identifier> = self
            .cfg
            .domains
            .iter()
            .map(|d| Identifier::Dns(d.clone()))
            .collect();
        let mut order = match account.new_order(&NewOrder::new(&ids)).await {
            Ok(o) => o,
            Err(e) => {
                if is_unknown_account(&e) {
                    // The CA forgot the account (a test CA restarted):
                    // register again next time.
                    self.account = None;
                    let _ = std::fs::remove_file(self.files.account());
                }
                return Err(format!("the CA refused the order: {e}"));
            }
        };
        let mut authzs = order.authorizations();
        while let Some(a) = authzs.next().await {
            let mut a = a.map_err(|e| format!("reading an authorization: {e}"))?;
            match a.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => return Err(format!("an authorization is {other:?}")),
            }
            let mut ch = a
                .challenge(ChallengeType::TlsAlpn01)
                .ok_or("the CA offers no tls-alpn-01 challenge, the only one ucgate answers")?;
            let domain = ch.identifier().to_string();
            let key = challenge_cert(&domain, ch.key_authorization().digest().as_ref())?;
            self.store.set_challenge(&domain, key);
            ch.set_ready()
                .await
                .map_err(|e| format!("telling the CA {domain} is ready: {e}"))?;
        }
        let retry = RetryPolicy::new().timeout(Duration::from_secs(90));
        // An invalid order comes back as an error or as a status: either
        // way, say per domain what the CA saw.
        let ready = match order.poll_ready(&retry).await {
            Ok(status) => status == OrderStatus::Ready,
            Err(instant_acme::Error::Api(_)) => false,
            Err(e) => return Err(format!("waiting for validation: {e}")),
        };
        if !ready {
            return Err(validation_errors(&mut order).await);
        }
        let key_pem = order
            .finalize()
            .await
            .map_err(|e| format!("finalizing the order: {e}"))?;
        let chain_pem = order
            .poll_certificate(&retry)
            .await
            .map_err(|e| format!("downloading the certificate: {e}"))?;
        let info = cert_info_pem(chain_pem.as_bytes())?;
        let key = certified_key(chain_pem.as_bytes(), key_pem.as_bytes())?;
        self.files
            .write(&self.files.key(), key_pem.as_bytes(), true)?;
        self.files
            .write(&self.files.cert(), chain_pem.as_bytes(), false)?;
        tracing::info!(
            domains = ?info.names,
            issuer = %info.issuer,
            expires = %date(info.validity.not_after),
            renewal_from = %date(self.cfg.renewal.renew_at(info.validity)),
            dir = %self.files.dir().display(),
            "ACME: certificate obtained and now served"
        );
        self.install(key, info);
        Ok(())
    }
}

fn is_unknown_account(e: &instant_acme::Error) -> bool {
    matches!(e, instant_acme::Error::Api(p)
        if p.r#type.as_deref() == Some("urn:ietf:params:acme:error:accountDoesNotExist"))
}

/// Why validation failed, in the CA's words, for each domain.
async fn validation_errors(order: &mut instant_acme::Order) -> String {
    let mut out = Vec::new();
    let mut authzs = order.authorizations();
    while let Some(Ok(mut a)) = authzs.next().await {
        let _ = a.refresh().await;
        let domain = a.identifier().to_string();
        for c in &a.challenges {
            if let Some(p) = &c.error {
                out.push(format!(
                    "{domain}: {}",
                    p.detail.as_deref().unwrap_or("no detail")
                ));
            }
        }
    }
    if out.is_empty() {
        "the CA did not validate the domains (no detail given)".into()
    } else {
        format!(
            "the CA could not validate {} (does each domain resolve to this host, and does its port 443 reach this listener from the CA?)",
            out.join("; ")
        )
    }
}

/// The self-signed certificate for `domain` carrying the `acmeIdentifier`
/// extension (RFC 8737 §3).
fn challenge_cert(domain: &str, digest: &[u8]) -> Result<CertifiedKey, String> {
    let err = |e: rcgen::Error| format!("making the challenge certificate for {domain}: {e}");
    let mut params = rcgen::CertificateParams::new(vec![domain.to_string()]).map_err(err)?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key = rcgen::KeyPair::generate().map_err(err)?;
    let cert = params.self_signed(&key).map_err(err)?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    // Not `CertifiedKey::from_der`: its key check parses the certificate
    // with webpki, which refuses the critical `acmeIdentifier` extension.
    let signer = crate::tls::provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| format!("challenge key for {domain}: {e}"))?;
    Ok(CertifiedKey::new(vec![cert.der().clone()], signer))
}

fn certified_key(chain_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, String> {
    use rustls_pki_types::pem::PemObject;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the CA sent an unreadable certificate chain: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("the new private key cannot be read: {e}"))?;
    CertifiedKey::from_der(chain, key, &crate::tls::provider())
        .map_err(|e| format!("the CA's certificate does not fit our key: {e}"))
}
