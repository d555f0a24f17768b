//! The archiver's own metrics (the lake writer's and Firehose's live in flowline-lake).
//! Labels are bounded: `kind` is an [`InputKind`], `error_type` one of the archiver's
//! own error types, `mode` lake|firehose.

use flowline_lake::archiver_error_types;
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use crate::routing::InputKind;

/// `error_type` of a record Firehose did not accept after every retry.
pub const DELIVERY_ERROR: &str = flowline_model::error_types::DELIVERY_FAILED;

const REJECTION_TYPES: [&str; 3] = [
    archiver_error_types::CONVERSION,
    archiver_error_types::UNFRAMEABLE,
    DELIVERY_ERROR,
];

#[derive(Clone, Debug)]
pub struct ArchiverMetrics {
    pub records_read: IntCounterVec,
    pub records_rejected: IntCounterVec,
    pub duplicates_skipped: IntCounter,
    pub checkpoints: IntCounter,
    pub checkpoint_failures: IntCounter,
}

impl ArchiverMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let m = ArchiverMetrics {
            records_read: IntCounterVec::new(
                Opts::new(
                    "flowline_archiver_records_read_total",
                    "Records read from Kinesis, by what the stream holds and delivery mode.",
                ),
                &["kind", "mode"],
            )?,
            records_rejected: IntCounterVec::new(
                Opts::new(
                    "flowline_archiver_records_rejected_total",
                    "Records filed under errors/archiver/ instead of their dataset.",
                ),
                &["error_type"],
            )?,
            duplicates_skipped: IntCounter::new(
                "flowline_archiver_duplicates_skipped_total",
                "Records delivered again by the consumer that were already buffered.",
            )?,
            checkpoints: IntCounter::new(
                "flowline_archiver_checkpoints_total",
                "Checkpoints written after the records before them reached S3 or Firehose.",
            )?,
            checkpoint_failures: IntCounter::new(
                "flowline_archiver_checkpoint_failures_total",
                "Checkpoint writes that failed (retried with the next batch).",
            )?,
        };
        registry.register(Box::new(m.records_read.clone()))?;
        registry.register(Box::new(m.records_rejected.clone()))?;
        registry.register(Box::new(m.duplicates_skipped.clone()))?;
        registry.register(Box::new(m.checkpoints.clone()))?;
        registry.register(Box::new(m.checkpoint_failures.clone()))?;
        for k in InputKind::ALL {
            for mode in ["lake", "firehose"] {
                m.records_read.with_label_values(&[k.as_str(), mode]);
            }
        }
        for t in REJECTION_TYPES {
            m.records_rejected.with_label_values(&[t]);
        }
        Ok(m)
    }

    pub fn rejected(&self, error_type: &str) {
        let label = REJECTION_TYPES
            .into_iter()
            .find(|t| *t == error_type)
            .unwrap_or("other");
        self.records_rejected.with_label_values(&[label]).inc();
    }
}
