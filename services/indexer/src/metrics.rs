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
        // Fine between 1 and 20 s, where a live pipeline's orders land (doublings there
        // made a p50 of 4.6 s read as 7.5 s), coarse up to a catch-up's minutes.
        let buckets = vec![
            0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0,
            12.5, 15.0, 20.0, 30.0, 45.0, 60.0, 75.0, 90.0, 120.0, 180.0, 300.0, 600.0,
        ];
        let end_to_end = HistogramVec::new(
            HistogramOpts::new(
                "flowline_indexer_end_to_end_latency_seconds",
                "Time from event time (orders) or window end (metrics) until the document is indexed; join_status is an order's (a partial one waited for the join timeout), empty for metrics.",
            )
            .buckets(buckets),
            &["family", "join_status"],
        )?;
        registry.register(Box::new(records.clone()))?;
        registry.register(Box::new(end_to_end.clone()))?;
        Ok(Self {
            records,
            end_to_end,
        })
    }
}
