//! ACME (RFC 8555) decisions that are ours, not the protocol client's:
//! which names may be ordered, whether a certificate still serves the
//! configured domains, when to renew it, how long to wait after a failure,
//! and whether a TLS ClientHello is a TLS-ALPN-01 validation (RFC 8737).
//!
//! Time is Unix seconds (`i64`), given by the caller.
//!
//! Renewal rule: a certificate valid from `not_before` to `not_after` is
//! renewed once less than the margin remains. The margin is `renew_before`
//! when the operator set it, else a third of the lifetime capped at 30 days
//! (Let's Encrypt's 90-day certificates: 30 days; 6-day ones: 2 days). An
//! explicit margin longer than the lifetime renews at every check.

use core::time::Duration;

/// The ALPN protocol of TLS-ALPN-01 validation connections (RFC 8737 §6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Default ceiling of the renewal margin (when `renew_before` is not set).
pub const DEFAULT_MARGIN_CAP: Duration = Duration::from_secs(30 * 86_400);

/// When a certificate is due for renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalPolicy {
    /// An explicit margin; `None`: a third of the lifetime, at most 30 days.
    pub renew_before: Option<Duration>,
}

/// A certificate's validity period, Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// Start of validity.
    pub not_before: i64,
    /// End of validity.
    pub not_after: i64,
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl RenewalPolicy {
    /// How long before `not_after` renewal starts.
    pub fn margin(&self, v: Validity) -> i64 {
        match self.renew_before {
            Some(m) => secs(m),
            None => {
                let lifetime = v.not_after.saturating_sub(v.not_before).max(0);
                (lifetime / 3).min(secs(DEFAULT_MARGIN_CAP))
            }
        }
    }

    /// The Unix time at which renewal is due.
    pub fn renew_at(&self, v: Validity) -> i64 {
        v.not_after.saturating_sub(self.margin(v))
    }

    /// Whether the certificate must be renewed at `now`.
    pub fn due(&self, v: Validity, now: i64) -> bool {
        now >= self.renew_at(v)
    }

    /// How long to wait before looking again: until renewal is due, but no
    /// longer than `check_interval` (the clock may jump, the files may
    /// change). Zero when renewal is due now.
    pub fn next_check(&self, v: Validity, now: i64, check_interval: Duration) -> Duration {
        let until = self.renew_at(v).saturating_sub(now).max(0);
        Duration::from_secs(until as u64).min(check_interval)
    }
}

/// What the stored certificate is worth for the configured domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// No certificate is stored.
    Missing,
    /// It does not name every configured domain (the list changed).
    DomainsChanged,
    /// It has expired or is not yet valid.
    NotValidNow,
    /// It serves, and renewal is due.
    RenewalDue,
    /// It serves, and renewal is not due.
    Fresh,
}

impl Stored {
    /// Whether an order is needed.
    pub fn needs_order(self) -> bool {
        self != Stored::Fresh
    }

    /// Whether the certificate may be served meanwhile.
    pub fn servable(self) -> bool {
        matches!(self, Stored::Fresh | Stored::RenewalDue)
    }

    /// Plain words for the log.
    pub fn describe(self) -> &'static str {
        match self {
            Stored::Missing => "no certificate yet",
            Stored::DomainsChanged => {
                "the stored certificate does not cover every configured domain"
            }
            Stored::NotValidNow => "the stored certificate has expired or is not yet valid",
            Stored::RenewalDue => "the certificate is within its renewal margin",
            Stored::Fresh => "the certificate is valid and not due for renewal",
        }
    }
}

/// Judges a stored certificate (its DNS names and validity) against the
/// configured `domains` at `now`.
pub fn judge(
    stored: Option<(&[String], Validity)>,
    domains: &[String],
    policy: RenewalPolicy,
    now: i64,
) -> Stored {
    let Some((names, v)) = stored else {
        return Stored::Missing;
    };
    if !covers(names, domains) {
        return Stored::DomainsChanged;
    }
    if now < v.not_before || now >= v.not_after {
        return Stored::NotValidNow;
    }
    if policy.due(v, now) {
        Stored::RenewalDue
    } else {
        Stored::Fresh
    }
}

/// Whether the certificate's DNS names include every domain (ASCII
/// case-insensitive, no wildcard matching: we order exact names).
pub fn covers(names: &[String], domains: &[String]) -> bool {
    domains
        .iter()
        .all(|d| names.iter().any(|n| n.eq_ignore_ascii_case(d)))
}

/// The wait before retry number `failures` (1 = after the first failure):
/// `base` doubled at each failure, at most `max`.
pub fn retry_delay(failures: u32, base: Duration, max: Duration) -> Duration {
    let shift = failures.saturating_sub(1).min(30);
    base.saturating_mul(1u32 << shift).min(max)
}

/// Whether a ClientHello with these ALPN protocols is a TLS-ALPN-01
/// validation: RFC 8737 §3 has the validator offer `acme-tls/1` alone.
pub fn is_validation_hello<'a>(mut alpn: impl Iterator<Item = &'a [u8]>) -> bool {
    alpn.next() == Some(ACME_TLS_ALPN) && alpn.next().is_none()
}

/// Why a name cannot be ordered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Empty.
    #[error("the domain is empty")]
    Empty,
    /// `*.example.com`.
    #[error("wildcard names need the DNS-01 challenge, which ucgate does not do; list each name")]
    Wildcard,
    /// An IP address.
    #[error("an IP address cannot be validated with TLS-ALPN-01 here; give a DNS name")]
    IpAddress,
    /// One label, such as `localhost`.
    #[error("a single-label name (no dot) cannot get a certificate from an ACME CA")]
    SingleLabel,
    /// Over 253 characters or a label over 63.
    #[error("too long: at most 253 characters, 63 per label")]
    TooLong,
    /// A character outside `a-z 0-9 - .`, or a label that is empty or
    /// starts or ends with `-`.
    #[error("not a DNS name: use letters, digits, `-` and `.` (IDNs in their `xn--` form)")]
    Syntax,
}

/// Checks that `name` can be ordered with TLS-ALPN-01.
pub fn check_domain(name: &str) -> Result<(), DomainError> {
    if name.is_empty() {
        return Err(DomainError::Empty);
    }
    if name.starts_with("*.") {
        return Err(DomainError::Wildcard);
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.parse::<core::net::IpAddr>().is_ok() || name.starts_with('[') {
        return Err(DomainError::IpAddress);
    }
    if name.len() > 253 {
        return Err(DomainError::TooLong);
    }
    let mut labels = 0;
    for label in name.split('.') {
        labels += 1;
        if label.len() > 63 {
            return Err(DomainError::TooLong);
        }
        let ok = !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(DomainError::Syntax);
        }
    }
    if labels < 2 {
        return Err(DomainError::SingleLabel);
    }
    Ok(())
}

/// Checks an account contact: RFC 8555 §7.3 `mailto:` URLs.
pub fn check_contact(contact: &str) -> Result<(), &'static str> {
    let Some(addr) = contact.strip_prefix("mailto:") else {
        return Err("a contact is a `mailto:` URL, e.g. \"mailto:admin@example.com\"");
    };
    match addr.split_once('@') {
        Some((local, host)) if !local.is_empty() && host.contains('.') && !addr.contains(',') => {
            Ok(())
        }
        _ => Err("expected one e-mail address after `mailto:`, e.g. \"mailto:admin@example.com\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn v(not_before: i64, days: i64) -> Validity {
        Validity {
            not_before,
            not_after: not_before + days * DAY,
        }
    }

    fn auto() -> RenewalPolicy {
        RenewalPolicy { renew_before: None }
    }

    #[test]
    fn default_margin_is_a_third_capped_at_30_days() {
        assert_eq!(auto().margin(v(0, 90)), 30 * DAY);
        assert_eq!(auto().margin(v(0, 6)), 2 * DAY);
        assert_eq!(auto().margin(v(0, 5 * 365)), 30 * DAY);
        // A backwards validity never gives a negative margin.
        let bad = Validity {
            not_before: 10,
            not_after: 0,
        };
        assert_eq!(auto().margin(bad), 0);
    }

    #[test]
    fn due_exactly_at_the_margin() {
        let cert = v(1_000, 90);
        let at = cert.not_after - 30 * DAY;
        assert_eq!(auto().renew_at(cert), at);
        assert!(!auto().due(cert, at - 1));
        assert!(auto().due(cert, at));
    }

    #[test]
    fn explicit_margin_overrides_and_may_exceed_the_lifetime() {
        let p = RenewalPolicy {
            renew_before: Some(Duration::from_secs(10 * DAY as u64)),
        };
        let cert = v(0, 90);
        assert!(!p.due(cert, 80 * DAY - 1));
        assert!(p.due(cert, 80 * DAY));
        let always = RenewalPolicy {
            renew_before: Some(Duration::from_secs(100 * DAY as u64)),
        };
        assert!(always.due(cert, 0));
    }

    #[test]
    fn next_check_is_capped_by_the_interval_and_zero_when_due() {
        let cert = v(0, 90);
        let hour = Duration::from_secs(3600);
        assert_eq!(auto().next_check(cert, 0, hour), hour);
        let near = cert.not_after - 30 * DAY - 60;
        assert_eq!(auto().next_check(cert, near, hour), Duration::from_secs(60));
        assert_eq!(
            auto().next_check(cert, cert.not_after, hour),
            Duration::ZERO
        );
    }

    #[test]
    fn judge_each_case() {
        let doms = vec!["a.example".to_string(), "b.example".to_string()];
        let both = vec!["B.example".to_string(), "a.example".to_string()];
        let one = vec!["a.example".to_string()];
        let cert = v(0, 90);
        let p = auto();
        assert_eq!(judge(None, &doms, p, 0), Stored::Missing);
        assert_eq!(
            judge(Some((&one, cert)), &doms, p, DAY),
            Stored::DomainsChanged
        );
        assert_eq!(judge(Some((&both, cert)), &doms, p, DAY), Stored::Fresh);
        assert_eq!(
            judge(Some((&both, cert)), &doms, p, 61 * DAY),
            Stored::RenewalDue
        );
        assert_eq!(
            judge(Some((&both, cert)), &doms, p, 90 * DAY),
            Stored::NotValidNow
        );
        assert_eq!(
            judge(Some((&both, cert)), &doms, p, -1),
            Stored::NotValidNow
        );
        assert!(Stored::RenewalDue.servable() && Stored::RenewalDue.needs_order());
        assert!(!Stored::NotValidNow.servable());
        assert!(!Stored::Fresh.needs_order());
    }

    #[test]
    fn covers_needs_every_domain_and_no_wildcard_matching() {
        let names = vec!["*.example".to_string()];
        assert!(!covers(&names, &["a.example".to_string()]));
        assert!(covers(&["X.Example".into()], &["x.example".to_string()]));
    }

    #[test]
    fn retry_doubles_up_to_the_ceiling() {
        let base = Duration::from_secs(60);
        let max = Duration::from_secs(3600);
        assert_eq!(retry_delay(1, base, max), base);
        assert_eq!(retry_delay(2, base, max), Duration::from_secs(120));
        assert_eq!(retry_delay(6, base, max), Duration::from_secs(1920));
        assert_eq!(retry_delay(7, base, max), max);
        assert_eq!(retry_delay(u32::MAX, base, max), max);
        assert_eq!(retry_delay(0, base, max), base);
    }

    #[test]
    fn validation_hello_offers_acme_tls_alone() {
        let only: [&[u8]; 1] = [b"acme-tls/1"];
        assert!(is_validation_hello(only.into_iter()));
        let mixed: [&[u8]; 2] = [b"h2", b"acme-tls/1"];
        assert!(!is_validation_hello(mixed.into_iter()));
        let with_more: [&[u8]; 2] = [b"acme-tls/1", b"http/1.1"];
        assert!(!is_validation_hello(with_more.into_iter()));
        assert!(!is_validation_hello(core::iter::empty()));
    }

    #[test]
    fn domains() {
        assert_eq!(check_domain("chat.example.com"), Ok(()));
        assert_eq!(check_domain("xn--bcher-kva.example."), Ok(()));
        assert_eq!(check_domain(""), Err(DomainError::Empty));
        assert_eq!(check_domain("*.example.com"), Err(DomainError::Wildcard));
        assert_eq!(check_domain("127.0.0.1"), Err(DomainError::IpAddress));
        assert_eq!(check_domain("[::1]"), Err(DomainError::IpAddress));
        assert_eq!(check_domain("localhost"), Err(DomainError::SingleLabel));
        assert_eq!(check_domain("a..example"), Err(DomainError::Syntax));
        assert_eq!(check_domain("-a.example"), Err(DomainError::Syntax));
        assert_eq!(check_domain("a_b.example"), Err(DomainError::Syntax));
        assert_eq!(check_domain("Ü.example"), Err(DomainError::Syntax));
        let long_label = format!("{}.example", "a".repeat(64));
        assert_eq!(check_domain(&long_label), Err(DomainError::TooLong));
        let long = format!("{}example", "abc.".repeat(64));
        assert_eq!(check_domain(&long), Err(DomainError::TooLong));
    }

    #[test]
    fn contacts() {
        assert_eq!(check_contact("mailto:admin@example.com"), Ok(()));
        assert!(check_contact("admin@example.com").is_err());
        assert!(check_contact("mailto:").is_err());
        assert!(check_contact("mailto:a@b.example,c@d.example").is_err());
        assert!(check_contact("mailto:@example.com").is_err());
    }
}
