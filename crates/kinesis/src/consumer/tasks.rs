//! The consumer's loops: taking leases (and starting shard tasks), renewing held leases,
//! and syncing shards into the lease table. All share the scheduler's [`Ctx`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use tokio::task::{Id, JoinSet};
use tokio_util::sync::CancellationToken;

use super::balance::{ExpiryTracker, LeaseView, PlanInput, TakeReason, plan};
use super::held::HeldLease;
use super::lease::Lease;
use super::scheduler::Ctx;
use super::shard_consumer::{self, Outcome};
use super::shard_sync::sync_stream;
use super::status::{ShardState, ShardStatus};
use crate::{Error, Result};

/// Lease renewals (DynamoDB writes) in flight at once.
const RENEW_CONCURRENCY: usize = 16;

/// True when cancelled.
pub(crate) async fn sleep_or_cancel(token: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = token.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

/// Scans the table, decides what to take and starts the shards taken.
pub(crate) async fn take_round(
    ctx: &Arc<Ctx>,
    tracker: &mut ExpiryTracker,
    shards: &mut JoinSet<Outcome>,
    shard_keys: &mut HashMap<Id, String>,
    stop_shards: &CancellationToken,
) {
    let leases = match ctx.table.list().await {
        Ok(l) => l,
        Err(e) => {
            ctx.metrics.lease_table_errors.inc();
            tracing::warn!(error = %e, "lease table scan failed");
            ctx.status.update(|s| {
                s.lease_table_ok = false;
                s.last_error = Some(e.to_string());
            });
            return;
        }
    };
    ctx.status.update(|s| s.lease_table_ok = true);
    let unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    ctx.metrics.last_take_round.set(unix.as_secs_f64());
    // Only leases of the configured streams (as they exist now) are ours to balance.
    let leases: Vec<Lease> = leases
        .into_iter()
        .filter(|l| ctx.streams.values().any(|m| m.owns(l)))
        .collect();
    let now = Instant::now();
    let failover = ctx.config.failover_time;
    tracker.observe(&leases, now, failover);
    let views: Vec<LeaseView> = leases
        .iter()
        .map(|l| LeaseView::of(l, tracker.is_expired(&l.key, now, failover)))
        .collect();
    let held: HashSet<String> = {
        let held = ctx.held.lock().expect("held lock");
        // Faster than waiting for the next renewal: the table says someone else has it now.
        for (key, h) in held.iter() {
            let owner = leases
                .iter()
                .find(|l| &l.key == key)
                .and_then(|l| l.owner.as_deref());
            if owner != Some(ctx.worker_id.as_str()) {
                tracing::info!(lease = %key, ?owner, "lease lost: the table shows another owner");
                h.mark_lost(&ctx.metrics);
            }
        }
        held.keys().cloned().collect()
    };
    let takes = plan(
        &PlanInput {
            leases: &views,
            worker: &ctx.worker_id,
            held: &held,
            max_leases_per_worker: ctx.config.max_leases_per_worker,
            max_leases_to_steal: ctx.config.max_leases_to_steal,
        },
        &mut rand::rng(),
    );
    let by_key: HashMap<&str, &Lease> = leases.iter().map(|l| (l.key.as_str(), l)).collect();
    for take in takes {
        let Some(observed) = by_key.get(take.key.as_str()) else {
            continue;
        };
        match ctx.table.take(observed, &ctx.worker_id).await {
            Ok(Some(lease)) => {
                ctx.metrics.lease_takes.inc();
                if take.reason == TakeReason::Steal {
                    ctx.metrics.lease_steals.inc();
                }
                tracing::info!(worker = %ctx.worker_id, lease = %lease.key, reason = ?take.reason, previous_owner = ?observed.owner, "took lease");
                start_shard(ctx, lease, shards, shard_keys, stop_shards);
            }
            Ok(None) => tracing::debug!(lease = %take.key, "lease changed before we could take it"),
            Err(e) => {
                ctx.metrics.lease_table_errors.inc();
                tracing::warn!(lease = %take.key, error = %e, "taking lease failed");
            }
        }
    }
    let n = ctx.held.lock().expect("held lock").len();
    ctx.metrics.leases_held.set(n as i64);
}

fn start_shard(
    ctx: &Arc<Ctx>,
    lease: Lease,
    shards: &mut JoinSet<Outcome>,
    shard_keys: &mut HashMap<Id, String>,
    stop_shards: &CancellationToken,
) {
    let held = HeldLease::new(&lease, &ctx.worker_id, ctx.status.clone());
    ctx.held
        .lock()
        .expect("held lock")
        .insert(lease.key.clone(), held.clone());
    ctx.status.update(|s| {
        s.shards.insert(
            lease.key.clone(),
            ShardStatus {
                stream: lease.stream.clone(),
                shard_id: lease.shard_id.clone(),
                state: ShardState::WaitingOnParents,
                millis_behind_latest: None,
                caught_up_since: None,
                last_checkpoint: Some(lease.checkpoint.clone()),
            },
        );
    });
    let handle = shards.spawn(shard_consumer::run(ctx.clone(), held, stop_shards.clone()));
    shard_keys.insert(handle.id(), lease.key);
}

pub(crate) fn shard_done(
    ctx: &Ctx,
    done: std::result::Result<(Id, Outcome), tokio::task::JoinError>,
    keys: &mut HashMap<Id, String>,
) {
    let (id, outcome) = match done {
        Ok((id, outcome)) => (id, Some(outcome)),
        Err(e) => (e.id(), None),
    };
    let Some(key) = keys.remove(&id) else { return };
    let held = ctx.held.lock().expect("held lock").remove(&key);
    match outcome {
        Some(o) => tracing::info!(lease = %key, outcome = ?o, "shard processing ended"),
        // A panicking processor: the lease is no longer renewed and expires.
        None => tracing::error!(lease = %key, "shard task failed (panic or abort)"),
    }
    if let Some(h) = held {
        ctx.metrics.forget_shard(&h.stream, &h.shard_id);
    }
    ctx.status.update(|s| {
        s.shards.remove(&key);
    });
    let n = ctx.held.lock().expect("held lock").len();
    ctx.metrics.leases_held.set(n as i64);
}

pub(crate) async fn renew_loop(ctx: Arc<Ctx>, stop: CancellationToken) {
    let interval = ctx.config.effective_renew_interval();
    loop {
        if sleep_or_cancel(&stop, interval).await {
            return;
        }
        let held: Vec<Arc<HeldLease>> = ctx
            .held
            .lock()
            .expect("held lock")
            .values()
            .cloned()
            .collect();
        futures::stream::iter(held)
            .for_each_concurrent(RENEW_CONCURRENCY, |h| {
                let ctx = ctx.clone();
                async move {
                    h.renew(&ctx.table, ctx.config.failover_time, &ctx.metrics)
                        .await;
                }
            })
            .await;
    }
}

pub(crate) async fn shard_sync_loop(ctx: Arc<Ctx>, stop: CancellationToken) {
    loop {
        match sync_all(&ctx).await {
            Ok(created) => {
                ctx.status.update(|s| {
                    s.kinesis_ok = true;
                    s.last_error = None;
                });
                if created > 0 {
                    ctx.take_now.notify_one();
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "shard sync failed");
                if let Error::LeaseTable { .. } = e {
                    ctx.metrics.lease_table_errors.inc();
                }
                ctx.status.update(|s| {
                    if matches!(e, Error::LeaseTable { .. }) {
                        s.lease_table_ok = false;
                    } else {
                        s.kinesis_ok = false;
                    }
                    s.last_error = Some(e.to_string());
                });
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(ctx.config.shard_sync_interval) => {}
            _ = ctx.sync_now.notified() => {}
        }
    }
}

async fn sync_all(ctx: &Ctx) -> Result<usize> {
    let leases = ctx.table.list().await?;
    let mut created = 0;
    for meta in ctx.streams.values() {
        created += sync_stream(&ctx.kinesis, &ctx.table, meta, &ctx.config, &leases)
            .await?
            .created;
    }
    Ok(created)
}
