//! What the dispatcher moves around: user records waiting for an ack, and the Kinesis records
//! (plain or aggregated) that carry them.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::Instant;

use super::Ack;
use super::api::PutEntry;
use crate::agg::AggregateBuilder;
use crate::error::{ApiError, PutError};

/// A user record's acknowledgement channel and buffer permits (released when it settles).
pub(crate) struct UserSlot {
    /// Arrival order at the dispatcher; flushes wait for every id up to theirs.
    pub id: u64,
    pub ack_tx: oneshot::Sender<Result<Ack, PutError>>,
    pub _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

/// One PutRecords entry and the user records it carries.
pub(crate) struct KinesisRecord {
    pub entry: PutEntry,
    pub meta: RecordMeta,
}

pub(crate) struct RecordMeta {
    /// In order; more than one means the entry is an aggregate.
    pub users: Vec<UserSlot>,
    pub aggregated: bool,
    /// Send by then even if the batch is not full.
    pub linger_deadline: Instant,
    /// Fail by then if not delivered (the earliest TTL of the user records).
    pub ttl_deadline: Instant,
    pub attempts: u32,
    pub last_error: Option<ApiError>,
    /// Hash key the entry is routed by.
    pub hash_key: u128,
    /// Shard we expect it to land on (None when no open shard covers its hash key).
    pub predicted_shard: Option<Arc<str>>,
}

impl KinesisRecord {
    pub fn size(&self) -> usize {
        self.entry.size()
    }
}

/// An aggregate being filled for one shard.
pub(crate) struct OpenAggregate {
    pub builder: AggregateBuilder,
    pub users: Vec<UserSlot>,
    /// The first record as given, sent as a plain record if nothing joins it.
    pub first: PutEntry,
    pub first_hash_key: u128,
    pub linger_deadline: Instant,
    pub ttl_deadline: Instant,
}
