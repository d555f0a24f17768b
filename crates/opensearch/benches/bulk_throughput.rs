//! Documents per second into a local OpenSearch through the bulk sink, against the server's
//! ceiling: a minimal loop sending the same documents in batches of the same size with the
//! same concurrency and no bookkeeping. Target: the sink reaches at least 90% of it.
//!
//! It also prints the sink's own ceiling, into a transport that answers at once, to show
//! how much headroom the sink has over the server.
//!
//! `cargo bench -p flowline-opensearch --bench bulk_throughput`; `OPENSEARCH_URL` (default
//! http://127.0.0.1:9200, loopback only), `BULK_BENCH_DOCS` (default 100000) and
//! `BULK_BENCH_ROUNDS` (default 2; the best round counts) adjust it. Each run writes to its
//! own indices and deletes them afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use flowline_opensearch::bulk::{
    BulkApi, BulkConfig, BulkDoc, BulkItem, BulkMetrics, BulkResponse, BulkSink, Delivery,
    IndexNames, OpenSearchBulkApi, TransportError,
};
use flowline_opensearch::opensearch::OpenSearch;
use flowline_opensearch::opensearch::indices::IndicesDeleteParts;
use flowline_opensearch::{OpenSearchSettings, build_client, templates};
use serde_json::json;

/// Answers every bulk request at once with one success per action.
struct InstantApi;

#[async_trait::async_trait]
impl BulkApi for InstantApi {
    async fn bulk(&self, body: Bytes) -> Result<BulkResponse, TransportError> {
        let actions = body.iter().filter(|b| **b == b'\n').count() / 2;
        Ok(BulkResponse {
            errors: false,
            items: vec![BulkItem::ok(201); actions],
        })
    }
}

#[tokio::main]
async fn main() {
    let url = std::env::var("OPENSEARCH_URL").unwrap_or_else(|_| "http://127.0.0.1:9200".into());
    assert!(
        url.starts_with("http://127.0.0.1") || url.starts_with("http://localhost"),
        "the benchmark only loads a loopback OpenSearch, not {url}"
    );
    let n: usize = std::env::var("BULK_BENCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rounds: usize = std::env::var("BULK_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let settings = OpenSearchSettings {
        url: url.clone(),
        ..OpenSearchSettings::default()
    };
    let client = build_client(&settings).expect("client");
    let config = BulkConfig::default();
    let prefix = format!("bench-{}", std::process::id());
    register_template(&client, &prefix).await;

    println!(
        "bulk_throughput: {n} documents, batches of {}, {} in flight, {url}",
        config.max_actions, config.max_in_flight
    );
    let docs = make_docs(&IndexNames::default(), n);
    let rate = through_sink(Arc::new(InstantApi), docs, &config).await;
    println!("  sink into an instant transport {rate:>9.0} docs/s (the sink's own ceiling)");

    let (mut best_loop, mut best_sink) = (0f64, 0f64);
    for round in 0..rounds {
        let names = IndexNames {
            orders: format!("{prefix}-orders-loop{round}"),
            ..IndexNames::default()
        };
        let docs = make_docs(&names, n);
        let rate = minimal_loop(&client, &docs, &config).await;
        delete(&client, &format!("{}-*", names.orders)).await;
        best_loop = best_loop.max(rate);
        println!("  round {round}: minimal bulk loop {rate:>9.0} docs/s");

        let names = IndexNames {
            orders: format!("{prefix}-orders-sink{round}"),
            ..IndexNames::default()
        };
        let docs = make_docs(&names, n);
        let api = Arc::new(OpenSearchBulkApi::new(client.clone(), None));
        let rate = through_sink(api, docs, &config).await;
        delete(&client, &format!("{}-*", names.orders)).await;
        best_sink = best_sink.max(rate);
        println!("  round {round}: bulk sink         {rate:>9.0} docs/s");
    }
    delete_template(&client, &prefix).await;
    let ratio = best_sink / best_loop;
    println!(
        "best: minimal loop {best_loop:.0} docs/s, sink {best_sink:.0} docs/s = {:.1}% of the ceiling (target >= 90%): {}",
        ratio * 100.0,
        if ratio >= 0.9 { "PASS" } else { "BELOW TARGET" }
    );
}

/// Orders shaped like the indexer's, pre-serialised, over three days.
fn make_docs(names: &IndexNames, n: usize) -> Vec<BulkDoc> {
    (0..n)
        .map(|i| {
            let day = 20 + i % 3;
            let event_time = format!("2026-11-{day}T10:{:02}:{:02}.000Z", i / 60 % 60, i % 60);
            let order_id = format!("sale-{i:08}");
            let body = json!({
                "order_id": order_id, "event_time": event_time,
                "customer_id": format!("c-{}", i % 5000), "customer_segment": "retail",
                "email_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "address_id": format!("a-{}", i % 7000), "city": "Springfield", "state": "IL",
                "postcode": "62701", "country": "US", "location": {"lat": 39.78, "lon": -89.65},
                "item_id": format!("i-{}", i % 300), "item_name": "Widget", "category": "tools",
                "brand": "Acme", "promo_id": null, "discount_pct": 0, "quantity": 2,
                "unit_price": 9.99, "gross_amount": 19.98, "discount_amount": 0.0,
                "net_amount": 19.98, "join_status": "complete", "missing": [],
                "enriched_at": event_time, "indexed_at": event_time,
            });
            let at = event_time.parse().expect("valid time");
            let raw = Bytes::from(serde_json::to_vec(&body).expect("serialises"));
            BulkDoc::order(names, &order_id, at, raw)
        })
        .collect()
}

/// The ceiling: batches sent back to back, `max_in_flight` at a time, errors only counted.
async fn minimal_loop(client: &OpenSearch, docs: &[BulkDoc], config: &BulkConfig) -> f64 {
    let api = Arc::new(OpenSearchBulkApi::new(client.clone(), None));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut failed = 0;
    for chunk in docs.chunks(config.max_actions) {
        let mut body = BytesMut::new();
        for d in chunk {
            let meta = json!({"index": {"_index": d.index, "_id": d.id}});
            body.extend_from_slice(meta.to_string().as_bytes());
            body.extend_from_slice(b"\n");
            let flowline_opensearch::bulk::DocBody::Raw(raw) = &d.body else {
                unreachable!("make_docs builds raw bodies")
            };
            body.extend_from_slice(raw);
            body.extend_from_slice(b"\n");
        }
        if tasks.len() >= config.max_in_flight {
            failed += tasks.join_next().await.expect("a task").expect("joins");
        }
        let api = api.clone();
        let body = body.freeze();
        tasks.spawn(async move {
            let r = api.bulk(body).await.expect("bulk request");
            r.items
                .iter()
                .filter(|i| !(200..300).contains(&i.index.status))
                .count()
        });
    }
    while let Some(r) = tasks.join_next().await {
        failed += r.expect("joins");
    }
    assert_eq!(failed, 0, "the minimal loop had failed items");
    docs.len() as f64 / started.elapsed().as_secs_f64()
}

async fn through_sink(api: Arc<dyn BulkApi>, docs: Vec<BulkDoc>, config: &BulkConfig) -> f64 {
    let n = docs.len();
    let started = Instant::now();
    let sink = BulkSink::start(api, config.clone(), BulkMetrics::unregistered()).expect("sink");
    let mut acks = Vec::with_capacity(n);
    for d in docs {
        acks.push(sink.enqueue(d).await.expect("enqueue"));
    }
    sink.flush();
    for a in acks {
        assert_eq!(a.await.expect("settled"), Delivery::Indexed);
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    tokio::time::timeout(Duration::from_secs(10), sink.close())
        .await
        .expect("close");
    rate
}

async fn register_template(client: &OpenSearch, prefix: &str) {
    let mut t = templates::all(1, 0).remove(0);
    t.body["index_patterns"] = json!([format!("{prefix}-orders-*")]);
    t.body["template"]["aliases"] = json!({});
    t.body["priority"] = json!(500);
    let name = format!("{prefix}-orders");
    let response = client
        .indices()
        .put_index_template(
            flowline_opensearch::opensearch::indices::IndicesPutIndexTemplateParts::Name(&name),
        )
        .body(t.body)
        .send()
        .await
        .expect("template request");
    assert!(response.status_code().is_success(), "template registered");
}

async fn delete_template(client: &OpenSearch, prefix: &str) {
    let name = format!("{prefix}-orders");
    let _ = client
        .indices()
        .delete_index_template(
            flowline_opensearch::opensearch::indices::IndicesDeleteIndexTemplateParts::Name(&name),
        )
        .send()
        .await;
}

async fn delete(client: &OpenSearch, pattern: &str) {
    let _ = client
        .indices()
        .delete(IndicesDeleteParts::Index(&[pattern]))
        .send()
        .await;
}
