//! What the pipeline produced: OpenSearch documents, S3 objects, dead letters.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use flowline_testkit::read_stream;
use serde_json::{Value, json};

use crate::pipeline::Pipeline;

/// One OpenSearch document.
#[derive(Debug, Clone)]
pub struct Doc {
    pub id: String,
    pub index: String,
    pub source: Value,
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("HTTP client")
}

/// Every document under `alias` (none when it does not exist yet).
pub async fn documents(opensearch_url: &str, alias: &str) -> anyhow::Result<Vec<Doc>> {
    let url = format!("{opensearch_url}/{alias}/_search");
    let body = json!({"size": 10_000, "query": {"match_all": {}}});
    let r = http().post(&url).json(&body).send().await?;
    if r.status().as_u16() == 404 {
        return Ok(Vec::new());
    }
    if !r.status().is_success() {
        bail!("search {alias}: {} {}", r.status(), r.text().await?);
    }
    let v: Value = r.json().await?;
    let total = v["hits"]["total"]["value"].as_u64();
    let hits = v["hits"]["hits"].as_array().context("no hits")?;
    if let Some(total) = total
        && total as usize != hits.len()
    {
        bail!("{alias}: {total} documents but {} returned", hits.len());
    }
    hits.iter()
        .map(|h| {
            Ok(Doc {
                id: h["_id"].as_str().context("_id")?.to_string(),
                index: h["_index"].as_str().context("_index")?.to_string(),
                source: h["_source"].clone(),
            })
        })
        .collect()
}

/// Every object under `prefix` of the test's bucket: key → body.
pub async fn objects(p: &Pipeline, prefix: &str) -> anyhow::Result<BTreeMap<String, Bytes>> {
    let s3 = &p.aws.s3;
    let bucket = p.names.bucket();
    let mut out = BTreeMap::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(&bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .with_context(|| format!("listing s3://{bucket}/{prefix}"))?;
        for o in page.contents() {
            let key = o.key().context("object without key")?.to_string();
            let body = s3
                .get_object()
                .bucket(&bucket)
                .key(&key)
                .send()
                .await
                .with_context(|| format!("getting {key}"))?
                .body
                .collect()
                .await?
                .into_bytes();
            out.insert(key, body);
        }
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// The lines of every `.jsonl.gz` object under `prefix`: key → lines.
pub async fn jsonl(p: &Pipeline, prefix: &str) -> anyhow::Result<BTreeMap<String, Vec<Vec<u8>>>> {
    objects(p, prefix)
        .await?
        .into_iter()
        .map(|(key, body)| {
            let lines = flowline_lake::encode::decode_jsonl_gz(&body)
                .with_context(|| format!("decoding {key}"))?;
            Ok((key, lines))
        })
        .collect()
}

/// The curated orders Parquet rows, as JSON (with the object key each came from).
pub async fn curated_orders(p: &Pipeline) -> anyhow::Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for (key, body) in objects(p, "curated/orders/").await? {
        for o in flowline_lake::encode::decode_orders(body)
            .with_context(|| format!("decoding Parquet {key}"))?
        {
            out.push((key.clone(), serde_json::to_value(o)?));
        }
    }
    Ok(out)
}

/// The curated window-metric Parquet rows, as JSON.
pub async fn curated_metrics(p: &Pipeline) -> anyhow::Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for (key, body) in objects(p, "curated/order_metrics/").await? {
        for m in flowline_lake::encode::decode_metrics(body)
            .with_context(|| format!("decoding Parquet {key}"))?
        {
            out.push((key.clone(), serde_json::to_value(m)?));
        }
    }
    Ok(out)
}

/// Every record of one of the test's streams (unprefixed name), as raw bytes.
pub async fn stream_data(p: &Pipeline, stream: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    Ok(read_stream(&p.aws.kinesis, &p.names.stream(stream))
        .await?
        .into_iter()
        .map(|r| r.data)
        .collect())
}
