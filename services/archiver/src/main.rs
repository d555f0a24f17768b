//! archiver: Firehose-style buffered delivery of every stream to the S3 lake — raw
//! streams as gzip JSON Lines, `orders-enriched` and `order-metrics` as Parquet (Snappy),
//! dead letters and records that cannot be converted under `errors/` — or, per stream,
//! through a Firehose delivery stream. A shard is checkpointed only up to records that
//! reached S3 (or Firehose).

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use flowline_aws::{AwsClients, AwsService};
use flowline_kinesis::consumer::Consumer;
use flowline_lake::{FirehoseDelivery, FirehoseMetrics, LakeMetrics, LakeWriter, S3Uploader};
use flowline_runtime::{Context, RuntimeArgs, Service};
use tracing::{info, warn};

mod archive;
mod config;
mod firehose_processor;
mod lake_processor;
mod metrics;
mod routing;

use archive::{Archive, Factory};
use config::Config;
use metrics::ArchiverMetrics;

/// Admin port from DESIGN.md section 5.
const SERVICE: Service = Service::new("archiver", 9105);

#[derive(Parser)]
#[command(
    version,
    about = "Firehose-style buffered delivery of every stream to S3 as Parquet and JSON Lines."
)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,
}

fn main() -> ExitCode {
    SERVICE.run(Cli::parse().runtime, run)
}

async fn run(ctx: Context<Config>) -> anyhow::Result<()> {
    let config = ctx.config.clone();
    let aws = AwsClients::load(&config.aws).await?;
    let mut dependencies = vec![AwsService::Kinesis, AwsService::DynamoDb, AwsService::S3];
    if !config.firehose.streams.is_empty() {
        dependencies.push(AwsService::Firehose);
    }
    flowline_aws::watch_dependencies(&ctx, &aws, &dependencies);
    watch_bucket(&ctx, &aws, &config.lake.bucket);

    let lake_metrics = LakeMetrics::new(ctx.registry())?;
    let uploader = S3Uploader::new(
        &aws.s3,
        &config.lake.bucket,
        config.lake.upload.clone(),
        lake_metrics.clone(),
    );
    let writer = LakeWriter::new(config.lake.clone(), uploader, lake_metrics);
    let firehose_metrics = FirehoseMetrics::new(ctx.registry())?;
    let firehose: HashMap<String, FirehoseDelivery> = config
        .firehose
        .streams
        .keys()
        .filter_map(|s| Some((s.clone(), config.firehose.config_for(s)?)))
        .map(|(s, c)| {
            let delivery = FirehoseDelivery::new(&aws.firehose, c, firehose_metrics.clone());
            (s, delivery)
        })
        .collect();
    let archive = Arc::new(Archive {
        writer,
        streams: config.streams.clone(),
        firehose,
        metrics: ArchiverMetrics::register(ctx.registry())?,
        ctx: ctx.clone(),
    });

    let mut consumer_config = config.consumer.clone();
    // Quiet shards get (empty) batches too: the writer's wall-clock flush of a quiet
    // shard is checkpointed there, and a failed upload noticed.
    consumer_config.process_empty_batches = true;
    let consumer = Consumer::new(
        consumer_config,
        aws.kinesis.clone(),
        aws.dynamodb.clone(),
        Arc::new(Factory(archive.clone())),
        ctx.registry(),
    )
    .context("starting the consumer")?;
    flowline_pipeline::watch_consumer(&ctx, consumer.status());
    info!(bucket = %config.lake.bucket, streams = ?config.consumer.streams, "archiving");

    // Every processor flushes and checkpoints its shard when asked to shut down.
    consumer.run(ctx.shutdown_token()).await?;

    // Whatever is left (a processor aborted by the shutdown timeout) is uploaded, but
    // its shard is not checkpointed: a restart reads it again and overwrites.
    match Arc::try_unwrap(archive) {
        Ok(archive) => archive.writer.shutdown().await?,
        Err(_) => warn!("shard processors still running; not flushing the lake writer"),
    }
    Ok(())
}

/// Readiness component `bucket`: the lake's bucket exists and answers.
fn watch_bucket(ctx: &Context<Config>, aws: &AwsClients, bucket: &str) {
    let (aws, bucket) = (aws.clone(), bucket.to_string());
    ctx.watch_dependency("bucket", Duration::from_secs(5), move || {
        let (aws, bucket) = (aws.clone(), bucket.clone());
        async move { flowline_aws::probe_s3_bucket(&aws, &bucket).await }
    });
}
