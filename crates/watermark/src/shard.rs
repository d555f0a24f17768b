//! Shard identity and the per-shard entry a copy publishes.

use flowline_model::Timestamp;
use serde::{Deserialize, Serialize};

/// A shard of one input stream.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShardKey {
    pub stream: String,
    pub shard_id: String,
}

impl ShardKey {
    pub fn new(stream: impl Into<String>, shard_id: impl Into<String>) -> Self {
        Self {
            stream: stream.into(),
            shard_id: shard_id.into(),
        }
    }
}

/// What the owner of a shard publishes about it (one DynamoDB item per
/// shard, overwritten by whichever copy owns the shard), and what
/// [`crate::global_watermark`] takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardWatermark {
    pub stream: String,
    pub shard_id: String,
    /// Greatest event time delivered minus the out-of-orderness; `None`
    /// before the first event (the shard then holds the watermark unless idle).
    pub watermark: Option<Timestamp>,
    /// Caught up with empty reads for at least the idle timeout when published.
    pub idle: bool,
    /// SHARD_END was processed: no more records will come from this shard.
    pub closed: bool,
    /// Parent shard ids (from the shard listing), empty for an original shard.
    #[serde(default)]
    pub parents: Vec<String>,
    /// Child shard ids when the owner knows them (empty if it does not).
    #[serde(default)]
    pub children: Vec<String>,
    /// Wall-clock time of publication.
    pub published_at: Timestamp,
}

impl ShardWatermark {
    pub fn key(&self) -> ShardKey {
        ShardKey::new(&self.stream, &self.shard_id)
    }
}
