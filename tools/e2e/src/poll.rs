//! Waiting for the pipeline by polling a condition, never by fixed sleeps.

use std::future::Future;
use std::time::{Duration, Instant};

/// Calls `check` every `every` until it returns `Ok(true)` or `timeout` passes. The error
/// names `what` and the last `Err` (or "still false").
pub async fn until<F, Fut>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let start = Instant::now();
    loop {
        let last = match check().await {
            Ok(true) => return Ok(()),
            Ok(false) => "still false".to_string(),
            Err(e) => format!("{e:#}"),
        };
        if start.elapsed() > timeout {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}: {last}");
        }
        tokio::time::sleep(every).await;
    }
}
