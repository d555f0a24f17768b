//! The joiner's own path, from memory: one `Processor` per input shard, fed its records in
//! consumer-sized batches as the consumer calls `process_records` (parse, validate, hand to
//! the joiner task), and the joiner task itself (`Joiner::run`: apply to the join core,
//! emission rounds that flush state, publish and read watermarks, advance, write the orders
//! and wait for their acknowledgement). Only the Kinesis read and the lease table are
//! replaced: the checkpoints go to an in-memory sink.
//!
//! Two parts can be swapped to find the bound: the join state (the DynamoDB state table,
//! as in the service, or in-memory stores) and the output (the producer into the Kinesis
//! emulator, or into an in-process Kinesis that acknowledges at once). The published
//! watermarks always go through the state table (one write and one read per round).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use enrichment_joiner::config::{Config, Streams};
use enrichment_joiner::joiner::{Joiner, STAGE};
use enrichment_joiner::metrics::Metrics;
use enrichment_joiner::processor::{Fail, Processor};
use enrichment_joiner::state::{self, StateTable};
use flowline_join::{JoinConfig, JoinCore, JoinMetrics, JoinStores, ReferenceHandle};
use flowline_kinesis::Error as KinesisError;
use flowline_kinesis::consumer::{Checkpoint, ShardInfo, ShardRecordProcessor};
use flowline_kinesis::producer::{NullKinesis, Producer, ProducerMetrics};
use flowline_pipeline::{CheckpointSink, DeadLetterMetrics, DeadLetters};
use flowline_watermark::WatermarkTracker;
use futures::future::BoxFuture;
use tokio::sync::mpsc;

use crate::input::Input;

/// The lease table's stand-in: counts the checkpoints written.
#[derive(Default)]
struct Checkpoints(Mutex<u64>);

impl CheckpointSink for Checkpoints {
    fn write(&self, _at: Checkpoint) -> BoxFuture<'_, Result<(), KinesisError>> {
        *self.0.lock().expect("not poisoned") += 1;
        Box::pin(async { Ok(()) })
    }
}

#[derive(Clone, Copy)]
pub struct Variant {
    pub dynamodb_state: bool,
    pub kinesis_output: bool,
}

impl Variant {
    pub fn name(self) -> String {
        format!(
            "{} state, {} output",
            if self.dynamodb_state {
                "DynamoDB"
            } else {
                "in-memory"
            },
            if self.kinesis_output {
                "Kinesis"
            } else {
                "in-process"
            },
        )
    }
}

/// Where the run's resources live (created by `main`).
pub struct Resources {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub kinesis: aws_sdk_kinesis::Client,
    /// Input stream names: the joiner lists their shards for the watermark.
    pub streams: Streams,
    pub output: String,
    pub in_process_shards: u128,
    pub dead_letters: String,
}

pub struct Figures {
    pub orders: u64,
    pub seconds: f64,
    pub complete: bool,
    /// Sales handed to the joiner (read from the sales shard), written out or not.
    pub sales_read: u64,
    /// Seconds spent waiting for DynamoDB calls and their number (the joiner's latency
    /// histogram).
    pub dynamodb_seconds: f64,
    pub dynamodb_calls: u64,
    pub rounds: u64,
    pub round_seconds: f64,
    pub checkpoints: u64,
}

impl Figures {
    pub fn rate(&self) -> f64 {
        self.orders as f64 / self.seconds
    }
}

fn orders_out(metrics: &Metrics) -> u64 {
    ["complete", "partial"]
        .iter()
        .map(|s| metrics.orders_out.with_label_values(&[s]).get())
        .sum()
}

/// Runs `input` through the joiner with a fresh state table `table` until every sale is
/// written or `limit` passes; the table is deleted afterwards.
pub async fn run(
    variant: Variant,
    res: &Resources,
    table: &str,
    input: &Input,
    batch: usize,
    limit: Duration,
) -> Figures {
    let config = Config::default();
    let registry = prometheus::Registry::new();
    let metrics = Arc::new(Metrics::register(&registry).expect("metrics"));
    let producer_metrics = ProducerMetrics::register(&registry).expect("producer metrics");
    let state = StateTable::new(
        res.dynamodb.clone(),
        table,
        metrics.dynamodb_seconds.clone(),
    );
    state.ensure(true).await.expect("state table");
    let stores = if variant.dynamodb_state {
        state::stores(&state)
    } else {
        JoinStores::in_memory()
    };
    let output = if variant.kinesis_output {
        Producer::new(
            &res.kinesis,
            &res.output,
            config.kinesis.clone(),
            &producer_metrics,
        )
        .await
    } else {
        let api = Arc::new(NullKinesis::new(res.in_process_shards));
        Producer::with_api(api, &res.output, config.kinesis.clone(), &producer_metrics).await
    };
    let output = Arc::new(output.expect("output producer"));
    let dead_letters = Arc::new(
        DeadLetters::new(
            &res.kinesis,
            &res.dead_letters,
            config.kinesis.clone(),
            &producer_metrics,
            DeadLetterMetrics::register(&registry).expect("dead-letter metrics"),
            STAGE,
        )
        .await
        .expect("dead-letter producer"),
    );
    // As the service does: other copies may write versions too.
    let join_config = JoinConfig {
        exclusive_writer: false,
        ..config.join.clone()
    };
    let reference = ReferenceHandle::new(input.reference());
    let core = JoinCore::new(join_config, stores, reference).expect("join core");
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let fail: Fail = {
        let failures = failures.clone();
        Arc::new(move |e| {
            failures
                .lock()
                .expect("not poisoned")
                .push(format!("{e:#}"))
        })
    };
    let (tx, rx) = mpsc::channel(64);
    let joiner = Joiner {
        core,
        state: state.clone(),
        tracker: WatermarkTracker::new(config.watermark.clone()),
        watermark_config: config.watermark.clone(),
        streams: res.streams.clone(),
        kinesis: res.kinesis.clone(),
        output: output.clone(),
        dead_letters: dead_letters.clone(),
        metrics: metrics.clone(),
        join_metrics: JoinMetrics::register(&registry).expect("join metrics"),
        emit: config.emit.clone(),
        fail: fail.clone(),
        // The only copy: once it published every entity shard it reads exclusively.
        worker_id: "bench-joiner".into(),
    };

    let started = Instant::now();
    let join_task = {
        // As the service does: a joiner error stops everything.
        let fail = fail.clone();
        tokio::spawn(async move {
            if let Err(e) = joiner.run(rx).await {
                fail(e);
            }
        })
    };
    let checkpoints = Arc::new(Checkpoints::default());
    let mut feeders = tokio::task::JoinSet::new();
    for (kind, records) in &input.streams {
        let info = ShardInfo {
            stream: res.streams.name(*kind).to_owned(),
            // The single shard of each input stream, as `list_shards` reports it.
            shard_id: "shardId-000000000000".into(),
            lease_key: format!("bench:{}", res.streams.name(*kind)),
            parent_shard_ids: Vec::new(),
            hash_key_range: None,
        };
        let mut processor = Processor::new(
            *kind,
            &info,
            config.parse.clone(),
            dead_letters.clone(),
            metrics.clone(),
            tx.clone(),
            fail.clone(),
        );
        let (records, checkpoints) = (records.clone(), checkpoints.clone());
        // The consumer's pause between two reads at the tip of a shard.
        let idle_read = config.consumer.polling.idle_time_between_reads;
        feeders.spawn(async move {
            processor.initialize(&info, &Checkpoint::TrimHorizon).await;
            for chunk in records.chunks(batch) {
                // A backlog: the reader is behind until the last batch.
                processor
                    .process(chunk, Some(1_000), checkpoints.clone())
                    .await;
            }
            // Then, as the consumer at the tip of a shard (`process_empty_batches`): an
            // empty batch per idle read. The processor also lives on, as under the
            // consumer: the joiner stops once every processor is gone.
            loop {
                tokio::time::sleep(idle_read).await;
                processor.process(&[], Some(0), checkpoints.clone()).await;
            }
        });
    }
    drop(tx);

    let mut done = orders_out(&metrics);
    while done < input.sales && started.elapsed() < limit && failures.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
        done = orders_out(&metrics);
    }
    let seconds = started.elapsed().as_secs_f64();
    // Stop reading and joining; what is still buffered is not part of the figure.
    feeders.abort_all();
    join_task.abort();
    let _ = join_task.await;
    let failures = failures.lock().expect("not poisoned").clone();
    assert!(failures.is_empty(), "the joiner failed: {failures:?}");

    let (dynamodb_seconds, dynamodb_calls) = histogram(
        &registry,
        "flowline_enrichment_joiner_dynamodb_request_seconds",
    );
    // The sentinel sale is not counted.
    let sales_read = metrics
        .records_in
        .with_label_values(&[&res.streams.sales])
        .get()
        .min(input.sales);
    let figures = Figures {
        orders: done,
        seconds,
        complete: done >= input.sales,
        sales_read,
        dynamodb_seconds,
        dynamodb_calls,
        rounds: metrics.round_seconds.get_sample_count(),
        round_seconds: metrics.round_seconds.get_sample_sum(),
        checkpoints: *checkpoints.0.lock().expect("not poisoned"),
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), output.shutdown()).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), dead_letters.shutdown()).await;
    let _ = res.dynamodb.delete_table().table_name(table).send().await;
    figures
}

/// Total seconds and number of observations of a histogram, over all its label values.
fn histogram(registry: &prometheus::Registry, name: &str) -> (f64, u64) {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().iter())
        .map(|m| {
            let h = m.get_histogram();
            (h.get_sample_sum(), h.get_sample_count())
        })
        .fold((0.0, 0), |(s, c), (s1, c1)| (s + s1, c + c1))
}
