//! One processor per shard lease: each record becomes a bulk document (or a dead letter when
//! the model refuses it); the batch's checkpoint is queued behind a future that settles
//! every document of the batch: indexed, superseded by a newer revision, or refused by
//! OpenSearch and then dead-lettered with its reason. Backpressure: the sink's bounded
//! `enqueue` and the bounded checkpoint queue make `process_records` wait, so reading stops
//! while OpenSearch is down instead of buffering.

use std::sync::Arc;

use bytes::Bytes;
use flowline_kinesis::consumer::{
    Checkpoint, Checkpointer, KinesisClientRecord, ProcessRecordsInput, ShardInfo,
    ShardRecordProcessor, ShardRecordProcessorFactory,
};
use flowline_kinesis::producer::PendingAck;
use flowline_model::{DeadLetter, ParseConfig, RecordSource, Timestamp};
use flowline_opensearch::OpenSearchError;
use flowline_opensearch::bulk::{Ack, BulkSink, Delivery, IndexNames};
use flowline_pipeline::{AckedCheckpoints, CheckpointSink, DeadLetters};

use crate::documents::{self, Input};
use crate::metrics::Metrics;

/// The dead-letter `stage`.
pub const STAGE: &str = "indexer";

/// What every shard's processor shares.
pub struct Shared {
    pub sink: BulkSink,
    pub dead_letters: Arc<DeadLetters>,
    pub names: IndexNames,
    pub parse: ParseConfig,
    pub orders_stream: String,
    pub metrics_stream: String,
    pub metrics: Metrics,
    pub max_pending_batches: usize,
    /// Stops the service: a document's fate is unknown or a checkpoint cannot be written.
    pub fail: Arc<dyn Fn(anyhow::Error) + Send + Sync>,
}

pub struct Factory(pub Arc<Shared>);

impl ShardRecordProcessorFactory for Factory {
    fn create(&self, shard: &ShardInfo) -> Box<dyn ShardRecordProcessor> {
        Box::new(Processor::new(self.0.clone(), shard))
    }
}

pub struct Processor {
    shared: Arc<Shared>,
    input: Input,
    stream: String,
    shard_id: String,
    checkpoints: Option<AckedCheckpoints>,
    /// After a failure nothing more is processed or checkpointed; the service is stopping.
    failed: bool,
}

/// How one record of a batch is settled.
enum Pending {
    Doc {
        ack: Ack,
        body: Bytes,
        origin: Timestamp,
        join_status: &'static str,
        source: RecordSource,
    },
    DeadLetter(PendingAck),
}

impl Processor {
    pub fn new(shared: Arc<Shared>, shard: &ShardInfo) -> Self {
        let input = if shard.stream == shared.metrics_stream {
            Input::Metrics
        } else {
            // The consumer reads only the two configured streams.
            debug_assert_eq!(shard.stream, shared.orders_stream);
            Input::Orders
        };
        Self {
            shared,
            input,
            stream: shard.stream.clone(),
            shard_id: shard.shard_id.clone(),
            checkpoints: None,
            failed: false,
        }
    }

    /// One batch of a shard: queues every record's document (or dead letter), then queues
    /// the batch's checkpoint for `checkpointer`, written once every record is settled.
    /// `process_records` with the consumer's checkpointer; public so that the benchmark
    /// drives this same path from memory.
    pub async fn process(
        &mut self,
        records: &[KinesisClientRecord],
        checkpointer: Arc<dyn CheckpointSink>,
    ) {
        if self.failed {
            return;
        }
        let Some(last) = records.last().map(|r| r.position()) else {
            return;
        };
        let mut pending = Vec::with_capacity(records.len());
        for record in records {
            let source = self.source(&record.sequence_number);
            match self.queue(&record.data, source).await {
                Ok(p) => pending.push(p),
                Err(e) => {
                    return self.fail(e.context("queueing a document"));
                }
            }
        }
        let settled = settle(self.shared.clone(), self.input, pending);
        let Some(checkpoints) = &self.checkpoints else {
            return self.fail(anyhow::anyhow!("records before initialize"));
        };
        if let Err(e) = checkpoints.after(checkpointer, last, settled).await {
            self.fail(e);
        }
    }

    fn fail(&mut self, error: anyhow::Error) {
        self.failed = true;
        (self.shared.fail)(error);
    }

    fn source(&self, sequence_number: &str) -> RecordSource {
        RecordSource {
            stream: self.stream.clone(),
            shard_id: self.shard_id.clone(),
            sequence_number: sequence_number.to_owned(),
        }
    }

    async fn queue(&self, data: &Bytes, source: RecordSource) -> anyhow::Result<Pending> {
        let s = &self.shared;
        let family = self.input.family().as_str();
        let prepared = documents::prepare(
            self.input,
            data,
            &s.parse,
            &s.names,
            flowline_pipeline::now(),
        );
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => {
                s.metrics
                    .records
                    .with_label_values(&[family, "invalid"])
                    .inc();
                return Ok(Pending::DeadLetter(
                    s.dead_letters.rejected(&e, data, &source).await?,
                ));
            }
        };
        match s.sink.enqueue(prepared.doc).await {
            Ok(ack) => {
                s.metrics
                    .records
                    .with_label_values(&[family, "queued"])
                    .inc();
                Ok(Pending::Doc {
                    ack,
                    body: prepared.body,
                    origin: prepared.origin,
                    join_status: prepared.join_status,
                    source,
                })
            }
            // An id or index the sink cannot frame: the record is at fault, not the cluster.
            Err(e @ OpenSearchError::InvalidDocument { .. }) => {
                s.metrics
                    .records
                    .with_label_values(&[family, "invalid"])
                    .inc();
                let letter = DeadLetter::new(
                    STAGE,
                    "invalid_document",
                    &e.to_string(),
                    &source,
                    data,
                    flowline_pipeline::now(),
                );
                Ok(Pending::DeadLetter(s.dead_letters.send(letter).await?))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Waits for queued checkpoints (so the last one is written) and stops the queue.
    pub async fn drain(&mut self) {
        self.shared.sink.flush();
        if let Some(mut checkpoints) = self.checkpoints.take() {
            checkpoints.drain().await;
        }
    }
}

/// Resolves once every record of a batch is indexed, superseded or dead-lettered.
async fn settle(shared: Arc<Shared>, input: Input, pending: Vec<Pending>) -> anyhow::Result<()> {
    let family = input.family().as_str();
    for p in pending {
        match p {
            Pending::DeadLetter(ack) => {
                ack.await?;
            }
            Pending::Doc {
                ack,
                body,
                origin,
                join_status,
                source,
            } => match ack.await? {
                Delivery::Indexed => {
                    let now = flowline_pipeline::now();
                    let seconds = (now.millis() - origin.millis()).max(0) as f64 / 1000.0;
                    shared
                        .metrics
                        .end_to_end
                        .with_label_values(&[family, join_status])
                        .observe(seconds);
                }
                // The cluster holds this revision or a newer one already.
                Delivery::Superseded => {}
                Delivery::Rejected(r) => {
                    let reason = format!("OpenSearch {} {}: {}", r.status, r.error_type, r.reason);
                    let letter = DeadLetter::new(
                        STAGE,
                        r.kind.as_str(),
                        &reason,
                        &source,
                        &body,
                        flowline_pipeline::now(),
                    );
                    shared.dead_letters.send(letter).await?.await?;
                }
            },
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl ShardRecordProcessor for Processor {
    async fn initialize(&mut self, shard: &ShardInfo, start: &Checkpoint) {
        tracing::info!(stream = %shard.stream, shard = %shard.shard_id, start = start.as_attribute(), "indexing shard");
        let fail = self.shared.fail.clone();
        self.checkpoints = Some(AckedCheckpoints::new(
            self.shared.max_pending_batches,
            move |e| fail(e),
        ));
    }

    async fn process_records(&mut self, input: ProcessRecordsInput) {
        let checkpointer = Arc::new(input.checkpointer);
        self.process(&input.records, checkpointer).await;
    }

    async fn lease_lost(&mut self) {
        // Another worker resumes from the last checkpoint; pending ones are void.
        self.checkpoints = None;
    }

    async fn shard_ended(&mut self, checkpointer: Checkpointer) {
        self.drain().await;
        if self.failed {
            return;
        }
        if let Err(e) = checkpointer.checkpoint_shard_end().await {
            self.fail(anyhow::Error::new(e).context("checkpointing SHARD_END"));
        }
    }

    async fn shutdown_requested(&mut self, _checkpointer: Checkpointer) {
        // The checkpoint queue writes each batch's checkpoint once it is settled.
        self.drain().await;
    }
}
