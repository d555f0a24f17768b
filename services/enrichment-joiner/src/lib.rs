//! The enrichment-joiner's modules, as a library so that its benchmark drives the same
//! processors and joiner task the service runs (`processor::Processor::process`,
//! `joiner::Joiner::run`); `main.rs` wires them into the service.

pub mod config;
pub mod in_flight;
pub mod joiner;
pub mod metrics;
pub mod processor;
pub mod reference;
pub mod state;
