//! Bulk sink metrics. Register once per registry with [`BulkMetrics::register`] and share
//! the handle between sinks: gauges move by deltas, so several sinks add up. Labels are
//! bounded: the index family (never the daily index) and fixed failure classes.

use prometheus::{
    Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry, exponential_buckets,
};

use super::naming::IndexFamily;
use super::outcome::FailureKind;

#[derive(Clone)]
pub struct BulkMetrics {
    pub(crate) indexed: IntCounterVec,
    pub(crate) superseded: IntCounterVec,
    pub(crate) rejected: IntCounterVec,
    pub(crate) failed: IntCounterVec,
    pub(crate) item_failures: IntCounterVec,
    pub(crate) retries: IntCounterVec,
    pub(crate) requests: IntCounterVec,
    pub(crate) request_duration: Histogram,
    pub(crate) request_bytes: Histogram,
    pub(crate) request_actions: Histogram,
    pub(crate) buffered_docs: IntGauge,
    pub(crate) in_flight: IntGauge,
}

impl BulkMetrics {
    /// Creates the metrics and registers them into `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self::unregistered();
        for c in [
            &m.indexed,
            &m.superseded,
            &m.rejected,
            &m.failed,
            &m.item_failures,
            &m.retries,
            &m.requests,
        ] {
            registry.register(Box::new(c.clone()))?;
        }
        for h in [&m.request_duration, &m.request_bytes, &m.request_actions] {
            registry.register(Box::new(h.clone()))?;
        }
        registry.register(Box::new(m.buffered_docs.clone()))?;
        registry.register(Box::new(m.in_flight.clone()))?;
        m.init_series();
        Ok(m)
    }

    /// Creates every series at 0, so alert rules and dashboards read a zero rate rather
    /// than "no data" before the first document or failure.
    fn init_series(&self) {
        for family in [IndexFamily::Orders, IndexFamily::OrderMetrics] {
            let f = family.as_str();
            self.indexed.with_label_values(&[f]);
            self.superseded.with_label_values(&[f]);
            for reason in ["deadline", "request_rejected"] {
                self.failed.with_label_values(&[f, reason]);
            }
            for kind in FailureKind::ALL.into_iter().filter(|k| !k.is_retriable()) {
                self.rejected.with_label_values(&[f, kind.as_str()]);
            }
        }
        for kind in FailureKind::ALL {
            self.item_failures.with_label_values(&[kind.as_str()]);
        }
        for reason in ["item", "request"] {
            self.retries.with_label_values(&[reason]);
        }
    }

    /// Metrics that are recorded but exported nowhere (tests, tools).
    pub fn unregistered() -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition")
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
                .expect("valid metric definition")
        };
        let gauge = |name: &str, help: &str| {
            IntGauge::with_opts(Opts::new(name, help)).expect("valid metric definition")
        };
        Self {
            indexed: counter(
                "flowline_opensearch_documents_indexed_total",
                "Documents written by bulk requests.",
                &["family"],
            ),
            superseded: counter(
                "flowline_opensearch_documents_superseded_total",
                "Documents not written because an equal or newer external version is stored.",
                &["family"],
            ),
            rejected: counter(
                "flowline_opensearch_documents_rejected_total",
                "Documents refused by OpenSearch for good (to be dead-lettered), by failure class.",
                &["family", "kind"],
            ),
            failed: counter(
                "flowline_opensearch_documents_failed_total",
                "Documents given up without an answer, by reason (deadline, request_rejected).",
                &["family", "reason"],
            ),
            item_failures: counter(
                "flowline_opensearch_bulk_item_failures_total",
                "Failed items in bulk responses, retried or not, by failure class.",
                &["kind"],
            ),
            retries: counter(
                "flowline_opensearch_bulk_retries_total",
                "Documents scheduled for another attempt, by what failed (item or request).",
                &["reason"],
            ),
            requests: counter(
                "flowline_opensearch_bulk_requests_total",
                "Bulk requests by outcome (success, throttled, server_error, unreachable, \
                 client_error, too_large, bad_response).",
                &["outcome"],
            ),
            request_duration: histogram(
                "flowline_opensearch_bulk_request_duration_seconds",
                "Duration of bulk requests, failed ones included.",
                vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ],
            ),
            request_bytes: histogram(
                "flowline_opensearch_bulk_request_size_bytes",
                "Body size of bulk requests.",
                exponential_buckets(1024.0, 4.0, 9).expect("valid buckets"),
            ),
            request_actions: histogram(
                "flowline_opensearch_bulk_request_actions",
                "Documents per bulk request.",
                exponential_buckets(1.0, 4.0, 9).expect("valid buckets"),
            ),
            buffered_docs: gauge(
                "flowline_opensearch_sink_buffered_documents",
                "Documents held by bulk sinks: queued, in flight or waiting for a retry.",
            ),
            in_flight: gauge(
                "flowline_opensearch_sink_in_flight_requests",
                "Bulk requests in flight.",
            ),
        }
    }

    pub(crate) fn item_failed(&self, kind: FailureKind) {
        self.item_failures.with_label_values(&[kind.as_str()]).inc();
    }

    pub(crate) fn count(&self, vec: &IntCounterVec, family: IndexFamily) {
        vec.with_label_values(&[family.as_str()]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_conventional_names_once() {
        let registry = Registry::new();
        let m = BulkMetrics::register(&registry).unwrap();
        m.count(&m.indexed, IndexFamily::Orders);
        m.item_failed(FailureKind::Mapping);
        let names: Vec<String> = registry
            .gather()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        assert!(names.iter().all(|n| n.starts_with("flowline_opensearch_")));
        assert!(names.contains(&"flowline_opensearch_documents_indexed_total".to_string()));
        assert!(
            BulkMetrics::register(&registry).is_err(),
            "second registration"
        );
    }
}
