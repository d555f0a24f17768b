//! `flowctl summary`: one screen that says whether a run worked, from what the pipeline
//! left behind: events per stream and dead letters (the services' counters), orders and
//! window metrics (OpenSearch aggregations), objects and rows (S3, counted from the objects)
//! and end-to-end latency (the indexer's histogram).

use std::collections::BTreeMap;

use anyhow::Context as _;
use flowline_aws::{AwsClients, AwsSettings};
use flowline_opensearch::OpenSearchSettings;
use serde::Serialize;

pub mod lake;
pub mod prom;
mod render;
pub mod search;

use prom::{Scrape, quantile};

/// The services and their default admin ports (DESIGN.md section 5).
pub const SERVICES: [(&str, u16); 5] = [
    ("producer", 9101),
    ("enrichment-joiner", 9102),
    ("aggregator", 9103),
    ("indexer", 9104),
    ("archiver", 9105),
];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Count only what this run made: orders with `event_time` at or after this time,
    /// windows ending after it, S3 objects written after it (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Admin URL of a service, overriding http://127.0.0.1:<default port>: NAME=URL
    /// (repeatable).
    #[arg(long = "admin", value_name = "NAME=URL", value_parser = parse_admin)]
    admin: Vec<(String, String)>,
    /// Bucket of the archive.
    #[arg(long, default_value = crate::bootstrap::BUCKET)]
    bucket: String,
    /// Orders index or alias.
    #[arg(long, default_value = "orders")]
    orders_index: String,
    /// Window metrics index or alias.
    #[arg(long, default_value = "order-metrics")]
    metrics_index: String,
    /// Categories shown, by revenue.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// OpenSearch URL.
    #[arg(long, env = "OPENSEARCH_URL", default_value = "http://127.0.0.1:9200")]
    opensearch_url: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn parse_admin(s: &str) -> Result<(String, String), String> {
    let (name, url) = s.split_once('=').ok_or("expected NAME=URL")?;
    if !SERVICES.iter().any(|(n, _)| *n == name) {
        let names: Vec<&str> = SERVICES.iter().map(|(n, _)| *n).collect();
        return Err(format!(
            "unknown service {name:?} (one of {})",
            names.join(", ")
        ));
    }
    Ok((name.to_string(), url.trim_end_matches('/').to_string()))
}

/// Admin base URL of every service: the defaults with `overrides` applied.
pub fn admin_urls(overrides: &[(String, String)]) -> BTreeMap<String, String> {
    SERVICES
        .iter()
        .map(|(name, port)| {
            let url = overrides
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, u)| u.clone())
                .unwrap_or_else(|| format!("http://127.0.0.1:{port}"));
            (name.to_string(), url)
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub since: Option<String>,
    /// User records read per stream by the archiver, which reads every stream.
    pub events_per_stream: BTreeMap<String, u64>,
    pub orders: search::Orders,
    pub window_metrics: search::Metrics,
    pub lake: lake::Lake,
    pub dead_letters: Vec<DeadLetterRow>,
    /// By indexer family (`orders`, `metrics`).
    pub latency: BTreeMap<String, Latency>,
    pub admin: BTreeMap<String, String>,
    pub opensearch_url: String,
    pub bucket: String,
    /// What could not be read (a service that is not running, say).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeadLetterRow {
    pub stage: String,
    pub error_type: String,
    /// Counted by the services that sent them (`flowline_dead_letters_total`).
    pub counted: u64,
    /// Rows under `errors/<stage>/<error_type>/` in S3.
    pub in_s3: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub p50_seconds: Option<f64>,
    pub p95_seconds: Option<f64>,
    pub p99_seconds: Option<f64>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let summary = gather(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", render::text(&summary));
    }
    Ok(())
}

async fn gather(args: &Args) -> anyhow::Result<Summary> {
    let since_secs = match &args.since {
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .with_context(|| format!("--since {t:?} is not RFC 3339"))?
                .timestamp(),
        ),
        None => None,
    };
    let admin = admin_urls(&args.admin);
    let mut notes = Vec::new();
    let http = reqwest::Client::new();
    let mut scrapes = BTreeMap::new();
    for (name, url) in &admin {
        match prom::scrape(&http, &format!("{url}/metrics")).await {
            Ok(s) => {
                scrapes.insert(name.clone(), s);
            }
            // The producer has usually finished by the time of a summary.
            Err(_) if name == "producer" => {}
            Err(e) => notes.push(format!("{name} metrics not read ({url}): {e}")),
        }
    }

    let aws = AwsClients::load(&AwsSettings::default()).await?;
    let lake = match lake::count(&aws.s3, &args.bucket, since_secs.unwrap_or(0)).await {
        Ok(l) => l,
        Err(e) => {
            notes.push(format!("S3 not read: {e:#}"));
            lake::Lake::new()
        }
    };
    let settings = OpenSearchSettings {
        url: args.opensearch_url.clone(),
        ..OpenSearchSettings::default()
    };
    let client = flowline_opensearch::build_client(&settings)?;
    let since = args.since.as_deref();
    let orders = search::orders(&client, &args.orders_index, since, args.top)
        .await
        .unwrap_or_else(|e| {
            notes.push(format!("OpenSearch orders not read: {e:#}"));
            search::Orders::default()
        });
    let window_metrics = search::metrics(&client, &args.metrics_index, since)
        .await
        .unwrap_or_else(|e| {
            notes.push(format!("OpenSearch metrics not read: {e:#}"));
            search::Metrics::default()
        });

    Ok(Summary {
        since: args.since.clone(),
        events_per_stream: events_per_stream(scrapes.get("archiver")),
        orders,
        window_metrics,
        dead_letters: dead_letters(&scrapes, &lake),
        latency: latency(scrapes.get("indexer")),
        lake,
        admin,
        opensearch_url: args.opensearch_url.clone(),
        bucket: args.bucket.clone(),
        notes,
    })
}

pub fn events_per_stream(archiver: Option<&Scrape>) -> BTreeMap<String, u64> {
    archiver
        .map(|s| s.sum_by("flowline_kinesis_consumer_records_read_total", "stream"))
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v as u64))
        .collect()
}

/// Dead letters by stage and type: what the services counted next to what reached S3.
pub fn dead_letters(scrapes: &BTreeMap<String, Scrape>, lake: &lake::Lake) -> Vec<DeadLetterRow> {
    let mut rows: BTreeMap<(String, String), DeadLetterRow> = BTreeMap::new();
    fn row<'a>(
        rows: &'a mut BTreeMap<(String, String), DeadLetterRow>,
        stage: &str,
        error_type: &str,
    ) -> &'a mut DeadLetterRow {
        rows.entry((stage.to_string(), error_type.to_string()))
            .or_insert_with(|| DeadLetterRow {
                stage: stage.to_string(),
                error_type: error_type.to_string(),
                counted: 0,
                in_s3: 0,
            })
    }
    for scrape in scrapes.values() {
        for s in scrape.select("flowline_dead_letters_total", &[]) {
            if s.value > 0.0 {
                let (stage, kind) = (&s.labels["stage"], &s.labels["error_type"]);
                row(&mut rows, stage, kind).counted += s.value as u64;
            }
        }
    }
    // The archiver files what it cannot archive itself, without the dead-letter stream.
    if let Some(scrape) = scrapes.get("archiver") {
        for s in scrape.select("flowline_archiver_records_rejected_total", &[]) {
            if s.value > 0.0 {
                row(&mut rows, "archiver", &s.labels["error_type"]).counted += s.value as u64;
            }
        }
    }
    for (name, d) in lake {
        if let Some(rest) = name.strip_prefix("errors/")
            && let Some((stage, kind)) = rest.split_once('/')
        {
            row(&mut rows, stage, kind).in_s3 += d.rows;
        }
    }
    rows.into_values().collect()
}

pub fn latency(indexer: Option<&Scrape>) -> BTreeMap<String, Latency> {
    const NAME: &str = "flowline_indexer_end_to_end_latency_seconds";
    let Some(scrape) = indexer else {
        return BTreeMap::new();
    };
    let families: std::collections::BTreeSet<String> = scrape
        .select(&format!("{NAME}_count"), &[])
        .filter_map(|s| s.labels.get("family").cloned())
        .collect();
    families
        .into_iter()
        .map(|family| {
            let buckets = scrape.buckets(NAME, &[("family", &family)]);
            let l = Latency {
                count: buckets.last().map(|b| b.1 as u64).unwrap_or(0),
                p50_seconds: quantile(0.5, &buckets),
                p95_seconds: quantile(0.95, &buckets),
                p99_seconds: quantile(0.99, &buckets),
            };
            (family, l)
        })
        .collect()
}
