//! Enriched orders per second through the window core on one core
//! (target: at least 1,000,000/s), and the cost of checkpointing a window.
//! Both ways of using the core are measured, over the same accumulator
//! (`Partial`):
//!
//! - `window/process_enriched_orders`: the single-process `WindowOperator`
//!   (what a rebuild runs);
//! - `service/shard_partials`: exactly the aggregator service's per-record
//!   path: each order counted into its shard's `Partials` against the
//!   global watermark, changes and releases handled per batch;
//!   `service/merge_window`: the emitter's merge of every shard's partial of
//!   one full window; `service/encode_partial`: one shard's partial to bytes.
//!
//! Each throughput is measured twice: wall time (criterion's default) and,
//! as `*_cpu`, the CPU time of the benchmark thread. On a shared, loaded
//! machine wall time mostly measures waiting for a core; CPU time is the
//! "orders per second on one core" the target is about.
//!
//! Input: 200,000 orders at 2,000 orders per event-second (so windows of
//! 120,000 orders), 20,000 customers, 20 categories, 50 states, 1% without
//! category/state, 1% out of order by up to 5 s, the watermark advanced
//! every 1,000 orders as a service would per batch; 4 shards, by order id.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flowline_model::{DiscountPct, EnrichedOrder, JoinStatus, Money, Timestamp, order_amounts};
use flowline_window::{OrderRef, Partials, WindowConfig, WindowOperator, WindowSpec, merge};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ORDERS: usize = 200_000;
const PER_EVENT_SECOND: usize = 2_000;
const BATCH: usize = 1_000;
const SHARDS: usize = 4;
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

/// The shard an order lands in: `orders-enriched` is partitioned by
/// `order_id`, so redeliveries meet in one shard.
fn shard_of(o: &EnrichedOrder) -> usize {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    o.order_id.hash(&mut h);
    (h.finish() % SHARDS as u64) as usize
}

/// What the service's shard processors do per batch: count each order into
/// its shard's partials against the global watermark, then (after the state
/// write, not measured here) mark the changes saved and release expired windows.
fn run_shards(orders: &[EnrichedOrder], shards: &[usize]) -> Vec<Partials> {
    let spec = WindowSpec::new(&WindowConfig::default()).unwrap();
    let mut partials: Vec<Partials> = (0..SHARDS).map(|_| Partials::new(spec.clone())).collect();
    let mut global = None;
    for (batch, shard_batch) in orders.chunks(BATCH).zip(shards.chunks(BATCH)) {
        for (o, &s) in batch.iter().zip(shard_batch) {
            let _ = black_box(partials[s].add(&OrderRef::from(o), global));
        }
        for p in &mut partials {
            black_box(p.changed().count());
            let expired = p.expired(global);
            p.saved(&expired);
        }
        global = Some(
            batch
                .last()
                .unwrap()
                .event_time
                .saturating_add_millis(-2_000),
        );
    }
    partials
}

/// CPU time used by the calling thread so far.
fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill in.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// `f` run `iters` times, timed by the thread's CPU time.
fn cpu_time<T>(iters: u64, mut f: impl FnMut() -> T) -> Duration {
    let start = thread_cpu();
    for _ in 0..iters {
        black_box(f());
    }
    thread_cpu() - start
}

fn throughput(c: &mut Criterion) {
    let input = orders();
    let mut g = c.benchmark_group("window");
    g.throughput(Throughput::Elements(ORDERS as u64));
    g.sample_size(20);
    g.bench_function("process_enriched_orders", |b| {
        b.iter(|| run(black_box(&input)))
    });
    g.bench_function("process_enriched_orders_cpu", |b| {
        b.iter_custom(|iters| cpu_time(iters, || run(black_box(&input))))
    });
    g.finish();

    let shards: Vec<usize> = input.iter().map(shard_of).collect();
    let mut g = c.benchmark_group("service");
    g.throughput(Throughput::Elements(ORDERS as u64));
    g.sample_size(20);
    g.bench_function("shard_partials", |b| {
        b.iter(|| run_shards(black_box(&input), &shards))
    });
    g.bench_function("shard_partials_cpu", |b| {
        b.iter_custom(|iters| cpu_time(iters, || run_shards(black_box(&input), &shards)))
    });
    g.finish();
}

fn service_state(c: &mut Criterion) {
    // One full minute of event time: the first full window, in 4 shards.
    let input = orders();
    let first: Vec<EnrichedOrder> = input
        .into_iter()
        .filter(|o| o.event_time.millis() < T0 + 60_000)
        .collect();
    let shards: Vec<usize> = first.iter().map(shard_of).collect();
    let partials = run_shards(&first, &shards);
    let window: Vec<_> = partials.iter().filter_map(|p| p.get(T0)).collect();
    let orders: usize = window.iter().map(|p| p.orders()).sum();
    let encoded = window[0].encode();
    eprintln!(
        "one window of {orders} orders in {SHARDS} shards: one shard's partial is {} bytes encoded",
        encoded.len()
    );
    let mut g = c.benchmark_group("service");
    g.sample_size(10);
    g.throughput(Throughput::Elements(orders as u64));
    g.bench_function("merge_window", |b| {
        b.iter(|| merge(window.iter().copied(), 1).unwrap().len())
    });
    g.throughput(Throughput::Elements(window[0].orders() as u64));
    g.bench_function("encode_partial", |b| b.iter(|| window[0].encode().len()));
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

criterion_group!(benches, throughput, service_state, checkpoint);
criterion_main!(benches);
