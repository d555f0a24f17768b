//! The temporal join of Flowline (DESIGN.md sections 3–4), as pure logic
//! over narrow state traits, so the enrichment-joiner (DynamoDB state) and
//! the rebuild tool (in-memory state) run the same code and emit the same
//! records.
//!
//! - [`JoinCore`]: apply customer/address versions and sales, advance the
//!   join watermark, get [`flowline_model::EnrichedOrder`]s. Its module doc
//!   states the watermark meaning and the call protocol.
//! - [`VersionStore`], [`PendingStore`]: the durable state; in-memory
//!   implementations in [`memory`].
//! - [`ReferenceHandle`]: items and promos, swapped whole on refresh.
//! - [`enrich()`]: the join rules as one pure function.

mod cache;
mod config;
mod core;
mod enrich;
mod error;
mod held;
mod lookup;
pub mod memory;
mod metrics;
mod read_ahead;
mod reference;
mod stats;
mod store;
mod views;

pub use cache::{Known, VersionCache};
pub use config::JoinConfig;
pub use core::{JoinCore, JoinStores};
pub use enrich::{Resolved, enrich, missing};
pub use error::{JoinError, Result, StoreError};
pub use memory::{InMemoryPendingStore, InMemoryVersionStore};
pub use metrics::JoinMetrics;
pub use reference::{ReferenceData, ReferenceHandle};
pub use stats::JoinStats;
pub use store::{PendingKey, PendingSale, PendingStore, VersionStore, shard_partition};
pub use views::{AddressView, CustomerView, Versioned};

#[cfg(test)]
mod tests;
