//! Drives the services' join and window code over the merged archive.
//!
//! - Join: `flowline_join::JoinCore` over in-memory state (`state.rs`), as the only writer
//!   (`exclusive_writer`), with the joiner's `join_timeout`. Its watermark is computed as
//!   the services compute theirs: per input stream, the greatest event time seen minus the
//!   out-of-orderness; the join watermark is the minimum over the streams that may still
//!   have records (a finished stream stops holding it, like an idle caught-up shard). The
//!   core is advanced each time that watermark has moved by `--advance-every`.
//! - Windows: `flowline_window::WindowOperator` with the aggregator's window settings, fed
//!   every order the join emits, its watermark the greatest order `event_time` seen minus
//!   the out-of-orderness (the aggregator's tracker on `orders-enriched`).
//! - At the end both watermarks go to the end of time, so every held sale and every open
//!   window is emitted, as the services do once their inputs are idle.
//!
//! Because the fields of an order, `enriched_at` included, are fixed by rule, and window
//! values depend only on the orders counted, the results are the ones the live pipeline
//! writes for the same events; revision numbers of window metrics can differ where the
//! live aggregator saw orders in another order (values of the final revision do not).

use std::collections::HashSet;

use flowline_join::{JoinConfig, JoinCore, JoinError, ReferenceData, ReferenceHandle};
use flowline_model::{
    DeadLetter, DiscountPct, EnrichedOrder, RecordSource, Sale, Timestamp, WindowMetric,
    order_amounts,
};
use flowline_window::{Outcome, WindowConfig, WindowOperator};

use super::STAGE;
use super::args::Args;
use super::merge::{Batch, Item};
use super::output::Output;

/// What went in and came out, for the summary and the count check.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub customers: u64,
    pub addresses: u64,
    pub sales: u64,
    pub bad_lines: u64,
    pub invalid_sales: u64,
    pub late_orders: u64,
    pub orders_complete: u64,
    pub orders_partial: u64,
    pub metric_emissions: u64,
    pub distinct_metrics: u64,
}

pub struct Engine {
    core: JoinCore,
    window: WindowOperator,
    ooo_ms: i64,
    step_ms: i64,
    max_seen: [Option<i64>; 3],
    /// Streams that may still have records, as of the last batch.
    active: [bool; 3],
    last_advance: Option<i64>,
    max_order: Option<i64>,
    metrics: Vec<WindowMetric>,
    metric_ids: HashSet<String>,
    counts: Counts,
}

impl Engine {
    pub fn new(args: &Args, reference: ReferenceData) -> anyhow::Result<Engine> {
        let join = JoinConfig {
            join_timeout: args.join_timeout,
            exclusive_writer: true,
            // Everything is in memory anyway; the watermark bounds what is held.
            max_pending_sales: usize::MAX / 2,
            write_batch: 100_000,
            // Every version is in memory anyway: a cache that holds every entity turns
            // each store read after the first into a hit (an eviction only costs time,
            // never changes a result, since the cache holds knowledge, not answers).
            cache_entities: 1 << 24,
            ..JoinConfig::default()
        };
        let core = JoinCore::new(
            join,
            super::state::stores(),
            ReferenceHandle::new(reference),
        )?;
        let window = WindowOperator::new(WindowConfig {
            length: args.window,
            allowed_lateness: args.allowed_lateness,
            ..WindowConfig::default()
        })?;
        Ok(Engine {
            core,
            window,
            ooo_ms: i64::try_from(args.out_of_orderness.as_millis())?,
            step_ms: i64::try_from(args.advance_every.as_millis())?.max(1),
            max_seen: [None; 3],
            active: [true; 3],
            last_advance: None,
            max_order: None,
            metrics: Vec::new(),
            metric_ids: HashSet::new(),
            counts: Counts::default(),
        })
    }

    pub fn counts(&self) -> Counts {
        let mut c = self.counts.clone();
        c.distinct_metrics = self.metric_ids.len() as u64;
        c
    }

    fn see(&mut self, stream: usize, t: Timestamp) {
        let m = &mut self.max_seen[stream];
        *m = Some(m.map_or(t.millis(), |old| old.max(t.millis())));
    }

    /// Min over the streams that may still have records of (max seen − out-of-orderness).
    fn join_watermark(&self) -> Option<i64> {
        let mut w: Option<i64> = None;
        for s in 0..3 {
            if !self.active[s] {
                continue;
            }
            let ws = self.max_seen[s]?.saturating_sub(self.ooo_ms);
            w = Some(w.map_or(ws, |x| x.min(ws)));
        }
        w
    }

    /// Applies a batch (and drains it).
    pub async fn apply(&mut self, batch: &mut Batch, out: &mut Output) -> anyhow::Result<()> {
        for item in batch.items.drain(..) {
            match item {
                Item::Customer(c) => {
                    self.counts.customers += 1;
                    self.see(0, c.updated_at);
                    self.core.apply_customer(c).await?;
                }
                Item::Address(a) => {
                    self.counts.addresses += 1;
                    self.see(1, a.updated_at);
                    self.core.apply_address(a).await?;
                }
                Item::Sale(s, source) => {
                    self.counts.sales += 1;
                    self.see(2, s.event_time);
                    self.add_sale(s, source, out).await?;
                }
                Item::Bad(letter) => {
                    self.counts.bad_lines += 1;
                    out.error(*letter).await?;
                }
            }
            if let Some(w) = self.join_watermark()
                && self.last_advance.is_none_or(|l| w >= l + self.step_ms)
            {
                self.advance(Timestamp::from_millis(w).unwrap_or(Timestamp::MIN), out)
                    .await?;
            }
        }
        // Only now: a stream's last records were in this batch.
        self.active = batch.active;
        Ok(())
    }

    async fn add_sale(
        &mut self,
        s: Sale,
        source: RecordSource,
        out: &mut Output,
    ) -> anyhow::Result<()> {
        // The core refuses these (`JoinError::InvalidSale`) after taking the sale; checking
        // with the same function first keeps the sale for the envelope without a copy.
        if order_amounts(s.quantity, s.unit_price, DiscountPct::ZERO).is_none() {
            let reason = "quantity × unit_price is out of the money range";
            return self.reject_sale(&s, &source, reason, out).await;
        }
        match self.core.add_sale(s, source).await {
            Ok(()) => Ok(()),
            Err(JoinError::InvalidSale { sale_id, reason }) => {
                anyhow::bail!("sale {sale_id} refused by the join after the check: {reason}")
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn reject_sale(
        &mut self,
        s: &Sale,
        source: &RecordSource,
        reason: &str,
        out: &mut Output,
    ) -> anyhow::Result<()> {
        self.counts.invalid_sales += 1;
        let payload = serde_json::to_vec(s)?;
        let letter = DeadLetter::new(
            STAGE,
            "invalid_value",
            reason,
            source,
            &payload,
            s.event_time,
        );
        out.error(letter).await
    }

    async fn advance(&mut self, w: Timestamp, out: &mut Output) -> anyhow::Result<()> {
        let orders = self.core.advance(w).await?;
        // In memory the orders are "acknowledged" once handed to the output; this keeps
        // the pending store from growing with every emitted sale.
        self.core.confirm_emitted().await?;
        self.last_advance = Some(w.millis());
        if orders.is_empty() {
            return Ok(());
        }
        self.window_orders(&orders, out).await?;
        let wm = self
            .max_order
            .map(|m| m.saturating_sub(self.ooo_ms))
            .and_then(Timestamp::from_millis);
        if let Some(wm) = wm {
            self.window.advance_watermark(wm, &mut self.metrics);
        }
        out.orders(orders).await?;
        self.flush_metrics(out).await
    }

    async fn window_orders(
        &mut self,
        orders: &[EnrichedOrder],
        out: &mut Output,
    ) -> anyhow::Result<()> {
        for o in orders {
            if o.missing.is_empty() {
                self.counts.orders_complete += 1;
            } else {
                self.counts.orders_partial += 1;
            }
            let t = o.event_time.millis();
            self.max_order = Some(self.max_order.map_or(t, |m| m.max(t)));
            match self.window.process(o, &mut self.metrics) {
                Outcome::Counted | Outcome::Duplicate => {}
                Outcome::Rejected(r) => {
                    self.counts.late_orders += 1;
                    let source = RecordSource {
                        stream: "orders-enriched".into(),
                        shard_id: STAGE.into(),
                        sequence_number: o.order_id.clone(),
                    };
                    let payload = serde_json::to_vec(o)?;
                    let letter = DeadLetter::new(
                        STAGE,
                        r.error_type(),
                        &r.to_string(),
                        &source,
                        &payload,
                        o.event_time,
                    );
                    out.error(letter).await?;
                }
            }
        }
        Ok(())
    }

    async fn flush_metrics(&mut self, out: &mut Output) -> anyhow::Result<()> {
        if self.metrics.is_empty() {
            return Ok(());
        }
        self.counts.metric_emissions += self.metrics.len() as u64;
        for m in &self.metrics {
            if !self.metric_ids.contains(&m.id) {
                self.metric_ids.insert(m.id.clone());
            }
        }
        let metrics = std::mem::take(&mut self.metrics);
        out.metrics(metrics).await
    }

    /// Emits everything still held: every pending sale, then every open window.
    pub async fn finish(&mut self, out: &mut Output) -> anyhow::Result<()> {
        self.advance(Timestamp::MAX, out).await?;
        self.window
            .advance_watermark(Timestamp::MAX, &mut self.metrics);
        self.flush_metrics(out).await
    }
}
