//! What both sides are reduced to for comparison: an enriched order and a window metric
//! as plain values (integer cents, hundredths of a percent and of a degree, epoch
//! milliseconds), read strictly from JSON.

use anyhow::{Context as _, bail};
use serde_json::Value;

/// An enriched order reduced to comparable values (DESIGN.md section 3).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrderView {
    pub order_id: String,
    pub event_time: i64,
    pub customer_id: String,
    pub customer_segment: Option<String>,
    pub email_sha256: Option<String>,
    pub address_id: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postcode: Option<String>,
    pub country: Option<String>,
    /// Hundredths of a degree.
    pub location: Option<(i64, i64)>,
    pub item_id: String,
    pub item_name: Option<String>,
    pub category: Option<String>,
    pub brand: Option<String>,
    pub promo_id: Option<String>,
    /// Hundredths of a percent.
    pub discount_pct: i64,
    pub quantity: i64,
    /// Cents.
    pub unit_price: i64,
    pub gross_amount: i64,
    pub discount_amount: i64,
    pub net_amount: i64,
    pub join_status: String,
    pub missing: Vec<String>,
    pub enriched_at: i64,
}

/// The fields DESIGN.md section 3 gives an enriched order, and no others.
pub const ORDER_FIELDS: [&str; 25] = [
    "order_id",
    "event_time",
    "customer_id",
    "customer_segment",
    "email_sha256",
    "address_id",
    "city",
    "state",
    "postcode",
    "country",
    "location",
    "item_id",
    "item_name",
    "category",
    "brand",
    "promo_id",
    "discount_pct",
    "quantity",
    "unit_price",
    "gross_amount",
    "discount_amount",
    "net_amount",
    "join_status",
    "missing",
    "enriched_at",
];

/// A window result reduced to comparable values (the revision is compared separately:
/// only the final one must carry these values).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MetricView {
    pub id: String,
    pub window_start: i64,
    pub window_end: i64,
    pub dimension: String,
    pub key: String,
    pub orders: i64,
    pub units: i64,
    pub gross_amount: i64,
    pub net_amount: i64,
    pub avg_order_value: i64,
    pub distinct_customers: i64,
}

pub const METRIC_FIELDS: [&str; 12] = [
    "id",
    "window_start",
    "window_end",
    "dimension",
    "key",
    "orders",
    "units",
    "gross_amount",
    "net_amount",
    "avg_order_value",
    "distinct_customers",
    "revision",
];

/// The fields in which two views differ, as `field: want X, got Y`.
pub fn field_diff<T: serde::Serialize>(want: &T, got: &T) -> String {
    let (w, g) = (
        serde_json::to_value(want).unwrap_or_default(),
        serde_json::to_value(got).unwrap_or_default(),
    );
    let mut out = Vec::new();
    if let (Some(w), Some(g)) = (w.as_object(), g.as_object()) {
        for (k, wv) in w {
            if g.get(k) != Some(wv) {
                out.push(format!(
                    "{k}: want {wv}, got {}",
                    g.get(k).unwrap_or(&Value::Null)
                ));
            }
        }
    }
    out.join("; ")
}

// ---- reading JSON values strictly ----

pub(crate) fn field<'a>(v: &'a Value, name: &str) -> anyhow::Result<&'a Value> {
    v.get(name).with_context(|| format!("no field {name:?}"))
}

pub(crate) fn string(v: &Value, name: &str) -> anyhow::Result<String> {
    field(v, name)?
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("{name} is not a string"))
}

pub(crate) fn opt_string(v: &Value, name: &str) -> anyhow::Result<Option<String>> {
    match field(v, name)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => bail!("{name} is neither a string nor null: {other}"),
    }
}

pub(crate) fn int(v: &Value, name: &str) -> anyhow::Result<i64> {
    field(v, name)?
        .as_i64()
        .with_context(|| format!("{name} is not an integer"))
}

/// A decimal JSON number with at most two decimals, in hundredths.
pub(crate) fn hundredths(v: &Value, name: &str) -> anyhow::Result<i64> {
    let x = field(v, name)?
        .as_f64()
        .with_context(|| format!("{name} is not a number"))?;
    let h = (x * 100.0).round();
    if ((x * 100.0) - h).abs() > 1e-6 {
        bail!("{name} = {x} has more than two decimals");
    }
    Ok(h as i64)
}

/// `12.5` or `12.50` (text, as in CSV) in hundredths.
pub(crate) fn hundredths_text(s: &str) -> anyhow::Result<i64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 2 {
        bail!("{s:?} has more than two decimals");
    }
    let whole: i64 = whole.parse().with_context(|| format!("{s:?}"))?;
    let frac: i64 = format!("{frac:0<2}")
        .parse()
        .with_context(|| format!("{s:?}"))?;
    Ok(whole * 100 + frac)
}

pub(crate) fn time_text(s: &str) -> anyhow::Result<i64> {
    flowline_model::Timestamp::parse_rfc3339(s)
        .map(|t| t.millis())
        .map_err(|e| anyhow::anyhow!("{s:?}: {e}"))
}

pub(crate) fn time(v: &Value, name: &str) -> anyhow::Result<i64> {
    time_text(&string(v, name)?)
}

/// A coordinate rounded to hundredths, half away from zero (`f64::round`).
pub(crate) fn coord(x: f64) -> i64 {
    (x * 100.0).round() as i64
}

/// `num / den` rounded half away from zero (den > 0).
pub(crate) fn div_round(num: i64, den: i64) -> i64 {
    let (q, r) = (num / den, num % den);
    if 2 * r.abs() >= den {
        q + num.signum()
    } else {
        q
    }
}

impl OrderView {
    /// From an order as JSON (OpenSearch `_source`, or a Parquet row re-serialised).
    pub fn from_json(v: &Value) -> anyhow::Result<OrderView> {
        let location = match field(v, "location")? {
            Value::Null => None,
            loc => Some((
                coord(field(loc, "lat")?.as_f64().context("location.lat")?),
                coord(field(loc, "lon")?.as_f64().context("location.lon")?),
            )),
        };
        let missing = field(v, "missing")?
            .as_array()
            .context("missing is not a list")?
            .iter()
            .map(|m| m.as_str().map(str::to_string).context("missing entry"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(OrderView {
            order_id: string(v, "order_id")?,
            event_time: time(v, "event_time")?,
            customer_id: string(v, "customer_id")?,
            customer_segment: opt_string(v, "customer_segment")?,
            email_sha256: opt_string(v, "email_sha256")?,
            address_id: opt_string(v, "address_id")?,
            city: opt_string(v, "city")?,
            state: opt_string(v, "state")?,
            postcode: opt_string(v, "postcode")?,
            country: opt_string(v, "country")?,
            location,
            item_id: string(v, "item_id")?,
            item_name: opt_string(v, "item_name")?,
            category: opt_string(v, "category")?,
            brand: opt_string(v, "brand")?,
            promo_id: opt_string(v, "promo_id")?,
            discount_pct: hundredths(v, "discount_pct")?,
            quantity: int(v, "quantity")?,
            unit_price: hundredths(v, "unit_price")?,
            gross_amount: hundredths(v, "gross_amount")?,
            discount_amount: hundredths(v, "discount_amount")?,
            net_amount: hundredths(v, "net_amount")?,
            join_status: string(v, "join_status")?,
            missing,
            enriched_at: time(v, "enriched_at")?,
        })
    }
}

impl MetricView {
    pub fn from_json(v: &Value) -> anyhow::Result<(MetricView, i64)> {
        Ok((
            MetricView {
                id: string(v, "id")?,
                window_start: time(v, "window_start")?,
                window_end: time(v, "window_end")?,
                dimension: string(v, "dimension")?,
                key: string(v, "key")?,
                orders: int(v, "orders")?,
                units: int(v, "units")?,
                gross_amount: hundredths(v, "gross_amount")?,
                net_amount: hundredths(v, "net_amount")?,
                avg_order_value: hundredths(v, "avg_order_value")?,
                distinct_customers: int(v, "distinct_customers")?,
            },
            int(v, "revision")?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(div_round(5, 10), 1);
        assert_eq!(div_round(4, 10), 0);
        assert_eq!(div_round(-5, 10), -1);
        assert_eq!(div_round(1999 * 1250, 10_000), 250);
        assert_eq!(coord(-0.125), -13);
        assert_eq!(hundredths_text("12.5").unwrap(), 1250);
        assert_eq!(hundredths_text("7").unwrap(), 700);
        assert!(hundredths_text("1.234").is_err());
    }
}
