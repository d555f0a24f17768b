//! From a Kinesis record to a bulk document: validate with the model, keep the record's own
//! JSON object, add `indexed_at`, and route it to the daily index under its deterministic id.
//!
//! The body is the record as received, not a re-serialisation of the typed model: a field
//! the model tolerates but the strict mapping does not know is then refused by OpenSearch
//! and dead-lettered with its reason, instead of vanishing silently.

use bytes::Bytes;
use flowline_model::{EnrichedOrder, ModelError, ParseConfig, Timestamp, WindowMetric};
use flowline_opensearch::bulk::{BulkDoc, IndexFamily, IndexNames};
use serde_json::{Map, Value};

/// What an input stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Orders,
    Metrics,
}

impl Input {
    pub fn family(self) -> IndexFamily {
        match self {
            Input::Orders => IndexFamily::Orders,
            Input::Metrics => IndexFamily::OrderMetrics,
        }
    }
}

/// A document ready for the sink.
pub struct Prepared {
    pub doc: BulkDoc,
    /// The serialised body, kept for the dead-letter envelope if OpenSearch refuses it.
    pub body: Bytes,
    /// Where end-to-end latency is measured from: `event_time`, or a metric's `window_end`.
    pub origin: Timestamp,
    /// An order's `join_status` (`complete`, `partial`); empty for a metric. A partial
    /// order waited for the join timeout by design, so its latency is told apart.
    pub join_status: &'static str,
}

pub fn prepare(
    input: Input,
    data: &[u8],
    parse: &ParseConfig,
    names: &IndexNames,
    indexed_at: Timestamp,
) -> Result<Prepared, ModelError> {
    let (key, origin, at, version, join_status) = match input {
        Input::Orders => {
            let order: EnrichedOrder = parse.parse(data)?;
            let status = order.join_status.as_str();
            (
                order.order_id,
                order.event_time,
                order.event_time,
                None,
                status,
            )
        }
        Input::Metrics => {
            let metric: WindowMetric = parse.parse(data)?;
            let revision = u64::from(metric.revision);
            (
                metric.id,
                metric.window_end,
                metric.window_start,
                Some(revision),
                "",
            )
        }
    };
    // The model accepted these bytes, so they are one JSON object.
    let mut object: Map<String, Value> =
        serde_json::from_slice(data).map_err(|e| ModelError::BadJson {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
    object.insert(
        "indexed_at".into(),
        serde_json::to_value(indexed_at).expect("a timestamp serialises"),
    );
    let body = Bytes::from(serde_json::to_vec(&object).expect("a JSON map serialises"));
    let doc = match version {
        None => BulkDoc::order(names, &key, at.to_datetime(), body.clone()),
        Some(revision) => BulkDoc::metric(names, &key, at.to_datetime(), revision, body.clone()),
    };
    Ok(Prepared {
        doc,
        body,
        origin,
        join_status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    fn order() -> Value {
        json!({
            "order_id": "s-1", "event_time": "2026-11-21T23:59:59.999Z", "customer_id": "c-1",
            "customer_segment": "retail", "email_sha256": null, "address_id": "a-1",
            "city": "Springfield", "state": "IL", "postcode": "62701", "country": "US",
            "location": {"lat": 39.8, "lon": -89.65}, "item_id": "i-1", "item_name": "Mug",
            "category": "kitchen", "brand": "Acme", "promo_id": null, "discount_pct": 0,
            "quantity": 2, "unit_price": 5.5, "gross_amount": 11.0, "discount_amount": 0.0,
            "net_amount": 11.0, "join_status": "complete", "missing": [],
            "enriched_at": "2026-11-22T00:00:01.000Z"
        })
    }

    #[test]
    fn orders_go_to_the_daily_index_by_event_time_with_indexed_at() {
        let data = serde_json::to_vec(&order()).unwrap();
        let p = prepare(
            Input::Orders,
            &data,
            &ParseConfig::default(),
            &IndexNames::default(),
            ts("2026-11-22T00:00:02.000Z"),
        )
        .unwrap();
        assert_eq!(
            (p.doc.index.as_str(), p.doc.id.as_str(), p.doc.version),
            ("orders-2026.11.21", "s-1", None)
        );
        assert_eq!(p.origin, ts("2026-11-21T23:59:59.999Z"));
        assert_eq!(p.join_status, "complete");
        let body: Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(body["indexed_at"], "2026-11-22T00:00:02.000Z");
        assert_eq!(body["city"], "Springfield");
    }

    #[test]
    fn metrics_use_window_start_and_revision_as_external_version() {
        let metric = json!({
            "id": "abc", "window_start": "2026-11-22T00:00:00.000Z",
            "window_end": "2026-11-22T00:01:00.000Z", "dimension": "all", "key": "all",
            "orders": 3, "units": 4, "gross_amount": 10.0, "net_amount": 9.0,
            "avg_order_value": 3.0, "distinct_customers": 2, "revision": 2
        });
        let data = serde_json::to_vec(&metric).unwrap();
        let p = prepare(
            Input::Metrics,
            &data,
            &ParseConfig::default(),
            &IndexNames::default(),
            ts("2026-11-22T00:01:05.000Z"),
        )
        .unwrap();
        assert_eq!(
            (p.doc.index.as_str(), p.doc.id.as_str(), p.doc.version),
            ("order-metrics-2026.11.22", "abc", Some(2))
        );
        assert_eq!(p.origin, ts("2026-11-22T00:01:00.000Z"));
        assert_eq!(p.join_status, "");
    }

    #[test]
    fn records_the_model_refuses_are_errors() {
        let names = IndexNames::default();
        let cfg = ParseConfig::default();
        let now = ts("2026-11-22T00:00:00.000Z");
        let e = prepare(Input::Orders, b"{not json", &cfg, &names, now).err();
        assert_eq!(e.map(|e| e.error_type()), Some("bad_json"));
        let mut o = order();
        o.as_object_mut().unwrap().remove("order_id");
        let data = serde_json::to_vec(&o).unwrap();
        let e = prepare(Input::Orders, &data, &cfg, &names, now).err();
        assert_eq!(e.map(|e| e.error_type()), Some("missing_field"));
        // An order is not a metric.
        let data = serde_json::to_vec(&order()).unwrap();
        assert!(prepare(Input::Metrics, &data, &cfg, &names, now).is_err());
    }
}
