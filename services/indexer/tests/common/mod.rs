//! Shared by the indexer's integration tests: unique streams, lease table and index names
//! per test, deterministic orders and metrics built with the model types, the Kinesis
//! producer library to put them, and a small OpenSearch reader.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use flowline_kinesis::producer::{Producer, ProducerConfig, ProducerMetrics, Record};
use flowline_model::{
    DeadLetter, Dimension, DiscountPct, EnrichedOrder, GeoPoint, JoinStatus, Money, Timestamp,
    WindowMetric, metric_id, order_amounts,
};
use flowline_testkit::{
    ServiceProcess, Stack, StreamRecord, create_stream, read_stream, unique_name,
};
use serde_json::{Value, json};

/// Orders start 30 minutes before a UTC midnight, so they span two daily indices.
pub const START_MS: i64 = 1_767_223_800_000; // 2025-12-31T23:30:00Z

pub struct Setup {
    pub stack: Stack,
    pub orders_stream: String,
    pub metrics_stream: String,
    pub dead_letters: String,
    pub orders_index: String,
    pub metrics_index: String,
    pub http: reqwest::Client,
}

impl Setup {
    pub async fn new() -> Setup {
        let stack = Stack::start().await;
        let aws = stack.aws_clients().await;
        let base = unique_name("ix");
        let s = Setup {
            orders_stream: format!("{base}-orders-enriched"),
            metrics_stream: format!("{base}-order-metrics"),
            dead_letters: format!("{base}-dead-letters"),
            // Not under `orders-*` / `order-metrics-*`, the shared templates' patterns.
            orders_index: format!("{base}-orders"),
            metrics_index: format!("{base}-metrics"),
            stack,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        };
        create_stream(&aws.kinesis, &s.orders_stream, 2)
            .await
            .unwrap();
        create_stream(&aws.kinesis, &s.metrics_stream, 1)
            .await
            .unwrap();
        create_stream(&aws.kinesis, &s.dead_letters, 1)
            .await
            .unwrap();
        s
    }

    /// Environment for an indexer reading this test's streams with lease application `app`.
    pub fn env(&self, app: &str) -> Vec<(String, String)> {
        [
            ("INDEXER_CONSUMER__APPLICATION_NAME", app.to_string()),
            ("INDEXER_CONSUMER__TAKE_INTERVAL", "1s".into()),
            (
                "INDEXER_CONSUMER__POLLING__IDLE_TIME_BETWEEN_READS",
                "200ms".into(),
            ),
            ("INDEXER_INPUT__ORDERS", self.orders_stream.clone()),
            ("INDEXER_INPUT__METRICS", self.metrics_stream.clone()),
            ("INDEXER_DEAD_LETTERS__STREAM", self.dead_letters.clone()),
            ("INDEXER_INDICES__ORDERS", self.orders_index.clone()),
            ("INDEXER_INDICES__ORDER_METRICS", self.metrics_index.clone()),
            ("INDEXER_TEMPLATES__REPLICAS", "0".into()),
            ("INDEXER_BULK__FLUSH_INTERVAL", "200ms".into()),
            ("INDEXER_KINESIS__LINGER", "50ms".into()),
            ("INDEXER_SHUTDOWN__DRAIN_TIMEOUT", "20s".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    pub async fn spawn(&self, env: &[(String, String)]) -> ServiceProcess {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut svc = ServiceProcess::spawn(
            env!("CARGO_BIN_EXE_indexer"),
            "indexer",
            &self.stack,
            &env,
            &[],
        )
        .unwrap();
        if let Err(e) = svc.wait_ready(Duration::from_secs(60)).await {
            panic!("indexer not ready: {e:#}\n{}", svc.logs());
        }
        svc
    }

    pub async fn put(&self, stream: &str, records: Vec<(String, Vec<u8>)>) {
        let aws = self.stack.aws_clients().await;
        let config = ProducerConfig {
            linger: Duration::from_millis(20),
            ..ProducerConfig::default()
        };
        let producer = Producer::new(
            &aws.kinesis,
            stream,
            config,
            &ProducerMetrics::unregistered(),
        )
        .await
        .unwrap();
        let acks = producer
            .send_all(records.into_iter().map(|(k, d)| Record::new(k, d)))
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(60), acks)
            .await
            .expect("records acknowledged in time")
            .unwrap();
        producer.shutdown().await.unwrap();
    }

    pub async fn dead_letters(&self) -> Vec<DeadLetter> {
        let aws = self.stack.aws_clients().await;
        let records: Vec<StreamRecord> =
            read_stream(&aws.kinesis, &self.dead_letters).await.unwrap();
        records
            .iter()
            .map(|r| serde_json::from_slice(&r.data).unwrap())
            .collect()
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let url = format!("{}/{path}", self.stack.opensearch_url());
        let r = self.http.get(&url).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Documents matching the index pattern or alias `target` (0 when it does not exist).
    pub async fn count(&self, target: &str) -> u64 {
        let (status, v) = self.get(&format!("{target}/_count")).await;
        if status == 404 {
            return 0;
        }
        assert_eq!(status, 200, "{target}/_count: {v}");
        v["count"].as_u64().unwrap()
    }

    /// Every document under `target`, `_id` → (`_index`, `_source`).
    pub async fn all_docs(
        &self,
        target: &str,
    ) -> std::collections::BTreeMap<String, (String, Value)> {
        let url = format!("{}/{target}/_search", self.stack.opensearch_url());
        let body = json!({"size": 10000, "query": {"match_all": {}}});
        let r = self.http.post(&url).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "search {target}: {}", r.status());
        let v: Value = r.json().await.unwrap();
        v["hits"]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["_id"].as_str().unwrap().to_string(),
                    (
                        h["_index"].as_str().unwrap().to_string(),
                        h["_source"].clone(),
                    ),
                )
            })
            .collect()
    }
}

/// Polls `check` until it is true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A sample value of a Prometheus metric line starting with `prefix` (name and labels).
pub fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .reduce(|a, b| a + b)
}

pub fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms).unwrap()
}

/// Order `n`: one every 2 s from [`START_MS`], amounts computed by the model.
pub fn order(n: u64) -> EnrichedOrder {
    let quantity = (n % 5) as u32 + 1;
    let unit_price = Money::from_cents(199 + (n as i64 % 50) * 10).unwrap();
    let discount = DiscountPct::from_percent((n % 3) as u32 * 5).unwrap();
    let amounts = order_amounts(quantity, unit_price, discount).unwrap();
    let event_time = ts(START_MS + n as i64 * 2_000);
    EnrichedOrder {
        order_id: format!("s-{n:06}"),
        event_time,
        customer_id: format!("c-{}", n % 97),
        customer_segment: Some("retail".into()),
        email_sha256: Some(flowline_model::email_sha256(&format!("c{n}@example.com"))),
        address_id: Some(format!("a-{}", n % 97)),
        city: Some("Springfield".into()),
        state: Some(["IL", "MA", "OR"][n as usize % 3].into()),
        postcode: Some("62701".into()),
        country: Some("US".into()),
        location: Some(GeoPoint::rounded(39.7817, -89.6501)),
        item_id: format!("i-{}", n % 20),
        item_name: Some("Mug".into()),
        category: Some(["kitchen", "garden"][n as usize % 2].into()),
        brand: Some("Acme".into()),
        promo_id: (!n.is_multiple_of(3)).then(|| format!("p-{}", n % 20)),
        discount_pct: discount,
        quantity,
        unit_price,
        gross_amount: amounts.gross,
        discount_amount: amounts.discount,
        net_amount: amounts.net,
        join_status: JoinStatus::Complete,
        missing: vec![],
        enriched_at: ts(START_MS + n as i64 * 2_000 + 1_500),
    }
}

/// Metric `n` at `revision`: window `n` (1 minute each from [`START_MS`]), dimension `all`.
pub fn metric_doc(n: u64, revision: u32) -> WindowMetric {
    let start = ts(START_MS + n as i64 * 60_000);
    let end = ts(START_MS + (n as i64 + 1) * 60_000);
    let orders = 10 + u64::from(revision);
    let net = Money::from_cents(1_000 * orders as i64).unwrap();
    WindowMetric {
        id: metric_id(start, end, Dimension::All, "all"),
        window_start: start,
        window_end: end,
        dimension: Dimension::All,
        key: "all".into(),
        orders,
        units: orders * 2,
        gross_amount: net,
        net_amount: net,
        avg_order_value: flowline_model::average(net, orders).unwrap(),
        distinct_customers: orders,
        revision,
    }
}

pub fn order_record(o: &EnrichedOrder) -> (String, Vec<u8>) {
    (o.order_id.clone(), serde_json::to_vec(o).unwrap())
}

pub fn metric_record(m: &WindowMetric) -> (String, Vec<u8>) {
    (m.id.clone(), serde_json::to_vec(m).unwrap())
}

/// `<base>-YYYY.MM.DD` of a timestamp.
pub fn daily(base: &str, t: Timestamp) -> String {
    format!("{base}-{}", t.to_datetime().format("%Y.%m.%d"))
}
