//! Every metric of the aggregator, `flowline_aggregator_*`, with bounded labels.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    /// `outcome`: counted, duplicate, skipped (already in restored state), late, invalid.
    pub records: IntCounterVec,
    pub windows_open: IntGauge,
    pub windows_emitted: IntCounter,
    pub metrics_emitted: IntCounter,
    pub revisions: IntCounter,
    pub late_records: IntCounter,
    pub watermark_lag: prometheus::Gauge,
    pub checkpoint_seconds: Histogram,
    pub checkpoint_bytes: Histogram,
}

impl Metrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            records: IntCounterVec::new(
                Opts::new(
                    "flowline_aggregator_records_total",
                    "Enriched orders read, by outcome.",
                ),
                &["outcome"],
            )?,
            windows_open: IntGauge::new(
                "flowline_aggregator_windows_open",
                "Windows with state held (open, or emitted and within the allowed lateness).",
            )?,
            windows_emitted: IntCounter::new(
                "flowline_aggregator_windows_emitted_total",
                "Window emissions (first and revised) by this copy.",
            )?,
            metrics_emitted: IntCounter::new(
                "flowline_aggregator_metrics_emitted_total",
                "Window metric records written to the output stream by this copy.",
            )?,
            revisions: IntCounter::new(
                "flowline_aggregator_revisions_total",
                "Window emissions with a revision above 1 (late updates).",
            )?,
            late_records: IntCounter::new(
                "flowline_aggregator_late_records_total",
                "Orders beyond the allowed lateness, sent to dead-letters.",
            )?,
            watermark_lag: prometheus::Gauge::new(
                "flowline_aggregator_watermark_lag_seconds",
                "Wall clock minus the global watermark.",
            )?,
            checkpoint_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "flowline_aggregator_state_checkpoint_seconds",
                    "Latency of one state transaction (window partials and shard position).",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
            )?,
            checkpoint_bytes: Histogram::with_opts(
                HistogramOpts::new(
                    "flowline_aggregator_state_checkpoint_bytes",
                    "Bytes of window state written by one state transaction.",
                )
                .buckets(prometheus::exponential_buckets(256.0, 4.0, 9)?),
            )?,
        };
        registry.register(Box::new(m.records.clone()))?;
        registry.register(Box::new(m.windows_open.clone()))?;
        registry.register(Box::new(m.windows_emitted.clone()))?;
        registry.register(Box::new(m.metrics_emitted.clone()))?;
        registry.register(Box::new(m.revisions.clone()))?;
        registry.register(Box::new(m.late_records.clone()))?;
        registry.register(Box::new(m.watermark_lag.clone()))?;
        registry.register(Box::new(m.checkpoint_seconds.clone()))?;
        registry.register(Box::new(m.checkpoint_bytes.clone()))?;
        Ok(m)
    }
}
