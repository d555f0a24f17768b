//! The join's state for a rebuild: versions in memory (the join reads them), and no
//! pending-sale store at all. The services keep held sales durable so a restart resumes
//! them; a rebuild that stops is simply run again from the start, so writing every held
//! sale into a second in-memory copy would only cost time and memory.
//!
//! The version store is a hash map from entity id to that entity's versions sorted by
//! `updated_at`: the same contract as `flowline_join::InMemoryVersionStore` (same key,
//! last write of an instant wins, reads newest first up to a time), but a read or write is
//! one hash lookup plus a search in a few versions, instead of a descent through one big
//! ordered map comparing id strings at every level (which showed in the rebuild profile).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use flowline_join::{JoinStores, PendingKey, PendingSale, PendingStore, StoreError, VersionStore};
use flowline_model::{Address, Customer, Timestamp};

struct NoPendingStore;

#[async_trait]
impl PendingStore for NoPendingStore {
    async fn put_pending(&self, _batch: &[&PendingSale]) -> Result<(), StoreError> {
        Ok(())
    }

    async fn remove_pending(&self, _keys: &[PendingKey]) -> Result<(), StoreError> {
        Ok(())
    }

    /// Never called: the rebuild restores no shard.
    async fn load_pending(
        &self,
        _stream: &str,
        _shard_id: &str,
    ) -> Result<Vec<PendingSale>, StoreError> {
        Ok(Vec::new())
    }
}

/// Every version of every entity of one kind: ascending by `updated_at`, one per instant.
struct Versions<V>(Mutex<HashMap<String, Vec<(Timestamp, V)>>>);

impl<V: Clone> Versions<V> {
    fn new() -> Self {
        Versions(Mutex::new(HashMap::new()))
    }

    // The core is the only user and calls one method at a time, so the lock is never
    // contended; a poisoned one only means a panic elsewhere, and each write is a
    // single insert, so the map is never half-updated.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<(Timestamp, V)>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn put<'a>(&self, batch: impl IntoIterator<Item = (&'a str, Timestamp, &'a V)>)
    where
        V: 'a,
    {
        let mut map = self.lock();
        for (id, t, v) in batch {
            let versions = match map.get_mut(id) {
                Some(vs) => vs,
                // Most entities have one version: room for exactly one (an empty Vec's
                // first push would reserve four, costing peak memory on every entity).
                None => map
                    .entry(id.to_string())
                    .or_insert_with(|| Vec::with_capacity(1)),
            };
            // Versions come nearly in time order: usually an append.
            match versions.last() {
                Some((last, _)) if *last < t => versions.push((t, v.clone())),
                None => versions.push((t, v.clone())),
                _ => match versions.binary_search_by_key(&t, |x| x.0) {
                    Ok(i) => versions[i].1 = v.clone(),
                    Err(i) => versions.insert(i, (t, v.clone())),
                },
            }
        }
    }

    /// Up to `limit` versions with `updated_at <= upto`, newest first.
    fn upto(&self, id: &str, upto: Timestamp, limit: usize) -> Vec<V> {
        let map = self.lock();
        let Some(versions) = map.get(id) else {
            return Vec::new();
        };
        let n = versions.partition_point(|x| x.0 <= upto);
        versions[..n]
            .iter()
            .rev()
            .take(limit)
            .map(|x| x.1.clone())
            .collect()
    }
}

struct RebuildVersionStore {
    customers: Versions<Customer>,
    addresses: Versions<Address>,
}

#[async_trait]
impl VersionStore for RebuildVersionStore {
    async fn put_customers(&self, batch: &[Customer]) -> Result<(), StoreError> {
        self.customers.put(
            batch
                .iter()
                .map(|c| (c.customer_id.as_str(), c.updated_at, c)),
        );
        Ok(())
    }

    async fn put_addresses(&self, batch: &[Address]) -> Result<(), StoreError> {
        self.addresses.put(
            batch
                .iter()
                .map(|a| (a.address_id.as_str(), a.updated_at, a)),
        );
        Ok(())
    }

    async fn customers_upto(
        &self,
        customer_id: &str,
        upto: Timestamp,
        limit: usize,
    ) -> Result<Vec<Customer>, StoreError> {
        Ok(self.customers.upto(customer_id, upto, limit))
    }

    async fn addresses_upto(
        &self,
        address_id: &str,
        upto: Timestamp,
        limit: usize,
    ) -> Result<Vec<Address>, StoreError> {
        Ok(self.addresses.upto(address_id, upto, limit))
    }
}

pub fn stores() -> JoinStores {
    JoinStores {
        versions: Arc::new(RebuildVersionStore {
            customers: Versions::new(),
            addresses: Versions::new(),
        }),
        pending: Arc::new(NoPendingStore),
    }
}

#[cfg(test)]
mod tests {
    use flowline_join::InMemoryVersionStore;

    use super::*;

    fn customer(id: &str, ms: i64, segment: &str) -> Customer {
        Customer {
            customer_id: id.into(),
            address_id: format!("A-{id}"),
            first_name: "Ann".into(),
            last_name: "Lee".into(),
            email: "ann@example.com".into(),
            phone: "+1 555 0100".into(),
            segment: segment.into(),
            updated_at: Timestamp::from_millis(ms).expect("time"),
        }
    }

    /// Same reads as the join crate's reference store after the same writes: out of
    /// order, repeated instants (last write wins), several entities, every limit.
    #[tokio::test]
    async fn reads_match_the_reference_store() {
        let ours = stores().versions;
        let reference = InMemoryVersionStore::new();
        let batches = [
            vec![customer("c1", 100, "a"), customer("c2", 50, "a")],
            vec![customer("c1", 300, "b"), customer("c1", 200, "c")],
            vec![customer("c1", 200, "d"), customer("c10", 200, "e")],
            vec![customer("c1", 10, "f"), customer("c1", 300, "g")],
        ];
        for b in &batches {
            ours.put_customers(b).await.expect("put");
            reference.put_customers(b).await.expect("put");
        }
        for id in ["c1", "c2", "c10", "c3", "c"] {
            for at in [0, 10, 99, 100, 150, 200, 250, 300, 1000] {
                let at = Timestamp::from_millis(at).expect("time");
                for limit in 1..=5 {
                    assert_eq!(
                        ours.customers_upto(id, at, limit).await.expect("read"),
                        reference.customers_upto(id, at, limit).await.expect("read"),
                        "{id} upto {at:?} limit {limit}"
                    );
                }
            }
        }
        let all = ours
            .customers_upto("c1", Timestamp::MAX, 10)
            .await
            .expect("read");
        let segments: Vec<&str> = all.iter().map(|c| c.segment.as_str()).collect();
        assert_eq!(segments, ["g", "d", "a", "f"]);
    }
}
