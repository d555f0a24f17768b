//! OpenSearch and S3: orders and metrics into the versioned daily indices
//! `orders-v<N>-YYYY.MM.DD` / `order-metrics-v<N>-YYYY.MM.DD` through the indexer's bulk sink
//! (`_id` = `order_id`, metric `_id` = `id` with external version = `revision`, so a rerun
//! overwrites or is superseded, never duplicates), Parquet into `curated-v<N>/…` and error
//! envelopes into `errors/rebuild/<type>/dt=…/`, under object names from the chunk sequence.
//!
//! The new indices get their mappings from a rebuild template of higher priority than the
//! `orders-*` one and without its alias, so nothing written here is visible through the
//! aliases before the swap.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use flowline_model::{DeadLetter, EnrichedOrder, Timestamp, WindowMetric};
use flowline_opensearch::bulk::{
    Ack, BulkConfig, BulkDoc, BulkMetrics, BulkSink, Delivery, IndexNames, OpenSearchBulkApi,
};
use flowline_opensearch::opensearch::OpenSearch;
use flowline_opensearch::opensearch::indices::IndicesPutIndexTemplateParts;
use serde_json::Value;

use super::{Chunked, Written, error_partition, group, metric_partition, order_partition};
use crate::rebuild::STAGE;
use crate::rebuild::args::Args;

/// Acknowledgements collected before waiting for them (bounded by the sink's own buffer).
const ACK_BATCH: usize = 8_192;

pub struct RemoteOutput {
    version: u32,
    sink: BulkSink,
    names: IndexNames,
    acks: Vec<(Ack, String)>,
    s3: aws_sdk_s3::Client,
    bucket: String,
    indexed_at: Value,
    order_ids: HashSet<String>,
    orders: Chunked<EnrichedOrder>,
    metrics: Chunked<WindowMetric>,
    errors: Chunked<DeadLetter>,
    written: Written,
}

/// The base names of index set `version`.
pub fn index_names(prefix: &str, version: u32) -> IndexNames {
    IndexNames {
        orders: format!("{prefix}orders-v{version}"),
        order_metrics: format!("{prefix}order-metrics-v{version}"),
    }
}

/// Name of the rebuild template of a family (`<prefix>orders`, `<prefix>order-metrics`)
/// and version.
pub fn template_name(family: &str, version: u32) -> String {
    format!("flowline-rebuild-{family}-v{version}")
}

/// Registers the templates of index set `version`: the design's definitions with the
/// pattern `<family>-v<N>-*`, a higher priority, and the alias only when `with_aliases`
/// (after the swap, so that indices created later, e.g. by an indexer writing to
/// `orders-v<N>`, join the alias as in the original set).
pub async fn ensure_rebuild_templates(
    client: &OpenSearch,
    prefix: &str,
    version: u32,
    shards: u32,
    replicas: u32,
    with_aliases: bool,
) -> anyhow::Result<()> {
    for t in flowline_opensearch::templates::all(shards, replicas) {
        let family = format!("{prefix}{}", t.name);
        let mut body = t.body.clone();
        body["index_patterns"] = serde_json::json!([format!("{family}-v{version}-*")]);
        body["priority"] = 200.into();
        body["template"]["aliases"] = if with_aliases {
            serde_json::json!({ family.clone(): {} })
        } else {
            serde_json::json!({})
        };
        body["_meta"]["rebuild_version"] = version.into();
        let name = template_name(&family, version);
        let r = client
            .indices()
            .put_index_template(IndicesPutIndexTemplateParts::Name(&name))
            .body(body)
            .send()
            .await
            .with_context(|| format!("PUT _index_template/{name}"))?;
        let status = r.status_code();
        if !status.is_success() {
            let text = r.text().await.unwrap_or_default();
            anyhow::bail!("PUT _index_template/{name} answered {status}: {text}");
        }
    }
    Ok(())
}

impl RemoteOutput {
    pub async fn open(
        version: u32,
        s3: Option<aws_sdk_s3::Client>,
        args: &Args,
    ) -> anyhow::Result<RemoteOutput> {
        let client = flowline_opensearch::build_client(&args.opensearch_settings())?;
        ensure_rebuild_templates(
            &client,
            &args.index_prefix,
            version,
            args.index_shards,
            args.index_replicas,
            false,
        )
        .await?;
        let metrics = BulkMetrics::register(&prometheus::Registry::new())?;
        let sink = BulkSink::start(
            Arc::new(OpenSearchBulkApi::new(client, None)),
            BulkConfig {
                max_actions: 2_000,
                max_buffered_docs: 16_000,
                max_buffered_bytes: 64 * 1024 * 1024,
                ..BulkConfig::default()
            },
            metrics,
        )?;
        let s3 = s3.context("S3 client")?;
        clear_previous(&s3, &args.bucket, version).await?;
        // One value per run: reruns rewrite the same documents with their own time.
        let indexed_at = serde_json::to_value(flowline_pipeline_now())?;
        Ok(RemoteOutput {
            version,
            sink,
            names: index_names(&args.index_prefix, version),
            acks: Vec::new(),
            s3,
            bucket: args.bucket.clone(),
            indexed_at,
            order_ids: HashSet::new(),
            orders: Chunked::new(args.chunk_rows),
            metrics: Chunked::new(args.chunk_rows),
            errors: Chunked::new(args.chunk_rows),
            written: Written::default(),
        })
    }

    pub async fn orders(&mut self, orders: Vec<EnrichedOrder>) -> anyhow::Result<()> {
        self.written.orders += orders.len() as u64;
        for o in &orders {
            if !self.order_ids.contains(&o.order_id) {
                self.order_ids.insert(o.order_id.clone());
            }
            let body = self.body(o)?;
            let doc = BulkDoc::order(&self.names, &o.order_id, o.event_time.to_datetime(), body);
            self.send(doc, &o.order_id).await?;
        }
        for (seq, rows) in self.orders.extend(orders) {
            self.put_orders(seq, rows).await?;
        }
        Ok(())
    }

    pub async fn metrics(&mut self, metrics: Vec<WindowMetric>) -> anyhow::Result<()> {
        self.written.metrics += metrics.len() as u64;
        for m in &metrics {
            let body = self.body(m)?;
            let doc = BulkDoc::metric(
                &self.names,
                &m.id,
                m.window_start.to_datetime(),
                u64::from(m.revision),
                body,
            );
            self.send(doc, &m.id).await?;
        }
        for (seq, rows) in self.metrics.extend(metrics) {
            self.put_metrics(seq, rows).await?;
        }
        Ok(())
    }

    pub async fn error(&mut self, letter: DeadLetter) -> anyhow::Result<()> {
        self.written.errors += 1;
        for (seq, rows) in self.errors.extend([letter]) {
            self.put_errors(seq, rows).await?;
        }
        Ok(())
    }

    pub async fn finish(&mut self) -> anyhow::Result<Written> {
        if let Some((seq, rows)) = self.orders.rest() {
            self.put_orders(seq, rows).await?;
        }
        if let Some((seq, rows)) = self.metrics.rest() {
            self.put_metrics(seq, rows).await?;
        }
        self.sink.flush();
        self.settle().await?;
        self.sink.close().await;
        if let Some((seq, rows)) = self.errors.rest() {
            self.put_errors(seq, rows).await?;
        }
        self.written.distinct_orders = self.order_ids.len() as u64;
        Ok(self.written.clone())
    }

    /// The document body: the record as the stream carries it, plus `indexed_at` as the
    /// indexer adds it.
    fn body<T: serde::Serialize>(&self, record: &T) -> anyhow::Result<Bytes> {
        let mut v = serde_json::to_value(record)?;
        v["indexed_at"] = self.indexed_at.clone();
        Ok(Bytes::from(serde_json::to_vec(&v)?))
    }

    async fn send(&mut self, doc: BulkDoc, id: &str) -> anyhow::Result<()> {
        let ack = self.sink.enqueue(doc).await?;
        self.acks.push((ack, id.to_string()));
        if self.acks.len() >= ACK_BATCH {
            self.settle().await?;
        }
        Ok(())
    }

    /// Waits for every queued document; refusals become error envelopes.
    async fn settle(&mut self) -> anyhow::Result<()> {
        for (ack, id) in std::mem::take(&mut self.acks) {
            match ack.await? {
                Delivery::Indexed | Delivery::Superseded => self.written.indexed += 1,
                Delivery::Rejected(r) => {
                    self.written.rejected += 1;
                    let source = flowline_model::RecordSource {
                        stream: "opensearch".into(),
                        shard_id: STAGE.into(),
                        sequence_number: id.clone(),
                    };
                    let reason = format!("HTTP {} {}: {}", r.status, r.error_type, r.reason);
                    let letter = DeadLetter::new(
                        STAGE,
                        "delivery_failed",
                        &reason,
                        &source,
                        id.as_bytes(),
                        flowline_pipeline_now(),
                    );
                    self.error(letter).await?;
                }
            }
        }
        Ok(())
    }

    async fn put_orders(&mut self, seq: u32, rows: Vec<EnrichedOrder>) -> anyhow::Result<()> {
        for (part, rows) in group(rows, order_partition) {
            let body = flowline_lake::encode::encode_orders(&rows)?;
            let key = self.curated_key("orders", &part, seq);
            self.put(key, body, "application/vnd.apache.parquet")
                .await?;
        }
        Ok(())
    }

    async fn put_metrics(&mut self, seq: u32, rows: Vec<WindowMetric>) -> anyhow::Result<()> {
        for (part, rows) in group(rows, metric_partition) {
            let body = flowline_lake::encode::encode_metrics(&rows)?;
            let key = self.curated_key("order_metrics", &part, seq);
            self.put(key, body, "application/vnd.apache.parquet")
                .await?;
        }
        Ok(())
    }

    async fn put_errors(&mut self, seq: u32, rows: Vec<DeadLetter>) -> anyhow::Result<()> {
        for (part, rows) in group(rows, error_partition) {
            let body = flowline_lake::encode::encode_dead_letters(&rows, 6)?;
            let key = format!(
                "errors/{STAGE}/{part}/rebuild-v{}-{seq:06}.jsonl.gz",
                self.version
            );
            self.put(key, body, "application/x-ndjson").await?;
        }
        Ok(())
    }

    fn curated_key(&self, dataset: &str, part: &str, seq: u32) -> String {
        let v = self.version;
        format!("curated-v{v}/{dataset}/{part}/rebuild-v{v}-{seq:06}.parquet")
    }

    async fn put(&mut self, key: String, body: Bytes, content_type: &str) -> anyhow::Result<()> {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type(content_type)
            .body(body.into())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(flowline_aws::error_chain(&e)))
            .with_context(|| format!("s3://{}/{key}", self.bucket))?;
        self.written.files += 1;
        Ok(())
    }
}

/// Removes the objects an earlier run of index set `version` wrote (`curated-v<N>/…` and its
/// `errors/rebuild/…/rebuild-v<N>-*` objects): a rerun with another `--chunk-rows` would cut
/// differently and leave duplicates next to the new objects otherwise.
async fn clear_previous(s3: &aws_sdk_s3::Client, bucket: &str, version: u32) -> anyhow::Result<()> {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let mine = format!("rebuild-v{version}-");
    for (prefix, all) in [
        (format!("curated-v{version}/"), true),
        (format!("errors/{STAGE}/"), false),
    ] {
        let mut token = None;
        loop {
            let out = s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(&prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| anyhow::anyhow!(flowline_aws::error_chain(&e)))
                .with_context(|| format!("listing s3://{bucket}/{prefix}"))?;
            let keys: Vec<ObjectIdentifier> = out
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .filter(|k| all || k.rsplit('/').next().is_some_and(|n| n.starts_with(&mine)))
                .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
                .collect();
            if !keys.is_empty() {
                s3.delete_objects()
                    .bucket(bucket)
                    .delete(Delete::builder().set_objects(Some(keys)).build()?)
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!(flowline_aws::error_chain(&e)))
                    .with_context(|| {
                        format!("deleting earlier objects under s3://{bucket}/{prefix}")
                    })?;
            }
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
    }
    Ok(())
}

/// The wall clock as a model timestamp (millisecond precision).
fn flowline_pipeline_now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now()).unwrap_or(Timestamp::UNIX_EPOCH)
}
