//! `[xmpp]` and `[xmpp.domains."…"]`: XMPP over WebSocket (RFC 7395) toward
//! XMPP servers over TCP.
//!
//! The XMPP server a client reaches is chosen by the `to` domain of its
//! `<open/>` among the configured domains (an allowlist); each domain has a
//! fixed `address` or is found by DNS SRV (`crate::xmpp::resolve`), and says
//! how the gateway secures the TCP connection (`tls`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::common::{parse_host_port, resolve, SEC};
use super::reader::{At, Ctx, Table};

/// `[xmpp]`: settings shared by every XMPP route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmppConfig {
    /// Public `ws://` / `wss://` URL of the XMPP WebSocket route, advertised
    /// by XEP-0156 host-meta.
    pub websocket_url: Option<String>,
    /// Public `http://` / `https://` URL of the BOSH route (for host-meta).
    pub bosh_url: Option<String>,
    /// Deadline for reaching an XMPP server: DNS SRV, address lookup, TCP
    /// connect and (direct TLS) the TLS handshake.
    pub connect_timeout: Duration,
    /// Deadline for the gateway's own negotiation with the server: stream
    /// header, STARTTLS, TLS handshake, restart and stream features.
    pub negotiation_timeout: Duration,
    /// Largest stanza (one top-level element) accepted either way, in bytes.
    pub max_stanza_size: usize,
    /// Deepest element nesting accepted in a stanza.
    pub max_depth: usize,
    /// Most attributes (namespace declarations included) on one element.
    pub max_attributes: usize,
    /// At the drain, close an open stream toward the server with
    /// `</stream:stream>` (the session ends) instead of cutting the
    /// connection (a server with XEP-0198 keeps it for resumption).
    pub drain_close_stream: bool,
    /// Allowed XMPP domains by lower-case name.
    pub domains: BTreeMap<String, XmppDomain>,
}

impl Default for XmppConfig {
    fn default() -> Self {
        XmppConfig {
            websocket_url: None,
            bosh_url: None,
            connect_timeout: 10 * SEC,
            negotiation_timeout: 10 * SEC,
            max_stanza_size: 256 << 10,
            max_depth: 32,
            max_attributes: 64,
            drain_close_stream: false,
            domains: BTreeMap::new(),
        }
    }
}

/// How the gateway secures its TCP connection to a domain's server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XmppTls {
    /// Plain TCP, then STARTTLS (RFC 6120 §5), required: the default.
    StartTls,
    /// TLS from the first byte (XEP-0368).
    Direct,
    /// No TLS: loopback servers only unless `allow_insecure`.
    None,
}

impl XmppTls {
    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            XmppTls::StartTls => "starttls",
            XmppTls::Direct => "direct",
            XmppTls::None => "none",
        }
    }
}

/// `[xmpp.domains."<domain>"]`: one XMPP domain clients may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmppDomain {
    /// The domain, lower case (the key of the table).
    pub name: String,
    /// Fixed server host (IP literal without brackets, or name) and port;
    /// `None`: DNS SRV for the domain.
    pub address: Option<(String, u16)>,
    /// TLS toward the server.
    pub tls: XmppTls,
    /// PEM CA bundle trusted for the server's certificate instead of the
    /// system roots.
    pub ca_file: Option<PathBuf>,
    /// Name the server's certificate must be valid for (default: the domain).
    pub server_name: String,
}

pub(super) const XMPP_KEYS: &[&str] = &[
    "websocket_url",
    "bosh_url",
    "connect_timeout",
    "negotiation_timeout",
    "max_stanza_size",
    "max_depth",
    "max_attributes",
    "drain_close_stream",
    "domains",
];
pub(super) const DOMAINS_KEYS: &[&str] = &[];
pub(super) const DOMAIN_KEYS: &[&str] =
    &["address", "tls", "ca_file", "server_name", "allow_insecure"];

/// Reads `[xmpp]` from the top-level table (defaults when absent), and
/// whether any `[xmpp.domains."…"]` table is written, valid or not (a domain
/// with a bad value is reported as such, not as a missing domain).
pub(super) fn read_xmpp(
    ctx: &mut Ctx<'_>,
    top: &mut Table<'_, '_>,
    base: &Path,
) -> (XmppConfig, bool) {
    let mut x = XmppConfig::default();
    let mut domains_written = false;
    let Some(mut t) = top.table(ctx, "xmpp", XMPP_KEYS) else {
        return (x, domains_written);
    };
    if let Some(u) = t.string(
        ctx,
        "websocket_url",
        "a URL such as \"wss://chat.example.org/xmpp-websocket\"",
    ) {
        match check_url(&u.value, &["ws", "wss"]) {
            Ok(()) => x.websocket_url = Some(u.value),
            Err(e) => ctx.error(
                u.span,
                &u.key,
                format!("{e}; expected an absolute ws:// or wss:// URL such as \"wss://chat.example.org/xmpp-websocket\""),
            ),
        }
    }
    if let Some(u) = t.string(
        ctx,
        "bosh_url",
        "a URL such as \"https://chat.example.org/http-bind\"",
    ) {
        match check_url(&u.value, &["http", "https"]) {
            Ok(()) => x.bosh_url = Some(u.value),
            Err(e) => ctx.error(
                u.span,
                &u.key,
                format!("{e}; expected an absolute http:// or https:// URL such as \"https://chat.example.org/http-bind\""),
            ),
        }
    }
    let ten_min = Duration::from_secs(600);
    if let Some(d) = t.duration(ctx, "connect_timeout", Duration::from_millis(10)..=ten_min) {
        x.connect_timeout = d;
    }
    if let Some(d) = t.duration(
        ctx,
        "negotiation_timeout",
        Duration::from_millis(10)..=ten_min,
    ) {
        x.negotiation_timeout = d;
    }
    if let Some(n) = t.size(ctx, "max_stanza_size", 1024..=16 << 20) {
        x.max_stanza_size = n as usize;
    }
    if let Some(n) = t.integer(ctx, "max_depth", 2..=1000) {
        x.max_depth = n as usize;
    }
    if let Some(n) = t.integer(ctx, "max_attributes", 1..=10_000) {
        x.max_attributes = n as usize;
    }
    if let Some(b) = t.bool(ctx, "drain_close_stream") {
        x.drain_close_stream = b;
    }
    if let Some(mut domains) = t.table(ctx, "domains", DOMAINS_KEYS) {
        let mut seen: Vec<At<String>> = Vec::new();
        for (name, mut d) in domains.named_tables(ctx, DOMAIN_KEYS) {
            domains_written = true;
            let domain = read_domain(ctx, &name, &mut d, base);
            d.finish(ctx);
            let lower = name.value.to_ascii_lowercase();
            if let Some(first) = seen.iter().find(|s| s.value == lower) {
                ctx.error(
                    name.span.clone(),
                    &name.key,
                    format!(
                        "the domain `{lower}` is already configured as `{}` (domain names are compared in lower case)",
                        first.key
                    ),
                );
                continue;
            }
            seen.push(At {
                value: lower.clone(),
                ..name
            });
            if let Some(domain) = domain {
                x.domains.insert(lower, domain);
            }
        }
        domains.finish(ctx);
    }
    t.finish(ctx);
    (x, domains_written)
}

fn read_domain(
    ctx: &mut Ctx<'_>,
    name: &At<String>,
    t: &mut Table<'_, '_>,
    base: &Path,
) -> Option<XmppDomain> {
    let domain = match check_domain(&name.value) {
        Ok(d) => Some(d),
        Err(e) => {
            ctx.error(name.span.clone(), &name.key, e);
            None
        }
    };
    let address = match t.string(ctx, "address", "\"host:port\"") {
        Some(a) => match parse_address(&a.value) {
            Ok(v) => Some(Some((v, a))),
            Err(e) => {
                ctx.error(a.span, &a.key, e);
                None
            }
        },
        None => Some(None),
    };
    let tls_at = t.string(ctx, "tls", "\"starttls\", \"direct\" or \"none\"");
    let tls = match &tls_at {
        None => Some(XmppTls::StartTls),
        Some(v) => {
            match v.value.as_str() {
                "starttls" => Some(XmppTls::StartTls),
                "direct" => Some(XmppTls::Direct),
                "none" => Some(XmppTls::None),
                other => {
                    ctx.error(
                    v.span.clone(),
                    &v.key,
                    format!("unknown TLS mode `{other}`; expected \"starttls\", \"direct\" or \"none\""),
                );
                    None
                }
            }
        }
    };
    let ca_file = t.string(ctx, "ca_file", "a path to a PEM CA bundle");
    let server_name = t.string(ctx, "server_name", "a DNS name");
    let allow_insecure = t.bool(ctx, "allow_insecure");
    let ca_path = ca_file.as_ref().map(|c| resolve(base, &c.value));
    if let (Some(c), Some(p)) = (&ca_file, &ca_path) {
        match crate::certcheck::check_ca_file(p, crate::tls_explain::now_secs()) {
            Ok(None) => {}
            Ok(Some(w)) => ctx.warning(c.span.clone(), &c.key, w.0),
            Err(e) => ctx.error(c.span.clone(), &c.key, e),
        }
    }
    if let Some(s) = &server_name {
        if rustls_pki_types::ServerName::try_from(s.value.clone()).is_err() {
            ctx.error(
                s.span.clone(),
                &s.key,
                "expected a DNS name or IP address for certificate verification",
            );
        }
    }
    match tls {
        Some(XmppTls::None) => {
            for v in [&ca_file, &server_name].into_iter().flatten() {
                ctx.error(
                    v.span.clone(),
                    &v.key,
                    "only meaningful with `tls = \"starttls\"` or `tls = \"direct\"`",
                );
            }
            let loopback = matches!(&address, Some(Some(((host, _), _))) if is_loopback(host));
            let unknown = address.is_none(); // already reported
            if !loopback && !unknown && allow_insecure != Some(true) {
                let (span, key) = match &tls_at {
                    Some(v) => (v.span.clone(), v.key.clone()),
                    None => (t.span(), t.key("tls")),
                };
                ctx.error(
                    span,
                    &key,
                    "`tls = \"none\"` sends passwords in clear text: only allowed when `address` is a loopback address (127.0.0.0/8, ::1 or localhost), or with `allow_insecure = true`",
                );
            }
        }
        Some(_) if allow_insecure == Some(true) => {
            let span = t.value_span("allow_insecure").unwrap_or(t.span());
            ctx.error(
                span,
                &t.key("allow_insecure"),
                "only meaningful with `tls = \"none\"`",
            );
        }
        Some(_) | None => {}
    }
    let domain = domain?;
    let address = address?.map(|(v, _)| v);
    Some(XmppDomain {
        server_name: server_name
            .map(|s| s.value)
            .unwrap_or_else(|| domain.clone()),
        name: domain,
        address,
        tls: tls?,
        ca_file: ca_path,
    })
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `host:port` or `[v6]:port`, without a scheme.
fn parse_address(s: &str) -> Result<(String, u16), String> {
    let expected = "expected \"host:port\" (e.g. \"127.0.0.1:5222\", \"[::1]:5222\", \"xmpp.example.org:5222\")";
    if let Some((scheme, _)) = s.split_once("://") {
        return Err(format!(
            "no scheme (`{scheme}://`) here: TLS is chosen by `tls`; {expected}"
        ));
    }
    parse_host_port(s, expected)
}

/// Checks an XMPP domain name and returns it in lower case: a DNS name of
/// letters, digits and hyphens (internationalised names in their ASCII
/// `xn--` form), or `localhost`; not an IP address.
pub(super) fn check_domain(name: &str) -> Result<String, String> {
    let expected = "expected a DNS name such as \"example.org\" or \"localhost\"";
    let lower = name.to_ascii_lowercase();
    if lower.is_empty() {
        return Err(format!("empty domain name; {expected}"));
    }
    if !lower.is_ascii() {
        return Err(format!(
            "non-ASCII domain name: write it in its ASCII (\"xn--\") form; {expected}"
        ));
    }
    if lower.len() > 253 {
        return Err(format!("longer than 253 characters; {expected}"));
    }
    let labels: Vec<&str> = lower.split('.').collect();
    for l in &labels {
        let ok = !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(format!(
                "`{name}` is not a valid DNS name (labels of 1 to 63 letters, digits or `-`, separated by single dots, no trailing dot); {expected}"
            ));
        }
    }
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "IP addresses are not supported as XMPP domains; {expected}"
        ));
    }
    Ok(lower)
}

/// Checks an absolute URL with one of `schemes` (lower or upper case):
/// `scheme://host[:port][/path][?query]`, no user info, no fragment, no
/// spaces or characters that need percent-encoding.
pub(super) fn check_url(s: &str, schemes: &[&str]) -> Result<(), String> {
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(format!("`{s}` is not an absolute URL"));
    };
    if !schemes.iter().any(|w| scheme.eq_ignore_ascii_case(w)) {
        return Err(format!("the scheme `{scheme}://` is not allowed here"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "\"<>\\^`{|}".contains(*c))
    {
        return Err(format!(
            "the URL holds {c:?}, which must be percent-encoded"
        ));
    }
    if s.contains('#') {
        return Err("a fragment (`#…`) is not allowed".to_string());
    }
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("user information (`user@`) is not allowed".to_string());
    }
    let (host, port) = if let Some(r) = authority.strip_prefix('[') {
        match r.split_once(']') {
            Some((h, p)) if h.parse::<std::net::Ipv6Addr>().is_ok() => (h, p),
            _ => return Err("an IPv6 host needs to be a valid address in brackets".to_string()),
        }
    } else {
        match authority.split_once(':') {
            Some((h, _)) => (h, &authority[h.len()..]),
            None => (authority, ""),
        }
    };
    if host.is_empty() {
        return Err("the URL has no host".to_string());
    }
    if !port.is_empty() {
        let ok = port
            .strip_prefix(':')
            .and_then(|p| p.parse::<u16>().ok())
            .is_some_and(|p| p != 0);
        if !ok {
            return Err("the port must be 1 to 65535".to_string());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        assert_eq!(check_domain("Example.ORG").unwrap(), "example.org");
        assert_eq!(check_domain("localhost").unwrap(), "localhost");
        assert_eq!(
            check_domain("xn--bcher-kva.example").unwrap(),
            "xn--bcher-kva.example"
        );
        assert_eq!(check_domain("chat").unwrap(), "chat");
        for bad in [
            "",
            "example.org.",
            "-a.example",
            "a-.example",
            "a..example",
            "a b.example",
            "bücher.example",
            "127.0.0.1",
            "a_b.example",
            &"a".repeat(64),
        ] {
            assert!(check_domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls() {
        let ws = &["ws", "wss"];
        for ok in [
            "wss://chat.example.org/xmpp-websocket",
            "ws://127.0.0.1:5280/xmpp-websocket",
            "WSS://chat.example.org",
            "wss://[::1]:443/x?y=1",
        ] {
            check_url(ok, ws).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "chat.example.org/xmpp",
            "https://chat.example.org/xmpp",
            "wss:///xmpp",
            "wss://chat.example.org:0/",
            "wss://chat.example.org:99999/",
            "wss://chat.example.org:x/",
            "wss://u@chat.example.org/",
            "wss://chat.example.org/a b",
            "wss://chat.example.org/#x",
            "wss://chat.example.org/\"",
            "wss://[::1/",
        ] {
            assert!(check_url(bad, ws).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_and_loopback() {
        assert_eq!(
            parse_address("127.0.0.1:5222").unwrap(),
            ("127.0.0.1".into(), 5222)
        );
        assert_eq!(parse_address("[::1]:5222").unwrap(), ("::1".into(), 5222));
        assert!(parse_address("tls://x:5223").is_err());
        assert!(parse_address("x").is_err());
        assert!(parse_address("x:0").is_err());
        assert!(is_loopback("127.3.2.1"));
        assert!(is_loopback("::1"));
        assert!(is_loopback("LocalHost"));
        assert!(!is_loopback("10.0.0.1"));
        assert!(!is_loopback("localhost.example"));
    }
}
