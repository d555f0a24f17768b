//! Kinesis Data Streams: a KPL-style producer and a KCL-compatible consumer.
//!
//! - [`agg`]: the KPL aggregation format (aggregate and deaggregate).
//! - [`shards`]: partition key hashing and shard hash-key ranges.
//! - [`producer`]: batched, rate-limited, retrying PutRecords with per-record acknowledgements.
//! - [`consumer`]: lease table, lease coordination, shard readers and the record processor trait.

pub mod agg;
pub mod consumer;
mod error;
pub mod producer;
pub mod shards;

pub use error::{ApiError, Error, FailureReason, PutError, Result};
