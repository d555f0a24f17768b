//! Enhanced fan-out retrieval (RegisterStreamConsumer + SubscribeToShard) on kinesis-local,
//! over its plain HTTP endpoint.

mod consumer_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use consumer_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_reads_every_record_and_resumes_from_checkpoint() {
    let env = Env::start().await;
    let stream = env.create_stream("fanout", 2).await;
    let app = env.application("fanout");
    env.put(&stream, &records(0, 100, 10)).await;
    let log: SharedLog = Arc::new(Mutex::new(Log::default()));
    let config = |w: &str| ConsumerConfig {
        retrieval: RetrievalMode::Fanout,
        ..test_config(&app, &[&stream], w)
    };

    let w = Worker::start(&env, config("w1"), &log, true);
    wait_until(Duration::from_secs(60), "100 records", || async {
        (log.lock().unwrap().distinct() == 100).then_some(())
    })
    .await;
    env.put(&stream, &records(100, 100, 10)).await;
    wait_until(Duration::from_secs(30), "200 records", || async {
        (log.lock().unwrap().distinct() == 200).then_some(())
    })
    .await;
    let consumers = env
        .kinesis
        .list_stream_consumers()
        .stream_arn(
            env.kinesis
                .describe_stream_summary()
                .stream_name(&stream)
                .send()
                .await
                .unwrap()
                .stream_description_summary
                .unwrap()
                .stream_arn,
        )
        .send()
        .await
        .unwrap();
    assert!(
        consumers
            .consumers()
            .iter()
            .any(|c| c.consumer_name() == app),
        "{consumers:?}"
    );
    w.stop().await;

    // A second run re-uses the registered consumer and resumes after the checkpoints.
    env.put(&stream, &records(200, 20, 10)).await;
    let w2 = Worker::start(&env, config("w2"), &log, true);
    wait_until(Duration::from_secs(60), "220 records", || async {
        (log.lock().unwrap().distinct() == 220).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        log.lock().unwrap().data_counts().values().all(|c| *c == 1),
        "duplicates"
    );
    w2.stop().await;
    env.cleanup().await;
}
