//! The BOSH session registry: sid → session actor, with the global and
//! per-client-address session limits. Session ids are 128 random bits from
//! the operating system (ring's `SystemRandom`), hex-encoded: unguessable,
//! because the sid is the only thing that names a session.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::mailbox::Mailbox;

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

/// 128 random bits, hex.
pub(crate) fn new_sid() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the operating system's random number generator works");
    b.iter().map(|x| format!("{x:02x}")).collect()
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
