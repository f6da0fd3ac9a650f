//! What a PEM file holds, and what is wrong with it for its purpose: an
//! empty file, a binary DER file, a private key given as the certificate
//! (or the reverse), a certificate signing request, an encrypted key.
//! `check-config` reads the bytes; this module decides which problem to
//! report and says it, before the glue parses the blocks themselves.

/// What a file is configured as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// A certificate chain, leaf first, with its key elsewhere
    /// (`server.tls.certificate.cert`, `sip.tls_cert`).
    Chain,
    /// A CA bundle (`ca_file`, `backend_ca_file`, `core_ca_file`,
    /// `server.acme.ca_file`).
    CaBundle,
    /// A private key (`server.tls.certificate.key`, `sip.tls_key`).
    Key,
}

/// Why a file cannot be what it is configured as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileProblem {
    /// Nothing but white space.
    Empty,
    /// Binary DER (starts with an ASN.1 SEQUENCE), not PEM.
    Der,
    /// No `-----BEGIN …-----` line at all.
    NotPem,
    /// A private key where a certificate was wanted.
    KeyNotCertificate,
    /// A certificate signing request where a certificate was wanted.
    Csr,
    /// A certificate where a private key was wanted.
    CertificateNotKey,
    /// An encrypted private key.
    EncryptedKey,
    /// PEM, but none of the blocks wanted (their labels).
    Nothing(Vec<String>),
}

/// The labels of the PEM blocks in `bytes` (`CERTIFICATE`, `PRIVATE KEY`…).
pub fn pem_labels(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("-----BEGIN ")?
                .strip_suffix("-----")
                .map(str::to_string)
        })
        .collect()
}

fn is_key(label: &str) -> bool {
    label.ends_with("PRIVATE KEY") && label != "ENCRYPTED PRIVATE KEY"
}

fn is_cert(label: &str) -> bool {
    label == "CERTIFICATE" || label == "TRUSTED CERTIFICATE"
}

/// The problem with `bytes` as a `wanted` file, if any (`None`: it holds
/// the blocks wanted; whether they parse is the next question).
pub fn inspect(bytes: &[u8], wanted: Wanted) -> Option<FileProblem> {
    let labels = pem_labels(bytes);
    let encrypted = labels.iter().any(|l| l == "ENCRYPTED PRIVATE KEY")
        || String::from_utf8_lossy(bytes).contains("Proc-Type: 4,ENCRYPTED");
    if wanted == Wanted::Key && encrypted {
        return Some(FileProblem::EncryptedKey);
    }
    if labels.is_empty() {
        return Some(if bytes.iter().all(u8::is_ascii_whitespace) {
            FileProblem::Empty
        } else if bytes.first() == Some(&0x30) {
            FileProblem::Der
        } else {
            FileProblem::NotPem
        });
    }
    let has = |f: fn(&str) -> bool| labels.iter().any(|l| f(l));
    match wanted {
        Wanted::Key if has(is_key) => None,
        Wanted::Key if has(is_cert) => Some(FileProblem::CertificateNotKey),
        Wanted::Chain | Wanted::CaBundle if has(is_cert) => None,
        Wanted::Chain | Wanted::CaBundle if has(is_key) || encrypted => {
            Some(FileProblem::KeyNotCertificate)
        }
        Wanted::Chain | Wanted::CaBundle if has(|l| l.contains("CERTIFICATE REQUEST")) => {
            Some(FileProblem::Csr)
        }
        _ => Some(FileProblem::Nothing(labels)),
    }
}

impl FileProblem {
    /// The sentence for `check-config`, about the file shown as `shown`.
    pub fn message(&self, shown: &str, wanted: Wanted) -> String {
        let block = match wanted {
            Wanted::Key => "PRIVATE KEY",
            Wanted::Chain | Wanted::CaBundle => "CERTIFICATE",
        };
        match self {
            FileProblem::Empty => format!("`{shown}` is empty"),
            FileProblem::Der => format!(
                "`{shown}` is in binary DER form, not PEM; convert it with `openssl {} -inform der -in {shown} -out {shown}.pem`",
                if wanted == Wanted::Key { "pkey" } else { "x509" }
            ),
            FileProblem::NotPem => {
                format!("`{shown}` is not a PEM file: it has no `-----BEGIN {block}-----` line")
            }
            FileProblem::KeyNotCertificate => match wanted {
                Wanted::CaBundle => format!("`{shown}` holds a private key, not a certificate: give the CA's certificate (or the server's own certificate, to trust exactly it), never a key"),
                _ => format!("`{shown}` holds a private key, not a certificate: are the certificate and the key swapped?"),
            },
            FileProblem::Csr => format!("`{shown}` holds a certificate signing request (CSR), not a certificate: give the certificate the CA issued for it"),
            FileProblem::CertificateNotKey => format!("`{shown}` holds a certificate, not a private key: are the certificate and the key swapped?"),
            FileProblem::EncryptedKey => format!("`{shown}` holds an encrypted private key; encrypted keys are not supported: decrypt it with `openssl pkey -in {shown} -out {shown}.plain` and keep the result readable only by ucgate"),
            FileProblem::Nothing(labels) => format!(
                "`{shown}` holds no {} (its PEM blocks: {})",
                if wanted == Wanted::Key { "private key" } else { "certificate" },
                labels.join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &[u8] = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const KEY: &[u8] = b"-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n";
    const EC_KEY: &[u8] = b"-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n";
    const ENC: &[u8] =
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIHs\n-----END ENCRYPTED PRIVATE KEY-----\n";
    const OLD_ENC: &[u8] = b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nabc\n-----END RSA PRIVATE KEY-----\n";
    const CSR: &[u8] =
        b"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n";

    #[test]
    fn the_right_blocks_pass() {
        assert_eq!(inspect(CERT, Wanted::Chain), None);
        assert_eq!(inspect(CERT, Wanted::CaBundle), None);
        assert_eq!(inspect(KEY, Wanted::Key), None);
        assert_eq!(inspect(EC_KEY, Wanted::Key), None);
        // a key and its chain in one file: the certificate reader takes the
        // certificates, the key reader the key
        let both = [CERT, KEY].concat();
        assert_eq!(inspect(&both, Wanted::Chain), None);
        assert_eq!(inspect(&both, Wanted::Key), None);
    }

    #[test]
    fn swapped_encrypted_csr_der_and_empty_files_are_named() {
        let cases: [(&[u8], Wanted, FileProblem); 9] = [
            (KEY, Wanted::Chain, FileProblem::KeyNotCertificate),
            (CERT, Wanted::Key, FileProblem::CertificateNotKey),
            (ENC, Wanted::Key, FileProblem::EncryptedKey),
            (OLD_ENC, Wanted::Key, FileProblem::EncryptedKey),
            (ENC, Wanted::Chain, FileProblem::KeyNotCertificate),
            (CSR, Wanted::Chain, FileProblem::Csr),
            (b"\x30\x82\x01\x0a", Wanted::Chain, FileProblem::Der),
            (b" \n", Wanted::Key, FileProblem::Empty),
            (b"hello", Wanted::Key, FileProblem::NotPem),
        ];
        for (bytes, wanted, problem) in cases {
            assert_eq!(
                inspect(bytes, wanted),
                Some(problem),
                "{:?} as {wanted:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert_eq!(
            inspect(b"-----BEGIN X509 CRL-----\n", Wanted::CaBundle),
            Some(FileProblem::Nothing(vec!["X509 CRL".into()]))
        );
    }

    #[test]
    fn messages_name_the_file_and_the_fix() {
        assert_eq!(
            FileProblem::KeyNotCertificate.message("/k.pem", Wanted::Chain),
            "`/k.pem` holds a private key, not a certificate: are the certificate and the key swapped?"
        );
        assert!(FileProblem::KeyNotCertificate
            .message("/k.pem", Wanted::CaBundle)
            .contains("give the CA's certificate"));
        assert_eq!(
            FileProblem::Der.message("/c.der", Wanted::Chain),
            "`/c.der` is in binary DER form, not PEM; convert it with `openssl x509 -inform der -in /c.der -out /c.der.pem`"
        );
        assert!(FileProblem::Der
            .message("/k.der", Wanted::Key)
            .contains("`openssl pkey -inform der"));
        assert_eq!(
            FileProblem::EncryptedKey.message("/k", Wanted::Key),
            "`/k` holds an encrypted private key; encrypted keys are not supported: decrypt it with `openssl pkey -in /k -out /k.plain` and keep the result readable only by ucgate"
        );
        assert_eq!(
            FileProblem::Nothing(vec!["X509 CRL".into()]).message("/c", Wanted::CaBundle),
            "`/c` holds no certificate (its PEM blocks: X509 CRL)"
        );
    }
}
