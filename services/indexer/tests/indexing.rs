//! The indexer on the local stack: every order and metric indexed exactly once under its id
//! in its daily index and visible through the alias; stale metric revisions never win;
//! invalid records and mapping violations land in dead-letters; a replay changes nothing.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use flowline_testkit::unique_name;
use serde_json::Value;

const ORDERS: u64 = 1_500;
const METRICS: u64 = 120;

#[tokio::test]
async fn indexes_exactly_once_dead_letters_rejects_and_replays_change_nothing() {
    tokio::time::timeout(Duration::from_secs(150), run())
        .await
        .expect("test finished in time");
}

async fn run() {
    let s = Setup::new().await;

    // Orders, plus two the model refuses and one the strict mapping refuses.
    let mut orders: Vec<(String, Vec<u8>)> = (0..ORDERS).map(|n| order_record(&order(n))).collect();
    orders.push(("bad-1".into(), b"{\"order_id\": \"x\", oops".to_vec()));
    let mut missing = serde_json::to_value(order(ORDERS)).unwrap();
    missing.as_object_mut().unwrap().remove("event_time");
    orders.push(("bad-2".into(), serde_json::to_vec(&missing).unwrap()));
    let mut extra = serde_json::to_value(order(ORDERS + 1)).unwrap();
    extra["loyalty_tier"] = "gold".into();
    orders.push(("bad-3".into(), serde_json::to_vec(&extra).unwrap()));

    // Metrics: revision 1, then 2 for every window; the even windows get a stale revision 1
    // again after their revision 2.
    let mut metrics: Vec<(String, Vec<u8>)> = Vec::new();
    for n in 0..METRICS {
        metrics.push(metric_record(&metric_doc(n, 1)));
    }
    for n in 0..METRICS {
        metrics.push(metric_record(&metric_doc(n, 2)));
    }
    for n in (0..METRICS).step_by(2) {
        metrics.push(metric_record(&metric_doc(n, 1)));
    }
    let total_records = (orders.len() + metrics.len()) as f64;
    s.put(&s.orders_stream, orders).await;
    s.put(&s.metrics_stream, metrics).await;

    let svc = s.spawn(&s.env(&unique_name("indexer"))).await;
    eventually(
        Duration::from_secs(90),
        "all orders and metrics indexed",
        || async {
            s.count(&s.orders_index).await == ORDERS && s.count(&s.metrics_index).await == METRICS
        },
    )
    .await;
    eventually(Duration::from_secs(30), "three dead letters", || async {
        s.dead_letters().await.len() >= 3
    })
    .await;

    // Each order once, under its id, in the daily index of its event time.
    let docs = s.all_docs(&s.orders_index).await;
    assert_eq!(docs.len() as u64, ORDERS);
    for n in 0..ORDERS {
        let o = order(n);
        let (index, source) = docs
            .get(&o.order_id)
            .unwrap_or_else(|| panic!("{} missing", o.order_id));
        assert_eq!(index, &daily(&s.orders_index, o.event_time));
        let mut expected = serde_json::to_value(&o).unwrap();
        expected["indexed_at"] = source["indexed_at"].clone();
        assert_eq!(source, &expected);
        assert!(source["indexed_at"].is_string());
    }
    let days: std::collections::BTreeSet<&String> = docs.values().map(|(i, _)| i).collect();
    assert_eq!(days.len(), 2, "orders span two UTC days: {days:?}");

    // Metrics: the newest revision won everywhere, stale revision 1 never overwrote it.
    let metric_docs = s.all_docs(&s.metrics_index).await;
    for n in 0..METRICS {
        let m = metric_doc(n, 2);
        let (index, source) = &metric_docs[&m.id];
        assert_eq!(index, &daily(&s.metrics_index, m.window_start));
        assert_eq!(source["revision"], 2, "{source}");
        assert_eq!(source["orders"], 12);
    }

    // Dead letters: what the model refused and what the mapping refused, with lineage.
    let letters = s.dead_letters().await;
    assert_eq!(letters.len(), 3, "{letters:?}");
    let by_type: BTreeMap<&str, usize> = letters.iter().fold(BTreeMap::new(), |mut m, l| {
        *m.entry(l.error_type.as_str()).or_default() += 1;
        m
    });
    assert_eq!(
        by_type,
        BTreeMap::from([("bad_json", 1), ("mapping", 1), ("missing_field", 1)])
    );
    for l in &letters {
        assert_eq!(l.stage, "indexer");
        assert_eq!(l.source_stream, s.orders_stream);
        assert!(l.shard_id.starts_with("shardId-"), "{l:?}");
        assert!(!l.sequence_number.is_empty());
    }
    let mapping = letters.iter().find(|l| l.error_type == "mapping").unwrap();
    assert!(
        mapping.reason.contains("loyalty_tier"),
        "{}",
        mapping.reason
    );
    let payload: Value = serde_json::from_slice(&mapping.payload().unwrap()).unwrap();
    assert_eq!(payload["order_id"], order(ORDERS + 1).order_id);

    // Metrics of the run.
    let (_, text) = svc.get("/metrics").await.unwrap();
    assert!(
        metric(
            &text,
            "flowline_indexer_end_to_end_latency_seconds_count{family=\"orders\",join_status=\"complete\"}"
        )
        .unwrap()
            >= ORDERS as f64
    );
    assert_eq!(
        metric(&text, "flowline_indexer_records_total"),
        Some(total_records)
    );
    drop(svc);

    // Replay: a second application reads both streams again from the start.
    let before_orders: BTreeMap<String, Value> = docs
        .into_iter()
        .map(|(id, (_, mut v))| {
            v.as_object_mut().unwrap().remove("indexed_at");
            (id, v)
        })
        .collect();
    let replay = s.spawn(&s.env(&unique_name("indexer-replay"))).await;
    eventually(
        Duration::from_secs(90),
        "the replay read everything",
        || async {
            let (_, text) = replay.get("/metrics").await.unwrap();
            metric(&text, "flowline_indexer_records_total") == Some(total_records)
                && metric(&text, "flowline_opensearch_sink_buffered_documents") == Some(0.0)
        },
    )
    .await;
    // Let the last dead letters land.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(s.count(&s.orders_index).await, ORDERS);
    assert_eq!(s.count(&s.metrics_index).await, METRICS);
    let after: BTreeMap<String, Value> = s
        .all_docs(&s.orders_index)
        .await
        .into_iter()
        .map(|(id, (_, mut v))| {
            v.as_object_mut().unwrap().remove("indexed_at");
            (id, v)
        })
        .collect();
    assert_eq!(after, before_orders);
    assert_eq!(
        s.all_docs(&s.metrics_index).await,
        metric_docs,
        "metrics untouched by the replay"
    );
    let (_, text) = replay.get("/metrics").await.unwrap();
    assert_eq!(
        metric(
            &text,
            "flowline_opensearch_documents_superseded_total{family=\"order-metrics\"}"
        ),
        Some((METRICS * 2 + METRICS / 2) as f64),
        "every metric of the replay is superseded by the stored revision 2"
    );
}
