//! Checkpoints, encoding and restore.

use std::time::Duration;

use flowline_model::Dimension;

use super::*;
use crate::{Error, OperatorSnapshot, WindowConfig, WindowOperator, WindowSnapshot};

#[test]
fn checkpoints_are_incremental_and_survive_a_failed_write() {
    let mut w = op();
    count(&mut w, &o("a", 1_000, "c1", "books", "CA", 100));
    count(&mut w, &o("b", 61_000, "c1", "books", "CA", 100));
    let cp = w.checkpoint();
    assert_eq!(cp.changed.len(), 2);
    // The write failed (never committed); a later change, then a retry.
    count(&mut w, &o("c", 62_000, "c1", "books", "CA", 100));
    let cp = w.checkpoint();
    assert_eq!(
        cp.changed.len(),
        2,
        "uncommitted windows are included again"
    );
    w.commit(cp.epoch);
    assert!(!w.is_dirty());
    assert!(w.checkpoint().changed.is_empty());

    // Only the window that changed is written.
    count(&mut w, &o("d", 63_000, "c1", "books", "CA", 100));
    let cp = w.checkpoint();
    let starts: Vec<Timestamp> = cp
        .changed
        .iter()
        .map(WindowSnapshot::window_start)
        .collect();
    assert_eq!(starts, vec![t(60_000)]);
    w.commit(cp.epoch);

    // Emission changes the window (revisions); dropping it asks for a delete.
    advance(&mut w, 60_000);
    let cp = w.checkpoint();
    assert_eq!(cp.changed.len(), 1);
    assert_eq!(cp.operator.watermark(), Some(t(60_000)));
    w.commit(cp.epoch);
    advance(&mut w, 120_000);
    assert!(w.is_dirty());
    let cp = w.checkpoint();
    assert_eq!(cp.dropped, vec![t(0)]);
    assert_eq!(cp.changed.len(), 1, "window 60 s was emitted at 120 s");
    w.commit(cp.epoch);
    assert!(w.checkpoint().dropped.is_empty());
}

#[test]
fn snapshot_bytes_round_trip_in_parts() {
    let mut w = op();
    for i in 0..2_000 {
        let order = o(
            &format!("order-{i:06}"),
            i * 40,
            &format!("cust-{}", i % 300),
            "books",
            "CA",
            100 + i,
        );
        count(&mut w, &order);
    }
    advance(&mut w, 30_000);
    let (operator, windows) = w.full_snapshot();
    let parts = windows[0].encode_parts(4_000);
    assert!(parts.len() > 1, "a large window is split");
    assert!(parts.iter().all(|p| p.len() <= 4_000));
    let back = WindowSnapshot::decode_parts(&parts).unwrap();
    assert_eq!(back, windows[0]);
    assert_eq!(back.orders(), 1_500);
    let op_back = OperatorSnapshot::decode(&operator.encode()).unwrap();
    let restored = WindowOperator::restore(
        WindowConfig::default(),
        &op_back,
        windows
            .iter()
            .map(|s| WindowSnapshot::decode(&s.encode()).unwrap()),
    )
    .unwrap();
    assert_eq!(restored.current_metrics(), w.current_metrics());
    assert_eq!(restored.full_snapshot(), w.full_snapshot());
    assert!(matches!(
        WindowSnapshot::decode(b"not deflate"),
        Err(Error::CorruptState(_))
    ));
}

#[test]
fn restore_checks_the_settings_and_skips_dropped_windows() {
    let mut w = op();
    count(&mut w, &o("a", 1_000, "c1", "books", "CA", 100));
    let (operator, windows) = w.full_snapshot();
    let other_length = WindowConfig {
        length: Duration::from_secs(30),
        ..Default::default()
    };
    let err = WindowOperator::restore(other_length, &operator, windows.clone()).unwrap_err();
    assert!(matches!(err, Error::IncompatibleState(_)), "{err}");
    let other_dims = WindowConfig {
        dimensions: vec![Dimension::All],
        ..Default::default()
    };
    let err = WindowOperator::restore(other_dims, &operator, windows.clone()).unwrap_err();
    assert!(matches!(err, Error::IncompatibleState(_)), "{err}");
    let twice = windows.iter().chain(&windows).cloned();
    assert!(WindowOperator::restore(WindowConfig::default(), &operator, twice).is_err());

    // A window item whose delete was lost comes back after the watermark moved on.
    advance(&mut w, 200_000);
    let (operator, _) = w.full_snapshot();
    let mut r = WindowOperator::restore(WindowConfig::default(), &operator, windows).unwrap();
    assert_eq!(r.open_windows(), 0);
    assert_eq!(r.checkpoint().dropped, vec![t(0)]);
}

#[test]
fn a_window_saved_unemitted_behind_the_watermark_is_emitted_after_restore() {
    // Items written without a transaction: the operator item has the new
    // watermark, the window item is from before its emission.
    let mut w = op();
    count(&mut w, &o("a", 1_000, "c1", "books", "CA", 100));
    let (_, before) = w.full_snapshot();
    advance(&mut w, 70_000);
    let (operator, _) = w.full_snapshot();
    let mut r =
        WindowOperator::restore(WindowConfig::default(), &operator, before.clone()).unwrap();
    let out = advance(&mut r, 70_000);
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|m| m.revision == 1));

    // Or a late order reaches it first: it emits the whole window.
    let mut r = WindowOperator::restore(WindowConfig::default(), &operator, before).unwrap();
    let (_, out) = feed(&mut r, &o("b", 2_000, "c2", "toys", "NY", 100));
    assert_eq!(out.len(), 5);
    assert_eq!(find(&out, Dimension::All, "all").orders, 2);
}

#[test]
fn a_watermark_move_after_a_checkpoint_keeps_the_operator_dirty() {
    let mut w = op();
    advance(&mut w, 1_000);
    let cp = w.checkpoint();
    advance(&mut w, 2_000);
    w.commit(cp.epoch);
    assert!(w.is_dirty());
    let cp = w.checkpoint();
    assert_eq!(cp.operator.watermark(), Some(t(2_000)));
    w.commit(cp.epoch);
    assert!(!w.is_dirty());
}
