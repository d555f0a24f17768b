//! The shared server runtime of every Flowline service.
//!
//! One call, [`Service::run`], gives a service:
//! - tracing (human-readable on a terminal, JSON otherwise, filtered by `RUST_LOG`);
//! - layered configuration: built-in defaults, then an optional TOML file (`--config`), then
//!   environment variables (`<SERVICE>_<SECTION>__<KEY>`), validated up front (exit code 2);
//! - the admin HTTP server: `GET /health`, `GET /ready`, `GET /metrics`;
//! - graceful shutdown: SIGINT/SIGTERM cancel a shared token, tasks drain within a timeout,
//!   a second signal exits at once, and a failed task stops the whole service.
//!
//! ```no_run
//! # use flowline_runtime::{Service, RuntimeArgs, Context, ServiceConfig};
//! # #[derive(Default, serde::Serialize, serde::Deserialize)] struct MyConfig {}
//! # impl ServiceConfig for MyConfig {}
//! fn main() -> std::process::ExitCode {
//!     Service::new("indexer", 9104).run(RuntimeArgs::default(), |ctx: Context<MyConfig>| async move {
//!         ctx.shutdown_token().cancelled().await;
//!         Ok(())
//!     })
//! }
//! ```

mod admin;
mod config;
mod context;
mod logging;
mod metrics;
mod readiness;
mod service;
mod signals;

pub use config::{
    AdminSettings, ConfigError, LogFormat, LogSettings, Problems, RuntimeSettings, ServiceConfig,
    ShutdownSettings, env_prefix, load,
};
pub use context::Context;
pub use metrics::{encode_metrics, new_registry};
pub use readiness::{Readiness, ReadinessHandle};
pub use service::{RuntimeArgs, Service};

/// Re-exported so services name one version of these.
pub use prometheus;
pub use tokio_util::sync::CancellationToken;
