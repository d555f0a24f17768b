//! Determinism: restarts from checkpoints and batch splits.

use std::collections::{BTreeMap, HashMap};

use flowline_model::{Timestamp, WindowMetric};
use flowline_watermark::{ShardKey, WatermarkConfig, WatermarkTracker};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::{OperatorSnapshot, Outcome, WindowConfig, WindowOperator, WindowSnapshot};

/// A per-shard input sequence with out-of-order and too-late events and
/// redeliveries, interleaved across two shards.
pub(super) fn scenario(seed: u64, n: usize, max_jitter_ms: i64) -> Vec<(usize, O)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut clocks = [0i64, 0i64];
    let mut sent: Vec<(usize, O)> = Vec::new();
    let cats = [Some("books"), Some("toys"), Some("garden"), None];
    let states = [Some("CA"), Some("NY"), Some("TX"), None];
    for i in 0..n {
        let shard = rng.random_range(0..2usize);
        if !sent.is_empty() && rng.random_bool(0.03) {
            // Redelivery of an earlier record of the same shard.
            let pick = rng.random_range(0..sent.len());
            if sent[pick].0 == shard {
                let again = sent[pick].clone();
                sent.push(again);
                continue;
            }
        }
        clocks[shard] += rng.random_range(0..400);
        let mut at = clocks[shard];
        if rng.random_bool(0.05) {
            at -= rng.random_range(0..=max_jitter_ms);
        }
        let net = rng.random_range(1..50_000);
        sent.push((
            shard,
            O {
                id: format!("o-{seed}-{i}"),
                at,
                customer: format!("c-{}", rng.random_range(0..40)),
                category: cats[rng.random_range(0..cats.len())].map(str::to_owned),
                state: states[rng.random_range(0..states.len())].map(str::to_owned),
                qty: rng.random_range(1..5),
                gross: net + rng.random_range(0..1_000),
                net,
            },
        ));
    }
    sent
}

/// What a service keeps durable: the operator and tracker items.
#[derive(Clone, Default)]
struct Store {
    operator: Vec<u8>,
    tracker: String,
    windows: BTreeMap<i64, Vec<Vec<u8>>>,
    /// Input position the checkpoint covers.
    position: usize,
}

struct Run {
    emitted: Vec<WindowMetric>,
    rejected: usize,
}

/// Processes `input` in batches ending at `cuts`, advancing the watermark
/// from the tracker after each batch; at `crashes` (batch indexes) the
/// process dies and restarts from the last checkpoint, replaying from there.
/// Checkpoints are taken after every batch index in `checkpoints`.
fn run(input: &[(usize, O)], cuts: &[usize], checkpoints: &[usize], crashes: &[usize]) -> Run {
    let wcfg = WatermarkConfig::default();
    let now = Timestamp::from_millis(T0).unwrap();
    let key = |s: usize| ShardKey::new("orders-enriched", format!("shard-{s}"));
    let mut w = op();
    let mut tracker = WatermarkTracker::new(wcfg.clone());
    let mut store = Store::default();
    let mut emitted = Vec::new();
    let mut rejected = 0;
    let mut crashed = vec![false; cuts.len()];
    let mut b = 0;
    let mut pos = 0;
    while b < cuts.len() {
        let end = cuts[b];
        for (shard, order) in &input[pos..end] {
            let mut out = Vec::new();
            if let Outcome::Rejected(_) = w.process_ref(order.r(), &mut out) {
                rejected += 1;
            }
            emitted.extend(out);
            tracker.observe(&key(*shard), t(order.at));
        }
        pos = end;
        if let Some(wm) = tracker.watermark(now) {
            w.advance_watermark(wm, &mut emitted);
        }
        if checkpoints.contains(&b) {
            let cp = w.checkpoint();
            for s in &cp.changed {
                store
                    .windows
                    .insert(s.window_start().millis(), s.encode_parts(1_000));
            }
            for d in &cp.dropped {
                store.windows.remove(&d.millis());
            }
            store.operator = cp.operator.encode();
            store.tracker = serde_json::to_string(&tracker.snapshot()).unwrap();
            store.position = b + 1;
            w.commit(cp.epoch);
        }
        if crashes.contains(&b) && !crashed[b] {
            crashed[b] = true;
            if store.operator.is_empty() {
                w = op();
                tracker = WatermarkTracker::new(wcfg.clone());
                b = 0;
                pos = 0;
            } else {
                let operator = OperatorSnapshot::decode(&store.operator).unwrap();
                let windows = store
                    .windows
                    .values()
                    .map(|parts| WindowSnapshot::decode_parts(parts).unwrap());
                w = WindowOperator::restore(WindowConfig::default(), &operator, windows).unwrap();
                tracker = WatermarkTracker::restore(
                    wcfg.clone(),
                    serde_json::from_str(&store.tracker).unwrap(),
                );
                b = store.position;
                pos = if b == 0 { 0 } else { cuts[b - 1] };
            }
            continue;
        }
        b += 1;
    }
    // Quiet at the end: a watermark far ahead closes everything.
    w.advance_watermark(t(1_000_000_000), &mut emitted);
    assert_eq!(w.open_windows(), 0);
    Run { emitted, rejected }
}

fn cuts_every(len: usize, size: usize) -> Vec<usize> {
    let mut c: Vec<usize> = (size..len).step_by(size).collect();
    c.push(len);
    c
}

/// The last revision of every metric id.
fn finals(ms: &[WindowMetric]) -> BTreeMap<String, WindowMetric> {
    let mut f: BTreeMap<String, WindowMetric> = BTreeMap::new();
    for m in ms {
        if f.get(&m.id).is_none_or(|cur| cur.revision < m.revision) {
            f.insert(m.id.clone(), m.clone());
        }
    }
    f
}

#[test]
fn restarts_from_checkpoints_give_the_same_output() {
    for seed in 0..6 {
        let input = scenario(seed, 3_000, 150_000);
        let cuts = cuts_every(input.len(), 37);
        let reference = run(&input, &cuts, &[], &[]);
        assert!(reference.rejected > 0, "the scenario has too-late events");
        assert!(
            reference.emitted.iter().any(|m| m.revision > 1),
            "the scenario has late updates"
        );

        let mut rng = ChaCha8Rng::seed_from_u64(1_000 + seed);
        let checkpoints: Vec<usize> = (0..cuts.len()).filter(|_| rng.random_bool(0.3)).collect();
        let crashes: Vec<usize> = (0..cuts.len()).filter(|_| rng.random_bool(0.1)).collect();
        assert!(!crashes.is_empty());
        let restarted = run(&input, &cuts, &checkpoints, &crashes);

        // Replays re-emit, but every (id, revision) carries the same values,
        // and the same set of them comes out: duplicates only, never a difference.
        let by_rev = |ms: &[WindowMetric]| -> HashMap<(String, u32), WindowMetric> {
            let mut map = HashMap::new();
            for m in ms {
                if let Some(prev) = map.insert((m.id.clone(), m.revision), m.clone()) {
                    assert_eq!(prev, *m, "one (id, revision), two values");
                }
            }
            map
        };
        assert_eq!(
            by_rev(&restarted.emitted),
            by_rev(&reference.emitted),
            "seed {seed}"
        );
        assert_eq!(finals(&restarted.emitted), finals(&reference.emitted));
    }
}

#[test]
fn final_metrics_do_not_depend_on_batching() {
    for seed in 10..14 {
        // Jitter below out-of-orderness + lateness: no new order is too
        // late, whatever the batches.
        let input = scenario(seed, 2_000, 60_000);
        let values = |ms: &[WindowMetric]| -> BTreeMap<String, WindowMetric> {
            finals(ms)
                .into_iter()
                .map(|(id, mut m)| {
                    m.revision = 0;
                    (id, m)
                })
                .collect()
        };
        let one = run(&input, &[input.len()], &[], &[]);
        assert_eq!(one.rejected, 0);
        let expected = values(&one.emitted);
        assert!(expected.len() > 20);
        for size in [1, 7, 100, 999] {
            // Redeliveries arriving after their window was dropped are
            // rejected as late (they cannot be told from new orders), but
            // they never change a value.
            let r = run(&input, &cuts_every(input.len(), size), &[size % 5], &[]);
            assert_eq!(
                values(&r.emitted),
                expected,
                "seed {seed}, batch size {size}"
            );
        }
        // Output order within one watermark step is by window, dimension, key.
        let mut w = op();
        for (_, order) in &input {
            let _ = w.process_ref(order.r(), &mut Vec::new());
        }
        let mut out = Vec::new();
        w.advance_watermark(t(1_000_000_000), &mut out);
        let sort_key = |m: &WindowMetric| (m.window_start, m.dimension, m.key.clone());
        assert!(out.windows(2).all(|p| sort_key(&p[0]) < sort_key(&p[1])));
    }
}
