//! SIGINT/SIGTERM handling: the first signal starts a graceful shutdown, a second one
//! exits at once (an operator who presses Ctrl-C twice means it).

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Exit code when a second signal cuts the drain short (128 + SIGINT, as shells report).
pub const FORCED_EXIT_CODE: i32 = 130;

pub async fn watch(shutdown: CancellationToken) {
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot install signal handlers; stopping");
            shutdown.cancel();
            return;
        }
    };
    let first = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
        // Shutdown for another reason (work finished, a task failed): a signal from now on
        // still means "exit at once".
        _ = shutdown.cancelled() => "",
    };
    if !first.is_empty() {
        tracing::info!(
            signal = first,
            "shutdown requested; draining (send the signal again to exit at once)"
        );
        shutdown.cancel();
    }
    let second = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::warn!(signal = second, "second signal: exiting at once");
    std::process::exit(FORCED_EXIT_CODE);
}
