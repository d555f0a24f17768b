//! One open window: dedup set, customers and the per-key accumulators.

use flowline_model::{Dimension, MAX_CENTS, Money, Timestamp, WindowMetric, average, metric_id};

use crate::hashing::IdSet;
use crate::interner::Interner;
use crate::order::{ALL_KEY, OrderRef};

/// Running totals of one (window, dimension, key).
#[derive(Clone, Debug, Default)]
pub(crate) struct Acc {
    pub orders: u64,
    pub units: u64,
    pub gross: i64,
    pub net: i64,
    /// Interned customer ids of the window: exact distinct count.
    pub customers: IdSet,
    /// Last revision emitted; 0 before the first emission.
    pub revision: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct DimState {
    pub dimension: Dimension,
    pub keys: Interner,
    /// Indexed by key id.
    pub accs: Vec<Acc>,
}

/// Up to one touched key per dimension (there are three dimensions).
pub(crate) type Touched = [u32; 3];

#[derive(Clone, Debug)]
pub(crate) struct Window {
    pub start: i64,
    pub end: i64,
    /// Ids of every order counted, to drop redeliveries.
    pub orders: Interner,
    pub customers: Interner,
    /// Window totals bound every key's totals: checked before adding so no
    /// emitted amount can leave the money range.
    pub gross_total: i64,
    pub net_total: i64,
    pub dims: Vec<DimState>,
    /// The watermark passed the end and every key was emitted.
    pub emitted: bool,
    /// Checkpoint epoch of the last change.
    pub changed_epoch: u64,
}

pub(crate) enum Added {
    New(Touched),
    Duplicate,
    Overflow,
}

impl Window {
    pub fn new(start: i64, end: i64, dimensions: &[Dimension]) -> Self {
        Self::with_capacity(start, end, dimensions, None)
    }

    /// A window sized like `like` (the previous one): growing the id tables
    /// by rehashing is a good part of the cost of a busy window otherwise.
    pub fn with_capacity(
        start: i64,
        end: i64,
        dimensions: &[Dimension],
        like: Option<&Window>,
    ) -> Self {
        let (orders, customers) = match like {
            Some(w) => (
                Interner::with_capacity(w.orders.len(), w.orders.avg_len()),
                Interner::with_capacity(w.customers.len(), w.customers.avg_len()),
            ),
            None => (Interner::default(), Interner::default()),
        };
        Window {
            start,
            end,
            orders,
            customers,
            gross_total: 0,
            net_total: 0,
            dims: dimensions.iter().map(|&d| DimState::new(d)).collect(),
            emitted: false,
            changed_epoch: 0,
        }
    }

    /// Counts an order unless its id was counted before.
    pub fn add(&mut self, o: &OrderRef<'_>) -> Added {
        let gross_total = self.gross_total + o.gross_amount.cents();
        let net_total = self.net_total + o.net_amount.cents();
        if gross_total.abs() > MAX_CENTS || net_total.abs() > MAX_CENTS {
            return match self.orders.get(o.order_id) {
                Some(_) => Added::Duplicate,
                None => Added::Overflow,
            };
        }
        if !self.orders.intern(o.order_id).1 {
            return Added::Duplicate;
        }
        self.gross_total = gross_total;
        self.net_total = net_total;
        let (customer, _) = self.customers.intern(o.customer_id);
        let mut touched = [0; 3];
        for (slot, dim) in touched.iter_mut().zip(self.dims.iter_mut()) {
            let key = dim.key_id(o.key(dim.dimension));
            let acc = &mut dim.accs[key as usize];
            acc.orders += 1;
            acc.units += u64::from(o.quantity);
            acc.gross += o.gross_amount.cents();
            acc.net += o.net_amount.cents();
            acc.customers.insert(customer);
            *slot = key;
        }
        Added::New(touched)
    }

    /// First emission: every key, sorted by key within each dimension.
    pub fn emit_all(&mut self, out: &mut Vec<WindowMetric>) {
        let (start, end) = (ts(self.start), ts(self.end));
        for dim in &mut self.dims {
            let mut order: Vec<u32> = (0..dim.accs.len() as u32).collect();
            order.sort_unstable_by(|&a, &b| dim.keys.resolve(a).cmp(dim.keys.resolve(b)));
            for id in order {
                out.push(dim.emit(start, end, id));
            }
        }
        self.emitted = true;
    }

    /// Re-emission after a late update: the keys the order touched, by dimension.
    pub fn emit_touched(&mut self, touched: &Touched, out: &mut Vec<WindowMetric>) {
        let (start, end) = (ts(self.start), ts(self.end));
        for (dim, &id) in self.dims.iter_mut().zip(touched) {
            out.push(dim.emit(start, end, id));
        }
        self.emitted = true;
    }

    /// Current values of every key (revision as last emitted, 0 if never).
    pub fn current(&self, out: &mut Vec<WindowMetric>) {
        let (start, end) = (ts(self.start), ts(self.end));
        for dim in &self.dims {
            let mut order: Vec<u32> = (0..dim.accs.len() as u32).collect();
            order.sort_unstable_by(|&a, &b| dim.keys.resolve(a).cmp(dim.keys.resolve(b)));
            for id in order {
                out.push(dim.metric(start, end, id));
            }
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.orders.heap_bytes()
            + self.customers.heap_bytes()
            + self
                .dims
                .iter()
                .map(|d| {
                    d.keys.heap_bytes()
                        + d.accs
                            .iter()
                            .map(|a| std::mem::size_of::<Acc>() + a.customers.capacity() * 8)
                            .sum::<usize>()
                })
                .sum::<usize>()
    }
}

impl DimState {
    pub fn new(dimension: Dimension) -> Self {
        let mut d = DimState {
            dimension,
            keys: Interner::default(),
            accs: Vec::new(),
        };
        if dimension == Dimension::All {
            // One key only: keep it at id 0 so the hot path need not hash it.
            d.keys.intern(ALL_KEY);
            d.accs.push(Acc::default());
        }
        d
    }

    fn key_id(&mut self, key: &str) -> u32 {
        if self.dimension == Dimension::All {
            return 0;
        }
        let (id, new) = self.keys.intern(key);
        if new {
            self.accs.push(Acc::default());
        }
        id
    }

    fn emit(&mut self, start: Timestamp, end: Timestamp, id: u32) -> WindowMetric {
        let acc = &mut self.accs[id as usize];
        acc.revision += 1;
        self.metric(start, end, id)
    }

    fn metric(&self, start: Timestamp, end: Timestamp, id: u32) -> WindowMetric {
        let acc = &self.accs[id as usize];
        let key = self.keys.resolve(id);
        // Window totals are kept within MAX_CENTS, and so every key's.
        let gross = Money::from_cents(acc.gross).expect("bounded by the window total");
        let net = Money::from_cents(acc.net).expect("bounded by the window total");
        WindowMetric {
            id: metric_id(start, end, self.dimension, key),
            window_start: start,
            window_end: end,
            dimension: self.dimension,
            key: key.to_owned(),
            orders: acc.orders,
            units: acc.units,
            gross_amount: gross,
            net_amount: net,
            avg_order_value: average(net, acc.orders).unwrap_or(Money::ZERO),
            distinct_customers: acc.customers.len() as u64,
            revision: acc.revision,
        }
    }
}

/// Window bounds are epoch-aligned multiples of the length; clamp the
/// (theoretical) ones past year 9999.
pub(crate) fn ts(ms: i64) -> Timestamp {
    Timestamp::UNIX_EPOCH.saturating_add_millis(ms)
}
