//! Issue #5's end-to-end benchmark: sales per second through the enrichment-joiner's own
//! processing on the local stack, and what bounds it.
//!
//! The producer's data set runs through the service's processors and joiner task
//! (`joiner_path.rs`) four times, swapping the two external parts one at a time:
//!
//! 1. DynamoDB state (moto) and the Kinesis output (kinesis-local): the service as deployed;
//! 2. DynamoDB state, in-process output: without the Kinesis emulator;
//! 3. in-memory state, Kinesis output: without DynamoDB for versions and pending sales;
//! 4. in-memory state, in-process output: the joiner's own CPU and emission loop.
//!
//! The part whose removal speeds the run up most is the bound. The runs with DynamoDB
//! state use a smaller data set (`JOINER_BENCH_DYNAMODB_SALES`): rates compare, counts do
//! not. Every run stops when every
//! sale is written or after `JOINER_BENCH_SECONDS`; orders appear once per emission round
//! (`emit.interval`, 500 ms), so a run that finishes in a few seconds understates its rate by
//! up to a round. The join core alone (no service) is `cargo bench -p flowline-join --bench join`.
//!
//! `cargo bench -p enrichment-joiner --bench joiner_throughput`; the stack is the one the
//! environment names (`FLOWLINE_TEST_REUSE_STACK=1` with `AWS_ENDPOINT_URL*`), else an
//! isolated one. Knobs: `JOINER_BENCH_SALES` (default 50000), `JOINER_BENCH_CUSTOMERS`
//! (default 5000), `JOINER_BENCH_DYNAMODB_SALES` (the runs with DynamoDB state, default
//! 2000, a tenth of the customers), `JOINER_BENCH_BATCH` (records per `process_records` call, default 1000),
//! `JOINER_BENCH_SECONDS` (time limit per run, default 60); `RUST_LOG` shows the joiner's logs.

mod input;
mod joiner_path;

use std::time::{Duration, Instant};

use enrichment_joiner::config::Streams;
use flowline_testkit::{Stack, create_stream, unique_name};
use joiner_path::{Figures, Resources, Variant};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Shards of the output stream (as `flowctl bootstrap` makes by default).
const OUTPUT_SHARDS: i32 = 2;
/// Shards of the in-process output: enough that the per-shard limits the producer
/// enforces (1 MiB/s, 1,000 records/s, as Kinesis) do not bind, so the CPU shows.
const IN_PROCESS_SHARDS: u128 = 64;

#[tokio::main]
async fn main() {
    // The joiner's own logs (retries, warnings) when asked for, as the service prints them.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let sales: u64 = env_or("JOINER_BENCH_SALES", 50_000);
    let customers: u32 = env_or("JOINER_BENCH_CUSTOMERS", 5_000);
    let dynamodb_sales: u64 = env_or("JOINER_BENCH_DYNAMODB_SALES", 2_000);
    let batch: usize = env_or("JOINER_BENCH_BATCH", 1_000);
    let limit = Duration::from_secs(env_or("JOINER_BENCH_SECONDS", 60));

    let stack = Stack::start().await;
    let aws = stack.aws_clients().await;
    let prefix = unique_name("bench-joiner");
    let streams = Streams {
        customers: format!("{prefix}-customers"),
        addresses: format!("{prefix}-addresses"),
        sales: format!("{prefix}-sales"),
    };
    let res = Resources {
        dynamodb: aws.dynamodb.clone(),
        kinesis: aws.kinesis.clone(),
        output: format!("{prefix}-orders-enriched"),
        in_process_shards: IN_PROCESS_SHARDS,
        dead_letters: format!("{prefix}-dead-letters"),
        streams,
    };
    let mut created = res.streams.all();
    created.extend([res.output.clone(), res.dead_letters.clone()]);
    for name in &created {
        let shards = if *name == res.output {
            OUTPUT_SHARDS
        } else {
            1
        };
        create_stream(&aws.kinesis, name, shards)
            .await
            .expect("bench stream");
    }

    let made = Instant::now();
    let input = input::generate(sales, customers);
    // moto answers a state-table call in tens of milliseconds: a smaller data set (a tenth
    // of the customers) lets the DynamoDB runs finish.
    let small = input::generate(dynamodb_sales, (customers / 10).max(100));
    let records: usize = input.streams.iter().map(|(_, r)| r.len()).sum();
    println!(
        "joiner_throughput: {sales} sales, {customers} customers ({records} records, made in {:.1}s; \
         {dynamodb_sales} sales with DynamoDB state), \
         {batch} records per batch, at most {}s per run, kinesis {}, dynamodb {}",
        made.elapsed().as_secs_f64(),
        limit.as_secs(),
        stack.kinesis_url(),
        stack.moto_url(),
    );

    let mut figures = Vec::new();
    for (i, (dynamodb_state, kinesis_output)) in
        [(true, true), (true, false), (false, true), (false, false)]
            .into_iter()
            .enumerate()
    {
        let variant = Variant {
            dynamodb_state,
            kinesis_output,
        };
        let table = format!("{prefix}-state-{i}");
        let data = if dynamodb_state { &small } else { &input };
        let f = joiner_path::run(variant, &res, &table, data, batch, limit).await;
        print(i + 1, &variant.name(), &f);
        figures.push(f);
    }
    for name in &created {
        let _ = aws.kinesis.delete_stream().stream_name(name).send().await;
    }
    println!("{}", verdict(&figures));
}

fn print(n: usize, name: &str, f: &Figures) {
    println!(
        "  {n}. {name:<36} {:>7.0} sales/s  ({} orders in {:.1}s{}; {} sales read; \
         DynamoDB {} calls, {:.1}s waiting; {} rounds taking {:.1}s; {} checkpoints)",
        f.rate(),
        f.orders,
        f.seconds,
        if f.complete { "" } else { ", time limit" },
        f.sales_read,
        f.dynamodb_calls,
        f.dynamodb_seconds,
        f.rounds,
        f.round_seconds,
        f.checkpoints,
    );
}

/// How many times faster `a` is than `b` ("more than 100x" when `b` wrote nothing).
fn speedup(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else if a > 0.0 {
        f64::INFINITY
    } else {
        1.0
    }
}

fn times(x: f64) -> String {
    if x > 100.0 {
        "more than 100x".into()
    } else {
        format!("{x:.1}x")
    }
}

/// Names the part whose removal speeds the service up most (by at least a quarter);
/// otherwise the joiner's own loop is the bound.
fn verdict(f: &[Figures]) -> String {
    let service = f[0].rate();
    let without_kinesis = speedup(f[1].rate(), service);
    let without_dynamodb = speedup(f[2].rate(), service);
    let own = f[3].rate();
    let dynamodb_share = f[0].dynamodb_seconds / f[0].seconds * 100.0;
    let per_call_ms = f[0].dynamodb_seconds / f[0].dynamodb_calls.max(1) as f64 * 1000.0;
    let bound = if without_dynamodb.max(without_kinesis) < 1.25 {
        "the joiner's own processing (removing DynamoDB or Kinesis changes < 25%)".to_string()
    } else if without_dynamodb >= without_kinesis {
        format!(
            "DynamoDB state on moto ({dynamodb_share:.0}% of the service run waiting on it, \
             {per_call_ms:.0} ms per call; in-memory state: {} faster, in-process output: {})",
            times(without_dynamodb),
            times(without_kinesis),
        )
    } else {
        format!(
            "the Kinesis output on kinesis-local (in-process output: {} faster; in-memory state: {})",
            times(without_kinesis),
            times(without_dynamodb),
        )
    };
    format!(
        "bounded by: {bound}; service path {service:.0} sales/s, the joiner's own ceiling {own:.0} sales/s"
    )
}
