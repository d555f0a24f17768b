//! A document to index and its encoding as the two NDJSON lines of a bulk `index` action.
//!
//! `indexed_at` is not added here: the indexer puts it into the body it builds. Adding it at
//! flush time would mean parsing and re-serialising every pre-serialised body, and a retried
//! document would get a different value on every attempt.

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::naming::{IndexFamily, IndexNames};
use crate::OpenSearchError;

/// The document source: a JSON value, or a JSON object already serialised on one line.
#[derive(Debug, Clone, PartialEq)]
pub enum DocBody {
    Json(Value),
    Raw(Bytes),
}

impl From<Value> for DocBody {
    fn from(v: Value) -> Self {
        DocBody::Json(v)
    }
}

impl From<Bytes> for DocBody {
    fn from(b: Bytes) -> Self {
        DocBody::Raw(b)
    }
}

impl From<Vec<u8>> for DocBody {
    fn from(b: Vec<u8>) -> Self {
        DocBody::Raw(b.into())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BulkDoc {
    pub index: String,
    pub id: String,
    pub body: DocBody,
    /// External version (`version_type=external`): the write applies only when it is higher
    /// than the stored one. Window metrics use their `revision`.
    pub version: Option<u64>,
    /// Metric label only.
    pub family: IndexFamily,
}

impl BulkDoc {
    pub fn new(index: impl Into<String>, id: impl Into<String>, body: impl Into<DocBody>) -> Self {
        Self {
            index: index.into(),
            id: id.into(),
            body: body.into(),
            version: None,
            family: IndexFamily::Other,
        }
    }

    pub fn with_version(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }

    pub fn with_family(mut self, family: IndexFamily) -> Self {
        self.family = family;
        self
    }

    /// An enriched order: daily index by `event_time`, `_id` = `order_id`.
    pub fn order(
        names: &IndexNames,
        order_id: &str,
        event_time: DateTime<Utc>,
        body: impl Into<DocBody>,
    ) -> Self {
        Self::new(names.orders_index(event_time), order_id, body).with_family(IndexFamily::Orders)
    }

    /// A window metric: daily index by `window_start`, `_id` = metric `id`, and external
    /// version = `revision`, so a stale revision never overwrites a newer one.
    pub fn metric(
        names: &IndexNames,
        id: &str,
        window_start: DateTime<Utc>,
        revision: u64,
        body: impl Into<DocBody>,
    ) -> Self {
        Self::new(names.order_metrics_index(window_start), id, body)
            .with_version(revision)
            .with_family(IndexFamily::OrderMetrics)
    }

    /// [`BulkDoc::order`] reading `order_id` and `event_time` from the order itself.
    pub fn order_from_json(names: &IndexNames, order: Value) -> Result<Self, OpenSearchError> {
        let id = str_field(&order, "order_id")?.to_owned();
        let at = time_field(&order, "event_time")?;
        Ok(Self::order(names, &id, at, order))
    }

    /// [`BulkDoc::metric`] reading `id`, `window_start` and `revision` from the metric.
    pub fn metric_from_json(names: &IndexNames, metric: Value) -> Result<Self, OpenSearchError> {
        let id = str_field(&metric, "id")?.to_owned();
        let at = time_field(&metric, "window_start")?;
        let revision = metric["revision"]
            .as_u64()
            .ok_or_else(|| invalid(&id, "revision is not a non-negative integer"))?;
        Ok(Self::metric(names, &id, at, revision, metric))
    }

    /// The action and source lines, each ending in a newline.
    pub(crate) fn encode(&self) -> Result<Bytes, OpenSearchError> {
        #[derive(Serialize)]
        struct Action<'a> {
            index: Meta<'a>,
        }
        #[derive(Serialize)]
        struct Meta<'a> {
            _index: &'a str,
            _id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            version: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            version_type: Option<&'static str>,
        }
        if self.index.is_empty() || self.id.is_empty() {
            return Err(invalid(&self.id, "index and id must not be empty"));
        }
        let action = Action {
            index: Meta {
                _index: &self.index,
                _id: &self.id,
                version: self.version,
                version_type: self.version.map(|_| "external"),
            },
        };
        let body_len = match &self.body {
            DocBody::Raw(b) => b.len(),
            DocBody::Json(_) => 256,
        };
        let mut out = BytesMut::with_capacity(body_len + self.index.len() + self.id.len() + 64);
        // Serialising these types into memory cannot fail.
        serde_json::to_writer((&mut out).writer(), &action).expect("action line serialises");
        out.put_u8(b'\n');
        match &self.body {
            DocBody::Json(v) => {
                if !v.is_object() {
                    return Err(invalid(&self.id, "the body must be a JSON object"));
                }
                // Compact JSON has no raw newlines, so it stays one NDJSON line.
                serde_json::to_writer((&mut out).writer(), v).expect("JSON value serialises");
            }
            DocBody::Raw(b) => {
                // A newline would split the source and break the framing of the whole request.
                if b.contains(&b'\n') {
                    return Err(invalid(&self.id, "a pre-serialised body must be one line"));
                }
                out.put_slice(b);
            }
        }
        out.put_u8(b'\n');
        Ok(out.freeze())
    }
}

fn invalid(id: &str, message: &str) -> OpenSearchError {
    OpenSearchError::InvalidDocument {
        id: id.to_owned(),
        message: message.to_owned(),
    }
}

fn str_field<'a>(v: &'a Value, name: &str) -> Result<&'a str, OpenSearchError> {
    v[name]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("", &format!("{name} is missing or not a string")))
}

fn time_field(v: &Value, name: &str) -> Result<DateTime<Utc>, OpenSearchError> {
    let text = str_field(v, name)?;
    DateTime::parse_from_rfc3339(text)
        .map(Into::into)
        .map_err(|e| invalid("", &format!("{name} {text:?} is not RFC 3339: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_two_lines_with_external_version() {
        let names = IndexNames::default();
        let at = "2026-11-21T10:00:00.000Z".parse().unwrap();
        let doc = BulkDoc::metric(&names, "m\"1", at, 3, json!({"revision": 3}));
        let lines = doc.encode().unwrap();
        assert_eq!(
            std::str::from_utf8(&lines).unwrap(),
            "{\"index\":{\"_index\":\"order-metrics-2026.11.21\",\"_id\":\"m\\\"1\",\"version\":3,\
             \"version_type\":\"external\"}}\n{\"revision\":3}\n"
        );
        let order = BulkDoc::order(&names, "o1", at, Bytes::from_static(b"{\"a\":1}"));
        assert_eq!(
            std::str::from_utf8(&order.encode().unwrap()).unwrap(),
            "{\"index\":{\"_index\":\"orders-2026.11.21\",\"_id\":\"o1\"}}\n{\"a\":1}\n"
        );
    }

    #[test]
    fn refuses_bodies_that_would_break_the_framing() {
        let doc = BulkDoc::new("i", "1", Bytes::from_static(b"{\"a\":\n1}"));
        assert!(matches!(
            doc.encode(),
            Err(OpenSearchError::InvalidDocument { .. })
        ));
        assert!(BulkDoc::new("i", "1", json!([1])).encode().is_err());
        assert!(BulkDoc::new("i", "", json!({})).encode().is_err());
    }

    #[test]
    fn builds_from_json_by_the_design_fields() {
        let names = IndexNames::default();
        let o = BulkDoc::order_from_json(
            &names,
            json!({"order_id": "s-1", "event_time": "2026-11-21T23:59:59.999Z"}),
        )
        .unwrap();
        assert_eq!(
            (o.index.as_str(), o.id.as_str(), o.version),
            ("orders-2026.11.21", "s-1", None)
        );
        let m = BulkDoc::metric_from_json(
            &names,
            json!({"id": "w1", "window_start": "2026-11-22T00:00:00.000Z", "revision": 2}),
        )
        .unwrap();
        assert_eq!(
            (m.index.as_str(), m.version, m.family),
            (
                "order-metrics-2026.11.22",
                Some(2),
                IndexFamily::OrderMetrics
            )
        );
        assert!(BulkDoc::order_from_json(&names, json!({"order_id": "x"})).is_err());
        assert!(
            BulkDoc::metric_from_json(
                &names,
                json!({"id": "w", "window_start": "2026-11-22T00:00:00Z", "revision": -1})
            )
            .is_err()
        );
    }
}
