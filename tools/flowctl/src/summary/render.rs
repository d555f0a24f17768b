//! The summary as text: short tables a person checks at a glance.

use std::fmt::Write as _;

use super::Summary;
use crate::table::table;

pub fn text(s: &Summary) -> String {
    let mut out = String::new();
    let scope = s
        .since
        .as_deref()
        .map(|t| format!(" (since {t})"))
        .unwrap_or_default();
    let _ = writeln!(out, "== Flowline run summary{scope}");

    let _ = writeln!(out, "\nEvents per stream (read by the archiver)");
    if s.events_per_stream.is_empty() {
        let _ = writeln!(out, "  (archiver metrics not available)");
    }
    let rows: Vec<[String; 2]> = s
        .events_per_stream
        .iter()
        .map(|(k, v)| [k.clone(), v.to_string()])
        .collect();
    out.push_str(&table(&rows, 1));

    let o = &s.orders;
    let _ = writeln!(
        out,
        "\nOrders in OpenSearch: {} (net revenue {:.2})",
        o.total, o.net_revenue
    );
    let rows: Vec<[String; 2]> = o
        .by_join_status
        .iter()
        .map(|(k, v)| [format!("join_status={k}"), v.to_string()])
        .collect();
    out.push_str(&table(&rows, 1));
    let _ = writeln!(out, "\nTop categories by net revenue");
    let mut rows = vec![[
        "CATEGORY".to_string(),
        "ORDERS".into(),
        "NET REVENUE".into(),
    ]];
    rows.extend(o.top_categories.iter().map(|c| {
        [
            c.category.clone(),
            c.orders.to_string(),
            format!("{:.2}", c.net_revenue),
        ]
    }));
    out.push_str(&table(&rows, 1));
    let m = &s.window_metrics;
    let dims: Vec<String> = m
        .by_dimension
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(
        out,
        "\nWindow metrics in OpenSearch: {} ({})",
        m.total,
        dims.join(", ")
    );

    let _ = writeln!(out, "\nS3 s3://{}", s.bucket);
    let mut rows = vec![["DATASET".to_string(), "OBJECTS".into(), "ROWS".into()]];
    rows.extend(
        s.lake
            .iter()
            .filter(|(k, _)| !k.starts_with("errors/"))
            .map(|(k, d)| [k.clone(), d.objects.to_string(), d.rows.to_string()]),
    );
    out.push_str(&table(&rows, 1));

    let _ = writeln!(out, "\nDead letters");
    let mut rows = vec![[
        "STAGE".to_string(),
        "ERROR TYPE".into(),
        "COUNTED".into(),
        "IN S3 errors/".into(),
    ]];
    rows.extend(s.dead_letters.iter().map(|d| {
        [
            d.stage.clone(),
            d.error_type.clone(),
            d.counted.to_string(),
            d.in_s3.to_string(),
        ]
    }));
    out.push_str(&table(&rows, 1));

    let _ = writeln!(
        out,
        "\nEnd-to-end latency (indexer histogram: event time to indexed)"
    );
    let secs = |v: Option<f64>| v.map(|v| format!("{v:.2}s")).unwrap_or_else(|| "-".into());
    let mut rows = vec![[
        "FAMILY".to_string(),
        "DOCS".into(),
        "P50".into(),
        "P95".into(),
        "P99".into(),
    ]];
    rows.extend(s.latency.iter().map(|(k, l)| {
        [
            k.clone(),
            l.count.to_string(),
            secs(l.p50_seconds),
            secs(l.p95_seconds),
            secs(l.p99_seconds),
        ]
    }));
    out.push_str(&table(&rows, 1));

    let _ = writeln!(out, "\nLook next");
    for (name, url) in &s.admin {
        let _ = writeln!(out, "  {name:<18} {url}/metrics  /ready  /health");
    }
    let _ = writeln!(
        out,
        "  {:<18} {}/orders/_search?q=join_status:partial",
        "OpenSearch", s.opensearch_url
    );
    let _ = writeln!(out, "  {:<18} {}/_cat/indices?v", "", s.opensearch_url);
    let _ = writeln!(
        out,
        "  {:<18} s3://{}/ (raw/, curated/, errors/)",
        "S3", s.bucket
    );
    let _ = writeln!(out, "  {:<18} flowctl status", "leases and lag");
    for note in &s.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}
