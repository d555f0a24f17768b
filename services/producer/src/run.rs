//! The producer's two jobs: generate, or replay a file. Both stop early on SIGINT/SIGTERM,
//! flush what is in flight, and print the summary.

use std::fs::File;
use std::io::BufReader;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use flowline_aws::AwsClients;
use flowline_datagen::{Generator, ReplayFormat, replay};
use flowline_model::{ParseConfig, StreamKind};
use flowline_runtime::Context;

use crate::args::GenArgs;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::progress;
use crate::publish::Publisher;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub async fn reference_only(
    ctx: &Context<Config>,
    aws: &AwsClients,
    args: &GenArgs,
) -> anyhow::Result<()> {
    let cfg = args.gen_config(now_ms())?;
    crate::reference::upload(&aws.s3, &ctx.config.reference.bucket, &cfg).await
}

pub async fn produce(
    ctx: &Context<Config>,
    aws: &AwsClients,
    args: &GenArgs,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let metrics = Metrics::register(ctx.registry())?;
    let streams = &ctx.config.streams;
    metrics.init_series(&[&streams.customers, &streams.addresses, &streams.sales]);
    let publisher = Publisher::new(
        &aws.kinesis,
        &ctx.config.streams,
        &ctx.config.kinesis,
        ctx.registry(),
        metrics.clone(),
    )
    .await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    let outcome = match &args.replay {
        Some(path) => {
            let progress = tokio::spawn(progress::report(
                publisher.counters.clone(),
                0,
                ctx.config.progress.log_interval,
                stop_rx,
            ));
            let r = replay_file(ctx, &publisher, &metrics, path).await;
            let _ = stop_tx.send(true);
            let _ = progress.await;
            r
        }
        None => {
            let cfg = args.gen_config(now_ms())?;
            tracing::info!(
                seed = cfg.seed,
                customers = cfg.customers,
                sales = cfg.sales,
                rate = cfg.rate,
                start_time = %cfg.start_time,
                bad_record_ratio = cfg.bad_record_ratio,
                "generating"
            );
            if ctx.config.reference.upload {
                crate::reference::upload(&aws.s3, &ctx.config.reference.bucket, &cfg).await?;
            }
            let expected = cfg.sales + u64::from(cfg.customers) * 2;
            let progress = tokio::spawn(progress::report(
                publisher.counters.clone(),
                expected,
                ctx.config.progress.log_interval,
                stop_rx,
            ));
            let r = generate(ctx, &publisher, &metrics, cfg).await;
            let _ = stop_tx.send(true);
            let _ = progress.await;
            r
        }
    };

    // Whatever happened, deliver what was accepted before reporting.
    let counters = publisher.counters.clone();
    let failed = publisher.finish().await?;
    let streams = &ctx.config.streams;
    println!(
        "{}",
        progress::summary(
            &counters,
            [&streams.customers, &streams.addresses, &streams.sales],
            started.elapsed()
        )
    );
    outcome?;
    anyhow::ensure!(
        failed == 0,
        "{failed} events could not be delivered (see the log for reasons)"
    );
    Ok(())
}

/// Sends generated records; with `rate > 0`, sale n goes out at `n / rate` seconds.
async fn generate(
    ctx: &Context<Config>,
    publisher: &Publisher,
    metrics: &Metrics,
    cfg: flowline_datagen::GenConfig,
) -> anyhow::Result<()> {
    let rate = cfg.rate;
    let shutdown = ctx.shutdown_token();
    let t0 = tokio::time::Instant::now();
    let mut sales = 0u64;
    for record in Generator::new(cfg)? {
        if shutdown.is_cancelled() {
            tracing::info!("stopping early on shutdown request");
            break;
        }
        if record.stream == StreamKind::Sales && rate > 0.0 {
            let due = t0 + Duration::from_secs_f64(sales as f64 / rate);
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        if record.stream == StreamKind::Sales {
            sales += 1;
        }
        if let Some(kind) = record.bad {
            metrics.bad_records.with_label_values(&[kind.name()]).inc();
        }
        tokio::select! {
            r = publisher.send(record.stream, &record.partition_key, record.data) => r?,
            _ = shutdown.cancelled() => break,
        }
    }
    Ok(())
}

/// Sends the valid lines of a CSV or JSON Lines file; bad lines are logged with their
/// number, counted, and skipped.
async fn replay_file(
    ctx: &Context<Config>,
    publisher: &Publisher,
    metrics: &Metrics,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let format = ReplayFormat::from_path(path).with_context(|| {
        format!(
            "--replay {}: unknown format (use .csv, .jsonl or .ndjson)",
            path.display()
        )
    })?;
    let file = File::open(path).with_context(|| format!("--replay {}", path.display()))?;
    // Parsing reads the file synchronously: it runs on a blocking thread and hands validated
    // lines over a bounded channel, so a slow stream slows the reader instead of filling memory.
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let reader = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        for item in replay(BufReader::new(file), format, ParseConfig::default())? {
            if tx.blocking_send(item).is_err() {
                break; // the sender side stopped (shutdown)
            }
        }
        Ok(())
    });
    let shutdown = ctx.shutdown_token();
    let mut skipped = 0u64;
    while let Some((line, item)) = rx.recv().await {
        if shutdown.is_cancelled() {
            break;
        }
        match item {
            Ok(record) => {
                let key = record.partition_key().to_string();
                tokio::select! {
                    r = publisher.send(record.stream(), &key, record.data) => r?,
                    _ = shutdown.cancelled() => break,
                }
            }
            Err(e) => {
                skipped += 1;
                metrics
                    .skipped_lines
                    .with_label_values(&[e.error_type()])
                    .inc();
                tracing::warn!(file = %path.display(), line, error = %e, "skipping invalid line");
            }
        }
    }
    drop(rx);
    reader.await.context("replay reader")??;
    if skipped > 0 {
        tracing::warn!(skipped, "replay skipped invalid lines");
    }
    Ok(())
}
