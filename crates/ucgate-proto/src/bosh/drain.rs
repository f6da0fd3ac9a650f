//! How BOSH sessions end in the gateway's drain (SIGTERM).
//!
//! A node of a cluster keeps its sessions through the drain: once its
//! public listener has stopped, the other nodes still forward their
//! requests to it over the internal listener, so a session goes on until
//! it ends by itself or the drain's [`goodbye_deadline`] comes. A single
//! node ends them when the drain starts: nothing can reach them once the
//! listener has stopped, and waiting would only delay the exit.
//!
//! The end is `system-shutdown`, or `see-other-uri` with the configured URI
//! (XEP-0124 §17.2), which tells the client where to log in again.
//!
//! New sessions are refused from the moment the drain begins (the glue
//! answers their creation request with HTTP 503; see `docs/cluster.md`).

use core::time::Duration;

use super::condition::Condition;
use crate::drain::goodbye_deadline;

/// When and how the sessions end, counted from the drain's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainEnd {
    /// How long after the drain starts.
    pub after: Duration,
    /// What the open requests get.
    pub condition: Condition,
}

impl DrainEnd {
    /// The end for a drain of `drain_timeout`; `served`: other nodes can
    /// still reach the sessions (`[cluster]`); `see_other`: the URI for
    /// `see-other-uri` (validated by the configuration).
    pub fn new(drain_timeout: Duration, served: bool, see_other: Option<&str>) -> DrainEnd {
        DrainEnd {
            after: if served {
                goodbye_deadline(drain_timeout)
            } else {
                Duration::ZERO
            },
            condition: match see_other {
                Some(uri) => Condition::SeeOtherUri(uri.to_string()),
                None => Condition::SystemShutdown,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_cluster_node_serves_its_sessions_until_the_goodbye_deadline() {
        assert_eq!(
            DrainEnd::new(30 * S, true, None),
            DrainEnd {
                after: 28 * S,
                condition: Condition::SystemShutdown
            }
        );
        assert_eq!(
            DrainEnd::new(4 * S, true, Some("https://b.example/http-bind")),
            DrainEnd {
                after: 3 * S,
                condition: Condition::SeeOtherUri("https://b.example/http-bind".into())
            }
        );
        assert_eq!(
            DrainEnd::new(Duration::ZERO, true, None).after,
            Duration::ZERO
        );
    }

    #[test]
    fn a_single_node_ends_its_sessions_when_the_drain_starts() {
        for see_other in [None, Some("http://b.example/b")] {
            let end = DrainEnd::new(30 * S, false, see_other);
            assert_eq!(end.after, Duration::ZERO);
            assert_eq!(
                end.condition.name(),
                if see_other.is_some() {
                    "see-other-uri"
                } else {
                    "system-shutdown"
                }
            );
        }
    }
}
