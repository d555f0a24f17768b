//! Sink behaviour against the fake transport, on a paused clock.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::time::{Instant, sleep};

use super::fake::FakeBulk;
use super::*;
use crate::OpenSearchError;

fn start(fake: &Arc<FakeBulk>, cfg: BulkConfig) -> (BulkSink, BulkMetrics) {
    let metrics = BulkMetrics::unregistered();
    let sink = BulkSink::start(fake.clone(), cfg, metrics.clone()).unwrap();
    (sink, metrics)
}

fn doc(id: &str, n: u64) -> BulkDoc {
    BulkDoc::new("idx", id, json!({ "n": n }))
}

fn cfg(max_actions: usize, flush_interval: Duration) -> BulkConfig {
    BulkConfig {
        max_actions,
        flush_interval,
        ..BulkConfig::default()
    }
}

const HOUR: Duration = Duration::from_secs(3600);

async fn enqueue_all(sink: &BulkSink, docs: impl IntoIterator<Item = BulkDoc>) -> Vec<Ack> {
    let mut acks = Vec::new();
    for d in docs {
        acks.push(sink.enqueue(d).await.unwrap());
    }
    acks
}

async fn settle(acks: Vec<Ack>) -> Vec<Delivery> {
    let mut out = Vec::new();
    for a in acks {
        out.push(a.await.unwrap());
    }
    out
}

#[tokio::test(start_paused = true)]
async fn flushes_by_action_count() {
    let fake = Arc::new(FakeBulk::default());
    let (sink, _) = start(&fake, cfg(10, HOUR));
    let acks = enqueue_all(&sink, (0..25).map(|i| doc(&i.to_string(), i))).await;
    sleep(Duration::from_millis(10)).await;
    assert_eq!(fake.request_sizes(), [10, 10]);
    sink.flush();
    assert!(settle(acks).await.iter().all(|d| *d == Delivery::Indexed));
    assert_eq!(fake.request_sizes(), [10, 10, 5]);
}

#[tokio::test(start_paused = true)]
async fn flushes_by_byte_size_without_exceeding_it() {
    let fake = Arc::new(FakeBulk::default());
    let padded = |i: u64| BulkDoc::new("idx", i.to_string(), json!({"pad": "x".repeat(400)}));
    let one = padded(0).encode().unwrap().len();
    let max_bytes = one * 7 / 2;
    let (sink, _) = start(
        &fake,
        BulkConfig {
            max_bytes,
            ..cfg(1000, HOUR)
        },
    );
    let acks = enqueue_all(&sink, (0..10).map(padded)).await;
    sleep(Duration::from_millis(10)).await;
    assert_eq!(fake.request_sizes(), [3, 3, 3]);
    sink.flush();
    settle(acks).await;
    assert_eq!(fake.request_sizes(), [3, 3, 3, 1]);
}

#[tokio::test(start_paused = true)]
async fn flushes_a_partial_batch_after_the_interval() {
    let fake = Arc::new(FakeBulk::default());
    let (sink, _) = start(&fake, cfg(1000, Duration::from_secs(1)));
    let acks = enqueue_all(&sink, (0..3).map(|i| doc(&i.to_string(), i))).await;
    sleep(Duration::from_millis(999)).await;
    assert!(fake.request_sizes().is_empty());
    sleep(Duration::from_millis(2)).await;
    assert_eq!(fake.request_sizes(), [3]);
    settle(acks).await;
}

#[tokio::test(start_paused = true)]
async fn retries_only_the_failed_items() {
    let fake = Arc::new(FakeBulk::default());
    {
        let mut s = fake.state();
        s.item_faults.insert(
            "3".into(),
            [(429, "es_rejected_execution_exception")].into(),
        );
        s.item_faults
            .insert("7".into(), [(503, "unavailable_shards_exception")].into());
    }
    let (sink, metrics) = start(&fake, cfg(10, HOUR));
    let acks = enqueue_all(&sink, (0..10).map(|i| doc(&i.to_string(), i))).await;
    assert!(settle(acks).await.iter().all(|d| *d == Delivery::Indexed));
    let requests = fake.state().requests.clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1], ["3", "7"]);
    assert_eq!(fake.state().applied.len(), 10, "each document written once");
    assert_eq!(metrics.retries.with_label_values(&["item"]).get(), 2);
    assert_eq!(
        metrics
            .item_failures
            .with_label_values(&["throttled"])
            .get(),
        1
    );
    assert_eq!(
        metrics
            .item_failures
            .with_label_values(&["server_error"])
            .get(),
        1
    );
    assert_eq!(metrics.indexed.with_label_values(&["other"]).get(), 10);
}

#[tokio::test(start_paused = true)]
async fn keeps_the_order_of_writes_per_id_across_retries_and_concurrency() {
    let fake = Arc::new(FakeBulk::with_latency(Duration::from_millis(5)));
    fake.state().item_faults.insert(
        "a".into(),
        [
            (503, "node_closed_exception"),
            (429, "es_rejected_execution_exception"),
        ]
        .into(),
    );
    let (sink, _) = start(&fake, cfg(3, Duration::from_millis(20)));
    let mut docs = Vec::new();
    for n in 1..=20 {
        docs.push(doc("a", n));
        docs.push(doc(&format!("other-{n}"), n));
        if n % 2 == 0 {
            docs.push(doc("b", n));
        }
    }
    let acks = enqueue_all(&sink, docs).await;
    assert!(settle(acks).await.iter().all(|d| *d == Delivery::Indexed));
    let s = fake.state();
    for id in ["a", "b"] {
        let seen: Vec<u64> = s
            .applied
            .iter()
            .filter(|(i, _)| i == id)
            .map(|(_, v)| v["n"].as_u64().unwrap())
            .collect();
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(seen, sorted, "writes of {id} applied in order");
        assert_eq!(seen.len(), if id == "a" { 20 } else { 10 });
    }
    assert_eq!(s.docs[&("idx".into(), "a".into())].0, json!({"n": 20}));
    for r in &s.requests {
        let unique: HashSet<&String> = r.iter().collect();
        assert_eq!(
            unique.len(),
            r.len(),
            "an id appears once per request: {r:?}"
        );
    }
    assert_eq!(s.max_in_flight, 2);
}

#[tokio::test(start_paused = true)]
async fn mapping_errors_come_back_rejected_with_the_reason() {
    let fake = Arc::new(FakeBulk::default());
    let (sink, metrics) = start(&fake, cfg(3, HOUR));
    let acks = enqueue_all(
        &sink,
        [
            doc("1", 1),
            BulkDoc::new("idx", "2", json!({"bad": true})).with_family(IndexFamily::Orders),
            doc("3", 3),
        ],
    )
    .await;
    let results = settle(acks).await;
    assert_eq!(results[0], Delivery::Indexed);
    assert_eq!(results[2], Delivery::Indexed);
    let Delivery::Rejected(r) = &results[1] else {
        panic!("expected a rejection, got {:?}", results[1]);
    };
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type, "strict_dynamic_mapping_exception");
    assert!(
        r.reason.contains("dynamic introduction of [bad]"),
        "{}",
        r.reason
    );
    assert_eq!(r.kind, FailureKind::Mapping);
    assert_eq!(fake.request_sizes(), [3], "rejections are not retried");
    let rejected = metrics.rejected.with_label_values(&["orders", "mapping"]);
    assert_eq!(rejected.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_lower_or_equal_revision_is_superseded_not_an_error() {
    let fake = Arc::new(FakeBulk::default());
    let (sink, _) = start(&fake, cfg(1, HOUR));
    let m = |rev: u64| BulkDoc::new("idx", "w1", json!({ "revision": rev })).with_version(rev);
    assert_eq!(sink.send(m(3)).await.unwrap(), Delivery::Indexed);
    assert_eq!(sink.send(m(2)).await.unwrap(), Delivery::Superseded);
    assert_eq!(sink.send(m(3)).await.unwrap(), Delivery::Superseded);
    assert_eq!(sink.send(m(4)).await.unwrap(), Delivery::Indexed);
    let s = fake.state();
    assert_eq!(
        s.docs[&("idx".into(), "w1".into())],
        (json!({"revision": 4}), Some(4))
    );
}

#[tokio::test(start_paused = true)]
async fn while_opensearch_is_down_the_buffer_stays_bounded_and_nothing_is_lost() {
    let fake = Arc::new(FakeBulk::default());
    fake.state().down = true;
    let bound = 50;
    let (sink, metrics) = start(
        &fake,
        BulkConfig {
            max_buffered_docs: bound,
            ..cfg(10, Duration::from_millis(100))
        },
    );
    let accepted = Arc::new(AtomicUsize::new(0));
    let producer = {
        let (sink, accepted) = (sink.clone(), accepted.clone());
        tokio::spawn(async move {
            let mut acks = Vec::new();
            for i in 0..500u64 {
                acks.push(sink.enqueue(doc(&i.to_string(), i)).await.unwrap());
                accepted.fetch_add(1, Ordering::SeqCst);
            }
            acks
        })
    };
    for _ in 0..20 {
        sleep(Duration::from_secs(3)).await;
        assert!(sink.buffered() <= bound);
        assert!(metrics.buffered_docs.get() <= bound as i64);
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            bound,
            "send waits when full"
        );
    }
    let attempts = fake.request_sizes().len();
    assert!(attempts > 5, "requests are retried while down ({attempts})");
    assert!(
        attempts < 200,
        "with backoff, not in a tight loop ({attempts})"
    );
    assert!(metrics.retries.with_label_values(&["request"]).get() > 0);

    fake.state().down = false;
    let acks = producer.await.unwrap();
    assert!(settle(acks).await.iter().all(|d| *d == Delivery::Indexed));
    let s = fake.state();
    assert_eq!(s.docs.len(), 500);
    assert_eq!(s.applied.len(), 500, "no document written twice");
    assert_eq!(sink.buffered(), 0);
    assert_eq!(metrics.buffered_docs.get(), 0);
}

#[tokio::test(start_paused = true)]
async fn gives_up_at_the_retry_deadline_with_an_error() {
    let fake = Arc::new(FakeBulk::default());
    fake.state().down = true;
    let deadline = Duration::from_secs(5);
    let (sink, metrics) = start(
        &fake,
        BulkConfig {
            retry_deadline: Some(deadline),
            ..cfg(1, HOUR)
        },
    );
    let started = Instant::now();
    let result = sink.send(doc("1", 1)).await;
    let Err(e @ OpenSearchError::RetriesExhausted { .. }) = result else {
        panic!("expected RetriesExhausted, got {result:?}");
    };
    assert!(e.is_retriable());
    assert!(started.elapsed() <= deadline, "{:?}", started.elapsed());
    assert!(fake.request_sizes().len() > 1);
    let failed = metrics.failed.with_label_values(&["other", "deadline"]);
    assert_eq!(failed.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn whole_request_errors_retry_when_transient_and_fail_otherwise() {
    let fake = Arc::new(FakeBulk::default());
    let status = |status: u16| TransportError::Status {
        status,
        reason: "x".into(),
    };
    fake.state().request_faults = [status(503), status(429)].into();
    let (sink, _) = start(&fake, cfg(1, HOUR));
    // 503 and 429 are retried; the third attempt succeeds.
    assert_eq!(sink.send(doc("1", 1)).await.unwrap(), Delivery::Indexed);
    assert_eq!(fake.request_sizes(), [1, 1, 1]);
    fake.state().request_faults = [status(403)].into();
    let result = sink.send(doc("2", 2)).await;
    assert!(
        matches!(
            result,
            Err(OpenSearchError::BulkRequestRejected { status: 403, .. })
        ),
        "{result:?}"
    );
    // The sink goes on after a refused request.
    assert_eq!(sink.send(doc("3", 3)).await.unwrap(), Delivery::Indexed);
}

#[tokio::test(start_paused = true)]
async fn a_request_too_large_is_split_and_a_single_document_rejected() {
    let fake = Arc::new(FakeBulk::default());
    let too_large = || TransportError::Status {
        status: 413,
        reason: "content too long".into(),
    };
    fake.state().request_faults = [too_large()].into();
    let (sink, _) = start(&fake, cfg(4, HOUR));
    let acks = enqueue_all(&sink, (0..4).map(|i| doc(&i.to_string(), i))).await;
    assert!(settle(acks).await.iter().all(|d| *d == Delivery::Indexed));
    assert_eq!(fake.request_sizes(), [4, 2, 2]);

    fake.state().request_faults = [too_large()].into();
    sink.flush();
    let ack = sink.enqueue(doc("big", 1)).await.unwrap();
    sink.flush();
    let Delivery::Rejected(r) = ack.await.unwrap() else {
        panic!("a single document too large is rejected");
    };
    assert_eq!(
        (r.status, r.error_type.as_str()),
        (413, "request_entity_too_large")
    );
}

#[tokio::test(start_paused = true)]
async fn requests_in_flight_are_bounded() {
    let fake = Arc::new(FakeBulk::with_latency(Duration::from_millis(100)));
    let (sink, _) = start(
        &fake,
        BulkConfig {
            max_in_flight: 3,
            ..cfg(10, HOUR)
        },
    );
    let acks = enqueue_all(&sink, (0..200).map(|i| doc(&i.to_string(), i))).await;
    settle(acks).await;
    assert_eq!(fake.state().max_in_flight, 3);
    assert_eq!(fake.request_sizes(), [10; 20]);
}

#[tokio::test(start_paused = true)]
async fn close_settles_what_was_queued_and_refuses_more() {
    let fake = Arc::new(FakeBulk::default());
    let (sink, _) = start(&fake, cfg(100, HOUR));
    let acks = enqueue_all(&sink, (0..5).map(|i| doc(&i.to_string(), i))).await;
    sink.close().await;
    assert!(settle(acks).await.iter().all(|d| *d == Delivery::Indexed));
    assert!(matches!(
        sink.enqueue(doc("late", 1)).await,
        Err(OpenSearchError::SinkClosed)
    ));
    sink.close().await;
}

#[tokio::test(start_paused = true)]
async fn dropping_the_sink_fails_unsettled_documents() {
    let fake = Arc::new(FakeBulk::default());
    let (sink, _) = start(&fake, cfg(100, HOUR));
    let ack = sink.enqueue(doc("1", 1)).await.unwrap();
    drop(sink);
    assert!(matches!(ack.await, Err(OpenSearchError::SinkClosed)));
}

#[test]
fn invalid_settings_are_refused_at_start() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let fake = Arc::new(FakeBulk::default());
    let result = BulkSink::start(
        fake,
        BulkConfig {
            max_actions: 0,
            ..BulkConfig::default()
        },
        BulkMetrics::unregistered(),
    );
    let Err(OpenSearchError::InvalidConfig(text)) = result else {
        panic!("expected InvalidConfig");
    };
    assert!(text.contains("bulk.max_actions"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn full_batches_never_wait_for_the_flush_interval() {
    let fake = Arc::new(FakeBulk::default());
    let (sink, _) = start(&fake, BulkConfig::default());
    let started = Instant::now();
    let mut acks = Vec::new();
    for i in 0..10_000u64 {
        acks.push(sink.enqueue(doc(&i.to_string(), i)).await.unwrap());
    }
    settle(acks).await;
    // On the paused clock only timers move time: full batches must not have waited on one.
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(fake.request_sizes(), [1000; 10]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_covers_every_document_queued_before_it() {
    for _ in 0..20 {
        let fake = Arc::new(FakeBulk::default());
        let (sink, _) = start(&fake, cfg(1000, HOUR));
        let acks = enqueue_all(&sink, (0..1500).map(|i| doc(&i.to_string(), i))).await;
        sink.flush();
        // With an hour-long interval, only the flush can send the last 500.
        tokio::time::timeout(Duration::from_secs(60), settle(acks))
            .await
            .expect("the flush sent everything queued before it");
    }
}
