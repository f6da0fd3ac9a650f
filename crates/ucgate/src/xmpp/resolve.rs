//! Where an XMPP domain's client service is: the hosts and ports to try, in
//! order (RFC 6120 §3.2, XEP-0368).
//!
//! * A domain with a fixed `address` has exactly that one candidate; DNS is
//!   not asked (the host name, if any, is resolved when connecting).
//! * Otherwise one DNS SRV lookup, chosen by the domain's `tls` mode:
//!   `starttls` and `none` look up `_xmpp-client._tcp.DOMAIN` (plain TCP,
//!   then STARTTLS or nothing); `direct` looks up `_xmpps-client._tcp.DOMAIN`
//!   (TLS from the first byte, XEP-0368). The other service is not asked:
//!   its targets would need the other kind of connection than the one the
//!   domain is configured for.
//! * The answer is handled by [`ucgate_proto::srv::plan`]: targets ordered by
//!   priority and RFC 2782 weighted random selection; a single record with
//!   target `.` means the service is decidedly not offered
//!   ([`ResolveError::ServiceUnavailable`]); no records (NXDOMAIN or an empty
//!   answer) means the RFC 6120 §3.2.2 fallback: the domain itself on port
//!   5222 (`starttls`, `none`) or 5223 (`direct`).
//! * A lookup that fails for another reason (SERVFAIL, no reachable name
//!   server) also takes the fallback, with a warning in the log: RFC 6120
//!   §3.2.2 falls back "if the SRV lookup fails".
//! * The lookup is bounded by the resolver's timeout (the domain's
//!   `xmpp.connect_timeout`): expiry is [`ResolveError::Timeout`].
//!
//! Lookups go through the [`SrvLookup`] trait: [`HickoryLookup`] asks the
//! system's name servers (resolv.conf) through hickory-resolver, which caches
//! answers for their TTL; tests inject records with a fake.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use ucgate_proto::srv::{self, SrvPlan, SrvRecord};

use crate::config::{XmppDomain, XmppTls};

/// Default port of `xmpp-client` (plain TCP, STARTTLS), RFC 6120 §14.7.
pub const XMPP_CLIENT_PORT: u16 = 5222;
/// Conventional port of `xmpps-client` (direct TLS), XEP-0368.
pub const XMPPS_CLIENT_PORT: u16 = 5223;

/// One place to try to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Host name or IP literal (no brackets, no trailing dot).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// TLS from the first byte (`tls = "direct"`); otherwise plain TCP,
    /// followed by STARTTLS unless the domain has `tls = "none"`.
    pub direct_tls: bool,
}

impl Candidate {
    /// `host:port` for logs (`[v6]:port` for IPv6 literals).
    pub fn target(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Why a domain has no candidates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// A single SRV record with target `.`: the domain says it offers no
    /// such service (RFC 2782).
    #[error("{domain} offers no XMPP client service: {service} has a single SRV record with target \".\"")]
    ServiceUnavailable {
        /// The XMPP domain.
        domain: String,
        /// The SRV name asked.
        service: String,
    },
    /// The SRV lookup did not finish in time.
    #[error("the DNS SRV lookup of {service} timed out after {after:?}")]
    Timeout {
        /// The XMPP domain.
        domain: String,
        /// The SRV name asked.
        service: String,
        /// The deadline.
        after: Duration,
    },
}

impl ResolveError {
    /// Metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            ResolveError::ServiceUnavailable { .. } => "srv_service_unavailable",
            ResolveError::Timeout { .. } => "dns_timeout",
        }
    }
}

/// Why an SRV lookup gave no records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// NXDOMAIN or no SRV records for the name.
    #[error("no SRV records")]
    NoRecords,
    /// Any other failure (SERVFAIL, refused, no name server reachable…).
    #[error("{0}")]
    Failed(String),
}

/// The future an [`SrvLookup`] returns.
pub type LookupFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<SrvRecord>, LookupError>> + Send + 'a>>;

/// Looks up the SRV records of a fully qualified name (`_xmpp-client._tcp.example.org.`).
pub trait SrvLookup: Send + Sync {
    /// The records of the answer, in the order received.
    fn lookup_srv<'a>(&'a self, name: &'a str) -> LookupFuture<'a>;
}

/// [`SrvLookup`] over hickory-resolver with the system configuration
/// (`/etc/resolv.conf`); answers are cached for their TTL.
pub struct HickoryLookup {
    resolver: TokioResolver,
}

impl HickoryLookup {
    /// Reads the system's resolver configuration.
    pub fn from_system() -> Result<HickoryLookup, String> {
        let resolver = TokioResolver::builder_tokio()
            .map_err(|e| format!("cannot read the system DNS configuration: {e}"))?
            .build()
            .map_err(|e| format!("cannot build the DNS resolver: {e}"))?;
        Ok(HickoryLookup { resolver })
    }
}

impl std::fmt::Debug for HickoryLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HickoryLookup")
    }
}

impl SrvLookup for HickoryLookup {
    fn lookup_srv<'a>(&'a self, name: &'a str) -> LookupFuture<'a> {
        Box::pin(async move {
            match self.resolver.srv_lookup(name).await {
                Ok(lookup) => Ok(lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::SRV(s) => Some(SrvRecord {
                            priority: s.priority,
                            weight: s.weight,
                            port: s.port,
                            target: s.target.to_ascii(),
                        }),
                        _ => None,
                    })
                    .collect()),
                Err(e) if e.is_no_records_found() => Err(LookupError::NoRecords),
                Err(e) => Err(LookupError::Failed(e.to_string())),
            }
        })
    }
}

/// An SRV lookup with its deadline; cheap to clone and share.
#[derive(Clone)]
pub struct Resolver {
    lookup: Arc<dyn SrvLookup>,
    timeout: Duration,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Resolver {
    /// A resolver over `lookup` whose lookups are cut after `timeout`.
    pub fn new(lookup: Arc<dyn SrvLookup>, timeout: Duration) -> Resolver {
        Resolver { lookup, timeout }
    }

    /// The system resolver ([`HickoryLookup`]) with `timeout` (use
    /// `xmpp.connect_timeout`).
    pub fn system(timeout: Duration) -> Result<Resolver, String> {
        Ok(Resolver::new(
            Arc::new(HickoryLookup::from_system()?),
            timeout,
        ))
    }

    /// The lookup deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// The SRV name asked for `domain` (fully qualified, with the trailing dot
/// so that no search domain is appended), or `None` when the domain has a
/// fixed address.
pub fn srv_name(domain: &XmppDomain) -> Option<String> {
    if domain.address.is_some() {
        return None;
    }
    let service = match domain.tls {
        XmppTls::Direct => "_xmpps-client._tcp",
        XmppTls::StartTls | XmppTls::None => "_xmpp-client._tcp",
    };
    Some(format!("{service}.{}.", domain.name))
}

/// The places to try for `domain`, in order (see the module docs).
pub async fn candidates(
    domain: &XmppDomain,
    resolver: &Resolver,
) -> Result<Vec<Candidate>, ResolveError> {
    candidates_with(domain, resolver, &mut random_upto).await
}

/// [`candidates`] with the randomness of RFC 2782's weighted selection as an
/// input: `random(n)` returns a number from 0 to `n` inclusive.
pub async fn candidates_with(
    domain: &XmppDomain,
    resolver: &Resolver,
    random: &mut (impl FnMut(u32) -> u32 + Send),
) -> Result<Vec<Candidate>, ResolveError> {
    let direct_tls = domain.tls == XmppTls::Direct;
    let Some(service) = srv_name(domain) else {
        let (host, port) = domain.address.clone().unwrap_or_default();
        return Ok(vec![Candidate {
            host,
            port,
            direct_tls,
        }]);
    };
    let fallback = || {
        vec![Candidate {
            host: domain.name.clone(),
            port: if direct_tls {
                XMPPS_CLIENT_PORT
            } else {
                XMPP_CLIENT_PORT
            },
            direct_tls,
        }]
    };
    let answer = tokio::time::timeout(resolver.timeout, resolver.lookup.lookup_srv(&service))
        .await
        .map_err(|_| ResolveError::Timeout {
            domain: domain.name.clone(),
            service: service.clone(),
            after: resolver.timeout,
        })?;
    let records = match answer {
        Ok(r) => r,
        Err(LookupError::NoRecords) => Vec::new(),
        Err(LookupError::Failed(e)) => {
            let fb = fallback();
            tracing::warn!(
                domain = %domain.name,
                service = %service,
                error = %e,
                fallback = %fb[0].target(),
                "DNS SRV lookup failed; using the RFC 6120 fallback"
            );
            return Ok(fb);
        }
    };
    match srv::plan(&records, random) {
        SrvPlan::Fallback => Ok(fallback()),
        SrvPlan::Unavailable => Err(ResolveError::ServiceUnavailable {
            domain: domain.name.clone(),
            service,
        }),
        SrvPlan::Targets(targets) => Ok(targets
            .into_iter()
            .map(|t| Candidate {
                host: t.host,
                port: t.port,
                direct_tls,
            })
            .collect()),
    }
}

/// A number from 0 to `n` inclusive, from std's randomly keyed hasher (good
/// enough to spread load across SRV targets; not for secrets).
fn random_upto(n: u32) -> u32 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let x = RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed));
    (x % (u64::from(n) + 1)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Answers from a table; records every name asked.
    #[derive(Default)]
    struct Fake {
        answers: HashMap<String, Result<Vec<SrvRecord>, LookupError>>,
        asked: Mutex<Vec<String>>,
        hang: bool,
    }

    impl SrvLookup for Fake {
        fn lookup_srv<'a>(&'a self, name: &'a str) -> LookupFuture<'a> {
            self.asked.lock().unwrap().push(name.to_string());
            Box::pin(async move {
                if self.hang {
                    std::future::pending::<()>().await;
                }
                self.answers
                    .get(name)
                    .cloned()
                    .unwrap_or(Err(LookupError::NoRecords))
            })
        }
    }

    fn rec(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    fn domain(name: &str, tls: XmppTls, address: Option<(&str, u16)>) -> XmppDomain {
        XmppDomain {
            name: name.into(),
            address: address.map(|(h, p)| (h.into(), p)),
            tls,
            ca_file: None,
            server_name: name.into(),
        }
    }

    fn resolver(fake: Fake) -> (Resolver, Arc<Fake>) {
        let fake = Arc::new(fake);
        (Resolver::new(fake.clone(), Duration::from_secs(5)), fake)
    }

    fn c(host: &str, port: u16, direct_tls: bool) -> Candidate {
        Candidate {
            host: host.into(),
            port,
            direct_tls,
        }
    }

    #[tokio::test]
    async fn fixed_address_asks_no_dns() {
        let (r, fake) = resolver(Fake::default());
        let d = domain("localhost", XmppTls::StartTls, Some(("127.0.0.1", 5222)));
        assert_eq!(
            candidates(&d, &r).await.unwrap(),
            [c("127.0.0.1", 5222, false)]
        );
        let d = domain("example.org", XmppTls::Direct, Some(("::1", 5223)));
        let got = candidates(&d, &r).await.unwrap();
        assert_eq!(got, [c("::1", 5223, true)]);
        assert_eq!(got[0].target(), "[::1]:5223");
        assert!(fake.asked.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn no_records_fall_back_to_the_domain_on_the_default_port() {
        let (r, fake) = resolver(Fake::default());
        let d = domain("example.org", XmppTls::StartTls, None);
        assert_eq!(
            candidates(&d, &r).await.unwrap(),
            [c("example.org", 5222, false)]
        );
        let d = domain("example.org", XmppTls::Direct, None);
        assert_eq!(
            candidates(&d, &r).await.unwrap(),
            [c("example.org", 5223, true)]
        );
        let d = domain("example.org", XmppTls::None, None);
        assert_eq!(
            candidates(&d, &r).await.unwrap(),
            [c("example.org", 5222, false)]
        );
        assert_eq!(
            *fake.asked.lock().unwrap(),
            [
                "_xmpp-client._tcp.example.org.",
                "_xmpps-client._tcp.example.org.",
                "_xmpp-client._tcp.example.org."
            ]
        );
        // An empty answer (e.g. only a CNAME) and a failed lookup are the same.
        let mut f = Fake::default();
        f.answers
            .insert("_xmpp-client._tcp.example.org.".into(), Ok(vec![]));
        f.answers.insert(
            "_xmpps-client._tcp.example.org.".into(),
            Err(LookupError::Failed("SERVFAIL".into())),
        );
        let (r, _) = resolver(f);
        let d = domain("example.org", XmppTls::StartTls, None);
        assert_eq!(
            candidates(&d, &r).await.unwrap(),
            [c("example.org", 5222, false)]
        );
        let d = domain("example.org", XmppTls::Direct, None);
        assert_eq!(
            candidates(&d, &r).await.unwrap(),
            [c("example.org", 5223, true)]
        );
    }

    #[tokio::test]
    async fn a_single_dot_target_means_no_service() {
        let mut f = Fake::default();
        f.answers.insert(
            "_xmpp-client._tcp.example.org.".into(),
            Ok(vec![rec(0, 0, 0, ".")]),
        );
        let (r, _) = resolver(f);
        let d = domain("example.org", XmppTls::StartTls, None);
        let e = candidates(&d, &r).await.unwrap_err();
        assert_eq!(
            e,
            ResolveError::ServiceUnavailable {
                domain: "example.org".into(),
                service: "_xmpp-client._tcp.example.org.".into()
            }
        );
        assert_eq!(e.kind(), "srv_service_unavailable");
    }

    #[tokio::test]
    async fn records_are_ordered_by_priority_then_weight() {
        let mut f = Fake::default();
        f.answers.insert(
            "_xmpps-client._tcp.example.org.".into(),
            Ok(vec![
                rec(20, 0, 5223, "backup.example.org."),
                rec(10, 10, 443, "a.example.org."),
                rec(10, 90, 5223, "b.example.org."),
            ]),
        );
        let (r, _) = resolver(f);
        let d = domain("example.org", XmppTls::Direct, None);
        // Draw 50 of 0..=100 lands in b's share (11..=100), then a, then backup.
        let mut draws = vec![50u32, 0, 0].into_iter();
        let mut random = move |_n: u32| draws.next().unwrap_or(0);
        assert_eq!(
            candidates_with(&d, &r, &mut random).await.unwrap(),
            [
                c("b.example.org", 5223, true),
                c("a.example.org", 443, true),
                c("backup.example.org", 5223, true)
            ]
        );
        // Draw 5 lands in a's share.
        let mut draws = vec![5u32, 0, 0].into_iter();
        let mut random = move |_n: u32| draws.next().unwrap_or(0);
        let got = candidates_with(&d, &r, &mut random).await.unwrap();
        assert_eq!(got[0].host, "a.example.org");
        assert_eq!(got[2].host, "backup.example.org");
        // With the real randomness the priorities still hold.
        for _ in 0..20 {
            let got = candidates(&d, &r).await.unwrap();
            assert_eq!(got.len(), 3);
            assert_eq!(got[2].host, "backup.example.org");
        }
    }

    #[tokio::test]
    async fn a_hanging_lookup_times_out() {
        let fake = Arc::new(Fake {
            hang: true,
            ..Fake::default()
        });
        let r = Resolver::new(fake, Duration::from_millis(50));
        let d = domain("example.org", XmppTls::StartTls, None);
        let e = candidates(&d, &r).await.unwrap_err();
        assert!(
            matches!(e, ResolveError::Timeout { after, .. } if after == Duration::from_millis(50))
        );
        assert_eq!(e.kind(), "dns_timeout");
    }

    #[tokio::test]
    async fn the_system_resolver_builds() {
        // Builds only (no query leaves the machine in tests).
        if std::path::Path::new("/etc/resolv.conf").exists() {
            let r = Resolver::system(Duration::from_secs(2)).unwrap();
            assert_eq!(r.timeout(), Duration::from_secs(2));
        }
    }

    #[test]
    fn random_stays_in_range() {
        for n in [0, 1, 2, 100, u32::MAX] {
            for _ in 0..50 {
                assert!(random_upto(n) <= n);
            }
        }
        assert_eq!(random_upto(0), 0);
    }
}
