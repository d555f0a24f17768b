//! `flowctl bootstrap`: everything the pipeline needs before its services start.

use std::time::Duration;

use anyhow::Context as _;
use flowline_aws::{AwsClients, AwsSettings};
use flowline_opensearch::OpenSearchSettings;

mod dynamodb;
mod kinesis;
mod s3;

/// The streams of DESIGN.md section 2.
pub const STREAMS: [&str; 6] = [
    "customers",
    "addresses",
    "sales",
    "orders-enriched",
    "order-metrics",
    "dead-letters",
];
/// Consuming applications; each has a `<application>-leases` table.
pub const APPLICATIONS: [&str; 4] = ["enrichment-joiner", "aggregator", "indexer", "archiver"];
/// Service state tables.
pub const STATE_TABLES: [&str; 2] = ["enrichment-joiner-state", "aggregator-state"];
pub const BUCKET: &str = "analytics-lake";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Shards per stream.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i32).range(1..=500))]
    shards: i32,
    /// Shards of one stream, overriding --shards: NAME=COUNT (repeatable).
    #[arg(long = "stream-shards", value_name = "NAME=COUNT", value_parser = parse_stream_shards)]
    stream_shards: Vec<(String, i32)>,
    /// Prefix for every stream, table and bucket name (isolated environments, tests).
    #[arg(long, default_value = "")]
    prefix: String,
    /// Bucket name (before --prefix).
    #[arg(long, default_value = BUCKET)]
    bucket: String,
    /// Primary shards per daily index.
    #[arg(long, default_value_t = 1)]
    index_shards: u32,
    /// Replicas per daily index (0 on a single-node cluster).
    #[arg(long, default_value_t = 1)]
    index_replicas: u32,
    /// Skip the OpenSearch templates (for an AWS-only environment).
    #[arg(long)]
    no_opensearch: bool,
    /// OpenSearch URL.
    #[arg(long, env = "OPENSEARCH_URL", default_value = "http://127.0.0.1:9200")]
    opensearch_url: String,
    /// How long to wait for a stream or table to become ACTIVE.
    #[arg(long, default_value = "60s", value_parser = humantime_duration)]
    wait: Duration,
}

fn parse_stream_shards(s: &str) -> Result<(String, i32), String> {
    let (name, count) = s.split_once('=').ok_or("expected NAME=COUNT")?;
    let count: i32 = count.parse().map_err(|e| format!("{count:?}: {e}"))?;
    if !(1..=500).contains(&count) {
        return Err(format!("{count}: shard count must be 1..=500"));
    }
    if !STREAMS.contains(&name) {
        return Err(format!(
            "unknown stream {name:?} (one of {})",
            STREAMS.join(", ")
        ));
    }
    Ok((name.to_string(), count))
}

fn humantime_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| e.to_string())
}

/// What happened to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Exists,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Created => "created",
            Outcome::Exists => "exists",
        })
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let aws = AwsClients::load(&AwsSettings::default()).await?;
    let mut report: Vec<(String, String)> = Vec::new();

    for stream in STREAMS {
        let shards = args
            .stream_shards
            .iter()
            .find(|(n, _)| n == stream)
            .map_or(args.shards, |(_, c)| *c);
        let name = format!("{}{stream}", args.prefix);
        let outcome = kinesis::ensure_stream(&aws, &name, shards, args.wait).await?;
        report.push((format!("stream {name}"), outcome.to_string()));
    }
    for app in APPLICATIONS {
        let name = format!("{}{app}-leases", args.prefix);
        let outcome =
            dynamodb::ensure_table(&aws, &name, dynamodb::Schema::Leases, args.wait).await?;
        report.push((format!("table {name}"), outcome.to_string()));
    }
    for table in STATE_TABLES {
        let name = format!("{}{table}", args.prefix);
        let outcome =
            dynamodb::ensure_table(&aws, &name, dynamodb::Schema::State, args.wait).await?;
        report.push((format!("table {name}"), outcome.to_string()));
    }
    let bucket = format!("{}{}", args.prefix, args.bucket);
    let outcome = s3::ensure_bucket(&aws, &bucket).await?;
    report.push((format!("bucket {bucket}"), outcome.to_string()));

    if !args.no_opensearch {
        let settings = OpenSearchSettings {
            url: args.opensearch_url.clone(),
            ..OpenSearchSettings::default()
        };
        let client = flowline_opensearch::build_client(&settings)?;
        for template in flowline_opensearch::templates::all(args.index_shards, args.index_replicas)
        {
            let applied = flowline_opensearch::templates::ensure(&client, &settings.url, &template)
                .await
                .with_context(|| format!("index template {}", template.name))?;
            report.push((
                format!("index template {}", template.name),
                applied.to_string(),
            ));
        }
    }

    let width = report.iter().map(|(r, _)| r.len()).max().unwrap_or(0);
    for (resource, outcome) in report {
        println!("{resource:width$}  {outcome}");
    }
    Ok(())
}
