//! The indexer's own metrics. Bulk requests (latency, size, documents indexed per index
//! family, item failures by class, retries, buffered documents) come from the bulk sink's
//! `BulkMetrics`, dead letters from `DeadLetterMetrics`, reading from the consumer, all in
//! the same registry.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    /// Records read, by input family and outcome (`queued` or `invalid`).
    pub records: IntCounterVec,
    /// Acknowledgement time minus event time (orders) or window end (metrics), by family.
    pub end_to_end: HistogramVec,
}

impl Metrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let records = IntCounterVec::new(
            Opts::new(
                "flowline_indexer_records_total",
                "Records read from the input streams, by index family and outcome.",
            ),
            &["family", "outcome"],
        )?;
        // 10 ms to about 5.5 min in doublings: covers a live pipeline and a catch-up.
        let buckets = prometheus::exponential_buckets(0.01, 2.0, 16)?;
        let end_to_end = HistogramVec::new(
            HistogramOpts::new(
                "flowline_indexer_end_to_end_latency_seconds",
                "Time from event time (orders) or window end (metrics) until the document is indexed.",
            )
            .buckets(buckets),
            &["family"],
        )?;
        registry.register(Box::new(records.clone()))?;
        registry.register(Box::new(end_to_end.clone()))?;
        Ok(Self {
            records,
            end_to_end,
        })
    }
}
