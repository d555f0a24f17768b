//! What the windows compute and when they emit.

use std::time::Duration;

use flowline_model::{
    Dimension, DiscountPct, EnrichedOrder, JoinStatus, Missing, Money, Timestamp, WindowMetric,
    metric_id,
};
use flowline_watermark::{ShardKey, WatermarkConfig, WatermarkTracker};

use super::*;
use crate::{Error, Outcome, Rejection, WindowConfig, WindowOperator};

#[test]
fn window_closes_exactly_when_the_watermark_reaches_its_end() {
    let mut w = op();
    for order in [
        o("a", 10_000, "c1", "books", "CA", 1_000),
        o("b", 59_999, "c2", "toys", "NY", 2_000),
        o("c", 60_000, "c1", "books", "CA", 4_000),
    ] {
        assert_eq!(feed(&mut w, &order), (Outcome::Counted, vec![]));
    }
    assert!(advance(&mut w, 59_999).is_empty());
    let out = advance(&mut w, 60_000);
    let keys: Vec<(Dimension, &str)> = out.iter().map(|m| (m.dimension, m.key.as_str())).collect();
    assert_eq!(
        keys,
        vec![
            (Dimension::All, "all"),
            (Dimension::Category, "books"),
            (Dimension::Category, "toys"),
            (Dimension::State, "CA"),
            (Dimension::State, "NY"),
        ],
        "sorted by dimension then key"
    );
    let all = find(&out, Dimension::All, "all");
    assert_eq!(
        *all,
        WindowMetric {
            id: metric_id(t(0), t(60_000), Dimension::All, "all"),
            window_start: t(0),
            window_end: t(60_000),
            dimension: Dimension::All,
            key: "all".into(),
            orders: 2,
            units: 4,
            gross_amount: cents(3_200),
            net_amount: cents(3_000),
            avg_order_value: cents(1_500),
            distinct_customers: 2,
            revision: 1,
        }
    );
    assert_eq!(w.open_windows(), 2, "emitted windows stay for late updates");
    // The same watermark again emits nothing.
    assert!(advance(&mut w, 60_000).is_empty());
    assert!(
        advance(&mut w, 30_000).is_empty(),
        "a watermark going back is ignored"
    );
    assert_eq!(w.watermark(), Some(t(60_000)));
}

#[test]
fn late_updates_reemit_touched_keys_with_the_next_revision() {
    let mut w = op();
    count(&mut w, &o("a", 1_000, "c1", "books", "CA", 1_000));
    count(&mut w, &o("b", 2_000, "c2", "toys", "NY", 1_000));
    assert_eq!(advance(&mut w, 60_000).len(), 5);

    // Late but within the allowed lateness: counted, touched keys re-emitted.
    let (outcome, out) = feed(&mut w, &o("c", 3_000, "c3", "books", "TX", 500));
    assert_eq!(outcome, Outcome::Counted);
    assert_eq!(out.len(), 3);
    let all = find(&out, Dimension::All, "all");
    assert_eq!(
        (all.orders, all.revision, all.distinct_customers),
        (3, 2, 3)
    );
    assert_eq!(all.net_amount, cents(2_500), "full values, not a delta");
    let books = find(&out, Dimension::Category, "books");
    assert_eq!((books.orders, books.revision), (2, 2));
    let tx = find(&out, Dimension::State, "TX");
    assert_eq!(
        (tx.orders, tx.revision),
        (1, 1),
        "a new key starts at revision 1"
    );

    // Just before end + lateness: still an update.
    advance(&mut w, 119_999);
    let (outcome, out) = feed(&mut w, &o("d", 59_000, "c1", "toys", "NY", 100));
    assert_eq!(outcome, Outcome::Counted);
    assert_eq!(find(&out, Dimension::All, "all").revision, 3);
    assert_eq!(find(&out, Dimension::Category, "toys").revision, 2);

    // At end + lateness the window is dropped; later events are rejected.
    advance(&mut w, 120_000);
    assert_eq!(w.open_windows(), 0);
    let (outcome, out) = feed(&mut w, &o("e", 30_000, "c1", "toys", "NY", 100));
    assert!(out.is_empty());
    let Outcome::Rejected(rejection) = outcome else {
        panic!("expected late, got {outcome:?}")
    };
    assert_eq!(
        rejection,
        Rejection::Late {
            event_time: t(30_000),
            window_end: t(60_000),
            watermark: t(120_000)
        }
    );
    assert_eq!(rejection.error_type(), "late");
    assert!(rejection.to_string().contains("late"));
}

#[test]
fn late_event_for_a_window_never_seen_is_emitted_at_once() {
    let mut w = op();
    advance(&mut w, 90_000);
    let (outcome, out) = feed(&mut w, &o("a", 50_000, "c1", "books", "CA", 1_000));
    assert_eq!(outcome, Outcome::Counted);
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|m| m.revision == 1));
    // A window still open is not emitted by an order.
    let (_, out) = feed(&mut w, &o("b", 95_000, "c1", "books", "CA", 1_000));
    assert!(out.is_empty());
}

#[test]
fn duplicates_are_counted_once_before_and_after_emission() {
    let mut w = op();
    let a = o("a", 1_000, "c1", "books", "CA", 1_000);
    assert_eq!(feed(&mut w, &a).0, Outcome::Counted);
    assert_eq!(feed(&mut w, &a).0, Outcome::Duplicate);
    let out = advance(&mut w, 60_000);
    assert_eq!(find(&out, Dimension::All, "all").orders, 1);
    // Redelivered after emission: nothing changes, nothing is re-emitted.
    assert_eq!(feed(&mut w, &a), (Outcome::Duplicate, vec![]));
    // Same id with different content still counts once (first wins).
    let mut changed = a.clone();
    changed.net = 9_999;
    assert_eq!(feed(&mut w, &changed), (Outcome::Duplicate, vec![]));
    let now = w.current_metrics();
    let all = find(&now, Dimension::All, "all");
    assert_eq!(
        (all.orders, all.net_amount, all.revision),
        (1, cents(1_000), 1)
    );
    // After the window is dropped a redelivery is indistinguishable from a late order.
    advance(&mut w, 120_000);
    assert!(matches!(
        feed(&mut w, &a).0,
        Outcome::Rejected(Rejection::Late { .. })
    ));
}

#[test]
fn orders_without_a_value_count_under_unknown() {
    let mut w = op();
    let mut a = o("a", 1_000, "c1", "x", "y", 1_000);
    a.category = None;
    a.state = None;
    count(&mut w, &a);
    let out = advance(&mut w, 60_000);
    assert_eq!(find(&out, Dimension::Category, "unknown").orders, 1);
    assert_eq!(find(&out, Dimension::State, "unknown").orders, 1);
}

#[test]
fn distinct_customers_are_exact_per_key() {
    let mut w = op();
    count(&mut w, &o("a", 1_000, "c1", "books", "CA", 100));
    count(&mut w, &o("b", 2_000, "c1", "toys", "CA", 100));
    count(&mut w, &o("c", 3_000, "c2", "books", "CA", 100));
    count(&mut w, &o("d", 4_000, "c1", "books", "NY", 100));
    let out = advance(&mut w, 60_000);
    assert_eq!(find(&out, Dimension::All, "all").distinct_customers, 2);
    assert_eq!(
        find(&out, Dimension::Category, "books").distinct_customers,
        2
    );
    assert_eq!(
        find(&out, Dimension::Category, "toys").distinct_customers,
        1
    );
    assert_eq!(find(&out, Dimension::State, "CA").distinct_customers, 2);
    assert_eq!(find(&out, Dimension::State, "NY").distinct_customers, 1);
}

#[test]
fn average_order_value_rounds_half_away_from_zero() {
    let mut w = op();
    // 0.01 + 0.04 = 0.05 over 2 orders = 0.025 -> 0.03
    count(&mut w, &o("a", 1_000, "c1", "books", "CA", 1));
    count(&mut w, &o("b", 2_000, "c2", "books", "CA", 4));
    // 10.00 over 3 orders = 3.333.. -> 3.33
    for (i, net) in [(0, 333), (1, 333), (2, 334)] {
        count(&mut w, &o(&format!("t{i}"), 3_000, "c3", "toys", "NY", net));
    }
    let out = advance(&mut w, 60_000);
    assert_eq!(
        find(&out, Dimension::Category, "books").avg_order_value,
        cents(3)
    );
    assert_eq!(
        find(&out, Dimension::Category, "toys").avg_order_value,
        cents(333)
    );
    // 10.05 over 5 = 2.01
    assert_eq!(
        find(&out, Dimension::All, "all").avg_order_value,
        cents(201)
    );
}

#[test]
fn configured_dimensions_and_window_length() {
    let cfg = WindowConfig {
        length: Duration::from_secs(10),
        allowed_lateness: Duration::ZERO,
        dimensions: vec![Dimension::State],
    };
    let mut w = WindowOperator::new(cfg).unwrap();
    count(&mut w, &o("a", 9_999, "c1", "books", "CA", 100));
    count(&mut w, &o("b", 10_000, "c1", "books", "CA", 100));
    let out = advance(&mut w, 10_000);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].dimension, out[0].window_end),
        (Dimension::State, t(10_000))
    );
    // No lateness: the window is gone as soon as it is emitted.
    assert_eq!(w.open_windows(), 1);
    assert!(matches!(
        feed(&mut w, &o("c", 5_000, "c1", "books", "CA", 100)).0,
        Outcome::Rejected(Rejection::Late { .. })
    ));
    let bad = WindowConfig {
        dimensions: vec![],
        ..Default::default()
    };
    assert!(matches!(
        WindowOperator::new(bad),
        Err(Error::InvalidConfig(_))
    ));
}

#[test]
fn window_totals_beyond_the_money_range_are_rejected() {
    let mut w = op();
    let big = flowline_model::MAX_CENTS / 2 + 1;
    let mut a = o("a", 1_000, "c1", "books", "CA", big);
    a.gross = big;
    let mut b = a.clone();
    b.id = "b".into();
    assert_eq!(feed(&mut w, &a).0, Outcome::Counted);
    let (outcome, _) = feed(&mut w, &b);
    let Outcome::Rejected(r) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(r.error_type(), "bad_field");
    assert_eq!(
        feed(&mut w, &a).0,
        Outcome::Duplicate,
        "a duplicate stays a duplicate"
    );
}

#[test]
fn enriched_orders_are_read_as_is() {
    let order = EnrichedOrder {
        order_id: "s-1".into(),
        event_time: t(5_000),
        customer_id: "c-1".into(),
        customer_segment: None,
        email_sha256: None,
        address_id: None,
        city: None,
        state: None,
        postcode: None,
        country: None,
        location: None,
        item_id: "i-1".into(),
        item_name: Some("Dune".into()),
        category: Some("books".into()),
        brand: None,
        promo_id: None,
        discount_pct: DiscountPct::ZERO,
        quantity: 3,
        unit_price: cents(250),
        gross_amount: cents(750),
        discount_amount: Money::ZERO,
        net_amount: cents(750),
        join_status: JoinStatus::Partial,
        missing: vec![Missing::Customer, Missing::Address],
        enriched_at: t(6_000),
    };
    let mut w = op();
    let mut out = Vec::new();
    assert_eq!(w.process(&order, &mut out), Outcome::Counted);
    let out = advance(&mut w, 60_000);
    let books = find(&out, Dimension::Category, "books");
    assert_eq!(
        (books.orders, books.units, books.gross_amount),
        (1, 3, cents(750))
    );
    assert_eq!(find(&out, Dimension::State, "unknown").orders, 1);
}

#[test]
fn idle_shards_do_not_stall_the_windows() {
    let config = WatermarkConfig::default(); // 2 s out-of-orderness, 10 s idle timeout
    let mut tracker = WatermarkTracker::new(config);
    let (a, b) = (
        ShardKey::new("orders-enriched", "a"),
        ShardKey::new("orders-enriched", "b"),
    );
    let mut w = op();
    let mut now = T0 + 1_000_000;
    let step = |tracker: &mut WatermarkTracker, w: &mut WindowOperator, now: i64| {
        let wm = tracker.watermark(Timestamp::from_millis(now).unwrap());
        wm.map(|wm| advance(w, wm.millis() - T0))
            .unwrap_or_default()
    };

    // Both shards deliver; b then goes quiet, caught up.
    for (shard, order) in [
        (&a, o("1", 10_000, "c", "x", "y", 1)),
        (&b, o("2", 20_000, "c", "x", "y", 1)),
    ] {
        count(&mut w, &order);
        tracker.observe(shard, t(order.at));
        tracker.record_read(shard, 1, Some(0), Timestamp::from_millis(now).unwrap());
    }
    assert!(step(&mut tracker, &mut w, now).is_empty());
    for at in [40_000, 70_000] {
        now += 5_000;
        let order = o(&format!("a{at}"), at, "c", "x", "y", 1);
        count(&mut w, &order);
        tracker.observe(&a, t(at));
        tracker.record_read(&a, 1, Some(0), Timestamp::from_millis(now).unwrap());
        tracker.record_read(&b, 0, Some(0), Timestamp::from_millis(now).unwrap());
    }
    // b is held at 18 s: not idle long enough yet.
    assert!(step(&mut tracker, &mut w, now).is_empty());
    assert_eq!(w.watermark(), Some(t(18_000)));
    now += 10_000;
    let out = step(&mut tracker, &mut w, now);
    assert_eq!(
        w.watermark(),
        Some(t(68_000)),
        "b idle: a alone drives the watermark"
    );
    assert_eq!(find(&out, Dimension::All, "all").orders, 3);

    // Then everything goes quiet: the wall clock closes the last window.
    tracker.record_read(&a, 0, Some(0), Timestamp::from_millis(now).unwrap());
    now += 10_000;
    let out = step(&mut tracker, &mut w, now);
    assert_eq!(find(&out, Dimension::All, "all").window_start, t(60_000));
}
