//! Enriched orders handed to the output producer and not yet acknowledged.
//!
//! The joiner does not wait for Kinesis while it joins: each release's orders are one
//! write here, and the join loop goes on reading and joining. A write's sales leave the
//! pending store only once all of its orders are acknowledged (`JoinCore::confirm`), so a
//! crash in between re-emits them, identical. Writes complete in order; at most `max` are
//! outstanding, which bounds memory and how far emission runs ahead of the acknowledgements.

use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, StreamExt};

use flowline_join::PendingKey;
use flowline_kinesis::producer::AckSet;

/// One release's orders once every acknowledgement has settled.
pub struct Written {
    pub result: flowline_kinesis::Result<()>,
    /// The sales behind the orders (to remove from the pending store).
    pub keys: Vec<PendingKey>,
    pub complete: u64,
    pub partial: u64,
}

pub struct InFlight {
    writes: FuturesOrdered<BoxFuture<'static, Written>>,
    max: usize,
}

impl InFlight {
    pub fn new(max: usize) -> Self {
        Self {
            writes: FuturesOrdered::new(),
            max: max.max(1),
        }
    }

    pub fn push(&mut self, acks: AckSet, keys: Vec<PendingKey>, complete: u64, partial: u64) {
        self.writes.push_back(Box::pin(async move {
            Written {
                result: acks.wait().await.map(|_| ()),
                keys,
                complete,
                partial,
            }
        }));
    }

    pub fn is_full(&self) -> bool {
        self.writes.len() >= self.max
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The oldest write once settled; `None` when nothing is outstanding.
    pub async fn next(&mut self) -> Option<Written> {
        self.writes.next().await
    }
}
