//! `[sip]` and the `core` key of `sip-websocket` routes (issue 5).
//! Documented in docs/config.md and docs/sip.md.

use std::time::Duration;

use ucgate_proto::netset::{IpNet, NetSet};

use super::reader::{At, Ctx, Table};

/// A secret value: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub(super) fn new(s: String) -> Secret {
        Secret(s)
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Transport toward a SIP core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SipTransport {
    /// UDP (large requests switch to TCP).
    Udp,
    /// TCP.
    Tcp,
    /// TLS (certificate verified).
    Tls,
}

/// The `core` of a `sip-websocket` route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipCore {
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Transport.
    pub transport: SipTransport,
    /// Certificate check for a `transport=tls` core (`None` otherwise).
    pub tls: Option<super::common::BackendTls>,
}

/// `[sip]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipConfig {
    /// Flow-token HMAC key; `None`: each process draws a random one.
    pub flow_token_key: Option<Secret>,
    /// Host (and port) the clients and the core know the gateway by.
    pub advertised_host: Option<String>,
    /// Address (UDP and TCP) the gateway uses toward the core; `None`: the
    /// OS picks a port at each start.
    pub listen: Option<std::net::SocketAddr>,
    /// Requests to a UDP core larger than this go over TCP.
    pub udp_threshold: usize,
    /// Answer for a request to a flow that is gone: 430 or 480.
    pub flow_gone: u16,
    /// REGISTER without `Supported: path` gets 421.
    pub require_path_support: bool,
    /// Per-connection limit of messages from the client per second.
    pub max_messages_per_second: u32,
    /// Unparseable messages in a row before closing with 1008.
    pub max_garbage: u32,
    /// Certificate for TLS connections a TLS core opens to the gateway
    /// (default: the `[server.tls]` certificates).
    pub tls: Option<super::common::CertificateConfig>,
    /// Addresses allowed to send to the core-facing port (datagrams and
    /// TCP/TLS connections); `None`: the addresses the `core` resolves to.
    pub core_sources: Option<NetSet>,
    /// Connections the core may hold open to the core-facing port.
    pub core_max_connections: usize,
    /// A connection the core opened is closed after this long without a
    /// byte in either direction.
    pub core_idle_timeout: Duration,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            flow_token_key: None,
            advertised_host: None,
            listen: None,
            udp_threshold: 1300,
            flow_gone: 430,
            require_path_support: false,
            max_messages_per_second: 20,
            max_garbage: 5,
            tls: None,
            core_sources: None,
            core_max_connections: 64,
            core_idle_timeout: Duration::from_secs(180),
        }
    }
}

pub(super) const SIP_KEYS: &[&str] = &[
    "flow_token_key",
    "advertised_host",
    "listen",
    "udp_threshold",
    "flow_gone",
    "require_path_support",
    "max_messages_per_second",
    "max_garbage",
    "tls_cert",
    "tls_key",
    "core_sources",
    "core_max_connections",
    "core_idle_timeout",
];

/// Where `[sip]`'s keys that other sections check against were written:
/// `listen` (against the number of SIP routes) and `flow_token_key`
/// (unused with `[cluster]`).
#[derive(Default)]
pub(super) struct SipAt {
    pub(super) listen: Option<At<std::net::SocketAddr>>,
    pub(super) flow_token_key: Option<std::ops::Range<usize>>,
}

/// Reads `[sip]` (defaults when absent), with where its keys were written.
pub(super) fn read_sip(
    ctx: &mut Ctx<'_>,
    top: &mut Table<'_, '_>,
    base: &std::path::Path,
) -> (SipConfig, SipAt) {
    let mut s = SipConfig::default();
    let Some(mut t) = top.table(ctx, "sip", SIP_KEYS) else {
        return (s, SipAt::default());
    };
    let flow_token_key_at = t.value_span("flow_token_key");
    let listen = t.socket_addr(ctx, "listen");
    s.listen = listen.as_ref().map(|a| a.value);
    if let Some(k) = t.string(ctx, "flow_token_key", "a secret of at least 16 characters") {
        if k.value.len() < 16 {
            ctx.error(
                k.span.clone(),
                &k.key,
                "too short: use at least 16 characters (shared by every gateway node in front of the same core)",
            );
        } else {
            s.flow_token_key = Some(Secret(k.value));
        }
    }
    if let Some(h) = t.string(ctx, "advertised_host", "a host name or IP address") {
        let ok = !h.value.is_empty()
            && h.value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
        if ok {
            s.advertised_host = Some(h.value);
        } else {
            ctx.error(h.span.clone(), &h.key, "expected a host name or IP address");
        }
    }
    if let Some(n) = t.size(ctx, "udp_threshold", 200..=65_000) {
        s.udp_threshold = n as usize;
    }
    if let Some(v) = t.string(ctx, "flow_gone", "\"430\" or \"480\"") {
        match v.value.as_str() {
            "430" => s.flow_gone = 430,
            "480" => s.flow_gone = 480,
            _ => ctx.error(v.span.clone(), &v.key, "expected \"430\" or \"480\""),
        }
    }
    if let Some(v) = t.bool(ctx, "require_path_support") {
        s.require_path_support = v;
    }
    if let Some(n) = t.integer(ctx, "max_messages_per_second", 1..=100_000) {
        s.max_messages_per_second = n as u32;
    }
    if let Some(n) = t.integer(ctx, "max_garbage", 1..=1000) {
        s.max_garbage = n as u32;
    }
    if let Some(items) = t.string_list(ctx, "core_sources") {
        let mut nets = Vec::new();
        for item in items {
            match IpNet::parse(&item.value) {
                Ok(n) => nets.push(n),
                Err(e) => ctx.error(item.span, &item.key, e.to_string()),
            }
        }
        s.core_sources = Some(NetSet::new(nets));
    }
    if let Some(n) = t.integer(ctx, "core_max_connections", 1..=100_000) {
        s.core_max_connections = n as usize;
    }
    if let Some(d) = t.duration(
        ctx,
        "core_idle_timeout",
        Duration::from_millis(100)..=Duration::from_secs(86_400),
    ) {
        s.core_idle_timeout = d;
    }
    let cert = t.string(ctx, "tls_cert", "a path to a PEM certificate chain");
    let key = t.string(ctx, "tls_key", "a path to a PEM private key");
    match (cert, key) {
        (Some(cert), Some(key)) => s.tls = super::common::cert_pair(ctx, base, cert, key),
        (Some(v), None) | (None, Some(v)) => ctx.error(
            v.span,
            &v.key,
            "`tls_cert` and `tls_key` go together (PEM files)",
        ),
        (None, None) => {}
    }
    t.finish(ctx);
    (
        s,
        SipAt {
            listen,
            flow_token_key: flow_token_key_at,
        },
    )
}

/// Parses `sip:host:port;transport=udp|tcp|tls`.
pub(super) fn parse_core(s: &str) -> Result<SipCore, String> {
    let rest = s
        .strip_prefix("sip:")
        .ok_or("expected a SIP URI such as \"sip:127.0.0.1:5070;transport=udp\"")?;
    let (hostport, params) = rest.split_once(';').unwrap_or((rest, ""));
    let mut transport = SipTransport::Udp;
    for p in params.split(';').filter(|p| !p.is_empty()) {
        match p.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("transport") => {
                transport = match v.to_ascii_lowercase().as_str() {
                    "udp" => SipTransport::Udp,
                    "tcp" => SipTransport::Tcp,
                    "tls" => SipTransport::Tls,
                    _ => return Err(format!("unknown transport `{v}`: use udp, tcp or tls")),
                }
            }
            _ => {
                return Err(format!(
                    "unknown parameter `{p}`: only `transport` is allowed"
                ))
            }
        }
    }
    let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
        let (h, p) = r.split_once(']').ok_or("unclosed `[` in the host")?;
        (h, p.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() || host.contains(':') && !hostport.starts_with('[') {
        return Err("expected `host:port`".into());
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or("expected a port between 1 and 65535")?,
        None if transport == SipTransport::Tls => 5061,
        None => 5060,
    };
    Ok(SipCore {
        host: host.to_string(),
        port,
        transport,
        tls: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores() {
        let c = parse_core("sip:127.0.0.1:5070;transport=udp").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.transport),
            ("127.0.0.1", 5070, SipTransport::Udp)
        );
        let c = parse_core("sip:[::1]:5080;transport=TCP").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.transport),
            ("::1", 5080, SipTransport::Tcp)
        );
        assert_eq!(
            parse_core("sip:core.example;transport=tls").unwrap().port,
            5061
        );
        assert!(parse_core("127.0.0.1:5070").is_err());
        assert!(parse_core("sip:h:5070;transport=sctp").is_err());
        assert!(parse_core("sip:h:0").is_err());
    }

    #[test]
    fn secret_never_prints() {
        let s = Secret("a very secret key value".into());
        assert!(!format!("{s:?} {s}").contains("secret key"));
    }
}
