//! Shard readers: GetRecords polling and enhanced fan-out. A reader runs as a task that sends
//! raw batches into a bounded channel (so it reads ahead at most the channel's capacity) and
//! retries every failure itself: it is the one retry layer for reads.

use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;

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
    /// When the call returned: the batch's `millis_behind_latest` is as of then.
    pub fetched_at: Instant,
}

impl RawBatch {
    pub fn new(records: Vec<Record>, millis_behind_latest: Option<i64>, shard_end: bool) -> Self {
        Self {
            records,
            millis_behind_latest,
            shard_end,
            fetched_at: Instant::now(),
        }
    }

    /// How far behind the tip of the shard the processor is once it has this batch:
    /// `MillisBehindLatest` as of the read, plus, for a batch with records, the time since
    /// (a busy stream went on meanwhile). An empty batch at the tip means caught up.
    pub fn behind_latest(&self) -> Option<Duration> {
        let ms = self.millis_behind_latest?;
        Some(lag(
            ms,
            (!self.records.is_empty()).then_some(self.fetched_at),
        ))
    }
}

/// `MillisBehindLatest` of a read, plus the time since it when the stream went on meanwhile.
fn lag(millis_behind_latest: i64, growing_since: Option<Instant>) -> Duration {
    let at_read = Duration::from_millis(u64::try_from(millis_behind_latest).unwrap_or(0));
    at_read + growing_since.map_or(Duration::ZERO, |t| t.elapsed())
}

/// How often a reader blocked on a full queue refreshes its shard's lag gauge.
const BLOCKED_LAG_REFRESH: Duration = Duration::from_secs(1);

/// Hands a batch to the shard's processor; false once the processor is gone. While the
/// queue is full (the processor is slower than the stream), the shard's lag gauge keeps
/// growing instead of showing the last read's value: without this a stalled processor
/// would look caught up, since its reader makes no calls that could report otherwise.
pub(crate) async fn send_batch(
    tx: &mpsc::Sender<RawBatch>,
    batch: RawBatch,
    gauge: &prometheus::Gauge,
) -> bool {
    let batch = match tx.try_send(batch) {
        Ok(()) => return true,
        Err(mpsc::error::TrySendError::Closed(_)) => return false,
        Err(mpsc::error::TrySendError::Full(batch)) => batch,
    };
    // Only a batch with records means the stream moved on while it waits.
    let grows = !batch.records.is_empty();
    let (at_read, fetched_at) = (batch.millis_behind_latest.unwrap_or(0), batch.fetched_at);
    let send = tx.send(batch);
    tokio::pin!(send);
    let mut refresh =
        tokio::time::interval_at(Instant::now() + BLOCKED_LAG_REFRESH, BLOCKED_LAG_REFRESH);
    loop {
        tokio::select! {
            sent = &mut send => return sent.is_ok(),
            _ = refresh.tick(), if grows => {
                gauge.set(lag(at_read, Some(fetched_at)).as_secs_f64());
            }
        }
    }
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

    fn record() -> Record {
        Record::builder()
            .sequence_number("1")
            .partition_key("k")
            .data(aws_smithy_types::Blob::new(b"x".to_vec()))
            .build()
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_blocked_reader_reports_growing_lag() {
        let lag = prometheus::Gauge::new("lag", "lag").unwrap();
        let (tx, mut rx) = mpsc::channel(1);
        assert!(send_batch(&tx, RawBatch::new(vec![record()], Some(0), false), &lag).await);
        let blocked = tokio::spawn({
            let (tx, lag) = (tx.clone(), lag.clone());
            async move { send_batch(&tx, RawBatch::new(vec![record()], Some(500), false), &lag).await }
        });
        tokio::time::sleep(Duration::from_millis(3_100)).await;
        // 500 ms behind when read, then 3 s waiting for the processor.
        assert!((3.4..=3.6).contains(&lag.get()), "lag {}", lag.get());
        let first = rx.recv().await.unwrap();
        assert_eq!(first.behind_latest(), Some(Duration::from_millis(3_100)));
        assert!(blocked.await.unwrap());
        drop(rx);
        assert!(!send_batch(&tx, RawBatch::new(Vec::new(), Some(0), false), &lag).await);
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_batch_at_the_tip_is_caught_up_however_long_it_waited() {
        let empty = RawBatch::new(Vec::new(), Some(0), false);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(empty.behind_latest(), Some(Duration::ZERO));
        assert_eq!(RawBatch::new(Vec::new(), None, false).behind_latest(), None);
    }
}
