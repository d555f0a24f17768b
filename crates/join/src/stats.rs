//! Counters and levels of the join core.

use flowline_model::Timestamp;

/// Counters and levels for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct JoinStats {
    /// Sales not yet due (watermark below their event time).
    pub pending: usize,
    /// Due sales waiting for a missing entity or their timeout.
    pub waiting: usize,
    /// Emitted orders not yet confirmed (still in the pending store).
    pub unconfirmed: usize,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cached_entities: usize,
    /// Version store queries made.
    pub store_reads: u64,
    pub emitted_complete: u64,
    pub emitted_partial: u64,
    /// The last watermark passed to `advance`, if any.
    pub watermark: Option<Timestamp>,
}

impl JoinStats {
    /// Fraction of version lookups answered by the cache (1.0 before any).
    pub fn cache_hit_ratio(&self) -> f64 {
        let total = self.cache_hits + self.cache_misses;
        if total == 0 {
            1.0
        } else {
            self.cache_hits as f64 / total as f64
        }
    }
}
