//! Rebuild throughput, local files to local files: a raw archive of millions of sales is
//! generated with `flowline-datagen` into a temporary directory (not timed), then
//! `flowctl rebuild` runs over it, end to end (listing, gunzip, JSON parsing, event-time
//! merge, join, windows, JSON Lines output):
//!
//! - one core: `--threads 1`, pinned to CPU 0 with `taskset`;
//! - two cores: `--threads 2` (reading, gunzip, parsing and merging on a second thread,
//!   join, windows and writing on the first), pinned to CPUs 0 and 1.
//!
//! Figures are sales/s over the whole run (wall clock), sales per CPU second (user + system
//! time of the rebuild process: on a shared machine the honest cost figure), and peak RSS
//! (VmHWM of the rebuild process); the rebuild prints all three. Size: `REBUILD_BENCH_SALES` (default 3,000,000), `REBUILD_BENCH_CUSTOMERS`
//! (default 100,000); `REBUILD_BENCH_PARQUET=1` adds a one-core run with Parquet output;
//! `REBUILD_BENCH_DIR` keeps the archive there and reuses it (same size) next time.

#[path = "../tests/rebuild_support/mod.rs"]
mod rebuild_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use flowline_datagen::GenConfig;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn has_taskset() -> bool {
    Command::new("taskset")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs the rebuild and returns its `rebuild-summary` fields.
fn run(
    input: &Path,
    out: &Path,
    cpus: &str,
    threads: &str,
    extra: &[&str],
) -> Vec<(String, String)> {
    let bin = env!("CARGO_BIN_EXE_flowctl");
    let mut cmd = if has_taskset() {
        let mut c = Command::new("taskset");
        c.args(["-c", cpus, bin]);
        c
    } else {
        Command::new(bin)
    };
    let o = cmd
        .args(["rebuild", "--threads", threads, "--input"])
        .arg(input)
        .arg("--output")
        .arg(out)
        .args(extra)
        .output()
        .expect("flowctl runs");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "rebuild failed: {stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("rebuild-summary"))
        .expect("summary line");
    line.split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("?", |(_, v)| v.as_str())
}

fn main() {
    let sales = env_u64("REBUILD_BENCH_SALES", 3_000_000);
    let customers = env_u64("REBUILD_BENCH_CUSTOMERS", 100_000) as u32;
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = match std::env::var_os("REBUILD_BENCH_DIR") {
        Some(d) => std::path::PathBuf::from(d).join(format!("{sales}-{customers}")),
        None => temp.path().to_path_buf(),
    };
    let input = dir.join("archive");
    let started = Instant::now();
    let cfg = GenConfig {
        seed: 42,
        customers,
        sales,
        // 1,000 sales per second of event time: an hour partition holds 3.6M sales.
        rate: 1_000.0,
        start_time: "2026-01-01T00:00:00Z".parse().expect("time"),
        ..GenConfig::default()
    };
    if !input.join("reference").exists() {
        let _ = std::fs::remove_dir_all(&input);
        rebuild_support::write_archive(&input, cfg, 500_000, false);
    }
    let bytes: u64 = walk_size(&input);
    println!(
        "rebuild bench: {sales} sales, {customers} customers, {:.1} MiB gzip, ready in {:.1?}",
        bytes as f64 / 1048576.0,
        started.elapsed()
    );
    if !has_taskset() {
        println!("(taskset not found: runs are not pinned to CPUs)");
    }
    let mut runs = vec![
        ("one core, --threads 1, JSON Lines", "0", "1", vec![]),
        ("two cores, --threads 2, JSON Lines", "0,1", "2", vec![]),
    ];
    if std::env::var("REBUILD_BENCH_PARQUET").is_ok_and(|v| v == "1") {
        runs.push((
            "one core, --threads 1, Parquet",
            "0",
            "1",
            vec!["--format", "parquet"],
        ));
    }
    for (name, cpus, threads, extra) in runs {
        let out = dir.join(format!("out-{threads}"));
        let t = Instant::now();
        let f = run(&input, &out, cpus, threads, &extra);
        let wall: Duration = t.elapsed();
        let rss: u64 = field(&f, "peak_rss_kib").parse().unwrap_or(0);
        println!(
            "{name:<38} {:>9} sales/s, {:>9} sales per CPU second ({} sales, {} orders, {} metric records in {}s, {}s CPU; wall {:.1?}), peak RSS {} MiB",
            field(&f, "sales_per_sec"),
            field(&f, "sales_per_cpu_sec"),
            field(&f, "sales"),
            field(&f, "orders"),
            field(&f, "metrics"),
            field(&f, "seconds"),
            field(&f, "cpu_seconds"),
            wall,
            rss / 1024
        );
        let _ = std::fs::remove_dir_all(&out);
    }
}

fn walk_size(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        total += if p.is_dir() {
            walk_size(&p)
        } else {
            e.metadata().map_or(0, |m| m.len())
        };
    }
    total
}
