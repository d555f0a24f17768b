//! The event generator: an iterator of records in publication order.
//!
//! Time model: sale `i` has the base event time `start + i × step` (step =
//! 1000 / rate ms, or `nominal_step` when rate is 0). A share of sales is
//! pulled back by up to `max_out_of_order`, so for any two sales the later
//! published is never more than that bound earlier in event time. Entity
//! versions are stamped with the base time at which they happen.
//!
//! Publication: the initial customers (and their addresses) first, then per
//! sale: late versions now due, sign-ups scheduled for this sale, a random
//! change, the sale. A version is "late" with probability
//! `late_version_share`: it is held back and published once the base time
//! passes `updated_at + delay` (delay ≤ `max_version_delay`), so sales that
//! need it can be published before it. Everything still held is published
//! after the last sale.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use flowline_model::{Money, Sale, StreamKind, Timestamp};
use serde::Serialize;

use crate::bad::{BadKind, make_bad};
use crate::catalog::{Catalog, item_id, promo_id};
use crate::config::GenConfig;
use crate::draw::Draw;
use crate::error::DatagenError;
use crate::people::{CustomerState, address_version, customer_id, customer_version};

const SALES_STREAM: u64 = 5;
const CHANGES_STREAM: u64 = 6;
const BAD_STREAM: u64 = 7;

/// Quantity and its weight in percent.
const QUANTITIES: &[(u32, u32)] = &[
    (1, 60),
    (2, 22),
    (3, 9),
    (4, 4),
    (5, 2),
    (6, 1),
    (8, 1),
    (10, 1),
];

/// One record to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedRecord {
    pub stream: StreamKind,
    /// The entity id (DESIGN.md section 2).
    pub partition_key: String,
    /// The JSON payload.
    pub data: Vec<u8>,
    /// `Some` for a deliberately bad record.
    pub bad: Option<BadKind>,
}

/// A version held back to be published late.
struct Held {
    release_at: i64,
    seq: u64,
    record: GeneratedRecord,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.release_at, self.seq) == (other.release_at, other.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.release_at, self.seq).cmp(&(other.release_at, other.seq))
    }
}

/// The generator. Create with [`Generator::new`], iterate for records.
pub struct Generator {
    cfg: GenConfig,
    catalog: Catalog,
    sales_rng: Draw,
    change_rng: Draw,
    bad_rng: Draw,
    /// Probability of adding a bad record next to each good one, so that
    /// bad / all = `bad_record_ratio`.
    bad_p: f64,
    customers: Vec<CustomerState>,
    /// Customers 0..active exist (have been introduced).
    active: u32,
    initial: u32,
    next_address_no: u32,
    next_sale: u64,
    held: BinaryHeap<Reverse<Held>>,
    held_seq: u64,
    out: VecDeque<GeneratedRecord>,
    started: bool,
    /// Reused serialisation buffer.
    buf: Vec<u8>,
}

impl Generator {
    pub fn new(cfg: GenConfig) -> Result<Generator, DatagenError> {
        let problems = cfg.validate();
        if !problems.is_empty() {
            return Err(DatagenError::Config(problems));
        }
        let catalog = Catalog::generate(&cfg);
        let initial = if cfg.sales == 0 {
            cfg.customers
        } else {
            ((f64::from(cfg.customers) * cfg.initial_customer_share).round() as u32)
                .clamp(1, cfg.customers)
        };
        let r = cfg.bad_record_ratio;
        Ok(Generator {
            sales_rng: Draw::new(cfg.seed, SALES_STREAM),
            change_rng: Draw::new(cfg.seed, CHANGES_STREAM),
            bad_rng: Draw::new(cfg.seed, BAD_STREAM),
            bad_p: if r > 0.0 { r / (1.0 - r) } else { 0.0 },
            customers: Vec::with_capacity(cfg.customers as usize),
            active: 0,
            initial,
            next_address_no: cfg.customers,
            next_sale: 0,
            held: BinaryHeap::new(),
            held_seq: 0,
            out: VecDeque::new(),
            started: false,
            buf: Vec::with_capacity(256),
            catalog,
            cfg,
        })
    }

    pub fn config(&self) -> &GenConfig {
        &self.cfg
    }

    /// The reference data of this data set (same seed).
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn base_time(&self, sale: u64) -> i64 {
        self.cfg.start_time.millis() + (sale as f64 * self.cfg.step_ms()) as i64
    }

    /// Fills `out` with the next batch of records; false when done.
    fn step(&mut self) -> bool {
        if !self.started {
            self.started = true;
            let t = self.cfg.start_time.millis();
            for _ in 0..self.initial {
                self.introduce(t, false);
            }
            return true;
        }
        if self.next_sale >= self.cfg.sales {
            // Publish whatever is still held, in release order.
            while let Some(Reverse(h)) = self.held.pop() {
                self.emit(h.record);
            }
            return !self.out.is_empty();
        }
        let i = self.next_sale;
        self.next_sale += 1;
        let base = self.base_time(i);
        while self
            .held
            .peek()
            .is_some_and(|Reverse(h)| h.release_at <= base)
        {
            let Reverse(h) = self.held.pop().expect("peeked");
            self.emit(h.record);
        }
        // Sign-ups spread evenly over the sales.
        let later = u64::from(self.cfg.customers - self.initial);
        while self.active < self.cfg.customers
            && u128::from(self.active - self.initial) * u128::from(self.cfg.sales)
                / u128::from(later.max(1))
                <= u128::from(i)
        {
            self.introduce(base, true);
        }
        if self.change_rng.chance(self.cfg.change_rate) {
            self.change(base);
        }
        let record = self.sale(i, base);
        self.emit(record);
        true
    }

    /// A new customer with its first address.
    fn introduce(&mut self, t: i64, may_be_late: bool) {
        let index = self.active;
        self.active += 1;
        let state = CustomerState {
            version: 0,
            address_no: index,
            address_version: 0,
            customer_updated: t,
            address_updated: t,
        };
        self.customers.push(state);
        self.publish_address(index as usize, t, may_be_late);
        self.publish_customer(index as usize, t, may_be_late);
    }

    /// A customer moves, changes details, or has the address corrected.
    fn change(&mut self, base: i64) {
        let index = self.change_rng.index(self.active as usize);
        let kind = self.change_rng.below(10);
        let mut s = self.customers[index];
        let (customer, address) = if kind < 4 {
            // Move: a new address, then a customer version naming it.
            s.address_no = self.next_address_no;
            self.next_address_no += 1;
            s.address_version = 0;
            s.address_updated = base;
            s.customer_updated = base.max(s.customer_updated + 1);
            s.version += 1;
            (true, true)
        } else if kind < 8 {
            s.customer_updated = base.max(s.customer_updated + 1);
            s.version += 1;
            (true, false)
        } else {
            s.address_updated = base.max(s.address_updated + 1);
            s.address_version += 1;
            (false, true)
        };
        self.customers[index] = s;
        if address {
            self.publish_address(index, s.address_updated, true);
        }
        if customer {
            self.publish_customer(index, s.customer_updated, true);
        }
    }

    fn publish_customer(&mut self, index: usize, t: i64, may_be_late: bool) {
        let s = self.customers[index];
        let c = customer_version(self.cfg.seed, index as u64, &s, ts(t));
        let record = self.record(StreamKind::Customers, c.customer_id.clone(), &c);
        self.publish_version(record, t, may_be_late);
    }

    fn publish_address(&mut self, index: usize, t: i64, may_be_late: bool) {
        let s = self.customers[index];
        let a = address_version(
            self.cfg.seed,
            u64::from(s.address_no),
            s.address_version,
            ts(t),
        );
        let record = self.record(StreamKind::Addresses, a.address_id.clone(), &a);
        self.publish_version(record, t, may_be_late);
    }

    fn publish_version(&mut self, record: GeneratedRecord, t: i64, may_be_late: bool) {
        let max_delay = self.cfg.max_version_delay.as_millis() as i64;
        if may_be_late && max_delay > 0 && self.change_rng.chance(self.cfg.late_version_share) {
            let release_at = t + self.change_rng.between(1, max_delay);
            self.held_seq += 1;
            self.held.push(Reverse(Held {
                release_at,
                seq: self.held_seq,
                record,
            }));
        } else {
            self.emit(record);
        }
    }

    fn sale(&mut self, i: u64, base: i64) -> GeneratedRecord {
        let cfg = &self.cfg;
        let d = &mut self.sales_rng;
        let mut event_time = base;
        let max_ooo = cfg.max_out_of_order.as_millis() as i64;
        if i > 0 && max_ooo > 0 && d.chance(cfg.out_of_order_share) {
            event_time = (base - d.between(1, max_ooo)).max(cfg.start_time.millis());
        }
        let customer = if d.chance(cfg.orphan_sale_share) {
            // Never published: the join must time out as partial.
            customer_id(u64::from(cfg.customers) + d.below(1_000_000))
        } else {
            customer_id(d.below(u64::from(self.active)))
        };
        let catalog = &self.catalog;
        let (mut item, mut promo) = (catalog.popular_item(d), None);
        let promos = &catalog.promos;
        let p = d.unit();
        let t = ts(event_time);
        if p < cfg.promo_share && !promos.is_empty() {
            // An active promo: pick promos until one is active now.
            for _ in 0..8 {
                let candidate = &promos[d.index(promos.len())];
                if candidate.starts_at <= t && t < candidate.ends_at {
                    item = catalog
                        .item_index(&candidate.item_id)
                        .expect("promo item exists");
                    promo = Some(candidate.promo_id.clone());
                    break;
                }
            }
        } else if p < cfg.promo_share + cfg.stale_promo_share && !promos.is_empty() {
            // A promo that must not apply: unknown, for another item, or
            // not active at the sale time.
            let candidate = &promos[d.index(promos.len())];
            if d.chance(1.0 / 3.0) {
                promo = Some(promo_id(promos.len() as u64 + 1 + d.below(1000)));
            } else if candidate.starts_at <= t && t < candidate.ends_at {
                let own = catalog
                    .item_index(&candidate.item_id)
                    .expect("promo item exists");
                if item == own {
                    item = (item + 1) % catalog.items.len();
                }
                promo = Some(candidate.promo_id.clone());
            } else {
                item = catalog
                    .item_index(&candidate.item_id)
                    .expect("promo item exists");
                promo = Some(candidate.promo_id.clone());
            }
        }
        let (item_id_s, list_price) = if d.chance(cfg.unknown_item_share) {
            let n = catalog.items.len() as u64 + 1 + d.below(1000);
            (
                item_id(n),
                Money::from_cents(d.between(100, 10_000)).expect("small"),
            )
        } else {
            let it = &catalog.items[item];
            (it.item_id.clone(), it.list_price)
        };
        let unit_price = if d.chance(0.15) {
            // Price drift of up to ±10 % around the list price.
            let f = 0.9 + d.unit() * 0.2;
            Money::from_cents((list_price.cents() as f64 * f).round() as i64).expect("in range")
        } else {
            list_price
        };
        let sale = Sale {
            sale_id: format!("S{:010}", i + 1),
            customer_id: customer,
            item_id: item_id_s,
            promo_id: promo,
            quantity: *d.weighted(QUANTITIES),
            unit_price,
            event_time: t,
        };
        let key = sale.customer_id.clone();
        self.record(StreamKind::Sales, key, &sale)
    }

    fn record<T: Serialize>(
        &mut self,
        stream: StreamKind,
        partition_key: String,
        value: &T,
    ) -> GeneratedRecord {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, value).expect("events always serialise");
        GeneratedRecord {
            stream,
            partition_key,
            data: self.buf.clone(),
            bad: None,
        }
    }

    /// Queues a good record, preceded now and then by a bad one.
    fn emit(&mut self, record: GeneratedRecord) {
        if self.bad_p > 0.0 && self.bad_rng.chance(self.bad_p) {
            let (kind, key, data) = make_bad(
                &mut self.bad_rng,
                &self.cfg,
                record.stream,
                &record.data,
                &record.partition_key,
            );
            self.out.push_back(GeneratedRecord {
                stream: record.stream,
                partition_key: key,
                data,
                bad: Some(kind),
            });
        }
        self.out.push_back(record);
    }
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms).expect("config validation keeps the run in range")
}

impl Iterator for Generator {
    type Item = GeneratedRecord;

    fn next(&mut self) -> Option<GeneratedRecord> {
        loop {
            if let Some(r) = self.out.pop_front() {
                return Some(r);
            }
            if !self.step() {
                return None;
            }
        }
    }
}
