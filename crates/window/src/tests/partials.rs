//! Per-shard partials and their merge: the same results as one operator.

use std::collections::BTreeMap;
use std::time::Duration;

use flowline_model::{Dimension, WindowMetric, metric_id};

use super::determinism::scenario;
use super::*;
use crate::{Error, Outcome, Partials, Rejection, WindowConfig, WindowSpec, merge};

fn spec() -> WindowSpec {
    WindowSpec::new(&WindowConfig::default()).unwrap()
}

fn add(p: &mut Partials, order: &O) -> Outcome {
    p.add(&order.r(), None)
}

#[test]
fn merges_shards_exactly_and_counts_duplicates_once() {
    let (mut a, mut b) = (Partials::new(spec()), Partials::new(spec()));
    let o1 = o("o1", 10_000, "c1", "books", "CA", 1_000);
    assert_eq!(add(&mut a, &o1), Outcome::Counted);
    assert_eq!(add(&mut a, &o1), Outcome::Duplicate);
    let mut o2 = o("o2", 20_000, "c2", "books", "CA", 334);
    o2.state = None;
    assert_eq!(add(&mut a, &o2), Outcome::Counted);
    assert_eq!(
        add(&mut b, &o("o3", 30_000, "c1", "toys", "CA", 2)),
        Outcome::Counted
    );
    // Through storage, as a service reads other shards' partials.
    let b = spec().decode_partial(&b.get(T0).unwrap().encode()).unwrap();
    let m = merge([a.get(T0).unwrap(), &b], 3).unwrap();
    let all = find(&m, Dimension::All, "all");
    assert_eq!((all.orders, all.units, all.distinct_customers), (3, 6, 2));
    assert_eq!(all.net_amount, cents(1_336));
    assert_eq!(all.avg_order_value, cents(445));
    assert_eq!(all.revision, 3);
    assert_eq!(all.id, metric_id(t(0), t(60_000), Dimension::All, "all"));
    assert_eq!(find(&m, Dimension::State, "CA").distinct_customers, 1);
    assert_eq!(find(&m, Dimension::State, "unknown").orders, 1);
    assert_eq!(find(&m, Dimension::Category, "books").orders, 2);
    assert_eq!(find(&m, Dimension::Category, "toys").distinct_customers, 1);
    let keys: Vec<(Dimension, &str)> = m.iter().map(|x| (x.dimension, x.key.as_str())).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "output order: dimension, then key");
    assert!(merge([], 1).unwrap().is_empty());
}

#[test]
fn merged_shards_equal_one_operator() {
    for seed in 20..24 {
        let input = scenario(seed, 3_000, 150_000);
        let mut w = op();
        let mut shards = [Partials::new(spec()), Partials::new(spec())];
        for (shard, order) in &input {
            let mut out = Vec::new();
            let expected = w.process_ref(order.r(), &mut out);
            assert_eq!(shards[*shard].add(&order.r(), None), expected);
        }
        let mut windows: BTreeMap<i64, Vec<&crate::Partial>> = BTreeMap::new();
        for s in &shards {
            for p in s.changed() {
                windows.entry(p.start_ms()).or_default().push(p);
            }
        }
        let mut merged: Vec<WindowMetric> = Vec::new();
        for partials in windows.values() {
            merged.extend(merge(partials.iter().copied(), 0).unwrap());
        }
        assert_eq!(merged, w.current_metrics(), "seed {seed}");
        assert!(merged.iter().any(|m| m.distinct_customers > 1));
    }
}

#[test]
fn lateness_changes_and_release() {
    let mut p = Partials::new(spec());
    assert_eq!(
        add(&mut p, &o("a", 1_000, "c1", "x", "y", 1)),
        Outcome::Counted
    );
    assert_eq!(
        add(&mut p, &o("b", 61_000, "c1", "x", "y", 1)),
        Outcome::Counted
    );
    let changed: Vec<i64> = p.changed().map(|x| x.start_ms()).collect();
    assert_eq!(changed, vec![T0, T0 + 60_000]);
    // Expired, but changed and not yet saved: kept.
    assert!(p.expired(Some(t(120_000))).is_empty());
    p.saved(&[]);
    assert_eq!(p.changed().count(), 0);
    assert!(p.expired(Some(t(119_999))).is_empty());
    assert_eq!(p.expired(Some(t(120_000))), vec![T0]);
    // Too late against the watermark passed in.
    let late = p.add(&o("c", 2_000, "c1", "x", "y", 1).r(), Some(t(120_000)));
    assert!(matches!(late, Outcome::Rejected(Rejection::Late { .. })));
    assert_eq!(p.changed().count(), 0, "a rejected order changes nothing");
    p.saved(&p.expired(Some(t(120_000))));
    assert_eq!(p.len(), 1);
    assert!(p.get(T0).is_none());
}

#[test]
fn stored_partials_are_checked_against_the_settings() {
    let mut p = Partials::new(spec());
    let _ = add(&mut p, &o("a", 1_000, "c1", "x", "y", 1));
    let bytes = p.get(T0).unwrap().encode();
    let back = spec().decode_partial(&bytes).unwrap();
    assert_eq!(back.orders(), 1);
    assert_eq!(
        merge([&back], 1).unwrap(),
        merge([p.get(T0).unwrap()], 1).unwrap()
    );
    let other = WindowSpec::new(&WindowConfig {
        length: Duration::from_secs(30),
        ..Default::default()
    })
    .unwrap();
    assert!(matches!(
        other.decode_partial(&bytes),
        Err(Error::IncompatibleState(_))
    ));
    assert!(matches!(
        spec().decode_partial(b"junk"),
        Err(Error::CorruptState(_))
    ));
    // Partials of different windows do not merge.
    let _ = add(&mut p, &o("b", 61_000, "c1", "x", "y", 1));
    let err = merge([p.get(T0).unwrap(), p.get(T0 + 60_000).unwrap()], 1).unwrap_err();
    assert!(matches!(err, Error::IncompatibleState(_)), "{err}");
}

#[test]
fn merged_totals_beyond_the_money_range_fail() {
    let big = flowline_model::MAX_CENTS / 2 + 1;
    let shard = |id: &str| {
        let mut p = Partials::new(spec());
        let mut order = o(id, 1_000, "c1", "x", "y", big);
        order.gross = big;
        assert_eq!(add(&mut p, &order), Outcome::Counted);
        p
    };
    let (a, b) = (shard("a"), shard("b"));
    let err = merge([a.get(T0).unwrap(), b.get(T0).unwrap()], 1).unwrap_err();
    assert!(matches!(err, Error::AmountOverflow { .. }), "{err}");
}
