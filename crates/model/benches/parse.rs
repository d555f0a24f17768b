//! Strict parse and canonical serialisation of a sale, per core.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowline_model::{EnrichedOrder, Sale, parse, parse_sale};

const SALE: &[u8] = br#"{"sale_id":"S0000000001","customer_id":"C0000042","item_id":"I000123","promo_id":"P00007","quantity":2,"unit_price":19.99,"event_time":"2024-05-01T12:00:00.123Z"}"#;

const ORDER: &[u8] = br#"{"order_id":"S1","event_time":"2024-05-01T12:00:00.123Z","customer_id":"C1","customer_segment":"consumer","email_sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","address_id":"A1","city":"Springfield","state":"IL","postcode":"62701","country":"US","location":{"lat":39.78,"lon":-89.65},"item_id":"I1","item_name":"Lamp","category":"home","brand":"Acme","promo_id":"P1","discount_pct":15,"quantity":2,"unit_price":19.99,"gross_amount":39.98,"discount_amount":6.00,"net_amount":33.98,"join_status":"complete","missing":[],"enriched_at":"2024-05-01T12:00:05.000Z"}"#;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("model");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_sale", |b| {
        b.iter(|| parse_sale(std::hint::black_box(SALE)).unwrap())
    });
    // Reference point: serde's derived (non-strict) parse of the same bytes.
    g.bench_function("serde_derive_sale", |b| {
        b.iter(|| serde_json::from_slice::<Sale>(std::hint::black_box(SALE)).unwrap())
    });
    let sale: Sale = parse_sale(SALE).unwrap();
    let mut buf = Vec::with_capacity(256);
    g.bench_function("serialise_sale", |b| {
        b.iter(|| {
            buf.clear();
            serde_json::to_writer(&mut buf, std::hint::black_box(&sale)).unwrap();
            buf.len()
        })
    });
    g.bench_function("parse_enriched_order", |b| {
        b.iter(|| parse::<EnrichedOrder>(std::hint::black_box(ORDER)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
