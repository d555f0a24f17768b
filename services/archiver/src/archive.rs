//! What every shard processor shares: the lake writer, the Firehose deliveries, the
//! routing of streams, metrics, and the way to stop the service on a lasting failure.

use std::collections::HashMap;
use std::sync::Arc;

use flowline_kinesis::consumer::{
    Checkpointer, ShardInfo, ShardRecordProcessor, ShardRecordProcessorFactory,
};
use flowline_lake::{FirehoseDelivery, LakeWriter, Position, S3Uploader};
use flowline_runtime::Context;
use tracing::{debug, warn};

use crate::config::{Config, Streams};
use crate::firehose_processor::FirehoseProcessor;
use crate::lake_processor::LakeProcessor;
use crate::metrics::ArchiverMetrics;
use crate::routing::InputKind;

pub struct Archive {
    pub writer: LakeWriter<S3Uploader>,
    pub streams: Streams,
    /// Streams delivered through Firehose, by input stream name.
    pub firehose: HashMap<String, FirehoseDelivery>,
    pub metrics: ArchiverMetrics,
    pub ctx: Context<Config>,
}

impl Archive {
    /// Stops the service: nothing after the failure may be checkpointed.
    pub fn fail(&self, task: &str, error: anyhow::Error) {
        self.ctx.fail(task, error);
    }

    /// Writes `position` as the shard's checkpoint unless it is already there. Errors are
    /// logged and counted: the next batch tries again with a position at least as far.
    pub async fn checkpoint(
        &self,
        checkpointer: &Checkpointer,
        position: &Position,
        done: &mut Option<Position>,
    ) {
        if done.as_ref().is_some_and(|d| d >= position) {
            return;
        }
        match checkpointer
            .checkpoint(&position.sequence_number, position.sub_sequence_number)
            .await
        {
            Ok(()) => {
                self.metrics.checkpoints.inc();
                debug!(shard = checkpointer.shard_id(), %position, "checkpointed");
                *done = Some(position.clone());
            }
            Err(flowline_kinesis::Error::LeaseLost(_)) => {
                debug!(
                    shard = checkpointer.shard_id(),
                    "lease lost; not checkpointing"
                );
            }
            Err(e) => {
                self.metrics.checkpoint_failures.inc();
                warn!(shard = checkpointer.shard_id(), error = %e, "checkpoint failed; retrying with the next batch");
            }
        }
    }
}

/// Creates the processor of each shard lease: Firehose for the streams configured so,
/// the lake writer for the rest.
pub struct Factory(pub Arc<Archive>);

impl ShardRecordProcessorFactory for Factory {
    fn create(&self, shard: &ShardInfo) -> Box<dyn ShardRecordProcessor> {
        // Config validation guarantees every consumed stream has a kind.
        let kind = self
            .0
            .streams
            .kind_of(&shard.stream)
            .unwrap_or(InputKind::Raw);
        match self.0.firehose.get(&shard.stream) {
            Some(delivery) => Box::new(FirehoseProcessor::new(
                self.0.clone(),
                delivery.clone(),
                shard,
                kind,
            )),
            None => Box::new(LakeProcessor::new(self.0.clone(), shard, kind)),
        }
    }
}
