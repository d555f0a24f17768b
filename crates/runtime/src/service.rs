//! The service life cycle: configure, log, serve admin HTTP, run, drain, exit.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{self, AdminState};
use crate::config::{self, ServiceConfig};
use crate::context::Context;
use crate::readiness::Readiness;
use crate::{logging, metrics, signals};

/// Exit code for a configuration that cannot be used.
pub const CONFIG_ERROR_EXIT_CODE: u8 = 2;

/// Command-line flags every service has; services `#[command(flatten)]` them into their own.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RuntimeArgs {
    /// TOML configuration file. Environment variables override it; it overrides defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the effective configuration as JSON and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// A service's identity: its name (also its environment prefix) and default admin port.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    pub name: &'static str,
    pub default_port: u16,
}

impl Service {
    pub const fn new(name: &'static str, default_port: u16) -> Self {
        Self { name, default_port }
    }

    /// Runs the service to completion and returns its exit code: 0 after a clean
    /// shutdown, 1 when a task failed or draining timed out, 2 for a bad configuration.
    ///
    /// `main` runs until it returns or the shutdown token is cancelled; when it returns
    /// the service shuts down (a batch job such as the producer just finishes).
    pub fn run<T, F, Fut>(self, args: RuntimeArgs, main: F) -> ExitCode
    where
        T: ServiceConfig,
        F: FnOnce(Context<T>) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (runtime, settings) =
            match config::load::<T>(self.name, self.default_port, args.config.as_deref()) {
                Ok(loaded) => loaded,
                Err(e) => {
                    eprintln!("{}: {e}", self.name);
                    return ExitCode::from(CONFIG_ERROR_EXIT_CODE);
                }
            };
        if args.print_config {
            let both = serde_json::json!({"runtime": &runtime, "service": &settings});
            println!(
                "{}",
                serde_json::to_string_pretty(&both).unwrap_or_default()
            );
            return ExitCode::SUCCESS;
        }
        logging::init(runtime.log.format);
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("{}: cannot start the async runtime: {e}", self.name);
                return ExitCode::FAILURE;
            }
        };
        let code = rt.block_on(self.supervise(runtime, settings, main));
        // Tasks that ignored cancellation past the drain timeout are not waited for.
        rt.shutdown_background();
        code
    }

    async fn supervise<T, F, Fut>(
        self,
        runtime: crate::RuntimeSettings,
        settings: T,
        main: F,
    ) -> ExitCode
    where
        T: ServiceConfig,
        F: FnOnce(Context<T>) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let addr = SocketAddr::new(runtime.admin.bind, runtime.admin.port);
        let listener = match TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("admin.port: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let local = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        tracing::info!(service = self.name, admin = %local, "starting");

        let ctx = Context {
            name: self.name,
            config: Arc::new(settings),
            runtime: Arc::new(runtime),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            registry: metrics::new_registry(self.name),
            readiness: Readiness::new(),
            failure: Arc::new(Mutex::new(None)),
        };
        let admin_stop = CancellationToken::new();
        let admin_state = AdminState {
            registry: ctx.registry.clone(),
            readiness: ctx.readiness.clone(),
            shutdown: ctx.shutdown.clone(),
        };
        let admin = tokio::spawn(admin::serve(listener, admin_state, admin_stop.clone()));
        let signals = tokio::spawn(signals::watch(ctx.shutdown.clone()));

        let main_ctx = ctx.clone();
        let done = ctx.shutdown.clone();
        ctx.spawn("main", async move {
            let result = main(main_ctx).await;
            done.cancel();
            result
        });

        ctx.shutdown.cancelled().await;
        let drain = ctx.runtime.shutdown.drain_timeout;
        tracing::info!(drain_timeout = %humantime::format_duration(drain), "shutting down");
        ctx.tasks.close();
        let drained = tokio::time::timeout(drain, ctx.tasks.wait()).await.is_ok();

        admin_stop.cancel();
        let _ = admin.await;
        signals.abort();

        let failure = ctx.failure.lock().unwrap_or_else(|p| p.into_inner()).take();
        match (failure, drained) {
            (Some((task, e)), _) => {
                tracing::error!(task = %task, error = %format!("{e:#}"), "stopped after a failure");
                ExitCode::FAILURE
            }
            (None, false) => {
                tracing::error!(
                    "work did not finish within shutdown.drain_timeout ({}); exiting",
                    humantime::format_duration(drain)
                );
                ExitCode::FAILURE
            }
            (None, true) => {
                tracing::info!("stopped cleanly");
                ExitCode::SUCCESS
            }
        }
    }
}
