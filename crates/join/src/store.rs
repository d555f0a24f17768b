//! Narrow state traits: what the join core needs from durable storage.
//!
//! Shaped for DynamoDB (the service) and a BTreeMap (tests, rebuild):
//! writes come in batches of up to `write_batch` items (implementations
//! split them into BatchWriteItem requests of 25 and retry unprocessed
//! items; a call returns Ok only when all are written), and a
//! version read is one Query on the entity's partition with the sort key
//! `updated_at <= :t`, `ScanIndexForward=false`, `Limit=n`. Reads must be
//! strongly consistent: the watermark protocol (DESIGN.md section 4,
//! "Scaling") relies on a read after watermark W seeing every version with
//! `updated_at <= W`.

use async_trait::async_trait;
use flowline_model::{Address, Customer, RecordSource, Sale, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// Versions of customers and addresses, keyed by (entity id, `updated_at`).
/// Putting the same key twice keeps the last write (a redelivered version
/// is identical, so replays are idempotent); a batch never holds the same
/// key twice.
#[async_trait]
pub trait VersionStore: Send + Sync {
    async fn put_customers(&self, batch: &[Customer]) -> Result<(), StoreError>;
    async fn put_addresses(&self, batch: &[Address]) -> Result<(), StoreError>;
    /// Up to `limit` versions of the customer with `updated_at <= upto`,
    /// newest first.
    async fn customers_upto(
        &self,
        customer_id: &str,
        upto: Timestamp,
        limit: usize,
    ) -> Result<Vec<Customer>, StoreError>;
    /// Up to `limit` versions of the address with `updated_at <= upto`,
    /// newest first.
    async fn addresses_upto(
        &self,
        address_id: &str,
        upto: Timestamp,
        limit: usize,
    ) -> Result<Vec<Address>, StoreError>;

    /// The customer version valid at `t`: greatest `updated_at <= t`.
    async fn customer_at(
        &self,
        customer_id: &str,
        t: Timestamp,
    ) -> Result<Option<Customer>, StoreError> {
        Ok(self.customers_upto(customer_id, t, 1).await?.pop())
    }

    /// The address version valid at `t`: greatest `updated_at <= t`.
    async fn address_at(
        &self,
        address_id: &str,
        t: Timestamp,
    ) -> Result<Option<Address>, StoreError> {
        Ok(self.addresses_upto(address_id, t, 1).await?.pop())
    }
}

/// Where a pending sale is stored: one partition per source shard, so the
/// copy that takes over a shard's lease loads exactly that shard's sales;
/// sorted by event time then sale id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PendingKey {
    pub stream: String,
    pub shard_id: String,
    pub event_time: Timestamp,
    pub sale_id: String,
}

impl PendingKey {
    /// `stream/shard_id`: a partition key for the store.
    pub fn partition(&self) -> String {
        shard_partition(&self.stream, &self.shard_id)
    }

    /// `event_time#sale_id` (canonical time, so it sorts as text).
    pub fn sort_key(&self) -> String {
        format!("{}#{}", self.event_time, self.sale_id)
    }
}

/// The partition of a shard's pending sales (see [`PendingKey::partition`]).
pub fn shard_partition(stream: &str, shard_id: &str) -> String {
    format!("{stream}/{shard_id}")
}

/// A sale waiting for the watermark, with the record it came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingSale {
    pub sale: Sale,
    pub source: RecordSource,
}

impl PendingSale {
    pub fn key(&self) -> PendingKey {
        PendingKey {
            stream: self.source.stream.clone(),
            shard_id: self.source.shard_id.clone(),
            event_time: self.sale.event_time,
            sale_id: self.sale.sale_id.clone(),
        }
    }
}

/// Sales accepted but not yet emitted, so a restart or a lease move loses
/// none. An entry is removed only after its enriched order is acknowledged
/// downstream; putting an existing key again overwrites it.
#[async_trait]
pub trait PendingStore: Send + Sync {
    /// A batch never holds the same key twice.
    async fn put_pending(&self, batch: &[&PendingSale]) -> Result<(), StoreError>;
    /// Keys may repeat (a sale emitted twice before a confirmation); a
    /// BatchWriteItem request must not, so implementations drop repeats.
    /// Removing an absent key is not an error.
    async fn remove_pending(&self, keys: &[PendingKey]) -> Result<(), StoreError>;
    /// All pending sales of one shard (after taking its lease), in key order.
    async fn load_pending(
        &self,
        stream: &str,
        shard_id: &str,
    ) -> Result<Vec<PendingSale>, StoreError>;
}
