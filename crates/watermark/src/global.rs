//! The watermark rule over a set of shards, and the monotonic guard.

use std::collections::HashSet;

use flowline_model::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::WatermarkConfig;
use crate::shard::{ShardKey, ShardWatermark};

/// The watermark of a set of shards (the input streams of a service, across
/// all its copies) from what their owners published, at wall-clock `now`.
///
/// - A closed shard stops counting once its children are known: all of its
///   listed `children` are in `entries`, or, when it lists none, some entry
///   names it as a parent. Until then it holds at its final watermark.
/// - A shard flagged idle does not count, as long as the flag is younger than
///   `idle_publication_ttl` (an old flag may come from a dead owner).
/// - The result is the minimum over the shards that count; `None` if one of
///   them has seen no event yet, or if there are no entries at all.
/// - If every shard that counts is idle, the result is the wall clock minus
///   the out-of-orderness (or the lowest idle watermark, if that is later),
///   so the last windows and joins close without new input.
///
/// Not monotonic by itself: publish through [`Monotonic`].
pub fn global_watermark(
    entries: &[ShardWatermark],
    now: Timestamp,
    config: &WatermarkConfig,
) -> Option<Timestamp> {
    let present: HashSet<(&str, &str)> = entries
        .iter()
        .map(|e| (e.stream.as_str(), e.shard_id.as_str()))
        .collect();
    let named_as_parent: HashSet<(&str, &str)> = entries
        .iter()
        .flat_map(|e| e.parents.iter().map(|p| (e.stream.as_str(), p.as_str())))
        .collect();
    let ttl = config.idle_publication_ttl_ms();

    let mut holding: Option<Option<Timestamp>> = None;
    let mut idle_min: Option<Option<Timestamp>> = None;
    for e in entries {
        if e.closed && is_retired(e, &present, &named_as_parent) {
            continue;
        }
        let fresh = now.millis().saturating_sub(e.published_at.millis()) <= ttl;
        let slot = if e.idle && !e.closed && fresh {
            &mut idle_min
        } else {
            &mut holding
        };
        // `None` (no event yet) sorts below every time: it holds everything.
        *slot = Some(match *slot {
            None => e.watermark,
            Some(cur) => cur.min(e.watermark),
        });
    }
    match (holding, idle_min) {
        (Some(min), _) => min,
        (None, Some(idle)) => {
            let wall = now.saturating_add_millis(-config.out_of_orderness_ms());
            Some(idle.map_or(wall, |w| w.max(wall)))
        }
        (None, None) => None,
    }
}

/// Closed shards whose children are known: they no longer count, and their
/// published entries may be deleted.
pub fn retired_shards(entries: &[ShardWatermark]) -> Vec<ShardKey> {
    let present: HashSet<(&str, &str)> = entries
        .iter()
        .map(|e| (e.stream.as_str(), e.shard_id.as_str()))
        .collect();
    let named_as_parent: HashSet<(&str, &str)> = entries
        .iter()
        .flat_map(|e| e.parents.iter().map(|p| (e.stream.as_str(), p.as_str())))
        .collect();
    entries
        .iter()
        .filter(|e| e.closed && is_retired(e, &present, &named_as_parent))
        .map(ShardWatermark::key)
        .collect()
}

fn is_retired(
    e: &ShardWatermark,
    present: &HashSet<(&str, &str)>,
    named_as_parent: &HashSet<(&str, &str)>,
) -> bool {
    if e.children.is_empty() {
        named_as_parent.contains(&(e.stream.as_str(), e.shard_id.as_str()))
    } else {
        e.children
            .iter()
            .all(|c| present.contains(&(e.stream.as_str(), c.as_str())))
    }
}

/// Keeps a published watermark from ever going backwards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Monotonic {
    current: Option<Timestamp>,
}

impl Monotonic {
    pub fn new(start: Option<Timestamp>) -> Self {
        Self { current: start }
    }

    pub fn current(&self) -> Option<Timestamp> {
        self.current
    }

    /// Takes `candidate` if it is later than the current value; returns the
    /// (possibly unchanged) current value.
    pub fn advance(&mut self, candidate: Option<Timestamp>) -> Option<Timestamp> {
        if candidate > self.current {
            self.current = candidate;
        }
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms).unwrap()
    }

    fn entry(shard: &str, wm: Option<i64>, idle: bool) -> ShardWatermark {
        ShardWatermark {
            stream: "sales".into(),
            shard_id: shard.into(),
            watermark: wm.map(t),
            idle,
            closed: false,
            parents: vec![],
            children: vec![],
            published_at: t(1_000_000),
        }
    }

    fn cfg() -> WatermarkConfig {
        WatermarkConfig::default()
    }

    const NOW: i64 = 1_000_500;

    #[test]
    fn minimum_over_active_shards() {
        let e = [
            entry("a", Some(500), false),
            entry("b", Some(300), false),
            entry("c", Some(900), false),
        ];
        assert_eq!(global_watermark(&e, t(NOW), &cfg()), Some(t(300)));
    }

    #[test]
    fn a_shard_without_events_holds_everything() {
        let e = [entry("a", Some(500), false), entry("b", None, false)];
        assert_eq!(global_watermark(&e, t(NOW), &cfg()), None);
        assert_eq!(global_watermark(&[], t(NOW), &cfg()), None);
    }

    #[test]
    fn idle_shards_do_not_hold_back() {
        let e = [
            entry("a", Some(500), false),
            entry("b", Some(100), true),
            entry("c", None, true),
        ];
        assert_eq!(global_watermark(&e, t(NOW), &cfg()), Some(t(500)));
    }

    #[test]
    fn all_idle_follows_the_wall_clock() {
        let e = [entry("a", Some(500), true), entry("b", None, true)];
        assert_eq!(global_watermark(&e, t(NOW), &cfg()), Some(t(NOW - 2_000)));
        // Event times ahead of the wall clock are not pulled back.
        let e = [entry("a", Some(NOW + 10), true)];
        assert_eq!(global_watermark(&e, t(NOW), &cfg()), Some(t(NOW + 10)));
    }

    #[test]
    fn a_stale_idle_flag_holds_again() {
        let mut stale = entry("b", Some(100), true);
        stale.published_at = t(NOW - 61_000);
        let e = [entry("a", Some(500), false), stale];
        assert_eq!(global_watermark(&e, t(NOW), &cfg()), Some(t(100)));
    }

    #[test]
    fn closed_shard_counts_until_its_children_are_known() {
        let mut parent = entry("p", Some(100), false);
        parent.closed = true;
        parent.children = vec!["c1".into(), "c2".into()];
        let other = entry("x", Some(900), false);
        assert_eq!(
            global_watermark(&[parent.clone(), other.clone()], t(NOW), &cfg()),
            Some(t(100))
        );
        let c1 = entry("c1", Some(700), false);
        assert_eq!(
            global_watermark(&[parent.clone(), other.clone(), c1.clone()], t(NOW), &cfg()),
            Some(t(100)),
            "one child of two is not enough"
        );
        let c2 = entry("c2", Some(800), false);
        let all = [parent.clone(), other, c1, c2];
        assert_eq!(global_watermark(&all, t(NOW), &cfg()), Some(t(700)));
        assert_eq!(retired_shards(&all), vec![ShardKey::new("sales", "p")]);
    }

    #[test]
    fn closed_shard_without_listed_children_retires_when_named_as_parent() {
        let mut parent = entry("p", Some(100), false);
        parent.closed = true;
        // Closed shards are never idle, even if flagged.
        parent.idle = true;
        let other = entry("x", Some(900), false);
        assert_eq!(
            global_watermark(&[parent.clone(), other.clone()], t(NOW), &cfg()),
            Some(t(100))
        );
        let mut child = entry("c", None, false);
        child.parents = vec!["p".into()];
        // The child has no event yet: it holds now instead of its parent.
        assert_eq!(
            global_watermark(
                &[parent.clone(), other.clone(), child.clone()],
                t(NOW),
                &cfg()
            ),
            None
        );
        child.watermark = Some(t(950));
        assert_eq!(
            global_watermark(&[parent, other, child], t(NOW), &cfg()),
            Some(t(900))
        );
    }

    #[test]
    fn parents_are_matched_within_the_same_stream() {
        let mut parent = entry("p", Some(100), false);
        parent.closed = true;
        let mut child = entry("c", Some(900), false);
        child.stream = "customers".into();
        child.parents = vec!["p".into()];
        assert_eq!(
            global_watermark(&[parent, child], t(NOW), &cfg()),
            Some(t(100))
        );
    }

    #[test]
    fn monotonic_never_goes_back() {
        let mut m = Monotonic::default();
        assert_eq!(m.advance(None), None);
        assert_eq!(m.advance(Some(t(5))), Some(t(5)));
        assert_eq!(m.advance(Some(t(3))), Some(t(5)));
        assert_eq!(m.advance(None), Some(t(5)));
        assert_eq!(m.advance(Some(t(9))), Some(t(9)));
        assert_eq!(m.current(), Some(t(9)));
    }
}
