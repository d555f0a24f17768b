//! Items and promos for the join, from the same keys (and with the same codecs) the
//! enrichment-joiner reads: `reference/raw/*/…csv` or `reference/clean/*/…parquet`, in S3
//! or below a local directory.

use anyhow::Context as _;
use flowline_datagen::reference::{
    ITEMS_CSV_KEY, ITEMS_PARQUET_KEY, PROMOS_CSV_KEY, PROMOS_PARQUET_KEY, items_from_csv,
    items_from_parquet, promos_from_csv, promos_from_parquet,
};
use flowline_join::ReferenceData;

use super::args::{Location, ReferenceFormat};

pub async fn load(
    at: &Location,
    format: ReferenceFormat,
    s3: Option<&aws_sdk_s3::Client>,
) -> anyhow::Result<ReferenceData> {
    let (items_key, promos_key) = match format {
        ReferenceFormat::Csv => (ITEMS_CSV_KEY, PROMOS_CSV_KEY),
        ReferenceFormat::Parquet => (ITEMS_PARQUET_KEY, PROMOS_PARQUET_KEY),
    };
    let items = fetch(at, items_key, s3).await?;
    let promos = fetch(at, promos_key, s3).await?;
    let (items, promos) = match format {
        ReferenceFormat::Csv => (items_from_csv(&items)?, promos_from_csv(&promos)?),
        ReferenceFormat::Parquet => (items_from_parquet(&items)?, promos_from_parquet(&promos)?),
    };
    Ok(ReferenceData::new(items, promos))
}

async fn fetch(
    at: &Location,
    key: &str,
    s3: Option<&aws_sdk_s3::Client>,
) -> anyhow::Result<Vec<u8>> {
    match at {
        Location::Local(root) => {
            let path = root.join(key);
            std::fs::read(&path).with_context(|| format!("reference data {}", path.display()))
        }
        Location::S3 { bucket, prefix } => {
            let s3 = s3.context("S3 client")?;
            let key = format!("{prefix}{key}");
            let out = s3
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!(flowline_aws::error_chain(&e)))
                .with_context(|| format!("reference data s3://{bucket}/{key}"))?;
            Ok(out
                .body
                .collect()
                .await
                .with_context(|| format!("reading s3://{bucket}/{key}"))?
                .into_bytes()
                .to_vec())
        }
    }
}
