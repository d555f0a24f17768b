//! The indexer's modules, as a library so that its benchmark drives the same record
//! processing the service runs (`processor::Processor::process`); `main.rs` wires them into
//! the service.

pub mod config;
pub mod documents;
pub mod metrics;
pub mod processor;
pub mod run;
pub mod templates;
