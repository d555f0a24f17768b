//! The record processor interface, in the spirit of the KCL's `ShardRecordProcessor`.

use std::time::SystemTime;

use bytes::Bytes;

use super::held::Checkpointer;
use super::position::Checkpoint;
use crate::shards::HashKeyRange;

/// The shard a processor is created for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub stream: String,
    pub shard_id: String,
    pub lease_key: String,
    pub parent_shard_ids: Vec<String>,
    pub hash_key_range: Option<HashKeyRange>,
}

/// One user record (a KPL aggregated record is delivered as its user records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisClientRecord {
    pub partition_key: String,
    pub explicit_hash_key: Option<String>,
    pub data: Bytes,
    pub sequence_number: String,
    /// Index within its KPL aggregated record; 0 for a plain record.
    pub sub_sequence_number: u64,
    pub approximate_arrival_timestamp: Option<SystemTime>,
    /// Whether the record came out of a KPL aggregated record.
    pub aggregated: bool,
}

impl KinesisClientRecord {
    /// The checkpoint that marks this record (and everything before it) done.
    pub fn position(&self) -> Checkpoint {
        Checkpoint::sequence(self.sequence_number.clone(), self.sub_sequence_number)
    }
}

/// A batch for [`ShardRecordProcessor::process_records`].
#[derive(Debug, Clone)]
pub struct ProcessRecordsInput {
    pub records: Vec<KinesisClientRecord>,
    /// How far the read is behind the tip of the shard.
    pub millis_behind_latest: Option<i64>,
    pub checkpointer: Checkpointer,
}

/// Processes the records of one shard. One instance per shard lease; calls are sequential.
///
/// The processor checkpoints explicitly, typically after what it derived from records was
/// acknowledged downstream; the [`Checkpointer`] may be cloned and used later from another task.
#[async_trait::async_trait]
pub trait ShardRecordProcessor: Send {
    /// Called once before any records, with the position reading resumes after.
    async fn initialize(&mut self, shard: &ShardInfo, start: &Checkpoint);

    /// A batch of records, in shard order.
    async fn process_records(&mut self, input: ProcessRecordsInput);

    /// Another worker took the lease (or it could not be renewed in time): stop; checkpoints
    /// are no longer possible. Not followed by any other call.
    async fn lease_lost(&mut self);

    /// Every record of the (closed) shard was delivered. The processor must finish its work and
    /// call [`Checkpointer::checkpoint_shard_end`]; child shards start only after that.
    async fn shard_ended(&mut self, checkpointer: Checkpointer);

    /// The consumer is shutting down: checkpoint what is done; the lease is released afterwards.
    async fn shutdown_requested(&mut self, checkpointer: Checkpointer);
}

/// Creates one processor per shard lease.
pub trait ShardRecordProcessorFactory: Send + Sync {
    fn create(&self, shard: &ShardInfo) -> Box<dyn ShardRecordProcessor>;
}

impl<F> ShardRecordProcessorFactory for F
where
    F: Fn(&ShardInfo) -> Box<dyn ShardRecordProcessor> + Send + Sync,
{
    fn create(&self, shard: &ShardInfo) -> Box<dyn ShardRecordProcessor> {
        self(shard)
    }
}
