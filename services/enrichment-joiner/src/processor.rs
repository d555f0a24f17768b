//! One processor per input shard: parses and validates records (bad ones to dead-letters),
//! then hands the batch to the joiner task, which owns the join state. Every call waits for
//! the joiner's answer, so a busy joiner slows the readers (bounded memory).

use std::sync::Arc;

use flowline_kinesis::consumer::{
    Checkpoint, Checkpointer, KinesisClientRecord, ProcessRecordsInput, ShardInfo,
    ShardRecordProcessor,
};
use flowline_kinesis::producer::PendingAck;
use flowline_model::{Event, ParseConfig, RecordSource, StreamKind};
use flowline_pipeline::{CheckpointSink, DeadLetters};
use flowline_watermark::ShardKey;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// What a processor tells the joiner.
pub enum Msg {
    Start {
        shard: ShardKey,
        kind: StreamKind,
        parents: Vec<String>,
        /// The consumer's checkpointer (the benchmark substitutes its own).
        checkpointer: Arc<dyn CheckpointSink>,
        done: oneshot::Sender<()>,
    },
    Batch {
        shard: ShardKey,
        events: Vec<(Event, RecordSource)>,
        read: usize,
        millis_behind_latest: Option<i64>,
        /// The position after the batch, written once the batch's state is durable and its
        /// dead letters are acknowledged.
        last: Option<Checkpoint>,
        dead_letter_acks: Vec<PendingAck>,
        done: oneshot::Sender<()>,
    },
    /// SHARD_END: finish, checkpoint everything, then SHARD_END.
    Ended {
        shard: ShardKey,
        checkpointer: Checkpointer,
        done: oneshot::Sender<()>,
    },
    /// Shutdown: checkpoint what is durable, then give the shard up.
    Shutdown {
        shard: ShardKey,
        done: oneshot::Sender<()>,
    },
    Lost {
        shard: ShardKey,
        done: oneshot::Sender<()>,
    },
}

pub type Fail = Arc<dyn Fn(anyhow::Error) + Send + Sync>;

pub struct Processor {
    kind: StreamKind,
    shard: ShardKey,
    parse: ParseConfig,
    dead_letters: Arc<DeadLetters>,
    metrics: Arc<Metrics>,
    tx: mpsc::Sender<Msg>,
    fail: Fail,
    /// Set by `initialize`; the joiner learns of the shard with the first batch, which
    /// brings the checkpointer (empty batches are delivered, so this is immediate).
    pending_start: Option<(ShardKey, StreamKind, Vec<String>)>,
    /// A dead letter could not be sent: the service is stopping, and no later batch may be
    /// applied (its checkpoint would pass the failed record).
    failed: bool,
}

impl Processor {
    pub fn new(
        kind: StreamKind,
        shard: &ShardInfo,
        parse: ParseConfig,
        dead_letters: Arc<DeadLetters>,
        metrics: Arc<Metrics>,
        tx: mpsc::Sender<Msg>,
        fail: Fail,
    ) -> Self {
        Self {
            kind,
            shard: ShardKey::new(&shard.stream, &shard.shard_id),
            parse,
            dead_letters,
            metrics,
            tx,
            fail,
            pending_start: None,
            failed: false,
        }
    }

    /// One batch of a shard: parses the records (bad ones to dead letters) and hands them to
    /// the joiner, waiting until it applied them. The first batch also tells the joiner about
    /// the shard and where its checkpoints go. `process_records` with the consumer's
    /// checkpointer; public so that the benchmark drives this same path from memory.
    pub async fn process(
        &mut self,
        records: &[KinesisClientRecord],
        millis_behind_latest: Option<i64>,
        checkpointer: Arc<dyn CheckpointSink>,
    ) {
        if self.failed {
            return;
        }
        if let Some((shard, kind, parents)) = self.pending_start.take() {
            self.call(|done| Msg::Start {
                shard,
                kind,
                parents,
                checkpointer,
                done,
            })
            .await;
        }
        let stream = self.shard.stream.clone();
        self.metrics
            .records_in
            .with_label_values(&[&stream])
            .inc_by(records.len() as u64);
        let mut events = Vec::with_capacity(records.len());
        let mut acks = Vec::new();
        for r in records {
            let source = RecordSource {
                stream: stream.clone(),
                shard_id: self.shard.shard_id.clone(),
                sequence_number: r.sequence_number.clone(),
            };
            match self.parse.parse_event(self.kind, &r.data) {
                Ok(event) => events.push((event, source)),
                Err(e) => match self.dead_letters.rejected(&e, &r.data, &source).await {
                    Ok(ack) => acks.push(ack),
                    Err(e) => {
                        self.failed = true;
                        (self.fail)(e.context("sending a dead letter"));
                        return;
                    }
                },
            }
        }
        let last = records.last().map(|r| r.position());
        let shard = self.shard.clone();
        let read = records.len();
        self.call(|done| Msg::Batch {
            shard,
            events,
            read,
            millis_behind_latest,
            last,
            dead_letter_acks: acks,
            done,
        })
        .await;
    }

    /// Sends a message and waits until the joiner handled it. A closed channel means the
    /// joiner stopped (the service is stopping); nothing is checkpointed then.
    async fn call(&self, make: impl FnOnce(oneshot::Sender<()>) -> Msg) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(make(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

#[async_trait::async_trait]
impl ShardRecordProcessor for Processor {
    async fn initialize(&mut self, shard: &ShardInfo, start: &Checkpoint) {
        tracing::info!(stream = %shard.stream, shard = %shard.shard_id, ?start, "shard lease taken");
        self.pending_start = Some((
            self.shard.clone(),
            self.kind,
            shard.parent_shard_ids.clone(),
        ));
    }

    async fn process_records(&mut self, input: ProcessRecordsInput) {
        let checkpointer = Arc::new(input.checkpointer);
        self.process(&input.records, input.millis_behind_latest, checkpointer)
            .await;
    }

    async fn lease_lost(&mut self) {
        tracing::info!(stream = %self.shard.stream, shard = %self.shard.shard_id, "shard lease lost");
        if self.pending_start.take().is_some() {
            return;
        }
        let shard = self.shard.clone();
        self.call(|done| Msg::Lost { shard, done }).await;
    }

    async fn shard_ended(&mut self, checkpointer: Checkpointer) {
        if let Some((shard, kind, parents)) = self.pending_start.take() {
            let cp = Arc::new(checkpointer.clone());
            self.call(|done| Msg::Start {
                shard,
                kind,
                parents,
                checkpointer: cp,
                done,
            })
            .await;
        }
        let shard = self.shard.clone();
        self.call(|done| Msg::Ended {
            shard,
            checkpointer,
            done,
        })
        .await;
    }

    async fn shutdown_requested(&mut self, _checkpointer: Checkpointer) {
        if self.pending_start.take().is_some() {
            return;
        }
        let shard = self.shard.clone();
        self.call(|done| Msg::Shutdown { shard, done }).await;
    }
}
