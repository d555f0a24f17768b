//! What the archiver left in the bucket: objects and rows per dataset (DESIGN.md section 2,
//! S3 layout). Rows are counted from the objects themselves (gzip JSON Lines lines,
//! Parquet footers), not from any service's counters, so the figure checks the archive.

use std::collections::BTreeMap;

use anyhow::Context as _;
use aws_sdk_s3::Client;
use flowline_aws::error_chain;
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde::Serialize;

/// Objects and rows of one dataset (`raw/sales`, `curated/orders`, `errors/<stage>/<type>`).
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Dataset {
    pub objects: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// Datasets by name, each name the key prefix up to the partitions.
pub type Lake = BTreeMap<String, Dataset>;

/// Counts every object under `raw/`, `curated/` and `errors/` modified at or after
/// `since_secs` (Unix seconds; S3 keeps whole seconds).
pub async fn count(s3: &Client, bucket: &str, since_secs: i64) -> anyhow::Result<Lake> {
    let mut lake = Lake::new();
    for prefix in ["raw/", "curated/", "errors/"] {
        let mut token: Option<String> = None;
        loop {
            let page = s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.clone())
                .send()
                .await
                .map_err(|e| anyhow::anyhow!(error_chain(&e)))
                .with_context(|| format!("listing s3://{bucket}/{prefix}"))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let modified = object.last_modified().map(|t| t.secs()).unwrap_or(0);
                let Some(name) = dataset_of(key) else {
                    continue;
                };
                if modified < since_secs {
                    continue;
                }
                let rows = rows_of(s3, bucket, key).await?;
                let d = lake.entry(name).or_default();
                d.objects += 1;
                d.rows += rows;
                d.bytes += object.size().unwrap_or(0).max(0) as u64;
            }
            token = page.next_continuation_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    Ok(lake)
}

/// `raw/sales/dt=…/hour=…/x.jsonl.gz` → `raw/sales`; `errors/indexer/bad_json/dt=…/x` →
/// `errors/indexer/bad_json`. Keys outside the layout are not datasets.
pub fn dataset_of(key: &str) -> Option<String> {
    let depth = if key.starts_with("errors/") { 3 } else { 2 };
    let parts: Vec<&str> = key.split('/').collect();
    let is_data = key.ends_with(".jsonl.gz") || key.ends_with(".parquet");
    (is_data && parts.len() > depth && !parts[..depth].iter().any(|p| p.starts_with("dt=")))
        .then(|| parts[..depth].join("/"))
}

async fn rows_of(s3: &Client, bucket: &str, key: &str) -> anyhow::Result<u64> {
    let body = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(error_chain(&e)))
        .with_context(|| format!("reading s3://{bucket}/{key}"))?
        .body
        .collect()
        .await
        .with_context(|| format!("reading s3://{bucket}/{key}"))?
        .into_bytes();
    if key.ends_with(".parquet") {
        // The footer says how many rows the file holds; no need to decode the columns.
        let reader = SerializedFileReader::new(body)
            .with_context(|| format!("s3://{bucket}/{key} is not Parquet"))?;
        Ok(reader.metadata().file_metadata().num_rows().max(0) as u64)
    } else {
        let lines = flowline_lake::encode::decode_jsonl_gz(&body)
            .with_context(|| format!("s3://{bucket}/{key} is not gzip JSON Lines"))?;
        Ok(lines.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::dataset_of;

    #[test]
    fn datasets_follow_the_layout() {
        assert_eq!(
            dataset_of("raw/sales/dt=2026-01-01/hour=03/sales_s_1_2.jsonl.gz").as_deref(),
            Some("raw/sales")
        );
        assert_eq!(
            dataset_of("curated/orders/dt=2026-01-01/hour=03/o.parquet").as_deref(),
            Some("curated/orders")
        );
        assert_eq!(
            dataset_of("errors/enrichment-joiner/bad_json/dt=2026-01-01/x.jsonl.gz").as_deref(),
            Some("errors/enrichment-joiner/bad_json")
        );
        assert_eq!(dataset_of("reference/raw/items/items.csv"), None);
        assert_eq!(dataset_of("raw/x.jsonl.gz"), None);
        assert_eq!(dataset_of("errors/stage/dt=2026-01-01/x.jsonl.gz"), None);
    }
}
