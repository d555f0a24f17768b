//! `flowctl bench-e2e` (hidden; `scripts/bench-e2e.sh` runs it): a sustained run at a
//! fixed sales rate through the five release-built services on a local stack, sampled
//! once a second: consumer lag from each service's metrics, CPU and memory from /proc,
//! stage counters; afterwards end-to-end latency from the indexer's histogram, the time
//! for lag to return to zero, and the component that bounds the pipeline. It reports;
//! it never fails on a figure.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::process::{Child, Command};

use crate::summary::prom::{Scrape, scrape};

mod procfs;
mod report;

use report::{Figures, Sample};

/// The consumers, started before the producer, in pipeline order.
const CONSUMERS: [&str; 4] = ["enrichment-joiner", "aggregator", "indexer", "archiver"];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder of the release-built service binaries.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Sales per second.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// How long the producer sends.
    #[arg(long, default_value = "120s", value_parser = humantime_duration)]
    duration: Duration,
    /// Customers of the data set.
    #[arg(long, default_value_t = 2000)]
    customers: u32,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Admin port of the producer; the consumers use the next four.
    #[arg(long, default_value_t = 29101)]
    base_port: u16,
    /// How long to wait, after the producer stops, for the pipeline to drain.
    #[arg(long, default_value = "120s", value_parser = humantime_duration)]
    settle_timeout: Duration,
    /// An emulator process to account CPU to (its process group): NAME=PID, repeatable.
    #[arg(long = "stack-pid", value_name = "NAME=PID", value_parser = parse_pid)]
    stack_pids: Vec<(String, u32)>,
    /// Where the report is written (and printed).
    #[arg(long, default_value = "target/bench-e2e.txt")]
    report: PathBuf,
    /// Where the services' logs go.
    #[arg(long, default_value = "target/bench-e2e-logs")]
    log_dir: PathBuf,
}

fn humantime_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| e.to_string())
}

fn parse_pid(s: &str) -> Result<(String, u32), String> {
    let (name, pid) = s.split_once('=').ok_or("expected NAME=PID")?;
    Ok((
        name.to_string(),
        pid.parse().map_err(|e| format!("{pid}: {e}"))?,
    ))
}

struct Service {
    name: &'static str,
    url: String,
    child: Child,
    pid: u32,
}

impl Args {
    fn port(&self, name: &str) -> u16 {
        let index = std::iter::once("producer")
            .chain(CONSUMERS)
            .position(|n| n == name)
            .unwrap_or(0);
        self.base_port + index as u16
    }

    /// A service process with its admin server on its bench port and its log in a file.
    fn spawn(&self, name: &str, args: &[String]) -> anyhow::Result<Child> {
        std::fs::create_dir_all(&self.log_dir)?;
        let log = File::create(self.log_dir.join(format!("{name}.log")))?;
        let env = format!(
            "{}_ADMIN__PORT",
            name.to_ascii_uppercase().replace('-', "_")
        );
        Command::new(self.bin_dir.join(name))
            .args(args)
            .env(env, self.port(name).to_string())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or("info".into()),
            )
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            // Whatever goes wrong here, no service outlives the benchmark.
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.bin_dir.join(name).display()))
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let sales = (args.rate * args.duration.as_secs_f64()).round() as u64;
    let gen_args = |extra: &[&str]| -> Vec<String> {
        let mut v = vec![
            "--seed".to_string(),
            args.seed.to_string(),
            "--customers".into(),
            args.customers.to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };

    eprintln!("bench-e2e: uploading reference data");
    let status = args
        .spawn("producer", &gen_args(&["reference"]))?
        .wait()
        .await?;
    anyhow::ensure!(status.success(), "producer reference: {status}");

    let mut services = Vec::new();
    for name in CONSUMERS {
        let child = args.spawn(name, &[])?;
        let pid = child.id().context("no pid")?;
        let url = format!("http://127.0.0.1:{}", args.port(name));
        services.push(Service {
            name,
            url,
            child,
            pid,
        });
    }
    for s in &services {
        wait_ready(&http, s).await?;
    }
    eprintln!(
        "bench-e2e: consumers ready; producing {sales} sales at {}/s for {:?}",
        args.rate, args.duration
    );

    let cpu = |services: &[Service]| -> BTreeMap<String, f64> {
        let mut m: BTreeMap<String, f64> = services
            .iter()
            .map(|s| {
                (
                    s.name.to_string(),
                    procfs::cpu_seconds(s.pid).unwrap_or(0.0),
                )
            })
            .collect();
        for (name, pid) in &args.stack_pids {
            let group = procfs::process_group(*pid).unwrap_or(*pid);
            m.insert(name.clone(), procfs::group_cpu_seconds(group));
        }
        m
    };

    let started = Instant::now();
    let cpu_start = cpu(&services);
    let rate = args.rate.to_string();
    let sales_arg = sales.to_string();
    let mut producer = args.spawn(
        "producer",
        &gen_args(&[
            "--rate",
            &rate,
            "--sales",
            &sales_arg,
            "--start-time",
            "now",
        ]),
    )?;
    let producer_pid = producer.id().context("no producer pid")?;
    let producer_url = format!("http://127.0.0.1:{}", args.port("producer"));

    let mut figures = Figures::new(&args.rate, args.duration, sales);
    let mut producer_cpu = 0.0;
    let mut producer_peak = 0u64;
    // Phase 1: while the producer sends.
    let producer_status = loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Ok(s) = scrape(&http, &format!("{producer_url}/metrics")).await {
            figures.producer_last = Some((started.elapsed().as_secs_f64(), s));
        }
        producer_cpu = procfs::cpu_seconds(producer_pid).unwrap_or(producer_cpu);
        producer_peak = procfs::memory(producer_pid)
            .map(|m| m.1)
            .unwrap_or(producer_peak);
        figures
            .samples
            .push(sample(&http, &services, started).await);
        if let Some(status) = producer.try_wait()? {
            break status;
        }
    };
    let producing = started.elapsed();
    figures.producing_seconds = producing.as_secs_f64();
    figures.producer_ok = producer_status.success();
    let cpu_stop = cpu(&services);
    figures.cpu_during_run = cpu_stop
        .iter()
        .map(|(k, v)| (k.clone(), v - cpu_start.get(k).copied().unwrap_or(0.0)))
        .collect();
    figures
        .cpu_during_run
        .insert("producer".into(), producer_cpu);
    figures.cpu_total.insert("producer".into(), producer_cpu);
    figures.peak_rss.insert("producer".into(), producer_peak);
    eprintln!(
        "bench-e2e: producer finished after {:.0}s ({producer_status}); draining",
        producing.as_secs_f64()
    );

    // Phase 2: until the lag is zero and nothing is held or moving, or the timeout. The
    // aggregator is done once its watermark passes the window of the last event.
    figures.run_samples = figures.samples.len();
    let last_window_end = (now_ms() / 60_000 + 1) * 60_000;
    let mut previous: Option<Vec<u64>> = None;
    let drain_deadline = Instant::now() + args.settle_timeout;
    while Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s = sample(&http, &services, started).await;
        let t = s.t - figures.producing_seconds;
        if figures.lag_zero_after.is_none() && s.max_lag() == Some(0.0) {
            figures.lag_zero_after = Some(t);
        }
        let held = crate::wait::held(
            &s.scrapes
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect(),
            last_window_end,
            now_ms(),
        );
        let progress = s.progress();
        let quiet = previous.as_ref() == Some(&progress);
        previous = Some(progress);
        let drained = s.max_lag() == Some(0.0) && held.is_empty() && quiet;
        figures.samples.push(s);
        if drained {
            figures.drained_after = Some(t);
            break;
        }
    }

    for s in &services {
        figures.cpu_total.insert(
            s.name.to_string(),
            procfs::cpu_seconds(s.pid).unwrap_or(0.0),
        );
        if let Some((_, peak)) = procfs::memory(s.pid) {
            figures.peak_rss.insert(s.name.to_string(), peak);
        }
    }
    for (name, pid) in &args.stack_pids {
        let group = procfs::process_group(*pid).unwrap_or(*pid);
        let total = procfs::group_cpu_seconds(group);
        figures.cpu_total.insert(
            name.clone(),
            total - cpu_start.get(name).copied().unwrap_or(0.0),
        );
    }

    // A clean stop: one SIGTERM each, then their exit codes.
    for s in &services {
        // SAFETY: kill(2) with a pid we started and still own (not yet reaped).
        unsafe { libc::kill(s.pid as i32, libc::SIGTERM) };
    }
    for s in &mut services {
        let status = tokio::time::timeout(Duration::from_secs(60), s.child.wait()).await;
        let text = match status {
            Ok(Ok(st)) => st.to_string(),
            Ok(Err(e)) => format!("wait failed: {e}"),
            Err(_) => {
                let _ = s.child.start_kill();
                "did not stop within 60s (killed)".into()
            }
        };
        figures.exits.insert(s.name.to_string(), text);
    }

    let text = figures.render();
    if let Some(dir) = args.report.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.report, &text)
        .with_context(|| format!("writing {}", args.report.display()))?;
    print!("{text}");
    eprintln!("bench-e2e: report in {}", args.report.display());
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn wait_ready(http: &reqwest::Client, s: &Service) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let ok = http
            .get(format!("{}/ready", s.url))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} not ready after 90s (see its log)",
            s.name
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn sample(http: &reqwest::Client, services: &[Service], started: Instant) -> Sample {
    let mut scrapes = BTreeMap::new();
    for s in services {
        if let Ok(m) = scrape(http, &format!("{}/metrics", s.url)).await {
            scrapes.insert(s.name.to_string(), m);
        }
    }
    Sample {
        t: started.elapsed().as_secs_f64(),
        scrapes,
    }
}

/// Shared with the report: the metric every consumer exports per held shard.
pub const BEHIND_LATEST: &str = "flowline_kinesis_consumer_behind_latest_seconds";

/// Largest `behind_latest` over the shards a service holds; None without shards.
pub fn max_behind(s: &Scrape) -> Option<f64> {
    s.select(BEHIND_LATEST, &[])
        .map(|x| x.value)
        .fold(None, |acc: Option<f64>, v| {
            Some(acc.map_or(v, |a| a.max(v)))
        })
}
