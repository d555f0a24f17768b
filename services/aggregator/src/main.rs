//! Event-time windowed metrics over enriched orders.
//!
//! Per held shard a processor counts orders into per-window partials (the
//! window crate's accumulator, `flowline_window::Partials`) and
//! writes them, with the shard's position and watermark, in one DynamoDB
//! transaction before checkpointing the lease (`processor`, `store`). An
//! emitter in every copy computes the global watermark from what every
//! shard owner published and emits each due window from the merged
//! partials of all shards, with a deterministic id and revision (`emitter`).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use flowline_aws::{AwsClients, AwsService};
use flowline_kinesis::consumer::{Consumer, ShardInfo, ShardRecordProcessor};
use flowline_kinesis::producer::{Producer, ProducerMetrics};
use flowline_pipeline::{DeadLetterMetrics, DeadLetters};
use flowline_runtime::{Context, RuntimeArgs, Service};

mod config;
mod emitter;
mod metrics;
mod processor;
mod store;

use config::Config;
use emitter::Emitter;
use metrics::Metrics;
use processor::{STAGE, ShardProcessor, Shared};
use store::Store;

/// Admin port from DESIGN.md section 5.
const SERVICE: Service = Service::new("aggregator", 9103);

#[derive(Parser)]
#[command(version, about = "Event-time windowed metrics over enriched orders.")]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,
}

fn main() -> ExitCode {
    SERVICE.run(Cli::parse().runtime, run)
}

async fn run(ctx: Context<Config>) -> anyhow::Result<()> {
    let cfg = ctx.config.clone();
    let aws = AwsClients::load(&cfg.aws).await?;
    flowline_aws::watch_dependencies(&ctx, &aws, &[AwsService::Kinesis, AwsService::DynamoDb]);

    let registry = ctx.registry();
    let producer_metrics = ProducerMetrics::register(registry)?;
    let metrics = Metrics::register(registry)?;
    let windows = flowline_window::WindowSpec::new(&cfg.windows)?;
    let store = Store::new(aws.dynamodb.clone(), &cfg.state.table, windows.clone());
    if cfg.state.create_table {
        store.ensure_table().await?;
    }
    let output = Producer::new(
        &aws.kinesis,
        &cfg.output.stream,
        cfg.kinesis.clone(),
        &producer_metrics,
    )
    .await
    .with_context(|| format!("output stream {}", cfg.output.stream))?;
    let dead_letters = Arc::new(
        DeadLetters::new(
            &aws.kinesis,
            &cfg.output.dead_letters,
            cfg.kinesis.clone(),
            &producer_metrics,
            DeadLetterMetrics::register(registry)?,
            STAGE,
        )
        .await?,
    );

    let (global_tx, global_rx) = tokio::sync::watch::channel(None);
    let fail_ctx = ctx.clone();
    let shared = Arc::new(Shared {
        store,
        dead_letters: dead_letters.clone(),
        metrics,
        windows,
        watermarks: cfg.watermarks.clone(),
        parse: cfg.parse.clone(),
        publish_interval: cfg.state.publish_interval,
        global: global_rx,
        owners: Default::default(),
        fail: Box::new(move |e| fail_ctx.fail("shard processor", e)),
    });

    let emitter = Emitter {
        shared: shared.clone(),
        output,
        kinesis: aws.kinesis.clone(),
        streams: cfg.consumer.streams.clone(),
        interval: cfg.state.emit_interval,
        retention_grace: cfg.state.retention_grace,
        global: global_tx,
    };
    ctx.spawn("emitter", emitter.run(ctx.shutdown_token()));

    let factory_shared = shared.clone();
    let factory = Arc::new(move |_: &ShardInfo| -> Box<dyn ShardRecordProcessor> {
        Box::new(ShardProcessor::new(factory_shared.clone()))
    });
    let consumer = Consumer::new(
        cfg.consumer.clone(),
        aws.kinesis.clone(),
        aws.dynamodb.clone(),
        factory,
        registry,
    )?;
    flowline_pipeline::watch_consumer(&ctx, consumer.status());
    consumer.run(ctx.shutdown_token()).await?;
    dead_letters
        .shutdown()
        .await
        .context("flushing dead letters")?;
    Ok(())
}
