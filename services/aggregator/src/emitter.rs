//! Emission, the same in every copy. Windows aggregate across shards, and
//! each copy holds only some shards, so no copy's memory has a window's
//! whole result. Each shard's partial is in DynamoDB instead; every copy:
//!
//! 1. computes the global watermark from the entries every shard owner
//!    published (shards without an entry yet hold it, as in DESIGN §4);
//! 2. for every window whose end the watermark has passed and whose
//!    `changes` counter is above `emitted`, reads every shard's partial
//!    (strongly consistent) and checks `changes` again: unchanged means the
//!    partials read are exactly the state after `changes` transactions;
//! 3. emits every key with `revision = changes - first + 1`, where `first`
//!    is the `changes` value of the window's first emission, set once
//!    (`if_not_exists`). Equal `changes` give equal values and the same
//!    revision, whichever copy emits, so two copies emitting the same window
//!    produce identical records (idempotent downstream), and the highest
//!    revision is always the complete final state;
//! 4. records `emitted` only after Kinesis acknowledged every record, so a
//!    crash in between makes some copy emit it again;
//! 5. deletes a window's items once it is emitted and the watermark has
//!    passed its end plus the allowed lateness plus a grace period.
//!
//! Every copy computes the global watermark (its processors need it to tell
//! late orders), but only the copy whose processor owns the first shard's
//! state item emits, so the output is not duplicated per copy.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use flowline_kinesis::producer::{AckSet, Producer, Record};
use flowline_model::Timestamp;
use flowline_watermark::{Monotonic, ShardWatermark, global_watermark};
use flowline_window::merge;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::processor::Shared;
use crate::store::Control;

/// How often the input streams' shard listing is refreshed.
const SHARD_LIST_INTERVAL: Duration = Duration::from_secs(30);

pub struct Emitter {
    pub shared: Arc<Shared>,
    pub output: Producer,
    pub kinesis: aws_sdk_kinesis::Client,
    pub streams: Vec<String>,
    pub interval: Duration,
    pub retention_grace: Duration,
    pub global: watch::Sender<Option<Timestamp>>,
}

impl Emitter {
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut monotonic = Monotonic::default();
        let mut listed: Vec<ShardWatermark> = Vec::new();
        let mut listed_at: Option<Instant> = None;
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if listed_at.is_none_or(|at| at.elapsed() >= SHARD_LIST_INTERVAL) {
                match self.list_shards().await {
                    Ok(l) => {
                        listed = l;
                        listed_at = Some(Instant::now());
                    }
                    Err(e) => tracing::warn!(error = %format!("{e:#}"), "listing input shards"),
                }
            }
            let now = flowline_pipeline::now();
            let (mut entries, leader) = match self.shared.store.watermarks().await {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "reading shard watermarks");
                    continue;
                }
            };
            let known: HashSet<(String, String)> = entries
                .iter()
                .map(|e| (e.stream.clone(), e.shard_id.clone()))
                .collect();
            for l in &listed {
                if !known.contains(&(l.stream.clone(), l.shard_id.clone())) {
                    // No owner has published yet: it holds the watermark.
                    entries.push(ShardWatermark {
                        published_at: now,
                        ..l.clone()
                    });
                }
            }
            let wm = monotonic.advance(global_watermark(&entries, now, &self.shared.watermarks));
            self.global.send_replace(wm);
            let Some(wm) = wm else { continue };
            self.shared
                .metrics
                .watermark_lag
                .set((now.millis() - wm.millis()) as f64 / 1000.0);
            // One copy emits: the owner of the first shard's state. Any copy
            // emitting would be correct (see above); this avoids duplicate
            // output. While that shard changes hands nobody emits, and its
            // watermark is held anyway.
            let leading =
                leader.is_some_and(|l| self.shared.owners.lock().expect("owners").contains(&l));
            if !leading {
                continue;
            }
            // A failed round (after the SDK's retries) is tried again next tick.
            if let Err(e) = self.emit_due(wm).await {
                tracing::warn!(error = %format!("{e:#}"), "emitting windows");
            }
        }
        self.output.shutdown().await.context("flushing metrics")?;
        Ok(())
    }

    async fn emit_due(&self, wm: Timestamp) -> anyhow::Result<()> {
        let length = self.shared.windows.length_ms();
        let keep = self.shared.windows.lateness_ms() + self.retention_grace.as_millis() as i64;
        let controls = self.shared.store.controls().await?;
        self.shared.metrics.windows_open.set(controls.len() as i64);
        for c in controls {
            let end = c.start_ms + length;
            if end > wm.millis() {
                break; // sorted by start
            }
            if c.retired {
                // A deletion cut short (crash, failed call): finish it.
                self.shared.store.delete_window(c.start_ms).await?;
            } else if c.emitted < c.changes {
                self.emit(&c).await?;
            } else if end + keep <= wm.millis() {
                self.shared.store.delete_window(c.start_ms).await?;
            }
        }
        Ok(())
    }

    async fn emit(&self, c: &Control) -> anyhow::Result<()> {
        let store = &self.shared.store;
        let partials = store.partials(c.start_ms).await?;
        if store.control(c.start_ms).await?.map(|now| now.changes) != Some(c.changes) {
            return Ok(()); // changed meanwhile: next round
        }
        let first = match c.first {
            Some(f) => f,
            None => store.first_emission(c.start_ms, c.changes).await?,
        };
        if c.changes < first {
            return Ok(()); // another copy already emitted newer state
        }
        let revision = u32::try_from(c.changes - first + 1).context("revision")?;
        // The window crate's merge: exact union of the shards' customers,
        // the same metric ids and money rules as the operator.
        let metrics = merge(&partials, revision)?;
        let mut acks = AckSet::new();
        for m in &metrics {
            let data = serde_json::to_vec(m)?;
            acks.push(self.output.send(Record::new(m.id.clone(), data)).await?);
        }
        acks.wait()
            .await
            .context("window metrics not acknowledged")?;
        store.mark_emitted(c.start_ms, c.changes).await?;
        let m = &self.shared.metrics;
        m.windows_emitted.inc();
        m.metrics_emitted.inc_by(metrics.len() as u64);
        if revision > 1 {
            m.revisions.inc();
        }
        tracing::debug!(
            window = c.start_ms,
            revision,
            keys = metrics.len(),
            "window emitted"
        );
        Ok(())
    }

    /// Every shard of the input streams, as a holding entry.
    async fn list_shards(&self) -> anyhow::Result<Vec<ShardWatermark>> {
        let mut out = Vec::new();
        for stream in &self.streams {
            let mut token: Option<String> = None;
            loop {
                let req = self.kinesis.list_shards();
                let req = match &token {
                    Some(t) => req.next_token(t),
                    None => req.stream_name(stream),
                };
                let page = req
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!(flowline_aws::error_chain(&e)))
                    .with_context(|| format!("listing shards of {stream}"))?;
                for s in page.shards() {
                    let closed = s
                        .sequence_number_range()
                        .and_then(|r| r.ending_sequence_number())
                        .is_some();
                    out.push(ShardWatermark {
                        stream: stream.clone(),
                        shard_id: s.shard_id().to_owned(),
                        watermark: None,
                        idle: false,
                        closed,
                        parents: s
                            .parent_shard_id()
                            .into_iter()
                            .chain(s.adjacent_parent_shard_id())
                            .map(str::to_owned)
                            .collect(),
                        children: Vec::new(),
                        published_at: flowline_pipeline::now(),
                    });
                }
                token = page.next_token().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
        }
        Ok(out)
    }
}
