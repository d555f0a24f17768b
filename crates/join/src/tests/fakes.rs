//! Store fakes: failure injection and batch checks.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use flowline_model::{Address, Customer, Timestamp};

use crate::{
    InMemoryPendingStore, InMemoryVersionStore, PendingKey, PendingSale, PendingStore, StoreError,
    VersionStore,
};

/// Fails the first `failures` calls of every kind, then delegates.
pub struct Flaky {
    pub inner: InMemoryVersionStore,
    pub pending: InMemoryPendingStore,
    pub failures: AtomicUsize,
}

impl Flaky {
    fn fail(&self, op: &str) -> Result<(), StoreError> {
        let left = self.failures.load(Ordering::SeqCst);
        if left > 0 {
            self.failures.store(left - 1, Ordering::SeqCst);
            return Err(StoreError::retriable(op, "throttled"));
        }
        Ok(())
    }
}

#[async_trait]
impl VersionStore for Flaky {
    async fn put_customers(&self, b: &[Customer]) -> Result<(), StoreError> {
        self.fail("put_customers")?;
        self.inner.put_customers(b).await
    }
    async fn put_addresses(&self, b: &[Address]) -> Result<(), StoreError> {
        self.fail("put_addresses")?;
        self.inner.put_addresses(b).await
    }
    async fn customers_upto(
        &self,
        id: &str,
        at: Timestamp,
        n: usize,
    ) -> Result<Vec<Customer>, StoreError> {
        self.fail("customers_upto")?;
        self.inner.customers_upto(id, at, n).await
    }
    async fn addresses_upto(
        &self,
        id: &str,
        at: Timestamp,
        n: usize,
    ) -> Result<Vec<Address>, StoreError> {
        self.fail("addresses_upto")?;
        self.inner.addresses_upto(id, at, n).await
    }
}

#[async_trait]
impl PendingStore for Flaky {
    async fn put_pending(&self, b: &[&PendingSale]) -> Result<(), StoreError> {
        self.fail("put_pending")?;
        self.pending.put_pending(b).await
    }
    async fn remove_pending(&self, k: &[PendingKey]) -> Result<(), StoreError> {
        self.fail("remove_pending")?;
        self.pending.remove_pending(k).await
    }
    async fn load_pending(&self, s: &str, sh: &str) -> Result<Vec<PendingSale>, StoreError> {
        self.pending.load_pending(s, sh).await
    }
}

/// Checks every write batch for repeated keys (DynamoDB refuses them).
#[derive(Default)]
pub struct UniqueBatches {
    pub versions: InMemoryVersionStore,
    pub pending: InMemoryPendingStore,
}

fn assert_unique<K: Ord + std::fmt::Debug>(keys: Vec<K>) {
    let n = keys.len();
    let set: std::collections::BTreeSet<K> = keys.into_iter().collect();
    assert_eq!(set.len(), n, "duplicate keys in one batch: {set:?}");
}

#[async_trait]
impl VersionStore for UniqueBatches {
    async fn put_customers(&self, b: &[Customer]) -> Result<(), StoreError> {
        assert_unique(b.iter().map(|c| (&c.customer_id, c.updated_at)).collect());
        self.versions.put_customers(b).await
    }
    async fn put_addresses(&self, b: &[Address]) -> Result<(), StoreError> {
        assert_unique(b.iter().map(|a| (&a.address_id, a.updated_at)).collect());
        self.versions.put_addresses(b).await
    }
    async fn customers_upto(
        &self,
        id: &str,
        at: Timestamp,
        n: usize,
    ) -> Result<Vec<Customer>, StoreError> {
        self.versions.customers_upto(id, at, n).await
    }
    async fn addresses_upto(
        &self,
        id: &str,
        at: Timestamp,
        n: usize,
    ) -> Result<Vec<Address>, StoreError> {
        self.versions.addresses_upto(id, at, n).await
    }
}

#[async_trait]
impl PendingStore for UniqueBatches {
    async fn put_pending(&self, b: &[&PendingSale]) -> Result<(), StoreError> {
        assert_unique(b.iter().map(|p| p.key()).collect());
        self.pending.put_pending(b).await
    }
    async fn remove_pending(&self, k: &[PendingKey]) -> Result<(), StoreError> {
        self.pending.remove_pending(k).await
    }
    async fn load_pending(&self, s: &str, sh: &str) -> Result<Vec<PendingSale>, StoreError> {
        self.pending.load_pending(s, sh).await
    }
}
