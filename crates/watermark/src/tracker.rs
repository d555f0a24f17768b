//! The watermark state of the shards one copy owns.

use std::collections::BTreeMap;

use flowline_model::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::WatermarkConfig;
use crate::global::{Monotonic, global_watermark};
use crate::shard::{ShardKey, ShardWatermark};

/// What is known about one shard (serialisable, for checkpoints).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardState {
    /// Greatest event time delivered so far.
    pub max_event_time: Option<Timestamp>,
    /// Wall-clock time since which reads have been empty and caught up.
    pub caught_up_since: Option<Timestamp>,
    pub closed: bool,
    #[serde(default)]
    pub parents: Vec<String>,
    #[serde(default)]
    pub children: Vec<String>,
}

impl ShardState {
    /// Max event time minus the out-of-orderness.
    pub fn watermark(&self, config: &WatermarkConfig) -> Option<Timestamp> {
        self.max_event_time
            .map(|t| t.saturating_add_millis(-config.out_of_orderness_ms()))
    }

    /// Caught up with empty reads for the idle timeout (never for a closed shard).
    pub fn is_idle(&self, now: Timestamp, config: &WatermarkConfig) -> bool {
        !self.closed
            && self.caught_up_since.is_some_and(|since| {
                now.millis().saturating_sub(since.millis()) >= config.idle_timeout_ms()
            })
    }
}

/// Serialisable form of a [`WatermarkTracker`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackerSnapshot {
    pub shards: Vec<(ShardKey, ShardState)>,
    pub watermark: Option<Timestamp>,
}

/// Watermark state of the shards this copy owns.
///
/// Feed it per batch: [`observe`](Self::observe) each record's event time,
/// then [`record_read`](Self::record_read) once with the batch size and
/// `MillisBehindLatest`. [`entries`](Self::entries) is what to publish (after
/// the state derived from those records is durable);
/// [`watermark`](Self::watermark) is the local watermark of the owned shards.
#[derive(Clone, Debug)]
pub struct WatermarkTracker {
    config: WatermarkConfig,
    shards: BTreeMap<ShardKey, ShardState>,
    published: Monotonic,
}

impl WatermarkTracker {
    pub fn new(config: WatermarkConfig) -> Self {
        Self {
            config,
            shards: BTreeMap::new(),
            published: Monotonic::default(),
        }
    }

    pub fn config(&self) -> &WatermarkConfig {
        &self.config
    }

    /// A shard this copy starts reading (lease taken). Keeps existing state.
    pub fn add_shard(&mut self, key: ShardKey, parents: &[String]) {
        let s = self.shards.entry(key).or_default();
        s.parents = parents.to_vec();
    }

    /// Takes over a shard from what its previous owner published, so it goes
    /// on from there instead of holding the watermark until its first event.
    pub fn adopt(&mut self, entry: &ShardWatermark) {
        let s = self.shards.entry(entry.key()).or_default();
        let max = entry
            .watermark
            .map(|w| w.saturating_add_millis(self.config.out_of_orderness_ms()));
        s.max_event_time = s.max_event_time.max(max);
        s.closed |= entry.closed;
        s.parents.clone_from(&entry.parents);
        if s.children.is_empty() {
            s.children.clone_from(&entry.children);
        }
    }

    /// The lease was lost or released: the new owner publishes the shard.
    pub fn remove_shard(&mut self, key: &ShardKey) -> Option<ShardState> {
        self.shards.remove(key)
    }

    /// A record with this event time was delivered (registers the shard if new).
    pub fn observe(&mut self, key: &ShardKey, event_time: Timestamp) {
        let s = self.state_mut(key);
        if s.max_event_time < Some(event_time) {
            s.max_event_time = Some(event_time);
        }
    }

    /// One read of the shard returned `records` records. A read with none
    /// while caught up (`MillisBehindLatest` = 0) starts (or continues) the
    /// idle period; anything else ends it.
    pub fn record_read(
        &mut self,
        key: &ShardKey,
        records: usize,
        millis_behind_latest: Option<i64>,
        now: Timestamp,
    ) {
        let s = self.state_mut(key);
        if records == 0 && millis_behind_latest == Some(0) {
            s.caught_up_since.get_or_insert(now);
        } else {
            s.caught_up_since = None;
        }
    }

    /// SHARD_END was processed. `children` may be empty when not known; the
    /// shard then retires once a shard naming it as a parent is added.
    pub fn shard_ended(&mut self, key: &ShardKey, children: &[String]) {
        let s = self.state_mut(key);
        s.closed = true;
        s.caught_up_since = None;
        if !children.is_empty() {
            s.children = children.to_vec();
        }
    }

    pub fn shard(&self, key: &ShardKey) -> Option<&ShardState> {
        self.shards.get(key)
    }

    pub fn shards(&self) -> impl Iterator<Item = (&ShardKey, &ShardState)> {
        self.shards.iter()
    }

    /// The per-shard entries to publish, as of `now`.
    pub fn entries(&self, now: Timestamp) -> Vec<ShardWatermark> {
        self.shards
            .iter()
            .map(|(k, s)| ShardWatermark {
                stream: k.stream.clone(),
                shard_id: k.shard_id.clone(),
                watermark: s.watermark(&self.config),
                idle: s.is_idle(now, &self.config),
                closed: s.closed,
                parents: s.parents.clone(),
                children: s.children.clone(),
                published_at: now,
            })
            .collect()
    }

    /// The watermark of the owned shards at `now`; never goes backwards.
    /// (Across copies, use [`global_watermark`] over every published entry.)
    pub fn watermark(&mut self, now: Timestamp) -> Option<Timestamp> {
        let candidate = global_watermark(&self.entries(now), now, &self.config);
        self.published.advance(candidate)
    }

    /// The last value [`watermark`](Self::watermark) returned.
    pub fn current(&self) -> Option<Timestamp> {
        self.published.current()
    }

    pub fn snapshot(&self) -> TrackerSnapshot {
        TrackerSnapshot {
            shards: self
                .shards
                .iter()
                .map(|(k, s)| (k.clone(), s.clone()))
                .collect(),
            watermark: self.published.current(),
        }
    }

    pub fn restore(config: WatermarkConfig, snapshot: TrackerSnapshot) -> Self {
        Self {
            config,
            shards: snapshot.shards.into_iter().collect(),
            published: Monotonic::new(snapshot.watermark),
        }
    }

    fn state_mut(&mut self, key: &ShardKey) -> &mut ShardState {
        if !self.shards.contains_key(key) {
            self.shards.insert(key.clone(), ShardState::default());
        }
        self.shards.get_mut(key).expect("inserted above")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::{Clock, ManualClock};

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms).unwrap()
    }

    fn key(s: &str) -> ShardKey {
        ShardKey::new("sales", s)
    }

    fn tracker() -> WatermarkTracker {
        WatermarkTracker::new(WatermarkConfig {
            out_of_orderness: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(10),
            idle_publication_ttl: Duration::from_secs(60),
        })
    }

    #[test]
    fn shard_watermark_is_max_event_time_minus_out_of_orderness() {
        let mut w = tracker();
        let now = t(1_000_000);
        w.add_shard(key("a"), &[]);
        assert_eq!(w.watermark(now), None);
        w.observe(&key("a"), t(10_000));
        w.observe(&key("a"), t(7_000)); // out of order: max stays
        assert_eq!(w.watermark(now), Some(t(8_000)));
        assert_eq!(w.shard(&key("a")).unwrap().max_event_time, Some(t(10_000)));
    }

    #[test]
    fn minimum_over_shards_and_monotonic() {
        let mut w = tracker();
        let now = t(1_000_000);
        w.observe(&key("a"), t(10_000));
        w.observe(&key("b"), t(5_000));
        assert_eq!(w.watermark(now), Some(t(3_000)));
        // A new shard without events holds, but what was published stays.
        w.add_shard(key("c"), &[]);
        assert_eq!(w.watermark(now), Some(t(3_000)));
        w.observe(&key("c"), t(1_000));
        assert_eq!(w.watermark(now), Some(t(3_000)), "never goes backwards");
        w.observe(&key("c"), t(20_000));
        w.observe(&key("b"), t(30_000));
        assert_eq!(w.watermark(now), Some(t(8_000)));
    }

    #[test]
    fn idle_caught_up_shard_stops_holding_after_the_timeout() {
        let clock = ManualClock::new(t(1_000_000));
        let mut w = tracker();
        w.observe(&key("a"), t(50_000));
        w.record_read(&key("a"), 1, Some(0), clock.now());
        w.observe(&key("b"), t(5_000));
        w.record_read(&key("b"), 1, Some(0), clock.now());
        assert_eq!(w.watermark(clock.now()), Some(t(3_000)));

        // b: empty reads, caught up. Not idle until the timeout has passed.
        clock.advance_millis(1_000);
        w.record_read(&key("b"), 0, Some(0), clock.now());
        clock.advance_millis(9_999);
        w.record_read(&key("b"), 0, Some(0), clock.now());
        assert_eq!(w.watermark(clock.now()), Some(t(3_000)));
        clock.advance_millis(1);
        assert_eq!(w.watermark(clock.now()), Some(t(48_000)));

        // Empty reads while behind do not count as idle.
        w.record_read(&key("a"), 0, Some(5_000), clock.now());
        clock.advance_millis(60_000);
        assert!(!w.shard(&key("a")).unwrap().is_idle(clock.now(), w.config()));
    }

    #[test]
    fn records_end_the_idle_period() {
        let mut w = tracker();
        w.observe(&key("a"), t(50_000));
        w.observe(&key("b"), t(5_000));
        w.record_read(&key("b"), 0, Some(0), t(0));
        assert!(w.shard(&key("b")).unwrap().is_idle(t(10_000), w.config()));
        w.observe(&key("b"), t(6_000));
        w.record_read(&key("b"), 1, Some(0), t(10_000));
        assert!(!w.shard(&key("b")).unwrap().is_idle(t(30_000), w.config()));
    }

    #[test]
    fn all_idle_follows_the_wall_clock() {
        let clock = ManualClock::new(t(1_000_000));
        let mut w = tracker();
        for s in ["a", "b"] {
            w.observe(&key(s), t(100_000));
            w.record_read(&key(s), 0, Some(0), clock.now());
        }
        clock.advance_millis(10_000);
        assert_eq!(w.watermark(clock.now()), Some(t(1_008_000)));
        clock.advance_millis(5_000);
        assert_eq!(w.watermark(clock.now()), Some(t(1_013_000)));
    }

    #[test]
    fn closed_shard_holds_until_its_children_are_added() {
        let mut w = tracker();
        let now = t(1_000_000);
        w.observe(&key("p"), t(10_000));
        w.observe(&key("x"), t(90_000));
        w.shard_ended(&key("p"), &[]);
        assert_eq!(w.watermark(now), Some(t(8_000)));
        w.add_shard(key("c"), &["p".to_string()]);
        w.observe(&key("c"), t(60_000));
        assert_eq!(w.watermark(now), Some(t(58_000)));
    }

    #[test]
    fn entries_adopt_and_snapshot_round_trip() {
        let mut w = tracker();
        w.add_shard(key("a"), &["z".to_string()]);
        w.observe(&key("a"), t(10_000));
        w.record_read(&key("a"), 0, Some(0), t(100));
        w.watermark(t(200));
        let entries = w.entries(t(20_000));
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        assert_eq!(e.watermark, Some(t(8_000)));
        assert!(e.idle);
        assert_eq!(e.parents, vec!["z".to_string()]);
        assert_eq!(e.published_at, t(20_000));

        let mut other = tracker();
        other.adopt(e);
        assert_eq!(
            other.shard(&key("a")).unwrap().max_event_time,
            Some(t(10_000))
        );

        let json = serde_json::to_string(&w.snapshot()).unwrap();
        let back: TrackerSnapshot = serde_json::from_str(&json).unwrap();
        let restored = WatermarkTracker::restore(w.config().clone(), back);
        assert_eq!(restored.snapshot(), w.snapshot());
        assert_eq!(restored.current(), w.current());
        let json = serde_json::to_string(e).unwrap();
        assert_eq!(serde_json::from_str::<ShardWatermark>(&json).unwrap(), *e);
    }

    #[test]
    fn removed_shard_no_longer_counts() {
        let mut w = tracker();
        w.observe(&key("a"), t(10_000));
        w.observe(&key("b"), t(50_000));
        assert!(w.remove_shard(&key("a")).is_some());
        assert_eq!(w.watermark(t(0)), Some(t(48_000)));
    }
}
