//! Daily index names (DESIGN.md section 2): `orders-YYYY.MM.DD` by `event_time` and
//! `order-metrics-YYYY.MM.DD` by `window_start`, both UTC. The aliases `orders` and
//! `order-metrics` come from the index templates, so the sink never creates them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which kind of index a document goes to: the bounded metric label, never the daily index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexFamily {
    Orders,
    OrderMetrics,
    Other,
}

impl IndexFamily {
    pub fn as_str(self) -> &'static str {
        match self {
            IndexFamily::Orders => "orders",
            IndexFamily::OrderMetrics => "order-metrics",
            IndexFamily::Other => "other",
        }
    }
}

/// Base names of the daily indices (the `[indices]` section of the indexer).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct IndexNames {
    pub orders: String,
    pub order_metrics: String,
}

impl Default for IndexNames {
    fn default() -> Self {
        Self {
            orders: "orders".into(),
            order_metrics: "order-metrics".into(),
        }
    }
}

impl IndexNames {
    /// `<orders>-YYYY.MM.DD` of the order's `event_time` (UTC).
    pub fn orders_index(&self, event_time: DateTime<Utc>) -> String {
        daily_index(&self.orders, event_time)
    }

    /// `<order_metrics>-YYYY.MM.DD` of the window's `window_start` (UTC).
    pub fn order_metrics_index(&self, window_start: DateTime<Utc>) -> String {
        daily_index(&self.order_metrics, window_start)
    }

    /// Problems as `(setting, message)` under `section`.
    pub fn problems(&self, section: &str) -> Vec<(String, String)> {
        [
            ("orders", &self.orders),
            ("order_metrics", &self.order_metrics),
        ]
        .into_iter()
        .filter_map(|(setting, name)| {
            index_name_problem(name).map(|m| (format!("{section}.{setting}"), m))
        })
        .collect()
    }
}

/// `<base>-YYYY.MM.DD` in UTC.
pub fn daily_index(base: &str, at: DateTime<Utc>) -> String {
    format!("{base}-{}", at.format("%Y.%m.%d"))
}

/// OpenSearch's index name rules, checked here so a typo fails at startup instead of
/// dead-lettering every document.
fn index_name_problem(name: &str) -> Option<String> {
    const FORBIDDEN: &[char] = &[' ', '"', '*', '\\', '<', '|', ',', '>', '/', '?', '#', ':'];
    if name.is_empty() {
        Some("must not be empty".into())
    } else if name != name.to_lowercase() {
        Some(format!("{name:?} must be lower case"))
    } else if name.starts_with(['_', '-', '+']) {
        Some(format!("{name:?} must not start with '_', '-' or '+'"))
    } else if name.contains(FORBIDDEN) {
        Some(format!("{name:?} contains a character OpenSearch forbids"))
    } else if name.len() > 200 {
        Some(format!("{name:?} is too long"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_indices_use_the_utc_day() {
        let names = IndexNames::default();
        let t: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-21T23:59:59.999-02:00")
            .unwrap()
            .into();
        assert_eq!(names.orders_index(t), "orders-2026.11.22");
        let t: DateTime<Utc> = "2026-01-05T00:00:00.000Z".parse().unwrap();
        assert_eq!(names.order_metrics_index(t), "order-metrics-2026.01.05");
    }

    #[test]
    fn bad_base_names_are_reported() {
        let names = IndexNames {
            orders: "Orders".into(),
            order_metrics: "_metrics".into(),
        };
        let settings: Vec<String> = names
            .problems("indices")
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(settings, ["indices.orders", "indices.order_metrics"]);
        assert!(IndexNames::default().problems("indices").is_empty());
    }
}
