//! Producer against the local Kinesis (kinesis-local), directly and through the fault proxy.
//! Every test uses its own stream and deletes it at the end.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::ShardIteratorType;
use bytes::Bytes;
use flowline_kinesis::agg::deaggregate;
use flowline_kinesis::producer::{Ack, Producer, ProducerConfig, ProducerMetrics, Record};
use flowline_testkit::fault_proxy::{FaultPolicy, FaultProxy};
use flowline_testkit::{Stack, unique_name};

async fn create_stream(client: &Client, name: &str, shards: i32) {
    flowline_testkit::create_stream(client, name, shards)
        .await
        .expect("create stream");
}

/// Creates a stream, runs `test` with its name, and deletes the stream even if `test` panics
/// (the emulator has an account-wide shard limit shared by every test).
async fn with_stream<F, Fut>(client: &Client, prefix: &str, shards: i32, test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let name = unique_name(prefix);
    create_stream(client, &name, shards).await;
    let outcome = tokio::spawn(test(name.clone())).await;
    delete_stream(client, &name).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn delete_stream(client: &Client, name: &str) {
    let _ = client
        .delete_stream()
        .stream_name(name)
        .enforce_consumer_deletion(true)
        .send()
        .await;
}

/// One user record as read back: where it is and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ReadBack {
    shard_id: String,
    sequence_number: String,
    sub_sequence_number: Option<u64>,
    partition_key: String,
    data: Bytes,
}

/// Reads every record of every shard from TRIM_HORIZON with GetRecords and deaggregates them.
async fn read_all(client: &Client, stream: &str, expected: usize) -> Vec<ReadBack> {
    let shards = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for shard in shards.shards() {
        let mut iterator = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator()
            .map(str::to_owned);
        let mut empty_reads = 0;
        while let Some(it) = iterator.take() {
            let resp = client
                .get_records()
                .shard_iterator(&it)
                .limit(10_000)
                .send()
                .await
                .unwrap();
            for r in resp.records() {
                let data = Bytes::copy_from_slice(r.data().as_ref());
                let users = deaggregate(r.partition_key(), None, data).expect("deaggregate");
                let aggregated =
                    users.len() > 1 || flowline_kinesis::agg::is_aggregated(r.data().as_ref());
                for u in users {
                    out.push(ReadBack {
                        shard_id: shard.shard_id().to_owned(),
                        sequence_number: r.sequence_number().to_owned(),
                        sub_sequence_number: aggregated.then_some(u.sub_sequence_number),
                        partition_key: u.partition_key,
                        data: u.data,
                    });
                }
            }
            // Caught up: an empty read at the tip (a few in a row, the emulator can lag).
            if resp.records().is_empty() && resp.millis_behind_latest() == Some(0) {
                empty_reads += 1;
                if empty_reads >= 3 || out.len() >= expected {
                    break;
                }
            }
            iterator = resp.next_shard_iterator().map(str::to_owned);
        }
    }
    out
}

fn payloads(n: usize, tag: &str) -> Vec<Record> {
    (0..n)
        .map(|i| {
            Record::new(
                format!("{tag}-key-{}", i % 97),
                format!("{{\"tag\":\"{tag}\",\"i\":{i}}}"),
            )
        })
        .collect()
}

/// Sends `records` through `client`, returning the acks in send order.
async fn produce(
    client: &Client,
    stream: &str,
    cfg: ProducerConfig,
    records: Vec<Record>,
) -> Vec<Ack> {
    let producer = Producer::new(client, stream, cfg, &ProducerMetrics::unregistered())
        .await
        .expect("producer");
    let acks = producer.send_all(records).await.unwrap();
    producer.flush().await.unwrap();
    let acks = acks.wait().await.expect("every record acknowledged");
    producer.shutdown().await.unwrap();
    acks
}

fn assert_exactly_once(sent: &[Record], got: &[ReadBack]) {
    let mut want: HashMap<(&str, &[u8]), i64> = HashMap::new();
    for r in sent {
        *want
            .entry((r.partition_key.as_str(), &r.data[..]))
            .or_default() += 1;
    }
    let mut extra = Vec::new();
    for g in got {
        match want.get_mut(&(g.partition_key.as_str(), &g.data[..])) {
            Some(n) => *n -= 1,
            None => extra.push(g),
        }
    }
    let wrong: Vec<_> = want.iter().filter(|(_, n)| **n != 0).take(5).collect();
    assert!(
        extra.is_empty(),
        "records read that were never sent: {:?}",
        &extra[..extra.len().min(5)]
    );
    assert!(
        wrong.is_empty(),
        "records missing (>0) or duplicated (<0): {wrong:?} (read {} of {})",
        got.len(),
        sent.len()
    );
}

fn proxied(client: &Client, proxy: &FaultProxy) -> Client {
    Client::from_conf(
        client
            .config()
            .to_builder()
            .endpoint_url(proxy.url())
            .build(),
    )
}

fn faulty_policy(seed: u64) -> FaultPolicy {
    FaultPolicy {
        seed,
        throttle: 0.10,
        server_error: 0.03,
        drop_connection: 0.02,
        stall: 0.02,
        stall_for: Duration::from_secs(3),
        partial_failure: 0.10,
        operations: vec!["PutRecords".into()],
        ..FaultPolicy::default()
    }
}

fn fault_tolerant_config(aggregation: bool) -> ProducerConfig {
    ProducerConfig {
        aggregation,
        linger: Duration::from_millis(20),
        // Small batches mean many calls, so many chances for faults.
        max_batch_records: 50,
        request_timeout: Duration::from_secs(1),
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(500),
        record_ttl: Duration::from_secs(120),
        ..ProducerConfig::default()
    }
}

/// With aggregation, user records share Kinesis records (sub-sequence numbers), except a
/// record that was alone in its shard's aggregate when it closed: that one goes as itself,
/// as the KPL does, and then no other user record shares its Kinesis record. Without
/// aggregation every user record is a Kinesis record of its own.
fn assert_aggregation_shape(acks: &[Ack], aggregation: bool) {
    if !aggregation {
        assert!(acks.iter().all(|a| a.sub_sequence_number.is_none()));
        return;
    }
    let mut per_record: HashMap<(&str, &str), usize> = HashMap::new();
    for a in acks {
        *per_record
            .entry((&a.shard_id, &a.sequence_number))
            .or_default() += 1;
    }
    for a in acks.iter().filter(|a| a.sub_sequence_number.is_none()) {
        assert_eq!(
            per_record[&(a.shard_id.as_str(), a.sequence_number.as_str())],
            1,
            "a plain record shares its Kinesis record: {a:?}"
        );
    }
    let aggregated = acks
        .iter()
        .filter(|a| a.sub_sequence_number.is_some())
        .count();
    assert!(
        aggregated * 2 > acks.len(),
        "most records were aggregated: {aggregated} of {}",
        acks.len()
    );
}

/// Sends `sent` through the fault proxy and checks every record is read back exactly once.
async fn exactly_once_through_faults(
    prefix: &str,
    seed: u64,
    cfg: ProducerConfig,
    sent: Vec<Record>,
) {
    let stack = Stack::start().await;
    let client = stack.aws_clients().await.kinesis;
    let proxy = FaultProxy::start(&stack.kinesis_url(), faulty_policy(seed))
        .await
        .unwrap();
    let faulty = proxied(&client, &proxy);
    let direct = client.clone();
    with_stream(&client, prefix, 2, move |stream| async move {
        let aggregation = cfg.aggregation;
        let acks = produce(&faulty, &stream, cfg, sent.clone()).await;
        assert_eq!(acks.len(), sent.len());
        assert_aggregation_shape(&acks, aggregation);
        let stats = proxy.stats();
        eprintln!("fault proxy: {stats:?}");
        assert!(
            stats.throttled > 0 && stats.entries_failed > 0,
            "faults were injected: {stats:?}"
        );
        assert!(
            acks.iter().any(|a| a.attempts > 1),
            "some records needed retries"
        );

        let got = read_all(&direct, &stream, sent.len()).await;
        assert_exactly_once(&sent, &got);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_lands_exactly_once_despite_faults() {
    exactly_once_through_faults(
        "producer-faults",
        7,
        fault_tolerant_config(false),
        payloads(1500, "plain"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregated_records_land_exactly_once_despite_faults() {
    // Small aggregates and batches: many calls, so many chances for faults.
    let cfg = ProducerConfig {
        aggregation_max_bytes: 1024,
        max_batch_records: 4,
        ..fault_tolerant_config(true)
    };
    exactly_once_through_faults("producer-agg-faults", 11, cfg, payloads(6000, "agg")).await;
}

/// Each ack names the shard, sequence number and sub-sequence number GetRecords shows the record at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_match_what_get_records_returns() {
    let stack = Stack::start().await;
    let client = stack.aws_clients().await.kinesis;
    let c = client.clone();
    with_stream(&client, "producer-acks", 2, move |stream| async move {
        for aggregation in [false, true] {
            let tag = if aggregation { "agg" } else { "plain" };
            let sent = payloads(400, tag);
            let cfg = ProducerConfig {
                aggregation,
                ..ProducerConfig::default()
            };
            let acks = produce(&c, &stream, cfg, sent.clone()).await;
            let got = read_all(&c, &stream, usize::MAX).await;
            let at: HashMap<_, _> = got
                .iter()
                .map(|g| {
                    (
                        (
                            g.shard_id.as_str(),
                            g.sequence_number.as_str(),
                            g.sub_sequence_number,
                        ),
                        g,
                    )
                })
                .collect();
            for (r, ack) in sent.iter().zip(&acks) {
                let key = (
                    ack.shard_id.as_str(),
                    ack.sequence_number.as_str(),
                    ack.sub_sequence_number,
                );
                let g = at
                    .get(&key)
                    .unwrap_or_else(|| panic!("ack {ack:?} names no record"));
                assert_eq!((&g.partition_key, &g.data), (&r.partition_key, &r.data));
            }
            assert_eq!(
                acks.iter().any(|a| a.sub_sequence_number.is_some()),
                aggregation
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_stream_is_reported_not_retried_forever() {
    let stack = Stack::start().await;
    let client = stack.aws_clients().await.kinesis;
    let err = Producer::new(
        &client,
        unique_name("no-such-stream"),
        ProducerConfig::default(),
        &ProducerMetrics::unregistered(),
    )
    .await
    .err()
    .expect("no producer for a missing stream");
    assert!(!err.is_retriable(), "{err}");
    assert!(err.to_string().contains("ResourceNotFound"), "{err}");
}
