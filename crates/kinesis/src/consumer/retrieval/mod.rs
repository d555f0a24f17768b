//! Shard readers: GetRecords polling and enhanced fan-out. A reader runs as a task that sends
//! raw batches into a bounded channel (so it reads ahead at most the channel's capacity) and
//! retries every failure itself: it is the one retry layer for reads.

use std::time::{Duration, SystemTime};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::{Record, ShardIteratorType};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

use super::config::ConsumerConfig;
use super::position::Checkpoint;

mod fanout;
mod polling;

pub(crate) use fanout::{FanoutReader, ensure_stream_consumer};
pub(crate) use polling::PollingReader;

/// Upper bound of one GetShardIterator / GetRecords / SubscribeToShard call (to its response).
const READ_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The readers' client: no SDK retry, because readers back off and retry themselves (the one
/// retry layer for reads, where throttling and expired iterators are handled); and a bound on
/// each call unless the caller configured one, so a hung call cannot stall a shard. An event
/// stream's body is not bound by it, only its start.
pub(crate) fn reader_client(kinesis: &Client) -> Client {
    let mut timeouts = kinesis
        .config()
        .timeout_config()
        .cloned()
        .unwrap_or_else(|| TimeoutConfig::builder().build());
    if timeouts.operation_timeout().is_none() {
        timeouts = timeouts
            .to_builder()
            .operation_timeout(READ_CALL_TIMEOUT)
            .build();
    }
    Client::from_conf(
        kinesis
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts)
            .build(),
    )
}

/// Records as Kinesis returned them (before deaggregation).
#[derive(Debug)]
pub(crate) struct RawBatch {
    pub records: Vec<Record>,
    pub millis_behind_latest: Option<i64>,
    /// The shard is closed and every record was returned.
    pub shard_end: bool,
}

/// Where a reader starts (or restarts after an expired iterator or subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StartPosition {
    TrimHorizon,
    Latest,
    AtTimestamp(SystemTime),
    AtSequence(String),
    AfterSequence(String),
}

impl StartPosition {
    /// Resuming from a checkpoint: AT the checkpointed record (not after it) because a KPL
    /// aggregated record may be only partly processed; the shard consumer drops user records
    /// at or before the checkpoint, as the KCL does.
    pub fn from_checkpoint(cp: &Checkpoint, config: &ConsumerConfig) -> Option<Self> {
        Some(match cp {
            Checkpoint::TrimHorizon => Self::TrimHorizon,
            Checkpoint::Latest => Self::Latest,
            Checkpoint::AtTimestamp => {
                Self::AtTimestamp(config.initial_timestamp.unwrap_or(SystemTime::UNIX_EPOCH))
            }
            Checkpoint::Sequence {
                sequence_number, ..
            } => Self::AtSequence(sequence_number.clone()),
            Checkpoint::ShardEnd => return None,
        })
    }

    fn iterator_type(&self) -> ShardIteratorType {
        match self {
            Self::TrimHorizon => ShardIteratorType::TrimHorizon,
            Self::Latest => ShardIteratorType::Latest,
            Self::AtTimestamp(_) => ShardIteratorType::AtTimestamp,
            Self::AtSequence(_) => ShardIteratorType::AtSequenceNumber,
            Self::AfterSequence(_) => ShardIteratorType::AfterSequenceNumber,
        }
    }

    fn sequence_number(&self) -> Option<String> {
        match self {
            Self::AtSequence(s) | Self::AfterSequence(s) => Some(s.clone()),
            _ => None,
        }
    }

    fn timestamp(&self) -> Option<aws_smithy_types::DateTime> {
        match self {
            Self::AtTimestamp(t) => Some(aws_smithy_types::DateTime::from(*t)),
            _ => None,
        }
    }
}

/// Exponential backoff with full jitter.
#[derive(Debug)]
pub(crate) struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            attempt: 0,
        }
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn next_delay(&mut self) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        // Half fixed, half random: spreads retries of many shards without collapsing to zero.
        let half = exp / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        for _ in 0..20 {
            assert!(b.next_delay() <= Duration::from_secs(1));
        }
        assert!(b.next_delay() >= Duration::from_millis(500));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
