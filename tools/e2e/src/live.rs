//! Checks against the running services (issue #10): their live `/metrics` against the metric
//! names the alert rules and dashboards reference, and `flowctl status --json`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::bins::bin;
use crate::pipeline::{Pipeline, Service};

pub const SERVICES: [&str; 5] = [
    "producer",
    "enrichment-joiner",
    "aggregator",
    "indexer",
    "archiver",
];

/// `deploy/prometheus/referenced-metrics.txt` of this workspace.
pub fn referenced_metrics_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/prometheus/referenced-metrics.txt")
}

/// The services a group comment of the `[exported]` section names: after `): ` a list
/// (`joiner, aggregator, indexer (dead letters)`, `every service`), else the group's own
/// name (`# Producer (services/producer/src/metrics.rs)`).
fn group_services(comment: &str) -> anyhow::Result<Vec<&'static str>> {
    let list = match comment.split_once("): ") {
        Some((_, list)) => list.to_string(),
        None => comment
            .split(" (")
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase(),
    };
    let mut out = Vec::new();
    for token in list.split(',') {
        // "indexer (dead letters)": the parenthesis says why, not who.
        let token = token.split(" (").next().unwrap_or_default().trim();
        match token {
            "every service" => out.extend(SERVICES),
            "joiner" | "enrichment-joiner" => out.push("enrichment-joiner"),
            other => match SERVICES.iter().find(|s| **s == other) {
                Some(s) => out.push(*s),
                None => bail!("group {comment:?} names {other:?}, not a service"),
            },
        }
    }
    Ok(out)
}

/// Service → metric families it must export, from the `[exported]` section.
pub fn exported_by_service(text: &str) -> anyhow::Result<BTreeMap<&'static str, BTreeSet<String>>> {
    let mut out: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    let mut section = "";
    let mut group: Option<Vec<&'static str>> = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            section = line;
            group = None;
        } else if section == "[exported]" {
            if let Some(comment) = line.strip_prefix('#') {
                group = Some(group_services(comment.trim())?);
            } else {
                let services = group
                    .as_ref()
                    .with_context(|| format!("{line} is listed before any group comment"))?;
                for s in services {
                    out.entry(*s).or_default().insert(line.to_string());
                }
            }
        }
    }
    if out.is_empty() {
        bail!("no [exported] metrics found");
    }
    Ok(out)
}

/// Metric families present in a Prometheus text scrape (`# TYPE` lines).
pub fn families(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The sum of every sample of metric `name` (all label sets) in a scrape.
pub fn metric_sum(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Every referenced name `service` should export but its scrape lacks.
pub fn missing_metrics(
    expected: &BTreeMap<&'static str, BTreeSet<String>>,
    service: &str,
    scrape: &str,
) -> Vec<String> {
    let have = families(scrape);
    expected
        .get(service)
        .into_iter()
        .flatten()
        .filter(|name| !have.contains(*name))
        .map(|name| format!("{service}: {name}"))
        .collect()
}

/// `flowctl status --json --prefix <prefix>` against the test's environment.
pub async fn flowctl_status(p: &Pipeline) -> anyhow::Result<Value> {
    let out = tokio::process::Command::new(bin("flowctl")?)
        .args(["status", "--json", "--prefix", &p.names.prefix])
        .envs(p.stack.env())
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await?;
    if !out.status.success() {
        bail!(
            "flowctl status failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "flowctl status --json is not JSON: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// What `flowctl status` says about the pipeline.
#[derive(Debug, Default)]
pub struct StatusView {
    /// Shards without an owned, checkpointed, measured lease, and other problems.
    pub problems: Vec<String>,
    /// Every lease's checkpoint is at the tip of its shard.
    pub caught_up: bool,
    /// Application → lease owners.
    pub owners: BTreeMap<String, BTreeSet<String>>,
}

/// Checks that every application holds a lease with an owner and a checkpoint on every
/// shard of each of its input streams.
pub fn check_status(p: &Pipeline, status: &Value) -> StatusView {
    let mut view = StatusView {
        caught_up: true,
        ..StatusView::default()
    };
    let empty = Vec::new();
    let streams = status["streams"].as_array().unwrap_or(&empty);
    let shards_of = |stream: &str| -> Vec<String> {
        streams
            .iter()
            .filter(|s| s["name"] == stream)
            .flat_map(|s| s["shards"].as_array().cloned().unwrap_or_default())
            .filter_map(|sh| sh["shard_id"].as_str().map(str::to_string))
            .collect()
    };
    for service in Service::ALL {
        let app = p.names.application(service.name());
        let Some(a) = status["applications"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .find(|a| a["name"] == app.as_str())
        else {
            view.problems.push(format!("{app}: not in flowctl status"));
            continue;
        };
        if !a["error"].is_null() {
            view.problems.push(format!("{app}: {}", a["error"]));
        }
        let leases = a["leases"].as_array().unwrap_or(&empty);
        for input in service.inputs() {
            let stream = p.names.stream(input);
            let shards = shards_of(&stream);
            if shards.is_empty() {
                view.problems
                    .push(format!("{stream}: no shards in flowctl status"));
            }
            for shard in shards {
                let what = format!("{app} {stream}/{shard}");
                let Some(lease) = leases
                    .iter()
                    .find(|l| l["stream"] == stream.as_str() && l["shard_id"] == shard.as_str())
                else {
                    view.problems.push(format!("{what}: no lease"));
                    continue;
                };
                match lease["owner"].as_str() {
                    Some(owner) => {
                        view.owners
                            .entry(app.clone())
                            .or_default()
                            .insert(owner.to_string());
                    }
                    None => view.problems.push(format!("{what}: no owner")),
                }
                if lease["checkpoint"].as_str().is_none_or(str::is_empty) {
                    view.problems.push(format!("{what}: no checkpoint"));
                }
                match lease["millis_behind_latest"].as_i64() {
                    Some(0) => {}
                    Some(_) => view.caught_up = false,
                    None => {
                        view.caught_up = false;
                        view.problems.push(format!("{what}: lag not measured"));
                    }
                }
            }
        }
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_referenced_metrics_file_parses_into_services() {
        let text = std::fs::read_to_string(referenced_metrics_path()).unwrap();
        let by = exported_by_service(&text).unwrap();
        for s in SERVICES {
            assert!(
                by[s].contains("process_resident_memory_bytes"),
                "{s}: runtime metrics apply to every service"
            );
        }
        assert!(by["enrichment-joiner"].contains("flowline_join_pending_sales"));
        assert!(!by["archiver"].contains("flowline_kinesis_producer_retries_total"));
        assert!(by["indexer"].contains("flowline_kinesis_producer_retries_total"));
        assert!(!by.contains_key("up"));
    }

    #[test]
    fn families_come_from_type_lines() {
        let scrape = "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n# TYPE h histogram\nh_bucket{le=\"1\"} 0\n";
        let f = families(scrape);
        assert!(f.contains("a_total") && f.contains("h"));
        let expected = BTreeMap::from([(
            "aggregator",
            BTreeSet::from(["h".to_string(), "x".to_string()]),
        )]);
        assert_eq!(
            missing_metrics(&expected, "aggregator", scrape),
            ["aggregator: x"]
        );
    }
}
