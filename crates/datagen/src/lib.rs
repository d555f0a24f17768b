//! Deterministic synthetic data for Flowline: customers, addresses and
//! sales in publication order (with optional bad records), the reference
//! data (items, promos) as CSV and Parquet, and the replay reader.
//!
//! ```
//! use flowline_datagen::{GenConfig, Generator};
//! let cfg = GenConfig { seed: 7, customers: 10, sales: 100, ..GenConfig::default() };
//! let records: Vec<_> = Generator::new(cfg).unwrap().collect();
//! assert!(records.len() > 100);
//! ```
//!
//! Determinism: the same [`GenConfig`] gives the same records byte for byte
//! (ChaCha8 streams seeded from `seed`, no clock, no hash-map order). The
//! bytes also depend on the word lists in `names.rs` and on serde_json's
//! float formatting (coordinates), both pinned by the lock file.

mod bad;
mod catalog;
mod config;
mod draw;
mod error;
mod generator;
mod names;
mod people;
pub mod reference;
mod replay;
mod tabular;

pub use bad::{BAD_MARKER_FIELD, BadKind, MALFORMED_PREFIX};
pub use catalog::Catalog;
pub use config::GenConfig;
pub use error::DatagenError;
pub use generator::{GeneratedRecord, Generator};
pub use replay::{ReplayFormat, ReplayItem, ReplayRecord, replay};
pub use tabular::row_to_json;

#[cfg(test)]
mod tests;
