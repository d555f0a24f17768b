//! Command-line flags of `flowctl rebuild` and what they resolve to.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::bail;
use flowline_opensearch::OpenSearchSettings;

/// Where the archive (or the reference data) is: a local directory or an S3 bucket/prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl FromStr for Location {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.strip_prefix("s3://") {
            Some(rest) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(format!("{s:?} names no bucket"));
                }
                let prefix = prefix.trim_matches('/');
                Ok(Location::S3 {
                    bucket: bucket.to_string(),
                    prefix: if prefix.is_empty() {
                        String::new()
                    } else {
                        format!("{prefix}/")
                    },
                })
            }
            None => Ok(Location::Local(PathBuf::from(s))),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    Jsonl,
    Parquet,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReferenceFormat {
    Csv,
    Parquet,
}

/// Where results go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Local { dir: PathBuf, format: FileFormat },
    OpenSearch { version: u32, swap: bool },
}

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The raw archive: a directory holding `raw/<stream>/dt=YYYY-MM-DD/hour=HH/*.jsonl[.gz]`,
    /// or `s3://bucket[/prefix]` with the same layout below it.
    #[arg(long)]
    pub input: Option<Location>,
    /// Where `reference/raw/items/items.csv` and `reference/raw/promos/promos.csv` (or the
    /// clean Parquet files) are; defaults to --input.
    #[arg(long)]
    pub reference: Option<Location>,
    #[arg(long, value_enum, default_value = "csv")]
    pub reference_format: ReferenceFormat,
    /// Write local files into this directory (`orders/`, `order_metrics/`, `errors/`),
    /// no server needed.
    #[arg(long, conflicts_with = "opensearch")]
    pub output: Option<PathBuf>,
    /// File format of --output.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: FileFormat,
    /// Write to OpenSearch indices `orders-v<N>-YYYY.MM.DD` and `order-metrics-v<N>-...`,
    /// `curated-v<N>/` in --bucket, then move the aliases (unless --no-swap).
    #[arg(long)]
    pub opensearch: bool,
    /// The index set version N (2 or more; 1 names the original unversioned indices).
    /// Rerunning with the same N overwrites the same documents and objects.
    #[arg(long = "version", value_name = "N", requires = "opensearch")]
    pub index_version: Option<u32>,
    /// Leave the aliases where they are.
    #[arg(long)]
    pub no_swap: bool,
    /// Bucket of the curated output and the `errors/rebuild/` prefix (OpenSearch mode).
    #[arg(long, default_value = "analytics-lake")]
    pub bucket: String,
    /// Prefix of the index and alias names (as `bootstrap --prefix`): `<prefix>orders`, ...
    #[arg(long, default_value = "")]
    pub index_prefix: String,
    #[arg(long, env = "OPENSEARCH_URL", default_value = "http://127.0.0.1:9200")]
    pub opensearch_url: String,
    /// Primary shards and replicas of the new indices.
    #[arg(long, default_value_t = 1)]
    pub index_shards: u32,
    #[arg(long, default_value_t = 1)]
    pub index_replicas: u32,
    /// Delete index set N (its indices and rebuild templates; 1 = the original
    /// `orders-YYYY.MM.DD` indices) and exit. Refused while an alias points into it.
    #[arg(long, value_name = "N", conflicts_with_all = ["input", "output", "opensearch"])]
    pub delete_old: Option<u32>,
    /// 1: everything on one thread. 2: reading, decompressing, parsing and merging on a
    /// second thread, join, windows and output on the first.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub threads: u8,
    /// As the enrichment-joiner's `join.join_timeout`.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub join_timeout: Duration,
    /// As the services' `watermark.out_of_orderness`.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub out_of_orderness: Duration,
    /// As the aggregator's `windows.length` and `windows.allowed_lateness`.
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
    pub window: Duration,
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub allowed_lateness: Duration,
    /// Event time between two watermark advances of the join (the services advance once
    /// per `emit.interval` of wall-clock time).
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    pub advance_every: Duration,
    /// Records per output chunk (one file or object per chunk and partition); a chunk is
    /// held in memory until written.
    #[arg(long, default_value_t = 50_000)]
    pub chunk_rows: usize,
}

impl Args {
    pub fn mode(&self) -> anyhow::Result<Mode> {
        match (&self.output, self.opensearch) {
            (Some(dir), false) => Ok(Mode::Local {
                dir: dir.clone(),
                format: self.format,
            }),
            (None, true) => match self.index_version {
                Some(v) if v >= 2 => Ok(Mode::OpenSearch {
                    version: v,
                    swap: !self.no_swap,
                }),
                Some(v) => bail!("--version {v}: must be 2 or more (1 is the original index set)"),
                None => bail!("--opensearch needs --version N (the new index set)"),
            },
            _ => bail!("say where results go: --output DIR or --opensearch --version N"),
        }
    }

    pub fn opensearch_settings(&self) -> OpenSearchSettings {
        OpenSearchSettings {
            url: self.opensearch_url.clone(),
            username: std::env::var("OPENSEARCH_USERNAME").ok(),
            password: std::env::var("OPENSEARCH_PASSWORD").ok(),
            ..OpenSearchSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            "s3://lake/archive/2026/".parse::<Location>().unwrap(),
            Location::S3 {
                bucket: "lake".into(),
                prefix: "archive/2026/".into()
            }
        );
        assert_eq!(
            "s3://lake".parse::<Location>().unwrap(),
            Location::S3 {
                bucket: "lake".into(),
                prefix: String::new()
            }
        );
        assert!("s3://".parse::<Location>().is_err());
        assert_eq!(
            "/tmp/x".parse::<Location>().unwrap(),
            Location::Local("/tmp/x".into())
        );
    }
}
