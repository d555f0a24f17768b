//! `flowctl replay`: re-publishes archived raw events from S3 into the raw streams (or
//! other named streams), in event-time order across streams, rate-limited, through the
//! KPL-style producer, with a resumable position.
//!
//! Flow: list the archive by hour → a loader task reads one hour ahead (download,
//! parse, write bad lines to `errors/replay/`, order) → the sender puts each record on
//! its target's producer → the tracker awaits acknowledgements in order and advances
//! the position file. See `order.rs` for the order and `position.rs` for the file.

mod archive;
mod errors;
mod hour;
mod options;
mod order;
mod position;
mod progress;
mod send;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use flowline_aws::{AwsClients, AwsSettings};
use flowline_kinesis::producer::Record;
use flowline_model::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use options::Args;

use archive::ArchiveObject;
use hour::Hour;
use options::Plan;
use order::{Ordered, SortKey};
use position::PositionFile;
use progress::{Outcome, Progress, Summary};
use send::{Limiter, Sent, Targets};

/// One hour, read and ordered, ready to send.
struct Batch {
    n: usize,
    hour: Hour,
    ordered: Ordered,
    bad_lines: BTreeMap<String, u64>,
    error_objects: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let plan = Arc::new(args.plan()?);
    let file = PositionFile::open(&args.position, &plan, args.restart)?;
    let started = Instant::now();
    let mut summary = Summary {
        outcome: Outcome::Finished,
        hours: 0,
        objects: 0,
        sent: 0,
        acknowledged: 0,
        already_acknowledged: file.position.acked_records,
        duplicates: 0,
        bad_lines: BTreeMap::new(),
        error_objects: 0,
        acknowledged_total: file.position.acked_records,
        position_file: args.position.display().to_string(),
        seconds: 0.0,
        records_per_second: 0.0,
        error: None,
    };
    let aws = AwsClients::load(&AwsSettings::default()).await?;
    let done = file.position.acked.clone();
    // Hours before the position's were done by an earlier run: not even read. A run
    // after a finished one re-reads only the last hour, and replays hours archived since.
    let hours: Vec<(Hour, Vec<ArchiveObject>)> =
        archive::list(&aws.s3, &plan.bucket, &plan.sources, &plan.range)
            .await?
            .into_iter()
            .filter(|(h, _)| done.as_ref().is_none_or(|d| h >= &d.hour))
            .collect();
    summary.hours = hours.len();
    summary.objects = hours.iter().map(|(_, o)| o.len()).sum();
    let config = send::producer_config(args.in_flight, args.linger);
    let targets = Targets::open(&aws.kinesis, &plan.sources, &config).await?;

    let progress = Arc::new(Progress::new(hours.len(), !args.no_progress));
    let cancel = CancellationToken::new();
    let interrupted = Arc::new(AtomicBool::new(false));
    let signals = tokio::spawn(watch_signals(cancel.clone(), interrupted.clone()));
    let (batch_tx, batch_rx) = mpsc::channel(1);
    let loader = tokio::spawn(load(
        aws.s3.clone(),
        plan.clone(),
        hours,
        done,
        args.downloads,
        batch_tx,
    ));
    let (ack_tx, tracker) =
        send::spawn_tracker(file, args.save_every, progress.clone(), cancel.clone());

    let sending = send_all(
        batch_rx,
        &targets,
        &Limiter::new(args.rate),
        ack_tx,
        &cancel,
        args.max_records,
        &progress,
        &mut summary,
    )
    .await;
    loader.abort();
    // Deliver what was sent before stopping: the tracker records it as it is acked.
    let flushed = targets.shutdown().await;
    let mut tracked = tracker.await?;
    signals.abort();
    progress.finish();

    summary.acknowledged = tracked.acked;
    summary.acknowledged_total = tracked.file.position.acked_records;
    summary.seconds = started.elapsed().as_secs_f64();
    summary.records_per_second = tracked.acked as f64 / summary.seconds.max(1e-9);
    let error = match (sending, flushed, tracked.error.take()) {
        (_, _, Some(e)) | (Err(e), _, None) | (Ok(_), Err(e), None) => Some(e),
        (Ok(stop), Ok(()), None) => {
            summary.outcome = stop;
            None
        }
    };
    if let Some(e) = &error {
        summary.outcome = Outcome::Failed;
        summary.error = Some(format!("{e:#}"));
    } else if summary.outcome == Outcome::Finished {
        tracked.file.position.finished = true;
        tracked.file.save()?;
    } else if interrupted.load(Ordering::SeqCst) {
        summary.outcome = Outcome::Interrupted;
    }
    summary.print(args.json);
    match (error, summary.outcome) {
        (Some(e), _) => Err(e.context(format!(
            "replay failed; the position in {} covers what was acknowledged: run the same command again to resume",
            tracked.file.path().display()
        ))),
        (None, Outcome::Interrupted) => Err(anyhow::anyhow!(
            "interrupted; the position in {} covers what was acknowledged: run the same command again to resume",
            tracked.file.path().display()
        )),
        (None, _) => Ok(()),
    }
}

/// Reads the hours in order, one ahead of the sender (the channel holds one batch).
async fn load(
    s3: aws_sdk_s3::Client,
    plan: Arc<Plan>,
    hours: Vec<(Hour, Vec<ArchiveObject>)>,
    done: Option<SortKey>,
    downloads: usize,
    tx: mpsc::Sender<anyhow::Result<Batch>>,
) {
    for (i, (hour, objects)) in hours.into_iter().enumerate() {
        let batch = async {
            let content =
                archive::read_hour(&s3, &plan.bucket, &plan.sources, &hour, &objects, downloads)
                    .await?;
            let mut bad_lines = BTreeMap::new();
            for b in &content.bad {
                *bad_lines.entry(b.error_type.to_string()).or_insert(0) += 1;
            }
            let now = Timestamp::from_datetime(chrono::Utc::now()).unwrap_or_default();
            let error_objects = errors::error_objects(&hour, &content.bad, &plan.sources, now);
            let error_objects = errors::upload(&s3, &plan.bucket, error_objects).await?;
            anyhow::Ok(Batch {
                n: i + 1,
                hour: hour.clone(),
                ordered: order::order(content.good, done.as_ref()),
                bad_lines,
                error_objects,
            })
        }
        .await;
        let failed = batch.is_err();
        if tx.send(batch).await.is_err() || failed {
            return;
        }
    }
}

/// Sends every record of every batch, in order, until the batches run out, the record
/// limit is reached or the run is cancelled. Counts into `summary`.
#[allow(clippy::too_many_arguments)]
async fn send_all(
    mut batches: mpsc::Receiver<anyhow::Result<Batch>>,
    targets: &Targets,
    limiter: &Limiter,
    acks: mpsc::Sender<Sent>,
    cancel: &CancellationToken,
    max_records: Option<u64>,
    progress: &Progress,
    summary: &mut Summary,
) -> anyhow::Result<Outcome> {
    loop {
        let batch = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ok(Outcome::Interrupted),
            batch = batches.recv() => batch,
        };
        let Some(batch) = batch else {
            return Ok(Outcome::Finished);
        };
        let batch = batch?;
        if batch.ordered.already_acked > 0 {
            tracing::info!(hour = %batch.hour, skipped = batch.ordered.already_acked, "resuming inside the hour");
        }
        summary.duplicates += batch.ordered.duplicates;
        summary.error_objects += batch.error_objects;
        for (t, n) in batch.bad_lines {
            *summary.bad_lines.entry(t).or_insert(0) += n;
        }
        progress.hour_read(
            batch.n,
            &batch.hour.to_string(),
            batch.ordered.records.len() as u64,
        );
        for rec in batch.ordered.records {
            if max_records.is_some_and(|max| summary.sent >= max) {
                return Ok(Outcome::MaxRecords);
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(Outcome::Interrupted),
                _ = limiter.wait() => {}
            }
            let record = Record::new(rec.partition_key, Bytes::from(rec.key.line.clone()));
            // A send cancelled while waiting for buffer room has not submitted the record.
            let pending = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(Outcome::Interrupted),
                pending = targets.for_source(rec.source).send(record) => pending?,
            };
            if acks.send((rec.key, pending)).await.is_err() {
                // The tracker stopped on a failure; it reports it.
                return Ok(Outcome::Failed);
            }
            summary.sent += 1;
        }
    }
}

/// SIGINT or SIGTERM stops sending (what was sent is still delivered and recorded); a
/// second one exits at once.
async fn watch_signals(cancel: CancellationToken, interrupted: Arc<AtomicBool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    eprintln!("flowctl replay: stopping; delivering what was sent (signal again to exit at once)");
    interrupted.store(true, Ordering::SeqCst);
    cancel.cancel();
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    std::process::exit(130);
}
