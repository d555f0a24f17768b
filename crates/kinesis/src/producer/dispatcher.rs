//! The producer's single background task. It owns all mutable state, so there are no locks:
//! records and commands arrive over a channel, PutRecords calls run in a bounded JoinSet, and
//! one `select!` loop reacts to whichever happens next (input, a finished call, a timer).
//!
//! Flow of a user record: routed to the shard its hash key falls in (per the last ListShards),
//! added to that shard's open aggregate (or queued as a plain record), queued once the aggregate
//! is full or its linger time passed, taken into a PutRecords batch when the shard's write budget
//! allows, and settled from the call's outcome; retriable failures go to the retry schedule with
//! exponential backoff and full jitter until the record's TTL.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::{JoinError, JoinSet};
use tokio::time::{Instant, sleep_until};

use super::api::{ListShardsApi, PutAck, PutEntry, PutRecordsApi};
use super::budget::ShardBudget;
use super::config::ProducerConfig;
use super::metrics::StreamMetrics;
use super::record::{KinesisRecord, OpenAggregate, RecordMeta, UserSlot};
use super::shard_queue::ShardState;
use super::{Ack, Record};
use crate::agg::AggregateBuilder;
use crate::error::{ApiError, FailureReason, PutError};
use crate::shards::{ShardMap, effective_hash_key};

/// Input of the dispatcher.
pub(crate) enum Command {
    Record(Box<Submitted>),
    Flush(oneshot::Sender<()>),
    Shutdown,
}

pub(crate) struct Submitted {
    pub record: Record,
    pub ack_tx: oneshot::Sender<Result<Ack, PutError>>,
    pub permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

type PutOutcome = Result<Vec<Result<PutAck, ApiError>>, ApiError>;
/// What a PutRecords task hands back: its entries (for retries), the outcome, the call's duration.
type PutTaskOutput = (Vec<PutEntry>, PutOutcome, Duration);

/// Commands handled per wakeup before the state machine runs again.
const DRAIN_PER_WAKEUP: usize = 1024;
/// Minimum gap between shard map refreshes triggered by surprises (unexpected shard, no shard).
const MIN_TRIGGERED_REFRESH_GAP: Duration = Duration::from_secs(1);
/// When a refresh fails, try again after this long (or the refresh interval, if shorter).
const REFRESH_RETRY: Duration = Duration::from_secs(10);

struct FlushWaiter {
    up_to: u64,
    remaining: usize,
    done: oneshot::Sender<()>,
}

pub(crate) struct Dispatcher<A> {
    api: Arc<A>,
    stream: Arc<str>,
    cfg: ProducerConfig,
    metrics: StreamMetrics,
    rx: mpsc::Receiver<Command>,
    rx_open: bool,
    closing: bool,
    map: ShardMap,
    /// One per open shard, in map order, then the unrouted queue.
    shards: Vec<ShardState>,
    /// Round-robin start for filling batches, so no shard is always last.
    next_shard: usize,
    retries: BTreeMap<(Instant, u64), KinesisRecord>,
    retry_seq: u64,
    in_flight: JoinSet<PutTaskOutput>,
    in_flight_meta: HashMap<tokio::task::Id, Vec<RecordMeta>>,
    refresh: JoinSet<crate::Result<ShardMap>>,
    next_refresh: Instant,
    refresh_wanted: bool,
    last_refresh: Instant,
    next_id: u64,
    outstanding: usize,
    flushes: Vec<FlushWaiter>,
    buffer_records: Arc<Semaphore>,
    buffer_bytes: Arc<Semaphore>,
}

impl<A: PutRecordsApi + ListShardsApi> Dispatcher<A> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        api: Arc<A>,
        stream: Arc<str>,
        cfg: ProducerConfig,
        metrics: StreamMetrics,
        rx: mpsc::Receiver<Command>,
        map: ShardMap,
        buffer_records: Arc<Semaphore>,
        buffer_bytes: Arc<Semaphore>,
    ) -> Self {
        let now = Instant::now();
        let mut d = Self {
            api,
            stream,
            next_refresh: now + cfg.shard_map_refresh_interval,
            cfg,
            metrics,
            rx,
            rx_open: true,
            closing: false,
            map: ShardMap::default(),
            shards: vec![ShardState::new(None, None)],
            next_shard: 0,
            retries: BTreeMap::new(),
            retry_seq: 0,
            in_flight: JoinSet::new(),
            in_flight_meta: HashMap::new(),
            refresh: JoinSet::new(),
            refresh_wanted: false,
            last_refresh: now,
            next_id: 0,
            outstanding: 0,
            flushes: Vec::new(),
            buffer_records,
            buffer_bytes,
        };
        d.apply_map(map, now);
        d
    }

    pub async fn run(mut self) {
        loop {
            let now = Instant::now();
            self.step(now);
            if self.closing && !self.rx_open && self.outstanding == 0 && self.in_flight.is_empty() {
                break;
            }
            let wake = self.next_wake(now);
            tokio::select! {
                biased;
                Some(done) = self.in_flight.join_next_with_id(), if !self.in_flight.is_empty() => {
                    self.on_put_done(done, Instant::now());
                }
                Some(done) = self.refresh.join_next(), if !self.refresh.is_empty() => {
                    self.on_refresh_done(done, Instant::now());
                }
                cmd = self.rx.recv(), if self.rx_open => {
                    let now = Instant::now();
                    self.on_command(cmd, now);
                    for _ in 0..DRAIN_PER_WAKEUP {
                        match self.rx.try_recv() {
                            Ok(cmd) => self.on_command(Some(cmd), now),
                            Err(mpsc::error::TryRecvError::Empty) => break,
                            Err(mpsc::error::TryRecvError::Disconnected) => {
                                self.on_command(None, now);
                                break;
                            }
                        }
                    }
                }
                () = sleep_until(wake) => {}
            }
        }
        self.update_gauges();
        tracing::debug!(stream = %self.stream, "producer dispatcher stopped");
    }

    fn forcing(&self) -> bool {
        self.closing || !self.flushes.is_empty()
    }

    fn on_command(&mut self, cmd: Option<Command>, now: Instant) {
        match cmd {
            Some(Command::Record(sub)) => self.accept(*sub, now),
            Some(Command::Flush(done)) => {
                if self.outstanding == 0 {
                    let _ = done.send(());
                } else {
                    // Every outstanding record arrived before the flush, so has an id below next_id.
                    self.flushes.push(FlushWaiter {
                        up_to: self.next_id,
                        remaining: self.outstanding,
                        done,
                    });
                }
            }
            Some(Command::Shutdown) => {
                // Records already in the channel are still received and delivered.
                self.closing = true;
                self.rx.close();
            }
            None => {
                self.rx_open = false;
                self.closing = true;
            }
        }
    }

    fn route(&mut self, hash_key: u128) -> usize {
        match self.map.index_of(hash_key) {
            Some(i) => i,
            None => {
                self.refresh_wanted = true;
                self.shards.len() - 1
            }
        }
    }

    fn accept(&mut self, sub: Submitted, now: Instant) {
        let Submitted {
            record,
            ack_tx,
            permits,
        } = sub;
        let slot = UserSlot {
            id: self.next_id,
            ack_tx,
            _permits: permits,
        };
        self.next_id += 1;
        self.outstanding += 1;
        let hash_key =
            match effective_hash_key(&record.partition_key, record.explicit_hash_key.as_deref()) {
                Ok(k) => k,
                Err(e) => {
                    let err = ApiError::new(FailureReason::Invalid, "InvalidRecord", e.to_string());
                    self.fail(vec![slot], err, 0, false);
                    return;
                }
            };
        let entry = PutEntry {
            partition_key: record.partition_key,
            explicit_hash_key: record.explicit_hash_key,
            data: record.data,
        };
        let linger_deadline = now + self.cfg.linger;
        let ttl_deadline = now + self.cfg.record_ttl;
        let idx = self.route(hash_key);
        let unrouted = idx == self.shards.len() - 1;
        let plain = |entry: PutEntry, slot: UserSlot| KinesisRecord {
            entry,
            meta: RecordMeta {
                users: vec![slot],
                aggregated: false,
                linger_deadline,
                ttl_deadline,
                attempts: 0,
                last_error: None,
                hash_key,
                predicted_shard: None,
            },
        };
        let single_size = AggregateBuilder::single_record_size(
            &entry.partition_key,
            entry.explicit_hash_key.as_deref(),
            entry.data.len(),
        );
        if !self.cfg.aggregation || unrouted || single_size > self.cfg.aggregation_max_bytes {
            // Keep per-shard order: whatever was aggregating goes first.
            self.close_aggregate(idx);
            self.shards[idx].push_back(plain(entry, slot));
            return;
        }
        let shard = &mut self.shards[idx];
        if let Some(agg) = &mut shard.aggregate {
            if agg.builder.try_add(
                &entry.partition_key,
                entry.explicit_hash_key.as_deref(),
                entry.data.clone(),
            ) {
                agg.users.push(slot);
                agg.ttl_deadline = agg.ttl_deadline.min(ttl_deadline);
                return;
            }
            self.close_aggregate(idx);
        }
        let mut builder = AggregateBuilder::new(
            self.cfg.aggregation_max_bytes,
            self.cfg.aggregation_max_records,
        );
        let added = builder.try_add(
            &entry.partition_key,
            entry.explicit_hash_key.as_deref(),
            entry.data.clone(),
        );
        debug_assert!(added, "an empty aggregate accepts any record");
        self.shards[idx].aggregate = Some(OpenAggregate {
            builder,
            users: vec![slot],
            first: entry,
            first_hash_key: hash_key,
            linger_deadline,
            ttl_deadline,
        });
    }

    /// Moves the shard's open aggregate (if any) to its send queue.
    fn close_aggregate(&mut self, idx: usize) {
        let shard = &mut self.shards[idx];
        let Some(mut agg) = shard.aggregate.take() else {
            return;
        };
        let (entry, aggregated) = if agg.users.len() == 1 {
            // A lone record goes as itself: no aggregation overhead for consumers.
            (agg.first, false)
        } else {
            let fin = agg
                .builder
                .finish()
                .expect("aggregate with users is not empty");
            (
                PutEntry {
                    partition_key: fin.partition_key,
                    explicit_hash_key: fin.explicit_hash_key,
                    data: fin.data,
                },
                true,
            )
        };
        shard.push_back(KinesisRecord {
            entry,
            meta: RecordMeta {
                users: agg.users,
                aggregated,
                linger_deadline: agg.linger_deadline,
                ttl_deadline: agg.ttl_deadline,
                attempts: 0,
                last_error: None,
                hash_key: agg.first_hash_key,
                predicted_shard: None,
            },
        });
    }

    /// Everything that is due at `now`: closing aggregates, re-queueing retries, sending batches,
    /// expiring records, refreshing the shard map.
    fn step(&mut self, now: Instant) {
        let force = self.forcing();
        for idx in 0..self.shards.len() {
            let due = self.shards[idx]
                .aggregate
                .as_ref()
                .is_some_and(|a| force || a.linger_deadline <= now);
            if due {
                self.close_aggregate(idx);
            }
        }

        // Due retries go to the front of their (re-predicted) shard's queue, oldest first.
        let later = self.retries.split_off(&(now, u64::MAX));
        let due = std::mem::replace(&mut self.retries, later);
        for (_, rec) in due.into_iter().rev() {
            let idx = self.route(rec.meta.hash_key);
            self.shards[idx].push_front(rec);
        }

        self.expire_queue_fronts(now);
        while self.in_flight.len() < self.cfg.max_in_flight_requests {
            match self.build_batch(now, force) {
                Some(batch) => self.spawn_put(batch),
                None => break,
            }
        }

        let triggered = self.refresh_wanted && now >= self.last_refresh + MIN_TRIGGERED_REFRESH_GAP;
        if self.refresh.is_empty() && (triggered || now >= self.next_refresh) {
            self.last_refresh = now;
            self.refresh_wanted = false;
            let api = self.api.clone();
            let stream = self.stream.clone();
            self.refresh
                .spawn(async move { api.list_open_shards(&stream).await });
        }
        self.update_gauges();
    }

    fn expire_queue_fronts(&mut self, now: Instant) {
        for idx in 0..self.shards.len() {
            while self.shards[idx]
                .queue
                .front()
                .is_some_and(|r| r.meta.ttl_deadline <= now)
            {
                let rec = self.shards[idx].pop_front().expect("front exists");
                self.expire(rec.meta);
            }
        }
    }

    fn build_batch(&mut self, now: Instant, force: bool) -> Option<Vec<KinesisRecord>> {
        let (mut ready_records, mut ready_bytes, mut due) = (0, 0, false);
        for shard in &mut self.shards {
            if shard.budget_ready(now) {
                ready_records += shard.queue.len();
                ready_bytes += shard.queued_bytes;
                due |= force
                    || shard
                        .queue
                        .front()
                        .is_some_and(|r| r.meta.linger_deadline <= now);
            }
        }
        let full =
            ready_records >= self.cfg.max_batch_records || ready_bytes >= self.cfg.max_batch_bytes;
        if ready_records == 0 || !(due || full) {
            return None;
        }

        let mut batch = Vec::new();
        let mut bytes = 0;
        let n = self.shards.len();
        for k in 0..n {
            let shard = &mut self.shards[(self.next_shard + k) % n];
            while let Some(front) = shard.queue.front() {
                let size = front.size();
                let fits = batch.len() < self.cfg.max_batch_records
                    && bytes + size <= self.cfg.max_batch_bytes;
                if !fits || !shard.budget.as_mut().is_none_or(|b| b.try_take(size, now)) {
                    break;
                }
                bytes += size;
                batch.push(shard.pop_front().expect("front exists"));
            }
            if batch.len() >= self.cfg.max_batch_records {
                break;
            }
        }
        self.next_shard = (self.next_shard + 1) % n;
        (!batch.is_empty()).then_some(batch)
    }

    fn spawn_put(&mut self, batch: Vec<KinesisRecord>) {
        let (entries, metas): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|mut r| {
                r.meta.attempts += 1;
                (r.entry, r.meta)
            })
            .unzip();
        let api = self.api.clone();
        let stream = self.stream.clone();
        let timeout = self.cfg.request_timeout;
        let handle = self.in_flight.spawn(async move {
            let start = Instant::now();
            let outcome =
                match tokio::time::timeout(timeout, api.put_records(&stream, &entries)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(ApiError::new(
                        FailureReason::Timeout,
                        "RequestTimeout",
                        format!("PutRecords did not complete within {timeout:?}"),
                    )),
                };
            (entries, outcome, start.elapsed())
        });
        self.in_flight_meta.insert(handle.id(), metas);
        self.metrics.in_flight.set(self.in_flight.len() as i64);
    }

    fn on_put_done(
        &mut self,
        done: Result<(tokio::task::Id, PutTaskOutput), JoinError>,
        now: Instant,
    ) {
        self.metrics.in_flight.set(self.in_flight.len() as i64);
        let (entries, outcome, metas) = match done {
            Ok((id, (entries, outcome, elapsed))) => {
                self.metrics.put_latency.observe(elapsed.as_secs_f64());
                let metas = self
                    .in_flight_meta
                    .remove(&id)
                    .expect("metadata of every in-flight call");
                (entries, outcome, metas)
            }
            Err(e) => {
                // The call's task panicked and took the entries with it: they cannot be retried.
                let metas = self.in_flight_meta.remove(&e.id()).unwrap_or_default();
                tracing::error!(stream = %self.stream, error = %e, "PutRecords task failed");
                for meta in metas {
                    let err =
                        ApiError::new(FailureReason::Unknown, "ProducerTaskFailed", e.to_string());
                    self.fail(meta.users, err, meta.attempts, false);
                }
                return;
            }
        };
        let outcome = match outcome {
            Ok(results) if results.len() == entries.len() => results,
            Ok(results) => {
                let err = ApiError::new(
                    FailureReason::Transport,
                    "ResponseMismatch",
                    format!(
                        "PutRecords answered {} entries for {} sent",
                        results.len(),
                        entries.len()
                    ),
                );
                vec![Err(err); entries.len()]
            }
            Err(err) => vec![Err(err); entries.len()],
        };
        for ((entry, meta), result) in entries.into_iter().zip(metas).zip(outcome) {
            match result {
                Ok(ack) => self.succeed(&entry, meta, ack),
                Err(err) => self.retry_or_fail(entry, meta, err, now),
            }
        }
    }

    fn succeed(&mut self, entry: &PutEntry, meta: RecordMeta, ack: PutAck) {
        self.metrics.kinesis_records_put.inc();
        self.metrics.bytes_put.inc_by(entry.size() as u64);
        self.metrics
            .user_records_put
            .inc_by(meta.users.len() as u64);
        if meta.predicted_shard.as_deref() != Some(ack.shard_id.as_str()) {
            // The shard map is stale (resharding): re-read it so aggregation and budgets follow.
            tracing::debug!(stream = %self.stream, predicted = ?meta.predicted_shard, actual = %ack.shard_id, "record landed on an unexpected shard");
            self.refresh_wanted = true;
        }
        for (i, slot) in meta.users.into_iter().enumerate() {
            let ack = Ack {
                shard_id: ack.shard_id.clone(),
                sequence_number: ack.sequence_number.clone(),
                sub_sequence_number: meta.aggregated.then_some(i as u64),
                attempts: meta.attempts,
            };
            self.settle(slot, Ok(ack));
        }
    }

    fn retry_or_fail(
        &mut self,
        entry: PutEntry,
        mut meta: RecordMeta,
        err: ApiError,
        now: Instant,
    ) {
        if !err.reason.is_retriable() {
            self.fail(meta.users, err, meta.attempts, false);
            return;
        }
        let at = now + self.backoff(meta.attempts);
        if at >= meta.ttl_deadline {
            self.fail(meta.users, err, meta.attempts, true);
            return;
        }
        self.metrics.retry(err.reason);
        meta.last_error = Some(err);
        self.retry_seq += 1;
        self.retries
            .insert((at, self.retry_seq), KinesisRecord { entry, meta });
    }

    /// Exponential backoff with full jitter: uniform in [0, min(max, base * 2^(attempts-1))].
    fn backoff(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let cap = self
            .cfg
            .backoff_base
            .saturating_mul(1 << exp)
            .min(self.cfg.backoff_max);
        cap.mul_f64(rand::random::<f64>())
    }

    fn expire(&mut self, meta: RecordMeta) {
        let err = meta.last_error.unwrap_or_else(|| {
            ApiError::new(
                FailureReason::Timeout,
                "RecordTtlExpired",
                "record TTL expired before it could be sent (shard write budget or in-flight limit)",
            )
        });
        self.fail(meta.users, err, meta.attempts, true);
    }

    fn fail(&mut self, users: Vec<UserSlot>, err: ApiError, attempts: u32, expired: bool) {
        let reason = if expired {
            "expired"
        } else {
            err.reason.as_str()
        };
        self.metrics.user_records_failed(reason, users.len() as u64);
        tracing::debug!(stream = %self.stream, error = %err, attempts, expired, records = users.len(), "records failed");
        for slot in users {
            let e = PutError {
                last_error: err.clone(),
                attempts,
                expired,
            };
            self.settle(slot, Err(e));
        }
    }

    fn settle(&mut self, slot: UserSlot, result: Result<Ack, PutError>) {
        self.outstanding -= 1;
        let id = slot.id;
        // The caller may have stopped waiting; the record is settled either way.
        let _ = slot.ack_tx.send(result);
        if self.flushes.is_empty() {
            return;
        }
        for f in &mut self.flushes {
            if id < f.up_to {
                f.remaining -= 1;
            }
        }
        let (done, pending): (Vec<_>, Vec<_>) = std::mem::take(&mut self.flushes)
            .into_iter()
            .partition(|f| f.remaining == 0);
        self.flushes = pending;
        for f in done {
            let _ = f.done.send(());
        }
    }

    fn on_refresh_done(&mut self, done: Result<crate::Result<ShardMap>, JoinError>, now: Instant) {
        match done {
            Ok(Ok(map)) => {
                self.next_refresh = now + self.cfg.shard_map_refresh_interval;
                if map != self.map {
                    tracing::info!(stream = %self.stream, shards = map.len(), "shard map changed");
                    self.apply_map(map, now);
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(stream = %self.stream, error = %e, "ListShards failed; keeping the current shard map");
                self.next_refresh = now + self.cfg.shard_map_refresh_interval.min(REFRESH_RETRY);
            }
            Err(e) => {
                tracing::error!(stream = %self.stream, error = %e, "shard map refresh task failed");
                self.next_refresh = now + self.cfg.shard_map_refresh_interval.min(REFRESH_RETRY);
            }
        }
    }

    /// Switches to a new shard map: budgets carry over by shard id, and everything queued or
    /// aggregating is re-routed (aggregates are closed first; they keep their first record's key).
    fn apply_map(&mut self, map: ShardMap, now: Instant) {
        for idx in 0..self.shards.len() {
            self.close_aggregate(idx);
        }
        let old = std::mem::take(&mut self.shards);
        let mut budgets: HashMap<Arc<str>, Option<ShardBudget>> = HashMap::new();
        let mut queued = Vec::new();
        for mut shard in old {
            if let Some(id) = shard.shard_id.take() {
                budgets.insert(id, shard.budget.take());
            }
            queued.extend(shard.queue.drain(..));
        }
        self.shards = map
            .shards()
            .iter()
            .map(|s| {
                let id: Arc<str> = s.shard_id.as_str().into();
                let budget = budgets.remove(&id).unwrap_or_else(|| {
                    ShardBudget::new(
                        self.cfg.shard_records_per_sec,
                        self.cfg.shard_bytes_per_sec,
                        now,
                    )
                });
                ShardState::new(Some(id), budget)
            })
            .collect();
        self.shards.push(ShardState::new(None, None));
        self.map = map;
        self.next_shard = 0;
        for rec in queued {
            let idx = self.route(rec.meta.hash_key);
            self.shards[idx].push_back(rec);
        }
    }

    fn next_wake(&mut self, now: Instant) -> Instant {
        let mut wake = self.next_refresh;
        if self.refresh_wanted {
            wake = wake.min(self.last_refresh + MIN_TRIGGERED_REFRESH_GAP);
        }
        if let Some((&(at, _), _)) = self.retries.first_key_value() {
            wake = wake.min(at);
        }
        let can_send = self.in_flight.len() < self.cfg.max_in_flight_requests;
        for shard in &mut self.shards {
            if let Some(agg) = &shard.aggregate {
                wake = wake.min(agg.linger_deadline);
            }
            let Some(front) = shard.queue.front() else {
                continue;
            };
            wake = wake.min(front.meta.ttl_deadline);
            if can_send {
                let linger = front.meta.linger_deadline;
                let ready_at = shard.budget_ready_at(now);
                wake = wake.min(linger.max(ready_at));
            }
        }
        // Never spin: whatever was due now has been handled by `step`.
        wake.max(now + Duration::from_millis(1))
    }

    fn update_gauges(&self) {
        let records = self.cfg.buffer_records
            - self
                .buffer_records
                .available_permits()
                .min(self.cfg.buffer_records);
        let bytes = self.cfg.buffer_bytes
            - self
                .buffer_bytes
                .available_permits()
                .min(self.cfg.buffer_bytes);
        self.metrics.buffered_records.set(records as i64);
        self.metrics.buffered_bytes.set(bytes as i64);
    }
}
