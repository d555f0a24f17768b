//! Bookkeeping of held sales: their in-memory key, the waiting index, and
//! small helpers of the core.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use flowline_model::Timestamp;

use crate::store::{PendingSale, shard_partition};

/// In-memory order of held sales: event time first, so "everything due at
/// W" is a prefix.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SaleKey {
    pub(crate) event_time: Timestamp,
    pub(crate) sale_id: String,
    /// The source shard's pending-store partition (interned: one per shard).
    pub(crate) partition: Arc<str>,
}

impl SaleKey {
    /// Sorts before every key at `t` or later (after every earlier key).
    pub(crate) fn first_at(t: Timestamp) -> SaleKey {
        SaleKey {
            event_time: t,
            sale_id: String::new(),
            partition: Arc::from(""),
        }
    }
}

/// One shared partition string per (stream, shard), so holding a sale costs
/// no extra allocation for it.
#[derive(Default)]
pub(crate) struct Partitions(HashMap<String, HashMap<String, Arc<str>>>);

impl Partitions {
    pub(crate) fn key(&mut self, p: &PendingSale) -> SaleKey {
        let (stream, shard) = (&p.source.stream, &p.source.shard_id);
        let shards = match self.0.get_mut(stream.as_str()) {
            Some(s) => s,
            None => self.0.entry(stream.clone()).or_default(),
        };
        let partition = match shards.get(shard.as_str()) {
            Some(a) => a.clone(),
            None => {
                let a: Arc<str> = Arc::from(shard_partition(stream, shard));
                shards.insert(shard.clone(), a.clone());
                a
            }
        };
        SaleKey {
            event_time: p.sale.event_time,
            sale_id: p.sale.sale_id.clone(),
            partition,
        }
    }
}

/// A sale that was due but referenced something missing.
pub(crate) struct Waiting {
    pub(crate) sale: PendingSale,
    pub(crate) deadline: Timestamp,
    /// Indexed under this address id (from the customer version found).
    pub(crate) address_id: Option<String>,
}

/// A version that arrived may complete waiting sales whose event time is
/// at or after it.
pub(crate) fn mark_dirty(
    dirty: &mut BTreeSet<SaleKey>,
    waiting: Option<&Vec<SaleKey>>,
    updated_at: Timestamp,
) {
    for key in waiting.into_iter().flatten() {
        if key.event_time >= updated_at {
            dirty.insert(key.clone());
        }
    }
}

/// Sorts by `cmp` and keeps, of equal items, the one pushed last.
pub(crate) fn dedup_keep_last<T>(items: &mut Vec<T>, cmp: impl Fn(&T, &T) -> std::cmp::Ordering) {
    // Reversed then stably sorted, the last pushed of equal items comes
    // first, and dedup keeps the first of each run.
    items.reverse();
    items.sort_by(&cmp);
    items.dedup_by(|a, b| cmp(a, b).is_eq());
}

pub(crate) fn push_unique(keys: &mut Vec<SaleKey>, key: &SaleKey) {
    if !keys.contains(key) {
        keys.push(key.clone());
    }
}

pub(crate) fn remove_key(index: &mut HashMap<String, Vec<SaleKey>>, id: &str, key: &SaleKey) {
    if let Some(keys) = index.get_mut(id) {
        keys.retain(|k| k != key);
        if keys.is_empty() {
            index.remove(id);
        }
    }
}
