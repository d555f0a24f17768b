//! Generation + JSON serialisation throughput on one core.
//! Target: at least 1,000,000 events/s.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowline_datagen::{GenConfig, Generator};

fn generate(c: &mut Criterion) {
    const SALES: u64 = 200_000;
    let cfg = GenConfig {
        seed: 1,
        customers: 20_000,
        sales: SALES,
        rate: 0.0,
        ..GenConfig::default()
    };
    // Events per run (sales plus customer and address versions).
    let events = Generator::new(cfg.clone()).unwrap().count() as u64;
    let mut group = c.benchmark_group("datagen");
    group.throughput(Throughput::Elements(events));
    group.sample_size(10);
    group.bench_function("generate_and_serialise", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            for r in Generator::new(cfg.clone()).unwrap() {
                bytes += r.data.len();
            }
            std::hint::black_box(bytes)
        })
    });
    group.finish();
}

criterion_group!(benches, generate);
criterion_main!(benches);
