//! The indexer's own path, from memory: one `Processor` per shard, each fed its records in
//! consumer-sized batches, exactly as the consumer calls `process_records` (parse, build
//! the document, enqueue into the bulk sink, settle every item, write the batch's
//! checkpoint). Only the Kinesis read and the lease table are replaced: the checkpoints go
//! to an in-memory sink, so the figure is the indexer's, not the lease table's.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use flowline_kinesis::Error as KinesisError;
use flowline_kinesis::consumer::{
    Checkpoint, KinesisClientRecord, ShardInfo, ShardRecordProcessor,
};
use flowline_kinesis::producer::ProducerMetrics;
use flowline_opensearch::bulk::{BulkMetrics, BulkSink, IndexNames, OpenSearchBulkApi};
use flowline_opensearch::opensearch::OpenSearch;
use flowline_pipeline::{CheckpointSink, DeadLetterMetrics, DeadLetters};
use futures::future::BoxFuture;
use indexer::config::Config;
use indexer::metrics::Metrics;
use indexer::processor::{Processor, STAGE, Shared};

/// The lease table's stand-in: remembers the last checkpoint written.
#[derive(Default)]
struct LastCheckpoint(Mutex<Option<Checkpoint>>);

impl CheckpointSink for LastCheckpoint {
    fn write(&self, at: Checkpoint) -> BoxFuture<'_, Result<(), KinesisError>> {
        *self.0.lock().expect("not poisoned") = Some(at);
        Box::pin(async { Ok(()) })
    }
}

/// What the service's `run::Outputs` builds (it needs the service's runtime context):
/// the bulk sink and dead letters, shared by every shard's processor.
pub struct Wiring {
    pub shared: Arc<Shared>,
    sink: BulkSink,
    failures: Arc<Mutex<Vec<String>>>,
}

impl Wiring {
    pub async fn new(
        client: &OpenSearch,
        kinesis: &aws_sdk_kinesis::Client,
        dead_letter_stream: &str,
        names: IndexNames,
        config: &Config,
    ) -> Self {
        // A fresh registry per run: the service registers each metric once.
        let registry = prometheus::Registry::new();
        let sink = BulkSink::start(
            Arc::new(OpenSearchBulkApi::new(client.clone(), None)),
            config.bulk.clone(),
            BulkMetrics::register(&registry).expect("bulk metrics"),
        )
        .expect("bulk sink");
        let dead_letters = DeadLetters::new(
            kinesis,
            dead_letter_stream,
            config.kinesis.clone(),
            &ProducerMetrics::register(&registry).expect("producer metrics"),
            DeadLetterMetrics::register(&registry).expect("dead-letter metrics"),
            STAGE,
        )
        .await
        .expect("dead-letter producer");
        let failures = Arc::new(Mutex::new(Vec::<String>::new()));
        let shared = Arc::new(Shared {
            sink: sink.clone(),
            dead_letters: Arc::new(dead_letters),
            names,
            parse: config.parse.clone(),
            orders_stream: config.input.orders.clone(),
            metrics_stream: config.input.metrics.clone(),
            metrics: Metrics::register(&registry).expect("indexer metrics"),
            max_pending_batches: config.checkpoints.max_pending_batches,
            fail: {
                let failures = failures.clone();
                Arc::new(move |e| {
                    failures
                        .lock()
                        .expect("not poisoned")
                        .push(format!("{e:#}"))
                })
            },
        });
        Self {
            shared,
            sink,
            failures,
        }
    }

    /// Orders acknowledged as indexed so far (the end-to-end latency is observed once each).
    pub fn indexed(&self) -> u64 {
        self.shared
            .metrics
            .end_to_end
            .with_label_values(&["orders"])
            .get_sample_count()
    }

    /// Failures reported through the service's `fail` hook; none is expected.
    pub fn assert_no_failure(&self) {
        let failures = self.failures.lock().expect("not poisoned");
        assert!(failures.is_empty(), "the indexer failed: {failures:?}");
    }

    pub async fn close(self) {
        self.assert_no_failure();
        self.sink.close().await;
        self.shared
            .dead_letters
            .shutdown()
            .await
            .expect("dead-letter producer");
    }
}

/// Indexes `shards` (each a shard's records, in order) into the indices named `names`
/// through the indexer's processors; returns documents per second, measured until every
/// shard's last checkpoint is written.
pub async fn run(
    client: &OpenSearch,
    kinesis: &aws_sdk_kinesis::Client,
    dead_letter_stream: &str,
    names: IndexNames,
    shards: Vec<Vec<KinesisClientRecord>>,
    batch: usize,
) -> f64 {
    let config = Config::default();
    let wiring = Wiring::new(client, kinesis, dead_letter_stream, names, &config).await;
    let n: usize = shards.iter().map(Vec::len).sum();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, records) in shards.into_iter().enumerate() {
        let shared = wiring.shared.clone();
        let info = ShardInfo {
            stream: config.input.orders.clone(),
            shard_id: format!("shardId-{i:012}"),
            lease_key: format!("bench:shardId-{i:012}"),
            parent_shard_ids: Vec::new(),
            hash_key_range: None,
        };
        tasks.spawn(async move {
            let checkpoints = Arc::new(LastCheckpoint::default());
            let mut processor = Processor::new(shared, &info);
            processor.initialize(&info, &Checkpoint::TrimHorizon).await;
            for chunk in records.chunks(batch) {
                processor.process(chunk, checkpoints.clone()).await;
            }
            processor.drain().await;
            let written = checkpoints.0.lock().expect("not poisoned").clone();
            (written, records.last().map(KinesisClientRecord::position))
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (written, expected) = joined.expect("shard task");
        assert_eq!(
            written, expected,
            "a shard's last checkpoint was not written"
        );
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    assert_eq!(wiring.indexed(), n as u64, "orders acknowledged as indexed");
    wiring.close().await;
    rate
}
