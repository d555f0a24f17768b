//! OpenSearch unavailable (every request answered 500/503 by a fault proxy between the
//! indexer and OpenSearch): reading stops once the sink is full, memory stays bounded,
//! nothing is checkpointed past unindexed documents, and after recovery every document is
//! indexed exactly once, whether the same process recovers or a new one takes over.

mod common;

use std::time::Duration;

use common::*;
use flowline_testkit::fault_proxy::{FaultPolicy, FaultProxy};
use flowline_testkit::unique_name;

const MAX_BUFFERED: u64 = 200;

#[tokio::test]
async fn an_outage_loses_nothing_duplicates_nothing_and_stays_bounded() {
    tokio::time::timeout(Duration::from_secs(150), run())
        .await
        .expect("test finished in time");
}

fn down() -> FaultPolicy {
    FaultPolicy {
        server_error: 1.0,
        max_faults: u64::MAX,
        active_for: Duration::from_secs(3600),
        ..FaultPolicy::default()
    }
}

async fn run() {
    let s = Setup::new().await;
    let proxy = FaultProxy::start(&s.stack.opensearch_url(), FaultPolicy::default())
        .await
        .unwrap();
    let app = unique_name("indexer-outage");
    let mut env = s.env(&app);
    env.extend(
        [
            ("OPENSEARCH_URL", proxy.url()),
            ("INDEXER_OPENSEARCH__URL", proxy.url()),
            ("INDEXER_BULK__MAX_ACTIONS", "50".to_string()),
            ("INDEXER_BULK__MAX_BUFFERED_DOCS", MAX_BUFFERED.to_string()),
            ("INDEXER_BULK__MAX_BACKOFF", "1s".into()),
            ("INDEXER_CONSUMER__FAILOVER_TIME", "3s".into()),
            ("INDEXER_CONSUMER__POLLING__MAX_RECORDS", "100".into()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );

    // Phase 1: OpenSearch goes down after the start; the first process is killed mid-outage.
    let first = s.spawn(&env).await;
    proxy.set_policy(down());
    let orders: Vec<_> = (0..1_000).map(|n| order_record(&order(n))).collect();
    s.put(&s.orders_stream, orders).await;
    let mut samples = Vec::new();
    for _ in 0..16 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (_, text) = first.get("/metrics").await.unwrap();
        let buffered = metric(&text, "flowline_opensearch_sink_buffered_documents")
            .unwrap_or_else(|| panic!("no buffered gauge in {text}"));
        let queued = metric(
            &text,
            "flowline_indexer_records_total{family=\"orders\",outcome=\"queued\"}",
        )
        .unwrap_or(0.0);
        samples.push((buffered, queued));
    }
    let (status, body) = first.get("/ready").await.unwrap();
    assert_eq!(status, 503, "not ready while OpenSearch fails: {body}");
    assert!(
        samples.iter().all(|(b, _)| *b <= MAX_BUFFERED as f64),
        "{samples:?}"
    );
    let (last_buffered, last_queued) = *samples.last().unwrap();
    assert_eq!(
        last_buffered, MAX_BUFFERED as f64,
        "the sink filled up: {samples:?}"
    );
    assert_eq!(
        last_queued, MAX_BUFFERED as f64,
        "reading stopped at the sink's bound: {samples:?}"
    );
    assert_eq!(s.count(&s.orders_index).await, 0);
    assert!(proxy.stats().server_errors > 0);
    first.signal(libc::SIGKILL);
    drop(first);

    // Phase 2: OpenSearch is back; a new process takes the expired leases over and indexes
    // everything, because nothing was checkpointed past unindexed documents.
    proxy.set_policy(FaultPolicy::default());
    let second = s.spawn(&env).await;
    eventually(
        Duration::from_secs(60),
        "1000 orders indexed after the outage",
        || async { s.count(&s.orders_index).await == 1_000 },
    )
    .await;

    // Phase 3: a short outage the same process rides out.
    proxy.set_policy(down());
    let orders: Vec<_> = (1_000..1_400).map(|n| order_record(&order(n))).collect();
    s.put(&s.orders_stream, orders).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(s.count(&s.orders_index).await, 1_000);
    proxy.set_policy(FaultPolicy::default());
    eventually(Duration::from_secs(60), "1400 orders indexed", || async {
        s.count(&s.orders_index).await == 1_400
    })
    .await;

    let docs = s.all_docs(&s.orders_index).await;
    assert_eq!(docs.len(), 1_400);
    for n in 0..1_400 {
        let o = order(n);
        assert_eq!(docs[&o.order_id].0, daily(&s.orders_index, o.event_time));
    }
    let (_, text) = second.get("/metrics").await.unwrap();
    assert!(
        metric(&text, "flowline_opensearch_bulk_retries_total").unwrap_or(0.0) > 0.0,
        "{text}"
    );
    assert!(
        s.dead_letters().await.is_empty(),
        "an outage dead-letters nothing"
    );

    // Phase 4: after a clean stop the checkpoints cover everything: a restart reads nothing.
    let mut second = second;
    second.signal(libc::SIGTERM);
    let status = second.wait_exit(Duration::from_secs(30)).await.unwrap();
    assert_eq!(status.code(), Some(0), "{}", second.logs());
    let third = s.spawn(&env).await;
    eventually(
        Duration::from_secs(20),
        "the restart holds the leases",
        || async {
            let (_, text) = third.get("/metrics").await.unwrap();
            metric(&text, "flowline_kinesis_consumer_leases_held") == Some(3.0)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, text) = third.get("/metrics").await.unwrap();
    assert_eq!(
        metric(&text, "flowline_indexer_records_total").unwrap_or(0.0),
        0.0,
        "nothing is read twice after a clean stop"
    );
}
