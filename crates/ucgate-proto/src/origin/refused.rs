//! A bounded record of the origins a route refused: each with how often and
//! when it was last refused, the most recent first, the least recently seen
//! forgotten when the record is full (a client chooses its `Origin`, so the
//! record must not grow with it).

/// One refused origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedOrigin {
    /// The `Origin` as the client sent it.
    pub origin: String,
    /// Refusals since it was first recorded.
    pub count: u64,
    /// When it was first recorded (the caller's clock, e.g. Unix seconds).
    pub first_seen: u64,
    /// When it was last refused.
    pub last_seen: u64,
}

/// The refused origins of one route, at most `max` of them.
#[derive(Debug, Clone)]
pub struct RefusedOrigins {
    max: usize,
    /// Most recently seen first.
    entries: Vec<RefusedOrigin>,
}

impl RefusedOrigins {
    /// An empty record keeping at most `max` origins (at least one).
    pub fn new(max: usize) -> Self {
        RefusedOrigins {
            max: max.max(1),
            entries: Vec::new(),
        }
    }

    /// Records a refusal of `origin` at `now`.
    pub fn record(&mut self, origin: &str, now: u64) {
        let entry = match self.entries.iter().position(|e| e.origin == origin) {
            Some(i) => {
                let mut e = self.entries.remove(i);
                e.count += 1;
                e.last_seen = now;
                e
            }
            None => {
                self.entries.truncate(self.max - 1);
                RefusedOrigin {
                    origin: origin.to_string(),
                    count: 1,
                    first_seen: now,
                    last_seen: now,
                }
            }
        };
        self.entries.insert(0, entry);
    }

    /// The refused origins, most recently seen first.
    pub fn entries(&self) -> &[RefusedOrigin] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(r: &RefusedOrigins) -> Vec<(&str, u64, u64, u64)> {
        r.entries()
            .iter()
            .map(|e| (e.origin.as_str(), e.count, e.first_seen, e.last_seen))
            .collect()
    }

    #[test]
    fn counts_and_orders_by_last_seen() {
        let mut r = RefusedOrigins::new(100);
        r.record("https://a.example", 10);
        r.record("https://b.example", 11);
        r.record("https://a.example", 12);
        assert_eq!(
            view(&r),
            [
                ("https://a.example", 2, 10, 12),
                ("https://b.example", 1, 11, 11)
            ]
        );
    }

    #[test]
    fn the_least_recently_seen_is_forgotten_when_full() {
        let mut r = RefusedOrigins::new(3);
        r.record("a", 1);
        r.record("b", 2);
        r.record("c", 3);
        r.record("a", 4);
        r.record("d", 5);
        assert_eq!(view(&r), [("d", 1, 5, 5), ("a", 2, 1, 4), ("c", 1, 3, 3)]);
        for i in 0..1000 {
            r.record(&format!("x{i}"), 6 + i);
        }
        assert_eq!(r.entries().len(), 3);
        assert_eq!(r.entries()[0].origin, "x999");
        assert_eq!(RefusedOrigins::new(0).max, 1);
    }
}
