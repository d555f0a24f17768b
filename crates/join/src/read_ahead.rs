//! Read-ahead for a chunk of due sales: the versions the cache cannot answer
//! are read with bounded concurrency before the sales are decided one by one.
//!
//! Deciding a sale needs its customer, then the address that customer names;
//! done sale by sale, every cache miss is one store round trip in sequence,
//! and a round releasing thousands of sales waits for thousands of them. Here
//! the misses of a chunk are gathered first (distinct ids), read together in
//! two waves (customers, then the addresses they name) and learnt into the
//! cache, so the decisions afterwards are mostly cache hits. What is still a
//! miss then (an entity evicted in between, a sale older than the newest
//! `limit` versions, a read-through) takes the sequential path as before.

use std::collections::HashSet;
use std::sync::Arc;

use flowline_model::Timestamp;
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::cache::{Known, VersionCache};
use crate::error::StoreError;
use crate::store::{PendingSale, VersionStore};
use crate::views::{AddressView, CustomerView, Versioned};

/// Which lookups of a sale the read-ahead already counted as cache misses
/// (the decision then must not count them again as hits).
#[derive(Clone, Copy, Default)]
pub(crate) struct Counted {
    pub(crate) customer: bool,
    pub(crate) address: bool,
}

pub(crate) struct ReadAhead {
    pub(crate) store: Arc<dyn VersionStore>,
    pub(crate) upto: Timestamp,
    pub(crate) limit: usize,
    pub(crate) concurrency: usize,
}

impl ReadAhead {
    /// Warms the caches for `sales`; returns, per sale, which lookups were
    /// misses, and adds the number of store reads to `reads`.
    pub(crate) async fn run(
        &self,
        sales: &[&PendingSale],
        customers: &mut VersionCache<CustomerView>,
        addresses: &mut VersionCache<AddressView>,
        reads: &mut u64,
    ) -> Result<Vec<Counted>, StoreError> {
        let mut counted: Vec<Counted> = Vec::with_capacity(sales.len());
        let mut wanted = Vec::new();
        let mut seen = HashSet::new();
        for p in sales {
            // Only the first lookup of an id is a miss: the rest would
            // have hit after its read, had the sales been decided in turn.
            let miss = customers
                .peek(&p.sale.customer_id, p.sale.event_time)
                .is_none()
                && seen.insert(p.sale.customer_id.as_str());
            if miss {
                wanted.push(p.sale.customer_id.clone());
            }
            counted.push(Counted {
                customer: miss,
                address: false,
            });
        }
        let (upto, limit) = (self.upto, self.limit);
        self.read_all(wanted, customers, reads, move |store, id| async move {
            store
                .customers_upto(&id, upto, limit)
                .await
                .map(|rows| (id, rows))
        })
        .await?;

        let mut wanted = Vec::new();
        let mut seen = HashSet::new();
        for (p, c) in sales.iter().zip(counted.iter_mut()) {
            let t = p.sale.event_time;
            let Some(Some(customer)) = customers.peek(&p.sale.customer_id, t) else {
                continue;
            };
            if addresses.peek(customer.address_id(), t).is_none()
                && seen.insert(customer.address_id().to_owned())
            {
                c.address = true;
                wanted.push(customer.address_id().to_owned());
            }
        }
        self.read_all(wanted, addresses, reads, move |store, id| async move {
            store
                .addresses_upto(&id, upto, limit)
                .await
                .map(|rows| (id, rows))
        })
        .await?;
        Ok(counted)
    }

    /// Reads every id (at most `concurrency` at once), counts each as a
    /// cache miss and a store read, and learns the answers; on an error, what
    /// was read before it is still learnt.
    async fn read_all<V, R, F, Fut>(
        &self,
        ids: Vec<String>,
        cache: &mut VersionCache<V>,
        reads: &mut u64,
        read: F,
    ) -> Result<(), StoreError>
    where
        V: Versioned + for<'r> From<&'r R>,
        F: Fn(Arc<dyn VersionStore>, String) -> Fut,
        Fut: Future<Output = Result<(String, Vec<R>), StoreError>>,
    {
        *reads += ids.len() as u64;
        cache.count_misses(ids.len() as u64);
        let calls = ids.into_iter().map(|id| read(self.store.clone(), id));
        let mut results = stream::iter(calls).buffer_unordered(self.concurrency.max(1));
        while let Some((id, rows)) = results.try_next().await? {
            let versions = rows.iter().map(V::from).collect();
            cache.learn(&id, Known::from_read(versions, self.limit, self.upto));
        }
        Ok(())
    }
}
