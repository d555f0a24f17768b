//! Shared set-up of the aggregator's integration tests: unique streams and
//! table, a deterministic set of enriched orders, an independent
//! recomputation of the expected metrics, and reading the final metrics.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use flowline_testkit::{ServiceProcess, Stack, create_stream, read_stream, unique_name};

pub const BIN: &str = env!("CARGO_BIN_EXE_aggregator");

pub struct Env {
    pub stack: Stack,
    pub kinesis: aws_sdk_kinesis::Client,
    pub input: String,
    pub output: String,
    pub dead_letters: String,
    pub config: tempfile::NamedTempFile,
}

impl Env {
    /// Streams, and a config file naming them; `extra` is appended TOML.
    pub async fn new(input_shards: i32, extra: &str) -> Env {
        let stack = Stack::start().await;
        let kinesis = stack.aws_clients().await.kinesis;
        let (input, output, dead_letters) = (
            unique_name("agg-in"),
            unique_name("agg-out"),
            unique_name("agg-dlq"),
        );
        create_stream(&kinesis, &input, input_shards).await.unwrap();
        create_stream(&kinesis, &output, 1).await.unwrap();
        create_stream(&kinesis, &dead_letters, 1).await.unwrap();
        let toml = format!(
            r#"
[consumer]
application_name = "{app}"
streams = ["{input}"]
failover_time = "3s"
take_interval = "1s"

[output]
stream = "{output}"
dead_letters = "{dead_letters}"

[kinesis]
linger = "20ms"

[watermarks]
idle_timeout = "2s"

[state]
table = "{table}"
create_table = true
emit_interval = "300ms"
publish_interval = "300ms"

[shutdown]
drain_timeout = "10s"
{extra}
"#,
            app = unique_name("agg-app"),
            table = unique_name("agg-state"),
        );
        let config = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(config.path(), toml).unwrap();
        Env {
            stack,
            kinesis,
            input,
            output,
            dead_letters,
            config,
        }
    }

    pub fn spawn(&self) -> ServiceProcess {
        self.spawn_with(&[])
    }

    /// With settings from environment variables (`AGGREGATOR_...`) on top of the file.
    pub fn spawn_with(&self, env: &[(&str, &str)]) -> ServiceProcess {
        let path = self.config.path().to_str().unwrap().to_owned();
        ServiceProcess::spawn(BIN, "aggregator", &self.stack, env, &["--config", &path]).unwrap()
    }

    /// Puts the records, in order, in batches.
    pub async fn put(&self, records: &[(String, String)]) {
        for chunk in records.chunks(250) {
            let mut pending: Vec<PutRecordsRequestEntry> = chunk
                .iter()
                .map(|(key, data)| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(key)
                        .data(Blob::new(data.as_bytes()))
                        .build()
                        .unwrap()
                })
                .collect();
            // Retried in order until every entry is in (the local stack does not throttle).
            for _ in 0..10 {
                let out = self
                    .kinesis
                    .put_records()
                    .stream_name(&self.input)
                    .set_records(Some(pending.clone()))
                    .send()
                    .await
                    .unwrap();
                if out.failed_record_count() == Some(0) {
                    pending.clear();
                    break;
                }
                pending = pending
                    .into_iter()
                    .zip(out.records())
                    .filter(|(_, r)| r.error_code().is_some())
                    .map(|(e, _)| e)
                    .collect();
            }
            assert!(pending.is_empty(), "records not accepted");
        }
    }
}

/// One generated order (what the recomputation reads).
#[derive(Clone, Debug)]
pub struct Order {
    pub id: String,
    pub event_ms: i64,
    pub customer: String,
    pub category: Option<String>,
    pub state: Option<String>,
    pub quantity: u64,
    pub gross: i64,
    pub discount_pct: i64,
    pub net: i64,
}

fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

impl Order {
    pub fn json(&self) -> String {
        let opt = |v: &Option<String>| v.as_ref().map_or("null".to_owned(), |s| format!("\"{s}\""));
        format!(
            concat!(
                r#"{{"order_id":"{}","event_time":"{}","customer_id":"{}","customer_segment":"retail","#,
                r#""email_sha256":null,"address_id":"a1","city":null,"state":{},"postcode":null,"country":"US","#,
                r#""location":null,"item_id":"i1","item_name":null,"category":{},"brand":null,"promo_id":null,"#,
                r#""discount_pct":{},"quantity":{},"unit_price":{},"gross_amount":{},"discount_amount":{},"#,
                r#""net_amount":{},"join_status":"complete","missing":[],"enriched_at":"{}"}}"#
            ),
            self.id,
            rfc3339(self.event_ms),
            self.customer,
            opt(&self.state),
            opt(&self.category),
            self.discount_pct,
            self.quantity,
            money(self.gross / self.quantity as i64),
            money(self.gross),
            money(self.gross - self.net),
            money(self.net),
            rfc3339(self.event_ms + 5),
        )
    }
}

/// `count` orders over about four minutes of event time, twenty minutes ago,
/// in event-time order; every 37th is delivered twice (a redelivery), and
/// `bad` undecodable records are mixed in. Returns (records, orders).
pub fn generate(count: usize, bad: usize) -> (Vec<(String, String)>, Vec<Order>) {
    let base = (now_ms() - 20 * 60_000) / 60_000 * 60_000;
    let orders = orders_between("order", count, base, 240_000, 0x5eed);
    let mut records = Vec::new();
    for (i, o) in orders.iter().enumerate() {
        records.push((o.id.clone(), o.json()));
        if i % 37 == 0 {
            records.push((o.id.clone(), o.json()));
        }
        // Exactly `bad` of them (count / bad > 7).
        if bad > 0 && i % (count / bad) == 7 {
            records.push((
                format!("bad-{i}"),
                format!("{{\"order_id\": \"bad-{i}\", truncated"),
            ));
        }
    }
    (records, orders)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `count` orders named `<prefix>-<i>`, event times spread over
/// `[base, base + span)` in order, pseudo-random from `seed`.
pub fn orders_between(prefix: &str, count: usize, base: i64, span: i64, seed: u64) -> Vec<Order> {
    let categories = ["books", "garden", "toys"];
    let states = ["CA", "NY", "TX", "WA"];
    let mut seed = seed;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        seed >> 33
    };
    (0..count)
        .map(|i| {
            let quantity = 1 + next() % 4;
            let unit = 100 + (next() % 5000) as i64;
            let gross = unit * quantity as i64;
            let discount_pct = 10 * (next() % 3) as i64;
            Order {
                id: format!("{prefix}-{i:05}"),
                event_ms: base + (i as i64) * span / count as i64,
                customer: format!("c{}", next() % 200),
                category: (next() % 10 != 0).then(|| categories[(next() % 3) as usize].to_owned()),
                state: (next() % 12 != 0).then(|| states[(next() % 4) as usize].to_owned()),
                quantity,
                gross,
                discount_pct,
                // discount = gross × pct / 100, half away from zero (all positive here).
                net: gross - (gross * discount_pct + 50) / 100,
            }
        })
        .collect()
}

pub fn records_of(orders: &[Order]) -> Vec<(String, String)> {
    orders.iter().map(|o| (o.id.clone(), o.json())).collect()
}

/// Highest revision seen per (window start, dimension, key).
pub async fn revisions(env: &Env) -> BTreeMap<(i64, String, String), u64> {
    let mut out = BTreeMap::new();
    for r in read_stream(&env.kinesis, &env.output).await.unwrap() {
        let m: serde_json::Value = serde_json::from_slice(&r.data).unwrap();
        let key = (
            start_of(&m),
            m["dimension"].as_str().unwrap().to_owned(),
            m["key"].as_str().unwrap().to_owned(),
        );
        let rev = m["revision"].as_u64().unwrap();
        let e = out.entry(key).or_insert(rev);
        *e = (*e).max(rev);
    }
    out
}

fn start_of(m: &serde_json::Value) -> i64 {
    humantime::parse_rfc3339(m["window_start"].as_str().unwrap())
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// What the output must hold, recomputed without the window crate:
/// id-free key (window start ms, dimension, key) → values.
pub type Expected = BTreeMap<(i64, String, String), Values>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Values {
    pub orders: u64,
    pub units: u64,
    pub gross: String,
    pub net: String,
    pub avg: String,
    pub distinct_customers: u64,
}

pub fn recompute(orders: &[Order]) -> Expected {
    type Acc = (u64, u64, i64, i64, BTreeSet<String>);
    let mut acc: BTreeMap<(i64, String, String), Acc> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for o in orders {
        if !seen.insert(o.id.clone()) {
            continue;
        }
        let start = o.event_ms.div_euclid(60_000) * 60_000;
        for (dim, key) in [
            ("all", Some("all".to_owned())),
            ("category", o.category.clone()),
            ("state", o.state.clone()),
        ] {
            let key = key.unwrap_or_else(|| "unknown".to_owned());
            let a = acc.entry((start, dim.to_owned(), key)).or_default();
            a.0 += 1;
            a.1 += o.quantity;
            a.2 += o.gross;
            a.3 += o.net;
            a.4.insert(o.customer.clone());
        }
    }
    acc.into_iter()
        .map(|(k, (n, units, gross, net, customers))| {
            // Half away from zero (amounts are positive here).
            let avg = (2 * net + n as i64) / (2 * n as i64);
            (
                k,
                Values {
                    orders: n,
                    units,
                    gross: money(gross),
                    net: money(net),
                    avg: money(avg),
                    distinct_customers: customers.len() as u64,
                },
            )
        })
        .collect()
}

/// The output's final metrics (highest revision per id). Fails if two
/// records share an id and revision but differ, or a key has two ids.
pub async fn final_metrics(env: &Env) -> Expected {
    let records = read_stream(&env.kinesis, &env.output).await.unwrap();
    let mut by_id: HashMap<String, serde_json::Value> = HashMap::new();
    for r in records {
        let m: serde_json::Value = serde_json::from_slice(&r.data).unwrap();
        let id = m["id"].as_str().unwrap().to_owned();
        assert_eq!(r.partition_key, id, "partition key = metric id");
        match by_id.get(&id) {
            Some(prev) if prev["revision"] == m["revision"] => {
                assert_eq!(prev, &m, "same id and revision, different values")
            }
            Some(prev) if prev["revision"].as_u64() > m["revision"].as_u64() => {}
            _ => {
                by_id.insert(id, m);
            }
        }
    }
    let mut out = Expected::new();
    for m in by_id.values() {
        let start = start_of(m);
        let num = |f: &str| money((m[f].as_f64().unwrap() * 100.0).round() as i64);
        let key = (
            start,
            m["dimension"].as_str().unwrap().to_owned(),
            m["key"].as_str().unwrap().to_owned(),
        );
        let v = Values {
            orders: m["orders"].as_u64().unwrap(),
            units: m["units"].as_u64().unwrap(),
            gross: num("gross_amount"),
            net: num("net_amount"),
            avg: num("avg_order_value"),
            distinct_customers: m["distinct_customers"].as_u64().unwrap(),
        };
        assert!(out.insert(key.clone(), v).is_none(), "two ids for {key:?}");
    }
    out
}

/// Waits (bounded) until the final metrics equal `expected`; returns the last read.
pub async fn wait_for(env: &Env, expected: &Expected, timeout: Duration) -> Expected {
    let deadline = Instant::now() + timeout;
    loop {
        let got = final_metrics(env).await;
        if &got == expected || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
}

/// Dead letters by error type.
pub async fn dead_letters(env: &Env) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in read_stream(&env.kinesis, &env.dead_letters).await.unwrap() {
        let d: serde_json::Value = serde_json::from_slice(&r.data).unwrap();
        *out.entry(d["error_type"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    out
}

/// A counter's value from /metrics (summed over labels matching `filter`).
pub async fn counter(svc: &ServiceProcess, name: &str, filter: &str) -> f64 {
    let Ok((_, text)) = svc.get("/metrics").await else {
        return 0.0;
    };
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
