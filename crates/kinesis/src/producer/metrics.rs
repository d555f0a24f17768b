//! Producer metrics. Register once per registry with [`ProducerMetrics::register`] and share the
//! handle between producers; each producer labels its series with its stream.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::error::FailureReason;

#[derive(Clone)]
pub struct ProducerMetrics {
    user_records_put: IntCounterVec,
    user_records_failed: IntCounterVec,
    kinesis_records_put: IntCounterVec,
    bytes_put: IntCounterVec,
    retries: IntCounterVec,
    put_latency: HistogramVec,
    buffered_records: IntGaugeVec,
    buffered_bytes: IntGaugeVec,
    in_flight: IntGaugeVec,
}

impl ProducerMetrics {
    /// Creates the metrics and registers them into `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self::unregistered();
        registry.register(Box::new(m.user_records_put.clone()))?;
        registry.register(Box::new(m.user_records_failed.clone()))?;
        registry.register(Box::new(m.kinesis_records_put.clone()))?;
        registry.register(Box::new(m.bytes_put.clone()))?;
        registry.register(Box::new(m.retries.clone()))?;
        registry.register(Box::new(m.put_latency.clone()))?;
        registry.register(Box::new(m.buffered_records.clone()))?;
        registry.register(Box::new(m.buffered_bytes.clone()))?;
        registry.register(Box::new(m.in_flight.clone()))?;
        Ok(m)
    }

    /// Metrics that are recorded but exported nowhere (tests, tools).
    pub fn unregistered() -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition")
        };
        let gauge = |name: &str, help: &str| {
            IntGaugeVec::new(Opts::new(name, help), &["stream"]).expect("valid metric definition")
        };
        Self {
            user_records_put: counter(
                "flowline_kinesis_producer_user_records_put_total",
                "User records acknowledged by Kinesis.",
                &["stream"],
            ),
            user_records_failed: counter(
                "flowline_kinesis_producer_user_records_failed_total",
                "User records that finally failed, by reason (expired = TTL ran out while retrying).",
                &["stream", "reason"],
            ),
            kinesis_records_put: counter(
                "flowline_kinesis_producer_kinesis_records_put_total",
                "Kinesis records (aggregated or not) acknowledged by Kinesis.",
                &["stream"],
            ),
            bytes_put: counter(
                "flowline_kinesis_producer_put_bytes_total",
                "Bytes (data plus partition keys) of acknowledged Kinesis records.",
                &["stream"],
            ),
            retries: counter(
                "flowline_kinesis_producer_retries_total",
                "Kinesis records scheduled for another attempt, by reason.",
                &["stream", "reason"],
            ),
            put_latency: HistogramVec::new(
                HistogramOpts::new(
                    "flowline_kinesis_producer_put_records_duration_seconds",
                    "Duration of PutRecords calls, failed ones included.",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
                &["stream"],
            )
            .expect("valid metric definition"),
            buffered_records: gauge(
                "flowline_kinesis_producer_buffered_user_records",
                "User records accepted and not yet acknowledged or failed.",
            ),
            buffered_bytes: gauge(
                "flowline_kinesis_producer_buffered_bytes",
                "Bytes of user records accepted and not yet acknowledged or failed.",
            ),
            in_flight: gauge(
                "flowline_kinesis_producer_in_flight_requests",
                "PutRecords calls in progress.",
            ),
        }
    }

    pub(crate) fn for_stream(&self, stream: &str) -> StreamMetrics {
        // Failure series exist at 0 from the start, so alert rules and dashboards read a
        // zero rate rather than "no data" until the first failure.
        for reason in FailureReason::ALL {
            if reason.is_retriable() {
                self.retries.with_label_values(&[stream, reason.as_str()]);
            } else {
                self.user_records_failed
                    .with_label_values(&[stream, reason.as_str()]);
            }
        }
        self.user_records_failed
            .with_label_values(&[stream, "expired"]);
        StreamMetrics {
            stream: stream.to_owned(),
            all: self.clone(),
            user_records_put: self.user_records_put.with_label_values(&[stream]),
            kinesis_records_put: self.kinesis_records_put.with_label_values(&[stream]),
            bytes_put: self.bytes_put.with_label_values(&[stream]),
            put_latency: self.put_latency.with_label_values(&[stream]),
            buffered_records: self.buffered_records.with_label_values(&[stream]),
            buffered_bytes: self.buffered_bytes.with_label_values(&[stream]),
            in_flight: self.in_flight.with_label_values(&[stream]),
        }
    }
}

/// The series of one stream, resolved once so the hot path does no label lookups.
pub(crate) struct StreamMetrics {
    stream: String,
    all: ProducerMetrics,
    pub user_records_put: IntCounter,
    pub kinesis_records_put: IntCounter,
    pub bytes_put: IntCounter,
    pub put_latency: prometheus::Histogram,
    pub buffered_records: IntGauge,
    pub buffered_bytes: IntGauge,
    pub in_flight: IntGauge,
}

impl StreamMetrics {
    /// `reason` is a [`FailureReason`] label or `expired`.
    pub fn user_records_failed(&self, reason: &str, n: u64) {
        self.all
            .user_records_failed
            .with_label_values(&[&self.stream, reason])
            .inc_by(n);
    }

    pub fn retry(&self, reason: FailureReason) {
        self.all
            .retries
            .with_label_values(&[&self.stream, reason.as_str()])
            .inc();
    }
}
