//! Support for integration tests against the local stack (DESIGN.md section 6).
//!
//! - [`Stack::start`] reuses the stack named by the environment (`FLOWLINE_TEST_REUSE_STACK=1`
//!   with `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_KINESIS`, `OPENSEARCH_URL`: what `make test`
//!   does) or starts an isolated one on free ports that is stopped when dropped, even when the
//!   test panics, and by a watchdog when the test process is killed.
//! - [`unique_name`] gives every test its own streams, tables, buckets and indices.
//! - [`ServiceProcess`] runs a service binary against the stack and talks to its admin port.

mod contract;
pub mod fault_proxy;
mod names;
mod service;
mod stack;
mod streams;

pub use contract::{assert_admin_contract, assert_admin_contract_with, promtool_check_metrics};
pub use names::unique_name;
pub use service::{ServiceProcess, free_port};
pub use stack::Stack;
pub use streams::{StreamRecord, create_bucket, create_stream, read_stream};
