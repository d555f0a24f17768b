//! Progress: a bar on a terminal, a log line per interval otherwise; and the summary.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::publish::Counters;
use indicatif::{ProgressBar, ProgressStyle};

/// Turns true when the run is over.
pub type Stop = tokio::sync::watch::Receiver<bool>;

/// Reports until `stop` turns true.
pub async fn report(counters: Arc<Counters>, expected: u64, interval: Duration, mut stop: Stop) {
    let started = Instant::now();
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(expected);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} events {per_sec} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let tick = if bar.is_some() {
        Duration::from_millis(200)
    } else {
        interval
    };
    loop {
        let sent = Counters::total(&counters.sent);
        let acked = Counters::total(&counters.acked);
        let failed = Counters::total(&counters.failed);
        match &bar {
            Some(bar) => {
                bar.set_position(acked + failed);
                bar.set_message(format!("sent {sent}, errors {failed}"));
            }
            None => {
                let rate = acked as f64 / started.elapsed().as_secs_f64().max(0.001);
                tracing::info!(
                    sent,
                    acked,
                    failed,
                    rate = format!("{rate:.0}/s"),
                    "progress"
                );
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => break,
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

/// The end-of-run summary, printed to stdout.
pub fn summary(counters: &Counters, streams: [&str; 3], wall: Duration) -> String {
    let mut out = format!(
        "producer summary (wall time {:.1}s)\n{:<16} {:>10} {:>12} {:>8}\n",
        wall.as_secs_f64(),
        "stream",
        "events",
        "bytes",
        "failed"
    );
    for (i, stream) in streams.iter().enumerate() {
        out.push_str(&format!(
            "{:<16} {:>10} {:>12} {:>8}\n",
            stream,
            counters.acked[i].load(Ordering::Relaxed),
            counters.bytes[i].load(Ordering::Relaxed),
            counters.failed[i].load(Ordering::Relaxed)
        ));
    }
    let acked = Counters::total(&counters.acked);
    out.push_str(&format!(
        "{:<16} {:>10} {:>12} {:>8}\n",
        "total",
        acked,
        Counters::total(&counters.bytes),
        Counters::total(&counters.failed)
    ));
    out.push_str(&format!(
        "throughput: {:.0} events/s\n",
        acked as f64 / wall.as_secs_f64().max(0.001)
    ));
    out
}
