//! One shard delivered through a Firehose delivery stream (Firehose buffers and writes
//! to S3 itself). Each record goes as its exact bytes plus `\n`, so the delivered objects
//! are JSON Lines. A batch is checkpointed once every record of it is accepted by
//! Firehose or, failing that, filed under `errors/archiver/` by the lake writer:
//! records Firehose still rejects after the retries (`delivery`) and records that hold a
//! newline byte (`unframeable`: a JSON Lines file cannot keep them byte-exact).

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, BytesMut};
use flowline_kinesis::consumer::{
    Checkpoint, Checkpointer, ProcessRecordsInput, ShardInfo, ShardRecordProcessor,
};
use flowline_lake::{
    ARCHIVER_STAGE, FirehoseDelivery, LakeRecord, Position, RecordAck, RecordMeta,
};
use flowline_model::DeadLetter;
use tracing::{info, warn};

use crate::archive::Archive;
use crate::metrics::DELIVERY_ERROR;
use crate::routing::{InputKind, archiver_rejection, record_meta};

pub struct FirehoseProcessor {
    archive: Arc<Archive>,
    delivery: FirehoseDelivery,
    stream: String,
    shard: String,
    kind: InputKind,
    checkpointed: Option<Position>,
    /// The last record delivered (or filed), to checkpoint again at shutdown should the
    /// checkpoint after its batch have failed.
    delivered: Option<Position>,
    failed: bool,
}

impl FirehoseProcessor {
    pub fn new(
        archive: Arc<Archive>,
        delivery: FirehoseDelivery,
        shard: &ShardInfo,
        kind: InputKind,
    ) -> Self {
        FirehoseProcessor {
            archive,
            delivery,
            stream: shard.stream.clone(),
            shard: shard.shard_id.clone(),
            kind,
            checkpointed: None,
            delivered: None,
            failed: false,
        }
    }

    fn fail(&mut self, what: &str, e: impl std::fmt::Display) {
        self.failed = true;
        self.archive.fail(
            "firehose delivery",
            anyhow::anyhow!("{what} ({}/{}): {e}", self.stream, self.shard),
        );
    }

    /// Delivers the batch; returns the records to file under `errors/` instead, in
    /// shard order. `None` after a lasting failure.
    async fn deliver(
        &mut self,
        input: &ProcessRecordsInput,
    ) -> Option<Vec<(RecordMeta, LakeRecord)>> {
        let mut errors: Vec<(usize, RecordMeta, LakeRecord)> = Vec::new();
        let mut framed = Vec::with_capacity(input.records.len());
        let mut framed_index = Vec::with_capacity(input.records.len());
        for (i, r) in input.records.iter().enumerate() {
            if r.data.contains(&b'\n') {
                let meta = record_meta(&self.stream, &self.shard, r);
                // `raw` turns a record holding a newline into the unframeable envelope.
                let record = LakeRecord::raw(&meta, r.data.clone());
                if let Some(t) = archiver_rejection(&meta, &record) {
                    self.archive.metrics.rejected(t);
                }
                errors.push((i, meta, record));
            } else {
                let mut line = BytesMut::with_capacity(r.data.len() + 1);
                line.put_slice(&r.data);
                line.put_u8(b'\n');
                framed.push(line.freeze());
                framed_index.push(i);
            }
        }
        let acks = match self.delivery.deliver(&framed).await {
            Ok(acks) => acks,
            Err(e) => {
                self.fail("PutRecordBatch", e);
                return None;
            }
        };
        for (ack, i) in acks.into_iter().zip(framed_index) {
            if let RecordAck::Failed {
                error_code,
                message,
            } = ack
            {
                let r = &input.records[i];
                let meta = record_meta(&self.stream, &self.shard, r);
                self.archive.metrics.rejected(DELIVERY_ERROR);
                let letter = DeadLetter {
                    stage: ARCHIVER_STAGE.to_string(),
                    reason: format!("Firehose did not accept the record: {error_code}: {message}")
                        .chars()
                        .take(flowline_model::MAX_REASON_CHARS)
                        .collect(),
                    error_type: DELIVERY_ERROR.to_string(),
                    source_stream: self.stream.clone(),
                    shard_id: self.shard.clone(),
                    sequence_number: r.sequence_number.clone(),
                    received_at: meta.arrival,
                    payload_base64: STANDARD.encode(&r.data),
                    payload_truncated: false,
                };
                let size = r.data.len() * 4 / 3 + 256;
                errors.push((i, meta, LakeRecord::dead_letter(letter, size)));
            }
        }
        errors.sort_by_key(|(i, _, _)| *i);
        Some(errors.into_iter().map(|(_, m, r)| (m, r)).collect())
    }
}

#[async_trait]
impl ShardRecordProcessor for FirehoseProcessor {
    async fn initialize(&mut self, _shard: &ShardInfo, start: &Checkpoint) {
        self.archive.writer.drop_shard(&self.stream, &self.shard);
        info!(stream = %self.stream, shard = %self.shard, ?start, "delivering shard through Firehose");
    }

    async fn process_records(&mut self, input: ProcessRecordsInput) {
        if self.failed {
            return;
        }
        let Some(last) = input.records.last() else {
            return;
        };
        let last = Position::new(last.sequence_number.clone(), last.sub_sequence_number);
        self.archive
            .metrics
            .records_read
            .with_label_values(&[self.kind.as_str(), "firehose"])
            .inc_by(input.records.len() as u64);
        let Some(errors) = self.deliver(&input).await else {
            return;
        };
        if !errors.is_empty() {
            let writer = &self.archive.writer;
            for (meta, record) in errors {
                if let Err(e) = writer.add(&meta, record).await {
                    return self.fail("filing a record under errors/", e);
                }
            }
            // Rare: wait for them so that the checkpoint below covers them.
            if let Err(e) = writer.flush_shard_and_wait(&self.stream, &self.shard).await {
                return self.fail("uploading errors", e);
            }
        }
        self.archive
            .checkpoint(&input.checkpointer, &last, &mut self.checkpointed)
            .await;
        self.delivered = Some(last);
    }

    async fn lease_lost(&mut self) {
        warn!(stream = %self.stream, shard = %self.shard, "lease lost");
        self.archive.writer.drop_shard(&self.stream, &self.shard);
    }

    async fn shard_ended(&mut self, checkpointer: Checkpointer) {
        if self.failed {
            return;
        }
        // Every batch was delivered (or filed) before process_records returned.
        match checkpointer.checkpoint_shard_end().await {
            Ok(()) => self.archive.metrics.checkpoints.inc(),
            Err(e) => self.fail("SHARD_END checkpoint", e),
        }
        self.archive.writer.drop_shard(&self.stream, &self.shard);
    }

    async fn shutdown_requested(&mut self, checkpointer: Checkpointer) {
        // Nothing is pending between batches: each was delivered before its checkpoint.
        if let Some(last) = self.delivered.clone() {
            self.archive
                .checkpoint(&checkpointer, &last, &mut self.checkpointed)
                .await;
        }
        self.archive.writer.drop_shard(&self.stream, &self.shard);
    }
}
