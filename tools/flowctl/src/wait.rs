//! `flowctl wait --caught-up`: blocks until the running pipeline has processed everything
//! on its streams, so a summary afterwards shows final figures.
//!
//! Checkpoints alone do not say that: the joiner and the aggregator checkpoint once their
//! state is durable, before the join watermark or the window end lets them emit. So
//! "caught up" is all of, on two polls in a row with no progress counter moving between
//! them:
//! - every lease of every consuming application is at the tip (`flowctl status`' lag);
//! - nothing is held in memory: no pending, waiting or unconfirmed sales in the joiner, no
//!   buffered or in-flight documents in the indexer, no buffered records in the archiver;
//! - the aggregator's watermark has passed the end of the window holding the last event,
//!   so its last windows are out.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flowline_aws::{AwsClients, AwsSettings};

use crate::bootstrap::APPLICATIONS;
use crate::summary::prom::{Scrape, scrape};
use crate::summary::{SERVICES, admin_urls};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Wait until every consumer has processed everything (the only condition so far).
    #[arg(long, required = true)]
    caught_up: bool,
    /// Give up after this long (exit code 1, naming what is still behind).
    #[arg(long, default_value = "300s", value_parser = humantime_duration)]
    timeout: Duration,
    /// Time between polls.
    #[arg(long, default_value = "2s", value_parser = humantime_duration)]
    interval: Duration,
    /// Event time of the last event sent (RFC 3339); default: now, which bounds it when
    /// the producer ran with `--start-time now` and has finished.
    #[arg(long)]
    events_until: Option<String>,
    /// Window length of the aggregator.
    #[arg(long, default_value = "60s", value_parser = humantime_duration)]
    window: Duration,
    /// Admin URL of a service, overriding http://127.0.0.1:<default port>: NAME=URL.
    #[arg(long = "admin", value_name = "NAME=URL", value_parser = parse_admin)]
    admin: Vec<(String, String)>,
    /// Prefix of stream and table names (as given to `bootstrap --prefix`).
    #[arg(long, default_value = "")]
    prefix: String,
}

fn humantime_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| e.to_string())
}

fn parse_admin(s: &str) -> Result<(String, String), String> {
    let (name, url) = s.split_once('=').ok_or("expected NAME=URL")?;
    if !SERVICES.iter().any(|(n, _)| *n == name) {
        return Err(format!("unknown service {name:?}"));
    }
    Ok((name.to_string(), url.trim_end_matches('/').to_string()))
}

/// Gauges that must read zero, by service: work held in memory.
const HELD: [(&str, &str); 6] = [
    ("enrichment-joiner", "flowline_join_pending_sales"),
    ("enrichment-joiner", "flowline_join_waiting_sales"),
    ("enrichment-joiner", "flowline_join_unconfirmed_orders"),
    ("indexer", "flowline_opensearch_sink_buffered_documents"),
    ("indexer", "flowline_opensearch_sink_in_flight_requests"),
    ("archiver", "flowline_lake_buffered_records"),
];

/// Counters that move while anything flows: equal on two polls means quiet.
pub const PROGRESS: [&str; 5] = [
    "flowline_kinesis_consumer_records_read_total",
    "flowline_enrichment_joiner_orders_out_total",
    "flowline_aggregator_metrics_emitted_total",
    "flowline_opensearch_documents_indexed_total",
    "flowline_lake_records_written_total",
];

/// One poll: what is still behind (empty when caught up) and the progress fingerprint.
#[derive(Debug, Default)]
pub struct Poll {
    pub behind: Vec<String>,
    pub progress: Vec<u64>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let aws = AwsClients::load(&AwsSettings::default()).await?;
    let http = reqwest::Client::new();
    let admin = admin_urls(&args.admin);
    let until_ms = match &args.events_until {
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map_err(|e| anyhow::anyhow!("--events-until {t:?}: {e}"))?
            .timestamp_millis(),
        None => now_ms(),
    };
    let window_ms = args.window.as_millis().max(1) as i64;
    // The aggregator has emitted everything once its watermark reaches this.
    let last_window_end = (until_ms.div_euclid(window_ms) + 1) * window_ms;

    let started = Instant::now();
    let mut previous: Option<Vec<u64>> = None;
    let mut last_report = Instant::now();
    loop {
        let poll = poll(&aws, &http, &admin, &args.prefix, last_window_end).await;
        let quiet = previous.as_ref() == Some(&poll.progress);
        if poll.behind.is_empty() && quiet {
            eprintln!(
                "wait: caught up after {:.0}s",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if started.elapsed() >= args.timeout {
            let mut why = poll.behind.clone();
            if why.is_empty() {
                why.push("records were still being processed at the last poll".into());
            }
            anyhow::bail!(
                "not caught up after {:?}; still behind:\n  {}\n(see `flowctl status` and the services' logs)",
                args.timeout,
                why.join("\n  ")
            );
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            let what = if poll.behind.is_empty() {
                "settling".to_string()
            } else {
                poll.behind.join("; ")
            };
            eprintln!("wait: {:.0}s: {what}", started.elapsed().as_secs_f64());
        }
        previous = Some(poll.progress);
        tokio::time::sleep(args.interval).await;
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn poll(
    aws: &AwsClients,
    http: &reqwest::Client,
    admin: &BTreeMap<String, String>,
    prefix: &str,
    last_window_end_ms: i64,
) -> Poll {
    let mut out = Poll::default();
    for app in APPLICATIONS {
        let name = format!("{prefix}{app}");
        let report = crate::status::application(aws, &name).await;
        // Read through the report's JSON form, so status.rs keeps its types to itself.
        let report = serde_json::to_value(&report).unwrap_or_default();
        if let Some(e) = report["error"].as_str() {
            out.behind.push(format!("{name}: no leases ({e})"));
            continue;
        }
        let leases = report["leases"].as_array().cloned().unwrap_or_default();
        if leases.is_empty() {
            out.behind.push(format!("{name}: holds no leases yet"));
        }
        let lagging: Vec<String> = leases
            .iter()
            .filter(|l| l["millis_behind_latest"].as_i64() != Some(0))
            .map(|l| {
                let lag = l["millis_behind_latest"]
                    .as_i64()
                    .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
                    .unwrap_or_else(|| "?".into());
                format!(
                    "{}/{} {lag}",
                    l["stream"].as_str().unwrap_or("?"),
                    l["shard_id"].as_str().unwrap_or("?")
                )
            })
            .collect();
        if !lagging.is_empty() {
            out.behind
                .push(format!("{name} behind on {}", lagging.join(", ")));
        }
    }

    let mut scrapes = BTreeMap::new();
    for (service, url) in admin {
        if service == "producer" {
            continue;
        }
        match scrape(http, &format!("{url}/metrics")).await {
            Ok(s) => {
                scrapes.insert(service.as_str(), s);
            }
            Err(e) => out
                .behind
                .push(format!("{service} not answering at {url}: {e}")),
        }
    }
    out.behind
        .extend(held(&scrapes, last_window_end_ms, now_ms()));
    out.progress = PROGRESS
        .iter()
        .flat_map(|name| scrapes.values().map(move |s| s.sum(name, &[]) as u64))
        .collect();
    out
}

/// Work still held by the services, from one scrape of each.
pub fn held(scrapes: &BTreeMap<&str, Scrape>, last_window_end_ms: i64, now_ms: i64) -> Vec<String> {
    let mut out = Vec::new();
    for (service, gauge) in HELD {
        if let Some(s) = scrapes.get(service) {
            let v = s.sum(gauge, &[]);
            if v > 0.0 {
                out.push(format!("{service}: {gauge} = {v}"));
            }
        }
    }
    if let Some(s) = scrapes.get("aggregator") {
        let lag_ms = (s.sum("flowline_aggregator_watermark_lag_seconds", &[]) * 1000.0) as i64;
        let watermark = now_ms - lag_ms;
        if watermark < last_window_end_ms {
            out.push(format!(
                "aggregator: watermark {:.0}s before the end of the last window",
                (last_window_end_ms - watermark) as f64 / 1000.0
            ));
        }
    }
    out
}
