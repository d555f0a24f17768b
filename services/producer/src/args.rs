//! What to produce, from the command line. The same flags always give the same events
//! (with an explicit `--start-time`; the default start time is "now").

use std::path::PathBuf;

use clap::{Args, Subcommand};
use flowline_datagen::GenConfig;
use flowline_model::Timestamp;

#[derive(Debug, Clone, Args)]
pub struct GenArgs {
    /// Seed of the synthetic data set.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of customers.
    #[arg(long, default_value_t = 1_000)]
    pub customers: u32,
    /// Number of sales.
    #[arg(long, default_value_t = 10_000)]
    pub sales: u64,
    /// Sales per second, in wall-clock time and in event time; 0 = as fast as possible.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Event time of the first event (RFC 3339), or `now`. Give a fixed time for
    /// byte-identical reruns.
    #[arg(long, default_value = "now", value_parser = parse_start_time)]
    pub start_time: StartTime,
    /// Share of records that are deliberately bad (0..=0.5), for exercising dead letters.
    #[arg(long, default_value_t = 0.0)]
    pub bad_record_ratio: f64,
    /// Replay events from a CSV or JSON Lines file instead of generating them.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy)]
pub enum StartTime {
    Now,
    At(Timestamp),
}

fn parse_start_time(s: &str) -> Result<StartTime, String> {
    if s == "now" {
        return Ok(StartTime::Now);
    }
    Timestamp::parse_rfc3339(s).map(StartTime::At)
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Upload the reference data (items, promos; CSV and Parquet) to S3 and exit.
    Reference,
}

impl GenArgs {
    /// The generator's settings; `now_ms` resolves `--start-time now`.
    pub fn gen_config(&self, now_ms: i64) -> anyhow::Result<GenConfig> {
        let start_time = match self.start_time {
            StartTime::At(t) => t,
            // Whole seconds, so the value logged can be passed back for a rerun.
            StartTime::Now => Timestamp::from_millis(now_ms - now_ms.rem_euclid(1000))
                .ok_or_else(|| anyhow::anyhow!("--start-time now: clock out of range"))?,
        };
        let cfg = GenConfig {
            seed: self.seed,
            customers: self.customers,
            sales: self.sales,
            rate: self.rate,
            start_time,
            bad_record_ratio: self.bad_record_ratio,
            ..GenConfig::default()
        };
        let problems = cfg.validate();
        anyhow::ensure!(
            problems.is_empty(),
            "invalid flags: {}",
            problems.join("; ")
        );
        Ok(cfg)
    }
}
