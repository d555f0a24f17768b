//! What a replay sends, and in which order.
//!
//! The archive is partitioned by event time, so every good record of hour H is in
//! H's folders: sorting one hour at a time gives a global event-time order across
//! streams without holding more than one hour in memory. Within an hour the order is
//! the [`SortKey`]: event time, then kind (entity versions before the sales of the same
//! millisecond, so a join sees the version first), then stream and the record's bytes.
//!
//! The key depends only on the records, never on how the archiver cut them into
//! objects, so it stays valid across restarts even if objects were rewritten with
//! other cuts (see `flowline_lake`'s writer), and identical lines — an object
//! partly duplicated by a re-cut — sort next to each other and are sent once.

use flowline_kinesis::producer::MAX_PARTITION_KEY_CHARS;
use flowline_model::{ParseConfig, StreamKind, Timestamp};
use serde::{Deserialize, Serialize};

use super::hour::Hour;

/// The total order of a replay, and the position file's unit of progress.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SortKey {
    pub hour: Hour,
    pub event_time: Timestamp,
    pub kind: StreamKind,
    /// The archived stream.
    pub stream: String,
    /// The record exactly as archived (valid JSON, so valid UTF-8).
    pub line: String,
}

/// A record to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoodRecord {
    pub key: SortKey,
    /// The entity id (DESIGN.md section 2).
    pub partition_key: String,
    /// Index of its source in the plan.
    pub source: usize,
}

/// Why a line cannot be replayed: a bounded `error_type` and a human reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub error_type: &'static str,
    pub reason: String,
}

/// Parses one archived line of stream `kind` with the model's strict parser (the
/// same checks the joiner makes) and builds its key; a line that would not even reach
/// a consumer (no usable partition key) is rejected too.
pub fn classify(
    parser: &ParseConfig,
    kind: StreamKind,
    stream: &str,
    hour: &Hour,
    source: usize,
    line: &[u8],
) -> Result<GoodRecord, Rejection> {
    let event = parser.parse_event(kind, line).map_err(|e| Rejection {
        error_type: e.error_type(),
        reason: e.to_string(),
    })?;
    let text = std::str::from_utf8(line).map_err(|e| Rejection {
        error_type: flowline_model::error_types::BAD_JSON,
        reason: format!("not UTF-8: {e}"),
    })?;
    let partition_key = event.partition_key().to_string();
    let chars = partition_key.chars().count();
    if chars > MAX_PARTITION_KEY_CHARS {
        return Err(Rejection {
            error_type: flowline_model::error_types::BAD_FIELD,
            reason: format!(
                "field \"{}\": {chars} characters, more than a Kinesis partition key holds ({MAX_PARTITION_KEY_CHARS})",
                kind.partition_key_field()
            ),
        });
    }
    Ok(GoodRecord {
        key: SortKey {
            hour: hour.clone(),
            event_time: event.event_time(),
            kind,
            stream: stream.to_string(),
            line: text.to_string(),
        },
        partition_key,
        source,
    })
}

/// An hour's records in replay order, without exact duplicates and without what a
/// previous run already had acknowledged (everything up to `done`, inclusive).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ordered {
    pub records: Vec<GoodRecord>,
    pub duplicates: u64,
    pub already_acked: u64,
}

pub fn order(mut records: Vec<GoodRecord>, done: Option<&SortKey>) -> Ordered {
    records.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    let before = records.len();
    records.dedup_by(|a, b| a.key == b.key);
    let duplicates = (before - records.len()) as u64;
    let skip = done.map_or(0, |d| records.partition_point(|r| &r.key <= d));
    records.drain(..skip);
    Ordered {
        records,
        duplicates,
        already_acked: skip as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour() -> Hour {
        "dt=2026-01-01/hour=10".parse().unwrap()
    }

    fn sale(id: &str, customer: &str, t: &str) -> String {
        format!(
            r#"{{"sale_id":"{id}","customer_id":"{customer}","item_id":"i-1","promo_id":null,"quantity":1,"unit_price":2.50,"event_time":"{t}"}}"#
        )
    }

    fn customer(id: &str, t: &str) -> String {
        format!(
            r#"{{"customer_id":"{id}","address_id":"a-1","first_name":"A","last_name":"B","email":"a@b.c","phone":"1","segment":"vip","updated_at":"{t}"}}"#
        )
    }

    fn good(kind: StreamKind, stream: &str, line: &str) -> GoodRecord {
        classify(
            &ParseConfig::default(),
            kind,
            stream,
            &hour(),
            0,
            line.as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn good_lines_keep_their_bytes_time_and_entity_key() {
        let line = sale("s-1", "c-9", "2026-01-01T10:00:01.5+00:00");
        let r = good(StreamKind::Sales, "sales", &line);
        assert_eq!(r.key.line, line, "sent exactly as archived");
        assert_eq!(r.partition_key, "c-9");
        assert_eq!(r.key.event_time.to_string(), "2026-01-01T10:00:01.500Z");
        let r = good(
            StreamKind::Customers,
            "customers",
            &customer("c-2", "2026-01-01T10:00:00Z"),
        );
        assert_eq!(r.partition_key, "c-2");
    }

    #[test]
    fn bad_lines_are_rejected_with_type_and_reason() {
        let p = ParseConfig::default();
        let reject =
            |kind, line: &str| classify(&p, kind, "s", &hour(), 0, line.as_bytes()).unwrap_err();
        let r = reject(StreamKind::Sales, "not json");
        assert_eq!(r.error_type, "bad_json");
        let r = reject(StreamKind::Sales, r#"{"sale_id":"s-1","customer_id":"c"}"#);
        assert_eq!(r.error_type, "missing_field");
        assert!(r.reason.contains("item_id"), "{}", r.reason);
        let r = reject(StreamKind::Customers, r#"{"hello":1}"#);
        assert_eq!(r.error_type, "unknown_type");
        let long = customer(&"x".repeat(300), "2026-01-01T10:00:00Z");
        let r = reject(StreamKind::Customers, &long);
        assert_eq!(r.error_type, "bad_field");
        assert!(r.reason.contains("partition key"), "{}", r.reason);
    }

    #[test]
    fn order_is_event_time_then_versions_before_sales() {
        let s1 = good(
            StreamKind::Sales,
            "sales",
            &sale("s-1", "c-1", "2026-01-01T10:00:02Z"),
        );
        let s0 = good(
            StreamKind::Sales,
            "sales",
            &sale("s-0", "c-1", "2026-01-01T10:00:01Z"),
        );
        let c1 = good(
            StreamKind::Customers,
            "customers",
            &customer("c-1", "2026-01-01T10:00:01Z"),
        );
        let o = order(vec![s1.clone(), s0.clone(), c1.clone(), s1.clone()], None);
        assert_eq!(o.records, vec![c1.clone(), s0.clone(), s1.clone()]);
        assert_eq!(o.duplicates, 1);
        assert_eq!(o.already_acked, 0);

        // A resumed run skips everything up to the recorded key, inclusive.
        let o = order(vec![s1.clone(), s0.clone(), c1.clone()], Some(&c1.key));
        assert_eq!(o.records, vec![s0.clone(), s1.clone()]);
        assert_eq!(o.already_acked, 1);
        let o = order(vec![s1.clone(), s0, c1], Some(&s1.key));
        assert!(o.records.is_empty());
        assert_eq!(o.already_acked, 3);
    }
}
