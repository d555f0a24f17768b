//! Window results (`order-metrics` stream and index).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ModelError;
use crate::fields::{FieldSpec, FieldType as T, Fields, spec};
use crate::money::Money;
use crate::parse::Record;
use crate::time::Timestamp;

/// The key under which orders without a value for a dimension are counted.
pub const UNKNOWN_KEY: &str = "unknown";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dimension {
    All,
    Category,
    State,
}

impl Dimension {
    pub const ALL_DIMENSIONS: [Dimension; 3] =
        [Dimension::All, Dimension::Category, Dimension::State];

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::All => "all",
            Dimension::Category => "category",
            Dimension::State => "state",
        }
    }

    pub fn parse(s: &str) -> Option<Dimension> {
        Self::ALL_DIMENSIONS.into_iter().find(|d| d.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowMetric {
    pub id: String,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
    pub dimension: Dimension,
    pub key: String,
    pub orders: u64,
    pub units: u64,
    pub gross_amount: Money,
    pub net_amount: Money,
    pub avg_order_value: Money,
    pub distinct_customers: u64,
    pub revision: u32,
}

/// The deterministic metric id: the first 16 bytes (32 hex digits) of
/// SHA-256 over `window_start`, `window_end`, `dimension` and `key` joined by
/// a 0x1F unit separator, times in canonical form. Every revision of a window
/// result shares the id, so a re-emission overwrites the document. The end
/// is included so that a change of window length never collides.
pub fn metric_id(
    window_start: Timestamp,
    window_end: Timestamp,
    dimension: Dimension,
    key: &str,
) -> String {
    let (mut start, mut end) = ([0u8; 24], [0u8; 24]);
    window_start.write_canonical(&mut start);
    window_end.write_canonical(&mut end);
    let mut h = Sha256::new();
    h.update(start);
    h.update([0x1f]);
    h.update(end);
    h.update([0x1f]);
    h.update(dimension.as_str().as_bytes());
    h.update([0x1f]);
    h.update(key.as_bytes());
    hex::encode(&h.finalize()[..16])
}

impl Record for WindowMetric {
    const NAME: &'static str = "window metric";
    const FIELDS: &'static [FieldSpec] = &[
        spec("id", T::String),
        spec("window_start", T::Time),
        spec("window_end", T::Time),
        spec("dimension", T::String),
        spec("key", T::String),
        spec("orders", T::Integer),
        spec("units", T::Integer),
        spec("gross_amount", T::Money),
        spec("net_amount", T::Money),
        spec("avg_order_value", T::Money),
        spec("distinct_customers", T::Integer),
        spec("revision", T::Integer),
    ];

    fn from_fields(f: &Fields<'_>) -> Result<Self, ModelError> {
        let m = WindowMetric {
            id: f.id("id")?,
            window_start: f.time("window_start")?,
            window_end: f.time("window_end")?,
            dimension: f.choice("dimension", Dimension::parse, "all, category, state")?,
            key: f.id("key")?,
            orders: f.u64("orders")?,
            units: f.u64("units")?,
            gross_amount: f.money("gross_amount")?,
            net_amount: f.money("net_amount")?,
            avg_order_value: f.money("avg_order_value")?,
            distinct_customers: f.u64("distinct_customers")?,
            revision: f.int("revision", 1, i64::from(u32::MAX))? as u32,
        };
        if m.window_end <= m.window_start {
            return Err(f.bad("window_end", "must be after window_start"));
        }
        if m.distinct_customers > m.orders {
            return Err(f.bad("distinct_customers", "must be <= orders"));
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_id_is_deterministic_and_distinct() {
        let s: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let e = s.checked_add_millis(60_000).unwrap();
        let id = metric_id(s, e, Dimension::Category, "books");
        assert_eq!(id, metric_id(s, e, Dimension::Category, "books"));
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, metric_id(s, e, Dimension::State, "books"));
        assert_ne!(id, metric_id(s, e, Dimension::Category, "Books"));
        assert_ne!(
            id,
            metric_id(
                e,
                e.checked_add_millis(60_000).unwrap(),
                Dimension::Category,
                "books"
            )
        );
    }
}
