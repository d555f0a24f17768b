//! The producer's own metrics; PutRecords latency, retries and buffer fill come from the
//! Kinesis library's `ProducerMetrics` in the same registry.

use prometheus::{IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    /// Events acknowledged by Kinesis, by stream.
    pub events: IntCounterVec,
    /// Payload bytes acknowledged, by stream.
    pub bytes: IntCounterVec,
    /// Events that finally failed, by stream and bounded reason.
    pub failures: IntCounterVec,
    /// Deliberately bad records sent (`--bad-record-ratio`), by kind.
    pub bad_records: IntCounterVec,
    /// Replay input lines that failed validation and were skipped.
    pub skipped_lines: IntCounterVec,
}

impl Metrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let counter =
            |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntCounterVec> {
                let c = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        Ok(Self {
            events: counter(
                "flowline_producer_events_total",
                "Events acknowledged by Kinesis.",
                &["stream"],
            )?,
            bytes: counter(
                "flowline_producer_event_bytes_total",
                "Payload bytes of events acknowledged by Kinesis.",
                &["stream"],
            )?,
            failures: counter(
                "flowline_producer_failures_total",
                "Events that could not be delivered, by reason.",
                &["stream", "reason"],
            )?,
            bad_records: counter(
                "flowline_producer_bad_records_total",
                "Deliberately bad records sent, by kind.",
                &["kind"],
            )?,
            skipped_lines: counter(
                "flowline_producer_replay_skipped_lines_total",
                "Replay lines rejected by validation, by error type.",
                &["error_type"],
            )?,
        })
    }

    /// Creates the failure series at 0, so alert rules and dashboards read a zero rate
    /// rather than "no data" before the first failure.
    pub fn init_series(&self, streams: &[&str]) {
        let reasons = flowline_kinesis::FailureReason::ALL.map(|r| r.as_str());
        for stream in streams {
            self.events.with_label_values(&[stream]);
            self.bytes.with_label_values(&[stream]);
            for reason in reasons.iter().chain(&["closed", "other"]) {
                self.failures.with_label_values(&[stream, reason]);
            }
        }
        use flowline_model::error_types::{
            BAD_FIELD, BAD_JSON, MISSING_FIELD, OVERSIZED, UNKNOWN_TYPE,
        };
        for error_type in [BAD_JSON, MISSING_FIELD, BAD_FIELD, OVERSIZED, UNKNOWN_TYPE] {
            self.skipped_lines.with_label_values(&[error_type]);
        }
    }
}
