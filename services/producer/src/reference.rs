//! Reference data (items, promos) to S3: raw CSV and clean Parquet at the paths of
//! DESIGN.md section 2, before any sale that needs them is sent.

use anyhow::Context as _;
use aws_sdk_s3::primitives::ByteStream;
use flowline_aws::error_chain;
use flowline_datagen::reference::{
    ITEMS_CSV_KEY, ITEMS_PARQUET_KEY, PROMOS_CSV_KEY, PROMOS_PARQUET_KEY, items_to_csv,
    items_to_parquet, promos_to_csv, promos_to_parquet,
};
use flowline_datagen::{Catalog, GenConfig};

pub async fn upload(s3: &aws_sdk_s3::Client, bucket: &str, cfg: &GenConfig) -> anyhow::Result<()> {
    let catalog = Catalog::generate(cfg);
    let objects = [
        (ITEMS_CSV_KEY, items_to_csv(&catalog.items)?, "text/csv"),
        (PROMOS_CSV_KEY, promos_to_csv(&catalog.promos)?, "text/csv"),
        (
            ITEMS_PARQUET_KEY,
            items_to_parquet(&catalog.items)?,
            "application/vnd.apache.parquet",
        ),
        (
            PROMOS_PARQUET_KEY,
            promos_to_parquet(&catalog.promos)?,
            "application/vnd.apache.parquet",
        ),
    ];
    for (key, body, content_type) in objects {
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(error_chain(&e)))
            .with_context(|| format!("uploading s3://{bucket}/{key}"))?;
    }
    tracing::info!(
        bucket,
        items = catalog.items.len(),
        promos = catalog.promos.len(),
        "reference data uploaded"
    );
    Ok(())
}
