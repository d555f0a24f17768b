//! One window's accumulation from one source: the single accumulator of the
//! crate. [`crate::WindowOperator`] keeps one per window; a service that
//! splits its input (one per shard) keeps one per shard and window and
//! combines them with [`merge`], which is exact: sums add up and customers
//! are unioned by their ids, not counted twice.

use flowline_model::{Dimension, MAX_CENTS, Money, Timestamp, WindowMetric, average, metric_id};

use crate::error::{Error, Result};
use crate::hashing::IdSet;
use crate::interner::Interner;
use crate::order::{ALL_KEY, OrderRef};
use crate::outcome::{Outcome, Rejection};
use crate::window::ts;

/// Running totals of one (window, dimension, key).
#[derive(Clone, Debug, Default)]
pub(crate) struct Acc {
    pub orders: u64,
    pub units: u64,
    pub gross: i64,
    pub net: i64,
    /// Ids in the partial's customer interner: exact distinct count.
    pub customers: IdSet,
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

pub(crate) enum Added {
    New(Touched),
    Duplicate,
    Overflow,
}

/// What one source counted in one window: the order ids seen (so a
/// redelivery counts once), and per dimension and key the totals and the
/// customers. No allocation per order: ids are interned into per-partial
/// arenas and customers are `u32` ids, resolved to strings only when
/// partials are merged or saved.
#[derive(Clone, Debug)]
pub struct Partial {
    pub(crate) start: i64,
    pub(crate) end: i64,
    /// Ids of every order counted, to drop redeliveries.
    pub(crate) orders: Interner,
    pub(crate) customers: Interner,
    /// Window totals bound every key's totals: checked before adding so no
    /// amount in the partial can leave the money range.
    pub(crate) gross_total: i64,
    pub(crate) net_total: i64,
    pub(crate) dims: Vec<DimState>,
}

impl Partial {
    pub(crate) fn with_capacity(
        start: i64,
        end: i64,
        dimensions: &[Dimension],
        like: Option<&Partial>,
    ) -> Self {
        let (orders, customers) = match like {
            Some(p) => (
                Interner::with_capacity(p.orders.len(), p.orders.avg_len()),
                Interner::with_capacity(p.customers.len(), p.customers.avg_len()),
            ),
            None => (Interner::default(), Interner::default()),
        };
        Partial {
            start,
            end,
            orders,
            customers,
            gross_total: 0,
            net_total: 0,
            dims: dimensions.iter().map(|&d| DimState::new(d)).collect(),
        }
    }

    pub fn window_start(&self) -> Timestamp {
        ts(self.start)
    }

    pub fn window_end(&self) -> Timestamp {
        ts(self.end)
    }

    /// The window start in ms since the epoch (a natural storage key).
    pub fn start_ms(&self) -> i64 {
        self.start
    }

    /// Distinct orders counted.
    pub fn orders(&self) -> usize {
        self.orders.len()
    }

    /// Counts an order of this window unless its id was counted before.
    /// The caller has checked lateness ([`crate::WindowSpec::late`]) and
    /// that the order belongs to this window.
    pub fn add(&mut self, order: &OrderRef<'_>) -> Outcome {
        match self.add_touched(order) {
            Added::New(_) => Outcome::Counted,
            Added::Duplicate => Outcome::Duplicate,
            Added::Overflow => Outcome::Rejected(Rejection::AmountOverflow {
                window_start: self.window_start(),
            }),
        }
    }

    /// [`add`](Self::add), telling which key of each dimension it updated.
    pub(crate) fn add_touched(&mut self, o: &OrderRef<'_>) -> Added {
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

    /// Adds `other`'s totals and customers (not its order ids: sources are
    /// expected to be disjoint, as shards of a stream partitioned by
    /// `order_id` are). Customers are matched by their id strings.
    fn absorb(&mut self, other: &Partial) {
        let remap: Vec<u32> = (0..other.customers.len() as u32)
            .map(|c| self.customers.intern(other.customers.resolve(c)).0)
            .collect();
        // Saturating: a sum beyond the money range fails when the metric is
        // built, whatever the number of sources.
        self.gross_total = self.gross_total.saturating_add(other.gross_total);
        self.net_total = self.net_total.saturating_add(other.net_total);
        for (dim, theirs) in self.dims.iter_mut().zip(&other.dims) {
            for (id, acc) in theirs.accs.iter().enumerate() {
                let key = dim.key_id(theirs.keys.resolve(id as u32));
                let mine = &mut dim.accs[key as usize];
                mine.orders += acc.orders;
                mine.units += acc.units;
                mine.gross = mine.gross.saturating_add(acc.gross);
                mine.net = mine.net.saturating_add(acc.net);
                mine.customers
                    .extend(acc.customers.iter().map(|&c| remap[c as usize]));
            }
        }
    }

    /// Key ids of `dim` sorted by key: the output order.
    pub(crate) fn sorted_keys(&self, dim: usize) -> Vec<u32> {
        let d = &self.dims[dim];
        let mut order: Vec<u32> = (0..d.accs.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| d.keys.resolve(a).cmp(d.keys.resolve(b)));
        order
    }

    /// The metric of one key with `revision`. Fails only for a merge of
    /// partials whose sum leaves the money range (a single partial's totals
    /// are bounded when added).
    pub(crate) fn metric(&self, dim: usize, key: u32, revision: u32) -> Result<WindowMetric> {
        let d = &self.dims[dim];
        let acc = &d.accs[key as usize];
        let key = d.keys.resolve(key);
        let (start, end) = (ts(self.start), ts(self.end));
        let money = |cents: i64| {
            Money::from_cents(cents).ok_or(Error::AmountOverflow {
                window_start: start,
            })
        };
        let net = money(acc.net)?;
        Ok(WindowMetric {
            id: metric_id(start, end, d.dimension, key),
            window_start: start,
            window_end: end,
            dimension: d.dimension,
            key: key.to_owned(),
            orders: acc.orders,
            units: acc.units,
            gross_amount: money(acc.gross)?,
            net_amount: net,
            avg_order_value: average(net, acc.orders).unwrap_or(Money::ZERO),
            distinct_customers: acc.customers.len() as u64,
            revision,
        })
    }

    /// Compressed bytes to store; read back with
    /// [`crate::WindowSpec::decode_partial`].
    pub fn encode(&self) -> Vec<u8> {
        crate::snapshot::PartialSnapshot::of(self).encode()
    }

    /// Approximate heap bytes, for state size gauges.
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

/// The metrics of one window over the partials of all its sources, every
/// key with `revision`, in output order (dimension, then key). Exact: sums
/// add up and `distinct_customers` is the size of the union of the sources'
/// customers. An order id counted by two sources is counted twice (sources
/// are disjoint by construction, see [`Partial`]). Errors when the partials
/// belong to different windows or settings, or a total leaves the money range.
pub fn merge<'a>(
    partials: impl IntoIterator<Item = &'a Partial>,
    revision: u32,
) -> Result<Vec<WindowMetric>> {
    let mut partials = partials.into_iter();
    let Some(first) = partials.next() else {
        return Ok(Vec::new());
    };
    let dimensions: Vec<Dimension> = first.dims.iter().map(|d| d.dimension).collect();
    let mut merged = Partial::with_capacity(first.start, first.end, &dimensions, None);
    merged.absorb(first);
    for p in partials {
        let same_dims = p
            .dims
            .iter()
            .map(|d| d.dimension)
            .eq(dimensions.iter().copied());
        if (p.start, p.end) != (first.start, first.end) || !same_dims {
            return Err(Error::IncompatibleState(format!(
                "merging the partial of window {} into window {}",
                ts(p.start),
                ts(first.start)
            )));
        }
        merged.absorb(p);
    }
    let mut out = Vec::new();
    for dim in 0..merged.dims.len() {
        for key in merged.sorted_keys(dim) {
            out.push(merged.metric(dim, key, revision)?);
        }
    }
    Ok(out)
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
}
