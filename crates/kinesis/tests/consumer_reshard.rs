//! A shard split in the middle of a stream: every record is read once, the parent before its
//! children, per-key order kept; aggregated user records outside a child's range are skipped.

mod consumer_common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_types::Blob;
use consumer_common::*;
use flowline_kinesis::agg::AggregateBuilder;
use flowline_kinesis::shards::hash_key;

const HALF: u128 = 1 << 127;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_shard_polling() {
    split_shard_reads_parent_then_children_in_key_order(RetrievalMode::Polling).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_shard_fanout() {
    split_shard_reads_parent_then_children_in_key_order(RetrievalMode::Fanout).await;
}

async fn split_shard_reads_parent_then_children_in_key_order(retrieval: RetrievalMode) {
    let env = Env::start().await;
    let stream = env.create_stream("reshard", 1).await;
    let app = env.application("reshard");
    let log: SharedLog = Arc::new(Mutex::new(Log::default()));
    let config = ConsumerConfig {
        retrieval,
        ..test_config(&app, &[&stream], "worker-a")
    };
    let w = Worker::start(&env, config, &log, true);

    env.put(&stream, &records(0, 300, 20)).await;
    wait_until(
        Duration::from_secs(30),
        "300 records before the split",
        || async { (log.lock().unwrap().distinct() >= 100).then_some(()) },
    )
    .await;
    // Split while the parent is still being read.
    let parent = "shardId-000000000000";
    env.kinesis
        .split_shard()
        .stream_name(&stream)
        .shard_to_split(parent)
        .new_starting_hash_key(HALF.to_string())
        .send()
        .await
        .expect("SplitShard");
    env.wait_stream_active(&stream).await;
    env.put(&stream, &records(300, 300, 20)).await;
    wait_until(Duration::from_secs(60), "all 600 records", || async {
        (log.lock().unwrap().distinct() >= 600).then_some(())
    })
    .await;

    // An aggregate routed to the lower child whose user records span both children (a
    // producer with a stale shard map): only the lower half's records are delivered.
    let mut builder = AggregateBuilder::new(51_200, 100);
    let keys: Vec<String> = (0..40).map(|i| format!("agg-key-{i}")).collect();
    for k in &keys {
        assert!(builder.try_add(k, None, bytes::Bytes::from(format!("agg-{k}"))));
    }
    let aggregate = builder.finish().unwrap();
    env.kinesis
        .put_record()
        .stream_name(&stream)
        .partition_key(&aggregate.partition_key)
        .explicit_hash_key("1")
        .data(Blob::new(aggregate.data.to_vec()))
        .send()
        .await
        .expect("PutRecord");
    let in_lower: Vec<&String> = keys.iter().filter(|k| hash_key(k) < HALF).collect();
    assert!(!in_lower.is_empty() && in_lower.len() < keys.len());
    wait_until(
        Duration::from_secs(30),
        "aggregated records of the lower child",
        || async {
            let n = log
                .lock()
                .unwrap()
                .seen
                .iter()
                .filter(|s| s.data.starts_with("agg-"))
                .count();
            (n >= in_lower.len()).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    {
        let log = log.lock().unwrap();
        let agg_seen: Vec<_> = log
            .seen
            .iter()
            .filter(|s| s.data.starts_with("agg-"))
            .collect();
        assert_eq!(
            agg_seen.len(),
            in_lower.len(),
            "aggregated user records outside the child's range must be skipped"
        );
        assert!(agg_seen.iter().all(
            |s| s.sub_sequence_number < keys.len() as u64 && hash_key(&s.partition_key) < HALF
        ));
        let skipped = w.metric("flowline_kinesis_consumer_records_skipped_total");
        assert_eq!(skipped as usize, keys.len() - in_lower.len());

        let plain: Vec<_> = log
            .seen
            .iter()
            .filter(|s| s.data.starts_with("r-"))
            .collect();
        // Every record exactly once.
        let counts = log.data_counts();
        for i in 0..600 {
            assert_eq!(counts.get(&format!("r-{i}")), Some(&1), "r-{i}");
        }
        // Parent before children.
        let last_parent = plain.iter().rposition(|s| s.shard == parent).unwrap();
        let first_child = plain.iter().position(|s| s.shard != parent).unwrap();
        assert!(
            last_parent < first_child,
            "a child record was delivered before the parent's last one"
        );
        let children: std::collections::HashSet<_> = plain
            .iter()
            .map(|s| &s.shard)
            .filter(|s| *s != parent)
            .collect();
        assert_eq!(children.len(), 2, "both children read: {children:?}");
        assert!(log.has_event(parent, "shard_ended"));
        // Per key, records arrive in the order they were written.
        let mut last: HashMap<&str, usize> = HashMap::new();
        for s in &plain {
            let i: usize = s.data[2..].parse().unwrap();
            if let Some(prev) = last.insert(&s.partition_key, i) {
                assert!(
                    prev < i,
                    "key {} delivered r-{prev} before r-{i}",
                    s.partition_key
                );
            }
        }
    }
    w.stop().await;
    env.cleanup().await;
}
