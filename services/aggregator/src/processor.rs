//! One processor per held shard: counts the shard's orders into per-window
//! partials (`flowline_window::Partials`, the window crate's accumulator),
//! writes them with the shard's position and watermark in one state
//! transaction, then checkpoints the lease (see `store` for why that is
//! consistent).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use flowline_kinesis::consumer::{
    Checkpoint, Checkpointer, ProcessRecordsInput, ShardInfo, ShardRecordProcessor,
};
use flowline_kinesis::producer::PendingAck;
use flowline_model::{DeadLetter, EnrichedOrder, ParseConfig, RecordSource, Timestamp};
use flowline_pipeline::DeadLetters;
use flowline_watermark::{ShardKey, WatermarkConfig, WatermarkTracker};
use flowline_window::{OrderRef, Outcome, Partials, Rejection, WindowSpec};
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::store::{Fenced, ShardWrite, Store};

pub const STAGE: &str = "aggregator";

/// What every processor of this copy shares.
pub struct Shared {
    pub store: Store,
    pub dead_letters: Arc<DeadLetters>,
    pub metrics: Metrics,
    pub windows: WindowSpec,
    pub watermarks: WatermarkConfig,
    pub parse: ParseConfig,
    pub publish_interval: std::time::Duration,
    /// The global watermark, maintained by the emitter.
    pub global: watch::Receiver<Option<Timestamp>>,
    /// Owner incarnations of this copy's live processors (the emitter role).
    pub owners: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Stops the service (state or checkpoint writes that finally failed).
    pub fail: Box<dyn Fn(anyhow::Error) + Send + Sync>,
}

pub struct ShardProcessor {
    shared: Arc<Shared>,
    key: ShardKey,
    /// `<stream>/<shard_id>`: the shard's name in the state table.
    label: String,
    /// This incarnation's fencing token.
    owner: String,
    tracker: WatermarkTracker,
    /// Everything at or before this position is in the stored state.
    stored_position: Option<Checkpoint>,
    /// This shard's partial of every window it holds.
    windows: Partials,
    /// Window start → (generation, parts) of the stored partial.
    stored: BTreeMap<i64, (u64, usize)>,
    last_publish: Option<(Instant, bool)>,
    broken: bool,
}

impl ShardProcessor {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            tracker: WatermarkTracker::new(shared.watermarks.clone()),
            windows: Partials::new(shared.windows.clone()),
            shared,
            key: ShardKey::new("", ""),
            label: String::new(),
            owner: uuid::Uuid::new_v4().to_string(),
            stored_position: None,
            stored: BTreeMap::new(),
            last_publish: None,
            broken: false,
        }
    }

    async fn restore(&mut self, shard: &ShardInfo) -> anyhow::Result<()> {
        self.key = ShardKey::new(&shard.stream, &shard.shard_id);
        self.label = format!("{}/{}", shard.stream, shard.shard_id);
        self.tracker
            .add_shard(self.key.clone(), &shard.parent_shard_ids);
        self.shared
            .owners
            .lock()
            .expect("owners")
            .insert(self.owner.clone());
        let state = self
            .shared
            .store
            .claim_shard(&self.label, &self.owner)
            .await?;
        if let Some(wm) = &state.watermark {
            self.tracker.adopt(wm);
        }
        let mut state = state;
        let mut finished = Vec::new();
        for (start, (generation, parts)) in &state.windows {
            let loaded = self
                .shared
                .store
                .load_partial(&self.label, *start, *generation, *parts)
                .await;
            match loaded {
                Ok(p) => self.windows.restore(p),
                // The emitter finished the window while this shard was idle (so its state
                // still lists it) and deleted its items: nothing of it is left to change.
                Err(e) if self.shared.store.window_retired(*start).await? => {
                    tracing::info!(shard = %self.label, window = start, error = %format!("{e:#}"), "window finished and deleted; not restored");
                    finished.push(*start);
                }
                Err(e) => return Err(e),
            }
        }
        for start in finished {
            state.windows.remove(&start);
        }
        tracing::info!(
            shard = %self.label,
            position = ?state.position,
            windows = state.windows.len(),
            "restored shard state"
        );
        self.stored = state.windows;
        self.stored_position = state.position;
        Ok(())
    }

    /// This processor stops for good (lease lost, fenced, failed, shutdown).
    fn stop(&mut self) {
        self.broken = true;
        self.shared
            .owners
            .lock()
            .expect("owners")
            .remove(&self.owner);
    }

    fn failed(&mut self, checkpointer: &Checkpointer, e: anyhow::Error) {
        self.stop();
        // Losing a lease to balancing is normal: the new owner goes on from the state.
        if checkpointer.is_lease_lost() || e.chain().any(|c| c.is::<Fenced>()) {
            tracing::warn!(shard = %self.label, error = %format!("{e:#}"), "lease lost; shard stopped");
        } else {
            (self.shared.fail)(e.context(format!("shard {}", self.label)));
        }
    }

    async fn process(&mut self, input: &ProcessRecordsInput) -> anyhow::Result<()> {
        let now = flowline_pipeline::now();
        let global = *self.shared.global.borrow();
        let mut acks: Vec<PendingAck> = Vec::new();
        let mut progressed = false;
        for r in &input.records {
            let position = r.position();
            if self
                .stored_position
                .as_ref()
                .is_some_and(|stored| !position.is_after(stored))
            {
                self.shared
                    .metrics
                    .records
                    .with_label_values(&["skipped"])
                    .inc();
                continue;
            }
            progressed = true;
            let source = RecordSource {
                stream: self.key.stream.clone(),
                shard_id: self.key.shard_id.clone(),
                sequence_number: r.sequence_number.clone(),
            };
            let order: EnrichedOrder = match self.shared.parse.parse(&r.data) {
                Ok(o) => o,
                Err(e) => {
                    self.shared
                        .metrics
                        .records
                        .with_label_values(&["invalid"])
                        .inc();
                    acks.push(
                        self.shared
                            .dead_letters
                            .rejected(&e, &r.data, &source)
                            .await?,
                    );
                    continue;
                }
            };
            self.tracker.observe(&self.key, order.event_time);
            // Late is judged against the global watermark: windows span shards.
            let rejection = match self.windows.add(&OrderRef::from(&order), global) {
                Outcome::Counted => {
                    self.shared
                        .metrics
                        .records
                        .with_label_values(&["counted"])
                        .inc();
                    None
                }
                Outcome::Duplicate => {
                    self.shared
                        .metrics
                        .records
                        .with_label_values(&["duplicate"])
                        .inc();
                    None
                }
                Outcome::Rejected(rejection) => Some(rejection),
            };
            if let Some(rejection) = rejection {
                if matches!(rejection, Rejection::Late { .. }) {
                    self.shared.metrics.late_records.inc();
                    self.shared
                        .metrics
                        .records
                        .with_label_values(&["late"])
                        .inc();
                } else {
                    self.shared
                        .metrics
                        .records
                        .with_label_values(&["invalid"])
                        .inc();
                }
                let letter = DeadLetter::new(
                    STAGE,
                    rejection.error_type(),
                    &rejection.to_string(),
                    &source,
                    &r.data,
                    now,
                );
                acks.push(self.shared.dead_letters.send(letter).await?);
            }
        }
        self.tracker.record_read(
            &self.key,
            input.records.len(),
            input.millis_behind_latest,
            now,
        );

        let last = input.records.last().map(|r| r.position());
        match last {
            Some(last) => {
                if progressed {
                    self.flush(last.clone(), acks, now, global).await?;
                }
                // After the state (or, when every record was already in the
                // restored state, right away).
                input
                    .checkpointer
                    .checkpoint_at(last)
                    .await
                    .context("lease checkpoint")?;
            }
            None => self.publish_if_due(now).await?,
        }
        Ok(())
    }

    /// Dead letters acknowledged, then state + position + watermark in one
    /// transaction. The caller checkpoints the lease afterwards.
    async fn flush(
        &mut self,
        position: Checkpoint,
        acks: Vec<PendingAck>,
        now: Timestamp,
        global: Option<Timestamp>,
    ) -> anyhow::Result<()> {
        for ack in acks {
            ack.await.context("dead letter not acknowledged")?;
        }
        // Windows past their lateness are released from memory (their items
        // stay for the emitter, which deletes them once emitted).
        let dropped = self.windows.expired(global);
        let watermark = self.entry(now);
        let changed = self
            .windows
            .changed()
            .map(|p| {
                let start = p.start_ms();
                let generation = self.stored.get(&start).map_or(1, |(g, _)| g + 1);
                (start, generation, p)
            })
            .collect();
        let started = Instant::now();
        let (bytes, stored) = self
            .shared
            .store
            .write_shard(
                ShardWrite {
                    shard: &self.label,
                    owner: &self.owner,
                    position: &position,
                    watermark: &watermark,
                    changed,
                    dropped: dropped.clone(),
                },
                &self.stored,
            )
            .await?;
        self.shared
            .metrics
            .checkpoint_seconds
            .observe(started.elapsed().as_secs_f64());
        self.shared.metrics.checkpoint_bytes.observe(bytes as f64);
        self.windows.saved(&dropped);
        self.stored = stored;
        self.stored_position = Some(position);
        self.last_publish = Some((Instant::now(), watermark.idle));
        Ok(())
    }

    fn entry(&self, now: Timestamp) -> flowline_watermark::ShardWatermark {
        self.tracker
            .entries(now)
            .into_iter()
            .find(|e| e.key() == self.key)
            .expect("the processor's own shard is tracked")
    }

    /// An empty read: republish the watermark (idleness) now and then. All
    /// state is already durable, so publishing it is safe.
    async fn publish_if_due(&mut self, now: Timestamp) -> anyhow::Result<()> {
        let entry = self.entry(now);
        let due = self.last_publish.is_none_or(|(at, idle)| {
            idle != entry.idle || at.elapsed() >= self.shared.publish_interval
        });
        if due {
            self.shared
                .store
                .publish_watermark(&self.label, &self.owner, &entry)
                .await?;
            self.last_publish = Some((Instant::now(), entry.idle));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ShardRecordProcessor for ShardProcessor {
    async fn initialize(&mut self, shard: &ShardInfo, _start: &Checkpoint) {
        if let Err(e) = self.restore(shard).await {
            self.stop();
            (self.shared.fail)(e.context(format!("restoring shard {}", shard.shard_id)));
        }
    }

    async fn process_records(&mut self, input: ProcessRecordsInput) {
        if self.broken {
            return;
        }
        if let Err(e) = self.process(&input).await {
            self.failed(&input.checkpointer, e);
        }
    }

    async fn lease_lost(&mut self) {
        self.stop();
    }

    async fn shard_ended(&mut self, checkpointer: Checkpointer) {
        if self.broken {
            return;
        }
        self.tracker.shard_ended(&self.key, &[]);
        let now = flowline_pipeline::now();
        let entry = self.entry(now);
        let result = async {
            self.shared
                .store
                .publish_watermark(&self.label, &self.owner, &entry)
                .await?;
            checkpointer.checkpoint_shard_end().await?;
            anyhow::Ok(())
        }
        .await;
        match result {
            Ok(()) => self.stop(),
            Err(e) => self.failed(&checkpointer, e),
        }
    }

    async fn shutdown_requested(&mut self, _checkpointer: Checkpointer) {
        // Every batch is durable and checkpointed before the next one.
        self.stop();
    }
}
