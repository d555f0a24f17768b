//! The window core of the aggregator (DESIGN.md sections 3–4): tumbling
//! event-time windows over enriched orders, pure logic, no I/O. The one
//! implementation of the window semantics, used two ways:
//!
//! - [`WindowOperator`]: single process, its own watermark, emission and
//!   revisions per key, incremental checkpoints (tests, benches, rebuilds).
//! - [`Partials`] (one [`Partial`] per window) per input shard, and
//!   [`merge`]: a service that splits its input keeps and stores each
//!   shard's partials apart and combines the partials of every shard into
//!   one exact result when it emits.
//!
//! Both count through [`Partial::add`], judge lateness with [`WindowSpec`]
//! and build metrics (id, money rules, revision given) the same way.
//! Revisions differ only in who numbers them: the operator per key as it
//! re-emits; a service per window from its own durable change counter,
//! passed to [`merge`].
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
//! - Hot path: no allocation per order (ids are interned into per-partial
//!   arenas; customers are `u32` ids, so distinct counts stay exact, and
//!   are matched by their strings only when partials are merged or saved).
//! - The operator's state is checkpointed incrementally, one item per window
//!   plus a small operator item ([`WindowOperator::checkpoint`],
//!   [`WindowOperator::restore`]); a partial is saved with
//!   [`Partial::encode`] and read back with [`WindowSpec::decode_partial`].

mod config;
mod error;
mod hashing;
mod interner;
mod operator;
mod order;
mod outcome;
mod partial;
mod partials;
mod snapshot;
mod spec;
mod window;

pub use config::WindowConfig;
pub use error::{Error, Result};
pub use operator::{Checkpoint, WindowOperator};
pub use order::{ALL_KEY, OrderRef};
pub use outcome::{Outcome, Rejection};
pub use partial::{Partial, merge};
pub use partials::Partials;
pub use snapshot::{OperatorSnapshot, WindowSnapshot};
pub use spec::WindowSpec;

#[cfg(test)]
mod tests;
