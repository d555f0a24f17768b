//! Command-line flags of `flowctl replay` and what they resolve to: which archived
//! streams are read, which stream each one is replayed into, and the hour range.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use flowline_model::StreamKind;
use serde::{Deserialize, Serialize};

use super::hour::{Hour, HourRange};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Bucket holding the archive (`raw/<stream>/dt=…/hour=…/`); bad lines go to its
    /// `errors/replay/` prefix.
    #[arg(long, default_value = "analytics-lake")]
    pub bucket: String,
    /// Which raw streams to replay (comma-separated kinds).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "customers,addresses,sales"
    )]
    pub streams: Vec<StreamKind>,
    /// Archived stream name of a kind, when it is not the kind's default name
    /// (e.g. `--source sales=dev-sales` reads `raw/dev-sales/`). Repeatable.
    #[arg(long = "source", value_name = "KIND=STREAM", value_parser = parse_mapping)]
    pub sources: Vec<(StreamKind, String)>,
    /// Stream to replay a kind into (e.g. `--target sales=sales-replay`); by default the
    /// archived stream's own name (with `--stream-prefix` in front). Repeatable.
    #[arg(long = "target", value_name = "KIND=STREAM", value_parser = parse_mapping)]
    pub targets: Vec<(StreamKind, String)>,
    /// Prefix put in front of the archived stream name to name the target of every kind
    /// without a `--target` (e.g. `replay-` replays `raw/sales/` into `replay-sales`).
    #[arg(long, default_value = "")]
    pub stream_prefix: String,
    /// First hour partition to replay: `YYYY-MM-DD` or `YYYY-MM-DDTHH` (UTC, inclusive).
    #[arg(long, value_parser = |s: &str| Hour::parse_bound(s, false))]
    pub from: Option<Hour>,
    /// Last hour partition to replay: `YYYY-MM-DD` (through its hour 23) or
    /// `YYYY-MM-DDTHH` (UTC, inclusive).
    #[arg(long, value_parser = |s: &str| Hour::parse_bound(s, true))]
    pub to: Option<Hour>,
    /// User records per second over all streams; 0 = as fast as the streams take them
    /// (the producer still keeps to each shard's write limits).
    #[arg(long, default_value_t = 0)]
    pub rate: u32,
    /// Position file: what has been acknowledged so far. A run with the same bucket,
    /// streams, targets and range continues after it.
    #[arg(long, default_value = "flowctl-replay.position.json")]
    pub position: PathBuf,
    /// Ignore (and overwrite) an existing position file: start from the beginning.
    #[arg(long)]
    pub restart: bool,
    /// Stop after sending this many records (they are acknowledged and recorded in the
    /// position file first); run again to continue.
    #[arg(long)]
    pub max_records: Option<u64>,
    /// PutRecords calls in flight per target stream. 1 keeps every partition key in
    /// event-time order; more is faster but a later batch can overtake an earlier one.
    #[arg(long, default_value_t = 1)]
    pub in_flight: usize,
    /// How long a record may wait to fill a batch or an aggregate.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    pub linger: Duration,
    /// How often the position file is rewritten while running (always at the end).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub save_every: Duration,
    /// Archive objects downloaded at once.
    #[arg(long, default_value_t = 8)]
    pub downloads: usize,
    /// No progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_mapping(s: &str) -> Result<(StreamKind, String), String> {
    let (kind, stream) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected KIND=STREAM"))?;
    let kind = kind.trim().parse::<StreamKind>()?;
    let stream = stream.trim();
    if stream.is_empty() {
        return Err(format!("{s:?}: empty stream name"));
    }
    Ok((kind, stream.to_string()))
}

/// One archived stream to replay and where it goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub kind: StreamKind,
    /// Archived stream name (`raw/<stream>/`).
    pub stream: String,
    /// Stream the records are put on.
    pub target: String,
}

/// What a run replays. Stored in the position file: a position only means something
/// for the same plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub bucket: String,
    pub sources: Vec<Source>,
    pub range: HourRange,
}

impl Args {
    pub fn plan(&self) -> anyhow::Result<Plan> {
        if let (Some(from), Some(to)) = (&self.from, &self.to)
            && from > to
        {
            bail!("--from {from} is after --to {to}");
        }
        if self.in_flight == 0 || self.downloads == 0 {
            bail!("--in-flight and --downloads must be at least 1");
        }
        let mut kinds = self.streams.clone();
        kinds.sort();
        kinds.dedup();
        if kinds.is_empty() {
            bail!("--streams: nothing to replay");
        }
        let sources: BTreeMap<StreamKind, String> = self.sources.iter().cloned().collect();
        let targets: BTreeMap<StreamKind, String> = self.targets.iter().cloned().collect();
        for kind in sources.keys().chain(targets.keys()) {
            if !kinds.contains(kind) {
                bail!("--source/--target name {kind}, which --streams does not replay");
            }
        }
        let sources: Vec<Source> = kinds
            .iter()
            .map(|&kind| {
                let stream = sources
                    .get(&kind)
                    .cloned()
                    .unwrap_or_else(|| kind.default_stream_name().to_string());
                let target = targets
                    .get(&kind)
                    .cloned()
                    .unwrap_or_else(|| format!("{}{stream}", self.stream_prefix));
                Source {
                    kind,
                    stream,
                    target,
                }
            })
            .collect();
        Ok(Plan {
            bucket: self.bucket.clone(),
            sources,
            range: HourRange {
                from: self.from.clone(),
                to: self.to.clone(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn plan(argv: &[&str]) -> anyhow::Result<Plan> {
        let mut all = vec!["replay"];
        all.extend_from_slice(argv);
        Cli::try_parse_from(all)?.args.plan()
    }

    fn targets(p: &Plan) -> Vec<(String, String)> {
        p.sources
            .iter()
            .map(|s| (s.stream.clone(), s.target.clone()))
            .collect()
    }

    #[test]
    fn defaults_replay_every_raw_stream_into_itself() {
        let p = plan(&[]).unwrap();
        assert_eq!(
            targets(&p),
            [
                ("customers", "customers"),
                ("addresses", "addresses"),
                ("sales", "sales")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert_eq!(p.range, HourRange::default());
    }

    #[test]
    fn targets_come_from_the_mapping_or_the_prefix() {
        let p = plan(&[
            "--streams",
            "sales,customers",
            "--source",
            "sales=dev-sales",
            "--target",
            "sales=sales-replay",
            "--stream-prefix",
            "r-",
        ])
        .unwrap();
        assert_eq!(
            targets(&p),
            [("customers", "r-customers"), ("dev-sales", "sales-replay")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn inconsistent_flags_are_refused() {
        assert!(plan(&["--streams", "sales", "--target", "customers=x"]).is_err());
        assert!(plan(&["--from", "2026-01-02", "--to", "2026-01-01"]).is_err());
        assert!(plan(&["--target", "orders=x"]).is_err());
        assert!(plan(&["--target", "sales"]).is_err());
        assert!(plan(&["--in-flight", "0"]).is_err());
        let p = plan(&["--from", "2026-01-01T05", "--to", "2026-01-01"]).unwrap();
        assert_eq!(p.range.to.unwrap().hour, 23);
    }
}
