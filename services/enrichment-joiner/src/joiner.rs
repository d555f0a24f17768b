//! The joiner task: owns the join core and the watermark state of the shards this copy
//! reads. Processors hand it parsed batches; every `emit.interval` it runs one round:
//!
//! 1. flush the buffered versions and pending sales to the state table;
//! 2. publish the watermarks of the owned shards (their state is durable);
//! 3. queue the checkpoints of the batches applied so far (each written once the batch's
//!    dead letters are acknowledged: its state is durable after step 1; its watermark is
//!    published by step 2, so a checkpoint never runs ahead of the published watermark);
//! 4. read every copy's published watermarks, take the global join watermark;
//! 5. advance the core and hand the orders to the output producer; once a release's
//!    orders are all acknowledged (the loop goes on meanwhile, see `in_flight.rs`), delete
//!    their sales from the pending store (`JoinCore::confirm`).
//!
//! A sale is thus either in the pending store or acknowledged downstream at every moment:
//! a crash loses nothing, and re-emitted orders are identical (deterministic fields).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use flowline_join::{JoinCore, JoinError, JoinMetrics};
use flowline_kinesis::consumer::Checkpoint;
use flowline_kinesis::producer::{AckSet, PendingAck, Producer, Record};
use flowline_model::{DeadLetter, Event, Timestamp};
use flowline_pipeline::{AckedCheckpoints, CheckpointSink, DeadLetters};
use flowline_watermark::{
    Monotonic, ShardKey, ShardWatermark, WatermarkConfig, WatermarkTracker, global_watermark,
};
use tokio::sync::mpsc;

use crate::config::{Emit, Streams};
use crate::in_flight::{InFlight, Written};
use crate::metrics::Metrics;
use crate::processor::{Fail, Msg};
use crate::state::{Published, StateTable};

pub const STAGE: &str = "enrichment-joiner";
/// Attempts of a retriable state-table failure before the service gives up.
const ATTEMPTS: u32 = 8;
/// Batches per shard that may wait for their dead letters' acknowledgement.
const CHECKPOINT_QUEUE: usize = 64;
/// Releases whose orders may await their acknowledgements at once.
const WRITES_IN_FLIGHT: usize = 8;

/// Repeats a join-core call on retriable errors with a growing pause.
macro_rules! retry {
    ($what:expr, $call:expr) => {{
        let mut attempt = 0u32;
        loop {
            match $call.await {
                Ok(v) => break Ok::<_, anyhow::Error>(v),
                Err(e) if is_retriable(&e) && attempt + 1 < ATTEMPTS => {
                    attempt += 1;
                    tracing::warn!(what = $what, attempt, error = %e, "state table call failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
                }
                Err(e) => break Err(anyhow::Error::new(e).context($what)),
            }
        }
    }};
}

trait Retriable {
    fn retriable(&self) -> bool;
}

impl Retriable for JoinError {
    fn retriable(&self) -> bool {
        self.is_retriable()
    }
}

impl Retriable for flowline_join::StoreError {
    fn retriable(&self) -> bool {
        self.retriable
    }
}

fn is_retriable(e: &impl Retriable) -> bool {
    e.retriable()
}

struct Owned {
    checkpointer: Arc<dyn CheckpointSink>,
    checkpoints: AckedCheckpoints,
    /// Position after the last batch applied (not yet queued for checkpointing).
    last: Option<Checkpoint>,
    acks: Vec<PendingAck>,
}

pub struct Joiner {
    pub core: JoinCore,
    pub state: StateTable,
    pub tracker: WatermarkTracker,
    pub watermark_config: WatermarkConfig,
    pub streams: Streams,
    pub kinesis: aws_sdk_kinesis::Client,
    pub output: Arc<Producer>,
    pub dead_letters: Arc<DeadLetters>,
    pub metrics: Arc<Metrics>,
    pub join_metrics: JoinMetrics,
    pub emit: Emit,
    pub fail: Fail,
    /// This copy's worker id (as in the lease table), published with its watermarks.
    pub worker_id: String,
}

struct Run {
    j: Joiner,
    in_flight: InFlight,
    owned: HashMap<ShardKey, Owned>,
    join_watermark: Monotonic,
    open_shards: Vec<ShardKey>,
    listed_at: Option<Instant>,
}

impl Joiner {
    pub async fn run(self, mut rx: mpsc::Receiver<Msg>) -> anyhow::Result<()> {
        let mut run = Run {
            j: self,
            in_flight: InFlight::new(WRITES_IN_FLIGHT),
            owned: HashMap::new(),
            join_watermark: Monotonic::new(None),
            open_shards: Vec::new(),
            listed_at: None,
        };
        let mut tick = tokio::time::interval(run.j.emit.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => run.handle(msg).await?,
                    // The consumer stopped and every processor is gone.
                    None => break,
                },
                _ = tick.tick() => run.round().await?,
                Some(written) = run.in_flight.next(), if !run.in_flight.is_empty() => {
                    run.confirm(written).await?
                }
                // A backlog larger than one release: go on between incoming batches.
                _ = std::future::ready(()), if run.j.core.has_due() => run.release().await?,
            }
        }
        while let Some(written) = run.in_flight.next().await {
            run.confirm(written).await?;
        }
        Ok(())
    }
}

fn secs(t: Timestamp) -> f64 {
    t.millis() as f64 / 1000.0
}

impl Run {
    async fn handle(&mut self, msg: Msg) -> anyhow::Result<()> {
        match msg {
            Msg::Start {
                shard,
                kind,
                parents,
                checkpointer,
                done,
            } => {
                let published = retry!("reading watermarks", self.j.state.watermarks())?;
                match published.iter().find(|p| p.entry.key() == shard) {
                    // Go on from the previous owner instead of holding until a first event.
                    Some(p) => self.j.tracker.adopt(&p.entry),
                    None => self.j.tracker.add_shard(shard.clone(), &parents),
                }
                if kind == flowline_model::StreamKind::Sales {
                    // A child shard starts only after its parents ended; sales of a parent
                    // still pending then belong to nobody else, so the child takes them on
                    // (after a split both children do: identical orders, same order id).
                    for shard_id in parents.iter().chain([&shard.shard_id]) {
                        let n = retry!(
                            "restoring pending sales",
                            self.j.core.restore_shard(&shard.stream, shard_id)
                        )?;
                        tracing::info!(shard = %shard_id, pending = n, "pending sales restored");
                    }
                } else {
                    self.note_unseen(&published);
                }
                let fail = self.j.fail.clone();
                self.owned.insert(
                    shard,
                    Owned {
                        checkpointer,
                        checkpoints: AckedCheckpoints::new(CHECKPOINT_QUEUE, move |e| fail(e)),
                        last: None,
                        acks: Vec::new(),
                    },
                );
                self.j.metrics.owned_shards.set(self.owned.len() as i64);
                let _ = done.send(());
            }
            Msg::Batch {
                shard,
                events,
                read,
                millis_behind_latest,
                last,
                dead_letter_acks,
                done,
            } => {
                let mut acks = dead_letter_acks;
                for (event, source) in events {
                    self.apply(&shard, event, source, &mut acks).await?;
                }
                self.j.tracker.record_read(
                    &shard,
                    read,
                    millis_behind_latest,
                    flowline_pipeline::now(),
                );
                if let Some(o) = self.owned.get_mut(&shard) {
                    if last.is_some() {
                        o.last = last;
                    }
                    o.acks.extend(acks);
                }
                let _ = done.send(());
            }
            Msg::Ended {
                shard,
                checkpointer,
                done,
            } => {
                retry!("flushing state", self.j.core.flush())?;
                self.publish_mine().await?;
                self.queue_checkpoints().await?;
                if let Some(mut o) = self.owned.remove(&shard) {
                    o.checkpoints.drain().await;
                }
                self.j.tracker.shard_ended(&shard, &[]);
                let entries: Vec<ShardWatermark> = self
                    .j
                    .tracker
                    .entries(flowline_pipeline::now())
                    .into_iter()
                    .filter(|e| e.key() == shard)
                    .collect();
                retry!(
                    "publishing watermarks",
                    self.j.state.publish_watermarks(&entries, &self.j.worker_id)
                )?;
                self.forget(&shard);
                if let Err(e) = checkpointer.checkpoint_shard_end().await {
                    tracing::warn!(shard = %shard.shard_id, error = %e, "SHARD_END checkpoint failed");
                }
                self.j.metrics.owned_shards.set(self.owned.len() as i64);
                let _ = done.send(());
            }
            Msg::Shutdown { shard, done } => {
                retry!(
                    "releasing shard",
                    self.j.core.release_shard(&shard.stream, &shard.shard_id)
                )?;
                self.publish_mine().await?;
                self.queue_checkpoints().await?;
                if let Some(mut o) = self.owned.remove(&shard) {
                    o.checkpoints.drain().await;
                }
                self.forget(&shard);
                self.j.metrics.owned_shards.set(self.owned.len() as i64);
                let _ = done.send(());
            }
            Msg::Lost { shard, done } => {
                // The new owner publishes the shard and reloads its pending sales.
                self.owned.remove(&shard);
                retry!(
                    "releasing shard",
                    self.j.core.release_shard(&shard.stream, &shard.shard_id)
                )?;
                self.forget(&shard);
                self.j.metrics.owned_shards.set(self.owned.len() as i64);
                let _ = done.send(());
            }
        }
        Ok(())
    }

    /// Taking a customer or address shard: its earlier owners wrote the versions of the
    /// records before its checkpoint, which this copy will not see. Each published its
    /// watermark before checkpointing, so none of those versions is later than the greatest
    /// event time any published watermark of the two streams stands for.
    fn note_unseen(&mut self, published: &[Published]) {
        let out_of_orderness = self.j.watermark_config.out_of_orderness.as_millis();
        let streams = [&self.j.streams.customers, &self.j.streams.addresses];
        let newest = published
            .iter()
            .filter(|p| streams.contains(&&p.entry.stream))
            .filter_map(|p| p.entry.watermark)
            .max();
        if let Some(w) = newest {
            let millis = i64::try_from(out_of_orderness).unwrap_or(i64::MAX);
            self.j.core.note_unseen(w.saturating_add_millis(millis));
        }
    }

    /// Publishes the watermarks of the shards this copy owns. Called after a flush and
    /// before checkpoints are queued, so a published watermark always covers every record
    /// before a checkpoint (what `note_unseen` relies on).
    async fn publish_mine(&mut self) -> anyhow::Result<()> {
        let mine = self.j.tracker.entries(flowline_pipeline::now());
        for e in &mine {
            if let Some(w) = e.watermark {
                self.j
                    .metrics
                    .shard_watermark
                    .with_label_values(&[&e.stream, &e.shard_id])
                    .set(secs(w));
            }
        }
        if !mine.is_empty() {
            retry!(
                "publishing watermarks",
                self.j.state.publish_watermarks(&mine, &self.j.worker_id)
            )?;
        }
        Ok(())
    }

    /// The shard is no longer this copy's: stop tracking and exporting it.
    fn forget(&mut self, shard: &ShardKey) {
        self.j.tracker.remove_shard(shard);
        let _ = self
            .j
            .metrics
            .shard_watermark
            .remove_label_values(&[&shard.stream, &shard.shard_id]);
        self.j.metrics.owned_shards.set(self.owned.len() as i64);
    }

    async fn apply(
        &mut self,
        shard: &ShardKey,
        event: Event,
        source: flowline_model::RecordSource,
        acks: &mut Vec<PendingAck>,
    ) -> anyhow::Result<()> {
        let applied = match event {
            Event::Customer(c) => {
                self.j.tracker.observe(shard, c.updated_at);
                self.j.core.apply_customer(c).await
            }
            Event::Address(a) => {
                self.j.tracker.observe(shard, a.updated_at);
                self.j.core.apply_address(a).await
            }
            Event::Sale(s) => {
                self.j.tracker.observe(shard, s.event_time);
                loop {
                    match self.j.core.add_sale(s.clone(), source.clone()).await {
                        // At the bound of held sales: emit what is due, then try again.
                        Err(JoinError::PendingFull { .. }) => {
                            self.round().await?;
                            tokio::time::sleep(self.j.emit.interval).await;
                        }
                        Err(JoinError::InvalidSale { reason, .. }) => {
                            let payload = serde_json::to_vec(&s)?;
                            let letter = DeadLetter::new(
                                STAGE,
                                "invalid_value",
                                &reason,
                                &source,
                                &payload,
                                flowline_pipeline::now(),
                            );
                            acks.push(self.j.dead_letters.send(letter).await?);
                            break Ok(());
                        }
                        other => break other,
                    }
                }
            }
        };
        match applied {
            Ok(()) => Ok(()),
            // The record is buffered; only the write failed. Writing again is enough.
            Err(e) if e.is_retriable() => retry!("flushing state", self.j.core.flush()),
            Err(e) => Err(anyhow::Error::new(e).context("applying a record")),
        }
    }

    /// Hands each owned shard's newest applied position to its checkpoint queue. Call only
    /// right after a successful flush.
    async fn queue_checkpoints(&mut self) -> anyhow::Result<()> {
        for o in self.owned.values_mut() {
            let Some(at) = o.last.take() else { continue };
            let acks = std::mem::take(&mut o.acks);
            o.checkpoints
                .after(o.checkpointer.clone(), at, async move {
                    for ack in acks {
                        ack.await?;
                    }
                    Ok(())
                })
                .await?;
        }
        Ok(())
    }

    /// Open shards of the input streams: one that no copy has published yet holds the
    /// join watermark (its records may hold versions older than the watermark).
    async fn list_open_shards(&mut self) {
        if self
            .listed_at
            .is_some_and(|t| t.elapsed() < self.j.emit.shard_list_interval)
        {
            return;
        }
        let mut open = Vec::new();
        for stream in self.j.streams.all() {
            let mut token: Option<String> = None;
            loop {
                let mut req = self.j.kinesis.list_shards();
                req = match token.take() {
                    Some(t) => req.next_token(t),
                    None => req.stream_name(&stream),
                };
                match req.send().await {
                    Ok(out) => {
                        for s in out.shards() {
                            let closed = s
                                .sequence_number_range()
                                .is_some_and(|r| r.ending_sequence_number().is_some());
                            if !closed {
                                open.push(ShardKey::new(&stream, s.shard_id()));
                            }
                        }
                        match out.next_token {
                            Some(t) => token = Some(t),
                            None => break,
                        }
                    }
                    Err(e) => {
                        // Keep the last listing; try again next round.
                        tracing::warn!(stream, error = %flowline_aws::error_chain(&e), "listing shards failed");
                        return;
                    }
                }
            }
        }
        self.open_shards = open;
        self.listed_at = Some(Instant::now());
    }

    async fn round(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        retry!("flushing state", self.j.core.flush())?;
        self.publish_mine().await?;
        self.queue_checkpoints().await?;
        let now = flowline_pipeline::now();

        let inputs = self.j.streams.all();
        let published: Vec<Published> = retry!("reading watermarks", self.j.state.watermarks())?
            .into_iter()
            .filter(|p| inputs.contains(&p.entry.stream))
            .collect();
        self.list_open_shards().await;
        let exclusive = self.reads_every_entity_shard(&published);
        if exclusive != self.j.core.is_exclusive() {
            tracing::info!(
                exclusive,
                "this copy reads every customer and address shard: {exclusive}"
            );
            self.j.core.set_exclusive(exclusive);
        }
        self.j.metrics.exclusive.set(i64::from(exclusive));
        let mut entries: Vec<ShardWatermark> = published.into_iter().map(|p| p.entry).collect();
        for key in &self.open_shards {
            if !entries.iter().any(|e| e.key() == *key) {
                entries.push(ShardWatermark {
                    stream: key.stream.clone(),
                    shard_id: key.shard_id.clone(),
                    watermark: None,
                    idle: false,
                    closed: false,
                    parents: Vec::new(),
                    children: Vec::new(),
                    published_at: now,
                });
            }
        }
        let config = &self.j.watermark_config;
        for stream in &inputs {
            let of_stream: Vec<ShardWatermark> = entries
                .iter()
                .filter(|e| &e.stream == stream)
                .cloned()
                .collect();
            if let Some(w) = global_watermark(&of_stream, now, config) {
                self.j
                    .metrics
                    .stream_watermark
                    .with_label_values(&[stream])
                    .set(secs(w));
            }
        }
        let candidate = global_watermark(&entries, now, config);
        if let Some(w) = self.join_watermark.advance(candidate) {
            self.j.metrics.join_watermark.set(secs(w));
            self.j
                .metrics
                .watermark_lag
                .set(((now.millis() - w.millis()) as f64 / 1000.0).max(0.0));
            self.advance(w).await?;
        }
        self.j.join_metrics.observe(&self.j.core.stats());
        self.j
            .metrics
            .round_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Releases more of a backlog at the join watermark already reached.
    async fn release(&mut self) -> anyhow::Result<()> {
        if let Some(w) = self.j.core.stats().watermark {
            self.advance(w).await?;
        }
        self.j.join_metrics.observe(&self.j.core.stats());
        Ok(())
    }

    /// Advances the core (at most `emit.max_release` sales) and hands the orders to the
    /// output.
    async fn advance(&mut self, w: Timestamp) -> anyhow::Result<()> {
        let max = self.j.emit.max_release;
        let orders = retry!("joining", self.j.core.advance_bounded(w, max))?;
        if !orders.is_empty() {
            self.emit(orders).await?;
        }
        Ok(())
    }

    /// Whether this copy published the watermark of every open customer and address shard,
    /// and no other copy publishes one: then every version reaches the state table through
    /// this copy, and the join core may trust what it cached beyond the watermark
    /// (`JoinCore::set_exclusive`). Judged on the same reading of the published watermarks
    /// as the join watermark that is then advanced to.
    fn reads_every_entity_shard(&self, published: &[Published]) -> bool {
        let me = Some(self.j.worker_id.as_str());
        let streams = [&self.j.streams.customers, &self.j.streams.addresses];
        let entity = |stream: &String| streams.contains(&stream);
        let listed = self.listed_at.is_some();
        let others = published
            .iter()
            .any(|p| entity(&p.entry.stream) && !p.entry.closed && p.owner.as_deref() != me);
        let unpublished = self.open_shards.iter().any(|k| {
            entity(&k.stream)
                && !published
                    .iter()
                    .any(|p| p.entry.key() == *k && p.owner.as_deref() == me)
        });
        listed && !others && !unpublished
    }

    /// Writes the orders (partition key `order_id`) as one write in flight; first waits for
    /// the oldest write while as many as allowed are outstanding.
    async fn emit(&mut self, orders: Vec<flowline_model::EnrichedOrder>) -> anyhow::Result<()> {
        while self.in_flight.is_full() {
            if let Some(written) = self.in_flight.next().await {
                self.confirm(written).await?;
            }
        }
        let mut acks = AckSet::new();
        let (mut complete, mut partial) = (0u64, 0u64);
        for order in &orders {
            if order.missing.is_empty() {
                complete += 1;
            } else {
                partial += 1;
            }
            let data = serde_json::to_vec(order)?;
            acks.push(
                self.j
                    .output
                    .send(Record::new(order.order_id.clone(), data))
                    .await?,
            );
        }
        let keys = self.j.core.take_emitted();
        self.in_flight.push(acks, keys, complete, partial);
        Ok(())
    }

    /// A write's orders are all acknowledged: their sales leave the pending store.
    async fn confirm(&mut self, written: Written) -> anyhow::Result<()> {
        written.result.context("writing enriched orders")?;
        retry!(
            "confirming emitted orders",
            self.j.core.confirm(&written.keys)
        )?;
        let out = &self.j.metrics.orders_out;
        out.with_label_values(&["complete"])
            .inc_by(written.complete);
        out.with_label_values(&["partial"]).inc_by(written.partial);
        Ok(())
    }
}
