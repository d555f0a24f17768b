//! The S3 lake of Flowline (DESIGN.md section 2): what the archiver writes and how.
//!
//! - [`LakeRecord`] routes a record to its dataset (raw, curated orders or metrics,
//!   errors) and Hive partition; [`layout`] names the object.
//! - [`LakeWriter`] buffers records per shard with Firehose-style hints (size, age),
//!   within a memory budget, encodes each buffer as one object ([`encode`]: Parquet
//!   with Snappy, or gzip JSON Lines) and uploads it through an [`ObjectSink`]
//!   ([`S3Uploader`]: PutObject or multipart). [`LakeWriter::safe_position`] says how
//!   far each shard may be checkpointed.
//! - [`FirehoseDelivery`] is the managed alternative: PutRecordBatch with per-record
//!   retries and acks.
//! - Retries happen in this crate only (backoff with jitter); the SDK clients given to
//!   it are rebuilt with their own retries off.

mod config;
pub mod encode;
mod error;
mod firehose;
mod item;
pub mod layout;
mod metrics;
mod retry;
mod s3;
mod state;
mod writer;

pub use config::{
    BufferConfig, BufferHints, FirehoseConfig, LakeConfig, Problem, RetryConfig, UploadConfig,
};
pub use error::LakeError;
pub use firehose::{
    FirehoseDelivery, MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_RECORD_BYTES, RecordAck,
};
pub use item::{ARCHIVER_STAGE, LakeRecord, Payload, RecordMeta, archiver_error_types};
pub use layout::{Dataset, Partition, Position, PrefixKind, object_key};
pub use metrics::{FirehoseMetrics, LakeMetrics};
pub use s3::{ObjectSink, S3Uploader};
pub use state::FlushReason;
pub use writer::LakeWriter;

#[cfg(test)]
mod writer_tests;
