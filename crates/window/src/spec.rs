//! Which window an order falls in and when it is too late: the rules every
//! user of the window core applies the same way (the operator, and services
//! keeping per-shard [`Partial`]s).

use flowline_model::{Dimension, Timestamp};

use crate::config::WindowConfig;
use crate::error::{Error, Result};
use crate::outcome::Rejection;
use crate::partial::Partial;
use crate::window::ts;

/// Validated [`WindowConfig`] in the form the hot path uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowSpec {
    length_ms: i64,
    lateness_ms: i64,
    /// Sorted and deduplicated: the output order.
    dimensions: Vec<Dimension>,
}

impl WindowSpec {
    pub fn new(config: &WindowConfig) -> Result<Self> {
        let problems = config.validate("windows");
        if !problems.is_empty() {
            return Err(Error::InvalidConfig(problems));
        }
        Ok(Self {
            length_ms: config.length_ms(),
            lateness_ms: config.lateness_ms(),
            dimensions: config.sorted_dimensions(),
        })
    }

    pub fn length_ms(&self) -> i64 {
        self.length_ms
    }

    pub fn lateness_ms(&self) -> i64 {
        self.lateness_ms
    }

    /// The configured dimensions in output order.
    pub fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }

    /// Start (ms since the epoch) of the window holding `t`.
    pub fn start_of(&self, t: Timestamp) -> i64 {
        t.millis().div_euclid(self.length_ms) * self.length_ms
    }

    /// `[start, end)` of the window holding `event_time`.
    pub fn window_of(&self, event_time: Timestamp) -> (Timestamp, Timestamp) {
        let start = self.start_of(event_time);
        (ts(start), ts(start + self.length_ms))
    }

    /// Whether `watermark` has passed the end plus the allowed lateness of
    /// the window starting at `start_ms`: its state can go, and orders for
    /// it are rejected.
    pub fn is_expired(&self, start_ms: i64, watermark: Option<Timestamp>) -> bool {
        let limit = (start_ms + self.length_ms).saturating_add(self.lateness_ms);
        watermark.is_some_and(|wm| wm.millis() >= limit)
    }

    /// [`Rejection::Late`] when the order's window is expired at `watermark`.
    pub fn late(&self, event_time: Timestamp, watermark: Option<Timestamp>) -> Option<Rejection> {
        let start = self.start_of(event_time);
        let wm = watermark.filter(|_| self.is_expired(start, watermark))?;
        Some(Rejection::Late {
            event_time,
            window_end: ts(start + self.length_ms),
            watermark: wm,
        })
    }

    /// An empty partial of the window starting at `start_ms` (a multiple of
    /// the length), sized like `like` when given: growing the id tables by
    /// rehashing is a good part of the cost of a busy window otherwise.
    pub fn partial(&self, start_ms: i64, like: Option<&Partial>) -> Partial {
        debug_assert_eq!(start_ms.rem_euclid(self.length_ms), 0);
        Partial::with_capacity(start_ms, start_ms + self.length_ms, &self.dimensions, like)
    }

    /// A partial from [`Partial::encode`], checked against these settings.
    pub fn decode_partial(&self, bytes: &[u8]) -> Result<Partial> {
        crate::snapshot::PartialSnapshot::decode(bytes)?.into_partial(self)
    }
}
