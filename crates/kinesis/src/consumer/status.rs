//! What a service needs for `/ready` and watermark idleness: a small shared state, published
//! through a `tokio::sync::watch` channel.

use std::collections::BTreeMap;
use std::time::Instant;

use tokio::sync::watch;

use super::position::Checkpoint;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardState {
    /// Held, waiting until every parent shard is checkpointed at SHARD_END.
    WaitingOnParents,
    Processing,
    ShuttingDown,
}

/// One shard held by this worker.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardStatus {
    pub stream: String,
    pub shard_id: String,
    pub state: ShardState,
    /// MillisBehindLatest of the last read; None before the first read.
    pub millis_behind_latest: Option<i64>,
    /// Since when reads return nothing while caught up (MillisBehindLatest = 0); None while
    /// records arrive or the reader is behind. Drives watermark idleness.
    pub caught_up_since: Option<Instant>,
    pub last_checkpoint: Option<Checkpoint>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsumerStatus {
    /// The lease table answered the last scan.
    pub lease_table_ok: bool,
    /// Kinesis answered the last shard listing.
    pub kinesis_ok: bool,
    /// Between the start of `run` and the start of shutdown.
    pub running: bool,
    /// Why the last failed step failed, for `/ready` bodies.
    pub last_error: Option<String>,
    /// Held shards by lease key.
    pub shards: BTreeMap<String, ShardStatus>,
}

impl ConsumerStatus {
    /// Ready: running, both services answer, and holding or acquiring leases.
    pub fn is_ready(&self) -> bool {
        self.not_ready_reason().is_none()
    }

    pub fn not_ready_reason(&self) -> Option<String> {
        let why = if !self.running {
            "consumer is not running"
        } else if !self.lease_table_ok {
            "lease table (DynamoDB) not reachable yet"
        } else if !self.kinesis_ok {
            "Kinesis not reachable yet"
        } else {
            return None;
        };
        Some(match &self.last_error {
            Some(e) => format!("{why}: {e}"),
            None => why.to_owned(),
        })
    }
}

/// The writer side, shared by the consumer's tasks.
#[derive(Debug, Clone)]
pub(crate) struct StatusBoard {
    tx: std::sync::Arc<watch::Sender<ConsumerStatus>>,
}

impl StatusBoard {
    pub fn new() -> Self {
        Self {
            tx: std::sync::Arc::new(watch::Sender::new(ConsumerStatus::default())),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<ConsumerStatus> {
        self.tx.subscribe()
    }

    pub fn update(&self, f: impl FnOnce(&mut ConsumerStatus)) {
        self.tx.send_modify(f);
    }

    pub fn update_shard(&self, lease_key: &str, f: impl FnOnce(&mut ShardStatus)) {
        self.tx
            .send_if_modified(|s| match s.shards.get_mut(lease_key) {
                Some(shard) => {
                    let before = shard.clone();
                    f(shard);
                    *shard != before
                }
                None => false,
            });
    }
}
