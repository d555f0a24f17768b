//! The bulk sink against the local OpenSearch (osmem): exactly-once indexing under `_id`,
//! idempotent re-sends, external versions for metric revisions, strict-mapping rejections,
//! and an outage through a fault-injecting proxy.
//!
//! Every test writes to indices under its own prefix (`<unique>-orders-YYYY.MM.DD`), with
//! copies of the real templates registered for that prefix, and deletes them at the end.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use flowline_opensearch::bulk::{
    Ack, BulkConfig, BulkDoc, BulkMetrics, BulkSink, Delivery, FailureKind, IndexNames,
    OpenSearchBulkApi,
};
use flowline_opensearch::opensearch::OpenSearch;
use flowline_opensearch::opensearch::http::Method;
use flowline_opensearch::opensearch::http::headers::HeaderMap;
use flowline_opensearch::{OpenSearchSettings, build_client, templates};
use flowline_testkit::fault_proxy::{FaultPolicy, FaultProxy};
use flowline_testkit::{Stack, unique_name};
use serde_json::{Value, json};

struct Env {
    _stack: Stack,
    url: String,
    client: OpenSearch,
    prefix: String,
    names: IndexNames,
}

impl Env {
    async fn new(label: &str) -> Env {
        let stack = Stack::start().await;
        let url = stack.opensearch_url();
        let prefix = unique_name(label);
        let env = Env {
            client: client(&url),
            url,
            names: IndexNames {
                orders: format!("{prefix}-orders"),
                order_metrics: format!("{prefix}-order-metrics"),
            },
            prefix,
            _stack: stack,
        };
        // The real templates, retargeted at this test's prefix (aliases included).
        for t in templates::all(1, 0) {
            let base = format!("{}-{}", env.prefix, t.name);
            let mut body = t.body.clone();
            body["index_patterns"] = json!([format!("{base}-*")]);
            body["template"]["aliases"] = json!({ base.clone(): {} });
            let (status, text) = env
                .call(Method::Put, &format!("/_index_template/{base}"), Some(body))
                .await;
            assert_eq!(status, 200, "template {base}: {text}");
        }
        env
    }

    fn sink_to(&self, url: &str, config: BulkConfig) -> BulkSink {
        let api = Arc::new(OpenSearchBulkApi::new(client(url), None));
        BulkSink::start(api, config, BulkMetrics::unregistered()).expect("valid config")
    }

    fn sink(&self, config: BulkConfig) -> BulkSink {
        self.sink_to(&self.url, config)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, String) {
        let body = body.map(|b| b.to_string());
        let response = self
            .client
            .send(method, path, HeaderMap::new(), None::<&()>, body, None)
            .await
            .expect("OpenSearch answers");
        let status = response.status_code().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    async fn json(&self, path: &str) -> Value {
        let (status, text) = self.call(Method::Get, path, None).await;
        assert_eq!(status, 200, "GET {path}: {text}");
        serde_json::from_str(&text).expect("JSON answer")
    }

    async fn count(&self, target: &str) -> u64 {
        self.json(&format!("/{target}/_count")).await["count"]
            .as_u64()
            .expect("count")
    }

    /// Every document under `target`: id -> (_version, _source).
    async fn all_docs(&self, target: &str) -> HashMap<String, (u64, Value)> {
        let path = format!(
            "/{target}/_search?size=10000&version=true\
             &filter_path=hits.hits._id,hits.hits._version,hits.hits._source"
        );
        let v = self.json(&path).await;
        v["hits"]["hits"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|h| {
                let id = h["_id"].as_str().expect("_id").to_owned();
                (
                    id,
                    (
                        h["_version"].as_u64().expect("_version"),
                        h["_source"].clone(),
                    ),
                )
            })
            .collect()
    }

    async fn cleanup(&self) {
        self.call(Method::Delete, &format!("/{}-*", self.prefix), None)
            .await;
        for t in ["orders", "order-metrics"] {
            let path = format!("/_index_template/{}-{t}", self.prefix);
            self.call(Method::Delete, &path, None).await;
        }
    }
}

fn client(url: &str) -> OpenSearch {
    build_client(&OpenSearchSettings {
        url: url.to_owned(),
        request_timeout: Duration::from_secs(10),
        ..OpenSearchSettings::default()
    })
    .expect("client")
}

fn order(i: usize) -> Value {
    let event_time = format!(
        "2026-11-{}T12:{:02}:{:02}.000Z",
        20 + i % 3,
        i / 60 % 60,
        i % 60
    );
    json!({
        "order_id": format!("sale-{i:06}"), "event_time": event_time,
        "customer_id": format!("c-{}", i % 97), "customer_segment": "retail",
        "city": "Springfield", "state": "IL", "country": "US",
        "location": {"lat": 39.78, "lon": -89.65}, "item_id": format!("i-{}", i % 13),
        "category": "tools", "quantity": 1 + i % 5, "unit_price": 9.99,
        "gross_amount": 9.99, "discount_amount": 0.0, "net_amount": 9.99,
        "join_status": "complete", "missing": [], "enriched_at": event_time,
        "indexed_at": event_time,
    })
}

fn metric(revision: u64, orders: u64) -> Value {
    json!({
        "id": "all:all:2026-11-21T10:00:00Z", "window_start": "2026-11-21T10:00:00.000Z",
        "window_end": "2026-11-21T10:01:00.000Z", "dimension": "all", "key": "all",
        "orders": orders, "units": orders, "gross_amount": 1.0, "net_amount": 1.0,
        "avg_order_value": 1.0, "distinct_customers": 1, "revision": revision,
    })
}

async fn enqueue_orders(
    sink: &BulkSink,
    names: &IndexNames,
    range: std::ops::Range<usize>,
) -> Vec<Ack> {
    let mut acks = Vec::new();
    for i in range {
        let doc = BulkDoc::order_from_json(names, order(i)).expect("valid order");
        acks.push(sink.enqueue(doc).await.expect("accepted"));
    }
    acks
}

async fn all_indexed(acks: Vec<Ack>) {
    for a in acks {
        assert_eq!(a.await.expect("settled"), Delivery::Indexed);
    }
}

#[tokio::test]
async fn indexes_each_document_once_and_resending_changes_nothing() {
    let env = Env::new("bulk-once").await;
    let n = 3000;
    let sink = env.sink(BulkConfig::default());
    let acks = enqueue_orders(&sink, &env.names, 0..n).await;
    all_indexed(acks).await;

    let alias = &env.names.orders;
    assert_eq!(
        env.count(alias).await,
        n as u64,
        "counted through the alias"
    );
    let day = env.count(&format!("{alias}-2026.11.21")).await;
    assert_eq!(day, (n / 3) as u64, "one daily index per event_time day");
    let first = env.all_docs(alias).await;
    assert_eq!(first.len(), n);
    for i in 0..n {
        let (version, source) = &first[&format!("sale-{i:06}")];
        assert_eq!(*version, 1, "written exactly once");
        assert_eq!(*source, order(i));
    }

    let acks = enqueue_orders(&sink, &env.names, 0..n).await;
    all_indexed(acks).await;
    sink.close().await;
    assert_eq!(env.count(alias).await, n as u64, "re-sending adds nothing");
    let second = env.all_docs(alias).await;
    for (id, (_, source)) in &first {
        assert_eq!(&second[id].1, source, "document {id} unchanged");
    }
    env.cleanup().await;
}

#[tokio::test]
async fn a_stale_revision_never_overwrites_a_newer_one() {
    let env = Env::new("bulk-rev").await;
    let sink = env.sink(BulkConfig::default());
    let send = |revision: u64, orders: u64| {
        let doc = BulkDoc::metric_from_json(&env.names, metric(revision, orders)).unwrap();
        sink.send(doc)
    };
    assert_eq!(send(3, 30).await.unwrap(), Delivery::Indexed);
    assert_eq!(send(2, 20).await.unwrap(), Delivery::Superseded);
    assert_eq!(send(3, 99).await.unwrap(), Delivery::Superseded);
    let index = format!("{}-2026.11.21", env.names.order_metrics);
    let path = format!("/{index}/_doc/all:all:2026-11-21T10:00:00Z");
    let stored = env.json(&path).await;
    assert_eq!(
        (
            stored["_source"]["revision"].as_u64(),
            stored["_version"].as_u64()
        ),
        (Some(3), Some(3))
    );
    assert_eq!(stored["_source"]["orders"], 30);

    // Revisions arriving out of order in one burst: the highest wins.
    let mut acks = Vec::new();
    for revision in [7, 5, 9, 4, 8, 6] {
        let doc = BulkDoc::metric_from_json(&env.names, metric(revision, revision * 10)).unwrap();
        acks.push(sink.enqueue(doc).await.unwrap());
    }
    for a in acks {
        assert!(matches!(
            a.await.unwrap(),
            Delivery::Indexed | Delivery::Superseded
        ));
    }
    sink.close().await;
    let stored = env.json(&path).await;
    assert_eq!(stored["_source"]["revision"], 9);
    assert_eq!(stored["_source"]["orders"], 90);
    assert_eq!(env.count(&env.names.order_metrics).await, 1);
    env.cleanup().await;
}

#[tokio::test]
async fn documents_violating_the_strict_mapping_come_back_rejected() {
    let env = Env::new("bulk-map").await;
    let sink = env.sink(BulkConfig::default());
    let mut unknown_field = order(1);
    unknown_field["street"] = json!("742 Evergreen Terrace");
    let mut wrong_type = order(2);
    wrong_type["quantity"] = json!("many");
    let mut acks = Vec::new();
    for body in [order(0), unknown_field, wrong_type] {
        let doc = BulkDoc::order_from_json(&env.names, body).unwrap();
        acks.push(sink.enqueue(doc).await.unwrap());
    }
    let mut results = Vec::new();
    for a in acks {
        results.push(a.await.unwrap());
    }
    sink.close().await;
    assert_eq!(results[0], Delivery::Indexed);
    let Delivery::Rejected(r) = &results[1] else {
        panic!("unknown field accepted: {:?}", results[1]);
    };
    assert_eq!(
        (r.status, r.error_type.as_str(), r.kind),
        (
            400,
            "strict_dynamic_mapping_exception",
            FailureKind::Mapping
        )
    );
    assert!(r.reason.contains("street"), "{}", r.reason);
    let Delivery::Rejected(r) = &results[2] else {
        panic!("wrong type accepted: {:?}", results[2]);
    };
    assert_eq!(
        (r.status, r.error_type.as_str()),
        (400, "mapper_parsing_exception")
    );
    assert!(r.reason.contains("quantity"), "{}", r.reason);
    assert_eq!(env.count(&env.names.orders).await, 1);
    env.cleanup().await;
}

#[tokio::test]
async fn an_outage_loses_nothing_writes_nothing_twice_and_keeps_the_buffer_bounded() {
    let env = Env::new("bulk-outage").await;
    // Down: every request's connection is dropped before it reaches OpenSearch.
    let down = FaultPolicy {
        drop_connection: 1.0,
        ..FaultPolicy::default()
    };
    let proxy = FaultProxy::start(&env.url, down).await.expect("proxy");
    let bound = 200;
    let sink = env.sink_to(
        &proxy.url(),
        BulkConfig {
            max_actions: 50,
            max_buffered_docs: bound,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            ..BulkConfig::default()
        },
    );
    let n = 2000;
    let accepted = Arc::new(AtomicUsize::new(0));
    let producer = {
        let (sink, names, accepted) = (sink.clone(), env.names.clone(), accepted.clone());
        tokio::spawn(async move {
            let mut acks = Vec::new();
            for i in 0..n {
                let doc = BulkDoc::order_from_json(&names, order(i)).unwrap();
                acks.push(sink.enqueue(doc).await.unwrap());
                accepted.fetch_add(1, Ordering::SeqCst);
            }
            acks
        })
    };
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(sink.buffered() <= bound, "buffered {}", sink.buffered());
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        bound,
        "send waits while down"
    );
    assert_eq!(env.count(&format!("{}-*", env.names.orders)).await, 0);
    assert!(
        proxy.stats().dropped > 1,
        "retried while down: {:?}",
        proxy.stats()
    );

    // Back, but flaky: some 5xx answers and dropped connections, none forwarded.
    proxy.set_policy(FaultPolicy {
        seed: 7,
        server_error: 0.2,
        drop_connection: 0.1,
        max_faults: proxy.stats().dropped + 15,
        ..FaultPolicy::default()
    });
    let acks = tokio::time::timeout(Duration::from_secs(120), producer)
        .await
        .expect("the producer finishes once OpenSearch is back")
        .unwrap();
    all_indexed(acks).await;
    sink.close().await;
    let stats = proxy.stats();
    assert!(stats.server_errors + stats.dropped > 0, "{stats:?}");

    let docs = env.all_docs(&env.names.orders).await;
    assert_eq!(docs.len(), n, "nothing lost");
    assert!(
        docs.values().all(|(version, _)| *version == 1),
        "nothing written twice"
    );
    env.cleanup().await;
}

/// Forwards every connection on `listener` to `upstream` byte for byte, until dropped.
async fn forward(listener: tokio::net::TcpListener, upstream: String) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((mut inbound, _)) = accepted else { continue };
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

#[tokio::test]
async fn connection_refused_until_opensearch_listens_loses_nothing() {
    let env = Env::new("bulk-refused").await;
    // Nothing listens on this port yet: every request is refused.
    let port = flowline_testkit::free_port();
    let bound = 100;
    let sink = env.sink_to(
        &format!("http://127.0.0.1:{port}"),
        BulkConfig {
            max_actions: 25,
            max_buffered_docs: bound,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            ..BulkConfig::default()
        },
    );
    let n = 300;
    let accepted = Arc::new(AtomicUsize::new(0));
    let producer = {
        let (sink, names, accepted) = (sink.clone(), env.names.clone(), accepted.clone());
        tokio::spawn(async move {
            let mut acks = Vec::new();
            for i in 0..n {
                let doc = BulkDoc::order_from_json(&names, order(i)).unwrap();
                acks.push(sink.enqueue(doc).await.unwrap());
                accepted.fetch_add(1, Ordering::SeqCst);
            }
            acks
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        bound,
        "send waits while refused"
    );
    assert!(sink.buffered() <= bound);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the free port is still free");
    let upstream = env.url.trim_start_matches("http://").to_owned();
    // Aborted when dropped, also when an assertion below fails.
    let forwarder =
        tokio_util::task::AbortOnDropHandle::new(tokio::spawn(forward(listener, upstream)));
    let acks = tokio::time::timeout(Duration::from_secs(60), producer)
        .await
        .expect("the producer finishes once OpenSearch listens")
        .unwrap();
    all_indexed(acks).await;
    sink.close().await;
    drop(forwarder);

    let docs = env.all_docs(&env.names.orders).await;
    assert_eq!(docs.len(), n, "nothing lost");
    assert!(
        docs.values().all(|(version, _)| *version == 1),
        "nothing written twice"
    );
    env.cleanup().await;
}
