//! End-to-end test harness (issue #9): the five real service binaries against the local
//! stack, with per-test names, and an independent recomputation of what they must produce.
//!
//! - [`pipeline`] bootstraps a prefixed environment with `flowctl` and runs the services.
//! - [`raw`] reads back what the producer put on the raw streams and the reference data.
//! - [`expected`] recomputes the enriched orders and window metrics from that, following
//!   DESIGN.md section 4 directly (not through `flowline-join` or `flowline-window`).
//! - [`observed`] reads what ended up in OpenSearch, S3 and the `dead-letters` stream.
//! - [`verify`] compares the two and lists every difference.
//! - [`scenario`] holds the steps every test shares (read back, recompute, wait until equal).
//! - [`live`] checks the running services: `/metrics` against the referenced metric names,
//!   and `flowctl status --json`.

pub mod bins;
pub mod configs;
pub mod expected;
pub mod live;
pub mod observed;
pub mod pipeline;
pub mod poll;
pub mod raw;
pub mod scenario;
pub mod verify;
pub mod views;

pub use pipeline::{Pipeline, PipelineOptions, Service};
