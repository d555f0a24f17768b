//! The independent recomputation: DESIGN.md section 4 ("Join rules, exactly" and
//! "Windows") written out directly over the raw JSON, without the services' libraries
//! (`flowline-join`, `flowline-window`). Amounts are integer cents and hundredths of a
//! percent throughout.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{Context as _, bail};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::configs::{JOIN_TIMEOUT_MS, WINDOW_MS};
use crate::raw::{RawData, Reference};
use crate::views::{
    MetricView, OrderView, coord, div_round, field, hundredths, hundredths_text, int, opt_string,
    string, time, time_text,
};

fn email_hash(email: &str) -> String {
    hex::encode(Sha256::digest(email.trim().to_lowercase().as_bytes()))
}

/// Versions of one entity, oldest first (stable: equal times keep publication order).
type Versions = Vec<(i64, Value)>;

/// The version valid at `t`: the latest with `updated_at <= t`.
fn valid_at(versions: Option<&Versions>, t: i64) -> Option<&Value> {
    versions?
        .iter()
        .rev()
        .find(|(at, _)| *at <= t)
        .map(|(_, v)| v)
}

fn versions_by(records: Vec<Value>, id: &str) -> anyhow::Result<HashMap<String, Versions>> {
    let mut out: HashMap<String, Versions> = HashMap::new();
    for v in records {
        let key = string(&v, id)?;
        let at = time(&v, "updated_at")?;
        out.entry(key).or_default().push((at, v));
    }
    for versions in out.values_mut() {
        versions.sort_by_key(|(at, _)| *at);
    }
    Ok(out)
}

/// What the pipeline must produce from `raw` and `reference`.
pub struct Expected {
    pub orders: BTreeMap<String, OrderView>,
    pub metrics: BTreeMap<String, MetricView>,
}

impl Expected {
    pub fn compute(raw: &RawData, reference: &Reference) -> anyhow::Result<Expected> {
        let customers = versions_by(raw.good("customers")?, "customer_id")?;
        let addresses = versions_by(raw.good("addresses")?, "address_id")?;
        let mut orders = BTreeMap::new();
        for sale in raw.good("sales")? {
            let order = join(&sale, &customers, &addresses, reference)
                .with_context(|| format!("joining {sale}"))?;
            // The producer delivers at least once: a retried put can leave the same sale
            // twice on the stream. The same sale is the same order; different content
            // under one id would be a generator bug.
            if let Some(previous) = orders.insert(order.order_id.clone(), order.clone())
                && previous != order
            {
                bail!(
                    "sale {} appears twice with different content",
                    sale["sale_id"]
                );
            }
        }
        let metrics = windows(orders.values());
        Ok(Expected { orders, metrics })
    }
}

fn join(
    sale: &Value,
    customers: &HashMap<String, Versions>,
    addresses: &HashMap<String, Versions>,
    reference: &Reference,
) -> anyhow::Result<OrderView> {
    let t = time(sale, "event_time")?;
    let customer_id = string(sale, "customer_id")?;
    let item_id = string(sale, "item_id")?;
    let customer = valid_at(customers.get(&customer_id), t);
    let address_id = customer.map(|c| string(c, "address_id")).transpose()?;
    let address = address_id
        .as_ref()
        .and_then(|a| valid_at(addresses.get(a), t));
    let item = reference.items.get(&item_id);

    let mut promo_missing = false;
    let mut promo = None;
    if let Some(id) = opt_string(sale, "promo_id")? {
        match reference.promos.get(&id) {
            None => promo_missing = true,
            Some(p) => {
                let active = p.item_id == item_id
                    && time_text(&p.starts_at)? <= t
                    && t < time_text(&p.ends_at)?;
                if active {
                    promo = Some((p.promo_id.clone(), hundredths_text(&p.discount_pct)?));
                }
            }
        }
    }
    let mut missing = Vec::new();
    if customer.is_none() {
        missing.push("customer".to_string());
    } else if address.is_none() {
        missing.push("address".to_string());
    }
    if item.is_none() {
        missing.push("item".to_string());
    }
    if promo_missing {
        missing.push("promo".to_string());
    }

    let quantity = int(sale, "quantity")?;
    let unit_price = hundredths(sale, "unit_price")?;
    let discount_pct = promo.as_ref().map_or(0, |(_, pct)| *pct);
    let gross = quantity * unit_price;
    let discount = div_round(gross * discount_pct, 10_000);
    let addr = |f: &str| address.map(|a| string(a, f)).transpose();
    let location = match address {
        Some(a) => Some((
            coord(field(a, "lat")?.as_f64().context("lat")?),
            coord(field(a, "lon")?.as_f64().context("lon")?),
        )),
        None => None,
    };
    Ok(OrderView {
        order_id: string(sale, "sale_id")?,
        event_time: t,
        customer_id,
        customer_segment: customer.map(|c| string(c, "segment")).transpose()?,
        email_sha256: customer
            .map(|c| string(c, "email").map(|e| email_hash(&e)))
            .transpose()?,
        address_id,
        city: addr("city")?,
        state: addr("state")?,
        postcode: addr("postcode")?,
        country: addr("country")?,
        location,
        item_name: item.map(|i| i.name.clone()),
        category: item.map(|i| i.category.clone()),
        brand: item.map(|i| i.brand.clone()),
        item_id,
        promo_id: promo.map(|(id, _)| id),
        discount_pct,
        quantity,
        unit_price,
        gross_amount: gross,
        discount_amount: discount,
        net_amount: gross - discount,
        join_status: if missing.is_empty() {
            "complete"
        } else {
            "partial"
        }
        .to_string(),
        enriched_at: if missing.is_empty() {
            t
        } else {
            t + JOIN_TIMEOUT_MS
        },
        missing,
    })
}

/// Tumbling windows of [`WINDOW_MS`] per dimension; no value counts under `unknown`.
fn windows<'a>(orders: impl Iterator<Item = &'a OrderView>) -> BTreeMap<String, MetricView> {
    #[derive(Default)]
    struct Acc {
        orders: i64,
        units: i64,
        gross: i64,
        net: i64,
        customers: BTreeSet<String>,
    }
    let mut accs: BTreeMap<(i64, &'static str, String), Acc> = BTreeMap::new();
    for o in orders {
        let start = o.event_time.div_euclid(WINDOW_MS) * WINDOW_MS;
        let unknown = || "unknown".to_string();
        for (dimension, key) in [
            ("all", "all".to_string()),
            ("category", o.category.clone().unwrap_or_else(unknown)),
            ("state", o.state.clone().unwrap_or_else(unknown)),
        ] {
            let acc = accs.entry((start, dimension, key)).or_default();
            acc.orders += 1;
            acc.units += o.quantity;
            acc.gross += o.gross_amount;
            acc.net += o.net_amount;
            acc.customers.insert(o.customer_id.clone());
        }
    }
    accs.into_iter()
        .map(|((start, dimension, key), a)| {
            let end = start + WINDOW_MS;
            let ts = |ms| flowline_model::Timestamp::from_millis(ms).expect("window time");
            let dim = flowline_model::Dimension::parse(dimension).expect("known dimension");
            // The id scheme is the model's (a hash of window and key); the values are ours.
            let id = flowline_model::metric_id(ts(start), ts(end), dim, &key);
            let view = MetricView {
                id: id.clone(),
                window_start: start,
                window_end: end,
                dimension: dimension.to_string(),
                key,
                orders: a.orders,
                units: a.units,
                gross_amount: a.gross,
                net_amount: a.net,
                avg_order_value: div_round(a.net, a.orders),
                distinct_customers: a.customers.len() as i64,
            };
            (id, view)
        })
        .collect()
}
