//! Exact string interning without an allocation per string.
//!
//! Strings are appended to one arena and found through their 64-bit
//! SipHash (random keys per process, so hashes are never persisted and
//! crafted input cannot aim for collisions). Two different strings with the
//! same hash are still told apart: the arena text is compared, and the
//! second one goes to a small overflow map. So membership and distinct
//! counts stay exact.

use std::collections::HashMap;
use std::collections::hash_map::{Entry, RandomState};
use std::hash::BuildHasher;

use crate::hashing::U64Map;

#[derive(Clone, Copy, Debug)]
struct Slot {
    id: u32,
    start: u32,
    end: u32,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Interner<S = RandomState> {
    text: String,
    /// End offset in `text` of string `i`; it starts where `i - 1` ends.
    ends: Vec<u32>,
    /// The span is kept next to the id so a lookup touches the arena once.
    by_hash: U64Map<Slot>,
    /// Strings whose hash was already taken by a different string.
    collided: HashMap<Box<str>, u32>,
    hasher: S,
}

impl Interner {
    /// Room for `n` strings of about `avg_len` bytes without regrowing.
    pub fn with_capacity(n: usize, avg_len: usize) -> Self {
        Interner {
            text: String::with_capacity(n * avg_len),
            ends: Vec::with_capacity(n),
            by_hash: U64Map::with_capacity_and_hasher(n, Default::default()),
            collided: HashMap::new(),
            hasher: RandomState::new(),
        }
    }

    /// Average string length, for sizing the next window.
    pub fn avg_len(&self) -> usize {
        self.text.len().checked_div(self.ends.len()).unwrap_or(0)
    }
}

impl<S: BuildHasher> Interner<S> {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn resolve(&self, id: u32) -> &str {
        let i = id as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start as usize..self.ends[i] as usize]
    }

    fn text_of(&self, slot: Slot) -> &str {
        &self.text[slot.start as usize..slot.end as usize]
    }

    pub fn get(&self, s: &str) -> Option<u32> {
        let slot = *self.by_hash.get(&self.hasher.hash_one(s))?;
        if self.text_of(slot) == s {
            Some(slot.id)
        } else {
            self.collided.get(s).copied()
        }
    }

    /// The id of `s` and whether it was new.
    pub fn intern(&mut self, s: &str) -> (u32, bool) {
        let next = u32::try_from(self.ends.len()).expect("fewer than 2^32 strings per window");
        let start = self.text.len() as u32;
        let end = u32::try_from(self.text.len() + s.len()).expect("under 4 GiB of ids per window");
        match self.by_hash.entry(self.hasher.hash_one(s)) {
            Entry::Vacant(v) => {
                v.insert(Slot {
                    id: next,
                    start,
                    end,
                });
            }
            Entry::Occupied(o) => {
                let slot = *o.get();
                if &self.text[slot.start as usize..slot.end as usize] == s {
                    return (slot.id, false);
                }
                match self.collided.entry(s.into()) {
                    Entry::Occupied(c) => return (*c.get(), false),
                    Entry::Vacant(c) => {
                        c.insert(next);
                    }
                }
            }
        }
        self.text.push_str(s);
        self.ends.push(end);
        (next, true)
    }

    /// Every string, in id order.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.ends.len() as u32).map(|id| self.resolve(id))
    }

    /// The arena and the length of each string, in id order: a compact
    /// form to save (one string instead of one per id).
    pub fn to_text_and_lens(&self) -> (String, Vec<u32>) {
        let mut prev = 0;
        let lens = self
            .ends
            .iter()
            .map(|&e| {
                let len = e - prev;
                prev = e;
                len
            })
            .collect();
        (self.text.clone(), lens)
    }

    /// Approximate heap bytes, for state size gauges.
    pub fn heap_bytes(&self) -> usize {
        self.text.capacity() + self.ends.capacity() * 4 + self.by_hash.capacity() * 24
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_exactly_in_order() {
        let mut i: Interner = Interner::default();
        assert_eq!(i.intern("a"), (0, true));
        assert_eq!(i.intern(""), (1, true));
        assert_eq!(i.intern("bc"), (2, true));
        assert_eq!(i.intern("a"), (0, false));
        assert_eq!(i.intern(""), (1, false));
        assert_eq!(i.get("bc"), Some(2));
        assert_eq!(i.get("b"), None);
        assert_eq!(i.iter().collect::<Vec<_>>(), vec!["a", "", "bc"]);
        assert_eq!(i.len(), 3);
    }

    /// Every string hashes alike: exactness must come from the comparison.
    #[derive(Default)]
    struct Constant;
    struct ConstantHasher;
    impl std::hash::Hasher for ConstantHasher {
        fn write(&mut self, _: &[u8]) {}
        fn finish(&self) -> u64 {
            7
        }
    }
    impl BuildHasher for Constant {
        type Hasher = ConstantHasher;
        fn build_hasher(&self) -> ConstantHasher {
            ConstantHasher
        }
    }

    #[test]
    fn hash_collisions_stay_exact() {
        let mut i = Interner::<Constant>::default();
        assert_eq!(i.intern("x"), (0, true));
        assert_eq!(i.intern("y"), (1, true));
        assert_eq!(i.intern("z"), (2, true));
        assert_eq!(i.intern("y"), (1, false));
        assert_eq!(i.intern("x"), (0, false));
        assert_eq!(i.get("z"), Some(2));
        assert_eq!(i.get("w"), None);
        assert_eq!(i.iter().collect::<Vec<_>>(), vec!["x", "y", "z"]);
    }

    #[test]
    fn many_strings_round_trip() {
        let mut i: Interner = Interner::default();
        for n in 0..10_000 {
            assert_eq!(i.intern(&format!("order-{n}")), (n, true));
        }
        for n in 0..10_000 {
            assert_eq!(i.get(&format!("order-{n}")), Some(n));
            assert_eq!(i.resolve(n), format!("order-{n}"));
        }
    }
}
