//! Which side a fault is attributed to: the `side` label of
//! `ucgate_errors_total`, named here once for every route.

/// The side at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The browser or client: bad input, limits, a broken handshake.
    Client,
    /// What the gateway reaches: a `tcp` backend, an XMPP server, a SIP
    /// core.
    Backend,
    /// The gateway itself: its own limits, shutdown, internal faults.
    Gateway,
}

impl Side {
    /// Every side, in label order.
    pub const ALL: [Side; 3] = [Side::Client, Side::Backend, Side::Gateway];

    /// The metric label value.
    pub fn label(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Backend => "backend",
            Side::Gateway => "gateway",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_documented_values() {
        let labels: Vec<&str> = Side::ALL.iter().map(|s| s.label()).collect();
        assert_eq!(labels, ["client", "backend", "gateway"]);
    }
}
