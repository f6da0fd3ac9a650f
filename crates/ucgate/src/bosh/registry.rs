//! The BOSH session registry: sid → session actor, with the global and
//! per-client-address session limits. Session ids hold 128 random bits from
//! the operating system (ring's `SystemRandom`), hex-encoded: unguessable,
//! because the sid is the only thing that names a session. In a cluster
//! they also name this node and its start value ([`SidForm`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use ucgate_proto::bosh::sid::{ClusterSid, NodeName};

use super::mailbox::Mailbox;
use crate::config::ClusterConfig;

/// A running session.
#[derive(Clone)]
pub(crate) struct Handle {
    pub(crate) mailbox: Arc<Mailbox>,
}

/// Why a session could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// `bosh.max_sessions` reached.
    Total,
    /// `bosh.max_sessions_per_ip` reached for this address.
    PerIp,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, (Handle, IpAddr)>,
    per_ip: HashMap<IpAddr, usize>,
}

/// All sessions of the process.
#[derive(Default)]
pub(crate) struct Registry {
    inner: Mutex<Inner>,
}

fn random<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the operating system's random number generator works");
    b
}

/// How this process names its sessions.
#[derive(Debug, Clone)]
pub(crate) enum SidForm {
    /// No `[cluster]`: 128 random bits, hex, as before clusters existed.
    Single,
    /// `[cluster]`: `<node>.<start>.<128 random bits>`
    /// ([`ucgate_proto::bosh::sid`]), so that any node can tell the owner.
    Cluster {
        node: NodeName,
        /// Drawn once per process: the sids of a previous life of this
        /// node never match again.
        start: u64,
    },
}

impl SidForm {
    /// The form for `[cluster]` (or its absence), with a fresh start value.
    pub(crate) fn new(cluster: Option<&ClusterConfig>) -> SidForm {
        match cluster {
            None => SidForm::Single,
            Some(c) => SidForm::Cluster {
                node: c.node.clone(),
                start: u64::from_be_bytes(random()),
            },
        }
    }

    /// A new, unpredictable sid.
    pub(crate) fn new_sid(&self) -> String {
        let bits: [u8; 16] = random();
        match self {
            SidForm::Single => bits.iter().map(|x| format!("{x:02x}")).collect(),
            SidForm::Cluster { node, start } => ClusterSid {
                node: node.clone(),
                start: *start,
                random: bits,
            }
            .encode(),
        }
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Looks a session up.
    pub(crate) fn get(&self, sid: &str) -> Option<Handle> {
        self.lock().sessions.get(sid).map(|(h, _)| h.clone())
    }

    /// Registers a new session if the limits allow.
    pub(crate) fn insert(
        &self,
        sid: &str,
        h: Handle,
        ip: IpAddr,
        max_total: usize,
        max_per_ip: usize,
    ) -> Result<(), Full> {
        let mut g = self.lock();
        if g.sessions.len() >= max_total {
            return Err(Full::Total);
        }
        let n = g.per_ip.get(&ip).copied().unwrap_or(0);
        if n >= max_per_ip {
            return Err(Full::PerIp);
        }
        g.per_ip.insert(ip, n + 1);
        g.sessions.insert(sid.to_string(), (h, ip));
        Ok(())
    }

    /// Forgets a session (its actor has ended).
    pub(crate) fn remove(&self, sid: &str) {
        let mut g = self.lock();
        if let Some((_, ip)) = g.sessions.remove(sid) {
            if let Some(n) = g.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    g.per_ip.remove(&ip);
                }
            }
        }
    }
}
