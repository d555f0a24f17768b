//! The final counts, printed for people and as one `key=value` line for scripts (the
//! benchmark reads it).

use std::time::Duration;

use super::engine::Counts;
use super::output::Written;

pub struct Summary {
    pub counts: Counts,
    pub written: Written,
    pub elapsed: Duration,
}

impl Summary {
    pub fn new(counts: Counts, written: Written, elapsed: Duration) -> Summary {
        Summary {
            counts,
            written,
            elapsed,
        }
    }

    pub fn orders(&self) -> u64 {
        self.counts.orders_complete + self.counts.orders_partial
    }

    pub fn print(&self) {
        let c = &self.counts;
        let w = &self.written;
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            c.sales as f64 / secs
        } else {
            0.0
        };
        let rss = peak_rss_kib();
        let cpu = cpu_seconds();
        let per_cpu = if cpu > 0.0 { c.sales as f64 / cpu } else { 0.0 };
        println!("rebuild finished in {secs:.1}s");
        println!(
            "  read:    {} customers, {} addresses, {} sales, {} bad lines",
            c.customers, c.addresses, c.sales, c.bad_lines
        );
        println!(
            "  joined:  {} orders ({} complete, {} partial), {} invalid sales",
            self.orders(),
            c.orders_complete,
            c.orders_partial,
            c.invalid_sales
        );
        println!(
            "  windows: {} metric records ({} distinct ids), {} late orders",
            c.metric_emissions, c.distinct_metrics, c.late_orders
        );
        println!(
            "  written: {} orders, {} metrics, {} errors in {} files/objects",
            w.orders, w.metrics, w.errors, w.files
        );
        if w.indexed > 0 || w.rejected > 0 {
            println!(
                "  indexed: {} documents, {} rejected",
                w.indexed, w.rejected
            );
        }
        println!(
            "  speed:   {rate:.0} sales/s ({per_cpu:.0} per CPU second, {cpu:.1} s of CPU), peak RSS {} MiB",
            rss.map_or("?".to_string(), |k| (k / 1024).to_string())
        );
        println!(
            "rebuild-summary sales={} orders={} metrics={} errors={} seconds={secs:.3} cpu_seconds={cpu:.3} sales_per_sec={rate:.0} sales_per_cpu_sec={per_cpu:.0} peak_rss_kib={}",
            c.sales,
            self.orders(),
            c.metric_emissions,
            w.errors,
            rss.unwrap_or(0)
        );
    }
}

/// User plus system CPU time of every thread of this process so far: on a shared machine
/// sales per CPU second says what the code costs, sales per wall-clock second what it got.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// VmHWM (peak resident set size) of this process, in KiB (Linux).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
