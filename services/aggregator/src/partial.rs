//! One shard's contribution to one window, and the merge of every shard's
//! contribution into the window's metrics.
//!
//! Why not `flowline_window::WindowOperator` per shard: its snapshots are
//! opaque and count distinct customers through per-window interned ids, so
//! two shards' windows cannot be combined into one exact result. Here each
//! key keeps its customer ids as strings, so the union across shards is
//! exact. Key assignment (`unknown`, `all`), money rules and the metric id are
//! the window crate's and the model's.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use flowline_model::{Dimension, EnrichedOrder, Money, Timestamp, WindowMetric, metric_id};
use flowline_window::OrderRef;
use serde::{Deserialize, Serialize};

/// Totals of one (dimension, key) within one shard's part of a window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyTotals {
    pub orders: u64,
    pub units: u64,
    pub gross_cents: i64,
    pub net_cents: i64,
    pub customers: BTreeSet<String>,
}

/// What one shard has counted in one window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partial {
    /// Order ids counted: a redelivered order is counted once. `orders-enriched`
    /// is partitioned by `order_id`, so copies of an order meet in one shard.
    pub order_ids: BTreeSet<String>,
    pub keys: BTreeMap<Dimension, BTreeMap<String, KeyTotals>>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    Counted,
    Duplicate,
    /// The totals would leave the money range.
    Overflow,
}

impl Partial {
    pub fn add(&mut self, order: &EnrichedOrder, dimensions: &[Dimension]) -> Added {
        if self.order_ids.contains(&order.order_id) {
            return Added::Duplicate;
        }
        let r = OrderRef::from(order);
        // Check every key first so an order is counted everywhere or nowhere.
        for d in dimensions {
            let t = self.keys.get(d).and_then(|k| k.get(r.key(*d)));
            let (g, n) = t.map_or((0, 0), |t| (t.gross_cents, t.net_cents));
            let fits = |total: i64, add: Money| {
                total
                    .checked_add(add.cents())
                    .and_then(Money::from_cents)
                    .is_some()
            };
            if !fits(g, r.gross_amount) || !fits(n, r.net_amount) {
                return Added::Overflow;
            }
        }
        for d in dimensions {
            let t = self
                .keys
                .entry(*d)
                .or_default()
                .entry(r.key(*d).to_owned())
                .or_default();
            t.orders += 1;
            t.units += u64::from(r.quantity);
            t.gross_cents += r.gross_amount.cents();
            t.net_cents += r.net_amount.cents();
            if !t.customers.contains(r.customer_id) {
                t.customers.insert(r.customer_id.to_owned());
            }
        }
        self.order_ids.insert(order.order_id.clone());
        Added::Counted
    }

    /// Compressed JSON, the form stored in DynamoDB.
    pub fn encode(&self) -> anyhow::Result<Vec<u8>> {
        use std::io::Write as _;
        let json = serde_json::to_vec(self)?;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&json)?;
        Ok(z.finish()?)
    }

    pub fn decode(bytes: &[u8]) -> anyhow::Result<Self> {
        let z = flate2::read::ZlibDecoder::new(bytes);
        serde_json::from_reader(z).context("decoding a window partial")
    }
}

/// The window's metrics over every shard's partial, each key with `revision`,
/// in output order (dimension, key). Sums are exact; `distinct_customers` is
/// the size of the union of the shards' customer sets.
pub fn merge(
    start: Timestamp,
    end: Timestamp,
    partials: &[Partial],
    revision: u32,
) -> anyhow::Result<Vec<WindowMetric>> {
    let mut merged: BTreeMap<Dimension, BTreeMap<&str, (KeyTotals, BTreeSet<&str>)>> =
        BTreeMap::new();
    for p in partials {
        for (d, keys) in &p.keys {
            for (k, t) in keys {
                let (m, customers) = merged.entry(*d).or_default().entry(k).or_default();
                m.orders += t.orders;
                m.units += t.units;
                m.gross_cents = m
                    .gross_cents
                    .checked_add(t.gross_cents)
                    .context("gross amount overflow")?;
                m.net_cents = m
                    .net_cents
                    .checked_add(t.net_cents)
                    .context("net amount overflow")?;
                customers.extend(t.customers.iter().map(String::as_str));
            }
        }
    }
    let mut out = Vec::new();
    for (d, keys) in merged {
        for (k, (t, customers)) in keys {
            let money =
                |c: i64| Money::from_cents(c).context("window total beyond the money range");
            let net = money(t.net_cents)?;
            out.push(WindowMetric {
                id: metric_id(start, end, d, k),
                window_start: start,
                window_end: end,
                dimension: d,
                key: k.to_owned(),
                orders: t.orders,
                units: t.units,
                gross_amount: money(t.gross_cents)?,
                net_amount: net,
                avg_order_value: flowline_model::average(net, t.orders).unwrap_or(Money::ZERO),
                distinct_customers: customers.len() as u64,
                revision,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: &str, customer: &str, state: Option<&str>, cents: i64) -> EnrichedOrder {
        let json = serde_json::json!({
            "order_id": id, "event_time": "2026-01-01T00:00:10.000Z", "customer_id": customer,
            "customer_segment": null, "email_sha256": null, "address_id": null, "city": null,
            "state": state, "postcode": null, "country": null, "location": null,
            "item_id": "i1", "item_name": null, "category": "books", "brand": null,
            "promo_id": null, "discount_pct": 0, "quantity": 2,
            "unit_price": cents as f64 / 200.0, "gross_amount": cents as f64 / 100.0,
            "discount_amount": 0, "net_amount": cents as f64 / 100.0,
            "join_status": "partial", "missing": ["customer"],
            "enriched_at": "2026-01-01T00:00:11.000Z"
        });
        flowline_model::parse::<EnrichedOrder>(json.to_string().as_bytes()).expect("valid order")
    }

    #[test]
    fn merges_shards_exactly_and_counts_duplicates_once() {
        let dims = Dimension::ALL_DIMENSIONS;
        let (mut a, mut b) = (Partial::default(), Partial::default());
        assert_eq!(
            a.add(&order("o1", "c1", Some("CA"), 1000), &dims),
            Added::Counted
        );
        assert_eq!(
            a.add(&order("o1", "c1", Some("CA"), 1000), &dims),
            Added::Duplicate
        );
        assert_eq!(a.add(&order("o2", "c2", None, 334), &dims), Added::Counted);
        assert_eq!(
            b.add(&order("o3", "c1", Some("CA"), 2), &dims),
            Added::Counted
        );
        let b = Partial::decode(&b.encode().unwrap()).unwrap();
        let start = Timestamp::from_millis(1_767_225_600_000).unwrap();
        let end = Timestamp::from_millis(1_767_225_660_000).unwrap();
        let m = merge(start, end, &[a, b], 3).unwrap();
        let get =
            |d: Dimension, k: &str| m.iter().find(|x| x.dimension == d && x.key == k).unwrap();
        let all = get(Dimension::All, "all");
        assert_eq!((all.orders, all.units, all.distinct_customers), (3, 6, 2));
        assert_eq!(all.net_amount.cents(), 1336);
        assert_eq!(all.avg_order_value.cents(), 445);
        assert_eq!(all.revision, 3);
        assert_eq!(get(Dimension::State, "CA").distinct_customers, 1);
        assert_eq!(get(Dimension::State, "unknown").orders, 1);
        assert_eq!(all.id, metric_id(start, end, Dimension::All, "all"));
    }
}
