//! Join core throughput on one core: in-memory state (pending store
//! included), warm cache (exclusive writer, 20 000 customers with 2 versions
//! and 40 000 addresses), sales in event-time order, 10 000 sales per
//! watermark advance. Timed: add_sale, advance, confirm_emitted; not timed:
//! generating the sales and dropping the orders. Target: >= 500 000 sales/s.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowline_join::{JoinConfig, JoinCore, JoinStores, ReferenceData, ReferenceHandle};
use flowline_model::{
    Address, Customer, DiscountPct, EnrichedOrder, Item, Money, Promo, RecordSource, Sale,
    Timestamp,
};
use futures::executor::block_on;

const CUSTOMERS: usize = 20_000;
const ITEMS: usize = 1_000;
const BATCH: usize = 10_000;
const START: i64 = 1_700_000_000_000;

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(START + ms).unwrap()
}

fn reference() -> ReferenceData {
    let items = (0..ITEMS).map(|i| Item {
        item_id: format!("item-{i}"),
        name: format!("Item {i}"),
        category: format!("cat-{}", i % 20),
        brand: format!("brand-{}", i % 50),
        list_price: Money::from_cents(1000 + i as i64).unwrap(),
    });
    let promos = (0..ITEMS / 10).map(|i| Promo {
        promo_id: format!("promo-{i}"),
        item_id: format!("item-{}", i * 10),
        discount_pct: DiscountPct::from_percent(10).unwrap(),
        starts_at: ts(0),
        ends_at: ts(i64::from(u32::MAX)),
    });
    ReferenceData::new(items, promos)
}

fn populated_core() -> JoinCore {
    let config = JoinConfig {
        exclusive_writer: true,
        cache_entities: 2 * 2 * CUSTOMERS,
        ..JoinConfig::default()
    };
    let mut core = JoinCore::new(
        config,
        JoinStores::in_memory(),
        ReferenceHandle::new(reference()),
    )
    .unwrap();
    block_on(async {
        for i in 0..CUSTOMERS {
            for v in 0..2 {
                core.apply_customer(Customer {
                    customer_id: format!("cust-{i}"),
                    address_id: format!("addr-{i}-{v}"),
                    first_name: "First".into(),
                    last_name: "Last".into(),
                    email: format!("user{i}@example.com"),
                    phone: "+1-555-0100".into(),
                    segment: ["gold", "silver", "bronze"][i % 3].into(),
                    updated_at: ts(v * 1000),
                })
                .await
                .unwrap();
                core.apply_address(Address {
                    address_id: format!("addr-{i}-{v}"),
                    street: "1 Main St".into(),
                    city: format!("city-{}", i % 100),
                    state: format!("S{}", i % 50),
                    postcode: format!("{:05}", i % 99_999),
                    country: "US".into(),
                    lat: 40.0 + (i % 1000) as f64 / 1000.0,
                    lon: -70.0 - (i % 1000) as f64 / 1000.0,
                    updated_at: ts(0),
                })
                .await
                .unwrap();
            }
        }
        core.flush().await.unwrap();
    });
    core
}

fn sales(from: u64, n: usize) -> Vec<(Sale, RecordSource)> {
    (0..n as u64)
        .map(|k| {
            let seq = from + k;
            let item = (seq.wrapping_mul(7919) % ITEMS as u64) as usize;
            let sale = Sale {
                sale_id: format!("sale-{seq}"),
                customer_id: format!("cust-{}", seq.wrapping_mul(104_729) % CUSTOMERS as u64),
                item_id: format!("item-{item}"),
                promo_id: item
                    .is_multiple_of(10)
                    .then(|| format!("promo-{}", item / 10)),
                quantity: 1 + (seq % 5) as u32,
                unit_price: Money::from_cents(199 + (seq % 10_000) as i64).unwrap(),
                // 1 000 sales per second of event time, after all versions.
                event_time: ts(2_000 + seq as i64),
            };
            let source = RecordSource {
                stream: "sales".into(),
                shard_id: format!("shardId-{:012}", seq % 4),
                sequence_number: seq.to_string(),
            };
            (sale, source)
        })
        .collect()
}

/// Adds `batch`, advances past it, confirms: one full cycle of the service.
/// Returns the orders, so dropping them (the consumer's work) is not timed.
fn cycle(core: &mut JoinCore, batch: Vec<(Sale, RecordSource)>) -> Vec<EnrichedOrder> {
    // Just past the last sale: every sale of the batch is due.
    let last = batch.last().map(|(s, _)| s.event_time).unwrap();
    let watermark = last.checked_add_millis(1).unwrap();
    block_on(async {
        for (sale, source) in batch {
            core.add_sale(sale, source).await.unwrap();
        }
        let out = core.advance(watermark).await.unwrap();
        core.confirm_emitted().await.unwrap();
        out
    })
}

/// Time since an arbitrary fixed instant.
fn wall() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// CPU time consumed by the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn bench(c: &mut Criterion) {
    let mut core = populated_core();
    let mut next = 0u64;
    // Warm the cache: every customer and address looked up once.
    for _ in 0..(2 * CUSTOMERS / BATCH) {
        assert_eq!(cycle(&mut core, sales(next, BATCH)).len(), BATCH);
        next += BATCH as u64;
    }
    let mut group = c.benchmark_group("join_core_10k_sales_per_advance");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(10));
    // Wall time, and this thread's CPU time: the "one core" figure, which
    // stays meaningful when other processes share the machine.
    for (name, clock) in [
        ("wall_time", wall as fn() -> Duration),
        ("thread_cpu_time", thread_cpu),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let batch = sales(next, BATCH);
                    next += BATCH as u64;
                    let started = clock();
                    let emitted = cycle(&mut core, batch);
                    total += clock() - started;
                    assert_eq!(emitted.len(), BATCH);
                }
                total
            })
        });
    }
    group.finish();
    let s = core.stats();
    println!(
        "cache hit ratio {:.4}, store reads {}, emitted {}",
        s.cache_hit_ratio(),
        s.store_reads,
        s.emitted_complete + s.emitted_partial
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
