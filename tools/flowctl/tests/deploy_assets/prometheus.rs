//! deploy/prometheus and deploy/grafana: promtool, metric names, dashboard queries.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::SERVICES;
use crate::support::{array_at, read, repo, run_ok, set, str_at, system_tool, temp_dir, yaml_file};

pub(crate) fn promtool() -> PathBuf {
    system_tool(
        "promtool",
        "install Debian's `prometheus` package (`localstack/stack.sh install` does)",
    )
}

#[test]
pub(crate) fn prometheus_config_and_rules_pass_promtool() {
    let root = repo();
    let prom = root.join("deploy/prometheus");
    // Point rule_files at the repository's rules, so `check config` loads and checks them too.
    let config = read("deploy/prometheus/prometheus.yml");
    assert!(config.contains("/etc/prometheus/rules/*.yml"));
    let dir = temp_dir("prom");
    let local = dir.path().join("prometheus.yml");
    std::fs::write(
        &local,
        config.replace(
            "/etc/prometheus/rules/*.yml",
            &prom.join("rules/*.yml").to_string_lossy(),
        ),
    )
    .expect("write config");
    let out = run_ok(
        Command::new(promtool())
            .args(["check", "config"])
            .arg(&local),
    );
    assert!(
        out.contains("rules found"),
        "the config loaded no rules: {out}"
    );
    run_ok(
        Command::new(promtool())
            .args(["check", "rules"])
            .arg(prom.join("rules/flowline.yml")),
    );
    run_ok(Command::new(promtool()).current_dir(&prom).args([
        "test",
        "rules",
        "tests/flowline.test.yml",
    ]));

    // Every service is scraped on its admin port, as a job named after it.
    let parsed = yaml_file("deploy/prometheus/prometheus.yml");
    for (name, port) in SERVICES {
        let job = array_at(&parsed, "/scrape_configs")
            .iter()
            .find(|j| j["job_name"] == name)
            .unwrap_or_else(|| panic!("no scrape job {name}"));
        let sd = &job["dns_sd_configs"][0];
        assert_eq!(sd["names"][0], name);
        assert_eq!(sd["port"], port);
    }
    // Every alert is exercised by a unit test.
    let rules = yaml_file("deploy/prometheus/rules/flowline.yml");
    let tests = read("deploy/prometheus/tests/flowline.test.yml");
    for group in array_at(&rules, "/groups") {
        for rule in array_at(group, "/rules") {
            if let Some(alert) = rule["alert"].as_str() {
                assert!(
                    tests.contains(&format!("alertname: {alert}\n")),
                    "alert {alert} has no unit test"
                );
            }
        }
    }
}

/// Metric names in a PromQL expression: identifiers outside strings, label matchers and
/// range selectors that are metrics (ours, the process collector's, recording rules, `up`).
pub(crate) fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut depth_braces = 0;
    let mut depth_brackets = 0;
    let mut in_string: Option<char> = None;
    let mut word = String::new();
    let mut flush = |word: &mut String, inside: bool| {
        if !inside
            && (word.starts_with("flowline_")
                || word.starts_with("flowline:")
                || word.starts_with("process_")
                || word == "up")
        {
            names.insert(word.clone());
        }
        word.clear();
    };
    for c in expr.chars() {
        if let Some(q) = in_string {
            if c == q {
                in_string = None;
            }
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
            continue;
        }
        flush(&mut word, depth_braces > 0 || depth_brackets > 0);
        match c {
            '"' | '\'' | '`' => in_string = Some(c),
            '{' => depth_braces += 1,
            '}' => depth_braces -= 1,
            '[' => depth_brackets += 1,
            ']' => depth_brackets -= 1,
            _ => {}
        }
    }
    flush(&mut word, depth_braces > 0 || depth_brackets > 0);
    names
}

/// Sections of deploy/prometheus/referenced-metrics.txt: `[exported]`, `[recording]`, `[scrape]`.
pub(crate) fn referenced_metrics_file() -> BTreeMap<String, BTreeSet<String>> {
    let mut sections: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current = None;
    for line in read("deploy/prometheus/referenced-metrics.txt").lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            current = Some(s.to_string());
            continue;
        }
        let section = current.clone().expect("a name before any [section]");
        assert!(
            sections
                .entry(section)
                .or_default()
                .insert(line.to_string()),
            "{line} listed twice"
        );
    }
    sections
}

/// Every PromQL expression of the rules, dashboards and adapter, with where it is from.
pub(crate) fn all_expressions() -> Vec<(String, String)> {
    let mut exprs = Vec::new();
    let rules = yaml_file("deploy/prometheus/rules/flowline.yml");
    for group in array_at(&rules, "/groups") {
        for rule in array_at(group, "/rules") {
            let name = rule["alert"]
                .as_str()
                .or(rule["record"].as_str())
                .expect("name");
            exprs.push((format!("rule {name}"), str_at(rule, "/expr").to_string()));
        }
    }
    for (file, dashboard) in dashboards() {
        for panel in array_at(&dashboard, "/panels") {
            for target in panel["targets"].as_array().into_iter().flatten() {
                exprs.push((
                    format!("{file}: {}", panel["title"]),
                    str_at(target, "/expr").to_string(),
                ));
            }
        }
    }
    let adapter = yaml_file("deploy/k8s/prometheus-adapter/values.yaml");
    for kind in ["custom", "external"] {
        for rule in array_at(&adapter, &format!("/rules/{kind}")) {
            exprs.push((
                format!("adapter {kind}"),
                str_at(rule, "/seriesQuery").to_string(),
            ));
        }
    }
    exprs
}

pub(crate) fn dashboards() -> Vec<(String, Value)> {
    let dir = repo().join("deploy/grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("dashboards dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("dashboard");
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect()
}

/// Metric names defined as string literals in the services' and crates' Rust code.
pub(crate) fn metric_literals_in_code() -> BTreeSet<String> {
    let root = repo();
    let mut found = BTreeSet::new();
    let mut stack = vec![root.join("crates"), root.join("services")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for (at, _) in text.match_indices("\"flowline_") {
                    let rest = &text[at + 1..];
                    let end = rest.find('"').unwrap_or(0);
                    found.insert(rest[..end].to_string());
                }
            }
        }
    }
    found
}

#[test]
pub(crate) fn rules_and_dashboards_reference_only_listed_exported_metrics() {
    let listed = referenced_metrics_file();
    let empty = BTreeSet::new();
    let exported = listed.get("exported").unwrap_or(&empty);
    let recording = listed.get("recording").unwrap_or(&empty);
    let scrape = listed.get("scrape").unwrap_or(&empty);
    assert_eq!(
        scrape,
        &set(&["up"]),
        "[scrape] holds Prometheus's own series"
    );

    let mut used = BTreeSet::new();
    for (origin, expr) in all_expressions() {
        for name in metric_names(&expr) {
            // Histogram series are listed by family name.
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| exported.contains(*f)))
                .map_or(name.clone(), str::to_string);
            assert!(
                exported.contains(&family)
                    || recording.contains(&family)
                    || scrape.contains(&family),
                "{origin}: metric {family} is not in deploy/prometheus/referenced-metrics.txt"
            );
            used.insert(family);
        }
    }
    let unused: Vec<_> = exported
        .union(recording)
        .filter(|n| !used.contains(*n))
        .collect();
    assert!(
        unused.is_empty(),
        "listed but referenced nowhere: {unused:?}"
    );

    // Recording rules listed are exactly those the rules file defines.
    let rules = yaml_file("deploy/prometheus/rules/flowline.yml");
    let defined: BTreeSet<String> = array_at(&rules, "/groups")
        .iter()
        .flat_map(|g| array_at(g, "/rules"))
        .filter_map(|r| r["record"].as_str().map(str::to_string))
        .collect();
    assert_eq!(recording, &defined, "[recording] vs rules/flowline.yml");

    // Exported names are defined by the code (process_* come from the prometheus crate).
    let in_code = metric_literals_in_code();
    for name in exported.iter().filter(|n| n.starts_with("flowline_")) {
        assert!(
            in_code.contains(name),
            "{name} is referenced but no crate or service defines it"
        );
    }
}

#[test]
pub(crate) fn dashboards_are_well_formed_and_their_queries_parse() {
    let dashboards = dashboards();
    let names: BTreeSet<&str> = dashboards.iter().map(|(f, _)| f.as_str()).collect();
    let mut expected: BTreeSet<String> =
        SERVICES.iter().map(|(n, _)| format!("{n}.json")).collect();
    expected.insert("overview.json".into());
    assert_eq!(names, expected.iter().map(String::as_str).collect());

    let mut uids = BTreeSet::new();
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    let mut n = 0;
    for (file, d) in &dashboards {
        assert!(
            uids.insert(str_at(d, "/uid").to_string()),
            "{file}: duplicate uid"
        );
        assert!(
            array_at(d, "/templating/list")
                .iter()
                .any(|v| v["name"] == "datasource" && v["type"] == "datasource"),
            "{file}: no datasource variable"
        );
        let mut ids = BTreeSet::new();
        let stage = file.trim_end_matches(".json");
        for panel in array_at(d, "/panels") {
            assert!(
                ids.insert(panel["id"].as_u64().expect("id")),
                "{file}: duplicate panel id"
            );
            assert!(panel["gridPos"]["w"].as_u64().is_some_and(|w| w <= 24));
            for target in panel["targets"].as_array().into_iter().flatten() {
                assert_eq!(target["datasource"]["uid"], "${datasource}", "{file}");
                let expr = str_at(target, "/expr");
                // A stage's dashboard shows that stage only.
                if stage != "overview" {
                    for (at, _) in expr.match_indices("job=\"") {
                        let job = &expr[at + 5..];
                        let job = &job[..job.find('"').expect("quote")];
                        assert_eq!(job, stage, "{file}: a query for another job: {expr}");
                    }
                }
                n += 1;
                let promql = expr.replace("$__rate_interval", "5m");
                rules.push_str(&format!(
                    "      - record: dashboard:query_{n}:check\n        expr: {}\n",
                    serde_json::to_string(&promql).expect("JSON string is YAML")
                ));
            }
        }
    }
    assert!(n > 50, "only {n} queries found");
    // promtool parses every query as a recording rule's expression.
    let dir = temp_dir("dash");
    let file = dir.path().join("dashboards.yml");
    std::fs::write(&file, rules).expect("write rules");
    run_ok(Command::new(promtool()).args(["check", "rules"]).arg(&file));
}
