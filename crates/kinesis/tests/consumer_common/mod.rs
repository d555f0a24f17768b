//! Shared helpers of the consumer integration tests (local stack).
#![allow(dead_code, unused_imports)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::types::{PutRecordsRequestEntry, StreamStatus};
use aws_smithy_types::Blob;
pub use flowline_kinesis::consumer::{
    Checkpointer, Consumer, ConsumerConfig, ConsumerStatus, FanoutConfig, InitialPosition,
    PollingConfig, ProcessRecordsInput, RetrievalMode, ShardInfo, ShardRecordProcessor,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Env {
    pub stack: flowline_testkit::Stack,
    pub kinesis: aws_sdk_kinesis::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    streams: Mutex<Vec<String>>,
    tables: Mutex<Vec<String>>,
}

impl Env {
    pub async fn start() -> Env {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let stack = flowline_testkit::Stack::start().await;
        let clients = stack.aws_clients().await;
        Env {
            kinesis: clients.kinesis.clone(),
            dynamodb: clients.dynamodb.clone(),
            stack,
            streams: Mutex::new(Vec::new()),
            tables: Mutex::new(Vec::new()),
        }
    }

    pub async fn create_stream(&self, prefix: &str, shards: i32) -> String {
        let name = flowline_testkit::unique_name(prefix);
        self.kinesis
            .create_stream()
            .stream_name(&name)
            .shard_count(shards)
            .send()
            .await
            .expect("CreateStream");
        self.streams.lock().unwrap().push(name.clone());
        self.wait_stream_active(&name).await;
        name
    }

    pub async fn wait_stream_active(&self, name: &str) {
        wait_until(Duration::from_secs(60), "stream ACTIVE", || async {
            let d = self
                .kinesis
                .describe_stream_summary()
                .stream_name(name)
                .send()
                .await
                .ok()?;
            (d.stream_description_summary?.stream_status == StreamStatus::Active).then_some(())
        })
        .await;
    }

    /// A unique application name; its lease table is deleted on cleanup.
    pub fn application(&self, prefix: &str) -> String {
        let app = flowline_testkit::unique_name(prefix);
        self.tables.lock().unwrap().push(format!("{app}-leases"));
        app
    }

    /// Puts (partition key, data) records with PutRecords, retrying failed entries, in order
    /// (one call at a time, so per-key order is the given order).
    pub async fn put(&self, stream: &str, records: &[(String, String)]) {
        put_records(&self.kinesis, stream, records).await
    }

    pub async fn cleanup(&self) {
        let streams: Vec<String> = std::mem::take(&mut *self.streams.lock().unwrap());
        for s in streams {
            let _ = self
                .kinesis
                .delete_stream()
                .stream_name(&s)
                .enforce_consumer_deletion(true)
                .send()
                .await;
        }
        let tables: Vec<String> = std::mem::take(&mut *self.tables.lock().unwrap());
        for t in tables {
            let _ = self.dynamodb.delete_table().table_name(&t).send().await;
        }
    }
}

pub async fn put_records(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
    records: &[(String, String)],
) {
    for chunk in records.chunks(100) {
        let mut pending: Vec<&(String, String)> = chunk.iter().collect();
        for attempt in 0.. {
            assert!(attempt < 20, "PutRecords keeps failing");
            let entries = pending
                .iter()
                .map(|(pk, data)| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(pk)
                        .data(Blob::new(data.as_bytes()))
                        .build()
                        .unwrap()
                })
                .collect();
            let out = match kinesis
                .put_records()
                .stream_name(stream)
                .set_records(Some(entries))
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    eprintln!("PutRecords failed: {e:?}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            if out.failed_record_count() == Some(0) || out.failed_record_count().is_none() {
                break;
            }
            // A failed entry is retried with the rest after it to keep per-key order.
            let first_failed = out
                .records()
                .iter()
                .position(|r| r.error_code().is_some())
                .unwrap();
            pending = pending.split_off(first_failed);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Records `n` records `r-<first+i>` with partition keys `pk-<i % keys>`.
pub fn records(first: usize, n: usize, keys: usize) -> Vec<(String, String)> {
    (first..first + n)
        .map(|i| (format!("pk-{}", i % keys), format!("r-{i}")))
        .collect()
}

pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One delivery of a user record to a processor.
#[derive(Debug, Clone)]
pub struct Seen {
    pub worker: String,
    pub shard: String,
    pub partition_key: String,
    pub data: String,
    pub sequence_number: String,
    pub sub_sequence_number: u64,
}

/// Everything the test processors observed, shared across workers.
#[derive(Default)]
pub struct Log {
    pub seen: Vec<Seen>,
    /// (worker, shard, event) for initialize/lease_lost/shard_ended/shutdown_requested.
    pub events: Vec<(String, String, String)>,
    /// Last successful checkpoint by (worker, shard).
    pub checkpoints: HashMap<(String, String), (String, u64)>,
}

pub type SharedLog = Arc<Mutex<Log>>;

impl Log {
    pub fn data_counts(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for s in &self.seen {
            *m.entry(s.data.clone()).or_default() += 1;
        }
        m
    }

    pub fn distinct(&self) -> usize {
        self.data_counts().len()
    }

    pub fn has_event(&self, shard: &str, event: &str) -> bool {
        self.events.iter().any(|(_, s, e)| s == shard && e == event)
    }
}

/// Test processor: logs each record and checkpoints the last record of each batch.
pub struct Recorder {
    pub worker: String,
    pub shard: String,
    pub log: SharedLog,
    pub checkpoint: bool,
}

impl Recorder {
    fn event(&self, e: &str) {
        self.log.lock().unwrap().events.push((
            self.worker.clone(),
            self.shard.clone(),
            e.to_owned(),
        ));
    }
}

#[async_trait::async_trait]
impl ShardRecordProcessor for Recorder {
    async fn initialize(
        &mut self,
        shard: &ShardInfo,
        _start: &flowline_kinesis::consumer::Checkpoint,
    ) {
        self.shard = shard.shard_id.clone();
        self.event("initialize");
    }

    async fn process_records(&mut self, input: ProcessRecordsInput) {
        {
            let mut log = self.log.lock().unwrap();
            for r in &input.records {
                log.seen.push(Seen {
                    worker: self.worker.clone(),
                    shard: self.shard.clone(),
                    partition_key: r.partition_key.clone(),
                    data: String::from_utf8_lossy(&r.data).into_owned(),
                    sequence_number: r.sequence_number.clone(),
                    sub_sequence_number: r.sub_sequence_number,
                });
            }
        }
        if self.checkpoint
            && let Some(last) = input.records.last()
        {
            match input
                .checkpointer
                .checkpoint(&last.sequence_number, last.sub_sequence_number)
                .await
            {
                Ok(()) => {
                    self.log.lock().unwrap().checkpoints.insert(
                        (self.worker.clone(), self.shard.clone()),
                        (last.sequence_number.clone(), last.sub_sequence_number),
                    );
                }
                Err(e) => eprintln!("checkpoint failed: {e}"),
            }
        }
    }

    async fn lease_lost(&mut self) {
        self.event("lease_lost");
    }

    async fn shard_ended(&mut self, checkpointer: Checkpointer) {
        checkpointer
            .checkpoint_shard_end()
            .await
            .expect("SHARD_END checkpoint");
        self.event("shard_ended");
    }

    async fn shutdown_requested(&mut self, _checkpointer: Checkpointer) {
        // Every batch is checkpointed in process_records already.
        self.event("shutdown_requested");
    }
}

pub fn test_config(app: &str, streams: &[&str], worker: &str) -> ConsumerConfig {
    ConsumerConfig {
        application_name: app.to_owned(),
        streams: streams.iter().map(|s| s.to_string()).collect(),
        worker_id: Some(worker.to_owned()),
        failover_time: Duration::from_secs(2),
        take_interval: Duration::from_millis(500),
        shard_sync_interval: Duration::from_secs(2),
        parent_poll_interval: Duration::from_millis(300),
        initial_position: InitialPosition::TrimHorizon,
        polling: PollingConfig {
            idle_time_between_reads: Duration::from_millis(200),
            ..Default::default()
        },
        shutdown_timeout: Duration::from_secs(10),
        fanout: FanoutConfig {
            consumer_name: None,
            closed_shard_check_interval: Duration::from_secs(1),
        },
        ..Default::default()
    }
}

pub struct Worker {
    pub id: String,
    pub token: CancellationToken,
    pub handle: JoinHandle<flowline_kinesis::Result<()>>,
    pub status: watch::Receiver<ConsumerStatus>,
    pub registry: prometheus::Registry,
}

impl Worker {
    pub fn start(env: &Env, config: ConsumerConfig, log: &SharedLog, checkpoint: bool) -> Worker {
        Self::start_with(env, env.kinesis.clone(), config, log, checkpoint)
    }

    /// With a Kinesis client of its own (e.g. through a fault-injecting proxy).
    pub fn start_with(
        env: &Env,
        kinesis: aws_sdk_kinesis::Client,
        config: ConsumerConfig,
        log: &SharedLog,
        checkpoint: bool,
    ) -> Worker {
        let id = config.worker_id.clone().unwrap();
        let registry = prometheus::Registry::new();
        let (worker, log) = (id.clone(), log.clone());
        let factory = Arc::new(move |_shard: &ShardInfo| -> Box<dyn ShardRecordProcessor> {
            Box::new(Recorder {
                worker: worker.clone(),
                shard: String::new(),
                log: log.clone(),
                checkpoint,
            })
        });
        let consumer = Consumer::new(config, kinesis, env.dynamodb.clone(), factory, &registry)
            .expect("consumer");
        let status = consumer.status();
        let token = CancellationToken::new();
        let handle = tokio::spawn(consumer.run(token.clone()));
        Worker {
            id,
            token,
            handle,
            status,
            registry,
        }
    }

    pub fn held(&self) -> usize {
        self.status.borrow().shards.len()
    }

    pub fn held_shards(&self) -> Vec<String> {
        self.status
            .borrow()
            .shards
            .values()
            .map(|s| s.shard_id.clone())
            .collect()
    }

    pub async fn stop(self) {
        self.token.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("graceful shutdown in time")
            .expect("no panic")
            .expect("run ok");
    }

    /// Like a crash: every task dropped, nothing released.
    pub async fn kill(self) {
        self.handle.abort();
        let _ = self.handle.await;
    }

    /// Sum of the series of `name` whose label `label` is `value`.
    pub fn metric_with(&self, name: &str, label: &str, value: &str) -> f64 {
        self.registry
            .gather()
            .iter()
            .filter(|f| f.name() == name)
            .flat_map(|f| f.get_metric().iter())
            .filter(|m| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == label && l.value() == value)
            })
            .map(|m| m.get_counter().get_value())
            .sum()
    }

    pub fn metric(&self, name: &str) -> f64 {
        self.registry
            .gather()
            .iter()
            .filter(|f| f.name() == name)
            .flat_map(|f| {
                let counter = f.get_field_type() == prometheus::proto::MetricType::COUNTER;
                f.get_metric().iter().map(move |m| {
                    if counter {
                        m.get_counter().get_value()
                    } else {
                        m.get_gauge().get_value()
                    }
                })
            })
            .sum()
    }
}

/// A PutRecords writer usable from a spawned task.
pub struct Writer {
    pub kinesis: aws_sdk_kinesis::Client,
    pub stream: String,
}

impl Writer {
    pub async fn put(&self, records: &[(String, String)]) {
        put_records(&self.kinesis, &self.stream, records).await
    }
}
