//! The `[bulk]` settings of the sink: when to flush, how much to keep in flight and in
//! memory, how to back off.

use std::time::Duration;

use serde::{Deserialize, Serialize};

const MIB: usize = 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct BulkConfig {
    /// Flush a bulk request at this many documents (Flink's `bulk.flush.max-actions`).
    pub max_actions: usize,
    /// Flush before a request body would exceed this many bytes (`bulk.flush.max-size`).
    /// Keep it under the cluster's `http.max_content_length` (10 MiB on small AWS domains).
    pub max_bytes: usize,
    /// Flush a partly filled request this long after its first document arrived.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Bulk requests in flight at once.
    pub max_in_flight: usize,
    /// Documents held by the sink at once, queued, in flight or waiting to be retried;
    /// `send` waits while the sink is full.
    pub max_buffered_docs: usize,
    /// Bytes (action and source lines) held by the sink at once; `send` waits likewise.
    pub max_buffered_bytes: usize,
    /// First retry delay; doubles with every attempt up to `max_backoff` (full jitter).
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Give a document up (an error, not a rejection) when it is still failing this long
    /// after its first attempt; unset = retry for as long as it takes.
    #[serde(with = "humantime_serde")]
    pub retry_deadline: Option<Duration>,
}

impl Default for BulkConfig {
    fn default() -> Self {
        Self {
            max_actions: 1_000,
            max_bytes: 5 * MIB,
            flush_interval: Duration::from_secs(1),
            max_in_flight: 2,
            // Room for the requests in flight, one being filled and one waiting.
            max_buffered_docs: 4_000,
            max_buffered_bytes: 20 * MIB,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            retry_deadline: None,
        }
    }
}

impl BulkConfig {
    /// Problems as `(setting, message)`, settings named under `section` (e.g. `bulk`).
    pub fn problems(&self, section: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut bad = |setting: &str, message: String| {
            out.push((format!("{section}.{setting}"), message));
        };
        if !(1..=100_000).contains(&self.max_actions) {
            bad("max_actions", "must be between 1 and 100000".into());
        }
        if !(1024..=100 * MIB).contains(&self.max_bytes) {
            bad("max_bytes", "must be between 1 KiB and 100 MiB".into());
        }
        if self.flush_interval.is_zero() {
            bad("flush_interval", "must be greater than 0".into());
        }
        if !(1..=64).contains(&self.max_in_flight) {
            bad("max_in_flight", "must be between 1 and 64".into());
        }
        if self.max_buffered_docs < self.max_actions {
            bad(
                "max_buffered_docs",
                format!("must be at least max_actions ({})", self.max_actions),
            );
        }
        // Byte permits are counted in a u32 (the semaphore's acquire_many).
        if self.max_buffered_bytes < self.max_bytes || self.max_buffered_bytes > u32::MAX as usize {
            bad(
                "max_buffered_bytes",
                format!(
                    "must be at least max_bytes ({}) and at most 4 GiB",
                    self.max_bytes
                ),
            );
        }
        if self.initial_backoff.is_zero() {
            bad("initial_backoff", "must be greater than 0".into());
        }
        if self.max_backoff < self.initial_backoff {
            bad("max_backoff", "must be at least initial_backoff".into());
        }
        if self.retry_deadline.is_some_and(|d| d.is_zero()) {
            bad(
                "retry_deadline",
                "must be greater than 0 (leave it unset to retry indefinitely)".into(),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_follow_flink() {
        let c = BulkConfig::default();
        assert!(c.problems("bulk").is_empty());
        assert_eq!(
            (c.max_actions, c.max_bytes, c.flush_interval),
            (1000, 5 * MIB, Duration::from_secs(1))
        );
        assert_eq!(c.max_in_flight, 2);
    }

    #[test]
    fn problems_name_the_setting() {
        let c = BulkConfig {
            max_actions: 0,
            max_in_flight: 0,
            max_buffered_bytes: 10,
            max_backoff: Duration::from_millis(1),
            retry_deadline: Some(Duration::ZERO),
            ..BulkConfig::default()
        };
        let names: Vec<String> = c.problems("bulk").into_iter().map(|(s, _)| s).collect();
        assert_eq!(
            names,
            [
                "bulk.max_actions",
                "bulk.max_in_flight",
                "bulk.max_buffered_bytes",
                "bulk.max_backoff",
                "bulk.retry_deadline"
            ]
        );
    }

    #[test]
    fn deserialises_humantime_durations_with_defaults() {
        let c: BulkConfig = serde_json::from_str(
            r#"{"max_actions": 500, "flush_interval": "250ms", "retry_deadline": "10m"}"#,
        )
        .unwrap();
        assert_eq!(c.max_actions, 500);
        assert_eq!(c.flush_interval, Duration::from_millis(250));
        assert_eq!(c.retry_deadline, Some(Duration::from_secs(600)));
        assert_eq!(c.max_in_flight, 2);
    }
}
