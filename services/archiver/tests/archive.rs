//! The archiver on the local stack: every stream lands in the lake exactly as written,
//! in the right partitions and formats; records that cannot be converted land under
//! `errors/archiver/`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use common::{Lake, counter, eventually, hour_partition};
use flowline_lake::encode::{decode_metrics, decode_orders};
use flowline_model::DeadLetter;
use parquet::basic::Compression;
use parquet::file::reader::{FileReader, SerializedFileReader};

const BUFFER: &str = r#"
size_hint_bytes = 65536
interval = "3s"
wall_clock_grace = "1s"
"#;

/// The partition segment (`dt=…/hour=…` or `dt=…`) of a lake key.
fn partition_of(key: &str, depth: usize) -> String {
    let parts: Vec<&str> = key.split('/').collect();
    parts[depth..parts.len() - 1].join("/")
}

fn assert_snappy(key: &str, body: &[u8]) {
    let reader = SerializedFileReader::new(Bytes::copy_from_slice(body)).unwrap();
    let meta = reader.metadata();
    assert!(meta.num_row_groups() > 0, "{key}: no row groups");
    for rg in meta.row_groups() {
        for col in rg.columns() {
            assert_eq!(
                col.compression(),
                Compression::SNAPPY,
                "{key}: column {}",
                col.column_path()
            );
        }
    }
}

#[tokio::test]
async fn every_stream_lands_exactly_in_its_partitions() {
    tokio::time::timeout(Duration::from_secs(150), run_every_stream())
        .await
        .expect("test finishes in time");
}

async fn run_every_stream() {
    let lake = Lake::new(&common::KINDS, 2, BUFFER, "").await;

    // Input: raw events over two hours, curated records, dead letters, and records the
    // archiver cannot file as what their stream holds.
    let mut raw = BTreeMap::new();
    for (kind, n) in [("customers", 400), ("addresses", 400), ("sales", 800)] {
        raw.insert(kind, common::raw_events(kind, n));
    }
    let unframeable = b"{\"sale_id\":\n\"s-x\"}".to_vec();
    let orders = common::orders(600);
    let bad_orders = [b"not json".to_vec(), br#"{"order_id":1}"#.to_vec()];
    let metrics = common::metrics(300);
    let letters = common::dead_letters(200);

    let data = |v: &[(u32, Vec<u8>)]| v.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>();
    let mut sales = data(&raw["sales"]);
    sales.insert(100, unframeable.clone());
    let mut order_bytes: Vec<Vec<u8>> = orders
        .iter()
        .map(|o| serde_json::to_vec(o).unwrap())
        .collect();
    order_bytes.insert(10, bad_orders[0].clone());
    order_bytes.insert(300, bad_orders[1].clone());
    let metric_bytes: Vec<Vec<u8>> = metrics
        .iter()
        .map(|m| serde_json::to_vec(m).unwrap())
        .collect();
    let letter_bytes: Vec<Vec<u8>> = letters
        .iter()
        .map(|l| serde_json::to_vec(l).unwrap())
        .collect();
    let (customers, addresses) = (data(&raw["customers"]), data(&raw["addresses"]));
    tokio::join!(
        lake.put(lake.stream("customers"), &customers),
        lake.put(lake.stream("addresses"), &addresses),
        lake.put(lake.stream("sales"), &sales),
        lake.put(lake.stream("orders_enriched"), &order_bytes),
        lake.put(lake.stream("order_metrics"), &metric_bytes),
        lake.put(lake.stream("dead_letters"), &letter_bytes),
    );
    let total = 400 + 400 + sales.len() + order_bytes.len() + metrics.len() + letters.len();

    let mut svc = lake.spawn();
    svc.wait_ready(Duration::from_secs(60)).await.unwrap();
    eventually(Duration::from_secs(90), "every record in S3", || async {
        counter(&svc, "flowline_lake_records_written_total").await >= total as f64
    })
    .await;
    assert_eq!(
        counter(&svc, "flowline_lake_records_written_total").await,
        total as f64
    );

    // Raw streams: byte-exact lines, partitioned by event time.
    for (kind, events) in &raw {
        let stream = lake.stream(kind);
        let hour_of: BTreeMap<&[u8], u32> =
            events.iter().map(|(h, d)| (d.as_slice(), *h)).collect();
        let mut got = Vec::new();
        for (key, lines) in lake.lines(&format!("raw/{stream}/")).await {
            assert!(key.ends_with(".jsonl.gz"), "{key}");
            for line in lines {
                let h = hour_of.get(line.as_slice()).unwrap_or_else(|| {
                    panic!("{key}: unexpected line {}", String::from_utf8_lossy(&line))
                });
                assert_eq!(partition_of(&key, 2), hour_partition(*h), "{key}");
                got.push(line);
            }
        }
        let mut want = data(events);
        got.sort();
        want.sort();
        assert_eq!(got.len(), want.len(), "{kind}: line count");
        assert!(got == want, "{kind}: lines differ from the input");
    }

    // Curated: Parquet with Snappy, partitioned by event time / window start.
    let mut got_orders = Vec::new();
    for (key, body) in lake.objects("curated/orders/").await {
        assert!(key.ends_with(".parquet"), "{key}");
        assert_snappy(&key, &body);
        for o in decode_orders(Bytes::from(body)).unwrap() {
            let h = o.event_time.to_string()[11..13].parse::<u32>().unwrap();
            assert_eq!(partition_of(&key, 2), hour_partition(h), "{key}");
            got_orders.push(o);
        }
    }
    let mut want_orders = orders.clone();
    got_orders.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    want_orders.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    assert_eq!(got_orders, want_orders);

    let mut got_metrics = Vec::new();
    for (key, body) in lake.objects("curated/order_metrics/").await {
        assert_snappy(&key, &body);
        for m in decode_metrics(Bytes::from(body)).unwrap() {
            let h = m.window_start.to_string()[11..13].parse::<u32>().unwrap();
            assert_eq!(partition_of(&key, 2), hour_partition(h), "{key}");
            got_metrics.push(m);
        }
    }
    let mut want_metrics = metrics.clone();
    got_metrics.sort_by(|a, b| (&a.id, a.revision).cmp(&(&b.id, b.revision)));
    want_metrics.sort_by(|a, b| (&a.id, a.revision).cmp(&(&b.id, b.revision)));
    assert_eq!(got_metrics, want_metrics);

    // Errors: the dead letters under their stage and type, and the archiver's own
    // envelopes holding the exact bytes it could not file.
    let mut got_letters = Vec::new();
    let mut ours = Vec::new();
    for (key, lines) in lake.lines("errors/").await {
        for line in lines {
            let d: DeadLetter = serde_json::from_slice(&line).unwrap();
            let prefix = format!("errors/{}/{}/dt=", d.stage, d.error_type);
            assert!(key.starts_with(&prefix), "{key} for {prefix}");
            if d.stage == "archiver" {
                ours.push(d);
            } else {
                assert_eq!(partition_of(&key, 3), "dt=2026-01-01", "{key}");
                got_letters.push(d);
            }
        }
    }
    let mut want_letters = letters.clone();
    got_letters.sort_by(|a, b| a.sequence_number.cmp(&b.sequence_number));
    want_letters.sort_by(|a, b| a.sequence_number.cmp(&b.sequence_number));
    assert_eq!(got_letters, want_letters);

    ours.sort_by(|a, b| a.error_type.cmp(&b.error_type));
    let summary: Vec<(String, String, Vec<u8>)> = ours
        .iter()
        .map(|d| {
            (
                d.error_type.clone(),
                d.source_stream.clone(),
                STANDARD.decode(&d.payload_base64).unwrap(),
            )
        })
        .collect();
    let orders_stream = lake.stream("orders_enriched").to_string();
    let mut want_ours = vec![
        (
            "conversion".to_string(),
            orders_stream.clone(),
            bad_orders[0].clone(),
        ),
        (
            "conversion".to_string(),
            orders_stream,
            bad_orders[1].clone(),
        ),
        (
            "unframeable".to_string(),
            lake.stream("sales").to_string(),
            unframeable,
        ),
    ];
    let mut summary = summary;
    summary.sort();
    want_ours.sort();
    assert_eq!(summary, want_ours);
    assert_eq!(
        counter(&svc, "flowline_archiver_records_rejected_total").await,
        3.0
    );
    // Every shard checkpoints once its records are uploaded (empty batches included).
    eventually(Duration::from_secs(10), "checkpoints", || async {
        counter(&svc, "flowline_archiver_checkpoints_total").await >= 12.0
    })
    .await;

    svc.signal(libc::SIGTERM);
    let status = svc.wait_exit(Duration::from_secs(30)).await.unwrap();
    assert_eq!(status.code(), Some(0), "log:\n{}", svc.logs());
}
