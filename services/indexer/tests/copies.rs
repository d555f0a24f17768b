//! Two copies of the indexer share the shards through the lease table: each indexes its
//! part, together everything exactly once.

mod common;

use std::time::Duration;

use common::*;
use flowline_testkit::unique_name;

const ORDERS: u64 = 600;

#[tokio::test]
async fn two_copies_share_the_shards_and_index_everything_once() {
    tokio::time::timeout(Duration::from_secs(120), run())
        .await
        .expect("test finished in time");
}

async fn run() {
    let s = Setup::new().await;
    let mut env = s.env(&unique_name("indexer-copies"));
    // Orders only: two shards for two copies.
    env.push(("INDEXER_INPUT__METRICS".into(), String::new()));
    let a = s.spawn(&env).await;
    let b = s.spawn(&env).await;
    let leases = |text: &str| metric(text, "flowline_kinesis_consumer_leases_held").unwrap_or(0.0);
    eventually(Duration::from_secs(40), "one lease per copy", || async {
        let (_, ta) = a.get("/metrics").await.unwrap();
        let (_, tb) = b.get("/metrics").await.unwrap();
        leases(&ta) == 1.0 && leases(&tb) == 1.0
    })
    .await;

    let orders: Vec<_> = (0..ORDERS).map(|n| order_record(&order(n))).collect();
    s.put(&s.orders_stream, orders).await;
    eventually(Duration::from_secs(60), "all orders indexed", || async {
        s.count(&s.orders_index).await == ORDERS
    })
    .await;

    let read = |text: &str| metric(text, "flowline_indexer_records_total").unwrap_or(0.0);
    let (_, ta) = a.get("/metrics").await.unwrap();
    let (_, tb) = b.get("/metrics").await.unwrap();
    assert!(
        read(&ta) > 0.0 && read(&tb) > 0.0,
        "both copies indexed: {} + {}",
        read(&ta),
        read(&tb)
    );
    assert_eq!(read(&ta) + read(&tb), ORDERS as f64, "no record read twice");
    assert_eq!(s.all_docs(&s.orders_index).await.len() as u64, ORDERS);
}
