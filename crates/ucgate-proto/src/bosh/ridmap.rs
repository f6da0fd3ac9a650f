//! A map from `rid` to a value, kept as a vector sorted by `rid`.
//!
//! A session holds only a handful of entries at once (at most `requests`
//! unanswered requests, at most [`super::session::CACHE_MAX_RESPONSES`]
//! cached responses), and they arrive almost always in order, so a sorted
//! vector is as fast as a B-tree here. It is also much smaller: a
//! `BTreeMap` allocates a whole node (room for 11 entries, about 4 KiB for
//! a buffered request) on its first insert and keeps it while the session
//! lives, even when empty. This map releases its storage when it becomes
//! empty, so an idle session holds none (docs/performance.md).

/// `rid` → `T`, sorted by `rid`; the subset of `BTreeMap`'s interface the
/// session uses.
#[derive(Debug, Clone)]
pub(crate) struct RidMap<T> {
    v: Vec<(u64, T)>,
}

impl<T> Default for RidMap<T> {
    fn default() -> Self {
        RidMap { v: Vec::new() }
    }
}

impl<T> RidMap<T> {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn position(&self, rid: u64) -> Result<usize, usize> {
        self.v.binary_search_by_key(&rid, |(r, _)| *r)
    }

    /// Inserts; returns the value `rid` had before.
    pub(crate) fn insert(&mut self, rid: u64, value: T) -> Option<T> {
        match self.position(rid) {
            Ok(i) => Some(std::mem::replace(&mut self.v[i].1, value)),
            Err(i) => {
                // Room for exactly one entry at first (a Vec's first
                // allocation would hold four), as a session usually holds one.
                if self.v.capacity() == 0 {
                    self.v.reserve_exact(1);
                }
                self.v.insert(i, (rid, value));
                None
            }
        }
    }

    pub(crate) fn get(&self, rid: &u64) -> Option<&T> {
        self.position(*rid).ok().map(|i| &self.v[i].1)
    }

    pub(crate) fn get_mut(&mut self, rid: &u64) -> Option<&mut T> {
        self.position(*rid).ok().map(|i| &mut self.v[i].1)
    }

    pub(crate) fn contains_key(&self, rid: &u64) -> bool {
        self.position(*rid).is_ok()
    }

    /// Removes `rid`; the storage goes with the last entry.
    pub(crate) fn remove(&mut self, rid: &u64) -> Option<T> {
        let i = self.position(*rid).ok()?;
        let (_, value) = self.v.remove(i);
        if self.v.is_empty() {
            self.v = Vec::new();
        }
        Some(value)
    }

    pub(crate) fn first_key_value(&self) -> Option<(&u64, &T)> {
        self.v.first().map(|(r, t)| (r, t))
    }

    pub(crate) fn last_key_value(&self) -> Option<(&u64, &T)> {
        self.v.last().map(|(r, t)| (r, t))
    }

    /// Values in `rid` order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.v.iter().map(|(_, t)| t)
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.v.iter_mut().map(|(_, t)| t)
    }

    pub(crate) fn len(&self) -> usize {
        self.v.len()
    }

    pub(crate) fn clear(&mut self) {
        self.v = Vec::new();
    }

    /// Entries the storage has room for.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.v.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::RidMap;

    #[test]
    fn keeps_rid_order_whatever_the_insertion_order() {
        let mut m = RidMap::new();
        for rid in [5u64, 3, 9, 4, 7] {
            assert_eq!(m.insert(rid, rid * 10), None);
        }
        assert_eq!(
            m.values().copied().collect::<Vec<_>>(),
            [30, 40, 50, 70, 90]
        );
        assert_eq!(m.first_key_value(), Some((&3, &30)));
        assert_eq!(m.last_key_value(), Some((&9, &90)));
        assert_eq!(m.len(), 5);
    }

    #[test]
    fn insert_replaces_and_returns_the_old_value() {
        let mut m = RidMap::new();
        m.insert(1, "a");
        assert_eq!(m.insert(1, "b"), Some("a"));
        assert_eq!(m.get(&1), Some(&"b"));
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn get_remove_and_contains() {
        let mut m = RidMap::new();
        m.insert(10, 1);
        m.insert(11, 2);
        assert!(m.contains_key(&10));
        assert!(!m.contains_key(&12));
        *m.get_mut(&11).unwrap() += 5;
        assert_eq!(m.get(&11), Some(&7));
        assert_eq!(m.remove(&10), Some(1));
        assert_eq!(m.remove(&10), None);
        assert_eq!(m.get(&10), None);
        for v in m.values_mut() {
            *v = 0;
        }
        assert_eq!(m.get(&11), Some(&0));
    }

    #[test]
    fn storage_is_released_when_empty() {
        let mut m = RidMap::new();
        m.insert(1, [0u8; 300]);
        assert_eq!(m.capacity(), 1, "room for exactly one entry at first");
        m.insert(2, [0u8; 300]);
        assert!(m.capacity() >= 2);
        m.remove(&1);
        assert!(m.capacity() >= 1);
        m.remove(&2);
        assert_eq!(m.capacity(), 0, "an empty map holds no storage");
        m.insert(3, [0u8; 300]);
        m.clear();
        assert_eq!(m.capacity(), 0);
        assert_eq!(m.len(), 0);
        assert!(m.first_key_value().is_none());
    }
}
