//! One shard delivered through the lake writer: records are buffered, cut and
//! uploaded by the writer; the shard is checkpointed at the writer's safe position
//! (every record up to it is in S3), never further.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flowline_kinesis::consumer::{
    Checkpoint, Checkpointer, ProcessRecordsInput, ShardInfo, ShardRecordProcessor,
};
use flowline_lake::{LakeError, Position};
use tracing::{info, warn};

use crate::archive::Archive;
use crate::routing::{InputKind, archiver_rejection, record_meta};

pub struct LakeProcessor {
    archive: Arc<Archive>,
    stream: String,
    shard: String,
    kind: InputKind,
    checkpointed: Option<Position>,
    /// Set after a lasting failure: the service is stopping, nothing more is done.
    failed: bool,
}

impl LakeProcessor {
    pub fn new(archive: Arc<Archive>, shard: &ShardInfo, kind: InputKind) -> Self {
        LakeProcessor {
            archive,
            stream: shard.stream.clone(),
            shard: shard.shard_id.clone(),
            kind,
            checkpointed: None,
            failed: false,
        }
    }

    fn fail(&mut self, what: &str, e: LakeError) {
        self.failed = true;
        self.archive.fail(
            "lake writer",
            anyhow::anyhow!("{what} ({}/{}): {e}", self.stream, self.shard),
        );
    }

    /// A failed upload stops the writer; notice it even when no records arrive (polling
    /// without waiting: the writer reports its failure before anything else).
    async fn check_writer(&mut self) -> bool {
        let probe = self.archive.writer.wait_uploaded(&self.stream, &self.shard);
        if let Ok(Err(e)) = tokio::time::timeout(Duration::ZERO, probe).await {
            self.fail("upload", e);
        }
        !self.failed
    }

    async fn checkpoint_safe(&mut self, checkpointer: &Checkpointer) {
        if let Some(pos) = self.archive.writer.safe_position(&self.stream, &self.shard) {
            self.archive
                .checkpoint(checkpointer, &pos, &mut self.checkpointed)
                .await;
        }
    }
}

#[async_trait]
impl ShardRecordProcessor for LakeProcessor {
    async fn initialize(&mut self, _shard: &ShardInfo, start: &Checkpoint) {
        // Whatever this process buffered for the shard under an earlier lease is read
        // again from the checkpoint.
        self.archive.writer.drop_shard(&self.stream, &self.shard);
        info!(stream = %self.stream, shard = %self.shard, ?start, "archiving shard to the lake");
    }

    async fn process_records(&mut self, input: ProcessRecordsInput) {
        if self.failed {
            return;
        }
        let mode = [self.kind.as_str(), "lake"];
        for r in &input.records {
            let meta = record_meta(&self.stream, &self.shard, r);
            let record = self.kind.to_lake(&meta, r.data.clone());
            if let Some(error_type) = archiver_rejection(&meta, &record) {
                self.archive.metrics.rejected(error_type);
            }
            self.archive
                .metrics
                .records_read
                .with_label_values(&mode)
                .inc();
            match self.archive.writer.add(&meta, record).await {
                Ok(()) => {}
                // Already buffered or uploaded (a redelivery within this lease).
                Err(LakeError::OutOfOrder { .. }) => self.archive.metrics.duplicates_skipped.inc(),
                Err(e) => return self.fail("buffering", e),
            }
        }
        if self.check_writer().await {
            self.checkpoint_safe(&input.checkpointer).await;
        }
    }

    async fn lease_lost(&mut self) {
        warn!(stream = %self.stream, shard = %self.shard, "lease lost; dropping the shard's buffers");
        self.archive.writer.drop_shard(&self.stream, &self.shard);
    }

    async fn shard_ended(&mut self, checkpointer: Checkpointer) {
        if self.failed {
            return;
        }
        match self
            .archive
            .writer
            .flush_shard_and_wait(&self.stream, &self.shard)
            .await
        {
            Ok(_) => match checkpointer.checkpoint_shard_end().await {
                Ok(()) => {
                    self.archive.metrics.checkpoints.inc();
                    info!(stream = %self.stream, shard = %self.shard, "shard archived to its end");
                }
                // Children wait for SHARD_END: stop and let a restart finish the shard.
                Err(e) => {
                    self.failed = true;
                    self.archive.fail(
                        "checkpoint",
                        anyhow::anyhow!("SHARD_END of {}/{}: {e}", self.stream, self.shard),
                    );
                }
            },
            Err(e) => self.fail("flush at shard end", e),
        }
        self.archive.writer.drop_shard(&self.stream, &self.shard);
    }

    async fn shutdown_requested(&mut self, checkpointer: Checkpointer) {
        if self.failed {
            return;
        }
        match self
            .archive
            .writer
            .flush_shard_and_wait(&self.stream, &self.shard)
            .await
        {
            Ok(Some(pos)) => {
                self.archive
                    .checkpoint(&checkpointer, &pos, &mut self.checkpointed)
                    .await;
            }
            Ok(None) => {}
            Err(e) => self.fail("flush at shutdown", e),
        }
        self.archive.writer.drop_shard(&self.stream, &self.shard);
    }
}
