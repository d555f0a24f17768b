//! Behaviour of the window operator with explicit time (no clock anywhere):
//! shared helpers here, tests by subject in the submodules.

mod determinism;
mod partials;
mod semantics;
mod state;

use flowline_model::{Dimension, Money, Timestamp, WindowMetric};

use crate::{OrderRef, Outcome, WindowConfig, WindowOperator};

/// 2024-01-01T00:00:00Z
pub(super) const T0: i64 = 1_704_067_200_000;

pub(super) fn t(offset_ms: i64) -> Timestamp {
    Timestamp::from_millis(T0 + offset_ms).unwrap()
}

pub(super) fn cents(c: i64) -> Money {
    Money::from_cents(c).unwrap()
}

/// An order owning its strings; `r()` lends it to the operator.
#[derive(Clone, Debug)]
pub(super) struct O {
    pub(super) id: String,
    pub(super) at: i64,
    pub(super) customer: String,
    pub(super) category: Option<String>,
    pub(super) state: Option<String>,
    pub(super) qty: u32,
    pub(super) gross: i64,
    pub(super) net: i64,
}

impl O {
    pub(super) fn r(&self) -> OrderRef<'_> {
        OrderRef {
            order_id: &self.id,
            event_time: t(self.at),
            customer_id: &self.customer,
            category: self.category.as_deref(),
            state: self.state.as_deref(),
            quantity: self.qty,
            gross_amount: cents(self.gross),
            net_amount: cents(self.net),
        }
    }
}

pub(super) fn o(id: &str, at: i64, customer: &str, category: &str, state: &str, net: i64) -> O {
    O {
        id: id.into(),
        at,
        customer: customer.into(),
        category: Some(category.into()),
        state: Some(state.into()),
        qty: 2,
        gross: net + 100,
        net,
    }
}

pub(super) fn op() -> WindowOperator {
    WindowOperator::new(WindowConfig::default()).unwrap()
}

pub(super) fn feed(w: &mut WindowOperator, order: &O) -> (Outcome, Vec<WindowMetric>) {
    let mut out = Vec::new();
    let outcome = w.process_ref(order.r(), &mut out);
    (outcome, out)
}

/// Feeds an order that must be counted; returns what it emitted.
pub(super) fn count(w: &mut WindowOperator, order: &O) -> Vec<WindowMetric> {
    let (outcome, out) = feed(w, order);
    assert_eq!(outcome, Outcome::Counted, "{order:?}");
    out
}

pub(super) fn advance(w: &mut WindowOperator, wm: i64) -> Vec<WindowMetric> {
    let mut out = Vec::new();
    w.advance_watermark(t(wm), &mut out);
    out
}

pub(super) fn find<'a>(ms: &'a [WindowMetric], dim: Dimension, key: &str) -> &'a WindowMetric {
    ms.iter()
        .find(|m| m.dimension == dim && m.key == key)
        .unwrap_or_else(|| panic!("no {dim:?}/{key} in {ms:#?}"))
}
