//! Read-through cache of entity versions, bounded by entity count (CLOCK,
//! an approximation of LRU).
//!
//! Caching "the version at t" is wrong as soon as a new version arrives, so
//! an entry instead holds *knowledge*: "the versions of this entity with
//! `updated_at` in `[lo, hi]` are exactly these". A lookup at `t` inside
//! `[lo, hi]` is answered from the entry (greatest `updated_at <= t`);
//! outside, it is a miss. Invariant: unless `lo` is `Timestamp::MIN`, the
//! oldest version held is at `lo`, so every `t` in range has an answer.
//!
//! Knowledge comes from store reads (`[oldest returned, upto]`, or
//! `[MIN, upto]` when the read returned fewer rows than asked) and is kept
//! true by [`VersionCache::on_put`], which adds a version written through
//! this core when it falls inside the entry's range.

use std::collections::HashMap;
use std::sync::Arc;

use flowline_model::Timestamp;

use crate::views::Versioned;

/// What the cache knows of one entity.
#[derive(Clone, Debug)]
pub struct Known<V> {
    /// Ascending by `updated_at`, one per instant.
    /// With their `updated_at` inline, so a lookup reads no version it does
    /// not return.
    versions: Vec<(Timestamp, Arc<V>)>,
    lo: Timestamp,
    hi: Timestamp,
}

impl<V: Versioned> Known<V> {
    /// From a read of up to `limit` versions with `updated_at <= upto`,
    /// newest first.
    pub fn from_read(newest_first: Vec<V>, limit: usize, upto: Timestamp) -> Known<V> {
        let complete = newest_first.len() < limit;
        let mut versions: Vec<(Timestamp, Arc<V>)> = newest_first
            .into_iter()
            .map(|v| (v.updated_at(), Arc::new(v)))
            .collect();
        versions.reverse();
        versions.dedup_by_key(|v| v.0);
        let lo = match versions.first() {
            Some(oldest) if !complete => oldest.0,
            _ => Timestamp::MIN,
        };
        Known {
            versions,
            lo,
            hi: upto,
        }
    }

    /// `None` when `t` is outside the known range; otherwise the version
    /// valid at `t`, if any.
    pub fn answer(&self, t: Timestamp) -> Option<Option<Arc<V>>> {
        if t < self.lo || t > self.hi {
            return None;
        }
        let n = self.versions.partition_point(|v| v.0 <= t);
        Some(n.checked_sub(1).map(|i| self.versions[i].1.clone()))
    }

    fn touches(&self, other: &Known<V>) -> bool {
        self.lo.millis() <= other.hi.millis().saturating_add(1)
            && other.lo.millis() <= self.hi.millis().saturating_add(1)
    }

    /// Unites with newer knowledge when the ranges overlap or touch (the
    /// newer read wins inside its own range); otherwise the newer replaces.
    fn absorb(&mut self, newer: Known<V>) {
        if !self.touches(&newer) {
            *self = newer;
            return;
        }
        let (lo, hi) = (newer.lo, newer.hi);
        self.versions.retain(|v| v.0 < lo || v.0 > hi);
        self.versions.extend(newer.versions);
        self.versions.sort_by_key(|v| v.0);
        self.lo = self.lo.min(lo);
        self.hi = self.hi.max(hi);
    }

    /// A version written through this core.
    fn insert(&mut self, v: Arc<V>) {
        let t = v.updated_at();
        if t < self.lo || t > self.hi {
            return; // outside what we claim to know: nothing to correct
        }
        match self.versions.binary_search_by_key(&t, |x| x.0) {
            Ok(i) => self.versions[i] = (t, v),
            Err(i) => self.versions.insert(i, (t, v)),
        }
    }

    fn truncate(&mut self, hi: Timestamp) {
        if self.hi > hi {
            self.hi = hi;
            self.versions.retain(|v| v.0 <= hi);
        }
    }

    /// Keeps the newest `max` versions; the range shrinks to match.
    fn trim(&mut self, max: usize) {
        if self.versions.len() > max {
            self.versions.drain(..self.versions.len() - max);
            self.lo = self.versions[0].0;
        }
    }
}

struct Node<V> {
    key: String,
    known: Known<V>,
    /// Set on use, cleared by the eviction hand (CLOCK).
    referenced: bool,
}

/// Map from entity id to [`Known`] versions, bounded by entity count, with
/// CLOCK eviction: an approximation of LRU whose hit path only sets a flag
/// in the node it already reads, instead of relinking a list (which costs
/// three scattered memory writes per lookup on a large cache).
pub struct VersionCache<V> {
    index: HashMap<String, usize>,
    nodes: Vec<Node<V>>,
    /// Next eviction candidate.
    hand: usize,
    capacity: usize,
    max_versions: usize,
    /// Newest version any evicted entry held: a new entry started from a
    /// put must lie after it (see [`VersionCache::on_put`]).
    evicted_newest: Option<Timestamp>,
    hits: u64,
    misses: u64,
}

impl<V: Versioned> VersionCache<V> {
    pub fn new(capacity: usize, max_versions: usize) -> Self {
        VersionCache {
            index: HashMap::with_capacity(capacity.min(1024)),
            nodes: Vec::new(),
            hand: 0,
            capacity,
            max_versions: max_versions.max(1),
            evicted_newest: None,
            hits: 0,
            misses: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// (hits, misses) of [`Self::get`] so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    /// The version valid at `t` if the cache knows it (`None` = miss).
    pub fn get(&mut self, id: &str, t: Timestamp) -> Option<Option<Arc<V>>> {
        let answer = self.peek(id, t);
        if answer.is_some() {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        answer
    }

    /// [`Self::get`] without counting; see [`Self::count_hit`].
    pub fn peek(&mut self, id: &str, t: Timestamp) -> Option<Option<Arc<V>>> {
        self.index.get(id).and_then(|&i| {
            let node = &mut self.nodes[i];
            let a = node.known.answer(t);
            node.referenced |= a.is_some();
            a
        })
    }

    /// Counts a hit of a [`Self::peek`] whose answer was used.
    pub fn count_hit(&mut self) {
        self.hits += 1;
    }

    /// Counts lookups that missed and were read ahead of their use.
    pub fn count_misses(&mut self, n: u64) {
        self.misses += n;
    }

    /// Forgets everything known about times after `hi` (the knowledge is
    /// no longer kept true by [`Self::on_put`] past that point).
    pub fn truncate(&mut self, hi: Timestamp) {
        for node in &mut self.nodes {
            node.known.truncate(hi);
        }
    }

    /// Adds knowledge from a store read.
    pub fn learn(&mut self, id: &str, mut known: Known<V>) {
        if self.capacity == 0 {
            return;
        }
        if let Some(&i) = self.index.get(id) {
            let node = &mut self.nodes[i];
            node.known.absorb(known);
            node.known.trim(self.max_versions);
            node.referenced = true;
            return;
        }
        known.trim(self.max_versions);
        self.add(id, known);
    }

    /// A version was written through this core: keep the entry true.
    ///
    /// `first_of_rest`: the caller knows that every version of this entity
    /// from `v`'s time on goes through this core and none is in the store
    /// yet unseen (the core's exclusive mode). An entity without an entry
    /// then gets one knowing `[v.updated_at, MAX]`, so its sales need no
    /// read at all — unless an evicted entry held a version at or after
    /// `v` (those puts would be missing from the new entry).
    pub fn on_put(&mut self, id: &str, v: V, first_of_rest: bool) {
        if let Some(&i) = self.index.get(id) {
            let known = &mut self.nodes[i].known;
            known.insert(Arc::new(v));
            known.trim(self.max_versions);
            return;
        }
        let t = v.updated_at();
        if first_of_rest && self.capacity > 0 && self.evicted_newest.is_none_or(|e| e < t) {
            let known = Known {
                versions: vec![(t, Arc::new(v))],
                lo: t,
                hi: Timestamp::MAX,
            };
            self.add(id, known);
        }
    }

    fn add(&mut self, id: &str, known: Known<V>) {
        let node = Node {
            key: id.to_string(),
            known,
            referenced: false,
        };
        let i = if self.nodes.len() < self.capacity {
            self.nodes.push(node);
            self.nodes.len() - 1
        } else {
            let i = self.victim();
            let old = std::mem::replace(&mut self.nodes[i], node);
            self.index.remove(&old.key);
            if let Some((newest, _)) = old.known.versions.last() {
                self.evicted_newest = self.evicted_newest.max(Some(*newest));
            }
            i
        };
        self.index.insert(id.to_string(), i);
    }

    /// The first node the hand finds unreferenced since its last pass.
    fn victim(&mut self) -> usize {
        loop {
            let i = self.hand;
            self.hand = (self.hand + 1) % self.nodes.len();
            let node = &mut self.nodes[i];
            if !node.referenced {
                return i;
            }
            node.referenced = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct V(i64, &'static str);
    impl Versioned for V {
        fn updated_at(&self) -> Timestamp {
            Timestamp::from_millis(self.0).unwrap()
        }
    }

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms).unwrap()
    }

    impl VersionCache<V> {
        fn on_put_test(&mut self, id: &str, v: V) {
            self.on_put(id, v, false);
        }
    }

    fn at(c: &mut VersionCache<V>, id: &str, ms: i64) -> Option<Option<&'static str>> {
        c.get(id, t(ms)).map(|o| o.map(|v| v.1))
    }

    #[test]
    fn knowledge_from_a_short_read_covers_all_earlier_times() {
        let mut c = VersionCache::new(10, 4);
        // Read upto 100 with limit 4 returned 2 rows: nothing else <= 100.
        c.learn(
            "a",
            Known::from_read(vec![V(50, "v2"), V(10, "v1")], 4, t(100)),
        );
        assert_eq!(at(&mut c, "a", 5), Some(None));
        assert_eq!(at(&mut c, "a", 10), Some(Some("v1")));
        assert_eq!(at(&mut c, "a", 49), Some(Some("v1")));
        assert_eq!(at(&mut c, "a", 100), Some(Some("v2")));
        assert_eq!(at(&mut c, "a", 101), None, "beyond what was read");
        assert_eq!(c.counts(), (4, 1));
    }

    #[test]
    fn a_full_read_knows_only_from_its_oldest_row() {
        let mut c = VersionCache::new(10, 4);
        c.learn(
            "a",
            Known::from_read(vec![V(50, "v3"), V(30, "v2")], 2, t(100)),
        );
        assert_eq!(at(&mut c, "a", 29), None, "older versions may exist");
        assert_eq!(at(&mut c, "a", 30), Some(Some("v2")));
    }

    #[test]
    fn puts_inside_the_range_update_the_answer() {
        let mut c = VersionCache::new(10, 4);
        c.learn("a", Known::from_read(vec![V(10, "v1")], 4, t(100)));
        c.on_put_test("a", V(60, "v2"));
        c.on_put_test("a", V(200, "later")); // outside: ignored, still a miss at 200
        assert_eq!(at(&mut c, "a", 59), Some(Some("v1")));
        assert_eq!(at(&mut c, "a", 60), Some(Some("v2")));
        assert_eq!(at(&mut c, "a", 200), None);
        c.on_put_test("a", V(60, "v2b")); // same instant: last write wins
        assert_eq!(at(&mut c, "a", 70), Some(Some("v2b")));
    }

    #[test]
    fn touching_reads_unite_and_disjoint_reads_replace() {
        let mut c = VersionCache::new(10, 8);
        c.learn("a", Known::from_read(vec![V(10, "v1")], 4, t(100)));
        c.learn(
            "a",
            Known::from_read(vec![V(150, "v2"), V(10, "v1")], 2, t(200)),
        );
        assert_eq!(at(&mut c, "a", 5), Some(None));
        assert_eq!(at(&mut c, "a", 120), Some(Some("v1")));
        assert_eq!(at(&mut c, "a", 200), Some(Some("v2")));
        c.learn("a", Known::from_read(vec![V(900, "v9")], 1, t(1000)));
        assert_eq!(at(&mut c, "a", 200), None);
        assert_eq!(at(&mut c, "a", 950), Some(Some("v9")));
    }

    #[test]
    fn truncation_forgets_later_times_and_later_reads_extend_again() {
        let mut c = VersionCache::new(10, 8);
        c.learn(
            "a",
            Known::from_read(vec![V(150, "v2"), V(10, "v1")], 4, Timestamp::MAX),
        );
        c.truncate(t(100));
        assert_eq!(at(&mut c, "a", 100), Some(Some("v1")));
        assert_eq!(at(&mut c, "a", 160), None, "no longer known");
        c.on_put_test("a", V(120, "unseen")); // outside the range now: not claimed
        c.learn(
            "a",
            Known::from_read(vec![V(150, "v2"), V(120, "v1b"), V(10, "v1")], 4, t(200)),
        );
        assert_eq!(at(&mut c, "a", 130), Some(Some("v1b")));
        assert_eq!(at(&mut c, "a", 50), Some(Some("v1")));
    }

    #[test]
    fn a_first_put_of_the_rest_starts_an_entry_unless_an_eviction_forbids_it() {
        let mut c = VersionCache::new(1, 4);
        c.on_put("a", V(10, "a1"), false);
        assert_eq!(at(&mut c, "a", 20), None, "an ordinary put knows nothing");
        c.on_put("a", V(10, "a1"), true);
        assert_eq!(at(&mut c, "a", 9), None, "earlier versions may exist");
        assert_eq!(at(&mut c, "a", 10), Some(Some("a1")));
        c.on_put("a", V(30, "a2"), false);
        assert_eq!(at(&mut c, "a", 1_000), Some(Some("a2")));
        c.on_put("b", V(40, "b1"), true); // evicts a, whose newest version is at 30
        assert_eq!(c.len(), 1);
        assert_eq!(at(&mut c, "b", 40), Some(Some("b1")));
        c.on_put("a", V(20, "a0"), true);
        assert_eq!(at(&mut c, "a", 35), None, "a2 would be missing");
        c.on_put("d", V(60, "d1"), true);
        assert_eq!(
            at(&mut c, "d", 60),
            Some(Some("d1")),
            "after every eviction"
        );
    }

    #[test]
    fn trimming_keeps_newest_and_narrows_the_range() {
        let mut c = VersionCache::new(10, 2);
        c.learn("a", Known::from_read(vec![V(10, "v1")], 4, t(1000)));
        c.on_put_test("a", V(20, "v2"));
        c.on_put_test("a", V(30, "v3"));
        assert_eq!(at(&mut c, "a", 15), None, "v1 trimmed");
        assert_eq!(at(&mut c, "a", 25), Some(Some("v2")));
    }

    #[test]
    fn evicts_entries_not_used_since_the_last_pass() {
        let mut c = VersionCache::new(3, 4);
        for id in ["a", "b", "c"] {
            c.learn(id, Known::from_read(vec![], 1, t(100)));
        }
        assert!(at(&mut c, "a", 1).is_some()); // a is referenced
        c.learn("d", Known::from_read(vec![], 1, t(100)));
        assert_eq!(c.len(), 3);
        assert!(at(&mut c, "b", 1).is_none(), "b was not used: evicted");
        assert!(at(&mut c, "a", 1).is_some());
        assert!(at(&mut c, "c", 1).is_some());
        assert!(at(&mut c, "d", 1).is_some());
        // Everything referenced: the hand clears flags and evicts in order.
        c.learn("e", Known::from_read(vec![], 1, t(100)));
        assert_eq!(c.len(), 3);
        assert!(at(&mut c, "e", 1).is_some());
        let mut zero = VersionCache::<V>::new(0, 4);
        zero.learn("a", Known::from_read(vec![], 1, t(100)));
        assert!(zero.is_empty());
    }
}
