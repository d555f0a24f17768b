//! Parquet encoding of enriched orders on one core: orders/s and MB/s (of the JSON the
//! orders arrive as). Target: at least 300,000 orders/s.
//!
//! `cargo bench -p flowline-lake --bench parquet`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowline_lake::encode::{encode_metrics, encode_orders};
use flowline_model::{
    Dimension, DiscountPct, EnrichedOrder, GeoPoint, JoinStatus, Missing, Money, Timestamp,
    WindowMetric, metric_id, order_amounts,
};

/// Realistic orders: low-cardinality dimensions, unique ids, a few partial joins.
fn orders(n: usize) -> Vec<EnrichedOrder> {
    let start = Timestamp::from_millis(1_700_000_000_000).unwrap();
    (0..n)
        .map(|i| {
            let quantity = (i % 5) as u32 + 1;
            let unit_price = Money::from_cents(199 + (i as i64 * 37) % 20_000).unwrap();
            let discount_pct = DiscountPct::from_percent(if i % 4 == 0 { 10 } else { 0 }).unwrap();
            let a = order_amounts(quantity, unit_price, discount_pct).unwrap();
            let partial = i % 50 == 0;
            EnrichedOrder {
                order_id: format!("sale-{i:010}"),
                event_time: start.saturating_add_millis(i as i64 * 7),
                customer_id: format!("cust-{:06}", i % 50_000),
                customer_segment: Some(["retail", "business", "vip"][i % 3].to_string()),
                email_sha256: Some(format!(
                    "{:064x}",
                    (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                )),
                address_id: Some(format!("addr-{:06}", i % 60_000)),
                city: Some(format!("City {}", i % 200)),
                state: Some(format!("S{}", i % 50)),
                postcode: Some(format!("{:05}", i % 10_000)),
                country: Some("US".to_string()),
                location: Some(GeoPoint::rounded(
                    40.0 + (i % 100) as f64 / 10.0,
                    -70.0 - (i % 300) as f64 / 10.0,
                )),
                item_id: format!("item-{:05}", i % 5_000),
                item_name: (!partial).then(|| format!("Item {}", i % 5_000)),
                category: (!partial)
                    .then(|| ["books", "games", "garden", "tools", "toys"][i % 5].to_string()),
                brand: (!partial).then(|| format!("Brand {}", i % 80)),
                promo_id: (i % 4 == 0).then(|| format!("promo-{}", i % 20)),
                discount_pct,
                quantity,
                unit_price,
                gross_amount: a.gross,
                discount_amount: a.discount,
                net_amount: a.net,
                join_status: if partial {
                    JoinStatus::Partial
                } else {
                    JoinStatus::Complete
                },
                missing: if partial { vec![Missing::Item] } else { vec![] },
                enriched_at: start.saturating_add_millis(i as i64 * 7 + 2_500),
            }
        })
        .collect()
}

fn metrics(n: usize) -> Vec<WindowMetric> {
    let start = Timestamp::from_millis(1_700_000_000_000).unwrap();
    (0..n)
        .map(|i| {
            let ws = start.saturating_add_millis((i / 60) as i64 * 60_000);
            let we = ws.saturating_add_millis(60_000);
            let key = format!("S{}", i % 60);
            WindowMetric {
                id: metric_id(ws, we, Dimension::State, &key),
                window_start: ws,
                window_end: we,
                dimension: Dimension::State,
                key,
                orders: 10,
                units: 25,
                gross_amount: Money::from_cents(12_345).unwrap(),
                net_amount: Money::from_cents(11_000).unwrap(),
                avg_order_value: Money::from_cents(1_100).unwrap(),
                distinct_customers: 9,
                revision: 1,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    const N: usize = 100_000;
    let orders = orders(N);
    let json_bytes: usize = orders
        .iter()
        .map(|o| serde_json::to_vec(o).unwrap().len())
        .sum();
    let parquet = encode_orders(&orders).unwrap();
    println!(
        "{N} orders: {:.1} MB as JSON, {:.1} MB as Parquet ({:.1}x smaller)",
        json_bytes as f64 / 1e6,
        parquet.len() as f64 / 1e6,
        json_bytes as f64 / parquet.len() as f64
    );
    let mut g = c.benchmark_group("parquet");
    g.sample_size(20);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("orders/elements", |b| {
        b.iter(|| encode_orders(black_box(&orders)).unwrap())
    });
    g.throughput(Throughput::Bytes(json_bytes as u64));
    g.bench_function("orders/json_bytes", |b| {
        b.iter(|| encode_orders(black_box(&orders)).unwrap())
    });
    let metrics = metrics(N);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("metrics/elements", |b| {
        b.iter(|| encode_metrics(black_box(&metrics)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
