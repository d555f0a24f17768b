//! Settings, embeddable in a service's layered configuration.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

const MIB: u64 = 1024 * 1024;
/// S3's smallest part (except the last) and largest part count.
const MIN_PART_BYTES: u64 = 5 * MIB;
const MAX_PART_BYTES: u64 = 5 * 1024 * MIB;

/// A problem with a setting: `(setting path, message)`.
pub type Problem = (String, String);

/// The lake writer: buffering, encoding and S3 upload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LakeConfig {
    pub bucket: String,
    pub buffer: BufferConfig,
    pub upload: UploadConfig,
    /// gzip level of JSON Lines objects, 0..=9.
    pub gzip_level: u32,
}

impl Default for LakeConfig {
    fn default() -> Self {
        LakeConfig {
            bucket: "analytics-lake".to_string(),
            buffer: BufferConfig::default(),
            upload: UploadConfig::default(),
            gzip_level: 6,
        }
    }
}

/// Firehose-style buffering hints, with per-stream overrides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BufferConfig {
    /// Flush a shard's buffers when one of them holds this many input bytes.
    pub size_hint_bytes: u64,
    /// Flush when the newest record arrived this long after the oldest buffered one.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// On an idle shard, flush when the buffer has waited `interval` plus this grace by
    /// the wall clock (the grace lets the deterministic record-time cut win on a busy
    /// shard; see `writer.rs`).
    #[serde(with = "humantime_serde")]
    pub wall_clock_grace: Duration,
    /// Input bytes buffered or being uploaded, over all buffers; `add` waits above it.
    pub memory_budget_bytes: u64,
    /// Overrides by stream name.
    pub streams: BTreeMap<String, BufferHints>,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            size_hint_bytes: 64 * MIB,
            interval: Duration::from_secs(60),
            wall_clock_grace: Duration::from_secs(10),
            memory_budget_bytes: 512 * MIB,
            streams: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BufferHints {
    pub size_hint_bytes: Option<u64>,
    #[serde(with = "humantime_serde")]
    pub interval: Option<Duration>,
}

impl BufferConfig {
    /// `(size hint, interval)` for `stream`.
    pub fn hints(&self, stream: &str) -> (u64, Duration) {
        let o = self.streams.get(stream);
        (
            o.and_then(|h| h.size_hint_bytes)
                .unwrap_or(self.size_hint_bytes),
            o.and_then(|h| h.interval).unwrap_or(self.interval),
        )
    }
}

/// S3 upload: PutObject below the threshold, multipart above.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UploadConfig {
    pub multipart_threshold_bytes: u64,
    pub part_size_bytes: u64,
    /// Objects uploaded at once (each object's parts go one after another).
    pub max_concurrent_uploads: usize,
    pub retry: RetryConfig,
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig {
            multipart_threshold_bytes: 16 * MIB,
            part_size_bytes: 8 * MIB,
            max_concurrent_uploads: 4,
            retry: RetryConfig::default(),
        }
    }
}

/// Exponential backoff with full jitter. This is the only retry layer: the crate
/// turns the SDK clients' own retries off.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryConfig {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Limit of one attempt; a timed-out attempt is retried.
    #[serde(with = "humantime_serde")]
    pub attempt_timeout: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(60),
        }
    }
}

/// Delivery through a Firehose delivery stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FirehoseConfig {
    pub delivery_stream: String,
    /// Records per PutRecordBatch (Firehose's limit: 500).
    pub max_batch_records: usize,
    /// Bytes per PutRecordBatch (Firehose's limit: 4 MiB).
    pub max_batch_bytes: usize,
    pub retry: RetryConfig,
}

impl Default for FirehoseConfig {
    fn default() -> Self {
        FirehoseConfig {
            delivery_stream: String::new(),
            max_batch_records: crate::firehose::MAX_BATCH_RECORDS,
            max_batch_bytes: crate::firehose::MAX_BATCH_BYTES,
            retry: RetryConfig::default(),
        }
    }
}

fn problem(out: &mut Vec<Problem>, section: &str, setting: &str, message: impl Into<String>) {
    let path = if section.is_empty() {
        setting.to_string()
    } else {
        format!("{section}.{setting}")
    };
    out.push((path, message.into()));
}

impl LakeConfig {
    /// Problems, with setting paths under `section` (for example `lake`).
    pub fn validate(&self, section: &str) -> Vec<Problem> {
        let mut out = Vec::new();
        if !valid_bucket(&self.bucket) {
            problem(
                &mut out,
                section,
                "bucket",
                format!("{:?} is not a valid S3 bucket name", self.bucket),
            );
        }
        if self.gzip_level > 9 {
            problem(&mut out, section, "gzip_level", "must be 0..=9");
        }
        out.extend(self.buffer.validate(&join(section, "buffer")));
        out.extend(self.upload.validate(&join(section, "upload")));
        out
    }
}

impl BufferConfig {
    pub fn validate(&self, section: &str) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut check = |setting: String, size: u64, interval: Duration| {
            if size == 0 {
                problem(
                    &mut out,
                    section,
                    &format!("{setting}size_hint_bytes"),
                    "must be positive",
                );
            } else if size > self.memory_budget_bytes {
                problem(
                    &mut out,
                    section,
                    &format!("{setting}size_hint_bytes"),
                    format!(
                        "{size} exceeds memory_budget_bytes ({}): buffers could never reach it",
                        self.memory_budget_bytes
                    ),
                );
            }
            if interval.is_zero() {
                problem(
                    &mut out,
                    section,
                    &format!("{setting}interval"),
                    "must be positive",
                );
            }
        };
        check(String::new(), self.size_hint_bytes, self.interval);
        for name in self.streams.keys() {
            let (size, interval) = self.hints(name);
            check(format!("streams.{name}."), size, interval);
        }
        if self.memory_budget_bytes == 0 {
            problem(&mut out, section, "memory_budget_bytes", "must be positive");
        }
        out
    }
}

impl UploadConfig {
    pub fn validate(&self, section: &str) -> Vec<Problem> {
        let mut out = Vec::new();
        if !(MIN_PART_BYTES..=MAX_PART_BYTES).contains(&self.part_size_bytes) {
            problem(
                &mut out,
                section,
                "part_size_bytes",
                format!("must be between {MIN_PART_BYTES} and {MAX_PART_BYTES} (S3 limits)"),
            );
        }
        if self.multipart_threshold_bytes == 0 {
            problem(
                &mut out,
                section,
                "multipart_threshold_bytes",
                "must be positive",
            );
        }
        if self.max_concurrent_uploads == 0 {
            problem(
                &mut out,
                section,
                "max_concurrent_uploads",
                "must be at least 1",
            );
        }
        out.extend(self.retry.validate(&join(section, "retry")));
        out
    }
}

impl RetryConfig {
    pub fn validate(&self, section: &str) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.max_attempts == 0 {
            problem(&mut out, section, "max_attempts", "must be at least 1");
        }
        if self.initial_backoff.is_zero() || self.initial_backoff > self.max_backoff {
            problem(
                &mut out,
                section,
                "initial_backoff",
                "must be positive and at most max_backoff",
            );
        }
        if self.attempt_timeout.is_zero() {
            problem(&mut out, section, "attempt_timeout", "must be positive");
        }
        out
    }
}

impl FirehoseConfig {
    pub fn validate(&self, section: &str) -> Vec<Problem> {
        let mut out = Vec::new();
        let n = self.delivery_stream.len();
        if n == 0
            || n > 64
            || !self
                .delivery_stream
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            problem(
                &mut out,
                section,
                "delivery_stream",
                "must be 1-64 characters of letters, digits, _ . -",
            );
        }
        if !(1..=crate::firehose::MAX_BATCH_RECORDS).contains(&self.max_batch_records) {
            problem(&mut out, section, "max_batch_records", "must be 1..=500");
        }
        if !(crate::firehose::MAX_RECORD_BYTES..=crate::firehose::MAX_BATCH_BYTES)
            .contains(&self.max_batch_bytes)
        {
            problem(
                &mut out,
                section,
                "max_batch_bytes",
                "must be between 1000 KiB and 4 MiB",
            );
        }
        out.extend(self.retry.validate(&join(section, "retry")));
        out
    }
}

fn join(section: &str, child: &str) -> String {
    if section.is_empty() {
        child.to_string()
    } else {
        format!("{section}.{child}")
    }
}

fn valid_bucket(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let c = LakeConfig::default();
        assert!(c.validate("lake").is_empty(), "{:?}", c.validate("lake"));
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"interval\":\"1m\""), "{json}");
        let back: LakeConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        let partial: LakeConfig =
            serde_json::from_str(r#"{"buffer":{"streams":{"sales":{"interval":"5s"}}}}"#).unwrap();
        assert_eq!(
            partial.buffer.hints("sales"),
            (64 * MIB, Duration::from_secs(5))
        );
        assert_eq!(
            partial.buffer.hints("customers"),
            (64 * MIB, Duration::from_secs(60))
        );
    }

    #[test]
    fn problems_name_the_setting() {
        let mut c = LakeConfig {
            bucket: "Bad_Bucket".into(),
            ..LakeConfig::default()
        };
        c.upload.part_size_bytes = 1024;
        c.buffer.streams.insert(
            "sales".into(),
            BufferHints {
                size_hint_bytes: Some(u64::MAX),
                interval: None,
            },
        );
        c.upload.retry.max_attempts = 0;
        let names: Vec<String> = c.validate("lake").into_iter().map(|(s, _)| s).collect();
        assert_eq!(
            names,
            [
                "lake.bucket",
                "lake.buffer.streams.sales.size_hint_bytes",
                "lake.upload.part_size_bytes",
                "lake.upload.retry.max_attempts"
            ]
        );
        let f = FirehoseConfig::default();
        assert_eq!(f.validate("firehose")[0].0, "firehose.delivery_stream");
    }
}
