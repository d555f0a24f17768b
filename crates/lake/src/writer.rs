//! The lake writer: buffers records per shard, cuts them into objects, encodes and
//! uploads them, and tells the caller how far each shard may be checkpointed.
//!
//! # Why a redelivery overwrites instead of duplicating
//!
//! An object's name is `<stream>_<shard>_<first>_<last>` of the records it holds, so
//! writing the same records again replaces the object. That holds when the cuts after
//! a restart fall on the same records as before, which this writer arranges:
//!
//! 1. All buffers of a shard are cut together, so every cut is a point in the shard's
//!    record sequence. [`LakeWriter::safe_position`] only ever returns such a point,
//!    so the service's checkpoint is always a cut, and a redelivery after a crash
//!    starts exactly at a cut: each buffer starts at the same first record as before.
//! 2. The triggers are functions of the records read since that cut: the size hint
//!    counts record bytes, and the age is measured in Kinesis arrival time (a record
//!    arriving `interval` after the oldest buffered one cuts before it). Re-reading
//!    the same records therefore cuts at the same records, and the same names result.
//!
//! Limits: cuts that depend on the moment — the wall-clock flush of a quiet shard
//! (`interval + wall_clock_grace`), early cuts under memory pressure, and explicit
//! flushes — may fall elsewhere on replay. Objects uploaded but not yet checkpointed
//! when the process died may then be partly duplicated by differently cut objects.
//! Curated rows carry their deterministic ids (`order_id`, metric `id` + `revision`)
//! for readers to deduplicate, and the exposure is at most the generations in flight
//! at the crash.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info};

use crate::config::LakeConfig;
use crate::encode::encode_object;
use crate::error::LakeError;
use crate::item::{LakeRecord, RecordMeta};
use crate::layout::{Position, object_key};
use crate::metrics::LakeMetrics;
use crate::s3::ObjectSink;
use crate::state::{FlushReason, Hints, ShardKey, State, UploadJob};

/// Budget charged per record on top of its bytes (the buffer's own bookkeeping), so
/// that even empty records are bounded in number.
const RECORD_OVERHEAD: usize = 64;

/// Buffers records and writes them to the lake through an [`ObjectSink`].
pub struct LakeWriter<S: ObjectSink> {
    shared: Arc<Shared<S>>,
    cancel: CancellationToken,
}

struct Shared<S> {
    config: LakeConfig,
    sink: S,
    metrics: LakeMetrics,
    budget: Arc<Semaphore>,
    budget_bytes: usize,
    upload_slots: Semaphore,
    state: Mutex<State>,
    /// Woken on every finished upload.
    progress: Notify,
    tasks: TaskTracker,
}

impl<S: ObjectSink> LakeWriter<S> {
    /// Starts the writer (and its wall-clock flush timer) on the current Tokio runtime.
    /// `config` should be valid (see [`LakeConfig::validate`]).
    pub fn new(config: LakeConfig, sink: S, metrics: LakeMetrics) -> Self {
        let budget_bytes = usize::try_from(config.buffer.memory_budget_bytes)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        let shared = Arc::new(Shared {
            upload_slots: Semaphore::new(config.upload.max_concurrent_uploads.max(1)),
            config,
            sink,
            metrics,
            budget: Arc::new(Semaphore::new(budget_bytes)),
            budget_bytes,
            state: Mutex::new(State::default()),
            progress: Notify::new(),
            tasks: TaskTracker::new(),
        });
        for r in FlushReason::ALL {
            shared.metrics.flushes.with_label_values(&[r.as_str()]);
        }
        let cancel = CancellationToken::new();
        shared
            .tasks
            .spawn(tick_loop(shared.clone(), cancel.clone()));
        LakeWriter { shared, cancel }
    }

    /// Adds a record read at `meta`. Records of a shard must come in shard order.
    /// Waits while the memory budget is used up (backpressure), cutting the largest
    /// shard's buffers early so that uploads free memory.
    pub async fn add(&self, meta: &RecordMeta, record: LakeRecord) -> Result<(), LakeError> {
        let need = record.size + RECORD_OVERHEAD;
        if need > self.shared.budget_bytes || u32::try_from(need).is_err() {
            return Err(LakeError::TooLarge {
                size: record.size,
                max: self.shared.budget_bytes,
                limit: "the memory budget",
            });
        }
        self.shared.check()?;
        let permit = self.reserve(need).await?;
        let (size, interval) = self.shared.config.buffer.hints(&meta.stream);
        let cut = self.shared.lock().add(
            meta,
            record,
            permit,
            Hints { size, interval },
            Instant::now(),
        )?;
        self.shared.metrics.buffered_bytes.add(need as i64);
        if let Some((reason, jobs)) = cut {
            self.shared.spawn_uploads(reason, jobs);
        }
        Ok(())
    }

    async fn reserve(&self, need: usize) -> Result<OwnedSemaphorePermit, LakeError> {
        let budget = &self.shared.budget;
        if let Ok(p) = budget.clone().try_acquire_many_owned(need as u32) {
            return Ok(p);
        }
        self.shared.metrics.backpressure_waits.inc();
        loop {
            self.shared.check()?;
            let jobs = self.shared.lock().cut_largest();
            if let Some(jobs) = jobs {
                self.shared.spawn_uploads(FlushReason::Memory, jobs);
            }
            // Re-check now and then: a buffer opened meanwhile may need cutting too.
            match tokio::time::timeout(
                Duration::from_millis(100),
                budget.clone().acquire_many_owned(need as u32),
            )
            .await
            {
                Ok(Ok(p)) => return Ok(p),
                Ok(Err(_)) => return Err(LakeError::Closed),
                Err(_) => continue,
            }
        }
    }

    pub fn metrics(&self) -> &LakeMetrics {
        &self.shared.metrics
    }

    /// The position up to which every record of the shard is in S3: checkpoint here.
    pub fn safe_position(&self, stream: &str, shard: &str) -> Option<Position> {
        self.shared.lock().safe_position(&key(stream, shard))
    }

    /// Cuts the shard's open buffers now (for example before a planned checkpoint).
    pub fn flush_shard(&self, stream: &str, shard: &str) {
        let jobs = self.shared.lock().cut(&key(stream, shard));
        self.shared.spawn_uploads(FlushReason::Explicit, jobs);
    }

    /// Cuts the shard and waits until all of it is uploaded (shard end, lease
    /// hand-off); returns the position to checkpoint.
    pub async fn flush_shard_and_wait(
        &self,
        stream: &str,
        shard: &str,
    ) -> Result<Option<Position>, LakeError> {
        self.flush_shard(stream, shard);
        let k = key(stream, shard);
        self.shared
            .wait_until(|st| st.is_drained(&k).then(|| st.safe_position(&k)))
            .await
    }

    /// Waits until every buffer of the shard cut so far is uploaded (without cutting
    /// the open ones); returns the position to checkpoint.
    pub async fn wait_uploaded(
        &self,
        stream: &str,
        shard: &str,
    ) -> Result<Option<Position>, LakeError> {
        let k = key(stream, shard);
        self.shared
            .wait_until(|st| st.is_uploaded(&k).then(|| st.safe_position(&k)))
            .await
    }

    /// Forgets a shard whose lease was lost: its open buffers are discarded (another
    /// worker will read those records from the checkpoint), and uploads in flight no
    /// longer count.
    pub fn drop_shard(&self, stream: &str, shard: &str) {
        let released = self.shared.lock().drop_shard(&key(stream, shard));
        self.shared.metrics.buffered_bytes.sub(released as i64);
        self.shared.update_gauges();
    }

    /// Uploads everything buffered, waits for it, and stops the timer. The error of a
    /// failed upload, if any, is returned.
    pub async fn shutdown(self) -> Result<(), LakeError> {
        let keys = self.shared.lock().keys();
        for k in keys {
            self.flush_shard(&k.stream, &k.shard);
        }
        let result = self
            .shared
            .wait_until(|st| st.all_drained().then_some(()))
            .await;
        self.cancel.cancel();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
        info!("lake writer stopped");
        result
    }
}

impl<S: ObjectSink> Drop for LakeWriter<S> {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn key(stream: &str, shard: &str) -> ShardKey {
    ShardKey {
        stream: stream.to_string(),
        shard: shard.to_string(),
    }
}

impl<S: ObjectSink> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every mutation is
        // completed before anything can panic), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self) -> Result<(), LakeError> {
        match &self.lock().failure {
            Some(f) => Err(LakeError::Stopped(f.clone())),
            None => Ok(()),
        }
    }

    async fn wait_until<T>(&self, cond: impl Fn(&State) -> Option<T>) -> Result<T, LakeError> {
        loop {
            let notified = self.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = self.lock();
                if let Some(f) = &st.failure {
                    return Err(LakeError::Stopped(f.clone()));
                }
                if let Some(v) = cond(&st) {
                    return Ok(v);
                }
            }
            notified.await;
        }
    }

    fn spawn_uploads(self: &Arc<Self>, reason: FlushReason, jobs: Vec<UploadJob>) {
        if jobs.is_empty() {
            return;
        }
        self.metrics
            .flushes
            .with_label_values(&[reason.as_str()])
            .inc();
        for job in jobs {
            self.tasks.spawn(upload(self.clone(), job));
        }
        self.update_gauges();
    }

    fn update_gauges(&self) {
        let (records, oldest) = self.lock().open_stats();
        self.metrics.buffered_records.set(records as i64);
        let age = oldest.map_or(0, |t| t.elapsed().as_secs());
        self.metrics.oldest_buffer_age_seconds.set(age as i64);
    }
}

async fn tick_loop<S: ObjectSink>(shared: Arc<Shared<S>>, cancel: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_millis(500));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = every.tick() => {}
        }
        let buffer = &shared.config.buffer;
        let hints = |stream: &str| {
            let (size, interval) = buffer.hints(stream);
            Hints { size, interval }
        };
        let jobs = shared
            .lock()
            .cut_idle(Instant::now(), hints, buffer.wall_clock_grace);
        shared.spawn_uploads(FlushReason::Idle, jobs);
        shared.update_gauges();
    }
}

async fn upload<S: ObjectSink>(shared: Arc<Shared<S>>, job: UploadJob) {
    let kind = job.dataset.kind();
    let key = object_key(
        &job.dataset,
        &job.partition,
        &job.shard.stream,
        &job.shard.shard,
        &job.first,
        &job.last,
    );
    let records = job.payloads.len();
    let result = async {
        let _slot = shared
            .upload_slots
            .acquire()
            .await
            .map_err(|_| LakeError::Closed)?;
        let (dataset, payloads, level) =
            (job.dataset.clone(), job.payloads, shared.config.gzip_level);
        let body = tokio::task::spawn_blocking(move || encode_object(&dataset, payloads, level))
            .await
            .map_err(|e| LakeError::encode("object", e))??;
        let size = body.len();
        shared
            .sink
            .put(&key, body, job.dataset.content_type(), kind)
            .await?;
        Ok::<_, LakeError>(size)
    }
    .await;
    let label = [kind.as_str()];
    match result {
        Ok(size) => {
            shared
                .metrics
                .objects_written
                .with_label_values(&label)
                .inc();
            shared
                .metrics
                .object_bytes_written
                .with_label_values(&label)
                .inc_by(size as u64);
            shared
                .metrics
                .records_written
                .with_label_values(&label)
                .inc_by(records as u64);
            shared.lock().complete(&job.shard, job.generation);
        }
        Err(e) => {
            shared
                .metrics
                .upload_failures
                .with_label_values(&label)
                .inc();
            error!(key, error = %e, "lake upload failed; the writer stops accepting records");
            shared
                .lock()
                .failure
                .get_or_insert_with(|| format!("{key}: {e}"));
        }
    }
    shared
        .metrics
        .buffered_bytes
        .sub(job.permit.num_permits() as i64);
    drop(job.permit);
    shared.progress.notify_waiters();
}
