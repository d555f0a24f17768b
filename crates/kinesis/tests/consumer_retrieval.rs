//! Polling retrieval under faults (through a fault-injecting proxy): throttling is retried
//! with backoff, an expired iterator is renewed after the last record read, and GetRecords
//! calls keep the per-shard pace (200 ms apart, slower when idle).

mod consumer_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use consumer_common::*;
use flowline_testkit::fault_proxy::{FaultPolicy, FaultProxy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_expired_iterators_lose_nothing() {
    let env = Env::start().await;
    let stream = env.create_stream("retrieval", 1).await;
    let app = env.application("retrieval");
    let proxy = FaultProxy::start(&env.stack.kinesis_url(), FaultPolicy::default())
        .await
        .unwrap();
    let kinesis = aws_sdk_kinesis::Client::from_conf(
        env.kinesis
            .config()
            .to_builder()
            .endpoint_url(proxy.url())
            .build(),
    );
    env.put(&stream, &records(0, 100, 10)).await;
    for _ in 0..3 {
        proxy.push_error("GetRecords", "ProvisionedThroughputExceededException");
    }

    let log: SharedLog = Arc::new(Mutex::new(Log::default()));
    let config = ConsumerConfig {
        polling: PollingConfig {
            max_records: 30,
            idle_time_between_reads: Duration::from_secs(1),
            ..Default::default()
        },
        ..test_config(&app, &[&stream], "w")
    };
    let w = Worker::start_with(&env, kinesis, config, &log, true);
    wait_until(Duration::from_secs(30), "100 records", || async {
        (log.lock().unwrap().distinct() == 100).then_some(())
    })
    .await;
    assert_eq!(
        w.metric_with(
            "flowline_kinesis_consumer_read_errors_total",
            "kind",
            "throttled"
        ),
        3.0
    );

    // The next GetRecords finds its iterator expired: reading resumes after the last record.
    proxy.push_error("GetRecords", "ExpiredIteratorException");
    wait_until(
        Duration::from_secs(10),
        "expired iterator injected",
        || async { (proxy.pending_errors() == 0).then_some(()) },
    )
    .await;
    env.put(&stream, &records(100, 100, 10)).await;
    wait_until(Duration::from_secs(30), "200 records", || async {
        (log.lock().unwrap().distinct() == 200).then_some(())
    })
    .await;
    assert_eq!(
        w.metric_with(
            "flowline_kinesis_consumer_read_errors_total",
            "kind",
            "expired_iterator"
        ),
        1.0
    );
    assert!(
        log.lock().unwrap().data_counts().values().all(|c| *c == 1),
        "duplicates after an expired iterator"
    );
    assert!(
        proxy.calls("GetShardIterator").len() >= 2,
        "iterator was not renewed"
    );

    // Pace: never two GetRecords of the shard less than 200 ms apart (some slack for the
    // proxy's own timing); once idle, about one call per idle_time_between_reads.
    let calls = proxy.calls("GetRecords");
    let min_gap = calls.windows(2).map(|w| w[1] - w[0]).min().unwrap();
    assert!(
        min_gap >= Duration::from_millis(180),
        "GetRecords calls {min_gap:?} apart"
    );
    let before = proxy.calls("GetRecords").len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_calls = proxy.calls("GetRecords").len() - before;
    assert!(
        (1..=4).contains(&idle_calls),
        "{idle_calls} GetRecords calls in 3 s while idle"
    );
    w.stop().await;
    env.cleanup().await;
}
