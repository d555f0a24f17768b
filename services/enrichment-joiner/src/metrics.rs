//! Metrics of the enrichment-joiner, all defined here (the join core's own gauges and
//! counters, `flowline_join_*`, come from `flowline_join::JoinMetrics`; dead letters from
//! `flowline_pipeline::DeadLetterMetrics`).

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    exponential_buckets,
};

pub struct Metrics {
    /// By input stream (three configured names: bounded).
    pub records_in: IntCounterVec,
    /// Acknowledged by Kinesis, by join status.
    pub orders_out: IntCounterVec,
    /// By operation (a fixed set of names in `state.rs`).
    pub dynamodb_seconds: HistogramVec,
    /// Event-time watermark per input stream (min over its shards, all copies), Unix seconds.
    pub stream_watermark: prometheus::GaugeVec,
    /// Event-time watermark of each shard this copy owns (labels removed with the lease).
    pub shard_watermark: prometheus::GaugeVec,
    /// Wall clock minus the join watermark.
    pub watermark_lag: prometheus::Gauge,
    pub join_watermark: prometheus::Gauge,
    pub owned_shards: IntGauge,
    /// 1 while this copy reads every customer and address shard (cached versions are then
    /// trusted beyond the watermark), else 0.
    pub exclusive: IntGauge,
    pub reference_loads: IntCounter,
    pub reference_failures: IntCounter,
    pub reference_items: IntGauge,
    pub reference_promos: IntGauge,
    /// Time of one emission round (flush, publish, advance, emit, confirm).
    pub round_seconds: Histogram,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    c: T,
) -> prometheus::Result<T> {
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

impl Metrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Metrics> {
        let p = "flowline_enrichment_joiner_";
        Ok(Metrics {
            records_in: reg(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        format!("{p}records_in_total"),
                        "Records read, by input stream.",
                    ),
                    &["stream"],
                )?,
            )?,
            orders_out: reg(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        format!("{p}orders_out_total"),
                        "Enriched orders acknowledged by the output stream, by join status.",
                    ),
                    &["join_status"],
                )?,
            )?,
            dynamodb_seconds: reg(
                registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        format!("{p}dynamodb_request_seconds"),
                        "Latency of state table requests, by operation.",
                    )
                    .buckets(exponential_buckets(0.001, 2.0, 14)?),
                    &["operation"],
                )?,
            )?,
            stream_watermark: reg(
                registry,
                prometheus::GaugeVec::new(
                    Opts::new(
                        format!("{p}stream_watermark_seconds"),
                        "Event-time watermark of each input stream over all copies (Unix seconds).",
                    ),
                    &["stream"],
                )?,
            )?,
            shard_watermark: reg(
                registry,
                prometheus::GaugeVec::new(
                    Opts::new(
                        format!("{p}shard_watermark_seconds"),
                        "Event-time watermark of each owned input shard (Unix seconds).",
                    ),
                    &["stream", "shard_id"],
                )?,
            )?,
            watermark_lag: reg(
                registry,
                prometheus::Gauge::new(
                    format!("{p}watermark_lag_seconds"),
                    "Wall clock minus the join watermark.",
                )?,
            )?,
            join_watermark: reg(
                registry,
                prometheus::Gauge::new(
                    format!("{p}join_watermark_seconds"),
                    "The join watermark (Unix seconds).",
                )?,
            )?,
            owned_shards: reg(
                registry,
                IntGauge::new(format!("{p}owned_shards"), "Input shards this copy reads.")?,
            )?,
            exclusive: reg(
                registry,
                IntGauge::new(
                    format!("{p}exclusive_entity_reader"),
                    "1 while this copy reads every customer and address shard, else 0.",
                )?,
            )?,
            reference_loads: reg(
                registry,
                IntCounter::new(
                    format!("{p}reference_loads_total"),
                    "Reference data snapshots loaded from S3.",
                )?,
            )?,
            reference_failures: reg(
                registry,
                IntCounter::new(
                    format!("{p}reference_refresh_failures_total"),
                    "Failed reference data loads (the last good copy stays in use).",
                )?,
            )?,
            reference_items: reg(
                registry,
                IntGauge::new(
                    format!("{p}reference_items"),
                    "Items in the reference data.",
                )?,
            )?,
            reference_promos: reg(
                registry,
                IntGauge::new(
                    format!("{p}reference_promos"),
                    "Promos in the reference data.",
                )?,
            )?,
            round_seconds: reg(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        format!("{p}emit_round_seconds"),
                        "Duration of one emission round.",
                    )
                    .buckets(exponential_buckets(0.005, 2.0, 12)?),
                )?,
            )?,
        })
    }
}
