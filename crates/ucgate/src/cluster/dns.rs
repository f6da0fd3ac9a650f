//! Peers found in DNS (`cluster.peers_srv`): the SRV records are resolved at
//! start and every `cluster.peers_refresh`, each target's address looked
//! up, and the table of peers replaced (merged with the static ones by
//! `ucgate_proto::peers::merge`). A failed lookup keeps the previous table:
//! a DNS outage does not make sessions of other nodes unreachable.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use tokio_util::sync::CancellationToken;
use ucgate_proto::peers::{merge, Found, Skipped};

use super::ClusterRuntime;
use crate::config::ClusterConfig;
use crate::metrics::Metrics;

/// The longest one lookup (SRV, then the targets' addresses) may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// The resolver for `cluster.peers_srv`: `cluster.dns_server` or the
/// system's, without a cache (each refresh asks again).
fn resolver(c: &ClusterConfig) -> Result<TokioResolver, String> {
    let mut builder = match c.dns_server {
        Some(server) => {
            let mut ns = NameServerConfig::udp_and_tcp(server.ip());
            for conn in &mut ns.connections {
                conn.port = server.port();
            }
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![ns]),
                TokioRuntimeProvider::default(),
            )
        }
        None => TokioResolver::builder_tokio()
            .map_err(|e| format!("cannot read the system DNS configuration: {e}"))?,
    };
    builder.options_mut().cache_size = 0;
    builder.options_mut().timeout = LOOKUP_TIMEOUT;
    builder.options_mut().attempts = 1;
    builder
        .build()
        .map_err(|e| format!("cannot build the DNS resolver: {e}"))
}

/// The SRV records of `name` with their targets' addresses.
async fn lookup(resolver: &TokioResolver, name: &str) -> Result<Vec<Found>, String> {
    let srv = resolver
        .srv_lookup(name)
        .await
        .map_err(|e| format!("SRV lookup of {name} failed: {e}"))?;
    let records: Vec<(String, u16)> = srv
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some((s.target.to_ascii(), s.port)),
            _ => None,
        })
        .collect();
    let mut found = Vec::new();
    for (target, port) in records {
        match resolver.lookup_ip(target.as_str()).await {
            Ok(ips) => {
                if let Some(ip) = ips.iter().next() {
                    found.push(Found {
                        target,
                        addr: SocketAddr::new(ip, port),
                    });
                }
            }
            Err(e) => {
                tracing::warn!(%target, error = %e, "cluster.peers_srv: a target has no address; skipped")
            }
        }
    }
    Ok(found)
}

/// Resolves `cluster.peers_srv` now and then every `cluster.peers_refresh`
/// until `stop`, replacing the peers of `cluster`.
pub(crate) async fn refresh_loop(
    cluster: Arc<ClusterRuntime>,
    config: ClusterConfig,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let Some(name) = config.peers_srv.clone() else {
        return;
    };
    let resolver = match resolver(&config) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cluster.peers_srv: no DNS resolver; only the static peers are known");
            return;
        }
    };
    let statics: Vec<_> = config
        .peers
        .iter()
        .map(|p| (p.name.clone(), p.addr))
        .collect();
    let mut failing = false;
    loop {
        let answer = tokio::time::timeout(LOOKUP_TIMEOUT, lookup(&resolver, &name)).await;
        match answer.unwrap_or_else(|_| Err(format!("SRV lookup of {name} timed out"))) {
            Ok(found) => {
                failing = false;
                let (peers, skipped) = merge(&config.node, &statics, &found);
                for s in skipped {
                    match s {
                        Skipped::BadName { target, why } => {
                            tracing::warn!(%target, %why, "cluster.peers_srv: the target's first label is not a node name; skipped")
                        }
                        Skipped::Duplicate { node, addr } => {
                            tracing::warn!(%node, %addr, "cluster.peers_srv: a second address for one node; skipped")
                        }
                    }
                }
                metrics.cluster_peers.set(peers.len() as i64);
                cluster.set_peers(peers);
                metrics.cluster_peer_lookup("ok");
            }
            Err(e) => {
                metrics.cluster_peer_lookup("error");
                if !failing {
                    tracing::warn!(error = %e, "cluster.peers_srv: lookup failed; keeping the peers known so far");
                }
                failing = true;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(config.peers_refresh) => {}
            _ = stop.cancelled() => return,
        }
    }
}
