//! Deterministic in-memory state (tests, benchmarks, the rebuild tool).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use flowline_model::{Address, Customer, Timestamp};

use crate::error::StoreError;
use crate::store::{PendingKey, PendingSale, PendingStore, VersionStore};

type Versions<V> = Mutex<BTreeMap<(String, Timestamp), V>>;

/// Customer and address versions in sorted maps.
#[derive(Debug, Default)]
pub struct InMemoryVersionStore {
    customers: Versions<Customer>,
    addresses: Versions<Address>,
}

impl InMemoryVersionStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of (customer versions, address versions) stored.
    pub fn len(&self) -> (usize, usize) {
        (lock(&self.customers).len(), lock(&self.addresses).len())
    }
}

// A poisoned lock only means a panic elsewhere while holding it; the maps
// are never left half-updated (single insert/remove per lock), so go on.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn upto<V: Clone>(map: &Versions<V>, id: &str, upto: Timestamp, limit: usize) -> Vec<V> {
    let map = lock(map);
    let lo = (id.to_string(), Timestamp::MIN);
    let hi = (id.to_string(), upto);
    map.range(lo..=hi)
        .rev()
        .take(limit)
        .map(|(_, v)| v.clone())
        .collect()
}

#[async_trait]
impl VersionStore for InMemoryVersionStore {
    async fn put_customers(&self, batch: &[Customer]) -> Result<(), StoreError> {
        let mut map = lock(&self.customers);
        for c in batch {
            map.insert((c.customer_id.clone(), c.updated_at), c.clone());
        }
        Ok(())
    }

    async fn put_addresses(&self, batch: &[Address]) -> Result<(), StoreError> {
        let mut map = lock(&self.addresses);
        for a in batch {
            map.insert((a.address_id.clone(), a.updated_at), a.clone());
        }
        Ok(())
    }

    async fn customers_upto(
        &self,
        customer_id: &str,
        at: Timestamp,
        limit: usize,
    ) -> Result<Vec<Customer>, StoreError> {
        Ok(upto(&self.customers, customer_id, at, limit))
    }

    async fn addresses_upto(
        &self,
        address_id: &str,
        at: Timestamp,
        limit: usize,
    ) -> Result<Vec<Address>, StoreError> {
        Ok(upto(&self.addresses, address_id, at, limit))
    }
}

/// One shard's pending sales by (event time, sale id).
type ShardSales = BTreeMap<(Timestamp, String), PendingSale>;

/// Pending sales by stream, shard, then (event time, sale id). Nested maps
/// so lookups by `&str` need no key allocation.
#[derive(Debug, Default)]
pub struct InMemoryPendingStore {
    streams: Mutex<BTreeMap<String, BTreeMap<String, ShardSales>>>,
}

impl InMemoryPendingStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        lock(&self.streams)
            .values()
            .flat_map(BTreeMap::values)
            .map(BTreeMap::len)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl PendingStore for InMemoryPendingStore {
    async fn put_pending(&self, batch: &[&PendingSale]) -> Result<(), StoreError> {
        let mut streams = lock(&self.streams);
        for p in batch {
            let shards = match streams.get_mut(p.source.stream.as_str()) {
                Some(s) => s,
                None => streams.entry(p.source.stream.clone()).or_default(),
            };
            let sales = match shards.get_mut(p.source.shard_id.as_str()) {
                Some(s) => s,
                None => shards.entry(p.source.shard_id.clone()).or_default(),
            };
            sales.insert((p.sale.event_time, p.sale.sale_id.clone()), (*p).clone());
        }
        Ok(())
    }

    async fn remove_pending(&self, keys: &[PendingKey]) -> Result<(), StoreError> {
        let mut streams = lock(&self.streams);
        for k in keys {
            let Some(shards) = streams.get_mut(k.stream.as_str()) else {
                continue;
            };
            if let Some(sales) = shards.get_mut(k.shard_id.as_str()) {
                sales.remove(&(k.event_time, k.sale_id.clone()));
                if sales.is_empty() {
                    shards.remove(k.shard_id.as_str());
                }
            }
        }
        Ok(())
    }

    async fn load_pending(
        &self,
        stream: &str,
        shard_id: &str,
    ) -> Result<Vec<PendingSale>, StoreError> {
        let streams = lock(&self.streams);
        Ok(streams
            .get(stream)
            .and_then(|shards| shards.get(shard_id))
            .map(|sales| sales.values().cloned().collect())
            .unwrap_or_default())
    }
}
