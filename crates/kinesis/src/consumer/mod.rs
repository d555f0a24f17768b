//! KCL-compatible consumer: leases in DynamoDB shared out among workers, one reader and one
//! processor per held shard.
//!
//! - [`Consumer`] (the KCL's Scheduler): create with [`Consumer::new`], drive with
//!   [`Consumer::run`], watch readiness and per-shard lag with [`Consumer::status`].
//! - [`ShardRecordProcessor`] / [`ShardRecordProcessorFactory`]: the application's code.
//! - [`Checkpointer`]: conditional checkpoint writes, usable after acknowledgements arrive.
//! - [`LeaseTable`] / [`Lease`]: the lease table (KCL 2.x attribute names, multi-stream keys
//!   `<account>:<stream>:<creationEpoch>:<shardId>`); [`plan`]: the lease-taking decision as a
//!   pure function.
//! - Retrieval: GetRecords polling or enhanced fan-out (`retrieval = "fanout"`), both with
//!   KPL deaggregation.
//!
//! Semantics, as in the KCL: a lease expires when its counter has not changed for
//! `failover_time` on this worker's clock; free and expired leases are taken first, then at
//! most `max_leases_to_steal` per round from the most loaded worker. A child shard is read only
//! after all its parents are checkpointed at SHARD_END. On shutdown every processor gets
//! `shutdown_requested` (to checkpoint), then its lease is released for immediate take-over.
//!
//! ```no_run
//! use std::sync::Arc;
//! use flowline_kinesis::consumer::*;
//!
//! struct Printer;
//!
//! #[async_trait::async_trait]
//! impl ShardRecordProcessor for Printer {
//!     async fn initialize(&mut self, _shard: &ShardInfo, _start: &Checkpoint) {}
//!     async fn process_records(&mut self, input: ProcessRecordsInput) {
//!         for r in &input.records {
//!             println!("{} {}", r.partition_key, r.sequence_number);
//!         }
//!         // Checkpoint once what was derived from the batch is acknowledged downstream.
//!         if let Some(last) = input.records.last() {
//!             let _ = input.checkpointer.checkpoint(&last.sequence_number, last.sub_sequence_number).await;
//!         }
//!     }
//!     async fn lease_lost(&mut self) {}
//!     async fn shard_ended(&mut self, c: Checkpointer) {
//!         c.checkpoint_shard_end().await.expect("checkpoint SHARD_END");
//!     }
//!     async fn shutdown_requested(&mut self, _c: Checkpointer) {}
//! }
//!
//! # async fn example(kinesis: aws_sdk_kinesis::Client, dynamodb: aws_sdk_dynamodb::Client) -> flowline_kinesis::Result<()> {
//! let config = ConsumerConfig {
//!     application_name: "indexer".into(),
//!     streams: vec!["orders-enriched".into()],
//!     ..Default::default()
//! };
//! let factory = Arc::new(|_: &ShardInfo| -> Box<dyn ShardRecordProcessor> { Box::new(Printer) });
//! let consumer = Consumer::new(config, kinesis, dynamodb, factory, &prometheus::Registry::new())?;
//! let ready = consumer.status(); // watch: ready.borrow().is_ready(), per-shard lag
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! consumer.run(shutdown).await
//! # }
//! ```

mod balance;
mod config;
mod held;
mod lease;
mod metrics;
mod position;
mod processor;
mod records;
mod retrieval;
mod scheduler;
mod sdk_error;
mod shard_consumer;
mod shard_sync;
mod status;
mod table;
mod tasks;

pub use balance::{ExpiryTracker, LeaseView, PlanInput, Take, TakeReason, plan};
pub use config::{ConsumerConfig, FanoutConfig, InitialPosition, PollingConfig, RetrievalMode};
pub use held::Checkpointer;
pub use lease::{Lease, StreamIdentifier};
pub use metrics::ConsumerMetrics;
pub use position::{Checkpoint, compare_sequence_numbers};
pub use processor::{
    KinesisClientRecord, ProcessRecordsInput, ShardInfo, ShardRecordProcessor,
    ShardRecordProcessorFactory,
};
pub use scheduler::Consumer;
pub use status::{ConsumerStatus, ShardState, ShardStatus};
pub use table::LeaseTable;
