//! The join core: holds sales until the watermark, joins them at their
//! event time, emits them in a deterministic order.
//!
//! Watermark meaning, as in `flowline-watermark` (W = greatest event time
//! minus the out-of-orderness, so an event exactly at W may still come) and
//! `flowline-window` (a window `[start, end)` closes at `W >= end`):
//! `advance(W)` asserts that every event with an event time `< W` has
//! arrived on every input stream, and that every customer and address
//! version with `updated_at < W` is in the version store. So a sale is
//! joined once `W > event_time`: everything valid at its event time is
//! known by then, whatever order the streams arrived in. If something is
//! still missing, the sale waits until `W > event_time + join_timeout` (or
//! until the missing version arrives through this core) and is then
//! emitted `partial`.
//!
//! A missing version that arrives through this core (`apply_*`) re-joins
//! its waiting sales at the next advance. With several service copies
//! (`exclusive_writer = false`) a version written by another copy is found
//! at the latest by the read-through at the timeout, so the record is the
//! same, only later. Only versions arriving after the watermark passed them
//! (late beyond the allowed out-of-orderness) can make a result depend on
//! timing, as with any watermark; a version arriving after its sale was
//! emitted does not change that sale.
//!
//! `enriched_at` is deterministic, so the live service, a restart that
//! re-emits, and the rebuild tool write identical records: it is the
//! event-time instant at which the result became final by rule —
//! `event_time` for a complete join, `event_time + join_timeout` for a
//! partial one. Wall-clock latency belongs in metrics, not in the record.
//!
//! Call protocol (service): feed records with `apply_customer`,
//! `apply_address`, `add_sale`; `flush` before checkpointing those records
//! or publishing their shard watermarks; `advance` with the global join
//! watermark; write the returned orders downstream; after every one is
//! acknowledged, `confirm_emitted` (deletes them from the pending store).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use flowline_model::{
    Address, Customer, DiscountPct, EnrichedOrder, Missing, RecordSource, Sale, Timestamp,
    order_amounts,
};

use crate::cache::VersionCache;
use crate::config::JoinConfig;
use crate::enrich::{Resolved, enrich_with, missing};
use crate::error::{JoinError, Result, StoreError};
use crate::held::{
    Partitions, SaleKey, Waiting, dedup_keep_last, mark_dirty, push_unique, remove_key,
};
use crate::lookup::{Lookup, lookup};
use crate::memory::{InMemoryPendingStore, InMemoryVersionStore};
use crate::read_ahead::{Counted, ReadAhead};
use crate::reference::{ReferenceData, ReferenceHandle};
use crate::stats::JoinStats;
use crate::store::{PendingKey, PendingSale, PendingStore, VersionStore, shard_partition};
use crate::views::{AddressView, CustomerView};

/// The durable state behind the core.
#[derive(Clone)]
pub struct JoinStores {
    pub versions: Arc<dyn VersionStore>,
    pub pending: Arc<dyn PendingStore>,
}

impl JoinStores {
    /// Fresh in-memory stores (tests, rebuild, benchmarks).
    pub fn in_memory() -> JoinStores {
        JoinStores {
            versions: Arc::new(InMemoryVersionStore::new()),
            pending: Arc::new(InMemoryPendingStore::new()),
        }
    }
}

enum Decision {
    Emit {
        customer: Option<Arc<CustomerView>>,
        address: Option<Arc<AddressView>>,
        missing: Vec<Missing>,
        enriched_at: Timestamp,
    },
    Wait {
        deadline: Timestamp,
        address_id: Option<String>,
    },
    /// Placeholder while a sale's versions are read ahead.
    Undecided,
}

pub struct JoinCore {
    config: JoinConfig,
    /// No other writer adds versions while this holds (see `set_exclusive`).
    exclusive: bool,
    /// Versions up to this time may be in the store without having gone
    /// through this core (see `note_unseen`): only a version after it may
    /// start a cache entry by itself.
    unseen_upto: Option<Timestamp>,
    /// Newest `updated_at` applied through this core.
    newest_put: Option<Timestamp>,
    timeout_ms: i64,
    versions: Arc<dyn VersionStore>,
    pending_store: Arc<dyn PendingStore>,
    reference: Arc<ReferenceHandle>,
    reference_generation: Option<u64>,
    customers: VersionCache<CustomerView>,
    addresses: VersionCache<AddressView>,
    watermark: Option<Timestamp>,
    pending: BTreeMap<SaleKey, PendingSale>,
    waiting: BTreeMap<SaleKey, Waiting>,
    deadlines: BTreeSet<(Timestamp, SaleKey)>,
    /// Waiting sales to re-join at the next advance (a version they may
    /// have been missing arrived, or the reference data changed).
    dirty: BTreeSet<SaleKey>,
    waiting_by_customer: HashMap<String, Vec<SaleKey>>,
    waiting_by_address: HashMap<String, Vec<SaleKey>>,
    buf_customers: Vec<Customer>,
    buf_addresses: Vec<Address>,
    /// Sales accepted but not yet written to the pending store; they join
    /// `pending` once written (every advance flushes first).
    buf_pending: Vec<(SaleKey, PendingSale)>,
    partitions: Partitions,
    unconfirmed: Vec<PendingKey>,
    /// Taken by `take_emitted`, not yet confirmed.
    in_flight: usize,
    scratch_due: Vec<(SaleKey, PendingSale)>,
    scratch_decisions: Vec<Decision>,
    store_reads: u64,
    emitted_complete: u64,
    emitted_partial: u64,
}

impl JoinCore {
    pub fn new(
        config: JoinConfig,
        stores: JoinStores,
        reference: Arc<ReferenceHandle>,
    ) -> Result<JoinCore> {
        let problems = config.validate();
        if !problems.is_empty() {
            return Err(JoinError::InvalidConfig(problems));
        }
        Ok(JoinCore {
            exclusive: config.exclusive_writer,
            unseen_upto: None,
            newest_put: None,
            timeout_ms: config.timeout_millis(),
            customers: VersionCache::new(config.cache_entities / 2, config.versions_per_entity),
            addresses: VersionCache::new(config.cache_entities / 2, config.versions_per_entity),
            config,
            versions: stores.versions,
            pending_store: stores.pending,
            reference,
            reference_generation: None,
            watermark: None,
            pending: BTreeMap::new(),
            waiting: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            dirty: BTreeSet::new(),
            waiting_by_customer: HashMap::new(),
            waiting_by_address: HashMap::new(),
            buf_customers: Vec::new(),
            buf_addresses: Vec::new(),
            buf_pending: Vec::new(),
            partitions: Partitions::default(),
            unconfirmed: Vec::new(),
            in_flight: 0,
            scratch_due: Vec::new(),
            scratch_decisions: Vec::new(),
            store_reads: 0,
            emitted_complete: 0,
            emitted_partial: 0,
        })
    }

    pub fn config(&self) -> &JoinConfig {
        &self.config
    }

    /// Whether, from now on, every customer and address version reaches the
    /// version store through this core (the service: this copy reads every
    /// open shard of both streams). While it holds, an entity is read from
    /// the store at most once and then kept true by `apply_*` (one first seen
    /// through `apply_*` after everything unseen is not read at all), instead
    /// of once per advance. When it ends, knowledge past the last watermark
    /// is dropped: what another copy writes from now on lies at or after it,
    /// because its records come after the ones this copy's published
    /// watermarks covered.
    pub fn set_exclusive(&mut self, exclusive: bool) {
        if self.exclusive && !exclusive {
            let hi = self
                .watermark
                .map_or(Timestamp::MIN, |w| w.saturating_add_millis(-1));
            self.customers.truncate(hi);
            self.addresses.truncate(hi);
        }
        if !self.exclusive && exclusive {
            // Versions applied while others wrote too may be newer than
            // versions this core has not seen: they start no entry.
            self.unseen_upto = self.unseen_upto.max(self.newest_put);
        }
        self.exclusive = exclusive;
    }

    /// The version store may hold versions up to `upto` that did not go
    /// through this core (the service: on taking a customer or address
    /// shard, the greatest event time its previous owners read before the
    /// checkpoint it starts from).
    pub fn note_unseen(&mut self, upto: Timestamp) {
        self.unseen_upto = self.unseen_upto.max(Some(upto));
    }

    /// Whether a version applied now is known to be the first of all later
    /// versions of its entity the store will hold (see `VersionCache::on_put`).
    /// Only where reads are remote: with `exclusive_writer` (the rebuild's
    /// in-memory store) a read is a map lookup, and an entry per version
    /// put would fill the cache with entities no sale asks for (the join
    /// benchmark lost a third of its speed to that).
    fn first_of_rest(&mut self, updated_at: Timestamp) -> bool {
        let first =
            self.exclusive && !self.config.exclusive_writer && self.unseen_upto < Some(updated_at);
        self.newest_put = self.newest_put.max(Some(updated_at));
        first
    }

    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }

    /// A new customer version (buffered; written at the next flush).
    pub async fn apply_customer(&mut self, c: Customer) -> Result<()> {
        let first = self.first_of_rest(c.updated_at);
        self.customers
            .on_put(&c.customer_id, CustomerView::from(&c), first);
        mark_dirty(
            &mut self.dirty,
            self.waiting_by_customer.get(&c.customer_id),
            c.updated_at,
        );
        self.buf_customers.push(c);
        self.flush_if_full().await
    }

    /// A new address version (buffered; written at the next flush).
    pub async fn apply_address(&mut self, a: Address) -> Result<()> {
        let first = self.first_of_rest(a.updated_at);
        self.addresses
            .on_put(&a.address_id, AddressView::from(&a), first);
        mark_dirty(
            &mut self.dirty,
            self.waiting_by_address.get(&a.address_id),
            a.updated_at,
        );
        self.buf_addresses.push(a);
        self.flush_if_full().await
    }

    /// A sale to join once the watermark reaches its event time. `source`
    /// names the record (its shard partitions the pending store). Adding
    /// the same sale again (a redelivery) replaces the held copy.
    pub async fn add_sale(&mut self, sale: Sale, source: RecordSource) -> Result<()> {
        if order_amounts(sale.quantity, sale.unit_price, DiscountPct::ZERO).is_none() {
            return Err(JoinError::InvalidSale {
                sale_id: sale.sale_id,
                reason: "quantity × unit_price is out of the money range".into(),
            });
        }
        let held = self.held_sales();
        if held >= self.config.max_pending_sales {
            return Err(JoinError::PendingFull {
                pending: held,
                limit: self.config.max_pending_sales,
            });
        }
        let p = PendingSale { sale, source };
        let key = self.partitions.key(&p);
        self.buf_pending.push((key, p));
        self.flush_if_full().await
    }

    async fn flush_if_full(&mut self) -> Result<()> {
        let buffered = self.buf_customers.len() + self.buf_addresses.len() + self.buf_pending.len();
        if buffered >= self.config.write_batch {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes buffered versions and pending sales. After it returns Ok, the
    /// records applied so far may be checkpointed. On error nothing is lost:
    /// the unwritten part stays buffered for the next attempt.
    /// Each batch holds a key at most once (DynamoDB's BatchWriteItem
    /// refuses duplicates); of repeated writes the last one is kept.
    pub async fn flush(&mut self) -> Result<()> {
        if !self.buf_customers.is_empty() {
            dedup_keep_last(&mut self.buf_customers, |a, b| {
                (&a.customer_id, a.updated_at).cmp(&(&b.customer_id, b.updated_at))
            });
            self.versions.put_customers(&self.buf_customers).await?;
            self.buf_customers.clear();
        }
        if !self.buf_addresses.is_empty() {
            dedup_keep_last(&mut self.buf_addresses, |a, b| {
                (&a.address_id, a.updated_at).cmp(&(&b.address_id, b.updated_at))
            });
            self.versions.put_addresses(&self.buf_addresses).await?;
            self.buf_addresses.clear();
        }
        if !self.buf_pending.is_empty() {
            dedup_keep_last(&mut self.buf_pending, |a, b| a.0.cmp(&b.0));
            let batch: Vec<&PendingSale> = self.buf_pending.iter().map(|(_, p)| p).collect();
            self.pending_store.put_pending(&batch).await?;
            for (key, p) in self.buf_pending.drain(..) {
                match self.waiting.get_mut(&key) {
                    // A redelivery of a sale already due: keep its place.
                    Some(w) => w.sale = p,
                    None => {
                        self.pending.insert(key, p);
                    }
                }
            }
        }
        Ok(())
    }

    /// Moves the join watermark to `watermark` (a lower value than before is
    /// ignored: watermarks never go back) and returns the orders that became
    /// final, sorted by event time then order id.
    pub async fn advance(&mut self, watermark: Timestamp) -> Result<Vec<EnrichedOrder>> {
        self.advance_bounded(watermark, usize::MAX).await
    }

    /// [`Self::advance`], examining at most `max` due sales, earliest first;
    /// the rest stay held for the next call ([`Self::has_due`]). A service
    /// loop uses this to stay responsive while a large backlog drains.
    pub async fn advance_bounded(
        &mut self,
        watermark: Timestamp,
        max: usize,
    ) -> Result<Vec<EnrichedOrder>> {
        self.flush().await?;
        let w = self.watermark.map_or(watermark, |old| old.max(watermark));
        let (generation, refs) = self.reference.snapshot();
        if self.reference_generation != Some(generation) {
            // New items or promos may complete what was missing.
            self.dirty.extend(self.waiting.keys().cloned());
            self.reference_generation = Some(generation);
        }

        // Reused buffers: an advance can hold many thousands of sales.
        let mut due = std::mem::take(&mut self.scratch_due);
        let mut decisions = std::mem::take(&mut self.scratch_decisions);
        self.take_due(w, &mut due);
        if due.len() > max {
            due.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            for (key, p) in due.drain(max..) {
                self.pending.insert(key, p);
            }
        }
        if let Err(e) = self.decide_all(&due, w, &refs, &mut decisions).await {
            // Nothing was decided for good: hold every due sale again; the
            // next advance re-examines them.
            for (key, p) in due.drain(..) {
                self.pending.insert(key, p);
            }
            decisions.clear();
            (self.scratch_due, self.scratch_decisions) = (due, decisions);
            return Err(e.into());
        }

        let mut out = Vec::with_capacity(decisions.len());
        for ((key, p), decision) in due.drain(..).zip(decisions.drain(..)) {
            match decision {
                Decision::Emit {
                    customer,
                    address,
                    missing,
                    enriched_at,
                } => {
                    let PendingSale { sale, source } = p;
                    self.unconfirmed.push(PendingKey {
                        stream: source.stream,
                        shard_id: source.shard_id,
                        event_time: sale.event_time,
                        sale_id: sale.sale_id.clone(),
                    });
                    let r = resolved(&customer, &address);
                    let order = enrich_with(sale, r, &refs, missing, enriched_at);
                    if order.missing.is_empty() {
                        self.emitted_complete += 1;
                    } else {
                        self.emitted_partial += 1;
                    }
                    out.push(order);
                }
                Decision::Wait {
                    deadline,
                    address_id,
                } => self.hold_waiting(key, p, deadline, address_id),
                Decision::Undecided => unreachable!("decide_all decides every due sale"),
            }
        }
        (self.scratch_due, self.scratch_decisions) = (due, decisions);
        out.sort_by(|a, b| (a.event_time, &a.order_id).cmp(&(b.event_time, &b.order_id)));
        self.watermark = Some(w);
        Ok(out)
    }

    /// Removes from the pending store every order emitted so far. Call only
    /// after all of them were acknowledged downstream.
    pub async fn confirm_emitted(&mut self) -> Result<()> {
        if self.unconfirmed.is_empty() {
            return Ok(());
        }
        self.pending_store.remove_pending(&self.unconfirmed).await?;
        self.unconfirmed.clear();
        Ok(())
    }

    /// The keys of the orders emitted since the last call, for a caller that
    /// confirms each write separately once acknowledged ([`Self::confirm`]),
    /// instead of all at once ([`Self::confirm_emitted`]).
    pub fn take_emitted(&mut self) -> Vec<PendingKey> {
        self.in_flight += self.unconfirmed.len();
        std::mem::take(&mut self.unconfirmed)
    }

    /// Removes these orders (from [`Self::take_emitted`]) from the pending
    /// store. Call only after all of them were acknowledged downstream.
    pub async fn confirm(&mut self, keys: &[PendingKey]) -> Result<()> {
        if !keys.is_empty() {
            self.pending_store.remove_pending(keys).await?;
        }
        self.in_flight = self.in_flight.saturating_sub(keys.len());
        Ok(())
    }

    /// After taking a sales shard's lease: holds its stored pending sales.
    /// Returns how many were loaded.
    pub async fn restore_shard(&mut self, stream: &str, shard_id: &str) -> Result<usize> {
        let loaded = self.pending_store.load_pending(stream, shard_id).await?;
        let n = loaded.len();
        for p in loaded {
            let key = self.partitions.key(&p);
            if !self.waiting.contains_key(&key) {
                self.pending.insert(key, p);
            }
        }
        Ok(n)
    }

    /// Before giving up a sales shard's lease: writes what is buffered, then
    /// forgets the shard's held sales (they stay in the pending store for
    /// the next owner).
    pub async fn release_shard(&mut self, stream: &str, shard_id: &str) -> Result<()> {
        self.flush().await?;
        let part = shard_partition(stream, shard_id);
        self.pending.retain(|k, _| *k.partition != *part);
        let gone: Vec<SaleKey> = self
            .waiting
            .keys()
            .filter(|k| *k.partition == *part)
            .cloned()
            .collect();
        for key in gone {
            if let Some(w) = self.waiting.remove(&key) {
                self.forget_waiting(&key, &w);
            }
        }
        Ok(())
    }

    pub fn stats(&self) -> JoinStats {
        let (ch, cm) = self.customers.counts();
        let (ah, am) = self.addresses.counts();
        JoinStats {
            pending: self.pending.len() + self.buf_pending.len(),
            waiting: self.waiting.len(),
            unconfirmed: self.unconfirmed.len() + self.in_flight,
            cache_hits: ch + ah,
            cache_misses: cm + am,
            cached_entities: self.customers.len() + self.addresses.len(),
            store_reads: self.store_reads,
            emitted_complete: self.emitted_complete,
            emitted_partial: self.emitted_partial,
            watermark: self.watermark,
        }
    }

    /// Sales held in memory, the quantity `max_pending_sales` bounds.
    pub fn held_sales(&self) -> usize {
        self.pending.len() + self.waiting.len() + self.buf_pending.len()
    }

    /// Takes out of the maps every sale to (re)examine at `w`.
    fn take_due(&mut self, w: Timestamp, due: &mut Vec<(SaleKey, PendingSale)>) {
        // Due: event_time < w.
        let later = self.pending.split_off(&SaleKey::first_at(w));
        due.extend(std::mem::replace(&mut self.pending, later));
        while let Some((deadline, _)) = self.deadlines.first() {
            if *deadline >= w {
                break;
            }
            let (_, key) = self.deadlines.pop_first().expect("checked non-empty");
            if let Some(wt) = self.waiting.remove(&key) {
                self.unindex(&key, &wt);
                due.push((key, wt.sale));
            }
        }
        for key in std::mem::take(&mut self.dirty) {
            if let Some(wt) = self.waiting.remove(&key) {
                self.forget_waiting(&key, &wt);
                due.push((key, wt.sale));
            }
        }
    }

    /// Whether sales due at the current watermark are still held (after an
    /// [`Self::advance_bounded`] that stopped at its bound).
    pub fn has_due(&self) -> bool {
        let Some(w) = self.watermark else {
            return false;
        };
        self.pending
            .first_key_value()
            .is_some_and(|(k, _)| k.event_time < w)
            || self.deadlines.first().is_some_and(|(d, _)| *d < w)
            || !self.dirty.is_empty()
    }

    /// Decides every due sale, reading ahead chunk by chunk what the cache
    /// does not know.
    async fn decide_all(
        &mut self,
        due: &[(SaleKey, PendingSale)],
        w: Timestamp,
        refs: &ReferenceData,
        decisions: &mut Vec<Decision>,
    ) -> Result<(), StoreError> {
        /// Sales per read-ahead: bounds what one chunk adds to the cache
        /// before it is used.
        const CHUNK: usize = 1024;
        let ahead = ReadAhead {
            store: self.versions.clone(),
            upto: self.read_upto(w),
            limit: self.config.versions_per_entity,
            concurrency: self.config.read_concurrency,
        };
        let mut missed: Vec<(usize, &PendingSale)> = Vec::new();
        for chunk in due.chunks(CHUNK) {
            // The cache first (the common case costs no more than without a
            // read-ahead); then one read-ahead for the sales it could not decide.
            let first = decisions.len();
            missed.clear();
            for (i, (_, p)) in chunk.iter().enumerate() {
                match self.decide_cached(&p.sale, w, refs, Counted::default()) {
                    Some(d) => decisions.push(d),
                    None => {
                        missed.push((first + i, p));
                        decisions.push(Decision::Undecided);
                    }
                }
            }
            if missed.is_empty() {
                continue;
            }
            let sales: Vec<&PendingSale> = missed.iter().map(|(_, p)| *p).collect();
            let counted = ahead
                .run(
                    &sales,
                    &mut self.customers,
                    &mut self.addresses,
                    &mut self.store_reads,
                )
                .await?;
            for (&(at, p), counted) in missed.iter().zip(counted) {
                decisions[at] = match self.decide_cached(&p.sale, w, refs, counted) {
                    Some(d) => d,
                    None => self.decide(&p.sale, w, refs).await?,
                };
            }
        }
        Ok(())
    }

    /// The newest time a version read may cover: everything, when no other
    /// writer exists; otherwise only what the watermark settled (< w).
    fn read_upto(&self, w: Timestamp) -> Timestamp {
        if self.exclusive {
            Timestamp::MAX
        } else {
            w.saturating_add_millis(-1)
        }
    }

    /// The decision from the cache alone, without any async machinery
    /// (the common case); `None` when a store read is needed.
    fn decide_cached(
        &mut self,
        sale: &Sale,
        w: Timestamp,
        refs: &ReferenceData,
        counted: Counted,
    ) -> Option<Decision> {
        let t = sale.event_time;
        let customer = self.customers.peek(&sale.customer_id, t)?;
        let (address, looked_up) = match &customer {
            Some(c) => (self.addresses.peek(c.address_id(), t)?, true),
            None => (None, false),
        };
        let decision = self.conclude(sale, w, refs, customer, address, false)?;
        // Count only lookups that were answered here and not counted as a
        // miss by the read-ahead; a fallback counts its own.
        if !counted.customer {
            self.customers.count_hit();
        }
        if looked_up && !counted.address {
            self.addresses.count_hit();
        }
        Some(decision)
    }

    async fn decide(
        &mut self,
        sale: &Sale,
        w: Timestamp,
        refs: &ReferenceData,
    ) -> Result<Decision, StoreError> {
        let (customer, address) = self.resolve(sale, w, false).await?;
        if let Some(d) = self.conclude(sale, w, refs, customer, address, false) {
            return Ok(d);
        }
        // Another copy may have written the version after we cached its
        // absence: read through before giving up.
        let (customer, address) = self.resolve(sale, w, true).await?;
        Ok(self
            .conclude(sale, w, refs, customer, address, true)
            .expect("conclusive after a read-through"))
    }

    /// Emit or wait, given the versions found. `None` when the sale would be
    /// emitted partial while a read-through could still find what is missing.
    fn conclude(
        &self,
        sale: &Sale,
        w: Timestamp,
        refs: &ReferenceData,
        customer: Option<Arc<CustomerView>>,
        address: Option<Arc<AddressView>>,
        read_through: bool,
    ) -> Option<Decision> {
        let deadline = sale.event_time.saturating_add_millis(self.timeout_ms);
        let last_chance = deadline < w;
        let missing = missing(sale, resolved(&customer, &address), refs);
        if missing.is_empty() {
            let enriched_at = sale.event_time;
            return Some(Decision::Emit {
                customer,
                address,
                missing,
                enriched_at,
            });
        }
        if !last_chance {
            let address_id = customer.map(|c| c.address_id().to_owned());
            return Some(Decision::Wait {
                deadline,
                address_id,
            });
        }
        if !read_through && !self.exclusive {
            return None;
        }
        let enriched_at = deadline;
        Some(Decision::Emit {
            customer,
            address,
            missing,
            enriched_at,
        })
    }

    /// The customer version valid at the sale's event time and the version
    /// of the address it names, valid at the same time.
    async fn resolve(
        &mut self,
        sale: &Sale,
        w: Timestamp,
        fresh: bool,
    ) -> Result<(Option<Arc<CustomerView>>, Option<Arc<AddressView>>), StoreError> {
        let t = sale.event_time;
        // Exclusive: the store holds nothing this core has not seen, so a
        // read of the newest versions stays complete for all times. Shared:
        // only versions before the watermark are settled (t < w here).
        let upto = self.read_upto(w).max(t);
        let limit = self.config.versions_per_entity;
        let store = &*self.versions;
        let id = sale.customer_id.as_str();
        let customer = lookup(
            &mut self.customers,
            &mut self.store_reads,
            Lookup {
                id,
                t,
                upto,
                limit,
                fresh,
            },
            |at, n| store.customers_upto(id, at, n),
        )
        .await?;
        let Some(c) = customer else {
            return Ok((None, None));
        };
        let id = c.address_id();
        let address = lookup(
            &mut self.addresses,
            &mut self.store_reads,
            Lookup {
                id,
                t,
                upto,
                limit,
                fresh,
            },
            |at, n| store.addresses_upto(id, at, n),
        )
        .await?;
        Ok((Some(c), address))
    }

    fn hold_waiting(
        &mut self,
        key: SaleKey,
        sale: PendingSale,
        deadline: Timestamp,
        address_id: Option<String>,
    ) {
        push_unique(
            self.waiting_by_customer
                .entry(sale.sale.customer_id.clone())
                .or_default(),
            &key,
        );
        if let Some(a) = &address_id {
            push_unique(self.waiting_by_address.entry(a.clone()).or_default(), &key);
        }
        self.deadlines.insert((deadline, key.clone()));
        self.waiting.insert(
            key,
            Waiting {
                sale,
                deadline,
                address_id,
            },
        );
    }

    fn forget_waiting(&mut self, key: &SaleKey, w: &Waiting) {
        self.deadlines.remove(&(w.deadline, key.clone()));
        self.unindex(key, w);
    }

    fn unindex(&mut self, key: &SaleKey, w: &Waiting) {
        remove_key(&mut self.waiting_by_customer, &w.sale.sale.customer_id, key);
        if let Some(a) = &w.address_id {
            remove_key(&mut self.waiting_by_address, a, key);
        }
    }
}

fn resolved<'a>(c: &'a Option<Arc<CustomerView>>, a: &'a Option<Arc<AddressView>>) -> Resolved<'a> {
    Resolved {
        customer: c.as_deref(),
        address: a.as_deref(),
    }
}
