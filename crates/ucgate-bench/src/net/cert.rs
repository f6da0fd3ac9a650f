//! What the probe reports about a TLS session and its certificates.

use std::fmt;
use std::net::IpAddr;

/// One certificate of a chain.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// Validity, `YYYY-MM-DDTHH:MM:SSZ`.
    pub not_before: String,
    pub not_after: String,
    /// DNS names and IP addresses of the subjectAltName extension.
    pub names: Vec<String>,
    /// DER length.
    pub bytes: usize,
}

impl fmt::Display for CertInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "subject {}; issuer {}; valid {} to {}",
            or_dash(&self.subject),
            or_dash(&self.issuer),
            self.not_before,
            self.not_after
        )?;
        if !self.names.is_empty() {
            write!(f, "; names {}", self.names.join(", "))?;
        }
        Ok(())
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "(empty)"
    } else {
        s
    }
}

/// Describes a DER certificate (subject, issuer, validity, names).
pub fn cert_info(der: &[u8]) -> CertInfo {
    use x509_parser::extensions::GeneralName;
    let iso = |t: x509_parser::time::ASN1Time| {
        let d = t.to_datetime();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        )
    };
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, c)) => {
            let names = match c.subject_alternative_name() {
                Ok(Some(san)) => san
                    .value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        GeneralName::DNSName(d) => Some(d.to_string()),
                        GeneralName::IPAddress(b) => match b.len() {
                            4 => Some(IpAddr::from(<[u8; 4]>::try_from(*b).ok()?).to_string()),
                            16 => Some(IpAddr::from(<[u8; 16]>::try_from(*b).ok()?).to_string()),
                            _ => None,
                        },
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            CertInfo {
                subject: c.subject().to_string(),
                issuer: c.issuer().to_string(),
                not_before: iso(c.validity().not_before),
                not_after: iso(c.validity().not_after),
                names,
                bytes: der.len(),
            }
        }
        Err(e) => CertInfo {
            subject: format!("(cannot parse: {e})"),
            issuer: String::new(),
            not_before: String::new(),
            not_after: String::new(),
            names: Vec::new(),
            bytes: der.len(),
        },
    }
}

/// What TLS was negotiated with the gateway (or with an https:// proxy).
#[derive(Clone, Debug, serde::Serialize)]
pub struct TlsInfo {
    pub version: String,
    pub cipher_suite: String,
    pub alpn: Option<String>,
    /// One line per certificate of the chain, leaf first: subject, issuer
    /// and validity (see [`CertInfo`]).
    pub chain: Vec<String>,
    /// The same, structured.
    pub certificates: Vec<CertInfo>,
}
