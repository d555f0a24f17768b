//! One held shard: wait for its parents, read, hand batches to the processor, and end with
//! shard end, lease loss or shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::held::{Checkpointer, HeldLease};
use super::position::Checkpoint;
use super::processor::{KinesisClientRecord, ProcessRecordsInput, ShardInfo, ShardRecordProcessor};
use super::records::{ResumeFilter, Skipped, user_records};
use super::retrieval::{Backoff, FanoutReader, PollingReader, RawBatch, StartPosition};
use super::scheduler::Ctx;
use super::status::ShardState;

/// How a shard's processing ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    ShardEnded,
    LeaseLost,
    Shutdown,
}

pub(crate) async fn run(ctx: Arc<Ctx>, lease: Arc<HeldLease>, stop: CancellationToken) -> Outcome {
    let info = ShardInfo {
        stream: lease.stream.clone(),
        shard_id: lease.shard_id.clone(),
        lease_key: lease.key.clone(),
        parent_shard_ids: lease.parent_shard_ids.clone(),
        hash_key_range: lease.hash_key_range,
    };
    if let Some(outcome) = wait_for_parents(&ctx, &lease, &stop).await {
        return outcome;
    }
    let checkpoint = lease.checkpoint().await;
    let Some(start) = StartPosition::from_checkpoint(&checkpoint, &ctx.config) else {
        // Finished by a previous owner after we took it: nothing to read.
        release(&ctx, &lease).await;
        return Outcome::ShardEnded;
    };
    ctx.status.update_shard(&lease.key, |s| {
        s.state = ShardState::Processing;
        s.last_checkpoint = Some(checkpoint.clone());
    });
    tracing::info!(lease = %lease.key, %checkpoint, "processing shard");
    let checkpointer = Checkpointer::new(lease.clone(), ctx.table.clone(), ctx.metrics.clone());
    let mut processor = ctx.factory.create(&info);
    processor.initialize(&info, &checkpoint).await;

    let (tx, mut rx) = mpsc::channel(ctx.config.max_batches_ahead);
    // The reader task is owned here: dropping the set aborts it.
    let mut reader = JoinSet::new();
    start_reader(&ctx, &lease, start, tx, &mut reader);
    let mut filter = ResumeFilter::new(&checkpoint);

    loop {
        tokio::select! {
            biased;
            _ = lease.lost.cancelled() => {
                reader.abort_all();
                processor.lease_lost().await;
                return Outcome::LeaseLost;
            }
            _ = stop.cancelled() => {
                reader.abort_all();
                return shutdown(&ctx, &lease, processor.as_mut(), &checkpointer).await;
            }
            batch = rx.recv() => {
                let Some(batch) = batch else {
                    // Readers only stop at shard end; this one died (panicked). Hand the shard
                    // over cleanly rather than hold it without reading.
                    tracing::error!(lease = %lease.key, "shard reader stopped unexpectedly; releasing the lease");
                    return shutdown(&ctx, &lease, processor.as_mut(), &checkpointer).await;
                };
                let shard_end = batch.shard_end;
                deliver(&ctx, &lease, &info, &mut filter, batch, processor.as_mut(), &checkpointer).await;
                if shard_end {
                    return shard_ended(&ctx, &lease, processor.as_mut(), &checkpointer, &stop).await;
                }
            }
        }
    }
}

/// Waits until every parent lease is checkpointed at SHARD_END (or gone). Some(outcome) when
/// the shard was given up meanwhile.
async fn wait_for_parents(
    ctx: &Ctx,
    lease: &Arc<HeldLease>,
    stop: &CancellationToken,
) -> Option<Outcome> {
    if lease.parent_shard_ids.is_empty() {
        return None;
    }
    loop {
        let mut finished = true;
        for parent in &lease.parent_shard_ids {
            let key = format!(
                "{}{parent}",
                lease
                    .key
                    .strip_suffix(&lease.shard_id)
                    .unwrap_or(&lease.key)
            );
            match ctx.table.get(&key).await {
                // A missing parent lease was finished and trimmed, or predates this application.
                Ok(p) => finished &= p.is_none_or(|p| p.is_finished()),
                Err(e) => {
                    ctx.metrics.lease_table_errors.inc();
                    tracing::warn!(lease = %lease.key, error = %e, "cannot read parent lease");
                    finished = false;
                }
            }
            if !finished {
                break;
            }
        }
        if finished {
            return None;
        }
        tokio::select! {
            _ = lease.lost.cancelled() => return Some(Outcome::LeaseLost),
            _ = stop.cancelled() => {
                release(ctx, lease).await;
                return Some(Outcome::Shutdown);
            }
            _ = tokio::time::sleep(ctx.config.parent_poll_interval) => {}
        }
    }
}

fn start_reader(
    ctx: &Arc<Ctx>,
    lease: &HeldLease,
    start: StartPosition,
    tx: mpsc::Sender<RawBatch>,
    set: &mut JoinSet<()>,
) {
    let consumer_arn = ctx
        .streams
        .get(&lease.stream)
        .and_then(|m| m.consumer_arn.clone());
    match consumer_arn {
        Some(consumer_arn) => {
            let r = FanoutReader {
                client: ctx.reader_kinesis.clone(),
                stream: lease.stream.clone(),
                shard_id: lease.shard_id.clone(),
                consumer_arn,
                closed_shard_check_interval: ctx.config.fanout.closed_shard_check_interval,
                metrics: ctx.metrics.clone(),
            };
            set.spawn(r.run(start, tx));
        }
        None => {
            let r = PollingReader {
                client: ctx.reader_kinesis.clone(),
                stream: lease.stream.clone(),
                shard_id: lease.shard_id.clone(),
                config: ctx.config.polling.clone(),
                metrics: ctx.metrics.clone(),
            };
            set.spawn(r.run(start, tx));
        }
    }
}

async fn deliver(
    ctx: &Ctx,
    lease: &HeldLease,
    info: &ShardInfo,
    filter: &mut ResumeFilter,
    batch: RawBatch,
    processor: &mut dyn ShardRecordProcessor,
    checkpointer: &Checkpointer,
) {
    let stream = lease.stream.as_str();
    let behind = batch.behind_latest();
    let mut records = Vec::with_capacity(batch.records.len());
    let mut bytes = 0u64;
    let mut skipped = Skipped::default();
    for r in batch.records {
        bytes += r.data().as_ref().len() as u64;
        user_records(r, lease.hash_key_range, &mut records, &mut skipped);
    }
    let checkpointed = filter.apply(&mut records) as u64;
    for (reason, n) in [
        ("out_of_range", skipped.out_of_range),
        ("checkpointed", checkpointed),
    ] {
        if n > 0 {
            ctx.metrics
                .records_skipped
                .with_label_values(&[stream, reason])
                .inc_by(n);
        }
    }
    if skipped.corrupt_aggregates > 0 {
        ctx.metrics
            .read_errors
            .with_label_values(&["corrupt_aggregate"])
            .inc_by(skipped.corrupt_aggregates);
    }
    ctx.metrics
        .bytes_read
        .with_label_values(&[stream])
        .inc_by(bytes);
    ctx.metrics
        .records_read
        .with_label_values(&[stream])
        .inc_by(records.len() as u64);
    if let Some(behind) = behind {
        ctx.metrics
            .behind_latest
            .with_label_values(&[stream, &lease.shard_id])
            .set(behind.as_secs_f64());
    }
    let caught_up = records.is_empty() && batch.millis_behind_latest == Some(0);
    ctx.status.update_shard(&lease.key, |s| {
        s.millis_behind_latest = batch.millis_behind_latest;
        s.caught_up_since = if caught_up {
            s.caught_up_since.or_else(|| Some(Instant::now()))
        } else {
            None
        };
    });
    lease.note_delivered(
        records.last().map(KinesisClientRecord::position),
        batch.shard_end,
    );
    if !records.is_empty() || ctx.config.process_empty_batches {
        tracing::trace!(lease = %info.lease_key, n = records.len(), "process_records");
        processor
            .process_records(ProcessRecordsInput {
                records,
                millis_behind_latest: batch.millis_behind_latest,
                checkpointer: checkpointer.clone(),
            })
            .await;
    }
}

async fn shard_ended(
    ctx: &Ctx,
    lease: &HeldLease,
    processor: &mut dyn ShardRecordProcessor,
    checkpointer: &Checkpointer,
    stop: &CancellationToken,
) -> Outcome {
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        processor.shard_ended(checkpointer.clone()).await;
        if lease.checkpoint().await == Checkpoint::ShardEnd {
            break;
        }
        if lease.lost.is_cancelled() {
            processor.lease_lost().await;
            return Outcome::LeaseLost;
        }
        // Children must not start before the parent is checkpointed at SHARD_END; ask again,
        // as the KCL retries its shutdown task.
        let delay = backoff.next_delay();
        tracing::error!(lease = %lease.key, ?delay, "processor did not checkpoint SHARD_END in shard_ended; calling it again");
        tokio::select! {
            _ = lease.lost.cancelled() => {
                processor.lease_lost().await;
                return Outcome::LeaseLost;
            }
            _ = stop.cancelled() => return shutdown(ctx, lease, processor, checkpointer).await,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    tracing::info!(lease = %lease.key, "shard finished");
    release(ctx, lease).await;
    // Children may be waiting: list shards now rather than at the next interval.
    ctx.sync_now.notify_one();
    Outcome::ShardEnded
}

async fn shutdown(
    ctx: &Ctx,
    lease: &HeldLease,
    processor: &mut dyn ShardRecordProcessor,
    checkpointer: &Checkpointer,
) -> Outcome {
    ctx.status
        .update_shard(&lease.key, |s| s.state = ShardState::ShuttingDown);
    processor.shutdown_requested(checkpointer.clone()).await;
    release(ctx, lease).await;
    Outcome::Shutdown
}

async fn release(ctx: &Ctx, lease: &HeldLease) {
    match lease.release(&ctx.table, &ctx.metrics).await {
        Ok(true) => tracing::info!(lease = %lease.key, "lease released"),
        Ok(false) => tracing::info!(lease = %lease.key, "lease already lost; nothing to release"),
        Err(e) => {
            ctx.metrics.lease_table_errors.inc();
            tracing::warn!(lease = %lease.key, error = %e, "cannot release lease; it will expire");
        }
    }
}
