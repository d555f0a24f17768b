//! `flowctl rebuild` end to end: archive → local files equal to what the join and window
//! crates give event by event; bad lines → errors with their reason; an interrupted run
//! restarted gives the same files without duplicates; OpenSearch output with the alias
//! swap while searches keep answering.

mod rebuild_support;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use flowline_datagen::{GenConfig, Generator};
use flowline_join::{JoinConfig, JoinCore, JoinStores, ReferenceData, ReferenceHandle};
use flowline_model::{
    EnrichedOrder, Event, ParseConfig, RecordSource, StreamKind, Timestamp, WindowMetric,
};
use flowline_window::{WindowConfig, WindowOperator};
use rebuild_support::{read_jsonl, write_archive};
use serde_json::Value;

fn flowctl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flowctl"))
}

fn config(sales: u64, bad_record_ratio: f64) -> GenConfig {
    GenConfig {
        seed: 7,
        customers: 150,
        sales,
        // 2 sales/s of event time from 00:40: the data crosses an hour partition.
        rate: 2.0,
        start_time: "2026-01-01T00:40:00Z".parse().unwrap(),
        bad_record_ratio,
        // Within the services' 2 s out-of-orderness: no version arrives after the
        // watermark passed it, so the result does not depend on how input is batched.
        max_version_delay: Duration::from_secs(1),
        orphan_sale_share: 0.02,
        unknown_item_share: 0.01,
        ..GenConfig::default()
    }
}

fn rebuild(input: &Path, out: &Path, extra: &[&str]) -> String {
    let o = flowctl()
        .arg("rebuild")
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "rebuild failed: {stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

/// The join and window crates driven event by event over the events in event-time order:
/// before each event the join watermark is that event's time (everything earlier is in).
async fn oracle(cfg: &GenConfig, good: &[(StreamKind, Vec<u8>)]) -> (Vec<Value>, Vec<Value>) {
    let catalog = Generator::new(cfg.clone()).unwrap();
    let reference = ReferenceData::new(
        catalog.catalog().items.clone(),
        catalog.catalog().promos.clone(),
    );
    let parse = ParseConfig::default();
    let mut events: Vec<Event> = good
        .iter()
        .map(|(k, d)| parse.parse_event(*k, d).unwrap())
        .collect();
    events.sort_by_key(|e| e.event_time());
    let join = JoinConfig {
        exclusive_writer: true,
        ..JoinConfig::default()
    };
    let mut core = JoinCore::new(
        join,
        JoinStores::in_memory(),
        ReferenceHandle::new(reference),
    )
    .unwrap();
    let mut window = WindowOperator::new(WindowConfig::default()).unwrap();
    let mut orders: Vec<EnrichedOrder> = Vec::new();
    let mut metrics: Vec<WindowMetric> = Vec::new();
    let mut max_order = i64::MIN;
    let mut step = |emitted: Vec<EnrichedOrder>,
                    window: &mut WindowOperator,
                    metrics: &mut Vec<WindowMetric>,
                    orders: &mut Vec<EnrichedOrder>| {
        for o in &emitted {
            max_order = max_order.max(o.event_time.millis());
            let _ = window.process(o, metrics);
        }
        if !emitted.is_empty() {
            let wm = Timestamp::from_millis(max_order - 2_000).unwrap();
            window.advance_watermark(wm, metrics);
        }
        orders.extend(emitted);
    };
    for (i, e) in events.into_iter().enumerate() {
        let emitted = core.advance(e.event_time()).await.unwrap();
        step(emitted, &mut window, &mut metrics, &mut orders);
        match e {
            Event::Customer(c) => core.apply_customer(c).await.unwrap(),
            Event::Address(a) => core.apply_address(a).await.unwrap(),
            Event::Sale(s) => {
                let source = RecordSource {
                    stream: "sales".into(),
                    shard_id: "oracle".into(),
                    sequence_number: i.to_string(),
                };
                core.add_sale(s, source).await.unwrap()
            }
        }
    }
    let emitted = core.advance(Timestamp::MAX).await.unwrap();
    step(emitted, &mut window, &mut metrics, &mut orders);
    window.advance_watermark(Timestamp::MAX, &mut metrics);
    let orders = orders
        .iter()
        .map(|o| serde_json::to_value(o).unwrap())
        .collect();
    let metrics = metrics
        .iter()
        .map(|m| serde_json::to_value(m).unwrap())
        .collect();
    (orders, metrics)
}

/// Orders by id (asserting each id once).
fn by_id(rows: Vec<Value>, id: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for r in rows {
        let key = r[id].as_str().unwrap().to_string();
        assert!(out.insert(key.clone(), r).is_none(), "{key} appears twice");
    }
    out
}

/// The last revision of every metric id, without the revision number (which depends on
/// when late orders came, not on the values).
fn final_metrics(rows: Vec<Value>) -> BTreeMap<String, Value> {
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    for mut r in rows {
        let key = r["id"].as_str().unwrap().to_string();
        let rev = r["revision"].as_u64().unwrap();
        let keep = out
            .get(&key)
            .is_none_or(|old| old["revision"].as_u64().unwrap() < rev);
        if keep {
            r["revision"] = rev.into();
            out.insert(key, r);
        }
    }
    for v in out.values_mut() {
        v.as_object_mut().unwrap().remove("revision");
    }
    out
}

#[tokio::test]
async fn rebuild_equals_join_and_window_event_by_event() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("archive");
    let cfg = config(3_000, 0.0);
    let written = write_archive(&input, cfg.clone(), 400, true);
    assert!(written.objects > 6, "several objects per stream and hour");
    let (want_orders, want_metrics) = oracle(&cfg, &written.good).await;
    let want_orders = by_id(want_orders, "order_id");
    let want_metrics = final_metrics(want_metrics);
    assert_eq!(want_orders.len() as u64, written.sales);
    let partial = want_orders
        .values()
        .filter(|o| o["join_status"] == "partial")
        .count();
    assert!(partial > 0, "the data set has partial joins");

    for threads in ["1", "2"] {
        let out = dir.path().join(format!("out-{threads}"));
        let stdout = rebuild(&input, &out, &["--threads", threads]);
        assert!(stdout.contains("rebuild-summary"), "{stdout}");
        let got_orders = by_id(read_jsonl(&out.join("orders")), "order_id");
        assert_eq!(got_orders.len(), want_orders.len(), "threads {threads}");
        for (id, want) in &want_orders {
            assert_eq!(
                got_orders.get(id),
                Some(want),
                "order {id}, threads {threads}"
            );
        }
        let got_metrics = final_metrics(read_jsonl(&out.join("order_metrics")));
        assert_eq!(got_metrics, want_metrics, "threads {threads}");
        assert!(read_jsonl(&out.join("errors")).is_empty());
    }

    // Parquet output holds the same orders.
    let out = dir.path().join("out-parquet");
    rebuild(&input, &out, &["--format", "parquet"]);
    let mut n = 0;
    for entry in walk(&out.join("orders")) {
        let bytes = std::fs::read(&entry).unwrap();
        for o in flowline_lake::encode::decode_orders(bytes.into()).unwrap() {
            let v = serde_json::to_value(&o).unwrap();
            assert_eq!(want_orders.get(&o.order_id), Some(&v));
            n += 1;
        }
    }
    assert_eq!(n, want_orders.len());
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn bad_lines_go_to_errors_with_their_reason_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("archive");
    let cfg = config(1_000, 0.05);
    let written = write_archive(&input, cfg, 10_000, false);
    assert!(written.bad.len() > 10);
    // A user's own plain JSON Lines file, with a broken line in the middle.
    let own = input.join("raw/sales/dt=2026-01-01/hour=00/history.jsonl");
    std::fs::write(
        &own,
        "{\"sale_id\":\"own-1\",\"customer_id\":\"c-x\",\"item_id\":\"i-x\",\"promo_id\":null,\
         \"quantity\":1,\"unit_price\":2.50,\"event_time\":\"2026-01-01T00:41:00.000Z\"}\n\
         {\"sale_id\": oops\n",
    )
    .unwrap();

    // An object the archiver wrote twice under other cuts (a redelivery after a crash):
    // its sales are the same sales of the same shard, joined once.
    let hour = input.join("raw/sales/dt=2026-01-01/hour=00");
    let first = walk(&hour)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".jsonl.gz"))
        .unwrap();
    let name = first
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace("_1_", "_0_");
    std::fs::copy(&first, hour.join(name)).unwrap();

    let out = dir.path().join("out");
    rebuild(&input, &out, &[]);
    let errors = read_jsonl(&out.join("errors/rebuild"));
    // The copied object's bad lines are reported again (they are lines of another object).
    let copied_bad = {
        use std::io::Read as _;
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&first).unwrap())
            .read_to_end(&mut text)
            .unwrap();
        text.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .filter(|l| {
                ParseConfig::default()
                    .parse_event(StreamKind::Sales, l)
                    .is_err()
            })
            .count()
    };
    assert_eq!(errors.len(), written.bad.len() + 1 + copied_bad);
    for e in &errors {
        assert_eq!(e["stage"], "rebuild");
        let reason = e["reason"].as_str().unwrap();
        assert!(reason.contains(" line "), "{reason}");
        assert!(!e["error_type"].as_str().unwrap().is_empty());
    }
    let own_error = errors
        .iter()
        .find(|e| {
            e["reason"]
                .as_str()
                .unwrap()
                .contains("history.jsonl line 2")
        })
        .expect("the broken line of the plain file is reported");
    assert_eq!(own_error["error_type"], "bad_json");
    // The good line of that file and every good sale were joined.
    let orders = by_id(read_jsonl(&out.join("orders")), "order_id");
    assert!(orders.contains_key("own-1"));
    assert_eq!(orders.len() as u64, written.sales + 1);
}

#[tokio::test]
async fn an_interrupted_rebuild_run_again_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("archive");
    write_archive(&input, config(3_000, 0.01), 300, false);
    let clean = dir.path().join("clean");
    rebuild(&input, &clean, &["--chunk-rows", "50"]);

    // Interrupt a run once it has written its first files.
    let out = dir.path().join("out");
    let mut child = flowctl()
        .args(["rebuild", "--chunk-rows", "50", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..2_000 {
        if !read_jsonl(&out.join("orders")).is_empty() {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    // What a crash can leave: a temporary file and a file of a run cut differently.
    let stale = out.join("orders/dt=2026-01-01/hour=00");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join(".part-000000.jsonl.tmp"), "{").unwrap();
    let dup = read_jsonl(&clean.join("orders")).remove(0);
    std::fs::write(stale.join("part-999999.jsonl"), format!("{dup}\n")).unwrap();

    rebuild(&input, &out, &["--chunk-rows", "50"]);
    for dataset in ["orders", "order_metrics", "errors"] {
        let want = read_jsonl(&clean.join(dataset));
        let got = read_jsonl(&out.join(dataset));
        assert_eq!(got, want, "{dataset}");
    }
    let ids: HashSet<String> = read_jsonl(&out.join("orders"))
        .iter()
        .map(|o| o["order_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), read_jsonl(&out.join("orders")).len());
    assert!(
        !walk(&out)
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".tmp"))
    );
}

/// Uploads every file below `root` to `bucket` under its relative path.
async fn upload_dir(s3: &aws_sdk_s3::Client, bucket: &str, root: &Path) {
    for path in walk(root) {
        let key = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(std::fs::read(&path).unwrap().into())
            .send()
            .await
            .unwrap();
    }
}

async fn os_json(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> Value {
    let mut req = http.request(method, &url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "{url}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

async fn flowctl_async(stack: &flowline_testkit::Stack, args: &[String]) -> (bool, String) {
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args(args)
        .envs(stack.env())
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_into_opensearch_swaps_the_aliases_while_searches_go_on() {
    let stack = flowline_testkit::Stack::start().await;
    let aws = stack.aws_clients().await;
    let os = stack.opensearch_url();
    let http = reqwest::Client::new();
    let bucket = flowline_testkit::unique_name("rebuild");
    flowline_testkit::create_bucket(&aws.s3, &bucket)
        .await
        .unwrap();
    let p = format!("{}-", flowline_testkit::unique_name("rb"));

    // The archive in S3, and the same files locally for a reference run.
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("archive");
    write_archive(&local, config(800, 0.01), 200, false);
    upload_dir(&aws.s3, &bucket, &local).await;
    let reference = dir.path().join("reference-run");
    rebuild(&local, &reference, &[]);
    let want_orders = by_id(read_jsonl(&reference.join("orders")), "order_id");
    let want_metrics = final_metrics(read_jsonl(&reference.join("order_metrics")));

    // The live index set: one document behind each alias.
    let (old_orders, old_metrics) = (
        format!("{p}orders-2026.01.01"),
        format!("{p}order-metrics-2026.01.01"),
    );
    for (index, alias) in [
        (&old_orders, format!("{p}orders")),
        (&old_metrics, format!("{p}order-metrics")),
    ] {
        os_json(
            &http,
            reqwest::Method::PUT,
            format!("{os}/{index}"),
            Some(serde_json::json!({"aliases": {alias: {}}})),
        )
        .await;
        os_json(
            &http,
            reqwest::Method::PUT,
            format!("{os}/{index}/_doc/old-1?refresh=true"),
            Some(serde_json::json!({"old": true})),
        )
        .await;
    }
    let count_url = format!("{os}/{p}orders/_count");
    let first = os_json(&http, reqwest::Method::GET, count_url.clone(), None).await;
    assert_eq!(first["count"], 1);

    // Search through the alias for as long as the rebuild runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (http, url, stop) = (http.clone(), count_url.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut errors, mut seen) = (Vec::new(), Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => {
                        let v: Value = r.json().await.unwrap();
                        seen.push(v["count"].as_u64().unwrap());
                    }
                    Ok(r) => errors.push(format!("HTTP {}", r.status())),
                    Err(e) => errors.push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (errors, seen)
        })
    };
    let args: Vec<String> = [
        "rebuild",
        "--input",
        &format!("s3://{bucket}"),
        "--opensearch",
        "--version",
        "2",
        "--index-prefix",
        &p,
        "--bucket",
        &bucket,
        "--index-replicas",
        "0",
        "--chunk-rows",
        "300",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (ok, text) = flowctl_async(&stack, &args).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (errors, seen) = poller.await.unwrap();
    assert!(ok, "{text}");
    assert!(text.contains("now name index set v2"), "{text}");
    assert!(
        errors.is_empty(),
        "searches failed during the rebuild: {errors:?}"
    );
    let n = want_orders.len() as u64;
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|c| *c == 1 || *c == n),
        "a search saw neither the old nor the new set: {seen:?}"
    );

    // The aliases name the new indices only; the old ones are kept.
    for (family, old) in [("orders", &old_orders), ("order-metrics", &old_metrics)] {
        let holders = os_json(
            &http,
            reqwest::Method::GET,
            format!("{os}/_alias/{p}{family}"),
            None,
        )
        .await;
        let names: Vec<&String> = holders.as_object().unwrap().keys().collect();
        assert!(!names.is_empty());
        assert!(
            names
                .iter()
                .all(|i| i.starts_with(&format!("{p}{family}-v2-"))),
            "{names:?}"
        );
        let r = http.get(format!("{os}/{old}")).send().await.unwrap();
        assert!(r.status().is_success(), "{old} was kept");
    }

    // Through the alias: the documents of the local run, field for field.
    let hits = os_json(
        &http,
        reqwest::Method::GET,
        format!("{os}/{p}orders/_search?size=10000"),
        None,
    )
    .await;
    let mut got = BTreeMap::new();
    for h in hits["hits"]["hits"].as_array().unwrap() {
        let mut src = h["_source"].clone();
        assert!(src.as_object_mut().unwrap().remove("indexed_at").is_some());
        assert_eq!(h["_id"], src["order_id"]);
        got.insert(h["_id"].as_str().unwrap().to_string(), src);
    }
    assert_eq!(got, want_orders);
    let hits = os_json(
        &http,
        reqwest::Method::GET,
        format!("{os}/{p}order-metrics/_search?size=10000"),
        None,
    )
    .await;
    let metrics: Vec<Value> = hits["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let mut s = h["_source"].clone();
            s.as_object_mut().unwrap().remove("indexed_at");
            s
        })
        .collect();
    assert_eq!(final_metrics(metrics), want_metrics);

    // The curated prefix holds every order once.
    let listed = aws
        .s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("curated-v2/orders/")
        .send()
        .await
        .unwrap();
    let mut rows = 0;
    for o in listed.contents() {
        let body = aws
            .s3
            .get_object()
            .bucket(&bucket)
            .key(o.key().unwrap())
            .send()
            .await
            .unwrap();
        let bytes = body.body.collect().await.unwrap().into_bytes();
        rows += flowline_lake::encode::decode_orders(bytes).unwrap().len();
    }
    assert_eq!(rows as u64, n);
    let errors = aws
        .s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("errors/rebuild/")
        .send()
        .await
        .unwrap();
    assert!(
        errors.key_count().unwrap_or(0) > 0,
        "bad lines went to errors/rebuild/"
    );

    // Running it again (a restart) changes nothing and duplicates nothing.
    let (ok, text) = flowctl_async(&stack, &args).await;
    assert!(ok, "{text}");
    let count = os_json(&http, reqwest::Method::GET, count_url.clone(), None).await;
    assert_eq!(count["count"].as_u64(), Some(n));

    // The live set can go now; the set behind the aliases cannot.
    let (ok, text) = flowctl_async(
        &stack,
        &[
            "rebuild".into(),
            "--delete-old".into(),
            "2".into(),
            "--index-prefix".into(),
            p.clone(),
        ],
    )
    .await;
    assert!(!ok, "deleting the aliased set must be refused: {text}");
    let (ok, text) = flowctl_async(
        &stack,
        &[
            "rebuild".into(),
            "--delete-old".into(),
            "1".into(),
            "--index-prefix".into(),
            p.clone(),
        ],
    )
    .await;
    assert!(ok, "{text}");
    assert_eq!(
        http.get(format!("{os}/{old_orders}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let count = os_json(&http, reqwest::Method::GET, count_url, None).await;
    assert_eq!(count["count"].as_u64(), Some(n));

    // Clean up what this test created.
    let _ = http
        .delete(format!("{os}/{p}orders-v2-*,{p}order-metrics-v2-*"))
        .send()
        .await;
    for family in ["orders", "order-metrics"] {
        let _ = http
            .delete(format!(
                "{os}/_index_template/flowline-rebuild-{p}{family}-v2"
            ))
            .send()
            .await;
    }
}

/// A service binary of this workspace, next to the test's own build output.
fn service_bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let bin = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p enrichment-joiner -p aggregator` first",
        bin.display()
    );
    bin
}

/// Every record of a stream as JSON.
async fn stream_json(kinesis: &aws_sdk_kinesis::Client, stream: &str) -> Vec<Value> {
    flowline_testkit::read_stream(kinesis, stream)
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.data).unwrap())
        .collect()
}

/// The live pipeline (the real enrichment-joiner and aggregator binaries over Kinesis) and
/// the rebuild over an archive of the same events give the same orders, field for field,
/// and the same final window values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_equals_the_live_pipeline() {
    use flowline_kinesis::producer::{AckSet, Producer, ProducerConfig, ProducerMetrics, Record};
    use flowline_testkit::{ServiceProcess, create_stream, unique_name};

    let joiner_bin = service_bin("enrichment-joiner");
    let aggregator_bin = service_bin("aggregator");
    let cfg = GenConfig {
        // As the joiner's own tests: versions in event-time order per stream, so the live
        // result does not depend on timing.
        late_version_share: 0.0,
        ..config(400, 0.0)
    };
    let stack = flowline_testkit::Stack::start().await;
    let aws = stack.aws_clients().await;

    let mut streams = BTreeMap::new();
    for kind in StreamKind::ALL {
        let name = unique_name(kind.default_stream_name());
        create_stream(&aws.kinesis, &name, 2).await.unwrap();
        streams.insert(kind, name);
    }
    let orders_stream = unique_name("orders-enriched");
    let metrics_stream = unique_name("order-metrics");
    let dead_letters = unique_name("dead-letters");
    create_stream(&aws.kinesis, &orders_stream, 2)
        .await
        .unwrap();
    create_stream(&aws.kinesis, &metrics_stream, 1)
        .await
        .unwrap();
    create_stream(&aws.kinesis, &dead_letters, 1).await.unwrap();
    let bucket = unique_name("rebuild-live");
    flowline_testkit::create_bucket(&aws.s3, &bucket)
        .await
        .unwrap();

    // The archive (and its reference data, uploaded for the joiner).
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    write_archive(&archive, cfg.clone(), 10_000, false);
    upload_dir(&aws.s3, &bucket, &archive.join("reference")).await;
    for key in [
        flowline_datagen::reference::ITEMS_CSV_KEY,
        flowline_datagen::reference::PROMOS_CSV_KEY,
    ] {
        aws.s3
            .put_object()
            .bucket(&bucket)
            .key(key)
            .body(std::fs::read(archive.join(key)).unwrap().into())
            .send()
            .await
            .unwrap();
    }

    // The same events onto the raw streams, in the generator's order.
    let metrics = ProducerMetrics::register(&prometheus::Registry::new()).unwrap();
    let pconf = ProducerConfig {
        linger: Duration::from_millis(20),
        ..ProducerConfig::default()
    };
    let mut producers = BTreeMap::new();
    for (kind, name) in &streams {
        let p = Producer::new(&aws.kinesis, name, pconf.clone(), &metrics)
            .await
            .unwrap();
        producers.insert(*kind, p);
    }
    let mut acks = AckSet::new();
    for r in Generator::new(cfg.clone()).unwrap() {
        acks.push(
            producers[&r.stream]
                .send(Record::new(r.partition_key, r.data))
                .await
                .unwrap(),
        );
    }
    for p in producers.values() {
        p.flush().await.unwrap();
    }
    acks.wait().await.unwrap();
    for p in producers.values() {
        p.shutdown().await.unwrap();
    }

    let mut joiner_env: Vec<(String, String)> = streams
        .iter()
        .map(|(k, n)| {
            (
                format!(
                    "ENRICHMENT_JOINER_STREAMS__{}",
                    k.default_stream_name().to_uppercase()
                ),
                n.clone(),
            )
        })
        .collect();
    for (k, v) in [
        ("OUTPUT__STREAM", orders_stream.clone()),
        ("DEAD_LETTERS__STREAM", dead_letters.clone()),
        ("STATE__TABLE", unique_name("joiner-state")),
        ("REFERENCE__BUCKET", bucket.clone()),
        ("CONSUMER__APPLICATION_NAME", unique_name("joiner")),
        ("CONSUMER__TAKE_INTERVAL", "1s".into()),
        ("CONSUMER__POLLING__IDLE_TIME_BETWEEN_READS", "200ms".into()),
        ("WATERMARK__IDLE_TIMEOUT", "2s".into()),
        ("JOIN__JOIN_TIMEOUT", "5s".into()),
        ("EMIT__INTERVAL", "200ms".into()),
        ("KINESIS__LINGER", "20ms".into()),
    ] {
        joiner_env.push((format!("ENRICHMENT_JOINER_{k}"), v));
    }
    let env: Vec<(&str, &str)> = joiner_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut joiner =
        ServiceProcess::spawn(&joiner_bin, "enrichment-joiner", &stack, &env, &[]).unwrap();

    // The aggregator's inputs go idle well after the joiner's, so the joiner's last
    // (partial) orders are counted before the aggregator's watermark follows the clock.
    let toml = format!(
        r#"
[consumer]
application_name = "{app}"
streams = ["{orders_stream}"]
take_interval = "1s"

[consumer.polling]
idle_time_between_reads = "200ms"

[output]
stream = "{metrics_stream}"
dead_letters = "{dead_letters}"

[kinesis]
linger = "20ms"

[watermarks]
idle_timeout = "20s"

[state]
table = "{table}"
create_table = true
emit_interval = "300ms"
publish_interval = "300ms"
"#,
        app = unique_name("agg-app"),
        table = unique_name("agg-state"),
    );
    let config_file = dir.path().join("aggregator.toml");
    std::fs::write(&config_file, toml).unwrap();
    let mut aggregator = ServiceProcess::spawn(
        &aggregator_bin,
        "aggregator",
        &stack,
        &[],
        &["--config", config_file.to_str().unwrap()],
    )
    .unwrap();

    // What the rebuild makes of the archive of the same events.
    let out = dir.path().join("out");
    rebuild(&archive, &out, &["--join-timeout", "5s"]);
    let want_orders = by_id(read_jsonl(&out.join("orders")), "order_id");
    let want_metrics = final_metrics(read_jsonl(&out.join("order_metrics")));

    // Wait for the live pipeline to get there (bounded).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    let (got_orders, got_metrics) = loop {
        let mut orders = BTreeMap::new();
        for o in stream_json(&aws.kinesis, &orders_stream).await {
            orders.insert(o["order_id"].as_str().unwrap().to_string(), o);
        }
        let metrics = final_metrics(stream_json(&aws.kinesis, &metrics_stream).await);
        let done = orders.len() >= want_orders.len() && metrics == want_metrics;
        if done || tokio::time::Instant::now() >= deadline {
            break (orders, metrics);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let logs = format!(
        "joiner:\n{}\naggregator:\n{}",
        joiner.logs(),
        aggregator.logs()
    );
    assert_eq!(got_orders.len(), want_orders.len(), "{logs}");
    for (id, want) in &want_orders {
        assert_eq!(got_orders.get(id), Some(want), "order {id}");
    }
    assert_eq!(got_metrics.len(), want_metrics.len(), "{logs}");
    for (id, want) in &want_metrics {
        assert_eq!(got_metrics.get(id), Some(want), "metric {id}");
    }
    joiner.signal(SIGTERM);
    aggregator.signal(SIGTERM);
    let _ = joiner.wait_exit(Duration::from_secs(30)).await;
    let _ = aggregator.wait_exit(Duration::from_secs(30)).await;
}

const SIGTERM: i32 = 15;
