//! `[cluster]`: this gateway as one node of several behind a load balancer
//! (issue 17). Documented in docs/config.md and docs/cluster.md.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ucgate_proto::bosh::sid::NodeName;

use super::common::{resolve, SEC};
use super::reader::{At, Ctx, Table};
use super::sip::Secret;

/// Shortest shared secret, in characters.
const SECRET_MIN: usize = 32;

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// This node's name (in the BOSH sids it issues).
    pub node: NodeName,
    /// The secret shared by every node (from `secret` or `secret_file`).
    pub secret: Secret,
    /// The internal listener, for requests forwarded by the other nodes.
    pub listen: SocketAddr,
    /// The other nodes, by name, in file order.
    pub peers: Vec<Peer>,
    /// An SRV name whose records are more peers (re-resolved periodically).
    pub peers_srv: Option<String>,
    /// How often `peers_srv` is resolved again.
    pub peers_refresh: Duration,
    /// The DNS server asked for `peers_srv` (`None`: the system's).
    pub dns_server: Option<SocketAddr>,
    /// Connections the internal listener holds at once.
    pub max_connections: usize,
    /// How much longer than its BOSH `wait` a forwarded request may take.
    pub forward_timeout: Duration,
    /// How far apart two nodes' clocks may be (a forwarded request signed
    /// further away from the receiver's clock is refused).
    pub max_clock_skew: Duration,
}

/// Another node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its `cluster.node`.
    pub name: NodeName,
    /// Its `cluster.listen`.
    pub addr: SocketAddr,
}

pub(super) const CLUSTER_KEYS: &[&str] = &[
    "node",
    "secret",
    "secret_file",
    "listen",
    "peers",
    "forward_timeout",
    "max_clock_skew",
    "peers_srv",
    "peers_refresh",
    "dns_server",
    "max_connections",
];

/// The value of `node` that stands for the machine's host name.
pub const NODE_FROM_HOSTNAME: &str = "@hostname";

/// This machine's host name (Linux).
fn hostname() -> std::io::Result<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
}

/// Reads `[cluster]` (`None` when absent: a single node). The span of
/// `listen` comes back too, for the clash with the other listeners.
pub(super) fn read_cluster(
    ctx: &mut Ctx<'_>,
    top: &mut Table<'_, '_>,
    base: &Path,
) -> Option<(ClusterConfig, At<SocketAddr>)> {
    let mut t = top.table(ctx, "cluster", CLUSTER_KEYS)?;
    let node = match t.string(ctx, "node", "a node name such as \"gw-1\"") {
        Some(n) if n.value == NODE_FROM_HOSTNAME => {
            match hostname().map_err(|e| e.to_string()).and_then(|h| {
                ucgate_proto::peers::node_of_hostname(&h).map_err(|e| {
                    format!(
                        "the host name `{}` does not make a node name: {e}",
                        h.trim()
                    )
                })
            }) {
                Ok(name) => Some(name),
                Err(e) => {
                    ctx.error(
                        n.span,
                        &n.key,
                        format!("{e}; write the node's name instead of \"{NODE_FROM_HOSTNAME}\""),
                    );
                    None
                }
            }
        }
        Some(n) => match NodeName::parse(&n.value) {
            Ok(name) => Some(name),
            Err(e) => {
                ctx.error(
                    n.span,
                    &n.key,
                    format!(
                        "{e} (this node's short name, unique in the cluster, such as \"gw-1\")"
                    ),
                );
                None
            }
        },
        None => {
            missing(ctx, &t, "node", "this node's short name, unique in the cluster (1 to 16 characters from a-z, 0-9 and `-`), such as \"gw-1\"");
            None
        }
    };
    let secret = read_secret(ctx, &mut t, base);
    let listen = t.socket_addr(ctx, "listen");
    if listen.is_none() && t.value_span("listen").is_none() {
        missing(
            ctx,
            &t,
            "listen",
            "the address of the internal listener the other nodes reach this one at, such as \"10.0.0.11:5291\"",
        );
    }
    let mut forward_timeout = 10 * SEC;
    if let Some(d) = t.duration(
        ctx,
        "forward_timeout",
        Duration::from_millis(100)..=(600 * SEC),
    ) {
        forward_timeout = d;
    }
    let mut max_clock_skew = 30 * SEC;
    if let Some(d) = t.duration(ctx, "max_clock_skew", SEC..=(3600 * SEC)) {
        max_clock_skew = d;
    }
    let peers_srv = t
        .string(ctx, "peers_srv", "a DNS name such as \"_cluster._tcp.ucgate-peers.default.svc.cluster.local\"")
        .and_then(|s| {
            let ok = !s.value.is_empty()
                && s.value.len() <= 253
                && s.value.trim_end_matches('.').split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                });
            if ok {
                Some(s.value)
            } else {
                ctx.error(s.span, &s.key, "expected a DNS name whose SRV records are the peers, such as \"_cluster._tcp.ucgate-peers.default.svc.cluster.local\"");
                None
            }
        });
    let mut peers_refresh = 10 * SEC;
    if let Some(d) = t.duration(ctx, "peers_refresh", SEC..=(3600 * SEC)) {
        peers_refresh = d;
    }
    let dns_server = t.socket_addr(ctx, "dns_server").map(|a| a.value);
    let max_connections = t
        .integer(ctx, "max_connections", 1..=100_000)
        .map_or(256, |n| n as usize);
    let mut peers: Vec<(Peer, At<String>)> = Vec::new();
    let entries = t
        .string_table(ctx, "peers", "an address such as \"10.0.0.12:5291\"")
        .unwrap_or_default();
    for (name, addr) in entries {
        let n = match NodeName::parse(&name.value) {
            Ok(n) => n,
            Err(e) => {
                ctx.error(
                    name.span,
                    &name.key,
                    format!("{e} (the peer's `cluster.node`)"),
                );
                continue;
            }
        };
        let Ok(a) = addr.value.parse::<SocketAddr>() else {
            ctx.error(
                addr.span,
                &addr.key,
                "expected the peer's `cluster.listen`: an IP address and port such as \"10.0.0.12:5291\" (a fixed address: requests are only ever forwarded to the addresses listed here)",
            );
            continue;
        };
        if node.as_ref() == Some(&n) {
            ctx.error(
                name.span,
                &name.key,
                "this is this node's own name (`cluster.node`): list only the other nodes",
            );
            continue;
        }
        if listen.as_ref().is_some_and(|l| l.value == a) {
            ctx.error(
                addr.span,
                &addr.key,
                "this is this node's own `cluster.listen`: list only the other nodes",
            );
            continue;
        }
        if let Some((p, _)) = peers.iter().find(|(p, _)| p.addr == a) {
            ctx.error(
                addr.span,
                &addr.key,
                format!(
                    "the same address as peer `{}`: each node has its own internal listener",
                    p.name
                ),
            );
            continue;
        }
        peers.push((Peer { name: n, addr: a }, name));
    }
    t.finish(ctx);
    Some((
        ClusterConfig {
            node: node?,
            secret: secret?,
            listen: listen.as_ref()?.value,
            peers: peers.into_iter().map(|(p, _)| p).collect(),
            forward_timeout,
            max_clock_skew,
            peers_srv,
            peers_refresh,
            dns_server,
            max_connections,
        },
        listen?,
    ))
}

fn missing(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, key: &str, what: &str) {
    ctx.error(t.span(), &t.key(key), format!("missing: {what}"));
}

/// `secret` or `secret_file`, exactly one, at least [`SECRET_MIN`] characters.
fn read_secret(ctx: &mut Ctx<'_>, t: &mut Table<'_, '_>, base: &Path) -> Option<Secret> {
    let inline = t.string(ctx, "secret", "a secret of at least 32 characters");
    let file = t.string(ctx, "secret_file", "a path to a file holding the secret");
    let (value, at) = match (inline, file) {
        (Some(s), None) => (s.value.clone(), s),
        (None, Some(f)) => {
            let p = resolve(base, &f.value);
            match std::fs::read_to_string(&p) {
                // A final newline, as editors write it, is not part of the secret.
                Ok(text) => (text.trim_end_matches(['\n', '\r']).to_string(), f),
                Err(e) => {
                    ctx.error(f.span, &f.key, format!("cannot read {}: {e}", p.display()));
                    return None;
                }
            }
        }
        (Some(s), Some(_)) => {
            ctx.error(
                s.span,
                &s.key,
                "both `secret` and `secret_file` are set: keep one",
            );
            return None;
        }
        (None, None) => {
            missing(
                ctx,
                t,
                "secret",
                "the secret shared by every node (at least 32 characters), as `secret` or in a file named by `secret_file`",
            );
            return None;
        }
    };
    if value.chars().count() < SECRET_MIN {
        ctx.error(
            at.span,
            &at.key,
            format!("the secret is too short ({} characters): use at least {SECRET_MIN}, the same on every node (for example the output of `openssl rand -hex 32`)", value.chars().count()),
        );
        return None;
    }
    Some(Secret::new(value))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Config;

    const BASE: &str = "[server]\nlisten = \"127.0.0.1:5290\"\n";
    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn parse(text: &str, base: &Path) -> Result<Config, Vec<String>> {
        Config::parse(&format!("{BASE}{text}"), "t.toml", base).map_err(|e| {
            e.errors
                .iter()
                .map(|e| format!("{}: {}", e.key, e.message))
                .collect()
        })
    }

    fn errors(text: &str) -> Vec<String> {
        parse(text, Path::new("/nonexistent")).expect_err("expected errors")
    }

    #[test]
    fn absent_is_a_single_node() {
        let c = parse("", Path::new("/")).unwrap();
        assert!(c.cluster.is_none());
    }

    #[test]
    fn everything_set() {
        let c = parse(
            &format!(
                "[cluster]\nnode = \"gw-1\"\nsecret = \"{SECRET}\"\nlisten = \"127.0.0.11:5291\"\n\
                 forward_timeout = \"3s\"\n[cluster.peers]\ngw-2 = \"127.0.0.12:5291\"\n\
                 gw-3 = \"[::1]:5293\"\n"
            ),
            Path::new("/"),
        )
        .unwrap();
        let c = c.cluster.unwrap();
        assert_eq!(c.node.as_str(), "gw-1");
        assert_eq!(c.secret.expose(), SECRET.as_bytes());
        assert_eq!(c.listen.to_string(), "127.0.0.11:5291");
        assert_eq!(c.forward_timeout, std::time::Duration::from_secs(3));
        assert_eq!(c.max_clock_skew, std::time::Duration::from_secs(30));
        let peers: Vec<(String, String)> = c
            .peers
            .iter()
            .map(|p| (p.name.to_string(), p.addr.to_string()))
            .collect();
        assert_eq!(
            peers,
            [
                ("gw-2".to_string(), "127.0.0.12:5291".to_string()),
                ("gw-3".to_string(), "[::1]:5293".to_string())
            ]
        );
        assert!(
            !format!("{c:?}").contains(SECRET),
            "the secret is never printed"
        );
    }

    #[test]
    fn defaults_and_a_node_without_peers() {
        let c = parse(
            &format!(
                "[cluster]\nnode = \"a\"\nsecret = \"{SECRET}\"\nlisten = \"127.0.0.1:5291\"\n"
            ),
            Path::new("/"),
        )
        .unwrap()
        .cluster
        .unwrap();
        assert!(c.peers.is_empty());
        assert_eq!(c.forward_timeout, std::time::Duration::from_secs(10));
    }

    #[test]
    fn secret_file_relative_to_the_config_and_without_its_final_newline() {
        let dir = std::env::temp_dir().join(format!("ucgate-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("secret"), format!("{SECRET}\n")).unwrap();
        std::fs::write(dir.join("short"), "too short\n").unwrap();
        let text = |file: &str| {
            format!(
                "[cluster]\nnode = \"a\"\nsecret_file = \"{file}\"\nlisten = \"127.0.0.1:5291\"\n"
            )
        };
        let c = parse(&text("secret"), &dir).unwrap().cluster.unwrap();
        assert_eq!(c.secret.expose(), SECRET.as_bytes());
        let e = parse(&text("short"), &dir).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(
                "cluster.secret_file: the secret is too short (9 characters): use at least 32"
            ),
            "{e:?}"
        );
        let e = parse(&text("absent"), &dir).unwrap_err();
        assert!(
            e[0].starts_with("cluster.secret_file: cannot read"),
            "{e:?}"
        );
        assert!(e[0].contains("absent"), "{e:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_keys_are_named() {
        let e = errors("[cluster]\n");
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(
            e[0].starts_with("cluster.node: missing: this node's short name"),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("cluster.secret: missing: the secret shared by every node"),
            "{e:?}"
        );
        assert!(
            e[2].starts_with("cluster.listen: missing: the address of the internal listener"),
            "{e:?}"
        );
    }

    #[test]
    fn bad_values_are_explained() {
        let head = |node: &str, secret: &str| {
            format!("[cluster]\nnode = \"{node}\"\nsecret = \"{secret}\"\nlisten = \"127.0.0.1:5291\"\n")
        };
        let one = |text: String, want: &str| {
            let e = errors(&text);
            assert_eq!(e.len(), 1, "{text}: {e:?}");
            assert!(e[0].starts_with(want), "{text}: {e:?}");
        };
        one(
            head("GW1", SECRET),
            "cluster.node: a node name uses only lowercase letters a-z, digits 0-9 and `-`",
        );
        one(
            head("a-very-long-node-name", SECRET),
            "cluster.node: a node name has at most 16 characters",
        );
        one(
            head("", SECRET),
            "cluster.node: a node name cannot be empty",
        );
        one(
            head("a", "short"),
            "cluster.secret: the secret is too short (5 characters)",
        );
        let with = |line: &str| format!("{}{line}", head("a", SECRET));
        one(
            with("secret_file = \"x\"\n"),
            "cluster.secret: both `secret` and `secret_file` are set",
        );
        one(
            with("forward_timeout = \"1h\"\n"),
            "cluster.forward_timeout: expected a duration from 100ms to",
        );
        one(
            with("nodes = 3\n"),
            "cluster.nodes: unknown key (did you mean `node`?)",
        );
        one(
            with("peers = [\"b\"]\n"),
            "cluster.peers: expected a table, found an array",
        );
        let peers = |body: &str| with(&format!("[cluster.peers]\n{body}"));
        one(
            peers("B = \"127.0.0.1:1\"\n"),
            "cluster.peers.\"B\": a node name uses only",
        );
        one(
            peers("b = 7\n"),
            "cluster.peers.\"b\": expected an address such as",
        );
        one(
            peers("b = \"gw-b.internal:5291\"\n"),
            "cluster.peers.\"b\": expected the peer's `cluster.listen`",
        );
        one(
            peers("a = \"127.0.0.1:1\"\n"),
            "cluster.peers.\"a\": this is this node's own name",
        );
        one(
            peers("b = \"127.0.0.1:5291\"\n"),
            "cluster.peers.\"b\": this is this node's own `cluster.listen`",
        );
        one(
            peers("b = \"127.0.0.1:1\"\nc = \"127.0.0.1:1\"\n"),
            "cluster.peers.\"c\": the same address as peer `b`",
        );
    }

    #[test]
    fn the_internal_listener_has_an_address_of_its_own() {
        for (other, addr) in [
            ("server.listen", "127.0.0.1:5290"),
            ("admin.listen", "127.0.0.1:9280"),
        ] {
            let e = errors(&format!(
                "[cluster]\nnode = \"a\"\nsecret = \"{SECRET}\"\nlisten = \"{addr}\"\n"
            ));
            assert_eq!(e.len(), 1, "{e:?}");
            assert!(
                e[0].starts_with(&format!("cluster.listen: the internal listener must have an address of its own, not that of {other}")),
                "{e:?}"
            );
        }
    }

    #[test]
    fn peers_from_dns_and_the_node_from_the_host_name() {
        let c = parse(
            &format!(
                "[cluster]\nnode = \"gw-1\"\nsecret = \"{SECRET}\"\nlisten = \"127.0.0.11:5291\"\n\
                 peers_srv = \"_cluster._tcp.ucgate-peers.default.svc.cluster.local\"\n\
                 peers_refresh = \"30s\"\ndns_server = \"10.96.0.10:53\"\n"
            ),
            Path::new("/"),
        )
        .unwrap()
        .cluster
        .unwrap();
        assert_eq!(
            c.peers_srv.as_deref(),
            Some("_cluster._tcp.ucgate-peers.default.svc.cluster.local")
        );
        assert_eq!(c.peers_refresh, std::time::Duration::from_secs(30));
        assert_eq!(c.dns_server.unwrap().to_string(), "10.96.0.10:53");
        let e = errors(&format!(
            "[cluster]\nnode = \"gw-1\"\nsecret = \"{SECRET}\"\nlisten = \"127.0.0.11:5291\"\n\
             peers_srv = \"not a name\"\npeers_refresh = \"0s\"\n"
        ));
        assert!(
            e.iter()
                .any(|e| e.starts_with("cluster.peers_srv: expected a DNS name")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|e| e.starts_with("cluster.peers_refresh:")),
            "{e:?}"
        );
        // "@hostname": this machine's host name, as a node name if it is one.
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let text = format!(
            "[cluster]\nnode = \"@hostname\"\nsecret = \"{SECRET}\"\nlisten = \"127.0.0.11:5291\"\n"
        );
        match ucgate_proto::peers::node_of_hostname(&host) {
            Ok(name) => assert_eq!(
                parse(&text, Path::new("/")).unwrap().cluster.unwrap().node,
                name
            ),
            Err(_) => assert!(
                errors(&text)[0].contains("does not make a node name"),
                "{host}"
            ),
        }
    }

    #[test]
    fn sip_flow_token_key_with_a_cluster_is_a_warning_not_used() {
        let cluster = format!(
            "[cluster]\nnode = \"gw-1\"\nsecret = \"{SECRET}\"\nlisten = \"127.0.0.11:5291\"\n"
        );
        let key = "[sip]\nflow_token_key = \"a key of sixteen+ characters\"\n";
        let c = parse(&format!("{key}{cluster}"), Path::new("/")).unwrap();
        let w: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("sip.flow_token_key") && w[0].contains("not used with [cluster]"),
            "{w:?}"
        );
        // Without [cluster] the key is used: no warning.
        assert!(parse(key, Path::new("/")).unwrap().warnings.is_empty());
    }
}
