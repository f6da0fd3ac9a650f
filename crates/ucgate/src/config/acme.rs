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
        match crate::tls::load_ca_file(&p) {
            Ok(_) => ca_file = Some(p),
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
