//! Every metric of the lake, in one place. Labels are bounded: `kind` is
//! raw|curated|errors, `reason` a flush reason, `outcome` retriable|fatal.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

use crate::layout::PrefixKind;

#[derive(Clone, Debug)]
pub struct LakeMetrics {
    pub buffered_records: IntGauge,
    pub buffered_bytes: IntGauge,
    /// Age of the oldest open buffer, whole seconds.
    pub oldest_buffer_age_seconds: IntGauge,
    pub flushes: IntCounterVec,
    pub objects_written: IntCounterVec,
    pub object_bytes_written: IntCounterVec,
    pub records_written: IntCounterVec,
    pub upload_seconds: HistogramVec,
    pub upload_retries: IntCounterVec,
    pub upload_failures: IntCounterVec,
    pub backpressure_waits: IntCounter,
}

impl LakeMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let kind = &["kind"];
        let m = LakeMetrics {
            buffered_records: IntGauge::new(
                "flowline_lake_buffered_records",
                "Records held in open buffers.",
            )?,
            buffered_bytes: IntGauge::new(
                "flowline_lake_buffered_bytes",
                "Input bytes held in open buffers or being uploaded.",
            )?,
            oldest_buffer_age_seconds: IntGauge::new(
                "flowline_lake_oldest_buffer_age_seconds",
                "Age of the oldest open buffer.",
            )?,
            flushes: IntCounterVec::new(
                Opts::new(
                    "flowline_lake_flushes_total",
                    "Shard buffer cuts by reason.",
                ),
                &["reason"],
            )?,
            objects_written: IntCounterVec::new(
                Opts::new(
                    "flowline_lake_objects_written_total",
                    "Objects uploaded to S3.",
                ),
                kind,
            )?,
            object_bytes_written: IntCounterVec::new(
                Opts::new(
                    "flowline_lake_object_bytes_written_total",
                    "Encoded bytes uploaded to S3.",
                ),
                kind,
            )?,
            records_written: IntCounterVec::new(
                Opts::new(
                    "flowline_lake_records_written_total",
                    "Records in uploaded objects.",
                ),
                kind,
            )?,
            upload_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "flowline_lake_upload_duration_seconds",
                    "Time to upload one object, retries included.",
                )
                .buckets(vec![
                    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                ]),
                kind,
            )?,
            upload_retries: IntCounterVec::new(
                Opts::new(
                    "flowline_lake_upload_retries_total",
                    "S3 calls tried again after a retriable error.",
                ),
                kind,
            )?,
            upload_failures: IntCounterVec::new(
                Opts::new(
                    "flowline_lake_upload_failures_total",
                    "Objects that could not be uploaded.",
                ),
                kind,
            )?,
            backpressure_waits: IntCounter::new(
                "flowline_lake_backpressure_waits_total",
                "Times add waited for the memory budget.",
            )?,
        };
        registry.register(Box::new(m.buffered_records.clone()))?;
        registry.register(Box::new(m.buffered_bytes.clone()))?;
        registry.register(Box::new(m.oldest_buffer_age_seconds.clone()))?;
        registry.register(Box::new(m.flushes.clone()))?;
        registry.register(Box::new(m.objects_written.clone()))?;
        registry.register(Box::new(m.object_bytes_written.clone()))?;
        registry.register(Box::new(m.records_written.clone()))?;
        registry.register(Box::new(m.upload_seconds.clone()))?;
        registry.register(Box::new(m.upload_retries.clone()))?;
        registry.register(Box::new(m.upload_failures.clone()))?;
        registry.register(Box::new(m.backpressure_waits.clone()))?;
        // Pre-create every label so dashboards see zeros rather than gaps.
        for k in PrefixKind::ALL {
            let k = [k.as_str()];
            m.objects_written.with_label_values(&k);
            m.object_bytes_written.with_label_values(&k);
            m.records_written.with_label_values(&k);
            m.upload_retries.with_label_values(&k);
            m.upload_failures.with_label_values(&k);
        }
        Ok(m)
    }

    pub(crate) fn upload_timer(&self, kind: PrefixKind) -> Histogram {
        self.upload_seconds.with_label_values(&[kind.as_str()])
    }
}

/// Firehose delivery metrics.
#[derive(Clone, Debug)]
pub struct FirehoseMetrics {
    pub records_delivered: IntCounter,
    pub records_failed: IntCounter,
    pub record_retries: IntCounter,
    pub batch_seconds: Histogram,
}

impl FirehoseMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let m = FirehoseMetrics {
            records_delivered: IntCounter::new(
                "flowline_firehose_records_delivered_total",
                "Records accepted by Firehose.",
            )?,
            records_failed: IntCounter::new(
                "flowline_firehose_records_failed_total",
                "Records given up on after all attempts.",
            )?,
            record_retries: IntCounter::new(
                "flowline_firehose_record_retries_total",
                "Records sent again after a failure.",
            )?,
            batch_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "flowline_firehose_put_record_batch_duration_seconds",
                    "Duration of one PutRecordBatch call.",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
            )?,
        };
        registry.register(Box::new(m.records_delivered.clone()))?;
        registry.register(Box::new(m.records_failed.clone()))?;
        registry.register(Box::new(m.record_retries.clone()))?;
        registry.register(Box::new(m.batch_seconds.clone()))?;
        Ok(m)
    }
}
