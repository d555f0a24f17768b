//! The partials of one slice of the input (a shard), by window: what a
//! service keeping per-shard state counts into, saves, and releases.

use std::collections::{BTreeMap, BTreeSet};

use flowline_model::Timestamp;

use crate::order::OrderRef;
use crate::outcome::Outcome;
use crate::partial::Partial;
use crate::spec::WindowSpec;

/// Per-window [`Partial`]s of one input slice, with the windows changed
/// since they were last saved. Lateness is judged against a watermark the
/// caller passes in (for a service, the global one: windows span shards).
#[derive(Clone, Debug)]
pub struct Partials {
    spec: WindowSpec,
    windows: BTreeMap<i64, Partial>,
    changed: BTreeSet<i64>,
}

impl Partials {
    pub fn new(spec: WindowSpec) -> Self {
        Self {
            spec,
            windows: BTreeMap::new(),
            changed: BTreeSet::new(),
        }
    }

    pub fn spec(&self) -> &WindowSpec {
        &self.spec
    }

    /// Puts back a partial read from storage (not marked changed).
    pub fn restore(&mut self, partial: Partial) {
        self.windows.insert(partial.start_ms(), partial);
    }

    /// Counts an order: rejected as late when its window is expired at
    /// `watermark`, otherwise added to its window's partial.
    pub fn add(&mut self, order: &OrderRef<'_>, watermark: Option<Timestamp>) -> Outcome {
        if let Some(late) = self.spec.late(order.event_time, watermark) {
            return Outcome::Rejected(late);
        }
        let start = self.spec.start_of(order.event_time);
        let outcome = match self.windows.get_mut(&start) {
            Some(partial) => partial.add(order),
            None => {
                // Sized like the latest earlier window: a busy window would
                // otherwise rehash its id tables again and again.
                let like = self.windows.range(..start).next_back().map(|(_, p)| p);
                let mut partial = self.spec.partial(start, like);
                let outcome = partial.add(order);
                self.windows.insert(start, partial);
                outcome
            }
        };
        if outcome == Outcome::Counted {
            self.changed.insert(start);
        }
        outcome
    }

    pub fn get(&self, start_ms: i64) -> Option<&Partial> {
        self.windows.get(&start_ms)
    }

    /// Windows held.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// Partials changed since the last [`saved`](Self::saved), by start.
    pub fn changed(&self) -> impl Iterator<Item = &Partial> {
        self.changed.iter().map(|s| &self.windows[s])
    }

    /// Unchanged windows expired at `watermark`: once saved, nothing can
    /// change them any more, so they need not stay in memory.
    pub fn expired(&self, watermark: Option<Timestamp>) -> Vec<i64> {
        self.windows
            .keys()
            .copied()
            .take_while(|&s| self.spec.is_expired(s, watermark))
            .filter(|s| !self.changed.contains(s))
            .collect()
    }

    /// Every change is durable: clears the changed set and releases the
    /// windows listed (from [`expired`](Self::expired)).
    pub fn saved(&mut self, released: &[i64]) {
        self.changed.clear();
        for s in released {
            self.windows.remove(s);
        }
    }

    /// Approximate heap bytes, for a gauge.
    pub fn heap_bytes(&self) -> usize {
        self.windows.values().map(Partial::heap_bytes).sum()
    }
}
