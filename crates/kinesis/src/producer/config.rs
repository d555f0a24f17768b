//! Producer configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::agg::DEFAULT_MAX_AGGREGATE_BYTES;

/// Kinesis limit for one record: data plus partition key.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Kinesis limits for one PutRecords call.
pub const MAX_PUT_RECORDS: usize = 500;
pub const MAX_PUT_RECORDS_BYTES: usize = 5 * 1024 * 1024;
/// Kinesis limit on partition key length, in Unicode characters (so up to 1 KiB of UTF-8).
pub const MAX_PARTITION_KEY_CHARS: usize = 256;
const MAX_PARTITION_KEY_BYTES: usize = MAX_PARTITION_KEY_CHARS * 4;

/// Settings of a [`Producer`](super::Producer). Defaults follow the KPL where it has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProducerConfig {
    /// How long a record may wait for others to fill a batch or aggregate (KPL `RecordMaxBufferedTime`).
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// Kinesis records per PutRecords call (1..=500).
    pub max_batch_records: usize,
    /// Bytes (data + partition keys) per PutRecords call (up to 5 MiB).
    pub max_batch_bytes: usize,
    /// Concurrent PutRecords calls.
    pub max_in_flight_requests: usize,
    /// User records accepted but not yet acknowledged; `send` waits beyond this.
    pub buffer_records: usize,
    /// Bytes of user records accepted but not yet acknowledged; must hold one maximal record.
    pub buffer_bytes: usize,
    /// A record not delivered within this time after `send` fails with its last error (KPL `RecordTtl`).
    #[serde(with = "humantime_serde")]
    pub record_ttl: Duration,
    /// Deadline of one PutRecords call (KPL `RequestTimeout`).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Exponential backoff with full jitter between attempts of a record: first cap, ...
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// ... and the largest cap.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Pack user records bound for the same shard into KPL aggregated records.
    pub aggregation: bool,
    /// Size cap of an aggregated record (KPL `AggregationMaxSize`).
    pub aggregation_max_bytes: usize,
    /// User records per aggregated record (KPL `AggregationMaxCount`).
    pub aggregation_max_records: usize,
    /// Per-shard write budget in bytes per second; 0 = unlimited (on-demand streams).
    pub shard_bytes_per_sec: u64,
    /// Per-shard write budget in records per second; 0 = unlimited.
    pub shard_records_per_sec: u64,
    /// How often the shard map is re-read (it is also re-read when a record lands on an unexpected shard).
    #[serde(with = "humantime_serde")]
    pub shard_map_refresh_interval: Duration,
}

impl ProducerConfig {
    /// For a pipeline stage writing what it derived from a stream it checkpoints (the
    /// joiner's orders, the aggregator's metrics): a record is retried for 10 minutes, not
    /// 30 s. Giving up would only restart the stage from its checkpoint and send the same
    /// records into the same overloaded stream again; waiting holds the stage instead (its
    /// bounded buffers stop its reading), as a Flink Kinesis sink does.
    pub fn pipeline_stage() -> Self {
        Self {
            record_ttl: Duration::from_secs(600),
            ..Self::default()
        }
    }
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            linger: Duration::from_millis(100),
            max_batch_records: MAX_PUT_RECORDS,
            max_batch_bytes: MAX_PUT_RECORDS_BYTES,
            max_in_flight_requests: 8,
            buffer_records: 50_000,
            buffer_bytes: 32 * 1024 * 1024,
            record_ttl: Duration::from_secs(30),
            request_timeout: Duration::from_secs(6),
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            aggregation: true,
            aggregation_max_bytes: DEFAULT_MAX_AGGREGATE_BYTES,
            aggregation_max_records: 4_294_967_295,
            shard_bytes_per_sec: 1024 * 1024,
            shard_records_per_sec: 1000,
            shard_map_refresh_interval: Duration::from_secs(60),
        }
    }
}

impl ProducerConfig {
    /// Problems with the settings, each naming the setting as `producer.<name>`.
    pub fn validate(&self) -> Vec<String> {
        self.validate_at("producer")
    }

    /// Like [`Self::validate`], with the settings under `prefix` (e.g. `joiner.output`).
    pub fn validate_at(&self, prefix: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, name: &str, why: String| {
            if !ok {
                problems.push(format!("{prefix}.{name}: {why}"));
            }
        };
        check(
            (1..=MAX_PUT_RECORDS).contains(&self.max_batch_records),
            "max_batch_records",
            format!(
                "must be 1..={MAX_PUT_RECORDS}, is {}",
                self.max_batch_records
            ),
        );
        check(
            (MAX_RECORD_BYTES..=MAX_PUT_RECORDS_BYTES).contains(&self.max_batch_bytes),
            "max_batch_bytes",
            format!(
                "must be {MAX_RECORD_BYTES}..={MAX_PUT_RECORDS_BYTES} (at least one maximal record), is {}",
                self.max_batch_bytes
            ),
        );
        check(
            self.max_in_flight_requests >= 1,
            "max_in_flight_requests",
            "must be at least 1".into(),
        );
        check(
            self.buffer_records >= 1,
            "buffer_records",
            "must be at least 1".into(),
        );
        check(
            self.buffer_bytes >= MAX_RECORD_BYTES,
            "buffer_bytes",
            format!(
                "must hold one maximal record ({MAX_RECORD_BYTES} bytes), is {}",
                self.buffer_bytes
            ),
        );
        check(
            !self.record_ttl.is_zero(),
            "record_ttl",
            "must be positive".into(),
        );
        check(
            !self.request_timeout.is_zero(),
            "request_timeout",
            "must be positive".into(),
        );
        check(
            !self.backoff_base.is_zero(),
            "backoff_base",
            "must be positive".into(),
        );
        check(
            self.backoff_max >= self.backoff_base,
            "backoff_max",
            format!(
                "must be at least backoff_base ({:?}), is {:?}",
                self.backoff_base, self.backoff_max
            ),
        );
        let max_agg = MAX_RECORD_BYTES - MAX_PARTITION_KEY_BYTES;
        check(
            (64..=max_agg).contains(&self.aggregation_max_bytes),
            "aggregation_max_bytes",
            format!("must be 64..={max_agg}, is {}", self.aggregation_max_bytes),
        );
        check(
            self.aggregation_max_records >= 1,
            "aggregation_max_records",
            "must be at least 1".into(),
        );
        check(
            !self.shard_map_refresh_interval.is_zero(),
            "shard_map_refresh_interval",
            "must be positive".into(),
        );
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let c = ProducerConfig::default();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"linger\":\"100ms\""), "{json}");
        assert_eq!(serde_json::from_str::<ProducerConfig>(&json).unwrap(), c);
        let partial: ProducerConfig =
            serde_json::from_str(r#"{"linger":"5ms","aggregation":false}"#).unwrap();
        assert_eq!(partial.linger, Duration::from_millis(5));
        assert!(!partial.aggregation);
        assert_eq!(partial.max_batch_records, 500);
    }

    #[test]
    fn problems_name_the_setting() {
        let c = ProducerConfig {
            max_batch_records: 501,
            buffer_bytes: 10,
            backoff_max: Duration::from_millis(1),
            aggregation_max_bytes: 2 * 1024 * 1024,
            ..Default::default()
        };
        let problems = c.validate();
        for name in [
            "max_batch_records",
            "buffer_bytes",
            "backoff_max",
            "aggregation_max_bytes",
        ] {
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with(&format!("producer.{name}:"))),
                "{name} missing from {problems:?}"
            );
        }
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(c.validate_at("out").iter().all(|p| p.starts_with("out.")));
    }
}
