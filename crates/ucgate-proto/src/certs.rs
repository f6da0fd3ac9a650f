//! Certificates in words: the time checks `check-config` applies to the
//! files it reads, and the operator-facing explanation of a failed TLS
//! handshake toward a backend, an XMPP server or a SIP core.
//!
//! The glue reads the files and the clock, parses certificates and maps the
//! TLS library's errors onto [`Failure`]; this module decides what is wrong
//! and how to say it: the server's name and address, what was expected,
//! what it presented, and the configuration key to change.

/// A certificate's validity period, in seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// `notBefore`.
    pub not_before: i64,
    /// `notAfter`.
    pub not_after: i64,
}

/// Where `now` falls in a [`Validity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeCheck {
    /// Valid now.
    Valid,
    /// `notBefore` is still ahead.
    NotYetValid,
    /// `notAfter` is past.
    Expired,
}

impl Validity {
    /// Where `now` (seconds since the epoch) falls; both bounds are
    /// inclusive (RFC 5280 §4.1.2.5).
    pub fn at(&self, now: i64) -> TimeCheck {
        if now < self.not_before {
            TimeCheck::NotYetValid
        } else if now > self.not_after {
            TimeCheck::Expired
        } else {
            TimeCheck::Valid
        }
    }

    /// The problem with this period at `now`, in words, if any.
    pub fn problem(&self, now: i64) -> Option<String> {
        match self.at(now) {
            TimeCheck::Valid => None,
            TimeCheck::Expired => Some(format!("it expired on {}", utc(self.not_after))),
            TimeCheck::NotYetValid => Some(format!(
                "it is not valid before {} (is this machine's clock right?)",
                utc(self.not_before)
            )),
        }
    }
}

/// When none of a CA bundle's `periods` is valid at `now` (and there is at
/// least one), the latest `notAfter` among them: every handshake through
/// that bundle will fail.
pub fn none_valid(periods: &[Validity], now: i64) -> Option<i64> {
    if periods.is_empty() || periods.iter().any(|v| v.at(now) == TimeCheck::Valid) {
        return None;
    }
    periods.iter().map(|v| v.not_after).max()
}

/// `secs` since the epoch as `YYYY-MM-DD HH:MM:SS UTC` (proleptic
/// Gregorian calendar; H. Hinnant's days-to-civil algorithm).
pub fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The server the gateway dialled, and the keys that configure it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer<'a> {
    /// The backend of a `tcp` route (`backend = "tls://…"`), by route path.
    Backend {
        /// The route's `path`.
        route: &'a str,
    },
    /// The XMPP server of a domain.
    XmppServer {
        /// The domain (`[xmpp.domains."…"]`).
        domain: &'a str,
    },
    /// The SIP core of a `sip-websocket` route, by route path.
    SipCore {
        /// The route's `path`.
        route: &'a str,
    },
    /// The ACME CA's server (`[server.acme]`).
    AcmeServer,
}

impl Peer<'_> {
    fn who(&self) -> String {
        match self {
            Peer::Backend { route } => format!("the backend of route `{route}`"),
            Peer::XmppServer { domain } => format!("the XMPP server for domain `{domain}`"),
            Peer::SipCore { route } => format!("the SIP core of route `{route}`"),
            Peer::AcmeServer => "the ACME server of `server.acme.directory`".into(),
        }
    }

    /// The key holding the CA bundle (or pinned certificate) for this peer.
    pub fn ca_key(&self) -> String {
        match self {
            Peer::Backend { route } => format!("`backend_ca_file` of route `{route}`"),
            Peer::XmppServer { domain } => format!("`xmpp.domains.\"{domain}\".ca_file`"),
            Peer::SipCore { route } => format!("`core_ca_file` of route `{route}`"),
            Peer::AcmeServer => "`server.acme.ca_file`".into(),
        }
    }

    /// The key holding the name checked in the peer's certificate.
    pub fn name_key(&self) -> String {
        match self {
            Peer::Backend { route } => format!("`backend_server_name` of route `{route}`"),
            Peer::XmppServer { domain } => format!("`xmpp.domains.\"{domain}\".server_name`"),
            Peer::SipCore { route } => format!("`core_server_name` of route `{route}`"),
            Peer::AcmeServer => "`server.acme.directory` (the host in its URL)".into(),
        }
    }
}

/// What the gateway knows of the certificate the server presented.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presented {
    /// Its DNS names and IP addresses (subjectAltName).
    pub names: Vec<String>,
    /// Its subject, e.g. `CN=localhost`.
    pub subject: String,
    /// Its issuer.
    pub issuer: String,
    /// Issuer equals subject.
    pub self_signed: bool,
    /// Its validity period.
    pub validity: Option<Validity>,
}

/// Why the handshake failed, as far as an operator needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The certificate does not carry the expected name.
    NotValidForName {
        /// The names it does carry (may be empty when unknown).
        presented: Vec<String>,
    },
    /// No path from the certificate to a trusted CA.
    UnknownIssuer,
    /// Past `notAfter` (when known) at `now`.
    Expired {
        /// `notAfter`, when the library said.
        not_after: Option<i64>,
    },
    /// Before `notBefore` (when known).
    NotValidYet {
        /// `notBefore`, when the library said.
        not_before: Option<i64>,
    },
    /// A CA certificate (`CA:TRUE`) presented as the server's own.
    CaUsedAsEndEntity,
    /// A signature in the chain does not verify.
    BadSignature,
    /// Signed with an algorithm not supported.
    UnsupportedAlgorithm,
    /// Not meant for TLS servers (extended key usage).
    InvalidPurpose,
    /// Revoked.
    Revoked,
    /// The certificate cannot be parsed.
    BadEncoding,
    /// The server refused the handshake with this alert (its TLS name,
    /// e.g. `handshake_failure`).
    Alert(String),
    /// No TLS version or cipher suite in common.
    NoCommonParameters,
    /// The server did not answer in TLS.
    NotTls,
    /// Anything else (the library's error says what).
    Other,
}

/// The operator-facing sentence for a failed TLS handshake with `peer` at
/// `addr`, which was expected to present a certificate for `expected`.
/// `ca_file`: the configured bundle (`None`: the system's roots); `seen`:
/// the certificate it presented, when the glue has it; `now`: seconds since
/// the epoch.
pub fn explain(
    peer: Peer<'_>,
    addr: &str,
    expected: &str,
    ca_file: Option<&str>,
    failure: &Failure,
    seen: Option<&Presented>,
    now: i64,
) -> String {
    let who = format!("{} at {addr}", peer.who());
    let for_names = |names: &[String]| -> String {
        if names.is_empty() {
            "a certificate with no DNS name or IP address in it".into()
        } else {
            format!("a certificate for {}", list(names))
        }
    };
    let seen_cert = match seen {
        Some(p) => for_names(&p.names),
        None => "a certificate".into(),
    };
    let trust = match ca_file {
        Some(f) => format!("{} (now `{f}`)", peer.ca_key()),
        None => format!(
            "{} (unset: the system's trusted CAs are used)",
            peer.ca_key()
        ),
    };
    match failure {
        Failure::NotValidForName { presented } => {
            let names = match (presented.is_empty(), seen) {
                (false, _) | (true, None) => presented.as_slice(),
                (true, Some(p)) => p.names.as_slice(),
            };
            format!(
                "{who} presented {} but `{expected}` was expected; set {} to a name in its certificate, or give the server a certificate for `{expected}`",
                for_names(names),
                peer.name_key()
            )
        }
        Failure::UnknownIssuer => {
            let by = match seen {
                Some(p) if p.self_signed => format!(", self-signed (`{}`),", p.subject),
                Some(p) => format!(" issued by `{}`,", p.issuer),
                None => String::new(),
            };
            format!(
                "{who} presented {seen_cert}{by} which no trusted CA vouches for (expected: a certificate for `{expected}` from a CA in {trust}); add its CA, or the certificate itself if it is self-signed, to {}",
                peer.ca_key()
            )
        }
        Failure::Expired { not_after } => {
            let when = not_after
                .or_else(|| seen.and_then(|p| p.validity).map(|v| v.not_after))
                .map(|t| format!(" on {}", utc(t)))
                .unwrap_or_default();
            format!(
                "{who} presented {seen_cert} that expired{when} (it is now {}); renew the certificate on that server",
                utc(now)
            )
        }
        Failure::NotValidYet { not_before } => {
            let when = not_before
                .or_else(|| seen.and_then(|p| p.validity).map(|v| v.not_before))
                .map(|t| format!(" before {}", utc(t)))
                .unwrap_or_default();
            format!(
                "{who} presented {seen_cert} that is not valid{when} (this machine's clock says {}); check the clocks of both machines",
                utc(now)
            )
        }
        Failure::CaUsedAsEndEntity => format!(
            "{who} presented {seen_cert} that is a CA certificate (CA:TRUE), which is not accepted as a server's own certificate unless pinned; put this exact certificate into {} to trust it as itself, or give the server a certificate signed by that CA",
            peer.ca_key()
        ),
        Failure::BadSignature => format!(
            "{who} presented {seen_cert} whose signature does not verify: its chain is broken, or {trust} holds a different CA with the same name; check the server's certificate chain"
        ),
        Failure::UnsupportedAlgorithm => format!(
            "{who} presented {seen_cert} signed with an algorithm ucgate does not accept (e.g. SHA-1 or RSA under 2048 bits); give the server a certificate signed with SHA-256 or better"
        ),
        Failure::InvalidPurpose => format!(
            "{who} presented {seen_cert} that is not meant for a TLS server (its extended key usage lacks serverAuth); give the server a TLS server certificate"
        ),
        Failure::Revoked => format!(
            "{who} presented {seen_cert} that its CA has revoked; give the server a new certificate"
        ),
        Failure::BadEncoding => format!(
            "{who} presented a certificate that cannot be parsed; check the certificate file configured on that server"
        ),
        Failure::Alert(alert) => {
            let hint = match alert.as_str() {
                "unrecognised_name" | "unrecognized_name" => format!(
                    "it does not serve the name `{expected}` (sent as SNI); set {} to a name it serves",
                    peer.name_key()
                ),
                "handshake_failure" | "protocol_version" | "insufficient_security" => {
                    "it shares no TLS version or cipher suite with ucgate (TLS 1.2 or 1.3, modern ciphers); enable them on that server".into()
                }
                "certificate_required" | "bad_certificate" => {
                    "it may require a client certificate, which ucgate does not send; disable client certificate checks for the gateway on that server".into()
                }
                _ => "see that server's log for why".into(),
            };
            format!("{who} refused the TLS handshake with the alert `{alert}`: {hint}")
        }
        Failure::NoCommonParameters => format!(
            "{who} shares no TLS version or cipher suite with ucgate (TLS 1.2 or 1.3, modern ciphers); enable them on that server"
        ),
        Failure::NotTls => {
            let hint = match peer {
                Peer::XmppServer { domain } => format!(
                    "check the port and `xmpp.domains.\"{domain}\".tls` (`starttls` for 5222, `direct` for 5223)"
                ),
                Peer::Backend { .. } => {
                    "is it a plain-TCP port? then write `backend = \"tcp://…\"`".into()
                }
                Peer::SipCore { .. } => {
                    "is it the core's TLS port (5061)? check `core` and its transport".into()
                }
                Peer::AcmeServer => {
                    "check that `server.acme.directory` is the https:// URL of an ACME directory".into()
                }
            };
            format!("{who} did not answer in TLS: {hint}")
        }
        Failure::Other => format!(
            "TLS with {who} failed (expected a certificate for `{expected}` from a CA in {trust})"
        ),
    }
}

fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const XMPP: Peer<'static> = Peer::XmppServer {
        domain: "example.org",
    };

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_609_459_199), "2020-12-31 23:59:59 UTC");
        assert_eq!(utc(4_102_444_800), "2100-01-01 00:00:00 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn validity_bounds_are_inclusive() {
        let v = Validity {
            not_before: 100,
            not_after: 200,
        };
        assert_eq!(v.at(99), TimeCheck::NotYetValid);
        assert_eq!(v.at(100), TimeCheck::Valid);
        assert_eq!(v.at(200), TimeCheck::Valid);
        assert_eq!(v.at(201), TimeCheck::Expired);
        assert_eq!(v.problem(150), None);
        assert_eq!(
            v.problem(201).unwrap(),
            "it expired on 1970-01-01 00:03:20 UTC"
        );
        assert_eq!(
            v.problem(0).unwrap(),
            "it is not valid before 1970-01-01 00:01:40 UTC (is this machine's clock right?)"
        );
    }

    #[test]
    fn a_bundle_is_dead_only_when_no_certificate_is_valid() {
        let old = Validity {
            not_before: 0,
            not_after: 10,
        };
        let older = Validity {
            not_before: 0,
            not_after: 5,
        };
        let current = Validity {
            not_before: 0,
            not_after: 100,
        };
        assert_eq!(none_valid(&[], 50), None);
        assert_eq!(none_valid(&[old, current], 50), None);
        assert_eq!(none_valid(&[older, old], 50), Some(10));
        assert_eq!(none_valid(&[current], 200), Some(100));
    }

    #[test]
    fn wrong_name_names_both_and_the_key() {
        let f = Failure::NotValidForName {
            presented: vec!["localhost".into(), "127.0.0.1".into()],
        };
        assert_eq!(
            explain(XMPP, "127.0.0.1:5223", "xmpp.example.org", None, &f, None, 0),
            "the XMPP server for domain `example.org` at 127.0.0.1:5223 presented a certificate for `localhost`, `127.0.0.1` but `xmpp.example.org` was expected; set `xmpp.domains.\"example.org\".server_name` to a name in its certificate, or give the server a certificate for `xmpp.example.org`"
        );
    }

    #[test]
    fn wrong_name_without_context_uses_the_seen_certificate() {
        let seen = Presented {
            names: vec!["a.example".into()],
            ..Presented::default()
        };
        let f = Failure::NotValidForName { presented: vec![] };
        let s = explain(
            Peer::Backend { route: "/echo" },
            "[::1]:9",
            "b.example",
            None,
            &f,
            Some(&seen),
            0,
        );
        assert!(s.starts_with("the backend of route `/echo` at [::1]:9 presented a certificate for `a.example` but `b.example` was expected; set `backend_server_name` of route `/echo`"), "{s}");
    }

    #[test]
    fn unknown_issuer_says_self_signed_and_where_to_pin() {
        let seen = Presented {
            names: vec!["localhost".into()],
            subject: "CN=localhost".into(),
            issuer: "CN=localhost".into(),
            self_signed: true,
            validity: None,
        };
        let s = explain(
            Peer::SipCore { route: "/sip" },
            "127.0.0.1:5061",
            "localhost",
            Some("/etc/ucgate/ca.pem"),
            &Failure::UnknownIssuer,
            Some(&seen),
            0,
        );
        assert_eq!(
            s,
            "the SIP core of route `/sip` at 127.0.0.1:5061 presented a certificate for `localhost`, self-signed (`CN=localhost`), which no trusted CA vouches for (expected: a certificate for `localhost` from a CA in `core_ca_file` of route `/sip` (now `/etc/ucgate/ca.pem`)); add its CA, or the certificate itself if it is self-signed, to `core_ca_file` of route `/sip`"
        );
        let other = Presented {
            self_signed: false,
            issuer: "CN=Corp CA".into(),
            ..seen
        };
        let s = explain(
            XMPP,
            "a:1",
            "localhost",
            None,
            &Failure::UnknownIssuer,
            Some(&other),
            0,
        );
        assert!(s.contains("issued by `CN=Corp CA`"), "{s}");
        assert!(
            s.contains("(unset: the system's trusted CAs are used)"),
            "{s}"
        );
    }

    #[test]
    fn expiry_says_when() {
        let s = explain(
            XMPP,
            "a:1",
            "x",
            None,
            &Failure::Expired {
                not_after: Some(1_609_459_200),
            },
            None,
            1_700_000_000,
        );
        assert_eq!(s, "the XMPP server for domain `example.org` at a:1 presented a certificate that expired on 2021-01-01 00:00:00 UTC (it is now 2023-11-14 22:13:20 UTC); renew the certificate on that server");
        let seen = Presented {
            validity: Some(Validity {
                not_before: 1_800_000_000,
                not_after: 1_900_000_000,
            }),
            ..Presented::default()
        };
        let s = explain(
            XMPP,
            "a:1",
            "x",
            None,
            &Failure::NotValidYet { not_before: None },
            Some(&seen),
            0,
        );
        assert!(
            s.contains("not valid before 2027-01-15 08:00:00 UTC"),
            "{s}"
        );
    }

    #[test]
    fn alerts_and_plain_ports_get_a_hint() {
        let s = explain(
            XMPP,
            "a:1",
            "x",
            None,
            &Failure::Alert("unrecognised_name".into()),
            None,
            0,
        );
        assert!(
            s.ends_with("it does not serve the name `x` (sent as SNI); set `xmpp.domains.\"example.org\".server_name` to a name it serves"),
            "{s}"
        );
        let s = explain(XMPP, "a:1", "x", None, &Failure::NotTls, None, 0);
        assert!(s.contains("did not answer in TLS"), "{s}");
        assert!(s.contains("`xmpp.domains.\"example.org\".tls`"), "{s}");
        let s = explain(
            Peer::Backend { route: "/t" },
            "a:1",
            "x",
            None,
            &Failure::CaUsedAsEndEntity,
            None,
            0,
        );
        assert!(
            s.contains("CA:TRUE") && s.contains("`backend_ca_file` of route `/t`"),
            "{s}"
        );
        let s = explain(
            Peer::AcmeServer,
            "127.0.0.1:14000",
            "localhost",
            Some("/etc/ucgate/pebble.minica.pem"),
            &Failure::UnknownIssuer,
            None,
            0,
        );
        assert_eq!(s, "the ACME server of `server.acme.directory` at 127.0.0.1:14000 presented a certificate which no trusted CA vouches for (expected: a certificate for `localhost` from a CA in `server.acme.ca_file` (now `/etc/ucgate/pebble.minica.pem`)); add its CA, or the certificate itself if it is self-signed, to `server.acme.ca_file`");
    }
}
