//! Enriched orders per second through the window core on one core
//! (target: at least 1,000,000/s), and the cost of checkpointing a window.
//!
//! Input: 200,000 orders at 2,000 orders per event-second (so windows of
//! 120,000 orders), 20,000 customers, 20 categories, 50 states, 1% without
//! category/state, 1% out of order by up to 5 s, the watermark advanced
//! every 1,000 orders as a service would per batch.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flowline_model::{DiscountPct, EnrichedOrder, JoinStatus, Money, Timestamp, order_amounts};
use flowline_window::{WindowConfig, WindowOperator};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ORDERS: usize = 200_000;
const PER_EVENT_SECOND: usize = 2_000;
const BATCH: usize = 1_000;
/// 2024-01-01T00:00:00Z
const T0: i64 = 1_704_067_200_000;

fn orders() -> Vec<EnrichedOrder> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let categories: Vec<String> = (0..20).map(|i| format!("category-{i:02}")).collect();
    let states: Vec<String> = (0..50).map(|i| format!("S{i:02}")).collect();
    (0..ORDERS)
        .map(|i| {
            let mut at = T0 + (i * 1_000 / PER_EVENT_SECOND) as i64;
            if rng.random_bool(0.01) {
                at -= rng.random_range(0..5_000);
            }
            let quantity = rng.random_range(1..5);
            let unit_price = Money::from_cents(rng.random_range(100..20_000)).unwrap();
            let discount = DiscountPct::from_percent(rng.random_range(0..3) * 10).unwrap();
            let amounts = order_amounts(quantity, unit_price, discount).unwrap();
            let known = !rng.random_bool(0.01);
            EnrichedOrder {
                order_id: format!("sale-{i:010}"),
                event_time: Timestamp::from_millis(at).unwrap(),
                customer_id: format!("cust-{:06}", rng.random_range(0..20_000)),
                customer_segment: None,
                email_sha256: None,
                address_id: None,
                city: None,
                state: known.then(|| states[rng.random_range(0..states.len())].clone()),
                postcode: None,
                country: None,
                location: None,
                item_id: "item".into(),
                item_name: None,
                category: known.then(|| categories[rng.random_range(0..categories.len())].clone()),
                brand: None,
                promo_id: None,
                discount_pct: discount,
                quantity,
                unit_price,
                gross_amount: amounts.gross,
                discount_amount: amounts.discount,
                net_amount: amounts.net,
                join_status: JoinStatus::Complete,
                missing: vec![],
                enriched_at: Timestamp::from_millis(at).unwrap(),
            }
        })
        .collect()
}

/// What a service does per batch: process, then apply the watermark.
fn run(orders: &[EnrichedOrder]) -> usize {
    let mut w = WindowOperator::new(WindowConfig::default()).unwrap();
    let mut out = Vec::with_capacity(1_024);
    let mut emitted = 0;
    for batch in orders.chunks(BATCH) {
        for o in batch {
            let _ = black_box(w.process(o, &mut out));
        }
        let last = batch.last().unwrap().event_time;
        w.advance_watermark(last.saturating_add_millis(-2_000), &mut out);
        emitted += out.len();
        out.clear();
    }
    w.advance_watermark(Timestamp::MAX, &mut out);
    emitted + out.len()
}

fn throughput(c: &mut Criterion) {
    let input = orders();
    let mut g = c.benchmark_group("window");
    g.throughput(Throughput::Elements(ORDERS as u64));
    g.sample_size(20);
    g.bench_function("process_enriched_orders", |b| {
        b.iter(|| run(black_box(&input)))
    });
    g.finish();
}

fn checkpoint(c: &mut Criterion) {
    // One full minute of event time: the first full window.
    let input = orders();
    let mut w = WindowOperator::new(WindowConfig::default()).unwrap();
    for o in input.iter().filter(|o| o.event_time.millis() < T0 + 60_000) {
        let _ = w.process(o, &mut Vec::new());
    }
    let (_, snaps) = w.full_snapshot();
    let big = snaps.iter().max_by_key(|s| s.orders()).unwrap();
    let encoded = big.encode();
    eprintln!(
        "one window of {} orders: {} bytes encoded ({} parts of 350 KB), {} bytes in memory",
        big.orders(),
        encoded.len(),
        big.encode_parts(350_000).len(),
        w.state_bytes()
    );
    let total: usize = snaps.iter().map(|s| s.orders()).sum();
    let mut g = c.benchmark_group("checkpoint");
    g.sample_size(10);
    g.throughput(Throughput::Elements(total as u64));
    g.bench_function("snapshot_and_encode_window", |b| {
        b.iter_batched(
            || w.clone(),
            |mut w| {
                let cp = w.checkpoint();
                cp.changed.iter().map(|s| s.encode().len()).sum::<usize>()
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, throughput, checkpoint);
criterion_main!(benches);
