//! Shared set-up of the joiner's integration tests: unique streams, bucket (with the
//! reference data of the data set), state table and lease table per test; the data set put
//! with the producer library; and an independent recomputation of the expected orders from
//! the raw events (DESIGN.md section 4, "Join rules, exactly"), not using flowline-join.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use flowline_datagen::reference::{ITEMS_CSV_KEY, PROMOS_CSV_KEY, items_to_csv, promos_to_csv};
use flowline_datagen::{Catalog, GenConfig, Generator};
use flowline_kinesis::producer::{AckSet, Producer, ProducerConfig, ProducerMetrics, Record};
use flowline_model::{StreamKind, Timestamp};
use flowline_testkit::{
    ServiceProcess, Stack, create_bucket, create_stream, read_stream, unique_name,
};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_enrichment-joiner");
pub const JOIN_TIMEOUT_MS: i64 = 5_000;

pub struct Setup {
    pub stack: Stack,
    pub env: Vec<(String, String)>,
    pub streams: BTreeMap<StreamKind, String>,
    pub output: String,
    pub dead_letters: String,
    pub data_set: GenConfig,
}

pub fn gen_config(seed: u64, customers: u32, sales: u64, bad: f64) -> GenConfig {
    GenConfig {
        seed,
        customers,
        sales,
        rate: 50.0,
        start_time: Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap(),
        bad_record_ratio: bad,
        // Versions in event-time order per stream: a version later than the watermark's
        // out-of-orderness would make the result depend on timing, as DESIGN says.
        late_version_share: 0.0,
        ..GenConfig::default()
    }
}

pub async fn setup(data_set: GenConfig) -> Setup {
    let stack = Stack::start().await;
    let aws = stack.aws_clients().await;
    let mut env: Vec<(String, String)> = Vec::new();
    let mut streams = BTreeMap::new();
    for kind in StreamKind::ALL {
        let name = unique_name(kind.default_stream_name());
        create_stream(&aws.kinesis, &name, 2).await.unwrap();
        env.push((
            format!(
                "ENRICHMENT_JOINER_STREAMS__{}",
                kind.default_stream_name().to_uppercase()
            ),
            name.clone(),
        ));
        streams.insert(kind, name);
    }
    let output = unique_name("orders-enriched");
    create_stream(&aws.kinesis, &output, 2).await.unwrap();
    let dead_letters = unique_name("dead-letters");
    create_stream(&aws.kinesis, &dead_letters, 1).await.unwrap();
    let bucket = unique_name("lake");
    create_bucket(&aws.s3, &bucket).await.unwrap();
    let catalog = Catalog::generate(&data_set);
    for (key, body) in [
        (ITEMS_CSV_KEY, items_to_csv(&catalog.items).unwrap()),
        (PROMOS_CSV_KEY, promos_to_csv(&catalog.promos).unwrap()),
    ] {
        aws.s3
            .put_object()
            .bucket(&bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap();
    }
    let p = "ENRICHMENT_JOINER_";
    for (k, v) in [
        ("OUTPUT__STREAM", output.clone()),
        ("DEAD_LETTERS__STREAM", dead_letters.clone()),
        ("STATE__TABLE", unique_name("joiner-state")),
        ("REFERENCE__BUCKET", bucket),
        ("CONSUMER__APPLICATION_NAME", unique_name("joiner")),
        ("CONSUMER__FAILOVER_TIME", "3s".into()),
        ("CONSUMER__TAKE_INTERVAL", "1s".into()),
        ("CONSUMER__SHARD_SYNC_INTERVAL", "5s".into()),
        ("CONSUMER__POLLING__IDLE_TIME_BETWEEN_READS", "200ms".into()),
        ("WATERMARK__IDLE_TIMEOUT", "2s".into()),
        ("JOIN__JOIN_TIMEOUT", format!("{JOIN_TIMEOUT_MS}ms")),
        ("EMIT__INTERVAL", "200ms".into()),
        ("KINESIS__LINGER", "20ms".into()),
        ("SHUTDOWN__DRAIN_TIMEOUT", "30s".into()),
    ] {
        env.push((format!("{p}{k}"), v));
    }
    Setup {
        stack,
        env,
        streams,
        output,
        dead_letters,
        data_set,
    }
}

impl Setup {
    pub fn spawn(&self) -> ServiceProcess {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        ServiceProcess::spawn(BIN, "enrichment-joiner", &self.stack, &env, &[]).unwrap()
    }

    /// Puts the whole data set (bad records included) with the producer library.
    pub async fn put_data_set(&self) {
        let aws = self.stack.aws_clients().await;
        let metrics = ProducerMetrics::register(&prometheus::Registry::new()).unwrap();
        let config = ProducerConfig {
            linger: Duration::from_millis(20),
            max_batch_records: 200,
            ..ProducerConfig::default()
        };
        let mut producers = BTreeMap::new();
        for (kind, name) in &self.streams {
            let p = Producer::new(&aws.kinesis, name, config.clone(), &metrics)
                .await
                .unwrap();
            producers.insert(*kind, p);
        }
        let mut acks = AckSet::new();
        for r in Generator::new(self.data_set.clone()).unwrap() {
            let ack = producers[&r.stream]
                .send(Record::new(r.partition_key, r.data))
                .await
                .unwrap();
            acks.push(ack);
        }
        for p in producers.values() {
            p.flush().await.unwrap();
        }
        tokio::time::timeout(Duration::from_secs(120), acks.wait())
            .await
            .expect("data set put in time")
            .unwrap();
        for p in producers.values() {
            p.shutdown().await.unwrap();
        }
    }

    /// Orders in the output stream by order id (every copy, redeliveries included).
    pub async fn orders(&self) -> BTreeMap<String, Vec<Value>> {
        let aws = self.stack.aws_clients().await;
        let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for r in read_stream(&aws.kinesis, &self.output).await.unwrap() {
            let v: Value = serde_json::from_slice(&r.data).unwrap();
            let id = v["order_id"].as_str().unwrap().to_string();
            assert_eq!(r.partition_key, id, "partition key is the order id");
            out.entry(id).or_default().push(v);
        }
        out
    }

    /// Dead letters by error type, one per source record: records read again after a
    /// lease move or a restart are rejected again (at least once, same source).
    pub async fn dead_letter_types(&self) -> BTreeMap<String, usize> {
        let aws = self.stack.aws_clients().await;
        let mut out = BTreeMap::new();
        let mut seen = std::collections::HashSet::new();
        for r in read_stream(&aws.kinesis, &self.dead_letters).await.unwrap() {
            let v: Value = serde_json::from_slice(&r.data).unwrap();
            assert_eq!(v["stage"], "enrichment-joiner");
            let source = (
                v["source_stream"].to_string(),
                v["shard_id"].to_string(),
                v["sequence_number"].to_string(),
                // User records of one aggregated record share the sequence number.
                v["payload_base64"].to_string(),
            );
            if !seen.insert(source) {
                continue;
            }
            *out.entry(v["error_type"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        out
    }

    /// Polls the output until `n` distinct orders are there (or the deadline).
    pub async fn wait_for_orders(
        &self,
        n: usize,
        timeout: Duration,
    ) -> BTreeMap<String, Vec<Value>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let orders = self.orders().await;
            if orders.len() >= n || tokio::time::Instant::now() >= deadline {
                return orders;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// What the recomputation expects.
pub struct Expected {
    pub orders: BTreeMap<String, Order>,
    /// Distinct customers and addresses in the data set.
    pub entities: usize,
    /// Bad records by the error type the model reports for them.
    pub bad: BTreeMap<String, usize>,
}

#[derive(Debug)]
pub struct Order {
    pub event_time: i64,
    pub customer_id: String,
    pub customer: Option<Value>,
    pub address: Option<Value>,
    pub item_id: String,
    pub item: Option<(String, String, String)>,
    pub promo_id: Option<String>,
    pub discount_bp: i64,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub gross: i64,
    pub discount: i64,
    pub net: i64,
    pub missing: Vec<&'static str>,
    pub enriched_at: i64,
}

fn ms(v: &Value) -> i64 {
    Timestamp::parse_rfc3339(v.as_str().unwrap())
        .unwrap()
        .millis()
}

fn hundredths(v: &Value) -> i64 {
    (v.as_f64().unwrap() * 100.0).round() as i64
}

/// The latest version with `updated_at <= t` (versions sorted by `updated_at`).
fn valid_at(versions: Option<&Vec<(i64, Value)>>, t: i64) -> Option<Value> {
    versions?
        .iter()
        .rev()
        .find(|(at, _)| *at <= t)
        .map(|(_, v)| v.clone())
}

/// `a * b / d` rounded half away from zero (non-negative inputs).
fn div_round(n: i64, d: i64) -> i64 {
    (2 * n + d) / (2 * d)
}

pub fn expected(data_set: &GenConfig) -> Expected {
    let catalog = Catalog::generate(data_set);
    let items: HashMap<&str, _> = catalog
        .items
        .iter()
        .map(|i| (i.item_id.as_str(), i))
        .collect();
    let promos: HashMap<&str, Value> = catalog
        .promos
        .iter()
        .map(|p| (p.promo_id.as_str(), serde_json::to_value(p).unwrap()))
        .collect();
    let mut customers: HashMap<String, Vec<(i64, Value)>> = HashMap::new();
    let mut addresses: HashMap<String, Vec<(i64, Value)>> = HashMap::new();
    let mut sales = Vec::new();
    let mut bad = BTreeMap::new();
    for r in Generator::new(data_set.clone()).unwrap() {
        if let Some(kind) = r.bad {
            *bad.entry(kind.expected_error_type().to_string())
                .or_default() += 1;
            continue;
        }
        let v: Value = serde_json::from_slice(&r.data).unwrap();
        match r.stream {
            StreamKind::Customers => customers
                .entry(v["customer_id"].as_str().unwrap().into())
                .or_default()
                .push((ms(&v["updated_at"]), v)),
            StreamKind::Addresses => addresses
                .entry(v["address_id"].as_str().unwrap().into())
                .or_default()
                .push((ms(&v["updated_at"]), v)),
            StreamKind::Sales => sales.push(v),
        }
    }
    for versions in customers.values_mut().chain(addresses.values_mut()) {
        versions.sort_by_key(|(at, _)| *at);
    }
    let mut orders = BTreeMap::new();
    for s in sales {
        let t = ms(&s["event_time"]);
        let customer_id = s["customer_id"].as_str().unwrap().to_string();
        let item_id = s["item_id"].as_str().unwrap().to_string();
        let customer = valid_at(customers.get(&customer_id), t);
        let address = customer
            .as_ref()
            .and_then(|c| valid_at(addresses.get(c["address_id"].as_str().unwrap()), t));
        let item = items
            .get(item_id.as_str())
            .map(|i| (i.name.clone(), i.category.clone(), i.brand.clone()));
        let (promo, promo_missing) = match s["promo_id"].as_str() {
            None => (None, false),
            Some(id) => match promos.get(id) {
                None => (None, true),
                Some(p) => {
                    let active = p["item_id"] == item_id.as_str()
                        && ms(&p["starts_at"]) <= t
                        && t < ms(&p["ends_at"]);
                    (active.then(|| p.clone()), false)
                }
            },
        };
        let mut missing = Vec::new();
        if customer.is_none() {
            missing.push("customer");
        } else if address.is_none() {
            missing.push("address");
        }
        if item.is_none() {
            missing.push("item");
        }
        if promo_missing {
            missing.push("promo");
        }
        let discount_bp = promo.as_ref().map_or(0, |p| hundredths(&p["discount_pct"]));
        let quantity = s["quantity"].as_i64().unwrap();
        let unit_price_cents = hundredths(&s["unit_price"]);
        let gross = quantity * unit_price_cents;
        let discount = div_round(gross * discount_bp, 10_000);
        let enriched_at = if missing.is_empty() {
            t
        } else {
            t + JOIN_TIMEOUT_MS
        };
        orders.insert(
            s["sale_id"].as_str().unwrap().to_string(),
            Order {
                event_time: t,
                customer_id,
                customer,
                address,
                item_id,
                item,
                promo_id: promo.map(|p| p["promo_id"].as_str().unwrap().to_string()),
                discount_bp,
                quantity,
                unit_price_cents,
                gross,
                discount,
                net: gross - discount,
                missing,
                enriched_at,
            },
        );
    }
    let entities = customers.len() + addresses.len();
    Expected {
        orders,
        entities,
        bad,
    }
}

/// The value of an unlabelled series in a Prometheus text page.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Differences between an emitted order and the recomputation (empty when equal).
pub fn compare(id: &str, e: &Order, o: &Value) -> Vec<String> {
    let mut d = Vec::new();
    let mut check = |field: &str, want: Value, got: &Value| {
        if want != *got {
            d.push(format!("{id}.{field}: want {want}, got {got}"));
        }
    };
    let s = |x: Option<&Value>, f: &str| x.map_or(Value::Null, |v| v[f].clone());
    check(
        "customer_id",
        e.customer_id.clone().into(),
        &o["customer_id"],
    );
    check(
        "event_time",
        e.event_time.into(),
        &ms(&o["event_time"]).into(),
    );
    check(
        "enriched_at",
        e.enriched_at.into(),
        &ms(&o["enriched_at"]).into(),
    );
    check(
        "customer_segment",
        s(e.customer.as_ref(), "segment"),
        &o["customer_segment"],
    );
    check(
        "address_id",
        s(e.customer.as_ref(), "address_id"),
        &o["address_id"],
    );
    let email = e.customer.as_ref().map_or(Value::Null, |c| {
        flowline_model::email_sha256(c["email"].as_str().unwrap()).into()
    });
    check("email_sha256", email, &o["email_sha256"]);
    for f in ["city", "state", "postcode", "country"] {
        check(f, s(e.address.as_ref(), f), &o[f]);
    }
    match &e.address {
        Some(a) => {
            for f in ["lat", "lon"] {
                let want = round2(a[f].as_f64().unwrap());
                let got = o["location"][f].as_f64().unwrap_or(f64::NAN);
                if (want - got).abs() > 1e-9 {
                    d.push(format!("{id}.location.{f}: want {want}, got {got}"));
                }
            }
        }
        None => {
            if !o["location"].is_null() {
                d.push(format!("{id}.location: want null, got {}", o["location"]));
            }
        }
    }
    let item = e.item.clone();
    let mut check = |field: &str, want: Value, got: &Value| {
        if want != *got {
            d.push(format!("{id}.{field}: want {want}, got {got}"));
        }
    };
    check("item_id", e.item_id.clone().into(), &o["item_id"]);
    check(
        "item_name",
        item.as_ref().map(|i| i.0.clone()).into(),
        &o["item_name"],
    );
    check(
        "category",
        item.as_ref().map(|i| i.1.clone()).into(),
        &o["category"],
    );
    check(
        "brand",
        item.as_ref().map(|i| i.2.clone()).into(),
        &o["brand"],
    );
    check("promo_id", e.promo_id.clone().into(), &o["promo_id"]);
    check(
        "discount_pct",
        e.discount_bp.into(),
        &hundredths(&o["discount_pct"]).into(),
    );
    check("quantity", e.quantity.into(), &o["quantity"]);
    check(
        "unit_price",
        e.unit_price_cents.into(),
        &hundredths(&o["unit_price"]).into(),
    );
    check(
        "gross_amount",
        e.gross.into(),
        &hundredths(&o["gross_amount"]).into(),
    );
    check(
        "discount_amount",
        e.discount.into(),
        &hundredths(&o["discount_amount"]).into(),
    );
    check(
        "net_amount",
        e.net.into(),
        &hundredths(&o["net_amount"]).into(),
    );
    let status = if e.missing.is_empty() {
        "complete"
    } else {
        "partial"
    };
    check("join_status", status.into(), &o["join_status"]);
    check("missing", e.missing.clone().into(), &o["missing"]);
    for secret in ["first_name", "last_name", "email", "phone", "street"] {
        if o.get(secret).is_some() {
            d.push(format!("{id}: `{secret}` must not leave the joiner"));
        }
    }
    d
}

/// Every expected order present, nothing else, each copy equal to the recomputation.
pub fn assert_matches(expected: &Expected, orders: &BTreeMap<String, Vec<Value>>) {
    let mut problems = Vec::new();
    for (id, e) in &expected.orders {
        match orders.get(id) {
            None => problems.push(format!("{id}: not emitted")),
            Some(copies) => {
                for o in copies {
                    problems.extend(compare(id, e, o));
                }
            }
        }
    }
    for id in orders.keys() {
        if !expected.orders.contains_key(id) {
            problems.push(format!("{id}: emitted but not a sale of the data set"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems of {} orders, first ones:\n{}",
        problems.len(),
        expected.orders.len(),
        problems[..problems.len().min(15)].join("\n")
    );
}
