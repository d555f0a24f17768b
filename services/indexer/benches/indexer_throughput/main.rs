//! Issue #7's benchmark: documents per second into the local OpenSearch through the
//! indexer's own record processing, beside the same server's ceiling measured by a minimal
//! bulk loop with the same batch size and concurrency over the same documents. Target: the
//! indexer reaches at least 90% of the ceiling.
//!
//! The input is real enriched orders (generator + join core), serialised as on
//! `orders-enriched`. The indexer path (`indexer_path.rs`) runs the service's processors
//! from memory; only the Kinesis read and the lease table are left out (see there). Each
//! round indexes into fresh indices (the indexer's templates, renamed) and deletes them.
//! A second figure (`through_kinesis.rs`) runs the same orders through a Kinesis stream
//! and the service's consumer, leases and checkpoints included.
//!
//! `cargo bench -p indexer --bench indexer_throughput`; the stack is the one the
//! environment names (`FLOWLINE_TEST_REUSE_STACK=1` with `OPENSEARCH_URL`,
//! `AWS_ENDPOINT_URL*`), else an isolated one. Knobs: `INDEXER_BENCH_DOCS` (default
//! 10000; osmem indexes 500 to 1,000 docs/s), `INDEXER_BENCH_SHARDS` (shards read at
//! once, default 2), `INDEXER_BENCH_BATCH`
//! (records per `process_records` call, default 1000), `INDEXER_BENCH_ROUNDS` (default 2;
//! the best round counts), `INDEXER_BENCH_KINESIS_SECONDS` (time limit of the figure
//! through Kinesis, default 120; 0 skips it).

mod indexer_path;
mod minimal_loop;
mod orders;
mod through_kinesis;

use std::time::{Duration, Instant};

use flowline_opensearch::bulk::IndexNames;
use flowline_opensearch::opensearch::indices::{
    IndicesDeleteIndexTemplateParts, IndicesDeleteParts, IndicesRefreshParts,
};
use flowline_opensearch::opensearch::{CountParts, OpenSearch};
use flowline_opensearch::{OpenSearchSettings, build_client};
use flowline_testkit::{Stack, create_stream, unique_name};
use indexer::config::Config;
use indexer::templates;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let n: u64 = env_or("INDEXER_BENCH_DOCS", 10_000);
    let shards: usize = env_or("INDEXER_BENCH_SHARDS", 2);
    let batch: usize = env_or("INDEXER_BENCH_BATCH", 1_000);
    let rounds: usize = env_or("INDEXER_BENCH_ROUNDS", 2);
    let kinesis_limit: u64 = env_or("INDEXER_BENCH_KINESIS_SECONDS", 120);

    let stack = Stack::start().await;
    let url = stack.opensearch_url();
    assert!(
        url.starts_with("http://127.0.0.1") || url.starts_with("http://localhost"),
        "the benchmark only loads a loopback OpenSearch, not {url}"
    );
    let client = build_client(&OpenSearchSettings {
        url: url.clone(),
        ..OpenSearchSettings::default()
    })
    .expect("client");
    let aws = stack.aws_clients().await;
    let config = Config::default();
    let prefix = unique_name("bench-indexer");
    let dead_letters = format!("{prefix}-dead-letters");
    create_stream(&aws.kinesis, &dead_letters, 1)
        .await
        .expect("dead-letter stream");

    let made = Instant::now();
    let orders = orders::enriched_orders(n);
    println!(
        "indexer_throughput: {} enriched orders (made in {:.1}s), {shards} shards, {batch} records per batch, \
         bulk {} actions x {} in flight, {url}",
        orders.len(),
        made.elapsed().as_secs_f64(),
        config.bulk.max_actions,
        config.bulk.max_in_flight,
    );

    let (mut best_loop, mut best_indexer) = (0f64, 0f64);
    for round in 0..rounds {
        let names = fresh_indices(&client, &url, &format!("{prefix}-loop{round}")).await;
        let bodies = minimal_loop::bodies(&orders, &names, &config.bulk);
        let rate = minimal_loop::run(&client, bodies, orders.len(), &config.bulk).await;
        check_and_delete(&client, &names, orders.len()).await;
        best_loop = best_loop.max(rate);
        println!("  round {round}: minimal bulk loop {rate:>9.0} docs/s");

        let names = fresh_indices(&client, &url, &format!("{prefix}-idx{round}")).await;
        let records = orders::shard_records(&orders, shards);
        let rate = indexer_path::run(
            &client,
            &aws.kinesis,
            &dead_letters,
            names.clone(),
            records,
            batch,
        )
        .await;
        check_and_delete(&client, &names, orders.len()).await;
        best_indexer = best_indexer.max(rate);
        println!("  round {round}: indexer          {rate:>9.0} docs/s");
    }
    let ratio = best_indexer / best_loop;
    println!(
        "best: minimal loop {best_loop:.0} docs/s, indexer {best_indexer:.0} docs/s = {:.1}% of the ceiling (target >= 90%): {}",
        ratio * 100.0,
        if ratio >= 0.9 { "PASS" } else { "BELOW TARGET" }
    );

    if kinesis_limit > 0 {
        let names = fresh_indices(&client, &url, &format!("{prefix}-kinesis")).await;
        let f = through_kinesis::run(
            &client,
            &aws,
            &dead_letters,
            names.clone(),
            &orders,
            &format!("{prefix}-orders-enriched"),
            shards as i32,
            Duration::from_secs(kinesis_limit),
        )
        .await;
        check_and_delete(&client, &names, orders.len()).await;
        let n = orders.len() as f64;
        println!(
            "through Kinesis ({shards} shards, consumer and lease table included): {:.0} docs/s from the first record \
             ({:.1}% of the ceiling), {:.0} docs/s counting the consumer's start-up; \
             {} records delivered twice",
            n / f.reading,
            n / f.reading / best_loop * 100.0,
            n / f.total,
            f.redelivered,
        );
    }
    let _ = aws
        .kinesis
        .delete_stream()
        .stream_name(&dead_letters)
        .send()
        .await;
}

/// Index names under `base`, with the indexer's templates registered for them.
async fn fresh_indices(client: &OpenSearch, url: &str, base: &str) -> IndexNames {
    let names = IndexNames {
        orders: format!("{base}-orders"),
        order_metrics: format!("{base}-metrics"),
    };
    templates::ensure_all(client, url, &names, &Config::default().templates)
        .await
        .expect("templates registered");
    names
}

/// Every order indexed exactly once under its id, then the indices and templates go.
async fn check_and_delete(client: &OpenSearch, names: &IndexNames, expected: usize) {
    let pattern = format!("{}-*", names.orders);
    client
        .indices()
        .refresh(IndicesRefreshParts::Index(&[&pattern]))
        .send()
        .await
        .expect("refresh");
    let counted: serde_json::Value = client
        .count(CountParts::Index(&[&pattern]))
        .send()
        .await
        .expect("count")
        .json()
        .await
        .expect("count body");
    assert_eq!(
        counted["count"].as_u64(),
        Some(expected as u64),
        "documents in {pattern}"
    );
    let _ = client
        .indices()
        .delete(IndicesDeleteParts::Index(&[&pattern]))
        .send()
        .await;
    for template in [&names.orders, &names.order_metrics] {
        let _ = client
            .indices()
            .delete_index_template(IndicesDeleteIndexTemplateParts::Name(template))
            .send()
            .await;
    }
}
