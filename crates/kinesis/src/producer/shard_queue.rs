//! Per-shard state of the dispatcher: the open aggregate, the send queue and the write budget.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::time::Instant;

use super::budget::ShardBudget;
use super::record::{KinesisRecord, OpenAggregate};

pub(crate) struct ShardState {
    /// None for the queue of records no open shard covers (mid-reshard listing).
    pub shard_id: Option<Arc<str>>,
    pub budget: Option<ShardBudget>,
    pub aggregate: Option<OpenAggregate>,
    pub queue: VecDeque<KinesisRecord>,
    pub queued_bytes: usize,
}

impl ShardState {
    pub fn new(shard_id: Option<Arc<str>>, budget: Option<ShardBudget>) -> Self {
        Self {
            shard_id,
            budget,
            aggregate: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
        }
    }

    pub fn push_back(&mut self, mut rec: KinesisRecord) {
        rec.meta.predicted_shard = self.shard_id.clone();
        self.queued_bytes += rec.size();
        self.queue.push_back(rec);
    }

    pub fn push_front(&mut self, mut rec: KinesisRecord) {
        rec.meta.predicted_shard = self.shard_id.clone();
        self.queued_bytes += rec.size();
        self.queue.push_front(rec);
    }

    pub fn pop_front(&mut self) -> Option<KinesisRecord> {
        let rec = self.queue.pop_front()?;
        self.queued_bytes -= rec.size();
        Some(rec)
    }

    /// Whether the budget admits a worthwhile chunk of the queue now (see `ShardBudget::worthwhile`).
    pub fn budget_ready(&mut self, now: Instant) -> bool {
        let Some(front) = self.queue.front() else {
            return false;
        };
        let front_size = front.size();
        match &mut self.budget {
            None => true,
            Some(b) => {
                let (records, bytes) = b.worthwhile(self.queue.len(), self.queued_bytes);
                b.admits(records.max(1), bytes.max(front_size), now)
            }
        }
    }

    pub fn budget_ready_at(&mut self, now: Instant) -> Instant {
        let Some(front) = self.queue.front() else {
            return now;
        };
        let front_size = front.size();
        match &mut self.budget {
            None => now,
            Some(b) => {
                let (records, bytes) = b.worthwhile(self.queue.len(), self.queued_bytes);
                b.ready_at(records.max(1), bytes.max(front_size), now)
            }
        }
    }
}
