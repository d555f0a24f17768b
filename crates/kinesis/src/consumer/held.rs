//! A lease this worker holds, and the [`Checkpointer`] processors use to write its progress.
//!
//! Every write for one lease (renew, checkpoint, release) goes through the lease's async mutex:
//! the writes are conditional on the counter, which each of them bumps, so they must not race.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::lease::Lease;
use super::metrics::ConsumerMetrics;
use super::position::Checkpoint;
use super::status::StatusBoard;
use super::table::LeaseTable;
use crate::shards::HashKeyRange;
use crate::{Error, Result};

#[derive(Debug)]
struct WriteState {
    counter: u64,
    checkpoint: Checkpoint,
    last_renewal: Instant,
    released: bool,
}

/// Progress of the reader as the processor sees it: what may be checkpointed.
#[derive(Debug, Default)]
struct Delivered {
    /// The furthest record handed to the processor.
    last: Option<Checkpoint>,
    /// Every record of the (closed) shard has been handed to the processor.
    shard_end: bool,
}

#[derive(Debug)]
pub(crate) struct HeldLease {
    pub key: String,
    pub stream: String,
    pub shard_id: String,
    pub parent_shard_ids: Vec<String>,
    pub hash_key_range: Option<HashKeyRange>,
    owner: String,
    status: StatusBoard,
    write: Mutex<WriteState>,
    delivered: StdMutex<Delivered>,
    /// Set once a release was attempted (shutdown or shard end).
    released: AtomicBool,
    /// Cancelled when the lease is lost (taken by another worker, or not renewed in time).
    pub lost: CancellationToken,
}

impl HeldLease {
    pub fn new(lease: &Lease, owner: &str, status: StatusBoard) -> Arc<Self> {
        Arc::new(Self {
            key: lease.key.clone(),
            stream: lease.stream.clone(),
            shard_id: lease.shard_id.clone(),
            parent_shard_ids: lease.parent_shard_ids.clone(),
            hash_key_range: lease.hash_key_range,
            owner: owner.to_owned(),
            status,
            write: Mutex::new(WriteState {
                counter: lease.counter,
                checkpoint: lease.checkpoint.clone(),
                last_renewal: Instant::now(),
                released: false,
            }),
            delivered: StdMutex::new(Delivered::default()),
            released: AtomicBool::new(false),
            lost: CancellationToken::new(),
        })
    }

    pub async fn checkpoint(&self) -> Checkpoint {
        self.write.lock().await.checkpoint.clone()
    }

    pub fn note_delivered(&self, last: Option<Checkpoint>, shard_end: bool) {
        let mut d = self.delivered.lock().expect("delivered lock");
        if let Some(last) = last {
            d.last = Some(last);
        }
        d.shard_end |= shard_end;
    }

    /// Renews the lease. Returns false when it is (now) lost.
    pub async fn renew(
        &self,
        table: &LeaseTable,
        failover: Duration,
        metrics: &ConsumerMetrics,
    ) -> bool {
        let mut st = self.write.lock().await;
        if st.released || self.lost.is_cancelled() {
            return false;
        }
        match table.renew(&self.key, &self.owner, st.counter).await {
            Ok(true) => {
                st.counter += 1;
                st.last_renewal = Instant::now();
                true
            }
            Ok(false) => {
                tracing::info!(lease = %self.key, "lease lost: renewal refused (taken by another worker)");
                self.lose(metrics);
                false
            }
            Err(e) => {
                metrics.lease_table_errors.inc();
                // Others consider the lease expired after the failover time without a renewal:
                // stop before they take it, as the KCL does.
                if st.last_renewal.elapsed() > failover {
                    tracing::warn!(lease = %self.key, error = %e, "lease lost: not renewed within the failover time");
                    self.lose(metrics);
                    false
                } else {
                    tracing::warn!(lease = %self.key, error = %e, "lease renewal failed; retrying next round");
                    true
                }
            }
        }
    }

    fn lose(&self, metrics: &ConsumerMetrics) {
        if !self.lost.is_cancelled() {
            metrics.lease_losses.inc();
            self.lost.cancel();
        }
    }

    /// Marks the lease lost without a table write (the table shows another owner), unless
    /// this worker gave it up itself.
    pub fn mark_lost(&self, metrics: &ConsumerMetrics) {
        if !self.released.load(Ordering::Acquire) {
            self.lose(metrics);
        }
    }

    /// Writes `cp` if it is further than the stored checkpoint; earlier or equal positions are
    /// accepted and ignored, so acknowledgements that complete out of order never move the
    /// checkpoint backwards.
    pub async fn write_checkpoint(
        &self,
        table: &LeaseTable,
        cp: Checkpoint,
        metrics: &ConsumerMetrics,
    ) -> Result<()> {
        {
            let d = self.delivered.lock().expect("delivered lock");
            match &cp {
                Checkpoint::ShardEnd if !d.shard_end => {
                    return Err(Error::InvalidCheckpoint(format!(
                        "SHARD_END for {} before the end of the shard was read",
                        self.key
                    )));
                }
                Checkpoint::Sequence { .. }
                    if d.last.as_ref().is_none_or(|last| cp.is_after(last)) =>
                {
                    return Err(Error::InvalidCheckpoint(format!(
                        "{cp} for {} is beyond the last record delivered ({})",
                        self.key,
                        d.last
                            .as_ref()
                            .map_or("none".to_owned(), ToString::to_string)
                    )));
                }
                Checkpoint::TrimHorizon | Checkpoint::Latest | Checkpoint::AtTimestamp => {
                    return Err(Error::InvalidCheckpoint(format!(
                        "{cp} is not a record position"
                    )));
                }
                _ => {}
            }
        }
        let mut st = self.write.lock().await;
        if st.released || self.lost.is_cancelled() {
            return Err(Error::LeaseLost(self.key.clone()));
        }
        if !cp.is_after(&st.checkpoint) {
            return Ok(());
        }
        match table
            .checkpoint(&self.key, &self.owner, st.counter, &cp)
            .await
        {
            Ok(true) => {
                st.counter += 1;
                st.last_renewal = Instant::now();
                self.status
                    .update_shard(&self.key, |s| s.last_checkpoint = Some(cp.clone()));
                st.checkpoint = cp;
                metrics.checkpoints.inc();
                Ok(())
            }
            Ok(false) => {
                metrics.checkpoint_failures.inc();
                self.lose(metrics);
                Err(Error::LeaseLost(self.key.clone()))
            }
            Err(e) => {
                metrics.checkpoint_failures.inc();
                Err(e)
            }
        }
    }

    /// Gives the lease up after the processor is done with it.
    pub async fn release(&self, table: &LeaseTable, metrics: &ConsumerMetrics) -> Result<bool> {
        let mut st = self.write.lock().await;
        if st.released || self.lost.is_cancelled() {
            return Ok(false);
        }
        st.released = true;
        self.released.store(true, Ordering::Release);
        let res = table.release(&self.key, &self.owner, st.counter).await;
        if matches!(res, Ok(true)) {
            metrics.lease_releases.inc();
        }
        res
    }
}

/// Writes a shard's progress to its lease. Cheap to clone; may be kept and used after
/// `process_records` returned (when downstream acknowledgements arrive). A write succeeds only
/// while this worker still holds the lease.
#[derive(Clone)]
pub struct Checkpointer {
    lease: Arc<HeldLease>,
    table: LeaseTable,
    metrics: ConsumerMetrics,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("lease", &self.lease.key)
            .finish()
    }
}

impl Checkpointer {
    pub(crate) fn new(lease: Arc<HeldLease>, table: LeaseTable, metrics: ConsumerMetrics) -> Self {
        Self {
            lease,
            table,
            metrics,
        }
    }

    /// Records that every user record up to and including (sequence number, sub-sequence
    /// number) is done. Positions at or before the current checkpoint are ignored.
    ///
    /// Errors: [`Error::LeaseLost`] when the lease is no longer held (stop, another worker owns
    /// the shard now), [`Error::InvalidCheckpoint`] for a position not yet delivered, and
    /// retriable [`Error::LeaseTable`] failures.
    pub async fn checkpoint(&self, sequence_number: &str, sub_sequence_number: u64) -> Result<()> {
        if !super::position::is_sequence_number(sequence_number) {
            return Err(Error::InvalidCheckpoint(format!(
                "{sequence_number:?} is not a sequence number"
            )));
        }
        self.checkpoint_at(Checkpoint::sequence(sequence_number, sub_sequence_number))
            .await
    }

    /// Records that the shard is finished; only valid in `shard_ended`, after every record was
    /// delivered.
    pub async fn checkpoint_shard_end(&self) -> Result<()> {
        self.checkpoint_at(Checkpoint::ShardEnd).await
    }

    pub async fn checkpoint_at(&self, cp: Checkpoint) -> Result<()> {
        self.lease
            .write_checkpoint(&self.table, cp, &self.metrics)
            .await
    }

    /// The checkpoint stored for the lease (as far as this worker wrote or read it).
    pub async fn last_checkpoint(&self) -> Checkpoint {
        self.lease.checkpoint().await
    }

    pub fn lease_key(&self) -> &str {
        &self.lease.key
    }

    pub fn shard_id(&self) -> &str {
        &self.lease.shard_id
    }

    /// Whether the lease is gone (writes will fail with [`Error::LeaseLost`]).
    pub fn is_lease_lost(&self) -> bool {
        self.lease.lost.is_cancelled()
    }
}
