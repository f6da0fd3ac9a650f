//! `[server.acme]`: certificates for the listener from an ACME CA
//! (RFC 8555), validated with TLS-ALPN-01 on the listener itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ucgate_proto::acme::{check_contact, check_domain, RenewalPolicy};

use super::common::{resolve, DAY, SEC};
use super::reader::{Ctx, Table};

/// Let's Encrypt's production directory, the default.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

pub(super) const ACME_KEYS: &[&str] = &[
    "domains",
    "contact",
    "directory",
    "state_dir",
    "ca_file",
    "renew_before",
    "check_interval",
];

/// `[server.acme]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeConfig {
    /// DNS names on the one certificate ordered (lower case, no duplicates).
    pub domains: Vec<String>,
    /// Account contacts, `mailto:` URLs.
    pub contact: Vec<String>,
    /// The CA's directory URL.
    pub directory: String,
    /// Where the account key and certificates are kept.
    pub state_dir: PathBuf,
    /// PEM bundle trusted for the directory's own HTTPS (test CAs).
    pub ca_file: Option<PathBuf>,
    /// When to renew.
    pub renewal: RenewalPolicy,
    /// Longest wait between two looks at the certificate.
    pub check_interval: Duration,
}

pub(super) fn read_acme(
    ctx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    base: &Path,
) -> Option<AcmeConfig> {
    let mut ok = true;
    let mut domains: Vec<String> = Vec::new();
    match t.string_list(ctx, "domains") {
        None => {
            ctx.error(
                t.span(),
                &t.key("domains"),
                "missing: the DNS names to get a certificate for, e.g. domains = [\"chat.example.com\"]",
            );
            ok = false;
        }
        Some(list) if list.is_empty() => {
            ctx.error(
                t.span(),
                &t.key("domains"),
                "empty: list at least one DNS name, e.g. domains = [\"chat.example.com\"]",
            );
            ok = false;
        }
        Some(list) => {
            for d in list {
                let name = d.value.trim_end_matches('.').to_ascii_lowercase();
                if let Err(e) = check_domain(&d.value) {
                    ctx.error(d.span, &d.key, format!("`{}`: {e}", d.value));
                    ok = false;
                } else if domains.contains(&name) {
                    ctx.error(d.span, &d.key, format!("`{}` is listed twice", d.value));
                    ok = false;
                } else {
                    domains.push(name);
                }
            }
        }
    }
    let mut contact = Vec::new();
    for c in t.string_list(ctx, "contact").unwrap_or_default() {
        match check_contact(&c.value) {
            Ok(()) => contact.push(c.value),
            Err(e) => {
                ctx.error(c.span, &c.key, format!("`{}`: {e}", c.value));
                ok = false;
            }
        }
    }
    let mut directory = LETS_ENCRYPT.to_string();
    if let Some(d) = t.string(ctx, "directory", "the CA's directory URL (https://…)") {
        match d.value.parse::<http::Uri>() {
            Ok(u) if u.scheme_str() == Some("https") && u.host().is_some() => {
                directory = d.value;
            }
            _ => {
                ctx.error(
                    d.span,
                    &d.key,
                    format!(
                        "`{}` is not an https:// URL; ACME directories are served over HTTPS (Let's Encrypt: \"{LETS_ENCRYPT}\")",
                        d.value
                    ),
                );
                ok = false;
            }
        }
    }
    let mut state_dir = PathBuf::from("/var/lib/ucgate/acme");
    if let Some(s) = t.string(ctx, "state_dir", "a directory path") {
        let p = resolve(base, &s.value);
        if p.exists() && !p.is_dir() {
            ctx.error(
                s.span,
                &s.key,
                format!("`{}` exists and is not a directory", p.display()),
            );
            ok = false;
        }
        state_dir = p;
    }
    let mut ca_file = None;
    if let Some(c) = t.string(ctx, "ca_file", "a path to a PEM CA bundle") {
        let p = resolve(base, &c.value);
        match crate::certcheck::check_ca_file(&p, crate::tls_explain::now_secs()) {
            Ok(warning) => {
                if let Some(w) = warning {
                    ctx.warning(c.span.clone(), &c.key, w.0);
                }
                ca_file = Some(p);
            }
            Err(e) => {
                ctx.error(c.span, &c.key, e);
                ok = false;
            }
        }
    }
    let renew_before = t.duration(ctx, "renew_before", SEC..=3650 * DAY);
    let check_interval = t
        .duration(ctx, "check_interval", SEC..=7 * DAY)
        .unwrap_or(12 * 3600 * SEC);
    ok.then_some(AcmeConfig {
        domains,
        contact,
        directory,
        state_dir,
        ca_file,
        renewal: RenewalPolicy { renew_before },
        check_interval,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn errors(text: &str) -> Vec<String> {
        match Config::parse(text, "t.toml", Path::new("/nonexistent")) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .errors
                .iter()
                .map(|e| format!("{}:{}: {}: {}", e.line, e.column, e.key, e.message))
                .collect(),
        }
    }

    #[test]
    fn defaults_and_everything_set() {
        let c = Config::parse(
            "[server.acme]\ndomains = [\"Chat.Example.com.\"]\n",
            "t.toml",
            Path::new("/base"),
        )
        .unwrap();
        assert!(c.server.is_tls() && c.server.tls.is_none());
        let a = c.server.acme.unwrap();
        assert_eq!(a.domains, ["chat.example.com"]);
        assert_eq!(a.directory, LETS_ENCRYPT);
        assert_eq!(a.state_dir, Path::new("/var/lib/ucgate/acme"));
        assert_eq!(a.renewal.renew_before, None);
        assert_eq!(a.check_interval, Duration::from_secs(12 * 3600));
        assert!(a.contact.is_empty() && a.ca_file.is_none());

        let c = Config::parse(
            "[server.acme]\ndomains = [\"a.example\", \"b.example\"]\n\
             contact = [\"mailto:ops@example.com\"]\n\
             directory = \"https://acme-staging-v02.api.letsencrypt.org/directory\"\n\
             state_dir = \"acme\"\nrenew_before = \"240h\"\ncheck_interval = \"1h\"\n",
            "t.toml",
            Path::new("/base"),
        )
        .unwrap();
        let a = c.server.acme.unwrap();
        assert_eq!(a.domains, ["a.example", "b.example"]);
        assert_eq!(a.contact, ["mailto:ops@example.com"]);
        assert!(a.directory.contains("staging"));
        assert_eq!(a.state_dir, Path::new("/base/acme"));
        assert_eq!(
            a.renewal.renew_before,
            Some(Duration::from_secs(10 * 86_400))
        );
        assert_eq!(a.check_interval, Duration::from_secs(3600));
    }

    #[test]
    fn errors_in_plain_words() {
        assert_eq!(
            errors("[server.acme]\ncontact = []\n"),
            ["1:1: server.acme.domains: missing: the DNS names to get a certificate for, e.g. domains = [\"chat.example.com\"]"]
        );
        assert_eq!(
            errors("[server.acme]\ndomains = []\n"),
            ["1:1: server.acme.domains: empty: list at least one DNS name, e.g. domains = [\"chat.example.com\"]"]
        );
        let e = errors(
            "[server.acme]\ndomains = [\"*.example.com\", \"localhost\", \"a.example\", \"A.example\"]\n\
             contact = [\"ops@example.com\"]\ndirectory = \"http://ca.example/dir\"\n\
             ca_file = \"missing.pem\"\nrenew_before = \"0s\"\n",
        );
        assert_eq!(
            e.iter().map(|l| l.as_str()).filter(|l| !l.starts_with("5:11:")).collect::<Vec<_>>(),
            [
                "2:12: server.acme.domains[0]: `*.example.com`: wildcard names need the DNS-01 challenge, which ucgate does not do; list each name",
                "2:29: server.acme.domains[1]: `localhost`: a single-label name (no dot) cannot get a certificate from an ACME CA",
                "2:55: server.acme.domains[3]: `A.example` is listed twice",
                "3:12: server.acme.contact[0]: `ops@example.com`: a contact is a `mailto:` URL, e.g. \"mailto:admin@example.com\"",
                "4:13: server.acme.directory: `http://ca.example/dir` is not an https:// URL; ACME directories are served over HTTPS (Let's Encrypt: \"https://acme-v02.api.letsencrypt.org/directory\")",
                "6:16: server.acme.renew_before: expected a duration from 1s to 87600h",
            ]
        );
        // The file's own wording is certcheck.rs's; it names the file.
        assert!(
            e.iter().any(
                |l| l == "5:11: server.acme.ca_file: `/nonexistent/missing.pem` does not exist"
            ),
            "{e:?}"
        );
    }

    #[test]
    fn a_tls_sip_core_takes_the_acme_certificate() {
        let c = Config::parse(
            "[server.acme]\ndomains = [\"a.example\"]\n\
             [[route]]\npath = \"/sip\"\nkind = \"sip-websocket\"\n\
             core = \"sip:127.0.0.1:5061;transport=tls\"\n",
            "t.toml",
            Path::new("/base"),
        );
        assert!(c.is_ok(), "{:?}", c.err().map(|e| e.to_string()));
    }
}
