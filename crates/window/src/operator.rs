//! The window operator: assigns orders to windows, closes windows on the
//! watermark, re-emits late updates, and checkpoints incrementally.

use std::collections::BTreeMap;

use flowline_model::{EnrichedOrder, Timestamp, WindowMetric};

use crate::config::WindowConfig;
use crate::error::{Error, Result};
use crate::order::OrderRef;
use crate::outcome::{Outcome, Rejection};
use crate::partial::Added;
use crate::snapshot::{OperatorSnapshot, WindowSnapshot};
use crate::spec::WindowSpec;
use crate::window::{Window, ts};

/// What to write at a checkpoint: see [`WindowOperator::checkpoint`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Pass to [`WindowOperator::commit`] once everything below is durable.
    pub epoch: u64,
    pub operator: OperatorSnapshot,
    /// Windows changed since the last committed checkpoint (write/overwrite).
    pub changed: Vec<WindowSnapshot>,
    /// Starts of windows dropped since then (delete their items).
    pub dropped: Vec<Timestamp>,
}

/// Tumbling event-time windows over enriched orders (pure, no I/O).
///
/// Feed orders with [`process`](Self::process) and the watermark with
/// [`advance_watermark`](Self::advance_watermark); both push emitted
/// [`WindowMetric`]s to the caller's buffer in a deterministic order
/// (window start, dimension, key). Nothing reads the clock: the same input
/// and watermark sequence always gives the same output. Each window is a
/// [`crate::Partial`] (the accumulator services use per shard) plus the
/// revisions emitted.
#[derive(Clone, Debug)]
pub struct WindowOperator {
    config: WindowConfig,
    spec: WindowSpec,
    windows: BTreeMap<i64, Window>,
    watermark: Option<i64>,
    /// Stamped on every change; bumped by each checkpoint.
    epoch: u64,
    /// Last epoch the caller confirmed durable.
    committed: u64,
    /// (epoch, start) of dropped windows not yet committed.
    dropped: Vec<(u64, i64)>,
    /// Epoch of the last watermark change (the operator item is dirty).
    watermark_epoch: u64,
}

impl WindowOperator {
    pub fn new(config: WindowConfig) -> Result<Self> {
        Ok(Self {
            spec: WindowSpec::new(&config)?,
            config,
            windows: BTreeMap::new(),
            watermark: None,
            epoch: 1,
            committed: 0,
            dropped: Vec::new(),
            watermark_epoch: 0,
        })
    }

    pub fn config(&self) -> &WindowConfig {
        &self.config
    }

    /// The validated settings (window of an event, lateness).
    pub fn spec(&self) -> &WindowSpec {
        &self.spec
    }

    /// The last watermark applied.
    pub fn watermark(&self) -> Option<Timestamp> {
        self.watermark.map(ts)
    }

    /// Windows held (open, or emitted and within the allowed lateness).
    pub fn open_windows(&self) -> usize {
        self.windows.len()
    }

    /// Approximate heap bytes of the window state, for a gauge.
    pub fn state_bytes(&self) -> usize {
        self.windows.values().map(Window::heap_bytes).sum()
    }

    /// `[start, end)` of the window holding `event_time`.
    pub fn window_of(&self, event_time: Timestamp) -> (Timestamp, Timestamp) {
        self.spec.window_of(event_time)
    }

    pub fn process(&mut self, order: &EnrichedOrder, out: &mut Vec<WindowMetric>) -> Outcome {
        self.process_ref(OrderRef::from(order), out)
    }

    /// Counts one order. Late updates of an emitted window push the touched
    /// keys with their next revision to `out` right away (as Flink does for
    /// late elements), so revisions do not depend on how input is batched.
    pub fn process_ref(&mut self, order: OrderRef<'_>, out: &mut Vec<WindowMetric>) -> Outcome {
        if let Some(late) = self.spec.late(order.event_time, self.watermark()) {
            return Outcome::Rejected(late);
        }
        let start = self.spec.start_of(order.event_time);
        let end = start + self.spec.length_ms();
        if !self.windows.contains_key(&start) {
            // Size a new latest window like the one before it (not a late one).
            let like = self.windows.last_key_value().filter(|(s, _)| **s < start);
            let partial = self.spec.partial(start, like.map(|(_, w)| &w.partial));
            self.windows.insert(start, Window::new(partial));
        }
        let window = self.windows.get_mut(&start).expect("inserted above");
        match window.partial.add_touched(&order) {
            Added::Duplicate => Outcome::Duplicate,
            Added::Overflow => Outcome::Rejected(Rejection::AmountOverflow {
                window_start: ts(start),
            }),
            Added::New(touched) => {
                window.changed_epoch = self.epoch;
                if self.watermark.is_some_and(|wm| wm >= end) {
                    if window.emitted {
                        window.emit_touched(&touched, out);
                    } else {
                        // New late window (or one restored unemitted): all of it.
                        window.emit_all(out);
                    }
                }
                Outcome::Counted
            }
        }
    }

    /// Applies a watermark: emits (revision 1) every window whose end it has
    /// reached, then drops those whose end plus the allowed lateness it has
    /// reached. A watermark earlier than the current one is ignored (the
    /// current one still applies). Returns the number of metrics pushed.
    pub fn advance_watermark(
        &mut self,
        watermark: Timestamp,
        out: &mut Vec<WindowMetric>,
    ) -> usize {
        if self.watermark.is_none_or(|cur| watermark.millis() > cur) {
            self.watermark = Some(watermark.millis());
            self.watermark_epoch = self.epoch;
        }
        let Some(wm) = self.watermark else {
            return 0;
        };
        let before = out.len();
        for w in self.windows.values_mut() {
            if w.end() > wm {
                break;
            }
            if !w.emitted {
                w.emit_all(out);
                w.changed_epoch = self.epoch;
            }
        }
        let watermark = self.watermark();
        while let Some(entry) = self.windows.first_entry() {
            if !self.spec.is_expired(*entry.key(), watermark) {
                break;
            }
            let w = entry.remove();
            self.dropped.push((self.epoch, w.start()));
        }
        out.len() - before
    }

    /// Current values of every held window (revision = last emitted, 0 if
    /// never), in output order. For inspection and tests; emits nothing.
    pub fn current_metrics(&self) -> Vec<WindowMetric> {
        let mut out = Vec::new();
        for w in self.windows.values() {
            w.current(&mut out);
        }
        out
    }

    /// The state changed since the last committed checkpoint. Write it
    /// (window items keyed by start, then the operator item, together with
    /// the lease checkpoint), then call [`commit`](Self::commit) with its
    /// epoch. If the write fails, just call `checkpoint` again later: it
    /// includes everything not yet committed.
    pub fn checkpoint(&mut self) -> Checkpoint {
        let changed = self
            .windows
            .values()
            .filter(|w| w.changed_epoch > self.committed)
            .map(WindowSnapshot::from_window)
            .collect();
        let dropped = self
            .dropped
            .iter()
            .filter(|(e, _)| *e > self.committed)
            .map(|&(_, s)| ts(s))
            .collect();
        let cp = Checkpoint {
            epoch: self.epoch,
            operator: self.operator_snapshot(),
            changed,
            dropped,
        };
        self.epoch += 1;
        cp
    }

    /// Everything in `checkpoint`'s epoch (and before) is durable.
    pub fn commit(&mut self, epoch: u64) {
        self.committed = self.committed.max(epoch);
        let committed = self.committed;
        self.dropped.retain(|(e, _)| *e > committed);
    }

    /// Whether anything changed since the last commit.
    pub fn is_dirty(&self) -> bool {
        self.watermark_epoch > self.committed
            || self.dropped.iter().any(|(e, _)| *e > self.committed)
            || self
                .windows
                .values()
                .any(|w| w.changed_epoch > self.committed)
    }

    /// All of the state (for a first checkpoint or a full rewrite).
    pub fn full_snapshot(&self) -> (OperatorSnapshot, Vec<WindowSnapshot>) {
        (
            self.operator_snapshot(),
            self.windows
                .values()
                .map(WindowSnapshot::from_window)
                .collect(),
        )
    }

    /// Rebuilds the operator from its saved items. Window items that the
    /// watermark has already dropped (a delete that did not happen) are
    /// ignored and reported as dropped by the next checkpoint. A window the
    /// watermark has passed but that was saved unemitted (items not written
    /// atomically) is emitted by the next `advance_watermark`, so call it
    /// after restoring.
    pub fn restore(
        config: WindowConfig,
        operator: &OperatorSnapshot,
        windows: impl IntoIterator<Item = WindowSnapshot>,
    ) -> Result<Self> {
        let mut op = Self::new(config)?;
        operator.check(op.spec.length_ms(), op.spec.dimensions())?;
        op.watermark = operator.watermark().map(Timestamp::millis);
        for snap in windows {
            let w = snap.into_window(&op.spec)?;
            if op.windows.contains_key(&w.start()) {
                return Err(Error::CorruptState(format!(
                    "window {} restored twice",
                    ts(w.start())
                )));
            }
            if op.spec.is_expired(w.start(), op.watermark()) {
                op.dropped.push((op.epoch, w.start()));
                continue;
            }
            op.windows.insert(w.start(), w);
        }
        Ok(op)
    }

    fn operator_snapshot(&self) -> OperatorSnapshot {
        OperatorSnapshot::new(
            self.spec.length_ms(),
            self.spec.dimensions().to_vec(),
            self.watermark(),
        )
    }
}
