//! What the indexer left in OpenSearch: orders by join status, top categories by revenue
//! (one aggregation request), and window metrics by dimension.

use std::collections::BTreeMap;

use anyhow::Context as _;
use opensearch::{OpenSearch, SearchParts};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct Orders {
    pub total: u64,
    pub by_join_status: BTreeMap<String, u64>,
    pub net_revenue: f64,
    pub top_categories: Vec<Category>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Category {
    pub category: String,
    pub orders: u64,
    pub net_revenue: f64,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct Metrics {
    pub total: u64,
    pub by_dimension: BTreeMap<String, u64>,
}

/// Orders with `event_time >= since` (all orders without `since`).
pub async fn orders(
    client: &OpenSearch,
    index: &str,
    since: Option<&str>,
    top: usize,
) -> anyhow::Result<Orders> {
    let body = json!({
        "size": 0,
        "track_total_hits": true,
        "query": range("event_time", since),
        "aggs": {
            "status": { "terms": { "field": "join_status", "size": 10 } },
            "revenue": { "sum": { "field": "net_amount" } },
            "categories": {
                "terms": {
                    "field": "category",
                    "size": top,
                    "order": { "revenue": "desc" },
                    // Orders whose item is unknown have no category: shown as such.
                    "missing": "unknown"
                },
                "aggs": { "revenue": { "sum": { "field": "net_amount" } } }
            }
        }
    });
    let Some(r) = search(client, index, body).await? else {
        return Ok(Orders::default());
    };
    Ok(Orders {
        total: total_hits(&r),
        by_join_status: buckets(&r["aggregations"]["status"])
            .map(|(k, n, _)| (k, n))
            .collect(),
        net_revenue: r["aggregations"]["revenue"]["value"]
            .as_f64()
            .unwrap_or(0.0),
        top_categories: buckets(&r["aggregations"]["categories"])
            .map(|(category, orders, b)| Category {
                category,
                orders,
                net_revenue: b["revenue"]["value"].as_f64().unwrap_or(0.0),
            })
            .collect(),
    })
}

/// Window metrics whose window starts at or after `since`.
pub async fn metrics(
    client: &OpenSearch,
    index: &str,
    since: Option<&str>,
) -> anyhow::Result<Metrics> {
    let body = json!({
        "size": 0,
        "track_total_hits": true,
        "query": range("window_end", since),
        "aggs": { "dimension": { "terms": { "field": "dimension", "size": 10 } } }
    });
    let Some(r) = search(client, index, body).await? else {
        return Ok(Metrics::default());
    };
    Ok(Metrics {
        total: total_hits(&r),
        by_dimension: buckets(&r["aggregations"]["dimension"])
            .map(|(k, n, _)| (k, n))
            .collect(),
    })
}

fn range(field: &str, since: Option<&str>) -> Value {
    match since {
        Some(t) => json!({ "range": { field: { "gte": t } } }),
        None => json!({ "match_all": {} }),
    }
}

/// The response, or None when the index does not exist yet (nothing indexed).
async fn search(client: &OpenSearch, index: &str, body: Value) -> anyhow::Result<Option<Value>> {
    let response = client
        .search(SearchParts::Index(&[index]))
        .body(body)
        .send()
        .await
        .with_context(|| format!("searching {index}"))?;
    let status = response.status_code().as_u16();
    let value: Value = response
        .json()
        .await
        .with_context(|| format!("reading the answer for {index}"))?;
    match status {
        200 => Ok(Some(value)),
        404 => Ok(None),
        _ => anyhow::bail!("searching {index}: HTTP {status}: {value}"),
    }
}

fn total_hits(r: &Value) -> u64 {
    let total = &r["hits"]["total"];
    total["value"].as_u64().or(total.as_u64()).unwrap_or(0)
}

fn buckets(agg: &Value) -> impl Iterator<Item = (String, u64, &Value)> {
    agg["buckets"].as_array().into_iter().flatten().map(|b| {
        let key = match &b["key"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        (key, b["doc_count"].as_u64().unwrap_or(0), b)
    })
}
