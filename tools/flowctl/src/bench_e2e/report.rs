//! The benchmark's figures and their report: what was measured, against the targets of
//! issue #9 (p99 ≤ 5 s, RSS ≤ 100 MiB per service, lag back to zero within 10 s), and which
//! component bounds the pipeline, said plainly.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::max_behind;
use crate::summary::prom::{Scrape, quantile};
use crate::table::table;

const P99_TARGET_S: f64 = 5.0;
const RSS_TARGET: u64 = 100 * 1024 * 1024;
const LAG_TARGET_S: f64 = 10.0;

/// What each emulator is, for the report.
const EMULATORS: [(&str, &str); 3] = [
    (
        "kinesis",
        "kinesis-local, the Kinesis emulator (Node.js, one thread)",
    ),
    ("moto", "moto, the DynamoDB/S3 emulator (Python)"),
    ("opensearch", "osmem, the OpenSearch emulator"),
];

/// One poll of every consumer.
pub struct Sample {
    /// Seconds since the producer started.
    pub t: f64,
    pub scrapes: BTreeMap<String, Scrape>,
}

impl Sample {
    /// Largest lag over every held shard of every consumer; None when none holds shards.
    pub fn max_lag(&self) -> Option<f64> {
        self.scrapes
            .values()
            .filter_map(max_behind)
            .fold(None, |acc, v| Some(acc.map_or(v, |a: f64| a.max(v))))
    }

    pub fn progress(&self) -> Vec<u64> {
        crate::wait::PROGRESS
            .iter()
            .flat_map(|name| self.scrapes.values().map(move |s| s.sum(name, &[]) as u64))
            .collect()
    }

    fn counter(&self, service: &str, name: &str) -> f64 {
        self.scrapes.get(service).map_or(0.0, |s| s.sum(name, &[]))
    }
}

pub struct Figures {
    pub rate: f64,
    pub duration: Duration,
    pub sales: u64,
    pub samples: Vec<Sample>,
    /// Samples taken while the producer ran (the rest are the drain).
    pub run_samples: usize,
    /// The producer's last scrape before it exited, with its time.
    pub producer_last: Option<(f64, Scrape)>,
    pub producing_seconds: f64,
    pub producer_ok: bool,
    pub cpu_during_run: BTreeMap<String, f64>,
    pub cpu_total: BTreeMap<String, f64>,
    pub peak_rss: BTreeMap<String, u64>,
    /// Seconds after the producer stopped until every consumer's lag read zero.
    pub lag_zero_after: Option<f64>,
    /// Seconds after the producer stopped until nothing was held or moving.
    pub drained_after: Option<f64>,
    pub exits: BTreeMap<String, String>,
}

impl Figures {
    pub fn new(rate: &f64, duration: Duration, sales: u64) -> Figures {
        Figures {
            rate: *rate,
            duration,
            sales,
            samples: Vec::new(),
            run_samples: 0,
            producer_last: None,
            producing_seconds: 0.0,
            producer_ok: false,
            cpu_during_run: BTreeMap::new(),
            cpu_total: BTreeMap::new(),
            peak_rss: BTreeMap::new(),
            lag_zero_after: None,
            drained_after: None,
            exits: BTreeMap::new(),
        }
    }

    pub fn render(&self) -> String {
        let mut o = String::new();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let load: Vec<&str> = load.split_whitespace().take(3).collect();
        let _ = writeln!(
            o,
            "== End-to-end benchmark: {} sales/s for {:?} ({} sales) through the five services (release build)",
            self.rate, self.duration, self.sales
        );
        let _ = writeln!(
            o,
            "machine: {cores} cores, load average {} at the end (other work on the machine skews these figures)",
            load.join(" ")
        );

        // Producer.
        let (sales_sent, events_sent, at) = match &self.producer_last {
            Some((t, s)) => (
                s.sum("flowline_producer_events_total", &[("stream", "sales")]),
                s.sum("flowline_producer_events_total", &[]),
                *t,
            ),
            None => (0.0, 0.0, 0.0),
        };
        let _ = writeln!(
            o,
            "\nproducer: ran {:.1}s, exit {}; at its last scrape ({at:.0}s) {sales_sent:.0} sales / {events_sent:.0} events acknowledged: {:.0} sales/s (target {})",
            self.producing_seconds,
            if self.producer_ok { "ok" } else { "FAILED" },
            per_second(sales_sent, at),
            self.rate
        );

        // Throughput per stage over the producing window, and totals after the drain.
        let (run, last) = match (
            self.samples.get(self.run_samples.saturating_sub(1)),
            self.samples.last(),
        ) {
            (Some(r), Some(l)) => (r, l),
            _ => {
                let _ = writeln!(o, "no samples taken");
                return o;
            }
        };
        let _ = writeln!(
            o,
            "\nThroughput per stage (per second over the {:.0}s run; totals after the drain)",
            run.t
        );
        let stages: [(&str, &str, &str, &str); 6] = [
            (
                "enrichment-joiner in",
                "enrichment-joiner",
                "flowline_enrichment_joiner_records_in_total",
                "records",
            ),
            (
                "enrichment-joiner out",
                "enrichment-joiner",
                "flowline_enrichment_joiner_orders_out_total",
                "orders",
            ),
            (
                "aggregator in",
                "aggregator",
                "flowline_kinesis_consumer_records_read_total",
                "orders",
            ),
            (
                "aggregator out",
                "aggregator",
                "flowline_aggregator_metrics_emitted_total",
                "window metrics",
            ),
            (
                "indexer out",
                "indexer",
                "flowline_opensearch_documents_indexed_total",
                "documents",
            ),
            (
                "archiver out",
                "archiver",
                "flowline_lake_records_written_total",
                "rows to S3",
            ),
        ];
        let mut rows = vec![[
            "STAGE".to_string(),
            "WHAT".into(),
            "PER SECOND".into(),
            "TOTAL".into(),
        ]];
        rows.push([
            "producer".into(),
            "sales".into(),
            format!("{:.0}", per_second(sales_sent, at)),
            format!("{sales_sent:.0}"),
        ]);
        for (label, service, metric, what) in stages {
            rows.push([
                label.into(),
                what.into(),
                format!("{:.0}", per_second(run.counter(service, metric), run.t)),
                format!("{:.0}", last.counter(service, metric)),
            ]);
        }
        o.push_str(&table(&rows, 2));

        // Latency.
        let _ = writeln!(
            o,
            "\nEnd-to-end latency (indexer histogram; orders: event time to indexed; metrics: window end to indexed)"
        );
        let indexer = last.scrapes.get("indexer");
        let mut p99 = BTreeMap::new();
        // Partial orders wait for the join timeout by design (DESIGN.md section 4), so
        // complete orders are shown apart: their latency is the pipeline's own.
        let rows: [(&str, &[(&str, &str)]); 4] = [
            ("orders", &[("family", "orders")]),
            (
                "complete",
                &[("family", "orders"), ("join_status", "complete")],
            ),
            (
                "partial",
                &[("family", "orders"), ("join_status", "partial")],
            ),
            ("metrics", &[("family", "order-metrics")]),
        ];
        for (label, filter) in rows {
            let buckets = indexer.map_or_else(Vec::new, |s| {
                s.buckets("flowline_indexer_end_to_end_latency_seconds", filter)
            });
            let q = |p| {
                quantile(p, &buckets)
                    .map(|v| format!("{v:.2}s"))
                    .unwrap_or("-".into())
            };
            p99.insert(label, quantile(0.99, &buckets));
            let _ = writeln!(
                o,
                "  {label:<8} docs {:>8}  p50 {:>7}  p95 {:>7}  p99 {:>7}",
                buckets.last().map_or(0.0, |b| b.1),
                q(0.5),
                q(0.95),
                q(0.99)
            );
        }
        for label in ["orders", "complete"] {
            let _ = writeln!(
                o,
                "  target: {label} p99 <= {P99_TARGET_S}s: {}",
                verdict(p99[label].map(|p| p <= P99_TARGET_S))
            );
        }

        // Lag.
        let _ = writeln!(
            o,
            "\nConsumer lag (max flowline_kinesis_consumer_behind_latest_seconds over held shards, sampled every second)"
        );
        for service in super::CONSUMERS {
            let max = self.samples[..self.run_samples.max(1).min(self.samples.len())]
                .iter()
                .filter_map(|s| s.scrapes.get(service).and_then(max_behind))
                .fold(0.0f64, f64::max);
            let _ = writeln!(o, "  {service:<18} max during the run {max:.1}s");
        }
        let _ = writeln!(
            o,
            "  lag back to zero {} after the producer stopped (target <= {LAG_TARGET_S}s: {})",
            secs(self.lag_zero_after),
            verdict(self.lag_zero_after.map(|t| t <= LAG_TARGET_S))
        );
        let _ = writeln!(
            o,
            "  pipeline drained (nothing buffered, last windows emitted and indexed) {} after the producer stopped",
            secs(self.drained_after)
        );

        // Resources.
        let _ = writeln!(
            o,
            "\nCPU and memory (CPU % = CPU seconds during the run / run time; 100% = one core)"
        );
        let mut rows = vec![[
            "PROCESS".to_string(),
            "CPU S (RUN)".into(),
            "CPU %".into(),
            "CPU S (TOTAL)".into(),
            "PEAK RSS".into(),
        ]];
        let mut busiest: Vec<(String, f64)> = Vec::new();
        for (name, cpu) in &self.cpu_during_run {
            let pct = 100.0 * cpu / self.producing_seconds.max(0.001);
            busiest.push((name.clone(), pct));
            rows.push([
                name.clone(),
                format!("{cpu:.1}"),
                format!("{pct:.0}%"),
                format!("{:.1}", self.cpu_total.get(name).copied().unwrap_or(*cpu)),
                self.peak_rss
                    .get(name)
                    .map(|b| format!("{:.1} MiB", *b as f64 / 1048576.0))
                    .unwrap_or("-".into()),
            ]);
        }
        o.push_str(&table(&rows, 2));
        let over: Vec<&String> = self
            .peak_rss
            .iter()
            .filter(|(_, b)| **b > RSS_TARGET)
            .map(|(n, _)| n)
            .collect();
        let _ = writeln!(
            o,
            "  target: peak RSS <= 100 MiB per service: {}",
            if over.is_empty() {
                "met".to_string()
            } else {
                format!("MISSED by {over:?}")
            }
        );

        busiest.sort_by(|a, b| b.1.total_cmp(&a.1));
        let _ = writeln!(
            o,
            "\nBound: {}",
            self.bound(&busiest, per_second(sales_sent, at))
        );
        let exits: Vec<String> = self.exits.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(o, "Stop: {}", exits.join(", "));
        o
    }

    /// Which component limits the pipeline: the busiest process when it is near a full
    /// core (the emulators are effectively single-threaded), else the offered rate.
    fn bound(&self, busiest: &[(String, f64)], achieved: f64) -> String {
        let describe = |name: &str| {
            EMULATORS
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(format!("the {name} service"), |(_, d)| d.to_string())
        };
        let Some((top, pct)) = busiest.first() else {
            return "unknown (no CPU figures)".into();
        };
        let kept_up = achieved >= 0.95 * self.rate;
        let lagging = self.lag_zero_after.is_none_or(|t| t > LAG_TARGET_S);
        if *pct >= 85.0 {
            format!(
                "{} — it used {pct:.0}% of a core during the run{}.",
                describe(top),
                if kept_up && !lagging {
                    " (the run kept up, with no headroom left there)"
                } else {
                    ", and the pipeline fell behind"
                }
            )
        } else if kept_up && !lagging {
            format!(
                "the offered rate: nothing saturated (busiest: {} at {pct:.0}% of a core); a higher --rate would find the limit.",
                describe(top)
            )
        } else {
            format!(
                "not one process (busiest: {} at {pct:.0}% of a core) but the machine: {} cores shared by every process here and other work.",
                describe(top),
                std::thread::available_parallelism().map_or(1, |n| n.get())
            )
        }
    }
}

fn per_second(count: f64, seconds: f64) -> f64 {
    if seconds > 0.0 { count / seconds } else { 0.0 }
}

fn secs(v: Option<f64>) -> String {
    v.map_or("not reached".into(), |t| format!("{t:.1}s"))
}

fn verdict(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "not measured",
    }
}
