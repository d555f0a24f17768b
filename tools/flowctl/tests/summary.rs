//! `flowctl summary` computes its figures from what a run left behind: S3 objects (rows
//! counted from gzip JSON Lines and Parquet), OpenSearch aggregations scoped by `--since`,
//! and the services' metrics (events per stream, dead letters, latency quantiles).

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use flowline_lake::encode::JsonLinesGz;
use flowline_testkit::{Stack, create_bucket, unique_name};
use parquet::arrow::ArrowWriter;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
// Async, so the fake metrics servers keep answering while flowctl runs.
use tokio::process::Command;

fn gz_lines(n: usize) -> Vec<u8> {
    let mut w = JsonLinesGz::new(6, 1024);
    for i in 0..n {
        w.push(format!("{{\"n\":{i}}}").as_bytes()).unwrap();
    }
    w.finish().unwrap().to_vec()
}

fn parquet_rows(n: i64) -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    let column: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
    let batch = RecordBatch::try_new(schema.clone(), vec![column]).unwrap();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    out
}

/// Serves one fixed `/metrics` text on a free port; the task ends with the test.
async fn metrics_server(text: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}

const ARCHIVER: &str = r#"# TYPE flowline_kinesis_consumer_records_read_total counter
flowline_kinesis_consumer_records_read_total{stream="sales"} 1200
flowline_kinesis_consumer_records_read_total{stream="customers"} 300
flowline_kinesis_consumer_records_read_total{stream="dead-letters"} 4
flowline_archiver_records_rejected_total{error_type="conversion"} 0
flowline_archiver_records_rejected_total{error_type="unframeable"} 1
"#;

const JOINER: &str = r#"flowline_dead_letters_total{stage="enrichment-joiner",error_type="bad_json"} 2
flowline_dead_letters_total{stage="enrichment-joiner",error_type="missing_field"} 1
flowline_dead_letters_total{stage="enrichment-joiner",error_type="late"} 0
"#;

// Orders: 100 observations, 50 within 0.5 s, 90 within 1 s, all within 2 s, so
// p50 = 0.5 s, p95 = 1 + (95 - 90) / 10 = 1.5 s, p99 = 1.9 s (linear in the bucket).
// The indexer splits them by join status (90 complete, 10 partial); the summary adds up.
const INDEXER: &str = r#"# TYPE flowline_indexer_end_to_end_latency_seconds histogram
flowline_indexer_end_to_end_latency_seconds_bucket{family="orders",join_status="complete",le="0.5"} 50
flowline_indexer_end_to_end_latency_seconds_bucket{family="orders",join_status="complete",le="1"} 85
flowline_indexer_end_to_end_latency_seconds_bucket{family="orders",join_status="complete",le="2"} 90
flowline_indexer_end_to_end_latency_seconds_bucket{family="orders",join_status="complete",le="+Inf"} 90
flowline_indexer_end_to_end_latency_seconds_sum{family="orders",join_status="complete"} 55
flowline_indexer_end_to_end_latency_seconds_count{family="orders",join_status="complete"} 90
flowline_indexer_end_to_end_latency_seconds_bucket{family="orders",join_status="partial",le="0.5"} 0
flowline_indexer_end_to_end_latency_seconds_bucket{family="orders",join_status="partial",le="1"} 5
flowline_indexer_end_to_end_latency_seconds_bucket{family="orders",join_status="partial",le="2"} 10
flowline_indexer_end_to_end_latency_seconds_bucket{family="orders",join_status="partial",le="+Inf"} 10
flowline_indexer_end_to_end_latency_seconds_sum{family="orders",join_status="partial"} 15
flowline_indexer_end_to_end_latency_seconds_count{family="orders",join_status="partial"} 10
flowline_dead_letters_total{stage="indexer",error_type="bad_json"} 1
"#;

async fn put(stack: &Stack, bucket: &str, key: &str, body: Vec<u8>) {
    stack
        .aws_clients()
        .await
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .unwrap();
}

async fn opensearch(http: &reqwest::Client, method: reqwest::Method, url: String, body: String) {
    let r = http
        .request(method, &url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "{url}: {status} {text}");
    assert!(!text.contains("\"errors\":true"), "{url}: {text}");
}

#[tokio::test]
async fn summary_counts_what_the_run_left_behind() {
    let stack = Stack::start().await;
    let aws = stack.aws_clients().await;
    let name = unique_name("summary");
    let bucket = name.clone();
    create_bucket(&aws.s3, &bucket).await.unwrap();
    let p = "dt=2026-11-22/hour=00";
    put(
        &stack,
        &bucket,
        &format!("raw/sales/{p}/a.jsonl.gz"),
        gz_lines(3),
    )
    .await;
    put(
        &stack,
        &bucket,
        &format!("raw/sales/{p}/b.jsonl.gz"),
        gz_lines(4),
    )
    .await;
    put(
        &stack,
        &bucket,
        &format!("raw/customers/{p}/c.jsonl.gz"),
        gz_lines(2),
    )
    .await;
    put(
        &stack,
        &bucket,
        &format!("curated/orders/{p}/o.parquet"),
        parquet_rows(5),
    )
    .await;
    put(
        &stack,
        &bucket,
        &format!("curated/order_metrics/{p}/m.parquet"),
        parquet_rows(2),
    )
    .await;
    put(
        &stack,
        &bucket,
        "errors/enrichment-joiner/bad_json/dt=2026-11-22/e.jsonl.gz",
        gz_lines(2),
    )
    .await;
    put(
        &stack,
        &bucket,
        "errors/archiver/unframeable/dt=2026-11-22/u.jsonl.gz",
        gz_lines(1),
    )
    .await;
    // Outside the layout: not counted.
    put(
        &stack,
        &bucket,
        "reference/raw/items/items.csv",
        b"item_id\n".to_vec(),
    )
    .await;

    let os = stack.opensearch_url();
    let http = reqwest::Client::new();
    let orders = format!("{name}-orders");
    let metrics = format!("{name}-metrics");
    opensearch(
        &http,
        reqwest::Method::PUT,
        format!("{os}/{orders}"),
        json!({"mappings": {"properties": {
            "event_time": {"type": "date"},
            "join_status": {"type": "keyword"},
            "category": {"type": "keyword"},
            "net_amount": {"type": "scaled_float", "scaling_factor": 100}
        }}})
        .to_string(),
    )
    .await;
    opensearch(
        &http,
        reqwest::Method::PUT,
        format!("{os}/{metrics}"),
        json!({"mappings": {"properties": {
            "window_end": {"type": "date"},
            "dimension": {"type": "keyword"}
        }}})
        .to_string(),
    )
    .await;
    let docs = [
        // Before --since: another run's order, not counted.
        ("o0", "2026-11-21T23:59:59.000Z", "complete", "toys", 1000.0),
        ("o1", "2026-11-22T00:00:01.000Z", "complete", "books", 10.0),
        ("o2", "2026-11-22T00:00:02.000Z", "complete", "books", 15.5),
        ("o3", "2026-11-22T00:00:03.000Z", "partial", "garden", 40.25),
        ("o4", "2026-11-22T00:00:04.000Z", "complete", "toys", 5.0),
    ];
    let mut bulk = String::new();
    for (id, t, status, category, net) in docs {
        bulk.push_str(&format!("{}\n", json!({"index": {"_id": id}})));
        bulk.push_str(&format!(
            "{}\n",
            json!({"event_time": t, "join_status": status, "category": category, "net_amount": net})
        ));
    }
    opensearch(
        &http,
        reqwest::Method::POST,
        format!("{os}/{orders}/_bulk?refresh=true"),
        bulk,
    )
    .await;
    let mut bulk = String::new();
    for (id, end, dimension) in [
        ("m0", "2026-11-21T23:59:00.000Z", "all"),
        ("m1", "2026-11-22T00:01:00.000Z", "all"),
        ("m2", "2026-11-22T00:01:00.000Z", "category"),
        ("m3", "2026-11-22T00:01:00.000Z", "category"),
    ] {
        bulk.push_str(&format!("{}\n", json!({"index": {"_id": id}})));
        bulk.push_str(&format!(
            "{}\n",
            json!({"window_end": end, "dimension": dimension})
        ));
    }
    opensearch(
        &http,
        reqwest::Method::POST,
        format!("{os}/{metrics}/_bulk?refresh=true"),
        bulk,
    )
    .await;

    let archiver = metrics_server(ARCHIVER).await;
    let joiner = metrics_server(JOINER).await;
    let indexer = metrics_server(INDEXER).await;
    // Nothing listens on port 1: the aggregator is reported as not read, not failed on.
    let out = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args(["summary", "--json", "--since", "2026-11-22T00:00:00.000Z"])
        .args(["--bucket", &bucket, "--orders-index", &orders])
        .args(["--metrics-index", &metrics, "--top", "2"])
        .args(["--admin", &format!("archiver={archiver}")])
        .args(["--admin", &format!("enrichment-joiner={joiner}")])
        .args(["--admin", &format!("indexer={indexer}")])
        .args(["--admin", "aggregator=http://127.0.0.1:1"])
        .args(["--admin", "producer=http://127.0.0.1:1"])
        .envs(stack.env())
        .output()
        .await
        .expect("flowctl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(
        s["events_per_stream"],
        json!({"sales": 1200, "customers": 300, "dead-letters": 4}),
        "{s:#}"
    );

    assert_eq!(s["orders"]["total"], 4, "{s:#}");
    assert_eq!(
        s["orders"]["by_join_status"],
        json!({"complete": 3, "partial": 1})
    );
    assert!((s["orders"]["net_revenue"].as_f64().unwrap() - 70.75).abs() < 1e-6);
    let top: Vec<(String, u64, f64)> = s["orders"]["top_categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["category"].as_str().unwrap().to_string(),
                c["orders"].as_u64().unwrap(),
                c["net_revenue"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        top,
        vec![("garden".into(), 1, 40.25), ("books".into(), 2, 25.5)],
        "ordered by revenue, the old toys order excluded"
    );
    assert_eq!(s["window_metrics"]["total"], 3);
    assert_eq!(
        s["window_metrics"]["by_dimension"],
        json!({"all": 1, "category": 2})
    );

    let lake = &s["lake"];
    let dataset = |k: &str| (lake[k]["objects"].as_u64(), lake[k]["rows"].as_u64());
    assert_eq!(dataset("raw/sales"), (Some(2), Some(7)), "{lake:#}");
    assert_eq!(dataset("raw/customers"), (Some(1), Some(2)));
    assert_eq!(dataset("curated/orders"), (Some(1), Some(5)));
    assert_eq!(dataset("curated/order_metrics"), (Some(1), Some(2)));
    assert_eq!(
        dataset("errors/enrichment-joiner/bad_json"),
        (Some(1), Some(2))
    );
    assert_eq!(
        lake.as_object().unwrap().len(),
        6,
        "reference/ is no dataset"
    );

    assert_eq!(
        s["dead_letters"],
        json!([
            {"stage": "archiver", "error_type": "unframeable", "counted": 1, "in_s3": 1},
            {"stage": "enrichment-joiner", "error_type": "bad_json", "counted": 2, "in_s3": 2},
            {"stage": "enrichment-joiner", "error_type": "missing_field", "counted": 1, "in_s3": 0},
            {"stage": "indexer", "error_type": "bad_json", "counted": 1, "in_s3": 0},
        ])
    );

    let orders_latency = &s["latency"]["orders"];
    assert_eq!(orders_latency["count"], 100);
    let q = |k: &str| orders_latency[k].as_f64().unwrap();
    assert!((q("p50_seconds") - 0.5).abs() < 1e-9, "{orders_latency}");
    assert!((q("p95_seconds") - 1.5).abs() < 1e-9, "{orders_latency}");
    assert!((q("p99_seconds") - 1.9).abs() < 1e-9, "{orders_latency}");

    let notes = s["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].as_str().unwrap().starts_with("aggregator"),
        "{notes:?}"
    );

    // The text form says the same, for people.
    let text = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args(["summary", "--since", "2026-11-22T00:00:00.000Z"])
        .args(["--bucket", &bucket, "--orders-index", &orders])
        .args(["--metrics-index", &metrics])
        .args(["--admin", &format!("indexer={indexer}")])
        .envs(stack.env())
        .output()
        .await
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("join_status=partial"), "{text}");
    assert!(text.contains("0.50s") && text.contains("1.90s"), "{text}");

    let _ = http.delete(format!("{os}/{orders},{metrics}")).send().await;
}
