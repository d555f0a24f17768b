//! Consumer metrics. Labels are bounded: `stream` by the configured streams, `shard` by the
//! shards this worker holds (series are removed when a lease goes), `kind` by a fixed set.

use prometheus::{Gauge, GaugeVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::Result;
use crate::error::FailureReason;

#[derive(Clone)]
pub struct ConsumerMetrics {
    pub records_read: IntCounterVec,
    pub bytes_read: IntCounterVec,
    pub records_skipped: IntCounterVec,
    pub behind_latest: GaugeVec,
    pub leases_held: IntGauge,
    pub lease_takes: IntCounter,
    pub lease_steals: IntCounter,
    pub lease_losses: IntCounter,
    pub lease_releases: IntCounter,
    pub checkpoints: IntCounter,
    pub checkpoint_failures: IntCounter,
    pub read_errors: IntCounterVec,
    pub lease_table_errors: IntCounter,
    pub last_take_round: Gauge,
}

fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    c: C,
) -> Result<C> {
    registry
        .register(Box::new(c.clone()))
        .map_err(|e| crate::Error::Config(vec![format!("consumer metrics: {e}")]))?;
    Ok(c)
}

impl ConsumerMetrics {
    pub fn new(registry: &Registry) -> Result<Self> {
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        Ok(Self {
            records_read: register(
                registry,
                counter_vec(
                    "flowline_kinesis_consumer_records_read_total",
                    "User records (after deaggregation) delivered to processors.",
                    &["stream"],
                ),
            )?,
            bytes_read: register(
                registry,
                counter_vec(
                    "flowline_kinesis_consumer_bytes_read_total",
                    "Bytes of Kinesis record data read.",
                    &["stream"],
                ),
            )?,
            records_skipped: register(
                registry,
                counter_vec(
                    "flowline_kinesis_consumer_records_skipped_total",
                    "User records skipped: outside the shard's hash key range (after a split) or at/before the checkpoint.",
                    &["stream", "reason"],
                ),
            )?,
            behind_latest: register(
                registry,
                GaugeVec::new(
                    Opts::new(
                        "flowline_kinesis_consumer_behind_latest_seconds",
                        "How far the processor is behind the tip of the shard, in seconds, per held shard: MillisBehindLatest of the read it last got, plus the time that read waited for it (growing while the processor is too slow to take the next).",
                    ),
                    &["stream", "shard"],
                )
                .expect("valid metric"),
            )?,
            leases_held: register(
                registry,
                IntGauge::new(
                    "flowline_kinesis_consumer_leases_held",
                    "Leases this worker holds.",
                )
                .expect("valid metric"),
            )?,
            lease_takes: register(
                registry,
                counter(
                    "flowline_kinesis_consumer_lease_takes_total",
                    "Leases taken (free, expired or stolen).",
                ),
            )?,
            lease_steals: register(
                registry,
                counter(
                    "flowline_kinesis_consumer_lease_steals_total",
                    "Leases stolen from a more loaded worker.",
                ),
            )?,
            lease_losses: register(
                registry,
                counter(
                    "flowline_kinesis_consumer_lease_losses_total",
                    "Leases lost (taken by another worker or not renewed within the failover time).",
                ),
            )?,
            lease_releases: register(
                registry,
                counter(
                    "flowline_kinesis_consumer_lease_releases_total",
                    "Leases released (shutdown or shard end).",
                ),
            )?,
            checkpoints: register(
                registry,
                counter(
                    "flowline_kinesis_consumer_checkpoints_total",
                    "Checkpoints written.",
                ),
            )?,
            checkpoint_failures: register(
                registry,
                counter(
                    "flowline_kinesis_consumer_checkpoint_failures_total",
                    "Checkpoint writes that failed.",
                ),
            )?,
            read_errors: register(
                registry,
                counter_vec(
                    "flowline_kinesis_consumer_read_errors_total",
                    "Failed shard reads by kind (throttled, expired_iterator, server_error, ...).",
                    &["kind"],
                ),
            )?,
            lease_table_errors: register(
                registry,
                counter(
                    "flowline_kinesis_consumer_lease_table_errors_total",
                    "Failed lease table calls.",
                ),
            )?,
            last_take_round: register(
                registry,
                Gauge::new(
                    "flowline_kinesis_consumer_last_take_round_timestamp_seconds",
                    "Unix time of the last successful lease table scan.",
                )
                .expect("valid metric"),
            )?,
        })
    }

    /// Creates the series of a consumed stream and the fixed read-error kinds at 0, so alert
    /// rules and dashboards read a zero rate rather than "no data" before the first event.
    pub fn init_series(&self, streams: &[&str]) {
        let kinds = FailureReason::ALL.map(FailureReason::as_str);
        let extra = [
            "expired_iterator",
            "corrupt_aggregate",
            "subscription",
            "subscription_in_use",
        ];
        for kind in kinds.iter().chain(extra.iter()) {
            self.read_errors.with_label_values(&[kind]);
        }
        for stream in streams {
            self.records_read.with_label_values(&[stream]);
            self.bytes_read.with_label_values(&[stream]);
            for reason in ["out_of_range", "checkpointed"] {
                self.records_skipped.with_label_values(&[stream, reason]);
            }
        }
    }

    pub fn forget_shard(&self, stream: &str, shard: &str) {
        let _ = self.behind_latest.remove_label_values(&[stream, shard]);
    }
}
