//! The buffers of every shard and what has been uploaded: plain data, no I/O, so the
//! cutting rules can be tested directly.
//!
//! Buffers are kept per shard and, inside a shard, per (dataset, partition). A *cut*
//! closes all open buffers of a shard at once into a *generation*; each buffer
//! becomes one object. A shard's records up to a generation's last position are safe
//! to checkpoint once that generation and every earlier one are uploaded.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use flowline_model::Timestamp;
use tokio::sync::OwnedSemaphorePermit;

use crate::error::LakeError;
use crate::item::{LakeRecord, Payload, RecordMeta};
use crate::layout::{Dataset, Partition, Position};

/// Why a shard's buffers were cut (the `reason` label of the flush counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushReason {
    /// A buffer reached the size hint.
    Size,
    /// A record arrived `interval` after the oldest buffered one (record time).
    Age,
    /// The wall clock passed `interval + wall_clock_grace` on a quiet shard.
    Idle,
    /// Over the memory budget: the largest shard was cut early.
    Memory,
    /// Asked for (`flush_shard`, shutdown).
    Explicit,
}

impl FlushReason {
    pub const ALL: [FlushReason; 5] = [
        Self::Size,
        Self::Age,
        Self::Idle,
        Self::Memory,
        Self::Explicit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FlushReason::Size => "size",
            FlushReason::Age => "age",
            FlushReason::Idle => "idle",
            FlushReason::Memory => "memory",
            FlushReason::Explicit => "explicit",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardKey {
    pub stream: String,
    pub shard: String,
}

pub(crate) struct Buffer {
    payloads: Vec<Payload>,
    first: Position,
    last: Position,
    bytes: usize,
    permit: OwnedSemaphorePermit,
}

struct Generation {
    id: u64,
    last: Position,
    pending: usize,
}

#[derive(Default)]
pub(crate) struct ShardState {
    open: BTreeMap<(Dataset, Partition), Buffer>,
    open_bytes: usize,
    open_records: usize,
    opened_at: Option<Instant>,
    first_arrival: Option<Timestamp>,
    last_added: Option<Position>,
    in_flight: VecDeque<Generation>,
    safe: Option<Position>,
}

/// One object to encode and upload.
#[derive(Debug)]
pub(crate) struct UploadJob {
    pub shard: ShardKey,
    pub generation: u64,
    pub dataset: Dataset,
    pub partition: Partition,
    pub first: Position,
    pub last: Position,
    pub payloads: Vec<Payload>,
    /// Budget held until the object is uploaded.
    pub permit: OwnedSemaphorePermit,
}

#[derive(Default)]
pub(crate) struct State {
    shards: HashMap<ShardKey, ShardState>,
    next_generation: u64,
    pub failure: Option<String>,
}

/// Limits a shard's buffers are cut at.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hints {
    pub size: u64,
    pub interval: Duration,
}

impl State {
    /// Adds a record, cutting the shard before it (record-time age) or after it (size)
    /// when a hint is reached. Returns the jobs of any cut and the reason.
    pub fn add(
        &mut self,
        meta: &RecordMeta,
        record: LakeRecord,
        permit: OwnedSemaphorePermit,
        hints: Hints,
        now: Instant,
    ) -> Result<Option<(FlushReason, Vec<UploadJob>)>, LakeError> {
        let key = ShardKey {
            stream: meta.stream.clone(),
            shard: meta.shard_id.clone(),
        };
        let shard = self.shards.entry(key.clone()).or_default();
        if let Some(last) = &shard.last_added
            && meta.position <= *last
        {
            return Err(LakeError::OutOfOrder {
                stream: key.stream,
                shard: key.shard,
                position: meta.position.to_string(),
                last: last.to_string(),
            });
        }
        let mut cut = None;
        let interval_ms = i64::try_from(hints.interval.as_millis()).unwrap_or(i64::MAX);
        if shard.first_arrival.is_some_and(|first| {
            meta.arrival.millis().saturating_sub(first.millis()) >= interval_ms
        }) {
            cut = Some((FlushReason::Age, self.cut(&key)));
        }
        let shard = self.shards.get_mut(&key).expect("just inserted");
        shard.opened_at.get_or_insert(now);
        shard.first_arrival.get_or_insert(meta.arrival);
        shard.last_added = Some(meta.position.clone());
        shard.open_bytes += record.size;
        shard.open_records += 1;
        let buffer = match shard.open.entry((record.dataset, record.partition)) {
            Entry::Vacant(v) => v.insert(Buffer {
                payloads: Vec::new(),
                first: meta.position.clone(),
                last: meta.position.clone(),
                bytes: 0,
                permit,
            }),
            Entry::Occupied(o) => {
                let b = o.into_mut();
                b.permit.merge(permit);
                b
            }
        };
        buffer.payloads.push(record.payload);
        buffer.last = meta.position.clone();
        buffer.bytes += record.size;
        if buffer.bytes as u64 >= hints.size {
            let jobs = self.cut(&key);
            match &mut cut {
                Some((_, earlier)) => earlier.extend(jobs),
                None => cut = Some((FlushReason::Size, jobs)),
            }
        }
        Ok(cut)
    }

    /// Closes every open buffer of `key` into a new generation.
    pub fn cut(&mut self, key: &ShardKey) -> Vec<UploadJob> {
        let Some(shard) = self.shards.get_mut(key) else {
            return Vec::new();
        };
        if shard.open.is_empty() {
            return Vec::new();
        }
        let id = self.next_generation;
        self.next_generation += 1;
        let open = std::mem::take(&mut shard.open);
        shard.in_flight.push_back(Generation {
            id,
            last: shard.last_added.clone().expect("open buffers have records"),
            pending: open.len(),
        });
        shard.open_bytes = 0;
        shard.open_records = 0;
        shard.opened_at = None;
        shard.first_arrival = None;
        open.into_iter()
            .map(|((dataset, partition), b)| UploadJob {
                shard: key.clone(),
                generation: id,
                dataset,
                partition,
                first: b.first,
                last: b.last,
                payloads: b.payloads,
                permit: b.permit,
            })
            .collect()
    }

    /// Cuts the shard with the most open bytes (memory pressure); `None` when nothing
    /// is open.
    pub fn cut_largest(&mut self) -> Option<Vec<UploadJob>> {
        let key = self
            .shards
            .iter()
            .filter(|(_, s)| s.open_bytes > 0 || !s.open.is_empty())
            .max_by_key(|(k, s)| (s.open_bytes, std::cmp::Reverse((*k).clone())))
            .map(|(k, _)| k.clone())?;
        Some(self.cut(&key))
    }

    /// Cuts shards whose buffers have waited `interval + grace` by the wall clock.
    pub fn cut_idle(
        &mut self,
        now: Instant,
        hints: impl Fn(&str) -> Hints,
        grace: Duration,
    ) -> Vec<UploadJob> {
        let due: Vec<ShardKey> = self
            .shards
            .iter()
            .filter(|(k, s)| {
                s.opened_at.is_some_and(|t| {
                    now.saturating_duration_since(t) >= hints(&k.stream).interval + grace
                })
            })
            .map(|(k, _)| k.clone())
            .collect();
        due.iter().flat_map(|k| self.cut(k)).collect()
    }

    pub fn keys(&self) -> Vec<ShardKey> {
        self.shards.keys().cloned().collect()
    }

    /// Records an uploaded object; advances the shard's safe position when its
    /// generation and all earlier ones are complete. Unknown shards (dropped) and
    /// generations are ignored.
    pub fn complete(&mut self, key: &ShardKey, generation: u64) {
        let Some(shard) = self.shards.get_mut(key) else {
            return;
        };
        if let Some(g) = shard.in_flight.iter_mut().find(|g| g.id == generation) {
            g.pending -= 1;
        }
        while shard.in_flight.front().is_some_and(|g| g.pending == 0) {
            let g = shard.in_flight.pop_front().expect("checked");
            shard.safe = Some(g.last);
        }
    }

    /// Everything of the shard up to and including this position is in S3.
    pub fn safe_position(&self, key: &ShardKey) -> Option<Position> {
        self.shards.get(key).and_then(|s| s.safe.clone())
    }

    /// Whether the shard has nothing open and nothing uploading.
    pub fn is_drained(&self, key: &ShardKey) -> bool {
        self.shards
            .get(key)
            .is_none_or(|s| s.open.is_empty() && s.in_flight.is_empty())
    }

    /// Whether every generation cut so far is uploaded.
    pub fn is_uploaded(&self, key: &ShardKey) -> bool {
        self.shards.get(key).is_none_or(|s| s.in_flight.is_empty())
    }

    pub fn all_drained(&self) -> bool {
        self.shards
            .values()
            .all(|s| s.open.is_empty() && s.in_flight.is_empty())
    }

    /// Forgets a shard (lease lost): open buffers are dropped, uploads in flight finish
    /// but no longer count.
    /// Returns the budget released by the dropped open buffers.
    pub fn drop_shard(&mut self, key: &ShardKey) -> usize {
        self.shards
            .remove(key)
            .map_or(0, |s| s.open.values().map(|b| b.permit.num_permits()).sum())
    }

    /// `(open records, oldest open buffer)` for the gauges.
    pub fn open_stats(&self) -> (usize, Option<Instant>) {
        let records = self.shards.values().map(|s| s.open_records).sum();
        let oldest = self.shards.values().filter_map(|s| s.opened_at).min();
        (records, oldest)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use tokio::sync::Semaphore;

    use super::*;

    fn meta(shard: &str, seq: u64, arrival_s: i64) -> RecordMeta {
        RecordMeta {
            stream: "sales".into(),
            shard_id: shard.into(),
            position: Position::new(seq.to_string(), 0),
            arrival: Timestamp::from_millis(1_700_000_000_000 + arrival_s * 1000).unwrap(),
        }
    }

    fn rec(m: &RecordMeta, hour_offset: i64, size: usize) -> LakeRecord {
        let t = Timestamp::from_millis(1_700_000_000_000 + hour_offset * 3_600_000).unwrap();
        let mut r = LakeRecord::raw(m, Bytes::from(format!(r#"{{"event_time":"{t}"}}"#)));
        r.size = size;
        r
    }

    struct Fixture {
        state: State,
        budget: Arc<Semaphore>,
        hints: Hints,
        now: Instant,
    }

    impl Fixture {
        fn new(size: u64, interval_s: u64) -> Self {
            Fixture {
                state: State::default(),
                budget: Arc::new(Semaphore::new(1 << 20)),
                hints: Hints {
                    size,
                    interval: Duration::from_secs(interval_s),
                },
                now: Instant::now(),
            }
        }

        fn add(
            &mut self,
            shard: &str,
            seq: u64,
            arrival_s: i64,
            hour: i64,
            size: usize,
        ) -> Option<(FlushReason, Vec<UploadJob>)> {
            let m = meta(shard, seq, arrival_s);
            let permit = self
                .budget
                .clone()
                .try_acquire_many_owned(size as u32)
                .unwrap();
            self.state
                .add(&m, rec(&m, hour, size), permit, self.hints, self.now)
                .unwrap()
        }
    }

    fn ranges(jobs: &[UploadJob]) -> Vec<(String, String, String)> {
        jobs.iter()
            .map(|j| {
                (
                    j.partition.to_string(),
                    j.first.to_string(),
                    j.last.to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn size_hint_cuts_the_whole_shard_after_the_record() {
        let mut f = Fixture::new(100, 60);
        assert!(f.add("s0", 1, 0, 0, 40).is_none());
        assert!(f.add("s0", 2, 0, 1, 40).is_none());
        assert!(
            f.add("s1", 3, 0, 0, 90).is_none(),
            "other shards have their own buffers"
        );
        let (reason, jobs) = f.add("s0", 4, 0, 0, 60).expect("cut at 100 bytes");
        assert_eq!(reason, FlushReason::Size);
        let h0 = "dt=2023-11-14/hour=22";
        let h1 = "dt=2023-11-14/hour=23";
        assert_eq!(
            ranges(&jobs),
            [
                (h0.into(), "1".into(), "4".into()),
                (h1.into(), "2".into(), "2".into())
            ]
        );
        assert_eq!(
            jobs[0].permit.num_permits(),
            100,
            "budget travels with the object"
        );
        let key = jobs[0].shard.clone();
        assert_eq!(f.state.safe_position(&key), None);
        f.state.complete(&key, jobs[1].generation);
        assert_eq!(
            f.state.safe_position(&key),
            None,
            "one object of the generation is still uploading"
        );
        f.state.complete(&key, jobs[0].generation);
        assert_eq!(f.state.safe_position(&key), Some(Position::new("4", 0)));
        assert!(f.state.is_drained(&key));
    }

    #[test]
    fn record_time_age_cuts_before_the_late_record() {
        let mut f = Fixture::new(1 << 30, 60);
        assert!(f.add("s0", 1, 0, 0, 1).is_none());
        assert!(f.add("s0", 2, 59, 0, 1).is_none());
        let (reason, jobs) = f.add("s0", 3, 60, 0, 1).expect("60 s of record time");
        assert_eq!(reason, FlushReason::Age);
        let r = ranges(&jobs);
        assert_eq!((r[0].1.as_str(), r[0].2.as_str()), ("1", "2"));
    }

    #[test]
    fn safe_position_advances_only_over_complete_prefixes() {
        let mut f = Fixture::new(10, 60);
        let (_, g1) = f.add("s0", 1, 0, 0, 10).unwrap();
        let (_, g2) = f.add("s0", 2, 0, 0, 10).unwrap();
        let key = g1[0].shard.clone();
        f.state.complete(&key, g2[0].generation);
        assert_eq!(
            f.state.safe_position(&key),
            None,
            "generation 1 is still uploading"
        );
        f.state.complete(&key, g1[0].generation);
        assert_eq!(f.state.safe_position(&key), Some(Position::new("2", 0)));
    }

    #[test]
    fn idle_and_memory_cuts() {
        let mut f = Fixture::new(1 << 30, 60);
        f.add("s0", 1, 0, 0, 5);
        f.add("s1", 1, 0, 0, 50);
        f.add("s1", 2, 0, 0, 50);
        let largest = f.state.cut_largest().unwrap();
        assert_eq!(largest[0].shard.shard, "s1");
        assert_eq!(largest[0].payloads.len(), 2);
        let hints = f.hints;
        assert!(
            f.state
                .cut_idle(
                    f.now + Duration::from_secs(69),
                    |_| hints,
                    Duration::from_secs(10)
                )
                .is_empty()
        );
        let idle = f.state.cut_idle(
            f.now + Duration::from_secs(70),
            |_| hints,
            Duration::from_secs(10),
        );
        assert_eq!(idle.len(), 1);
        assert_eq!(idle[0].shard.shard, "s0");
        assert!(f.state.cut_largest().is_none(), "nothing open");
    }

    #[test]
    fn out_of_order_is_refused_and_drop_shard_forgets() {
        let mut f = Fixture::new(1 << 30, 60);
        f.add("s0", 5, 0, 0, 1);
        let m = meta("s0", 5, 0);
        let permit = f.budget.clone().try_acquire_many_owned(1).unwrap();
        let err = f
            .state
            .add(&m, rec(&m, 0, 1), permit, f.hints, f.now)
            .unwrap_err();
        assert!(matches!(err, LakeError::OutOfOrder { .. }), "{err}");
        let key = ShardKey {
            stream: "sales".into(),
            shard: "s0".into(),
        };
        f.state.drop_shard(&key);
        assert_eq!(
            f.budget.available_permits(),
            1 << 20,
            "dropped buffers release their budget"
        );
        assert!(
            f.add("s0", 5, 0, 0, 1).is_none(),
            "re-reading from a checkpoint is fine after drop_shard"
        );
    }
}
