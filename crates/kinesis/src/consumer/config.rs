//! Consumer settings (serde, embeddable in a service's layered config).

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// How records are fetched from a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RetrievalMode {
    /// GetRecords polling (shares the shard's 2 MB/s read throughput with other readers).
    #[default]
    Polling,
    /// Enhanced fan-out: SubscribeToShard with a registered stream consumer (dedicated throughput).
    Fanout,
}

/// Where a shard is read from when its lease has no checkpoint yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InitialPosition {
    /// The oldest record still retained.
    TrimHorizon,
    /// Only records written after the lease is first read.
    #[default]
    Latest,
    /// Records written at or after `initial_timestamp`.
    AtTimestamp,
}

/// GetRecords polling settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PollingConfig {
    /// GetRecords `Limit` (1 ..= 10,000).
    pub max_records: i32,
    /// Minimum time between two GetRecords calls on one shard: Kinesis allows 5 calls/s per
    /// shard, shared by every reader of the stream, so never below 200 ms.
    #[serde(with = "humantime_serde")]
    pub min_time_between_calls: Duration,
    /// Pause after a call that reached the tip of the shard (MillisBehindLatest = 0), whether
    /// or not it returned records: adds up to this much latency per hop, and keeps a caught-up
    /// reader to about one call per shard per pause instead of five calls a second.
    #[serde(with = "humantime_serde")]
    pub idle_time_between_reads: Duration,
}

impl Default for PollingConfig {
    fn default() -> Self {
        Self {
            max_records: 10_000,
            min_time_between_calls: Duration::from_millis(200),
            idle_time_between_reads: Duration::from_secs(1),
        }
    }
}

/// Enhanced fan-out settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FanoutConfig {
    /// Registered stream consumer name; defaults to the application name.
    pub consumer_name: Option<String>,
    /// While a subscription is caught up and idle, how often to check (one GetShardIterator +
    /// GetRecords) whether the shard is closed and fully read. Kinesis announces the end of a
    /// shard on the subscription (child shards); kinesis-mock never does, so without this check
    /// a split parent would never finish there. Harmless against AWS.
    #[serde(with = "humantime_serde")]
    pub closed_shard_check_interval: Duration,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        Self {
            consumer_name: None,
            closed_shard_check_interval: Duration::from_secs(30),
        }
    }
}

/// Settings of a [`super::Consumer`]. Every duration is humantime (`"10s"`, `"500ms"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerConfig {
    /// The consuming application; names the lease table and the fan-out consumer.
    pub application_name: String,
    /// Streams read by this application (one lease table for all of them).
    pub streams: Vec<String>,
    /// Lease table; defaults to `<application_name>-leases`.
    pub lease_table: Option<String>,
    /// This worker's id in the lease table; defaults to hostname-pid-random.
    pub worker_id: Option<String>,
    /// A lease whose counter has not changed for this long (as seen by this worker) is expired.
    #[serde(with = "humantime_serde")]
    pub failover_time: Duration,
    /// How often held leases are renewed; defaults to a third of the failover time.
    #[serde(with = "humantime_serde")]
    pub renew_interval: Option<Duration>,
    /// How often the lease table is scanned to take expired, free or surplus leases.
    #[serde(with = "humantime_serde")]
    pub take_interval: Duration,
    /// Leases stolen from the most loaded worker per take round.
    pub max_leases_to_steal: usize,
    /// Upper bound of leases held by this worker.
    pub max_leases_per_worker: usize,
    /// How often the streams' shards are listed to create leases for new shards.
    #[serde(with = "humantime_serde")]
    pub shard_sync_interval: Duration,
    /// How often a child shard checks whether its parents are finished.
    #[serde(with = "humantime_serde")]
    pub parent_poll_interval: Duration,
    pub retrieval: RetrievalMode,
    pub initial_position: InitialPosition,
    /// Required with `initial_position = "AT_TIMESTAMP"` (RFC 3339).
    #[serde(with = "humantime_serde")]
    pub initial_timestamp: Option<SystemTime>,
    pub polling: PollingConfig,
    pub fanout: FanoutConfig,
    /// Batches a shard's reader may fetch ahead of its processor (memory bound).
    pub max_batches_ahead: usize,
    /// Deliver empty batches to the processor too (to observe idleness / MillisBehindLatest).
    pub process_empty_batches: bool,
    /// How long graceful shutdown waits for processors before aborting them.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            application_name: String::new(),
            streams: Vec::new(),
            lease_table: None,
            worker_id: None,
            failover_time: Duration::from_secs(10),
            renew_interval: None,
            take_interval: Duration::from_secs(5),
            max_leases_to_steal: 1,
            max_leases_per_worker: 10_000,
            shard_sync_interval: Duration::from_secs(60),
            parent_poll_interval: Duration::from_secs(1),
            retrieval: RetrievalMode::Polling,
            initial_position: InitialPosition::Latest,
            initial_timestamp: None,
            polling: PollingConfig::default(),
            fanout: FanoutConfig::default(),
            max_batches_ahead: 2,
            process_empty_batches: false,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

impl ConsumerConfig {
    pub fn lease_table_name(&self) -> String {
        self.lease_table
            .clone()
            .unwrap_or_else(|| format!("{}-leases", self.application_name))
    }

    pub fn effective_renew_interval(&self) -> Duration {
        self.renew_interval.unwrap_or(self.failover_time / 3)
    }

    pub fn fanout_consumer_name(&self) -> String {
        self.fanout
            .consumer_name
            .clone()
            .unwrap_or_else(|| self.application_name.clone())
    }

    /// The configured worker id or a fresh hostname-pid-random one.
    pub fn effective_worker_id(&self) -> String {
        if let Some(id) = &self.worker_id {
            return id.clone();
        }
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        format!(
            "{host}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        )
    }

    /// Problems with the settings, each naming the setting (`consumer.<field>`).
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.application_name.trim().is_empty() {
            p.push("consumer.application_name must not be empty".to_owned());
        }
        if self.streams.is_empty() {
            p.push("consumer.streams must name at least one stream".to_owned());
        }
        let mut seen = std::collections::HashSet::new();
        for s in &self.streams {
            if s.is_empty() || s.contains(':') {
                p.push(format!(
                    "consumer.streams: {s:?} is not a valid stream name"
                ));
            }
            if !seen.insert(s) {
                p.push(format!("consumer.streams: {s:?} is listed twice"));
            }
        }
        if self.lease_table.as_deref().is_some_and(|t| t.len() < 3) {
            p.push("consumer.lease_table must be at least 3 characters".to_owned());
        }
        if self.worker_id.as_deref().is_some_and(str::is_empty) {
            p.push("consumer.worker_id must not be empty when set".to_owned());
        }
        if self.failover_time < Duration::from_millis(500) {
            p.push("consumer.failover_time must be at least 500ms".to_owned());
        }
        let renew = self.effective_renew_interval();
        if renew.is_zero() || renew >= self.failover_time {
            p.push(
                "consumer.renew_interval must be above zero and below consumer.failover_time"
                    .to_owned(),
            );
        }
        if self.take_interval.is_zero() {
            p.push("consumer.take_interval must be above zero".to_owned());
        }
        if self.max_leases_to_steal == 0 {
            p.push("consumer.max_leases_to_steal must be at least 1".to_owned());
        }
        if self.max_leases_per_worker == 0 {
            p.push("consumer.max_leases_per_worker must be at least 1".to_owned());
        }
        if self.shard_sync_interval.is_zero() {
            p.push("consumer.shard_sync_interval must be above zero".to_owned());
        }
        if self.parent_poll_interval.is_zero() {
            p.push("consumer.parent_poll_interval must be above zero".to_owned());
        }
        if self.initial_position == InitialPosition::AtTimestamp && self.initial_timestamp.is_none()
        {
            p.push("consumer.initial_timestamp is required with consumer.initial_position = AT_TIMESTAMP".to_owned());
        }
        if !(1..=10_000).contains(&self.polling.max_records) {
            p.push("consumer.polling.max_records must be within 1..=10000".to_owned());
        }
        if self.polling.min_time_between_calls < Duration::from_millis(200) {
            p.push("consumer.polling.min_time_between_calls must be at least 200ms (5 GetRecords/s per shard)".to_owned());
        }
        if self.retrieval == RetrievalMode::Fanout && self.fanout_consumer_name().is_empty() {
            p.push("consumer.fanout.consumer_name must not be empty".to_owned());
        }
        if self.fanout.closed_shard_check_interval.is_zero() {
            p.push("consumer.fanout.closed_shard_check_interval must be above zero".to_owned());
        }
        if self.max_batches_ahead == 0 {
            p.push("consumer.max_batches_ahead must be at least 1".to_owned());
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_application_and_streams() {
        let p = ConsumerConfig::default().validate();
        assert!(
            p.iter().any(|m| m.starts_with("consumer.application_name")),
            "{p:?}"
        );
        assert!(p.iter().any(|m| m.starts_with("consumer.streams")), "{p:?}");
        let ok = ConsumerConfig {
            application_name: "app".into(),
            streams: vec!["s".into()],
            ..Default::default()
        };
        assert!(ok.validate().is_empty(), "{:?}", ok.validate());
        assert_eq!(ok.lease_table_name(), "app-leases");
        assert_eq!(
            ok.effective_renew_interval(),
            Duration::from_millis(3333) + Duration::from_nanos(333_333)
        );
    }

    #[test]
    fn problems_name_the_setting() {
        let c = ConsumerConfig {
            application_name: "app".into(),
            streams: vec!["s".into(), "s".into()],
            failover_time: Duration::from_secs(1),
            renew_interval: Some(Duration::from_secs(2)),
            initial_position: InitialPosition::AtTimestamp,
            polling: PollingConfig {
                min_time_between_calls: Duration::from_millis(50),
                ..Default::default()
            },
            ..Default::default()
        };
        let p = c.validate();
        for name in [
            "consumer.streams",
            "consumer.renew_interval",
            "consumer.initial_timestamp",
            "consumer.polling.min_time_between_calls",
        ] {
            assert!(
                p.iter().any(|m| m.starts_with(name)),
                "{name} missing in {p:?}"
            );
        }
    }

    #[test]
    fn serde_round_trip_with_humantime() {
        let c = ConsumerConfig {
            application_name: "app".into(),
            streams: vec!["a".into()],
            retrieval: RetrievalMode::Fanout,
            initial_position: InitialPosition::TrimHorizon,
            ..Default::default()
        };
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"failover_time\":\"10s\""), "{json}");
        assert!(json.contains("\"TRIM_HORIZON\""), "{json}");
        let back: ConsumerConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        let partial: ConsumerConfig = serde_json::from_str(
            r#"{"application_name":"x","failover_time":"3s","retrieval":"fanout"}"#,
        )
        .unwrap();
        assert_eq!(partial.failover_time, Duration::from_secs(3));
        assert_eq!(partial.retrieval, RetrievalMode::Fanout);
        assert_eq!(partial.polling.max_records, 10_000);
    }
}
