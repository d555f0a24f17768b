//! The progress bar (on stderr, hidden when that is not a terminal) and the summary
//! printed at the end.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// Records sent and acknowledged against the records found so far. The total grows as
/// hours are read (one hour ahead of sending), so it is exact once the last hour is.
pub struct Progress {
    bar: ProgressBar,
    hours: usize,
}

impl Progress {
    pub fn new(hours: usize, enabled: bool) -> Progress {
        let visible = enabled && std::io::stderr().is_terminal();
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} acked ({per_sec}, eta {eta}) {msg}",
            )
            .expect("valid template"),
        );
        if visible {
            // Redraws (elapsed, rate) while waiting on a slow stream.
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        Progress { bar, hours }
    }

    /// Hour `n` (1-based) has been read and holds `records` to send.
    pub fn hour_read(&self, n: usize, hour: &str, records: u64) {
        self.bar.inc_length(records);
        self.bar
            .set_message(format!("{hour} ({n}/{} hours)", self.hours));
    }

    pub fn acked(&self) {
        self.bar.inc(1);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every record found is acknowledged.
    Finished,
    /// `--max-records` reached.
    MaxRecords,
    /// SIGINT/SIGTERM: what was sent was delivered and recorded, then the run stopped.
    Interrupted,
    /// A record could not be delivered (or the position not written).
    Failed,
}

/// What a run did, printed at the end (`--json` for machines).
#[derive(Debug, Serialize)]
pub struct Summary {
    pub outcome: Outcome,
    /// Hour partitions in the range (with objects of the selected streams).
    pub hours: usize,
    pub objects: usize,
    /// Records put on the target streams by this run.
    pub sent: u64,
    /// Of those, acknowledged and recorded in the position file.
    pub acknowledged: u64,
    /// Records earlier runs of this plan had acknowledged (skipped by this one).
    pub already_acknowledged: u64,
    /// Identical lines sent once (an object partly duplicated in the archive).
    pub duplicates: u64,
    /// Bad lines per error type, written to `errors/replay/`.
    pub bad_lines: BTreeMap<String, u64>,
    pub error_objects: usize,
    /// Acknowledged records of this plan over all runs.
    pub acknowledged_total: u64,
    pub position_file: String,
    pub seconds: f64,
    pub records_per_second: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Summary {
    pub fn print(&self, json: bool) {
        if json {
            println!(
                "{}",
                serde_json::to_string(self).expect("summary serialises")
            );
            return;
        }
        let bad: u64 = self.bad_lines.values().sum();
        println!(
            "replay {}: {} records sent, {} acknowledged ({:.0}/s over {:.1}s); {} already acknowledged before; \
             {} duplicate lines dropped; {} bad lines in {} objects under errors/replay/ {:?}; \
             {} hours, {} objects; {} acknowledged in total, position in {}",
            serde_json::to_value(self.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            self.sent,
            self.acknowledged,
            self.records_per_second,
            self.seconds,
            self.already_acknowledged,
            self.duplicates,
            bad,
            self.error_objects,
            self.bad_lines,
            self.hours,
            self.objects,
            self.acknowledged_total,
            self.position_file,
        );
    }
}
