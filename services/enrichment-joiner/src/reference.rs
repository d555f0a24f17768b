//! Items and promos from S3 (raw CSV or clean Parquet), loaded at start and reloaded when
//! an object's ETag changes. A failed refresh keeps the last good copy and is counted.

use std::sync::Arc;

use anyhow::Context as _;
use aws_sdk_s3::Client;
use flowline_datagen::reference::{
    ITEMS_CSV_KEY, ITEMS_PARQUET_KEY, PROMOS_CSV_KEY, PROMOS_PARQUET_KEY, items_from_csv,
    items_from_parquet, promos_from_csv, promos_from_parquet,
};
use flowline_join::{ReferenceData, ReferenceHandle};
use tokio_util::sync::CancellationToken;

use crate::config::{Reference, ReferenceFormat};
use crate::metrics::Metrics;

pub struct ReferenceLoader {
    s3: Client,
    config: Reference,
    metrics: Arc<Metrics>,
    /// ETags of (items, promos) of the loaded snapshot.
    loaded: Option<(String, String)>,
}

impl ReferenceLoader {
    pub fn new(s3: Client, config: Reference, metrics: Arc<Metrics>) -> Self {
        Self {
            s3,
            config,
            metrics,
            loaded: None,
        }
    }

    fn keys(&self) -> (&'static str, &'static str) {
        match self.config.format {
            ReferenceFormat::Csv => (ITEMS_CSV_KEY, PROMOS_CSV_KEY),
            ReferenceFormat::Parquet => (ITEMS_PARQUET_KEY, PROMOS_PARQUET_KEY),
        }
    }

    async fn etag(&self, key: &str) -> anyhow::Result<String> {
        let head = self
            .s3
            .head_object()
            .bucket(&self.config.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(flowline_aws::error_chain(&e)))
            .with_context(|| format!("s3://{}/{key}", self.config.bucket))?;
        Ok(head.e_tag.unwrap_or_default())
    }

    async fn get(&self, key: &str) -> anyhow::Result<(String, Vec<u8>)> {
        let out = self
            .s3
            .get_object()
            .bucket(&self.config.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(flowline_aws::error_chain(&e)))
            .with_context(|| format!("s3://{}/{key}", self.config.bucket))?;
        let etag = out.e_tag.clone().unwrap_or_default();
        let body = out
            .body
            .collect()
            .await
            .with_context(|| format!("reading s3://{}/{key}", self.config.bucket))?;
        Ok((etag, body.into_bytes().to_vec()))
    }

    /// Loads both objects if either changed since the last load; `None` if unchanged.
    pub async fn load_if_changed(&mut self) -> anyhow::Result<Option<ReferenceData>> {
        let (items_key, promos_key) = self.keys();
        if let Some((items_etag, promos_etag)) = &self.loaded
            && self.etag(items_key).await? == *items_etag
            && self.etag(promos_key).await? == *promos_etag
        {
            return Ok(None);
        }
        let (items_etag, items) = self.get(items_key).await?;
        let (promos_etag, promos) = self.get(promos_key).await?;
        let (items, promos) = match self.config.format {
            ReferenceFormat::Csv => (items_from_csv(&items)?, promos_from_csv(&promos)?),
            ReferenceFormat::Parquet => {
                (items_from_parquet(&items)?, promos_from_parquet(&promos)?)
            }
        };
        let data = ReferenceData::new(items, promos);
        self.metrics.reference_loads.inc();
        self.metrics.reference_items.set(data.item_count() as i64);
        self.metrics.reference_promos.set(data.promo_count() as i64);
        tracing::info!(
            bucket = %self.config.bucket,
            items = data.item_count(),
            promos = data.promo_count(),
            "reference data loaded"
        );
        self.loaded = Some((items_etag, promos_etag));
        Ok(Some(data))
    }

    /// The first snapshot: retried until it loads (joining without items would emit
    /// partial orders that a later load could not correct) or shutdown.
    pub async fn initial(
        &mut self,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Option<ReferenceData>> {
        loop {
            match self.load_if_changed().await {
                Ok(Some(data)) => return Ok(Some(data)),
                Ok(None) => anyhow::bail!("reference data marked loaded before the first load"),
                Err(e) => {
                    self.metrics.reference_failures.inc();
                    tracing::warn!(error = %format!("{e:#}"), "reference data not loaded yet; retrying");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(None),
                _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
            }
        }
    }

    /// Checks for changes every `refresh_interval` until shutdown.
    pub async fn refresh_loop(
        mut self,
        handle: Arc<ReferenceHandle>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.config.refresh_interval) => {}
            }
            match self.load_if_changed().await {
                Ok(Some(data)) => handle.replace(data),
                Ok(None) => {}
                Err(e) => {
                    self.metrics.reference_failures.inc();
                    tracing::warn!(error = %format!("{e:#}"), "reference refresh failed; keeping the last good copy");
                }
            }
        }
    }
}
