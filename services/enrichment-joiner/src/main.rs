//! enrichment-joiner: reads `customers`, `addresses` and `sales` (any number of copies share
//! the shards through the lease table), keeps every customer and address version in
//! DynamoDB, holds each sale until the global join watermark passes its event time, and
//! writes one enriched order per sale to `orders-enriched` (DESIGN.md sections 3–4).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use flowline_aws::{AwsClients, AwsService};
use flowline_join::{JoinConfig, JoinCore, JoinMetrics, ReferenceHandle};
use flowline_kinesis::consumer::{Consumer, ShardInfo, ShardRecordProcessor};
use flowline_kinesis::producer::{Producer, ProducerMetrics};
use flowline_pipeline::{DeadLetterMetrics, DeadLetters, watch_consumer};
use flowline_runtime::{Context, RuntimeArgs, Service};
use flowline_watermark::WatermarkTracker;
use tokio::sync::mpsc;

use enrichment_joiner::config::Config;
use enrichment_joiner::joiner::{Joiner, STAGE};
use enrichment_joiner::metrics::Metrics;
use enrichment_joiner::processor::{Fail, Processor};
use enrichment_joiner::reference::ReferenceLoader;
use enrichment_joiner::state::{self, StateTable};

/// Admin port from DESIGN.md section 5.
const SERVICE: Service = Service::new("enrichment-joiner", 9102);

#[derive(Parser)]
#[command(
    version,
    about = "Joins sales with customer and address versions and reference data into enriched orders."
)]
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
    flowline_aws::watch_dependencies(
        &ctx,
        &aws,
        &[AwsService::Kinesis, AwsService::DynamoDb, AwsService::S3],
    );
    let registry = ctx.registry();
    let metrics = Arc::new(Metrics::register(registry)?);
    let join_metrics = JoinMetrics::register(registry)?;
    let producer_metrics = ProducerMetrics::register(registry)?;
    let dead_letter_metrics = DeadLetterMetrics::register(registry)?;

    let state = StateTable::new(
        aws.dynamodb.clone(),
        &cfg.state.table,
        metrics.dynamodb_seconds.clone(),
    );
    state.ensure(cfg.state.create_table).await?;

    // Not ready until the reference data and the consumer are there.
    let starting = ctx.readiness().register("startup");
    starting.not_ready("loading the reference data");
    let mut loader = ReferenceLoader::new(aws.s3.clone(), cfg.reference.clone(), metrics.clone());
    let Some(data) = loader.initial(&ctx.shutdown_token()).await? else {
        return Ok(());
    };
    let reference = ReferenceHandle::new(data);
    ctx.spawn(
        "reference-refresh",
        loader.refresh_loop(reference.clone(), ctx.shutdown_token()),
    );

    let output = Arc::new(
        Producer::new(
            &aws.kinesis,
            &cfg.output.stream,
            cfg.kinesis.clone(),
            &producer_metrics,
        )
        .await
        .with_context(|| format!("output stream {}", cfg.output.stream))?,
    );
    let dead_letters = Arc::new(
        DeadLetters::new(
            &aws.kinesis,
            &cfg.dead_letters.stream,
            cfg.kinesis.clone(),
            &producer_metrics,
            dead_letter_metrics,
            STAGE,
        )
        .await?,
    );

    // Other copies may write versions too: cached entries are trusted only up to the
    // watermark, until the joiner finds this copy reads every entity shard.
    let join_config = JoinConfig {
        exclusive_writer: false,
        ..cfg.join.clone()
    };
    let core = JoinCore::new(join_config, state::stores(&state), reference)?;
    let fail: Fail = {
        let ctx = ctx.clone();
        Arc::new(move |e| ctx.fail("joiner", e))
    };
    let (tx, rx) = mpsc::channel(64);
    // One id for the leases and the published watermarks.
    let mut consumer_config = cfg.consumer_config();
    let worker_id = consumer_config.effective_worker_id();
    consumer_config.worker_id = Some(worker_id.clone());
    let joiner = Joiner {
        core,
        state,
        tracker: WatermarkTracker::new(cfg.watermark.clone()),
        watermark_config: cfg.watermark.clone(),
        streams: cfg.streams.clone(),
        kinesis: aws.kinesis.clone(),
        output: output.clone(),
        dead_letters: dead_letters.clone(),
        metrics: metrics.clone(),
        join_metrics,
        emit: cfg.emit.clone(),
        fail: fail.clone(),
        worker_id,
    };
    let join_task = {
        let fail = fail.clone();
        tokio::spawn(async move {
            let result = joiner.run(rx).await;
            if let Err(e) = &result {
                fail(anyhow::anyhow!("{e:#}"));
            }
            result
        })
    };

    let factory = {
        let (cfg, dead_letters, metrics) = (cfg.clone(), dead_letters.clone(), metrics.clone());
        move |shard: &ShardInfo| -> Box<dyn ShardRecordProcessor> {
            let kind = cfg
                .streams
                .kind(&shard.stream)
                .expect("the consumer reads only the streams named in [streams]");
            Box::new(Processor::new(
                kind,
                shard,
                cfg.parse.clone(),
                dead_letters.clone(),
                metrics.clone(),
                tx.clone(),
                fail.clone(),
            ))
        }
    };
    let consumer = Consumer::new(
        consumer_config,
        aws.kinesis.clone(),
        aws.dynamodb.clone(),
        Arc::new(factory),
        registry,
    )?;
    watch_consumer(&ctx, consumer.status());
    starting.ready();
    // Returns after every processor checkpointed and released its lease; the processors
    // and the factory (the joiner's senders) are gone with the consumer.
    let consumed = consumer.run(ctx.shutdown_token()).await;
    let joined = join_task.await.context("joiner task")?;
    output.shutdown().await?;
    dead_letters.shutdown().await?;
    consumed?;
    joined
}
