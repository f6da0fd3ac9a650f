//! DNS SRV target selection (RFC 2782 "Usage rules", as used by RFC 6120
//! §3.2.1 and XEP-0368): what to do with the records of one SRV answer, in
//! which order to try the targets.
//!
//! Pure: the records come in (the I/O side looks them up) and so does the
//! randomness of the weighted selection, as a function `random(n)` that
//! returns a number from `0` to `n` inclusive (a value above `n` is treated
//! as `n`).
//!
//! * No records: the service has no SRV records; the caller falls back to
//!   the domain itself on the protocol's default port ([`SrvPlan::Fallback`]).
//! * Exactly one record whose target is `.` (the root): the service is
//!   decidedly not available at this domain ([`SrvPlan::Unavailable`]).
//! * Otherwise: records whose target is `.` or whose port is 0 are dropped
//!   (if none remain, [`SrvPlan::Unavailable`]); the rest are ordered by
//!   priority (lowest first) and, within one priority, by RFC 2782's weighted
//!   random selection ([`order`]).

/// One SRV resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    /// Lower is tried first.
    pub priority: u16,
    /// Relative weight among records of the same priority.
    pub weight: u16,
    /// TCP port on the target.
    pub port: u16,
    /// Target host name as in DNS (a trailing dot is allowed; `.` alone is
    /// the root, "no service").
    pub target: String,
}

/// A host and port to connect to, in the order to try them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvTarget {
    /// Host name without the trailing dot.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// What to do with one SRV answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SrvPlan {
    /// No SRV records: use the protocol's fallback (domain, default port).
    Fallback,
    /// The domain says the service is not offered (target `.`).
    Unavailable,
    /// Try these targets in this order.
    Targets(Vec<SrvTarget>),
}

fn is_root(target: &str) -> bool {
    target.is_empty() || target == "."
}

/// Decides what to do with the records of one SRV answer, ordering the
/// targets with [`order`].
pub fn plan(records: &[SrvRecord], random: &mut impl FnMut(u32) -> u32) -> SrvPlan {
    if records.is_empty() {
        return SrvPlan::Fallback;
    }
    let usable: Vec<SrvRecord> = records
        .iter()
        .filter(|r| !is_root(&r.target) && r.port != 0)
        .cloned()
        .collect();
    if usable.is_empty() {
        return SrvPlan::Unavailable;
    }
    SrvPlan::Targets(
        order(usable, random)
            .into_iter()
            .map(|r| SrvTarget {
                host: r.target.strip_suffix('.').unwrap_or(&r.target).to_string(),
                port: r.port,
            })
            .collect(),
    )
}

/// Orders records as RFC 2782 says: by priority, lowest first; within one
/// priority, repeatedly pick one record at random with probability
/// proportional to its weight (records of weight 0 have a small chance,
/// being placed first as the RFC asks) and move it to the end of the list.
///
/// `random(n)` must return a number from `0` to `n` inclusive; records of
/// equal priority keep their input order for equal draws, so the result is
/// fully determined by the input and the draws.
pub fn order(mut records: Vec<SrvRecord>, random: &mut impl FnMut(u32) -> u32) -> Vec<SrvRecord> {
    // Stable: weight-0 records first within each priority (RFC 2782), input
    // order otherwise.
    records.sort_by_key(|r| (r.priority, r.weight != 0));
    let mut out = Vec::with_capacity(records.len());
    let mut rest = records.as_slice();
    while let Some(first) = rest.first() {
        let n = rest
            .iter()
            .take_while(|r| r.priority == first.priority)
            .count();
        let (group, tail) = rest.split_at(n);
        let mut group: Vec<SrvRecord> = group.to_vec();
        while !group.is_empty() {
            let total: u64 = group.iter().map(|r| u64::from(r.weight)).sum();
            let draw = u64::from(random(u32::try_from(total).unwrap_or(u32::MAX))).min(total);
            let mut running = 0u64;
            let i = group
                .iter()
                .position(|r| {
                    running += u64::from(r.weight);
                    running >= draw
                })
                .unwrap_or(group.len() - 1);
            out.push(group.remove(i));
        }
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port,
            target: target.to_string(),
        }
    }

    fn hosts(rs: &[SrvRecord]) -> Vec<&str> {
        rs.iter().map(|r| r.target.as_str()).collect()
    }

    /// A draw function that replays `draws` and records the bounds it was asked for.
    fn replay(
        draws: &[u32],
    ) -> (
        impl FnMut(u32) -> u32 + '_,
        std::rc::Rc<std::cell::RefCell<Vec<u32>>>,
    ) {
        let asked = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let a = asked.clone();
        let mut i = 0;
        let f = move |n: u32| {
            a.borrow_mut().push(n);
            let d = draws.get(i).copied().unwrap_or(0);
            i += 1;
            d
        };
        (f, asked)
    }

    #[test]
    fn empty_answer_falls_back() {
        assert_eq!(plan(&[], &mut |_| 0), SrvPlan::Fallback);
    }

    #[test]
    fn single_root_target_means_unavailable() {
        assert_eq!(plan(&[rec(0, 0, 0, ".")], &mut |_| 0), SrvPlan::Unavailable);
        assert_eq!(
            plan(&[rec(0, 0, 5222, ".")], &mut |_| 0),
            SrvPlan::Unavailable
        );
        // Nothing usable at all is the same.
        assert_eq!(
            plan(
                &[rec(0, 0, 5222, "."), rec(1, 0, 0, "a.example.")],
                &mut |_| 0
            ),
            SrvPlan::Unavailable
        );
    }

    #[test]
    fn root_targets_among_others_are_dropped_and_dots_stripped() {
        let p = plan(
            &[rec(0, 0, 5222, "."), rec(1, 0, 5269, "xmpp.example.org.")],
            &mut |_| 0,
        );
        assert_eq!(
            p,
            SrvPlan::Targets(vec![SrvTarget {
                host: "xmpp.example.org".into(),
                port: 5269
            }])
        );
    }

    #[test]
    fn priorities_first_lowest_first() {
        let rs = vec![
            rec(20, 0, 1, "c"),
            rec(10, 0, 1, "a"),
            rec(30, 0, 1, "d"),
            rec(10, 0, 1, "b"),
        ];
        assert_eq!(hosts(&order(rs, &mut |_| 0)), ["a", "b", "c", "d"]);
    }

    #[test]
    fn weighted_selection_follows_the_draws() {
        // Same priority, weights 10, 20, 70 (total 100).
        let rs = vec![rec(0, 10, 1, "a"), rec(0, 20, 1, "b"), rec(0, 70, 1, "c")];
        // Draw 50: running sums 10, 30, 100 → c; then total 30, draw 15: 10, 30 → b; then a.
        let (mut f, asked) = replay(&[50, 15, 0]);
        assert_eq!(hosts(&order(rs.clone(), &mut f)), ["c", "b", "a"]);
        assert_eq!(*asked.borrow(), [100, 30, 10]);
        // Draw 0 picks the first record (running sum 10 ≥ 0), 10 still does.
        let (mut f, _) = replay(&[10, 0, 0]);
        assert_eq!(hosts(&order(rs.clone(), &mut f)), ["a", "b", "c"]);
        // 11 is the first draw that picks b.
        let (mut f, _) = replay(&[11, 0, 0]);
        assert_eq!(hosts(&order(rs, &mut f)), ["b", "a", "c"]);
    }

    #[test]
    fn weight_zero_goes_first_and_is_picked_only_by_a_zero_draw() {
        let rs = vec![rec(0, 5, 1, "w5"), rec(0, 0, 1, "w0")];
        let (mut f, _) = replay(&[0, 0]);
        assert_eq!(hosts(&order(rs.clone(), &mut f)), ["w0", "w5"]);
        let (mut f, _) = replay(&[1, 0]);
        assert_eq!(hosts(&order(rs, &mut f)), ["w5", "w0"]);
        // All weights zero: input order.
        let rs = vec![rec(0, 0, 1, "x"), rec(0, 0, 1, "y"), rec(0, 0, 1, "z")];
        assert_eq!(hosts(&order(rs, &mut |n| n)), ["x", "y", "z"]);
    }

    #[test]
    fn out_of_range_draws_are_clamped() {
        let rs = vec![rec(0, 1, 1, "a"), rec(0, 1, 1, "b")];
        assert_eq!(hosts(&order(rs, &mut |_| u32::MAX)), ["b", "a"]);
    }

    #[test]
    fn distribution_matches_weights() {
        // Every draw from 0..=100 once: the first pick's share is its weight
        // (a weight-w record wins w draws, the first one also wins draw 0).
        let rs = vec![rec(0, 10, 1, "a"), rec(0, 20, 1, "b"), rec(0, 70, 1, "c")];
        let mut wins = [0u32; 3];
        for d in 0..=100u32 {
            let mut first = true;
            let o = order(rs.clone(), &mut |_| {
                if std::mem::take(&mut first) {
                    d
                } else {
                    0
                }
            });
            wins[["a", "b", "c"]
                .iter()
                .position(|h| *h == o[0].target)
                .unwrap()] += 1;
        }
        assert_eq!(wins, [11, 20, 70]);
    }

    #[test]
    fn every_record_is_kept_once() {
        let rs: Vec<SrvRecord> = (0..20u16)
            .map(|i| rec(i % 3, i * 7 % 5, 1, &format!("h{i}")))
            .collect();
        let mut seed = 7u32;
        let o = order(rs.clone(), &mut |n| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            seed % (n + 1)
        });
        assert_eq!(o.len(), rs.len());
        let mut a = hosts(&o);
        let mut b = hosts(&rs);
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
        assert!(o.windows(2).all(|w| w[0].priority <= w[1].priority));
    }
}
