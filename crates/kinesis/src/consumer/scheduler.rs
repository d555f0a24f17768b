//! The [`Consumer`]: owns the lease table, the shard sync, the lease renewer and taker, and one
//! task per held shard.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::{Id, JoinSet};
use tokio_util::sync::CancellationToken;

use super::balance::ExpiryTracker;
use super::config::{ConsumerConfig, RetrievalMode};
use super::held::HeldLease;
use super::metrics::ConsumerMetrics;
use super::processor::ShardRecordProcessorFactory;
use super::retrieval::{Backoff, ensure_stream_consumer, reader_client};
use super::shard_consumer::Outcome;
use super::shard_sync::{StreamMeta, describe_stream};
use super::status::{ConsumerStatus, StatusBoard};
use super::table::LeaseTable;
use super::tasks::{renew_loop, shard_done, shard_sync_loop, sleep_or_cancel, take_round};
use crate::{Error, Result};

/// What every task of one consumer shares.
pub(crate) struct Ctx {
    pub config: ConsumerConfig,
    pub worker_id: String,
    /// Control plane (ListShards, DescribeStreamSummary): the SDK's standard retry.
    pub kinesis: aws_sdk_kinesis::Client,
    /// Data plane (GetShardIterator, GetRecords, SubscribeToShard): no SDK retry.
    pub reader_kinesis: aws_sdk_kinesis::Client,
    pub table: LeaseTable,
    pub factory: Arc<dyn ShardRecordProcessorFactory>,
    pub metrics: ConsumerMetrics,
    pub status: StatusBoard,
    /// By stream name; filled before any shard task starts.
    pub streams: HashMap<String, StreamMeta>,
    pub held: Mutex<HashMap<String, Arc<HeldLease>>>,
    /// Asks the shard sync to run now (a shard ended: its children may need leases).
    pub sync_now: Notify,
    /// Asks the taker to run now (the shard sync created leases).
    pub take_now: Notify,
}

/// A KCL-style consumer of one or more streams for one application (the KCL's `Scheduler`).
pub struct Consumer {
    config: ConsumerConfig,
    worker_id: String,
    kinesis: aws_sdk_kinesis::Client,
    table: LeaseTable,
    factory: Arc<dyn ShardRecordProcessorFactory>,
    metrics: ConsumerMetrics,
    status: StatusBoard,
}

impl Consumer {
    /// Checks the configuration and registers the metrics; nothing is called yet.
    pub fn new(
        config: ConsumerConfig,
        kinesis: aws_sdk_kinesis::Client,
        dynamodb: aws_sdk_dynamodb::Client,
        factory: Arc<dyn ShardRecordProcessorFactory>,
        registry: &prometheus::Registry,
    ) -> Result<Self> {
        let problems = config.validate();
        if !problems.is_empty() {
            return Err(Error::Config(problems));
        }
        let worker_id = config.effective_worker_id();
        let table = LeaseTable::new(dynamodb, config.lease_table_name());
        let metrics = ConsumerMetrics::new(registry)?;
        let streams: Vec<&str> = config.streams.iter().map(String::as_str).collect();
        metrics.init_series(&streams);
        Ok(Self {
            metrics,
            status: StatusBoard::new(),
            config,
            worker_id,
            kinesis,
            table,
            factory,
        })
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    pub fn lease_table(&self) -> &str {
        self.table.name()
    }

    /// Readiness and per-shard lag, updated while [`Self::run`] runs.
    pub fn status(&self) -> watch::Receiver<ConsumerStatus> {
        self.status.subscribe()
    }

    /// Runs until `shutdown` is cancelled, then stops the readers, lets every processor
    /// checkpoint (`shutdown_requested`), releases the leases and returns. Returns early only
    /// if cancelled during startup.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        self.status.update(|s| s.running = true);
        let result = self.run_inner(&shutdown).await;
        self.status.update(|s| {
            s.running = false;
            s.shards.clear();
        });
        self.metrics.leases_held.set(0);
        result
    }

    async fn run_inner(&self, shutdown: &CancellationToken) -> Result<()> {
        let Some(streams) = self.start_up(shutdown).await else {
            return Ok(());
        };
        let reader_kinesis = reader_client(&self.kinesis);
        let ctx = Arc::new(Ctx {
            config: self.config.clone(),
            worker_id: self.worker_id.clone(),
            kinesis: self.kinesis.clone(),
            reader_kinesis,
            table: self.table.clone(),
            factory: self.factory.clone(),
            metrics: self.metrics.clone(),
            status: self.status.clone(),
            streams,
            held: Mutex::new(HashMap::new()),
            sync_now: Notify::new(),
            take_now: Notify::new(),
        });
        tracing::info!(worker = %ctx.worker_id, table = %ctx.table.name(), streams = ?ctx.config.streams, "consumer started");

        // The renewer outlives the shard tasks: processors checkpoint during shutdown. Every
        // task lives in a JoinSet, so dropping `run` (abort) stops them all, like a crash.
        let mut background = JoinSet::new();
        let stop_background = CancellationToken::new();
        background.spawn(renew_loop(ctx.clone(), stop_background.clone()));
        background.spawn(shard_sync_loop(ctx.clone(), stop_background.clone()));

        let stop_shards = CancellationToken::new();
        let mut shards: JoinSet<Outcome> = JoinSet::new();
        let mut shard_keys: HashMap<Id, String> = HashMap::new();
        let mut tracker = ExpiryTracker::default();
        let mut take_tick = tokio::time::interval(ctx.config.take_interval);
        take_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = take_tick.tick() => take_round(&ctx, &mut tracker, &mut shards, &mut shard_keys, &stop_shards).await,
                _ = ctx.take_now.notified() => take_round(&ctx, &mut tracker, &mut shards, &mut shard_keys, &stop_shards).await,
                Some(done) = shards.join_next_with_id(), if !shards.is_empty() => shard_done(&ctx, done, &mut shard_keys),
            }
        }

        tracing::info!(worker = %ctx.worker_id, shards = shards.len(), "consumer shutting down");
        self.status.update(|s| s.running = false);
        stop_shards.cancel();
        let drained = tokio::time::timeout(ctx.config.shutdown_timeout, async {
            while let Some(done) = shards.join_next_with_id().await {
                shard_done(&ctx, done, &mut shard_keys);
            }
        })
        .await;
        if drained.is_err() {
            tracing::error!(remaining = shards.len(), timeout = ?ctx.config.shutdown_timeout,
                "processors did not finish shutting down in time; aborting them (their leases will expire)");
            shards.shutdown().await;
        }
        stop_background.cancel();
        while background.join_next().await.is_some() {}
        tracing::info!(worker = %ctx.worker_id, "consumer stopped");
        Ok(())
    }

    /// Lease table, stream descriptions and fan-out consumers, retried until they answer.
    /// None when cancelled first.
    async fn start_up(&self, shutdown: &CancellationToken) -> Option<HashMap<String, StreamMeta>> {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        loop {
            match self.table.ensure_exists(Duration::from_secs(60)).await {
                Ok(()) => break,
                Err(e) => self.startup_failed(&e, true),
            }
            if sleep_or_cancel(shutdown, backoff.next_delay()).await {
                return None;
            }
        }
        self.status.update(|s| s.lease_table_ok = true);
        backoff.reset();
        let mut streams = HashMap::new();
        for name in &self.config.streams {
            loop {
                let meta = match describe_stream(&self.kinesis, name).await {
                    Ok(mut meta) if self.config.retrieval == RetrievalMode::Fanout => {
                        let consumer = self.config.fanout_consumer_name();
                        match ensure_stream_consumer(
                            &self.kinesis,
                            &meta.arn,
                            &consumer,
                            Duration::from_secs(120),
                        )
                        .await
                        {
                            Ok(arn) => {
                                meta.consumer_arn = Some(arn);
                                Ok(meta)
                            }
                            Err(e) => Err(e),
                        }
                    }
                    other => other,
                };
                match meta {
                    Ok(meta) => {
                        streams.insert(name.clone(), meta);
                        break;
                    }
                    Err(e) => self.startup_failed(&e, false),
                }
                if sleep_or_cancel(shutdown, backoff.next_delay()).await {
                    return None;
                }
            }
        }
        Some(streams)
    }

    fn startup_failed(&self, e: &Error, table: bool) {
        tracing::warn!(error = %e, "consumer start-up step failed; retrying");
        self.status.update(|s| {
            if table {
                s.lease_table_ok = false;
            } else {
                s.kinesis_ok = false;
            }
            s.last_error = Some(e.to_string());
        });
    }
}
