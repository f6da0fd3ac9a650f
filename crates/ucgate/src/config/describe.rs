//! What `check-config` prints about the listener's certificates after `OK`.

use ucgate_proto::certfile::Wanted;
use ucgate_proto::certs::utc;

use super::Config;
use crate::certcheck::read_certificates;

impl Config {
    /// One line per listener certificate: its file, names and end
    /// of validity (what `check-config` prints after `OK`).
    pub fn describe_certificates(&self) -> Vec<String> {
        let Some(tls) = &self.server.tls else {
            return Vec::new();
        };
        let now = crate::tls_explain::now_secs();
        tls.certificates
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let leaf = read_certificates(&c.cert, Wanted::Chain)
                    .ok()?
                    .into_iter()
                    .next()?;
                let (_, x) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
                let names = crate::tls_explain::san_names(&x);
                let until = x.validity().not_after.timestamp();
                let days = (until - now) / 86_400;
                let names = if names.is_empty() {
                    "no DNS name (browsers will refuse it)".to_string()
                } else {
                    names
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let soon = if days < 14 { " (renew it soon)" } else { "" };
                Some(format!(
                    "server.tls.certificate[{i}]: `{}` for {names}; valid until {} ({days} days){soon}",
                    c.cert.display(),
                    utc(until)
                ))
            })
            .collect()
    }
}
