//! What a service's code receives from the runtime.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use prometheus::Registry;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::RuntimeSettings;
use crate::readiness::{Readiness, ReadinessHandle};

/// The first task failure: its name and error. Later failures are only logged.
pub(crate) type Failure = Arc<Mutex<Option<(String, anyhow::Error)>>>;

/// Handed to the service's main function; cheap to clone.
pub struct Context<T> {
    pub name: &'static str,
    pub config: Arc<T>,
    pub runtime: Arc<RuntimeSettings>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tasks: TaskTracker,
    pub(crate) registry: Registry,
    pub(crate) readiness: Readiness,
    pub(crate) failure: Failure,
}

impl<T> Clone for Context<T> {
    fn clone(&self) -> Self {
        Self {
            name: self.name,
            config: self.config.clone(),
            runtime: self.runtime.clone(),
            shutdown: self.shutdown.clone(),
            tasks: self.tasks.clone(),
            registry: self.registry.clone(),
            readiness: self.readiness.clone(),
            failure: self.failure.clone(),
        }
    }
}

impl<T> Context<T> {
    /// Cancelled when the service must stop: a signal, a failed task, or main returning.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// The Prometheus registry served at `/metrics`.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// Runs `task` under the runtime's supervision: shutdown waits for it (up to the drain
    /// timeout), and if it fails or panics the whole service stops with a non-zero exit code.
    pub fn spawn<F>(&self, name: &str, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let name = name.to_string();
        let shutdown = self.shutdown.clone();
        let failure = self.failure.clone();
        self.tasks.spawn(async move {
            let outcome = match AssertUnwindSafe(task).catch_unwind().await {
                Ok(result) => result,
                Err(panic) => Err(anyhow::anyhow!("panicked: {}", panic_message(&panic))),
            };
            if let Err(e) = outcome {
                record_failure(&failure, &shutdown, &name, e);
            }
        });
    }

    /// Stops the service because of `error` (as if a supervised task named `task` failed):
    /// for failures noticed outside a task's own result, such as a downstream write that
    /// finally failed in a callback.
    pub fn fail(&self, task: &str, error: anyhow::Error) {
        record_failure(&self.failure, &self.shutdown, task, error);
    }

    /// Keeps readiness component `component` up to date by running `probe` every
    /// `interval` until shutdown. A failing probe makes the service not ready; it never
    /// stops the service (dependencies come and go).
    pub fn watch_dependency<P, Fut>(&self, component: &str, interval: Duration, probe: P)
    where
        P: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send,
    {
        let handle: ReadinessHandle = self.readiness.register(component);
        let shutdown = self.shutdown.clone();
        let component = component.to_string();
        self.spawn(&format!("probe {component}"), async move {
            let mut last_ok = None;
            loop {
                let result = probe().await;
                let ok = result.is_ok();
                if last_ok != Some(ok) {
                    match &result {
                        Ok(()) => tracing::info!(dependency = %component, "dependency answers"),
                        Err(e) => tracing::warn!(dependency = %component, reason = %e, "dependency not ready"),
                    }
                    last_ok = Some(ok);
                }
                handle.set(result);
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        });
    }
}

/// Logs the failure, keeps the first one for the exit report, and stops the service.
fn record_failure(
    failure: &Failure,
    shutdown: &CancellationToken,
    task: &str,
    error: anyhow::Error,
) {
    tracing::error!(task, error = %format!("{error:#}"), "task failed; stopping the service");
    let mut first = failure.lock().unwrap_or_else(|p| p.into_inner());
    first.get_or_insert((task.to_string(), error));
    shutdown.cancel();
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
