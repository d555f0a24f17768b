//! The window core of the aggregator (DESIGN.md sections 3–4): tumbling
//! event-time windows over enriched orders, pure logic, no I/O.
//!
//! - Windows are `[start, start + length)`, aligned to the Unix epoch, per
//!   configured dimension (`all`, `category`, `state`); an order without a
//!   value for a dimension counts under `unknown`.
//! - Per window and key: `orders`, `units`, `gross_amount`, `net_amount`,
//!   `avg_order_value` (net / orders, cents, half away from zero, via the
//!   model's [`flowline_model::average`]) and an exact `distinct_customers`.
//! - A window is emitted (revision 1) when the watermark reaches its end.
//!   Later events up to the allowed lateness (against the watermark) update
//!   it and re-emit the keys they touch with the next revision (full values);
//!   beyond that they are [`Rejection::Late`]. State is dropped once the
//!   watermark reaches end + allowed lateness.
//! - An `order_id` is counted once per window (all dimensions of an order
//!   share its window). A redelivery after emission changes nothing and
//!   emits nothing. One arriving after the window was dropped is rejected as
//!   late, like any event that late: it cannot be told from a new order.
//! - Hot path: no allocation per order (ids are interned into per-window
//!   arenas; customers are `u32` ids, so distinct counts stay exact).
//! - State is checkpointed incrementally, one item per window plus a small
//!   operator item ([`WindowOperator::checkpoint`], [`WindowOperator::restore`]).

mod config;
mod error;
mod hashing;
mod interner;
mod operator;
mod order;
mod snapshot;
mod window;

pub use config::WindowConfig;
pub use error::{Error, Result};
pub use operator::{Checkpoint, Outcome, Rejection, WindowOperator};
pub use order::{ALL_KEY, OrderRef};
pub use snapshot::{OperatorSnapshot, WindowSnapshot};

#[cfg(test)]
mod tests;
