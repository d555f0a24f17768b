//! The part of an order the windows read.

use flowline_model::{Dimension, EnrichedOrder, Money, Timestamp, UNKNOWN_KEY};

/// Key of the `all` dimension: every order counts under it.
pub const ALL_KEY: &str = "all";

/// What the window core reads from an enriched order, borrowed, so a rebuild
/// can feed it from other sources (Parquet rows) without building one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderRef<'a> {
    pub order_id: &'a str,
    pub event_time: Timestamp,
    pub customer_id: &'a str,
    pub category: Option<&'a str>,
    pub state: Option<&'a str>,
    pub quantity: u32,
    pub gross_amount: Money,
    pub net_amount: Money,
}

impl<'a> OrderRef<'a> {
    /// The key the order counts under in `dimension` (`unknown` when it has no value).
    pub fn key(&self, dimension: Dimension) -> &'a str {
        match dimension {
            Dimension::All => ALL_KEY,
            Dimension::Category => self.category.unwrap_or(UNKNOWN_KEY),
            Dimension::State => self.state.unwrap_or(UNKNOWN_KEY),
        }
    }
}

impl<'a> From<&'a EnrichedOrder> for OrderRef<'a> {
    fn from(o: &'a EnrichedOrder) -> Self {
        OrderRef {
            order_id: &o.order_id,
            event_time: o.event_time,
            customer_id: &o.customer_id,
            category: o.category.as_deref(),
            state: o.state.as_deref(),
            quantity: o.quantity,
            gross_amount: o.gross_amount,
            net_amount: o.net_amount,
        }
    }
}
