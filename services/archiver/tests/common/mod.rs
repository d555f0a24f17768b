//! Shared set-up of the archiver's integration tests: unique streams and bucket on the
//! stack, a config file with small buffers, record generators, and S3 read-back.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use flowline_model::{
    DeadLetter, Dimension, DiscountPct, EnrichedOrder, GeoPoint, JoinStatus, Missing, Money,
    RecordSource, Timestamp, WindowMetric, metric_id, order_amounts,
};
use flowline_testkit::{ServiceProcess, Stack, create_bucket, create_stream, unique_name};

/// The `[streams]` keys of the archiver.
pub const KINDS: [&str; 6] = [
    "customers",
    "addresses",
    "sales",
    "orders_enriched",
    "order_metrics",
    "dead_letters",
];

pub struct Lake {
    pub stack: Stack,
    pub aws: flowline_aws::AwsClients,
    /// `[streams]` key → unique stream name, for the streams this test reads.
    pub streams: BTreeMap<&'static str, String>,
    pub bucket: String,
    config: tempfile::NamedTempFile,
}

impl Lake {
    /// Creates the streams named by `kinds` (with `shards` shards each) and a bucket, and
    /// writes a config reading them with `buffer_toml` as the `[lake.buffer]` section,
    /// followed by `extra`, in which `$<kind>` stands for that stream's unique name.
    pub async fn new(kinds: &[&'static str], shards: i32, buffer_toml: &str, extra: &str) -> Lake {
        let stack = Stack::start().await;
        let aws = stack.aws_clients().await;
        let mut streams = BTreeMap::new();
        for kind in kinds {
            let name = unique_name(&kind.replace('_', "-"));
            create_stream(&aws.kinesis, &name, shards).await.unwrap();
            streams.insert(*kind, name);
        }
        let bucket = unique_name("lake");
        create_bucket(&aws.s3, &bucket).await.unwrap();
        let app = unique_name("archiver");
        let names: Vec<String> = streams.values().map(|s| format!("{s:?}")).collect();
        let mut toml = format!(
            r#"
[consumer]
application_name = "{app}"
streams = [{}]
initial_position = "TRIM_HORIZON"
failover_time = "2s"
take_interval = "500ms"
shard_sync_interval = "2s"
[consumer.polling]
idle_time_between_reads = "200ms"
[streams]
"#,
            names.join(", ")
        );
        for (kind, name) in &streams {
            toml.push_str(&format!("{kind} = {name:?}\n"));
        }
        let mut extra = extra.to_string();
        for (kind, name) in &streams {
            extra = extra.replace(&format!("${kind}"), name);
        }
        toml.push_str(&format!(
            "[lake]\nbucket = {bucket:?}\n[lake.buffer]\n{buffer_toml}\n{extra}\n"
        ));
        let mut config = tempfile::Builder::new()
            .prefix("archiver-")
            .suffix(".toml")
            .tempfile()
            .unwrap();
        config.write_all(toml.as_bytes()).unwrap();
        Lake {
            stack,
            aws,
            streams,
            bucket,
            config,
        }
    }

    pub fn stream(&self, kind: &str) -> &str {
        &self.streams[kind]
    }

    pub fn config_path(&self) -> String {
        self.config.path().to_str().unwrap().to_string()
    }

    pub fn spawn(&self) -> ServiceProcess {
        self.spawn_with(&[])
    }

    /// [`Lake::spawn`] with extra environment (it wins over the stack's).
    pub fn spawn_with(&self, env: &[(&str, &str)]) -> ServiceProcess {
        let path = self.config_path();
        let mut all = vec![("ARCHIVER_SHUTDOWN__DRAIN_TIMEOUT", "30s")];
        all.extend_from_slice(env);
        ServiceProcess::spawn(
            env!("CARGO_BIN_EXE_archiver"),
            "archiver",
            &self.stack,
            &all,
            &["--config", &path],
        )
        .unwrap()
    }

    /// Puts `records` on `stream` in order (partition keys spread them over the shards).
    pub async fn put(&self, stream: &str, records: &[Vec<u8>]) {
        for (n, chunk) in records.chunks(250).enumerate() {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, data)| {
                    PutRecordsRequestEntry::builder()
                        .data(Blob::new(data.clone()))
                        .partition_key(format!("pk-{n}-{i}"))
                        .build()
                        .unwrap()
                })
                .collect::<Vec<_>>();
            let out = self
                .aws
                .kinesis
                .put_records()
                .stream_name(stream)
                .set_records(Some(entries))
                .send()
                .await
                .unwrap();
            assert_eq!(
                out.failed_record_count(),
                Some(0),
                "kinesis-local rejected records"
            );
        }
    }

    /// How many objects are under `prefix` (one listing page is enough to tell).
    pub async fn count(&self, prefix: &str) -> usize {
        let page = self
            .aws
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .send()
            .await
            .unwrap();
        page.contents().len()
    }

    /// Every object under `prefix` in `bucket`: key → body.
    pub async fn objects_in(&self, bucket: &str, prefix: &str) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut token = None;
        loop {
            let page = self
                .aws
                .s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .unwrap();
            for o in page.contents() {
                let key = o.key().unwrap().to_string();
                let body = self
                    .aws
                    .s3
                    .get_object()
                    .bucket(bucket)
                    .key(&key)
                    .send()
                    .await
                    .unwrap()
                    .body
                    .collect()
                    .await
                    .unwrap()
                    .into_bytes()
                    .to_vec();
                out.insert(key, body);
            }
            token = page.next_continuation_token().map(str::to_string);
            if token.is_none() {
                return out;
            }
        }
    }

    pub async fn objects(&self, prefix: &str) -> BTreeMap<String, Vec<u8>> {
        self.objects_in(&self.bucket, prefix).await
    }

    /// Raw lines per object under `prefix`.
    pub async fn lines(&self, prefix: &str) -> BTreeMap<String, Vec<Vec<u8>>> {
        self.objects(prefix)
            .await
            .into_iter()
            .map(|(k, body)| (k, flowline_lake::encode::decode_jsonl_gz(&body).unwrap()))
            .collect()
    }
}

/// The sum of a counter's samples (every label set) in `/metrics` text.
pub async fn counter(svc: &ServiceProcess, name: &str) -> f64 {
    let Ok((200, text)) = svc.get("/metrics").await else {
        return 0.0;
    };
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls `check` every 100 ms until it returns true, failing after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `dt=YYYY-MM-DD/hour=HH` of hour `h` of 2026-01-01.
pub fn hour_partition(h: u32) -> String {
    format!("dt=2026-01-01/hour={h:02}")
}

pub fn time(h: u32, i: u32) -> String {
    format!(
        "2026-01-01T{h:02}:{:02}:{:02}.{:03}Z",
        i / 60 % 60,
        i % 60,
        i % 1000
    )
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Raw events of stream `kind` (JSON as the producer writes them; `i` spreads them over
/// two hours).
pub fn raw_events(kind: &str, n: u32) -> Vec<(u32, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let h = i % 2;
            let t = time(h, i);
            let line = match kind {
                "customers" => format!(
                    r#"{{"customer_id":"c-{i}","address_id":"a-{i}","first_name":"Zoë","last_name":"O'Brien","email":"c{i}@example.com","phone":"+1 555 {i:04}","segment":"vip","updated_at":"{t}"}}"#
                ),
                "addresses" => format!(
                    r#"{{"address_id":"a-{i}","street":"{i} Main St","city":"Springfield","state":"IL","postcode":"62701","country":"US","lat":39.78,"lon":-89.65,"updated_at":"{t}"}}"#
                ),
                _ => format!(
                    r#"{{"sale_id":"s-{i}","customer_id":"c-{}","item_id":"i-{}","promo_id":null,"quantity":{},"unit_price":12.50,"event_time":"{t}"}}"#,
                    i % 50,
                    i % 7,
                    i % 5 + 1
                ),
            };
            (h, line.into_bytes())
        })
        .collect()
}

pub fn orders(n: u32) -> Vec<EnrichedOrder> {
    (0..n)
        .map(|i| {
            let partial = i % 4 == 0;
            let pct = DiscountPct::from_hundredths([0, 1250][i as usize % 2]).unwrap();
            let price = Money::from_cents(999 + i64::from(i)).unwrap();
            let a = order_amounts(i % 7 + 1, price, pct).unwrap();
            EnrichedOrder {
                order_id: format!("s-{i}"),
                event_time: ts(&time(i % 2, i)),
                customer_id: format!("c-{}", i % 9),
                customer_segment: (!partial).then(|| "vip".to_string()),
                email_sha256: (!partial).then(|| format!("{i:064x}")),
                address_id: (!partial).then(|| format!("a-{i}")),
                city: (!partial).then(|| "Zürich".to_string()),
                state: (!partial).then(|| "ZH".to_string()),
                postcode: (!partial).then(|| "8001".to_string()),
                country: (!partial).then(|| "CH".to_string()),
                location: (!partial).then(|| GeoPoint::rounded(47.3769, 8.5417)),
                item_id: format!("i-{}", i % 5),
                item_name: Some("Widget".to_string()),
                category: Some(["books", "toys"][i as usize % 2].to_string()),
                brand: None,
                promo_id: (pct != DiscountPct::ZERO).then(|| "p-1".to_string()),
                discount_pct: pct,
                quantity: i % 7 + 1,
                unit_price: price,
                gross_amount: a.gross,
                discount_amount: a.discount,
                net_amount: a.net,
                join_status: if partial {
                    JoinStatus::Partial
                } else {
                    JoinStatus::Complete
                },
                missing: if partial {
                    vec![Missing::Customer, Missing::Address]
                } else {
                    vec![]
                },
                enriched_at: ts(&time(i % 2, i + 1)),
            }
        })
        .collect()
}

pub fn metrics(n: u32) -> Vec<WindowMetric> {
    (0..n)
        .map(|i| {
            let h = i % 2;
            let s = ts(&format!("2026-01-01T{h:02}:{:02}:00.000Z", i % 60));
            let e = Timestamp::from_millis(s.millis() + 60_000).unwrap();
            let dim = [Dimension::All, Dimension::Category, Dimension::State][i as usize % 3];
            WindowMetric {
                id: metric_id(s, e, dim, &format!("k{i}")),
                window_start: s,
                window_end: e,
                dimension: dim,
                key: format!("k{i}"),
                orders: u64::from(i) + 1,
                units: u64::from(i) * 3 + 1,
                gross_amount: Money::from_cents(1000 + i64::from(i)).unwrap(),
                net_amount: Money::from_cents(900 + i64::from(i)).unwrap(),
                avg_order_value: Money::from_cents(450).unwrap(),
                distinct_customers: u64::from(i % 4) + 1,
                revision: i % 3 + 1,
            }
        })
        .collect()
}

pub fn dead_letters(n: u32) -> Vec<DeadLetter> {
    (0..n)
        .map(|i| {
            let (stage, error_type) =
                [("enrichment-joiner", "bad_json"), ("aggregator", "late")][i as usize % 2];
            DeadLetter::new(
                stage,
                error_type,
                &format!("record {i} was rejected"),
                &RecordSource {
                    stream: "sales".into(),
                    shard_id: "shardId-000000000000".into(),
                    sequence_number: format!("{}", 1000 + i),
                },
                format!("bad record {i}").as_bytes(),
                ts(&time(0, i)),
            )
        })
        .collect()
}
