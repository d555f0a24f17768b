//! Producer behaviour against an in-memory fake: batching, acks, retries, TTL, backpressure,
//! flush/shutdown, aggregation, rate limits, shard map refresh.

mod fake;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use tokio::time::Instant;

use self::fake::{Behavior, Fake, even_shards};
use super::*;
use crate::agg::deaggregate;
use crate::error::{ApiError, FailureReason};
use crate::shards::{effective_hash_key, hash_key};

fn plain_config() -> ProducerConfig {
    ProducerConfig {
        linger: Duration::from_millis(10),
        aggregation: false,
        shard_bytes_per_sec: 0,
        shard_records_per_sec: 0,
        ..Default::default()
    }
}

async fn producer(fake: &Arc<Fake>, cfg: ProducerConfig) -> Producer {
    Producer::with_api(
        fake.clone(),
        "test-stream",
        cfg,
        &ProducerMetrics::unregistered(),
    )
    .await
    .unwrap()
}

fn rec(i: usize) -> Record {
    Record::new(format!("key-{i}"), format!("payload-{i}"))
}

#[tokio::test(start_paused = true)]
async fn acks_match_stored_records_and_batches_respect_limits() {
    let fake = Arc::new(Fake::new(even_shards(2)));
    let p = producer(&fake, plain_config()).await;
    let acks = p
        .send_all((0..1200).map(rec))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();

    let stored = fake.stored();
    let by_seq: HashMap<_, _> = stored
        .iter()
        .map(|s| (s.sequence_number.clone(), s))
        .collect();
    for (i, ack) in acks.iter().enumerate() {
        let s = by_seq[&ack.sequence_number];
        assert_eq!(s.shard_id, ack.shard_id);
        assert_eq!(s.entry.partition_key, format!("key-{i}"));
        assert_eq!(s.entry.data, Bytes::from(format!("payload-{i}")));
        assert_eq!((ack.sub_sequence_number, ack.attempts), (None, 1));
    }
    assert_eq!(stored.len(), 1200);
    let calls = fake.calls();
    assert!(calls.iter().all(|c| c.len() <= 500));
    assert!(calls.len() >= 3);

    // Byte limit: 900 KiB records, at most 5 per 5 MiB call.
    let big = || Record::new("k", vec![0u8; 900 * 1024]);
    let before = fake.calls().len();
    p.send_all((0..12).map(|_| big()))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let big_calls = &fake.calls()[before..];
    assert!(
        big_calls
            .iter()
            .all(|c| c.iter().map(PutEntry::size).sum::<usize>() <= MAX_PUT_RECORDS_BYTES)
    );
    assert!(big_calls.len() >= 3);
    p.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn partial_failure_retries_only_failed_entries() {
    let fake = Arc::new(Fake::new(even_shards(1)));
    fake.script(Behavior::FailEntries(
        vec![1, 3],
        "ProvisionedThroughputExceededException",
    ));
    fake.script(Behavior::FailEntries(vec![0], "InternalFailure"));
    let registry = prometheus::Registry::new();
    let metrics = ProducerMetrics::register(&registry).unwrap();
    let p = Producer::with_api(fake.clone(), "s", plain_config(), &metrics)
        .await
        .unwrap();
    let acks = p
        .send_all((0..5).map(rec))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();

    let calls = fake.calls();
    let keys = |c: &Vec<PutEntry>| {
        c.iter()
            .map(|e| e.partition_key.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(&calls[0]),
        ["key-0", "key-1", "key-2", "key-3", "key-4"]
    );
    // Each failed record has its own jittered backoff, so retries may share a call or not; either
    // way only failed entries are sent again: 2 throttled, then 1 of them failing once more.
    let retried: Vec<String> = calls[1..].iter().flat_map(keys).collect();
    assert_eq!(retried.len(), 3, "{retried:?}");
    assert!(
        retried.iter().all(|k| k == "key-1" || k == "key-3"),
        "{retried:?}"
    );
    let mut attempts: Vec<u32> = acks.iter().map(|a| a.attempts).collect();
    assert_eq!([attempts[0], attempts[2], attempts[4]], [1, 1, 1]);
    attempts.sort();
    assert_eq!(attempts, [1, 1, 1, 2, 3]);
    assert_eq!(fake.stored().len(), 5);

    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    assert!(
        text.contains(
            r#"flowline_kinesis_producer_retries_total{reason="throttled",stream="s"} 2"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"flowline_kinesis_producer_retries_total{reason="server_error",stream="s"} 1"#
    ));
    assert!(text.contains(r#"flowline_kinesis_producer_user_records_put_total{stream="s"} 5"#));
    let count = format!(
        r#"flowline_kinesis_producer_put_records_duration_seconds_count{{stream="s"}} {}"#,
        calls.len()
    );
    assert!(text.contains(&count), "{text}");
    p.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn non_retriable_errors_fail_at_once() {
    let fake = Arc::new(Fake::new(even_shards(1)));
    fake.script(Behavior::FailCall(ApiError::from_code(
        "ValidationException",
        "bad",
        Some(400),
    )));
    fake.script(Behavior::FailEntries(vec![0], "KMSDisabledException"));
    let p = producer(&fake, plain_config()).await;

    let err = p.send(rec(0)).await.unwrap().await.unwrap_err();
    let Error::Put(e) = err else { panic!("{err}") };
    assert_eq!(
        (e.last_error.reason, e.attempts, e.expired),
        (FailureReason::Invalid, 1, false)
    );

    let err = p.send(rec(1)).await.unwrap().await.unwrap_err();
    let Error::Put(e) = err else { panic!("{err}") };
    assert_eq!(e.last_error.reason, FailureReason::AccessDenied);
    assert!(!err_retriable(&e));
    assert_eq!(fake.calls().len(), 2);
    p.shutdown().await.unwrap();
}

fn err_retriable(e: &crate::error::PutError) -> bool {
    Error::Put(e.clone()).is_retriable()
}

#[tokio::test(start_paused = true)]
async fn record_ttl_bounds_retries_and_reports_last_error() {
    let fake = Arc::new(Fake::new(even_shards(1)));
    fake.always(Behavior::FailCall(ApiError::from_code(
        "ProvisionedThroughputExceededException",
        "slow down",
        Some(400),
    )));
    let cfg = ProducerConfig {
        record_ttl: Duration::from_secs(3),
        ..plain_config()
    };
    let p = producer(&fake, cfg).await;
    let start = Instant::now();
    let err = p.send(rec(0)).await.unwrap().await.unwrap_err();
    let elapsed = start.elapsed();
    let Error::Put(e) = err else { panic!("{err}") };
    assert!(e.expired);
    assert_eq!(e.last_error.code, "ProvisionedThroughputExceededException");
    assert!(
        e.attempts >= 3,
        "backoff should allow several attempts in 3 s, got {}",
        e.attempts
    );
    assert_eq!(fake.calls().len() as u32, e.attempts);
    assert!(elapsed <= Duration::from_secs(3), "{elapsed:?}");
    p.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn timed_out_calls_are_retried() {
    let fake = Arc::new(Fake::new(even_shards(1)));
    fake.script(Behavior::Hang);
    let cfg = ProducerConfig {
        request_timeout: Duration::from_secs(1),
        ..plain_config()
    };
    let p = producer(&fake, cfg).await;
    let ack = p.send(rec(0)).await.unwrap().await.unwrap();
    assert_eq!(ack.attempts, 2);
    assert_eq!(fake.calls().len(), 2);
    p.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn one_in_flight_request_keeps_send_order_per_shard() {
    let fake = Arc::new(Fake::new(even_shards(3)));
    let cfg = ProducerConfig {
        max_in_flight_requests: 1,
        max_batch_records: 50,
        ..plain_config()
    };
    let p = producer(&fake, cfg).await;
    let acks = p
        .send_all((0..2000).map(|i| rec(i % 17)))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let mut last: HashMap<String, String> = HashMap::new();
    for ack in acks {
        if let Some(prev) = last.get(&ack.shard_id) {
            assert!(
                ack.sequence_number > *prev,
                "out of order on {}",
                ack.shard_id
            );
        }
        last.insert(ack.shard_id, ack.sequence_number);
    }
    assert_eq!(last.len(), 3);
    p.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn full_buffer_applies_backpressure() {
    let fake = Arc::new(Fake::new(even_shards(1)));
    fake.gate.forget_permits(Semaphore::MAX_PERMITS);
    let cfg = ProducerConfig {
        buffer_records: 10,
        request_timeout: Duration::from_secs(3600),
        ..plain_config()
    };
    let p = producer(&fake, cfg).await;
    let mut acks = AckSet::new();
    for i in 0..10 {
        acks.push(p.try_send(rec(i)).unwrap());
    }
    assert!(matches!(p.try_send(rec(10)), Err(Error::BufferFull)));
    assert!(
        tokio::time::timeout(Duration::from_secs(5), p.send(rec(10)))
            .await
            .is_err(),
        "send must wait"
    );

    fake.gate.add_permits(1000);
    let late = p.send(rec(11)).await.unwrap();
    assert_eq!(acks.wait().await.unwrap().len(), 10);
    late.await.unwrap();
    p.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn flush_and_shutdown_deliver_everything_buffered() {
    let fake = Arc::new(Fake::new(even_shards(2)));
    let cfg = ProducerConfig {
        linger: Duration::from_secs(3600),
        aggregation: true,
        ..plain_config()
    };
    let p = producer(&fake, cfg).await;
    let first: Vec<_> = futures::future::join_all((0..50).map(|i| p.send(rec(i)))).await;
    let first: Vec<_> = first.into_iter().map(Result::unwrap).collect();
    p.flush().await.unwrap();
    for ack in first {
        ack.now_or_never().expect("acked by flush").unwrap();
    }

    let rest = p.send_all((50..80).map(rec)).await.unwrap();
    p.shutdown().await.unwrap();
    assert_eq!(rest.wait().await.unwrap().len(), 30);
    assert!(matches!(p.send(rec(0)).await, Err(Error::Closed)));
    assert!(matches!(p.flush().await, Err(Error::Closed)));
    let users: usize = fake
        .stored
        .lock()
        .unwrap()
        .iter()
        .map(|s| {
            deaggregate(&s.entry.partition_key, None, s.entry.data.clone())
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(users, 80);
}

#[tokio::test(start_paused = true)]
async fn aggregates_group_user_records_by_shard() {
    let fake = Arc::new(Fake::new(even_shards(4)));
    let cfg = ProducerConfig {
        aggregation: true,
        aggregation_max_bytes: 4096,
        ..plain_config()
    };
    let p = producer(&fake, cfg).await;
    let records: Vec<Record> = (0..3000)
        .map(|i| Record::new(format!("customer-{i}"), vec![b'x'; 50 + i % 100]))
        .collect();
    let acks = p
        .send_all(records.clone())
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();

    let stored = fake.stored();
    assert!(
        stored.len() < 300,
        "expected aggregation, got {} Kinesis records",
        stored.len()
    );
    let map = even_shards(4);
    let by_seq: HashMap<_, _> = stored
        .iter()
        .map(|s| (s.sequence_number.clone(), s))
        .collect();
    for (r, ack) in records.iter().zip(&acks) {
        let s = by_seq[&ack.sequence_number];
        assert!(s.entry.data.len() <= 4096);
        let users = deaggregate(
            &s.entry.partition_key,
            s.entry.explicit_hash_key.as_deref(),
            s.entry.data.clone(),
        )
        .unwrap();
        let sub = ack.sub_sequence_number.unwrap_or(0) as usize;
        assert_eq!(users[sub].partition_key, r.partition_key);
        assert_eq!(users[sub].data, r.data);
        // Every user record lives in the shard its own key maps to.
        let own = map.index_of(hash_key(&r.partition_key)).unwrap();
        assert_eq!(map.shards()[own].shard_id, s.shard_id);
    }
    p.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn explicit_hash_keys_route_and_survive_aggregation() {
    let fake = Arc::new(Fake::new(even_shards(2)));
    let cfg = ProducerConfig {
        aggregation: true,
        ..plain_config()
    };
    let p = producer(&fake, cfg).await;
    let high = (u128::MAX - 5).to_string();
    let acks = p
        .send_all((0..10).map(|i| rec(i).with_explicit_hash_key(high.clone())))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert!(acks.iter().all(|a| a.shard_id == "shardId-000000000001"));
    let stored = fake.stored();
    assert_eq!(stored.len(), 1);
    let e = &stored[0].entry;
    assert_eq!(
        effective_hash_key(&e.partition_key, e.explicit_hash_key.as_deref()).unwrap(),
        u128::MAX - 5
    );
    assert!(matches!(
        p.try_send(rec(0).with_explicit_hash_key("nope")),
        Err(Error::InvalidRecord(_))
    ));
    assert!(matches!(
        p.try_send(Record::new("", "x")),
        Err(Error::InvalidRecord(_))
    ));
    assert!(matches!(
        p.try_send(Record::new("k", vec![0u8; MAX_RECORD_BYTES])),
        Err(Error::InvalidRecord(_))
    ));
    p.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn per_shard_rate_limit_spreads_writes() {
    let fake = Arc::new(Fake::new(even_shards(1)));
    let cfg = ProducerConfig {
        shard_records_per_sec: 100,
        ..plain_config()
    };
    let p = producer(&fake, cfg).await;
    let start = Instant::now();
    p.send_all((0..300).map(rec))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let elapsed = start.elapsed();
    // 100 records of burst, then 200 more at 100/s.
    assert!(elapsed >= Duration::from_millis(1900), "{elapsed:?}");
    assert!(elapsed <= Duration::from_millis(2500), "{elapsed:?}");
    // Waiting for worthwhile chunks keeps calls few (not one per token).
    assert!(fake.calls().len() <= 60, "{} calls", fake.calls().len());
    p.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn unexpected_shard_triggers_shard_map_refresh() {
    let fake = Arc::new(Fake::new(even_shards(2)));
    let p = producer(&fake, plain_config()).await;
    assert_eq!(fake.list_calls.load(Ordering::SeqCst), 1);
    p.send(rec(0)).await.unwrap().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        fake.list_calls.load(Ordering::SeqCst),
        1,
        "no surprise, no refresh"
    );

    *fake.land_on.lock().unwrap() = Some("shardId-000000000009".into());
    let ack = p.send(rec(1)).await.unwrap().await.unwrap();
    assert_eq!(ack.shard_id, "shardId-000000000009");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fake.list_calls.load(Ordering::SeqCst), 2);
    p.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn resharding_is_followed_for_aggregation() {
    let fake = Arc::new(Fake::new(even_shards(1)));
    let cfg = ProducerConfig {
        aggregation: true,
        ..plain_config()
    };
    let p = producer(&fake, cfg).await;
    fake.set_map(even_shards(2));
    // The first aggregate is built for the old single shard; it lands somewhere unexpected
    // or not, but the new map is read within the refresh gap either way.
    p.send_all((0..200).map(rec))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(fake.list_calls.load(Ordering::SeqCst) >= 2);

    let before = fake.stored().len();
    let records: Vec<Record> = (200..400).map(rec).collect();
    let acks = p
        .send_all(records.clone())
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let map = even_shards(2);
    for (r, ack) in records.iter().zip(&acks) {
        let own = &map.shards()[map.index_of(hash_key(&r.partition_key)).unwrap()].shard_id;
        assert_eq!(&ack.shard_id, own, "aggregates follow the new shard map");
    }
    // One aggregate per new shard.
    assert_eq!(fake.stored().len() - before, 2);
    p.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn invalid_config_is_rejected_with_setting_names() {
    let fake = Arc::new(Fake::new(even_shards(1)));
    let cfg = ProducerConfig {
        max_batch_records: 0,
        ..plain_config()
    };
    let err = Producer::with_api(fake, "s", cfg, &ProducerMetrics::unregistered())
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("producer.max_batch_records"),
        "{err}"
    );
}

use tokio::sync::Semaphore;
