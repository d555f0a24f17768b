//! Compares what the pipeline produced with the recomputation and lists every difference.
//! An empty list is the pass condition; tests poll it until it is empty (or time is up).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use serde_json::Value;

use crate::expected::Expected;
use crate::observed::{self, Doc};
use crate::pipeline::Pipeline;
use crate::raw::{RAW_STREAMS, RawData, expected_error_type};
use crate::views::{METRIC_FIELDS, MetricView, ORDER_FIELDS, OrderView, field_diff};

/// Fields a service may add to a document besides DESIGN's (the indexer's own stamp).
const INDEXER_FIELDS: [&str; 1] = ["indexed_at"];

/// `<alias>-YYYY.MM.DD` of the UTC day of `ms`.
fn daily(alias: &str, ms: i64) -> String {
    let day = flowline_model::Timestamp::from_millis(ms)
        .map(|t| t.date_string().replace('-', "."))
        .unwrap_or_default();
    format!("{alias}-{day}")
}

/// Field-set differences of a JSON object against `fields` (+ `allowed_extra`).
fn field_set(what: &str, v: &Value, fields: &[&str], allowed_extra: &[&str]) -> Vec<String> {
    let Some(obj) = v.as_object() else {
        return vec![format!("{what}: not a JSON object: {v}")];
    };
    let mut d = Vec::new();
    for f in fields {
        if !obj.contains_key(*f) {
            d.push(format!("{what}: field {f:?} absent"));
        }
    }
    for k in obj.keys() {
        if !fields.contains(&k.as_str()) && !allowed_extra.contains(&k.as_str()) {
            d.push(format!("{what}: unexpected field {k:?}"));
        }
    }
    d
}

fn order_diff(what: &str, want: &OrderView, got: &Value) -> Vec<String> {
    match OrderView::from_json(got) {
        Ok(view) if view == *want => Vec::new(),
        Ok(view) => vec![format!("{what}: {}", field_diff(want, &view))],
        Err(e) => vec![format!("{what}: unreadable order {got}: {e:#}")],
    }
}

/// Orders in OpenSearch: each expected order exactly once under its `_id`, in the daily
/// index of its event time, equal field by field; nothing else.
fn check_order_docs(docs: &[Doc], alias: &str, expected: &Expected, d: &mut Vec<String>) {
    let mut seen = BTreeMap::new();
    for doc in docs {
        *seen.entry(doc.id.as_str()).or_insert(0) += 1;
        let what = format!("OpenSearch order {}", doc.id);
        let Some(want) = expected.orders.get(&doc.id) else {
            d.push(format!("{what}: not an expected order"));
            continue;
        };
        if doc.source["order_id"] != doc.id.as_str() {
            d.push(format!("{what}: _id differs from order_id"));
        }
        let index = daily(alias, want.event_time);
        if doc.index != index {
            d.push(format!("{what}: in {} instead of {index}", doc.index));
        }
        d.extend(field_set(
            &what,
            &doc.source,
            &ORDER_FIELDS,
            &INDEXER_FIELDS,
        ));
        d.extend(order_diff(&what, want, &doc.source));
    }
    for (id, n) in &seen {
        if *n > 1 {
            d.push(format!("OpenSearch order {id}: {n} documents"));
        }
    }
    for id in expected.orders.keys() {
        if !seen.contains_key(id.as_str()) {
            d.push(format!("OpenSearch order {id}: missing"));
        }
    }
}

fn metric_diff(what: &str, want: &MetricView, got: &Value) -> Vec<String> {
    match MetricView::from_json(got) {
        Ok((_, revision)) if revision < 1 => vec![format!("{what}: revision {revision}")],
        Ok((view, _)) if view == *want => Vec::new(),
        Ok((view, revision)) => vec![format!(
            "{what} (revision {revision}, {} {}): {}",
            want.dimension,
            want.key,
            field_diff(want, &view)
        )],
        Err(e) => vec![format!("{what}: unreadable metric {got}: {e:#}")],
    }
}

fn check_metric_docs(docs: &[Doc], alias: &str, expected: &Expected, d: &mut Vec<String>) {
    let mut seen = BTreeMap::new();
    for doc in docs {
        *seen.entry(doc.id.as_str()).or_insert(0) += 1;
        let what = format!("OpenSearch metric {}", doc.id);
        let Some(want) = expected.metrics.get(&doc.id) else {
            d.push(format!("{what}: not an expected metric: {}", doc.source));
            continue;
        };
        let index = daily(alias, want.window_start);
        if doc.index != index {
            d.push(format!("{what}: in {} instead of {index}", doc.index));
        }
        d.extend(field_set(
            &what,
            &doc.source,
            &METRIC_FIELDS,
            &INDEXER_FIELDS,
        ));
        d.extend(metric_diff(&what, want, &doc.source));
    }
    for (id, n) in &seen {
        if *n > 1 {
            d.push(format!("OpenSearch metric {id}: {n} documents"));
        }
    }
    for (id, m) in &expected.metrics {
        if !seen.contains_key(id.as_str()) {
            d.push(format!("OpenSearch metric {id}: missing ({m:?})"));
        }
    }
}

/// Curated orders: one Parquet row per expected order, equal, no duplicates.
fn check_curated_orders(rows: &[(String, Value)], expected: &Expected, d: &mut Vec<String>) {
    let mut seen: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (key, row) in rows {
        let id = row["order_id"].as_str().unwrap_or_default().to_string();
        seen.entry(id.clone()).or_default().push(key);
        let what = format!("Parquet order {id} in {key}");
        match expected.orders.get(&id) {
            None => d.push(format!("{what}: not an expected order")),
            Some(want) => d.extend(order_diff(&what, want, row)),
        }
    }
    for (id, keys) in &seen {
        if keys.len() > 1 {
            d.push(format!(
                "Parquet order {id}: {} rows, in {keys:?}",
                keys.len()
            ));
        }
    }
    for id in expected.orders.keys() {
        if !seen.contains_key(id) {
            d.push(format!("Parquet order {id}: missing"));
        }
    }
}

/// Curated metrics: every revision at most once; the final revision of each window equal
/// to the recomputation.
fn check_curated_metrics(rows: &[(String, Value)], expected: &Expected, d: &mut Vec<String>) {
    let mut by_revision: BTreeMap<(String, i64), usize> = BTreeMap::new();
    let mut last: BTreeMap<String, (i64, &Value)> = BTreeMap::new();
    for (key, row) in rows {
        let Ok((view, revision)) = MetricView::from_json(row) else {
            d.push(format!("Parquet metric in {key}: unreadable {row}"));
            continue;
        };
        *by_revision.entry((view.id.clone(), revision)).or_default() += 1;
        let e = last.entry(view.id.clone()).or_insert((revision, row));
        if revision > e.0 {
            *e = (revision, row);
        }
    }
    for ((id, revision), n) in &by_revision {
        if *n > 1 {
            d.push(format!("Parquet metric {id} revision {revision}: {n} rows"));
        }
    }
    for (id, want) in &expected.metrics {
        match last.get(id) {
            None => d.push(format!("Parquet metric {id}: missing")),
            Some((_, row)) => d.extend(metric_diff(&format!("Parquet metric {id}"), want, row)),
        }
    }
    for id in last.keys() {
        if !expected.metrics.contains_key(id) {
            d.push(format!("Parquet metric {id}: not an expected metric"));
        }
    }
}

/// The raw archive: the lines under `raw/<stream>/` are the stream's records, each once.
fn check_raw_archive(
    stream: &str,
    lines: &BTreeMap<String, Vec<Vec<u8>>>,
    raw: &RawData,
    d: &mut Vec<String>,
) {
    let mut got: Vec<&[u8]> = lines.values().flatten().map(Vec::as_slice).collect();
    // Bad records too: the raw layer is the replay source, byte-exact, as received.
    let mut want: Vec<&[u8]> = raw.streams[stream]
        .iter()
        .map(|r| r.data.as_slice())
        .collect();
    got.sort();
    want.sort();
    if got != want {
        let (g, w): (BTreeSet<_>, BTreeSet<_>) = (got.iter().collect(), want.iter().collect());
        d.push(format!(
            "raw archive of {stream}: {} lines for {} records ({} distinct lines, {} records \
             not archived, {} lines not on the stream)",
            got.len(),
            want.len(),
            g.len(),
            w.difference(&g).count(),
            g.difference(&w).count(),
        ));
    }
}

/// Dead letters: every injected bad record rejected by the joiner with the right type,
/// its lineage and its exact bytes; no other dead letter; and the `errors/` archive holding
/// exactly what the stream holds.
fn check_dead_letters(
    p: &Pipeline,
    letters: &[Vec<u8>],
    error_lines: &BTreeMap<String, Vec<Vec<u8>>>,
    raw: &RawData,
    d: &mut Vec<String>,
) {
    let mut parsed = Vec::new();
    for data in letters {
        match serde_json::from_slice::<flowline_model::DeadLetter>(data) {
            Ok(l) => parsed.push(l),
            Err(e) => d.push(format!("dead letter is not an envelope ({e}): {data:?}")),
        }
    }
    // A record read again after a restart or a lease move is rejected again: at least once.
    let mut by_source: BTreeMap<(String, String, String, Vec<u8>), &flowline_model::DeadLetter> =
        BTreeMap::new();
    for l in &parsed {
        let payload = l.payload().unwrap_or_default();
        by_source.insert(
            (
                l.source_stream.clone(),
                l.shard_id.clone(),
                l.sequence_number.clone(),
                payload,
            ),
            l,
        );
    }
    let mut matched = BTreeSet::new();
    for (stream, record, marker) in raw.bad() {
        let key = (
            p.names.stream(stream),
            record.shard_id.clone(),
            record.sequence_number.clone(),
            record.data.clone(),
        );
        let what = format!(
            "bad {marker} record of {stream} at {}/{}",
            record.shard_id, record.sequence_number
        );
        let Some(letter) = by_source.get(&key) else {
            d.push(format!("{what}: no dead letter"));
            continue;
        };
        matched.insert(key.clone());
        let want_type = expected_error_type(&marker).unwrap_or("?");
        if letter.stage != "enrichment-joiner" || letter.error_type != want_type {
            d.push(format!(
                "{what}: dead-lettered by {} as {}, want enrichment-joiner / {want_type}",
                letter.stage, letter.error_type
            ));
        }
        if letter.reason.trim().is_empty() || letter.payload_truncated {
            d.push(format!(
                "{what}: no reason or a truncated payload: {letter:?}"
            ));
        }
    }
    for (key, letter) in &by_source {
        if !matched.contains(key) {
            d.push(format!(
                "unexpected dead letter from {} ({} / {}): {}",
                letter.source_stream, letter.stage, letter.error_type, letter.reason
            ));
        }
    }

    // errors/<stage>/<error_type>/dt=<day>/: the dead-letters stream, record for record.
    let mut archived: Vec<Value> = Vec::new();
    for (key, lines) in error_lines {
        for line in lines {
            let Ok(v) = serde_json::from_slice::<Value>(line) else {
                d.push(format!("{key}: a line is not JSON"));
                continue;
            };
            let (stage, error_type) = (
                v["stage"].as_str().unwrap_or("?"),
                v["error_type"].as_str().unwrap_or("?"),
            );
            let prefix = format!("errors/{stage}/{error_type}/dt=");
            if !key.starts_with(&prefix) {
                d.push(format!(
                    "{key}: holds a dead letter that belongs under {prefix}"
                ));
            }
            archived.push(v);
        }
    }
    let mut want: Vec<Value> = letters
        .iter()
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect();
    let sort = |v: &mut Vec<Value>| v.sort_by_key(|x| x.to_string());
    sort(&mut archived);
    sort(&mut want);
    if archived != want {
        let first = archived
            .iter()
            .zip(&want)
            .find(|(a, w)| a != w)
            .map(|(a, w)| format!("; first difference: archived {a}, on the stream {w}"))
            .unwrap_or_default();
        d.push(format!(
            "errors/ archive: {} dead letters for {} on the dead-letters stream{first}",
            archived.len(),
            want.len()
        ));
    }
}

/// Every difference between the pipeline's outputs and `expected` (empty = correct).
pub async fn differences(
    p: &Pipeline,
    raw: &RawData,
    expected: &Expected,
) -> anyhow::Result<Vec<String>> {
    let mut d = Vec::new();
    let os = p.opensearch_url();
    let orders_alias = p.names.orders_index();
    let metrics_alias = p.names.metrics_index();
    let order_docs = observed::documents(&os, &orders_alias).await?;
    check_order_docs(&order_docs, &orders_alias, expected, &mut d);
    let metric_docs = observed::documents(&os, &metrics_alias).await?;
    check_metric_docs(&metric_docs, &metrics_alias, expected, &mut d);

    let rows = observed::curated_orders(p).await?;
    check_curated_orders(&rows, expected, &mut d);
    let rows = observed::curated_metrics(p).await?;
    check_curated_metrics(&rows, expected, &mut d);

    for stream in RAW_STREAMS {
        let prefix = format!("raw/{}/", p.names.stream(stream));
        let lines = observed::jsonl(p, &prefix).await?;
        check_raw_archive(stream, &lines, raw, &mut d);
    }
    let letters = observed::stream_data(p, "dead-letters")
        .await
        .context("reading dead letters")?;
    let error_lines = observed::jsonl(p, "errors/").await?;
    check_dead_letters(p, &letters, &error_lines, raw, &mut d);
    Ok(d)
}

/// The first `n` differences, for a failure message.
pub fn summary(d: &[String], n: usize) -> String {
    // Lines are cut: a dead letter can embed a 260 KB payload.
    let cut = |x: &String| match x.char_indices().nth(1_500) {
        Some((i, _)) => format!("{}…", &x[..i]),
        None => x.clone(),
    };
    let mut s: String = d
        .iter()
        .take(n)
        .map(|x| format!("- {}\n", cut(x)))
        .collect();
    if d.len() > n {
        s.push_str(&format!("... and {} more\n", d.len() - n));
    }
    s
}

/// Fields of a window metric document that depend on when its orders reached the
/// aggregator, not on the input: the indexer's stamp, and `revision` (DESIGN.md: it grows
/// with each late update, so it counts how the updates happened to be batched; only the
/// final values are results, as in [`check_metric_docs`]).
const METRIC_PROCESSING_FIELDS: [&str; 2] = ["indexed_at", "revision"];

/// The documents under `alias` by `_id`: the daily index's suffix (after the alias) and
/// the `_source`, less `ignored` fields.
fn by_id(
    what: &str,
    docs: Vec<Doc>,
    alias: &str,
    ignored: &[&str],
    d: &mut Vec<String>,
) -> BTreeMap<String, (String, Value)> {
    let mut out = BTreeMap::new();
    for doc in docs {
        let suffix = doc
            .index
            .strip_prefix(alias)
            .unwrap_or(&doc.index)
            .to_string();
        let mut source = doc.source;
        if let Some(obj) = source.as_object_mut() {
            for f in ignored {
                obj.remove(*f);
            }
        }
        if out.insert(doc.id.clone(), (suffix, source)).is_some() {
            d.push(format!("{what} {}: more than one document", doc.id));
        }
    }
    out
}

/// Differences between two runs' documents of one kind (`what`), under their aliases:
/// the same `_id`s, each in the same daily index (`<alias>-YYYY.MM.DD`) with the same
/// `_source` (compared as JSON, exactly) less `ignored` fields.
fn compare_documents(
    what: &str,
    (alias_a, docs_a): (&str, Vec<Doc>),
    (alias_b, docs_b): (&str, Vec<Doc>),
    ignored: &[&str],
    d: &mut Vec<String>,
) {
    let docs_a = by_id(&format!("first run's {what}"), docs_a, alias_a, ignored, d);
    let docs_b = by_id(&format!("second run's {what}"), docs_b, alias_b, ignored, d);
    let show = |v: Option<&Value>| v.map_or("absent".to_string(), Value::to_string);
    for (id, (index_a, source_a)) in &docs_a {
        let Some((index_b, source_b)) = docs_b.get(id) else {
            d.push(format!("{what} {id}: missing from the second run"));
            continue;
        };
        if index_a != index_b {
            d.push(format!(
                "{what} {id}: in {alias_a}{index_a} but in {alias_b}{index_b}"
            ));
        }
        if source_a == source_b {
            continue;
        }
        let diff: Vec<String> = match (source_a.as_object(), source_b.as_object()) {
            (Some(oa), Some(ob)) => oa
                .keys()
                .chain(ob.keys())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .filter(|f| oa.get(*f) != ob.get(*f))
                .map(|f| format!("{f}: first {}, second {}", show(oa.get(f)), show(ob.get(f))))
                .collect(),
            _ => vec![format!("first {source_a}, second {source_b}")],
        };
        d.push(format!("{what} {id}: {}", diff.join("; ")));
    }
    for id in docs_b.keys() {
        if !docs_a.contains_key(id) {
            d.push(format!("{what} {id}: only in the second run"));
        }
    }
}

/// Every difference between the OpenSearch documents of two pipelines (e.g. an original
/// run and its replay): the same `_id`s in the `orders` and `order-metrics` indices, each
/// in the same daily index and with the same fields and values, except the fields that
/// record when or how a document was processed ([`INDEXER_FIELDS`] and, for metrics,
/// [`METRIC_PROCESSING_FIELDS`]). Values are compared as JSON, exactly.
pub async fn document_differences(a: &Pipeline, b: &Pipeline) -> anyhow::Result<Vec<String>> {
    let mut d = Vec::new();
    let sets = [
        (
            "order",
            a.names.orders_index(),
            b.names.orders_index(),
            &INDEXER_FIELDS[..],
        ),
        (
            "metric",
            a.names.metrics_index(),
            b.names.metrics_index(),
            &METRIC_PROCESSING_FIELDS[..],
        ),
    ];
    for (what, alias_a, alias_b, ignored) in sets {
        let docs_a = observed::documents(&a.opensearch_url(), &alias_a).await?;
        let docs_b = observed::documents(&b.opensearch_url(), &alias_b).await?;
        compare_documents(
            what,
            (&alias_a, docs_a),
            (&alias_b, docs_b),
            ignored,
            &mut d,
        );
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc(id: &str, index: &str, source: Value) -> Doc {
        Doc {
            id: id.into(),
            index: index.into(),
            source,
        }
    }

    #[test]
    fn two_runs_documents_differ_in_ids_index_and_fields_but_not_ignored_ones() {
        let a = vec![
            doc(
                "x",
                "a-orders-2026.01.01",
                json!({"v": 1, "indexed_at": "t1"}),
            ),
            doc(
                "y",
                "a-orders-2026.01.01",
                json!({"v": 2, "indexed_at": "t1"}),
            ),
            doc("z", "a-orders-2026.01.01", json!({"v": 3})),
        ];
        let same = vec![
            doc(
                "x",
                "b-orders-2026.01.01",
                json!({"v": 1, "indexed_at": "t2"}),
            ),
            doc(
                "y",
                "b-orders-2026.01.01",
                json!({"indexed_at": "t3", "v": 2}),
            ),
            doc("z", "b-orders-2026.01.01", json!({"v": 3})),
        ];
        let mut d = Vec::new();
        let ignored = ["indexed_at"];
        compare_documents(
            "order",
            ("a-orders", a.clone()),
            ("b-orders", same),
            &ignored,
            &mut d,
        );
        assert!(d.is_empty(), "{d:?}");

        let other = vec![
            doc("x", "b-orders-2026.01.02", json!({"v": 1})),
            doc("y", "b-orders-2026.01.01", json!({"v": 2.0, "extra": null})),
            doc("w", "b-orders-2026.01.01", json!({"v": 3})),
            doc("w", "b-orders-2026.01.01", json!({"v": 3})),
        ];
        compare_documents(
            "order",
            ("a-orders", a),
            ("b-orders", other),
            &ignored,
            &mut d,
        );
        assert_eq!(
            d,
            [
                "second run's order w: more than one document",
                "order x: in a-orders-2026.01.01 but in b-orders-2026.01.02",
                "order y: extra: first absent, second null; v: first 2, second 2.0",
                "order z: missing from the second run",
                "order w: only in the second run",
            ]
        );
    }
}
