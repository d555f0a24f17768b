//! The producer on the local stack: what lands in the streams is exactly what the
//! generator makes, reference data is readable in both formats, and SIGTERM mid-run
//! flushes everything that was accepted.

use std::collections::BTreeMap;
use std::time::Duration;

use flowline_datagen::reference::{
    ITEMS_CSV_KEY, ITEMS_PARQUET_KEY, PROMOS_CSV_KEY, PROMOS_PARQUET_KEY, items_from_csv,
    items_from_parquet, promos_from_csv, promos_from_parquet,
};
use flowline_datagen::{Catalog, GenConfig, Generator};
use flowline_model::{StreamKind, Timestamp};
use flowline_testkit::{
    ServiceProcess, Stack, create_bucket, create_stream, read_stream, unique_name,
};

const START: &str = "2026-01-01T00:00:00Z";

struct Setup {
    stack: Stack,
    env: Vec<(String, String)>,
    streams: BTreeMap<StreamKind, String>,
    bucket: String,
}

async fn setup() -> Setup {
    let stack = Stack::start().await;
    let aws = stack.aws_clients().await;
    let mut streams = BTreeMap::new();
    let mut env = Vec::new();
    for kind in StreamKind::ALL {
        let name = unique_name(kind.default_stream_name());
        create_stream(&aws.kinesis, &name, 2).await.unwrap();
        let var = format!(
            "PRODUCER_STREAMS__{}",
            kind.default_stream_name().to_uppercase()
        );
        env.push((var, name.clone()));
        streams.insert(kind, name);
    }
    let bucket = unique_name("lake");
    create_bucket(&aws.s3, &bucket).await.unwrap();
    env.push(("PRODUCER_REFERENCE__BUCKET".into(), bucket.clone()));
    env.push(("PRODUCER_SHUTDOWN__DRAIN_TIMEOUT".into(), "60s".into()));
    Setup {
        stack,
        env,
        streams,
        bucket,
    }
}

impl Setup {
    fn spawn(&self, args: &[&str]) -> ServiceProcess {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        ServiceProcess::spawn(
            env!("CARGO_BIN_EXE_producer"),
            "producer",
            &self.stack,
            &env,
            args,
        )
        .unwrap()
    }

    /// Payloads per stream, sorted (order across shards is not defined).
    async fn landed(&self) -> BTreeMap<StreamKind, Vec<Vec<u8>>> {
        let aws = self.stack.aws_clients().await;
        let mut out = BTreeMap::new();
        for (kind, name) in &self.streams {
            let mut data: Vec<Vec<u8>> = read_stream(&aws.kinesis, name)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.data)
                .collect();
            data.sort();
            out.insert(*kind, data);
        }
        out
    }
}

fn generated(cfg: GenConfig) -> BTreeMap<StreamKind, Vec<Vec<u8>>> {
    let mut out: BTreeMap<StreamKind, Vec<Vec<u8>>> = BTreeMap::new();
    for r in Generator::new(cfg).unwrap() {
        out.entry(r.stream).or_default().push(r.data);
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

fn gen_config(seed: u64, customers: u32, sales: u64, rate: f64, bad: f64) -> GenConfig {
    GenConfig {
        seed,
        customers,
        sales,
        rate,
        start_time: Timestamp::parse_rfc3339(START).unwrap(),
        bad_record_ratio: bad,
        ..GenConfig::default()
    }
}

#[tokio::test]
async fn a_run_lands_exactly_the_generated_events_and_the_reference_data() {
    let s = setup().await;
    let mut producer = s.spawn(&[
        "--seed",
        "11",
        "--customers",
        "300",
        "--sales",
        "3000",
        "--rate",
        "0",
        "--start-time",
        START,
        "--bad-record-ratio",
        "0.01",
    ]);
    let status = producer.wait_exit(Duration::from_secs(180)).await.unwrap();
    assert_eq!(status.code(), Some(0), "{}", producer.logs());
    let logs = producer.logs();
    assert!(logs.contains("producer summary"), "{logs}");

    let expected = generated(gen_config(11, 300, 3000, 0.0, 0.01));
    let landed = s.landed().await;
    for kind in StreamKind::ALL {
        assert_eq!(
            landed[&kind].len(),
            expected[&kind].len(),
            "{kind:?}: count of records in the stream"
        );
        assert!(
            landed[&kind] == expected[&kind],
            "{kind:?}: stream content differs from the generator"
        );
    }
    assert!(expected[&StreamKind::Sales].len() >= 3000);

    // Reference data, both layers, equal to the catalogue of the same seed.
    let aws = s.stack.aws_clients().await;
    let get = |key: &'static str| {
        let (s3, bucket) = (aws.s3.clone(), s.bucket.clone());
        async move {
            let o = s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap();
            o.body.collect().await.unwrap().into_bytes().to_vec()
        }
    };
    let catalog = Catalog::generate(&gen_config(11, 300, 3000, 0.0, 0.01));
    assert_eq!(
        items_from_csv(&get(ITEMS_CSV_KEY).await).unwrap(),
        catalog.items
    );
    assert_eq!(
        items_from_parquet(&get(ITEMS_PARQUET_KEY).await).unwrap(),
        catalog.items
    );
    assert_eq!(
        promos_from_csv(&get(PROMOS_CSV_KEY).await).unwrap(),
        catalog.promos
    );
    assert_eq!(
        promos_from_parquet(&get(PROMOS_PARQUET_KEY).await).unwrap(),
        catalog.promos
    );
}

#[tokio::test]
async fn sigterm_mid_run_flushes_every_accepted_event_and_exits_zero() {
    let s = setup().await;
    // 20,000 sales at 400/s would take 50 s: the signal comes long before the end.
    let mut producer = s.spawn(&[
        "--seed",
        "5",
        "--customers",
        "200",
        "--sales",
        "20000",
        "--rate",
        "400",
        "--start-time",
        START,
    ]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    producer.signal(libc::SIGTERM);
    let status = producer.wait_exit(Duration::from_secs(60)).await.unwrap();
    let logs = producer.logs();
    assert_eq!(status.code(), Some(0), "{logs}");

    // The summary's per-stream counts are what Kinesis acknowledged; every one of them
    // is in the stream, and the stream holds nothing else.
    let landed = s.landed().await;
    let expected = generated(gen_config(5, 200, 20000, 400.0, 0.0));
    let mut total = 0;
    for kind in StreamKind::ALL {
        let name = &s.streams[&kind];
        let line = logs
            .lines()
            .find(|l| l.starts_with(name.as_str()))
            .unwrap_or_else(|| panic!("summary line for {name}:\n{logs}"));
        let acked: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert_eq!(landed[&kind].len(), acked, "{kind:?}: {line}");
        for record in &landed[&kind] {
            assert!(
                expected[&kind].binary_search(record).is_ok(),
                "{kind:?}: a record the generator did not make"
            );
        }
        total += acked;
    }
    let sales = landed[&StreamKind::Sales].len();
    assert!(
        sales > 0 && sales < 20000,
        "stopped mid-run: {sales} sales, {total} events"
    );
}

#[tokio::test]
async fn replay_sends_valid_lines_and_reports_bad_ones_by_number() {
    let s = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let good_sale = r#"{"sale_id":"s-1","customer_id":"c-1","item_id":"i-1","promo_id":null,"quantity":2,"unit_price":3.50,"event_time":"2026-01-01T00:00:01+01:00"}"#;
    let good_customer = r#"{"customer_id":"c-1","address_id":"a-1","first_name":"Ada","last_name":"L","email":"ada@example.com","phone":"1","segment":"gold","updated_at":"2025-12-31T00:00:00Z"}"#;
    let bad_quantity = r#"{"sale_id":"s-2","customer_id":"c-1","item_id":"i-1","promo_id":null,"quantity":-1,"unit_price":3.50,"event_time":"2026-01-01T00:00:02Z"}"#;
    std::fs::write(
        &path,
        format!("{good_sale}\n{bad_quantity}\nnot json\n{good_customer}\n"),
    )
    .unwrap();

    let mut producer = s.spawn(&["--replay", path.to_str().unwrap()]);
    let status = producer.wait_exit(Duration::from_secs(60)).await.unwrap();
    let logs = producer.logs();
    assert_eq!(status.code(), Some(0), "{logs}");
    assert!(
        logs.contains("\"line\":2") && logs.contains("quantity"),
        "{logs}"
    );
    assert!(logs.contains("\"line\":3"), "{logs}");

    let landed = s.landed().await;
    assert_eq!(landed[&StreamKind::Sales].len(), 1);
    assert_eq!(landed[&StreamKind::Customers].len(), 1);
    let sale: serde_json::Value = serde_json::from_slice(&landed[&StreamKind::Sales][0]).unwrap();
    assert_eq!(
        sale["event_time"], "2025-12-31T23:00:01.000Z",
        "times normalised to UTC"
    );
}
