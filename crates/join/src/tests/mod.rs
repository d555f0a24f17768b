//! Scenario tests of the join core over the in-memory stores.

mod fakes;
mod oracle;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use flowline_model::{
    Address, Customer, DiscountPct, EnrichedOrder, GeoPoint, Item, JoinStatus, Missing, Money,
    Promo, RecordSource, Sale, Timestamp, email_sha256,
};
use futures::executor::block_on;

use self::fakes::{Flaky, UniqueBatches};
use crate::{
    InMemoryPendingStore, InMemoryVersionStore, JoinConfig, JoinCore, JoinError, JoinStores,
    ReferenceData, ReferenceHandle, VersionStore,
};

const BASE: i64 = 1_700_000_000_000;

/// `BASE + seconds`.
fn t(secs: f64) -> Timestamp {
    Timestamp::from_millis(BASE + (secs * 1000.0) as i64).unwrap()
}

fn ms(x: Timestamp, delta: i64) -> Timestamp {
    x.checked_add_millis(delta).unwrap()
}

fn customer(id: &str, address_id: &str, segment: &str, at: f64) -> Customer {
    Customer {
        customer_id: id.into(),
        address_id: address_id.into(),
        first_name: "Ann".into(),
        last_name: "Lee".into(),
        email: format!("Ann.Lee+{id}@Example.org"),
        phone: "+1-555-0100".into(),
        segment: segment.into(),
        updated_at: t(at),
    }
}

fn address(id: &str, city: &str, at: f64) -> Address {
    Address {
        address_id: id.into(),
        street: "1 Secret Street".into(),
        city: city.into(),
        state: "BE".into(),
        postcode: "10115".into(),
        country: "DE".into(),
        lat: 52.516_27,
        lon: 13.377_74,
        updated_at: t(at),
    }
}

fn sale(id: &str, customer_id: &str, item: &str, promo: Option<&str>, at: f64) -> Sale {
    Sale {
        sale_id: id.into(),
        customer_id: customer_id.into(),
        item_id: item.into(),
        promo_id: promo.map(Into::into),
        quantity: 2,
        unit_price: Money::from_cents(1999).unwrap(),
        event_time: t(at),
    }
}

fn src(shard: &str, seq: u32) -> RecordSource {
    RecordSource {
        stream: "sales".into(),
        shard_id: shard.into(),
        sequence_number: seq.to_string(),
    }
}

fn reference() -> ReferenceData {
    let item = |id: &str, cat: &str| Item {
        item_id: id.into(),
        name: format!("name-{id}"),
        category: cat.into(),
        brand: "acme".into(),
        list_price: Money::from_cents(2500).unwrap(),
    };
    ReferenceData::new(
        [item("i1", "books"), item("i2", "games")],
        [Promo {
            promo_id: "p1".into(),
            item_id: "i1".into(),
            discount_pct: DiscountPct::from_percent(15).unwrap(),
            starts_at: t(100.0),
            ends_at: t(200.0),
        }],
    )
}

fn config(exclusive: bool) -> JoinConfig {
    JoinConfig {
        exclusive_writer: exclusive,
        ..JoinConfig::default()
    }
}

fn core_with(config: JoinConfig, stores: JoinStores) -> JoinCore {
    JoinCore::new(config, stores, ReferenceHandle::new(reference())).unwrap()
}

/// A core in shared mode and its version store, which "other copies" write to directly.
fn shared_core() -> (Arc<InMemoryVersionStore>, JoinCore) {
    let versions = Arc::new(InMemoryVersionStore::new());
    let stores = JoinStores {
        versions: versions.clone(),
        pending: Arc::new(InMemoryPendingStore::new()),
    };
    (versions, core_with(config(false), stores))
}

fn core(exclusive: bool) -> JoinCore {
    core_with(config(exclusive), JoinStores::in_memory())
}

enum Ev {
    C(Customer),
    A(Address),
    S(Sale),
}

impl Ev {
    fn time(&self) -> Timestamp {
        match self {
            Ev::C(c) => c.updated_at,
            Ev::A(a) => a.updated_at,
            Ev::S(s) => s.event_time,
        }
    }
}

fn feed(core: &mut JoinCore, ev: &Ev) {
    block_on(async {
        match ev {
            Ev::C(c) => core.apply_customer(c.clone()).await,
            Ev::A(a) => core.apply_address(a.clone()).await,
            Ev::S(s) => core.add_sale(s.clone(), src("shard-0", 1)).await,
        }
    })
    .unwrap();
}

fn advance(core: &mut JoinCore, w: Timestamp) -> Vec<EnrichedOrder> {
    let out = block_on(core.advance(w)).unwrap();
    assert!(
        out.windows(2)
            .all(|p| (p[0].event_time, &p[0].order_id) <= (p[1].event_time, &p[1].order_id)),
        "each advance is sorted by event time then order id"
    );
    out
}

fn only(mut v: Vec<EnrichedOrder>) -> EnrichedOrder {
    assert_eq!(v.len(), 1, "{v:#?}");
    v.pop().unwrap()
}

#[test]
fn emits_once_the_watermark_reaches_the_event_time() {
    for exclusive in [true, false] {
        let mut c = core(exclusive);
        feed(&mut c, &Ev::C(customer("c1", "a1", "gold", 0.0)));
        feed(&mut c, &Ev::A(address("a1", "Berlin", 0.0)));
        feed(&mut c, &Ev::S(sale("s1", "c1", "i2", None, 10.0)));
        // An event exactly at the watermark may still come: not yet.
        assert!(advance(&mut c, t(10.0)).is_empty());
        assert_eq!(c.stats().pending, 1);
        let o = only(advance(&mut c, ms(t(10.0), 1)));
        assert_eq!(o.order_id, "s1");
        assert_eq!(o.join_status, JoinStatus::Complete);
        assert!(o.missing.is_empty());
        assert_eq!(o.customer_segment.as_deref(), Some("gold"));
        assert_eq!(o.address_id.as_deref(), Some("a1"));
        assert_eq!(o.city.as_deref(), Some("Berlin"));
        assert_eq!(o.item_name.as_deref(), Some("name-i2"));
        assert_eq!(o.category.as_deref(), Some("games"));
        assert_eq!(
            o.enriched_at, o.event_time,
            "complete: enriched_at = event_time"
        );
        assert_eq!(c.stats().pending, 0);
        assert!(advance(&mut c, t(500.0)).is_empty(), "emitted once");
    }
}

#[test]
fn versions_changing_between_sales_and_the_address_of_the_chosen_version() {
    for exclusive in [true, false] {
        let mut c = core(exclusive);
        for ev in [
            Ev::C(customer("c1", "a1", "bronze", 0.0)),
            Ev::C(customer("c1", "a2", "gold", 10.0)),
            Ev::A(address("a1", "Berlin", 0.0)),
            Ev::A(address("a2", "Bonn", 5.0)),
            Ev::A(address("a2", "Bonn-Beuel", 15.0)),
            Ev::S(sale("s1", "c1", "i2", None, 5.0)),
            Ev::S(sale("s2", "c1", "i2", None, 10.0)),
            Ev::S(sale("s3", "c1", "i2", None, 12.0)),
            Ev::S(sale("s4", "c1", "i2", None, 15.0)),
            Ev::S(sale("s5", "c1", "i2", None, 9.999)),
        ] {
            feed(&mut c, &ev);
        }
        let out = advance(&mut c, t(20.0));
        let got: Vec<(&str, &str, &str, &str)> = out
            .iter()
            .map(|o| {
                (
                    o.order_id.as_str(),
                    o.customer_segment.as_deref().unwrap(),
                    o.address_id.as_deref().unwrap(),
                    o.city.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("s1", "bronze", "a1", "Berlin"),
                ("s5", "bronze", "a1", "Berlin"),
                // updated_at <= event_time: the version at exactly 10 s applies.
                ("s2", "gold", "a2", "Bonn"),
                ("s3", "gold", "a2", "Bonn"),
                ("s4", "gold", "a2", "Bonn-Beuel"),
            ]
        );
    }
}

#[test]
fn address_not_yet_valid_for_the_chosen_version_is_missing() {
    let mut c = core(true);
    feed(&mut c, &Ev::C(customer("c1", "a1", "gold", 0.0)));
    feed(&mut c, &Ev::A(address("a1", "Berlin", 30.0))); // valid only later
    feed(&mut c, &Ev::S(sale("s1", "c1", "i1", None, 10.0)));
    assert!(
        advance(&mut c, ms(t(10.0), 1)).is_empty(),
        "waits for the address"
    );
    assert_eq!(c.stats().waiting, 1);
    assert!(advance(&mut c, t(70.0)).is_empty());
    let o = only(advance(&mut c, ms(t(70.0), 1)));
    assert_eq!(o.missing, vec![Missing::Address]);
    assert_eq!(o.join_status, JoinStatus::Partial);
    assert_eq!(
        o.address_id.as_deref(),
        Some("a1"),
        "known from the customer"
    );
    assert_eq!(o.city, None);
    assert_eq!(o.location, None);
    assert_eq!(o.customer_segment.as_deref(), Some("gold"));
}

#[test]
fn promo_window_edges() {
    let mut c = core(true);
    feed(&mut c, &Ev::C(customer("c1", "a1", "gold", 0.0)));
    feed(&mut c, &Ev::A(address("a1", "Berlin", 0.0)));
    let cases = [
        ("before", "i1", Some("p1"), 99.999, None),
        ("start", "i1", Some("p1"), 100.0, Some("p1")),
        ("inside", "i1", Some("p1"), 199.999, Some("p1")),
        ("end", "i1", Some("p1"), 200.0, None),
        ("other-item", "i2", Some("p1"), 150.0, None),
        ("no-promo", "i1", None, 150.0, None),
    ];
    for (id, item, promo, at, _) in cases {
        feed(&mut c, &Ev::S(sale(id, "c1", item, promo, at)));
    }
    let out = advance(&mut c, t(300.0));
    assert_eq!(out.len(), cases.len());
    for (id, _, _, _, expect) in cases {
        let o = out.iter().find(|o| o.order_id == id).unwrap();
        assert_eq!(o.promo_id.as_deref(), expect, "{id}");
        let pct = if expect.is_some() { 15 } else { 0 };
        assert_eq!(
            o.discount_pct,
            DiscountPct::from_percent(pct).unwrap(),
            "{id}"
        );
        assert!(
            o.missing.is_empty(),
            "an inactive promo is not missing: {id}"
        );
        assert_eq!(o.join_status, JoinStatus::Complete, "{id}");
    }
}

#[test]
fn entities_that_never_arrive_give_partial_after_the_timeout_in_order() {
    for exclusive in [true, false] {
        let mut c = core(exclusive);
        feed(
            &mut c,
            &Ev::S(sale("s1", "nobody", "no-item", Some("no-promo"), 10.0)),
        );
        assert!(advance(&mut c, ms(t(10.0), 1)).is_empty());
        assert_eq!(c.stats().waiting, 1);
        assert!(advance(&mut c, t(70.0)).is_empty());
        let o = only(advance(&mut c, ms(t(70.0), 1)));
        assert_eq!(
            o.missing,
            vec![Missing::Customer, Missing::Item, Missing::Promo]
        );
        assert_eq!(o.join_status, JoinStatus::Partial);
        assert_eq!(o.enriched_at, t(70.0), "partial: event_time + join_timeout");
        assert_eq!(o.promo_id, None);
        assert_eq!(o.discount_pct, DiscountPct::ZERO);
        assert_eq!(
            (o.customer_segment, o.email_sha256, o.address_id),
            (None, None, None)
        );
        assert_eq!((o.item_name, o.category, o.brand), (None, None, None));
        assert_eq!(o.gross_amount, Money::from_cents(3998).unwrap());
        assert_eq!(c.stats().emitted_partial, 1);
    }
}

#[test]
fn a_sale_far_behind_the_watermark_is_decided_at_once() {
    let mut c = core(true);
    assert!(advance(&mut c, t(1000.0)).is_empty());
    feed(&mut c, &Ev::S(sale("late", "nobody", "i1", None, 10.0)));
    let o = only(advance(&mut c, t(1000.0)));
    assert_eq!(o.missing, vec![Missing::Customer]);
    assert_eq!(o.enriched_at, t(70.0));
}

#[test]
fn a_missing_version_arriving_before_the_timeout_completes_the_sale() {
    for exclusive in [true, false] {
        let mut c = core(exclusive);
        feed(&mut c, &Ev::S(sale("s1", "c1", "i1", None, 10.0)));
        feed(&mut c, &Ev::S(sale("s2", "c2", "i1", None, 10.0)));
        assert!(advance(&mut c, ms(t(10.0), 1)).is_empty());
        assert_eq!(c.stats().waiting, 2);
        // c1 arrives late but valid at the sale; c2 only valid afterwards.
        feed(&mut c, &Ev::C(customer("c1", "a1", "gold", 9.0)));
        feed(&mut c, &Ev::A(address("a1", "Berlin", 1.0)));
        feed(&mut c, &Ev::C(customer("c2", "a1", "gold", 11.0)));
        let o = only(advance(&mut c, t(30.0)));
        assert_eq!(
            (o.order_id.as_str(), o.join_status),
            ("s1", JoinStatus::Complete)
        );
        assert_eq!(o.enriched_at, t(10.0));
        assert!(advance(&mut c, t(70.0)).is_empty());
        let o = only(advance(&mut c, ms(t(70.0), 1)));
        assert_eq!(o.order_id, "s2");
        assert_eq!(o.missing, vec![Missing::Customer]);
        assert_eq!(c.stats().waiting, 0);
    }
}

#[test]
fn shared_mode_reads_through_before_giving_up() {
    // Another copy writes the customer straight into the store after this
    // core cached its absence.
    let (versions, mut c) = shared_core();
    block_on(versions.put_addresses(&[address("a1", "Berlin", 0.0)])).unwrap();
    feed(&mut c, &Ev::S(sale("s1", "c1", "i1", None, 10.0)));
    assert!(advance(&mut c, ms(t(10.0), 1)).is_empty());
    block_on(versions.put_customers(&[customer("c1", "a1", "gold", 5.0)])).unwrap();
    assert!(
        advance(&mut c, t(20.0)).is_empty(),
        "cache still says absent"
    );
    let o = only(advance(&mut c, ms(t(70.0), 1)));
    assert_eq!(o.join_status, JoinStatus::Complete);
    assert_eq!(o.enriched_at, t(10.0), "same record as an in-time join");
}

#[test]
fn an_exclusive_copy_reads_each_entity_once_and_forgets_when_it_stops_being_one() {
    let (versions, mut c) = shared_core();
    c.set_exclusive(true);
    // Written before this copy started (by an earlier owner of the shard):
    // found by the first read.
    block_on(versions.put_customers(&[customer("c1", "a1", "gold", 0.0)])).unwrap();
    c.note_unseen(t(0.0));
    feed(&mut c, &Ev::A(address("a1", "Berlin", 0.0)));
    for (i, at) in [10.0, 20.0, 30.0].into_iter().enumerate() {
        feed(&mut c, &Ev::S(sale(&format!("s{i}"), "c1", "i2", None, at)));
        let o = only(advance(&mut c, ms(t(at), 1)));
        assert_eq!(o.customer_segment.as_deref(), Some("gold"));
    }
    let reads = c.stats().store_reads;
    assert_eq!(reads, 2, "one read per entity, not per advance");
    // First seen after everything unseen: never read.
    feed(&mut c, &Ev::C(customer("c2", "a2", "bronze", 5.0)));
    feed(&mut c, &Ev::A(address("a2", "Paris", 5.0)));
    feed(&mut c, &Ev::S(sale("s9", "c2", "i2", None, 35.0)));
    let o = only(advance(&mut c, ms(t(35.0), 1)));
    assert_eq!(o.customer_segment.as_deref(), Some("bronze"));
    let reads = c.stats().store_reads;
    assert_eq!(reads, 2, "c2 and a2 came through this core");
    // A version through this copy keeps the cache true.
    feed(&mut c, &Ev::C(customer("c1", "a1", "silver", 40.0)));
    feed(&mut c, &Ev::S(sale("s3", "c1", "i2", None, 45.0)));
    let o = only(advance(&mut c, t(46.0)));
    assert_eq!(o.customer_segment.as_deref(), Some("silver"));

    // Another copy takes a shard: what it writes from now on is not seen here.
    c.set_exclusive(false);
    block_on(versions.put_customers(&[customer("c1", "a1", "platinum", 50.0)])).unwrap();
    feed(&mut c, &Ev::S(sale("s4", "c1", "i2", None, 55.0)));
    let o = only(advance(&mut c, t(56.0)));
    assert_eq!(o.customer_segment.as_deref(), Some("platinum"));
}

#[test]
fn a_version_applied_before_unseen_ones_starts_no_entry() {
    let (versions, mut c) = shared_core();
    c.set_exclusive(true);
    feed(&mut c, &Ev::A(address("a1", "Berlin", 0.0)));
    // An earlier owner of another shard wrote a newer version of c1.
    block_on(versions.put_customers(&[customer("c1", "a1", "gold", 40.0)])).unwrap();
    c.note_unseen(t(40.0));
    feed(&mut c, &Ev::C(customer("c1", "a1", "silver", 30.0)));
    feed(&mut c, &Ev::S(sale("s1", "c1", "i2", None, 45.0)));
    let o = only(advance(&mut c, t(46.0)));
    assert_eq!(o.customer_segment.as_deref(), Some("gold"));
}

#[test]
fn a_bounded_advance_releases_the_earliest_and_keeps_the_rest() {
    let mut c = core(false);
    feed(&mut c, &Ev::C(customer("c1", "a1", "gold", 0.0)));
    feed(&mut c, &Ev::A(address("a1", "Berlin", 0.0)));
    for i in 0..5 {
        feed(
            &mut c,
            &Ev::S(sale(&format!("s{i}"), "c1", "i2", None, 10.0 - i as f64)),
        );
    }
    let first = block_on(c.advance_bounded(t(20.0), 2)).unwrap();
    let ids: Vec<&str> = first.iter().map(|o| o.order_id.as_str()).collect();
    assert_eq!(ids, ["s4", "s3"], "earliest event times first");
    assert!(c.has_due());
    let rest = block_on(c.advance_bounded(t(20.0), 10)).unwrap();
    assert_eq!(rest.len(), 3);
    assert!(!c.has_due());
}

#[test]
fn reads_ahead_are_counted_as_misses_once() {
    let (versions, mut c) = shared_core();
    let mut cs = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..50 {
        cs.push(customer(&format!("c{i}"), &format!("a{i}"), "gold", 0.0));
        addrs.push(address(&format!("a{i}"), "Berlin", 0.0));
    }
    block_on(versions.put_customers(&cs)).unwrap();
    block_on(versions.put_addresses(&addrs)).unwrap();
    for i in 0..100 {
        let s = sale(&format!("s{i}"), &format!("c{}", i % 50), "i2", None, 10.0);
        feed(&mut c, &Ev::S(s));
    }
    let out = advance(&mut c, t(11.0));
    assert_eq!(out.len(), 100);
    assert!(out.iter().all(|o| o.join_status == JoinStatus::Complete));
    let s = c.stats();
    assert_eq!(
        s.store_reads, 100,
        "50 customers and 50 addresses, each read once"
    );
    assert_eq!((s.cache_hits, s.cache_misses), (100, 100));
}

#[test]
fn reference_refresh_completes_waiting_sales() {
    let handle = ReferenceHandle::new(ReferenceData::default());
    let mut c = JoinCore::new(config(true), JoinStores::in_memory(), handle.clone()).unwrap();
    feed(&mut c, &Ev::C(customer("c1", "a1", "gold", 0.0)));
    feed(&mut c, &Ev::A(address("a1", "Berlin", 0.0)));
    feed(&mut c, &Ev::S(sale("s1", "c1", "i1", Some("p1"), 150.0)));
    assert!(advance(&mut c, ms(t(150.0), 1)).is_empty());
    assert_eq!(c.stats().waiting, 1);
    handle.replace(reference());
    let o = only(advance(&mut c, t(151.0)));
    assert_eq!(o.join_status, JoinStatus::Complete);
    assert_eq!(o.promo_id.as_deref(), Some("p1"));
}

#[test]
fn amounts_round_half_away_from_zero() {
    let mut c = core(true);
    feed(&mut c, &Ev::C(customer("c1", "a1", "gold", 0.0)));
    feed(&mut c, &Ev::A(address("a1", "Berlin", 0.0)));
    let mut s = sale("s1", "c1", "i1", Some("p1"), 150.0);
    s.quantity = 3;
    s.unit_price = Money::from_cents(333).unwrap(); // gross 9.99, 15 % = 1.4985
    feed(&mut c, &Ev::S(s));
    let mut s = sale("s2", "c1", "i1", Some("p1"), 151.0);
    s.quantity = 1;
    s.unit_price = Money::from_cents(10).unwrap(); // 15 % of 0.10 = 0.015
    feed(&mut c, &Ev::S(s));
    let out = advance(&mut c, t(200.0));
    let cents = |o: &EnrichedOrder| {
        (
            o.gross_amount.cents(),
            o.discount_amount.cents(),
            o.net_amount.cents(),
        )
    };
    assert_eq!(cents(&out[0]), (999, 150, 849));
    assert_eq!(cents(&out[1]), (10, 2, 8));
    let json = serde_json::to_string(&out[0]).unwrap();
    assert!(json.contains("\"gross_amount\":9.99"), "{json}");
    assert!(json.contains("\"discount_pct\":15"), "{json}");
}

#[test]
fn no_personal_data_in_the_output() {
    let mut c = core(false);
    let cust = customer("c1", "a1", "gold", 0.0);
    feed(&mut c, &Ev::C(cust.clone()));
    feed(&mut c, &Ev::A(address("a1", "Berlin", 0.0)));
    feed(&mut c, &Ev::S(sale("s1", "c1", "i1", None, 10.0)));
    let o = only(advance(&mut c, ms(t(10.0), 1)));
    assert_eq!(o.email_sha256, Some(email_sha256(&cust.email)));
    assert_eq!(
        o.location,
        Some(GeoPoint {
            lat: 52.52,
            lon: 13.38
        })
    );
    let json = serde_json::to_string(&o).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    for field in ["first_name", "last_name", "email", "phone", "street"] {
        assert!(value.get(field).is_none(), "{field} in {json}");
    }
    for secret in [
        "Ann",
        "Lee",
        "Example.org",
        "+1-555-0100",
        "Secret Street",
        "52.516",
        "13.377",
    ] {
        assert!(!json.contains(secret), "{secret:?} leaked: {json}");
    }
    // The output is a valid record for the downstream strict parser.
    let back = flowline_model::parse::<EnrichedOrder>(json.as_bytes()).unwrap();
    assert_eq!(back, o);
}

/// Every order of arrival of 2 customer versions, 2 address versions and 3
/// sales, with the watermark advanced as far as the rules allow (to the
/// earliest event still to come) every `step` arrivals: the emitted records
/// are identical.
#[test]
fn output_does_not_depend_on_arrival_order_or_batching() {
    let events = || {
        vec![
            Ev::C(customer("c1", "a1", "bronze", 0.0)),
            Ev::C(customer("c1", "a2", "gold", 20.0)),
            Ev::A(address("a1", "Berlin", 0.0)),
            Ev::A(address("a2", "Bonn", 5.0)),
            Ev::S(sale("s1", "c1", "i1", None, 10.0)),
            Ev::S(sale("s2", "c1", "i2", None, 25.0)),
            // Its customer never comes: partial, the same way every time.
            Ev::S(sale("s3", "c9", "i1", None, 20.0)),
        ]
    };
    let run = |order: &[usize], step: usize, exclusive: bool| -> Vec<EnrichedOrder> {
        let evs = events();
        let mut c = core(exclusive);
        let mut out = Vec::new();
        for (n, &i) in order.iter().enumerate() {
            feed(&mut c, &evs[i]);
            if (n + 1) % step == 0 {
                // Events still to come are at or after the watermark.
                let rest = order[n + 1..].iter().map(|&j| evs[j].time()).min();
                if let Some(next) = rest {
                    out.extend(advance(&mut c, next));
                }
            }
        }
        out.extend(advance(&mut c, t(1000.0)));
        out
    };
    let expected = run(&[0, 1, 2, 3, 4, 5, 6], 1, true);
    let summary: Vec<_> = expected
        .iter()
        .map(|o| (o.order_id.as_str(), o.city.as_deref(), o.join_status))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("s1", Some("Berlin"), JoinStatus::Complete),
            ("s3", None, JoinStatus::Partial),
            ("s2", Some("Bonn"), JoinStatus::Complete),
        ]
    );
    let mut order: Vec<usize> = (0..7).collect();
    let mut runs = 0;
    loop {
        for step in [1, 2, 3] {
            for exclusive in [true, false] {
                assert_eq!(
                    run(&order, step, exclusive),
                    expected,
                    "{order:?} step {step}"
                );
                runs += 1;
            }
        }
        if !next_permutation(&mut order) {
            break;
        }
    }
    assert_eq!(runs, 5040 * 6);
}

fn next_permutation(v: &mut [usize]) -> bool {
    let Some(i) = (1..v.len()).rev().find(|&i| v[i - 1] < v[i]) else {
        return false;
    };
    let j = (i..v.len()).rev().find(|&j| v[j] > v[i - 1]).unwrap();
    v.swap(i - 1, j);
    v[i..].reverse();
    true
}

#[test]
fn pending_sales_survive_a_restart_and_leave_once_confirmed() {
    let stores = JoinStores::in_memory();
    let pending = Arc::new(InMemoryPendingStore::new());
    let stores = JoinStores {
        pending: pending.clone(),
        ..stores
    };
    let mut c = core_with(config(false), stores.clone());
    feed(&mut c, &Ev::C(customer("c1", "a1", "gold", 0.0)));
    feed(&mut c, &Ev::A(address("a1", "Berlin", 0.0)));
    block_on(c.add_sale(sale("s1", "c1", "i1", None, 10.0), src("shard-0", 1))).unwrap();
    block_on(c.add_sale(sale("s2", "c1", "i1", None, 11.0), src("shard-1", 2))).unwrap();
    block_on(c.flush()).unwrap();
    assert_eq!(pending.len(), 2);
    drop(c); // crash

    let mut c = core_with(config(false), stores);
    assert_eq!(block_on(c.restore_shard("sales", "shard-0")).unwrap(), 1);
    let first = only(advance(&mut c, t(30.0)));
    assert_eq!(first.order_id, "s1");
    assert_eq!(pending.len(), 2, "kept until confirmed");
    block_on(c.confirm_emitted()).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(block_on(c.restore_shard("sales", "shard-1")).unwrap(), 1);
    // Redelivered record: held once, emitted once; confirmed per write.
    block_on(c.add_sale(sale("s2", "c1", "i1", None, 11.0), src("shard-1", 2))).unwrap();
    assert_eq!(only(advance(&mut c, t(30.0))).order_id, "s2");
    let keys = c.take_emitted();
    assert_eq!(keys.len(), 1);
    assert_eq!(c.stats().unconfirmed, 1, "in flight until confirmed");
    assert_eq!(pending.len(), 1);
    block_on(c.confirm(&keys)).unwrap();
    assert_eq!(c.stats().unconfirmed, 0);
    assert!(pending.is_empty());
}

#[test]
fn releasing_a_shard_keeps_its_sales_for_the_next_owner() {
    let pending = Arc::new(InMemoryPendingStore::new());
    let stores = JoinStores {
        pending: pending.clone(),
        ..JoinStores::in_memory()
    };
    let mut c = core_with(config(false), stores);
    block_on(c.add_sale(sale("s1", "c1", "i1", None, 10.0), src("shard-0", 1))).unwrap();
    block_on(c.add_sale(sale("s2", "c1", "i1", None, 10.0), src("shard-1", 1))).unwrap();
    assert!(advance(&mut c, ms(t(10.0), 1)).is_empty());
    assert_eq!(c.stats().waiting, 2);
    block_on(c.release_shard("sales", "shard-0")).unwrap();
    assert_eq!(c.held_sales(), 1);
    assert_eq!(pending.len(), 2);
    let o = only(advance(&mut c, t(100.0)));
    assert_eq!(o.order_id, "s2");
}

#[test]
fn backpressure_and_invalid_input() {
    let cfg = JoinConfig {
        max_pending_sales: 1,
        ..config(true)
    };
    let mut c = core_with(cfg, JoinStores::in_memory());
    feed(&mut c, &Ev::S(sale("s1", "c1", "i1", None, 10.0)));
    let e = block_on(c.add_sale(sale("s2", "c1", "i1", None, 10.0), src("x", 1))).unwrap_err();
    assert!(matches!(e, JoinError::PendingFull { limit: 1, .. }) && e.is_retriable());
    let mut huge = sale("s3", "c1", "i1", None, 10.0);
    huge.quantity = u32::MAX;
    huge.unit_price = Money::from_cents(1_000_000_000_000_000).unwrap();
    advance(&mut c, t(100.0));
    let e = block_on(c.add_sale(huge, src("x", 1))).unwrap_err();
    assert!(matches!(e, JoinError::InvalidSale { .. }) && !e.is_retriable());
    let bad = JoinConfig {
        versions_per_entity: 0,
        ..JoinConfig::default()
    };
    let e = JoinCore::new(
        bad,
        JoinStores::in_memory(),
        ReferenceHandle::new(reference()),
    );
    assert!(matches!(e, Err(JoinError::InvalidConfig(_))));
}

#[test]
fn watermark_never_goes_back() {
    let mut c = core(true);
    advance(&mut c, t(50.0));
    advance(&mut c, t(10.0));
    assert_eq!(c.stats().watermark, Some(t(50.0)));
}

#[test]
fn store_failures_lose_nothing() {
    for failures in 0..8 {
        let flaky = Arc::new(Flaky {
            inner: InMemoryVersionStore::new(),
            pending: InMemoryPendingStore::new(),
            failures: AtomicUsize::new(0),
        });
        let stores = JoinStores {
            versions: flaky.clone(),
            pending: flaky.clone(),
        };
        let mut c = core_with(config(false), stores);
        feed(&mut c, &Ev::C(customer("c1", "a1", "gold", 0.0)));
        feed(&mut c, &Ev::A(address("a1", "Berlin", 0.0)));
        feed(&mut c, &Ev::S(sale("s1", "c1", "i1", None, 10.0)));
        feed(&mut c, &Ev::S(sale("s2", "nobody", "i1", None, 10.0)));
        flaky.failures.store(failures, Ordering::SeqCst);
        let mut out = Vec::new();
        let mut errors = 0;
        while out.len() < 2 {
            match block_on(c.advance(t(100.0))) {
                Ok(o) => out.extend(o),
                Err(e) => {
                    assert!(e.is_retriable(), "{e}");
                    errors += 1;
                    assert!(errors <= failures, "more errors than injected failures");
                }
            }
        }
        assert_eq!(out[0].order_id, "s1");
        assert_eq!(out[0].join_status, JoinStatus::Complete);
        assert_eq!(out[1].missing, vec![Missing::Customer]);
        while block_on(c.confirm_emitted()).is_err() {}
        assert!(flaky.pending.is_empty());
    }
}

#[test]
fn redelivered_records_are_written_once_per_batch_last_one_wins() {
    let store = Arc::new(UniqueBatches::default());
    let stores = JoinStores {
        versions: store.clone(),
        pending: store.clone(),
    };
    let mut c = core_with(config(false), stores);
    feed(&mut c, &Ev::C(customer("c1", "a1", "bronze", 0.0)));
    feed(&mut c, &Ev::C(customer("c1", "a1", "gold", 0.0))); // same version key
    feed(&mut c, &Ev::A(address("a1", "Berlin", 0.0)));
    feed(&mut c, &Ev::A(address("a1", "Berlin", 0.0)));
    let mut first = sale("s1", "c1", "i1", None, 10.0);
    first.quantity = 1;
    feed(&mut c, &Ev::S(first));
    feed(&mut c, &Ev::S(sale("s1", "c1", "i1", None, 10.0)));
    block_on(c.flush()).unwrap();
    assert_eq!(store.versions.len(), (1, 1));
    assert_eq!(store.pending.len(), 1);
    let o = only(advance(&mut c, ms(t(10.0), 1)));
    assert_eq!(o.customer_segment.as_deref(), Some("gold"));
    assert_eq!(o.quantity, 2, "the later copy of the sale");
    block_on(c.confirm_emitted()).unwrap();
    assert!(store.pending.is_empty());
}
