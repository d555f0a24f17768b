//! The state table (`enrichment-joiner-state`, string keys `pk`/`sk`), one item per
//! entity version, pending sale and published shard watermark:
//!
//! | what | pk | sk |
//! |---|---|---|
//! | customer version | `customer#<customer_id>` | `updated_at` (canonical RFC 3339, sorts as text) |
//! | address version | `address#<address_id>` | `updated_at` |
//! | pending sale | `pending#<stream>/<shard_id>` | `<event_time>#<sale_id>` |
//! | shard watermark | `watermark` | `<stream>/<shard_id>` (publisher's worker id in `owner`) |
//!
//! The body is JSON in `d`; names, phone and street are blanked before storing (only the
//! email stays, for its hash). Reads are strongly consistent (the watermark protocol needs
//! them). Writes are BatchWriteItem in chunks of 25 with unprocessed items retried here
//! (the SDK retries throttled requests); everything else is classified and left to the
//! emission loop's retry.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest,
    ScalarAttributeType, WriteRequest,
};
use flowline_join::{PendingKey, PendingSale, PendingStore, StoreError, VersionStore};
use flowline_model::{Address, Customer, Timestamp};
use flowline_watermark::ShardWatermark;
use prometheus::HistogramVec;
use serde::Serialize;
use serde::de::DeserializeOwned;

const BATCH: usize = 25;
const UNPROCESSED_ATTEMPTS: u32 = 10;
const WATERMARK_PK: &str = "watermark";

/// A shard watermark as published, with the worker id of the copy that published it.
#[derive(Clone, Debug, PartialEq)]
pub struct Published {
    pub entry: ShardWatermark,
    pub owner: Option<String>,
}

#[derive(Clone)]
pub struct StateTable {
    client: Client,
    table: String,
    latency: HistogramVec,
}

/// Throttling, timeouts, transport and 5xx errors are worth repeating.
fn classify<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    operation: &str,
    e: SdkError<E, R>,
) -> StoreError {
    let message = flowline_aws::error_chain(&e);
    let retriable = match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(s) => matches!(
            s.err().code(),
            Some(
                "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
                    | "TransactionConflictException"
            )
        ),
        _ => false,
    };
    StoreError {
        operation: operation.into(),
        message,
        retriable,
    }
}

fn body<T: Serialize>(operation: &str, value: &T) -> Result<AttributeValue, StoreError> {
    serde_json::to_string(value)
        .map(AttributeValue::S)
        .map_err(|e| StoreError::fatal(operation, e.to_string()))
}

fn decode<T: DeserializeOwned>(
    operation: &str,
    item: &HashMap<String, AttributeValue>,
) -> Result<T, StoreError> {
    let text = item
        .get("d")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| StoreError::fatal(operation, "item without a body `d`"))?;
    serde_json::from_str(text).map_err(|e| StoreError::fatal(operation, e.to_string()))
}

impl StateTable {
    pub fn new(client: Client, table: &str, latency: HistogramVec) -> Self {
        Self {
            client,
            table: table.into(),
            latency,
        }
    }

    /// Creates the table (on demand) if it does not exist and waits until it is active.
    pub async fn ensure(&self, create: bool) -> anyhow::Result<()> {
        let described = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await;
        match described {
            Ok(_) => return Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception())
                    && create => {}
            Err(e) => anyhow::bail!(
                "state table {}: {}",
                self.table,
                flowline_aws::error_chain(&e)
            ),
        }
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .send()
            .await;
        if let Err(e) = created {
            // Another copy created it at the same time.
            if !e
                .as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception())
            {
                anyhow::bail!(
                    "creating state table {}: {}",
                    self.table,
                    flowline_aws::error_chain(&e)
                );
            }
        }
        for _ in 0..120 {
            let d = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await;
            if let Ok(d) = d
                && d.table()
                    .and_then(|t| t.table_status())
                    .is_some_and(|s| s.as_str() == "ACTIVE")
            {
                tracing::info!(table = %self.table, "state table created");
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        anyhow::bail!("state table {} did not become active", self.table)
    }

    fn observe(&self, operation: &str, started: Instant) {
        self.latency
            .with_label_values(&[operation])
            .observe(started.elapsed().as_secs_f64());
    }

    /// Writes `requests` (distinct keys), retrying unprocessed items with a backoff.
    async fn batch_write(
        &self,
        operation: &str,
        requests: Vec<WriteRequest>,
    ) -> Result<(), StoreError> {
        for chunk in requests.chunks(BATCH) {
            let mut todo = chunk.to_vec();
            let mut attempt = 0;
            while !todo.is_empty() {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(50 << attempt.min(6))).await;
                }
                if attempt >= UNPROCESSED_ATTEMPTS {
                    return Err(StoreError::retriable(
                        operation,
                        format!("{} items still unprocessed", todo.len()),
                    ));
                }
                attempt += 1;
                let started = Instant::now();
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, std::mem::take(&mut todo))
                    .send()
                    .await;
                self.observe("batch_write", started);
                let out = out.map_err(|e| classify(operation, e))?;
                todo = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
            }
        }
        Ok(())
    }

    fn put(pk: String, sk: String, d: AttributeValue) -> Result<WriteRequest, StoreError> {
        let put = PutRequest::builder()
            .item("pk", AttributeValue::S(pk))
            .item("sk", AttributeValue::S(sk))
            .item("d", d)
            .build()
            .map_err(|e| StoreError::fatal("build put", e.to_string()))?;
        Ok(WriteRequest::builder().put_request(put).build())
    }

    fn delete(pk: String, sk: String) -> Result<WriteRequest, StoreError> {
        let del = aws_sdk_dynamodb::types::DeleteRequest::builder()
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk))
            .build()
            .map_err(|e| StoreError::fatal("build delete", e.to_string()))?;
        Ok(WriteRequest::builder().delete_request(del).build())
    }

    /// Items of partition `pk`, optionally with `sk <= upto`, newest first when limited.
    async fn query(
        &self,
        operation: &str,
        pk: &str,
        upto: Option<String>,
        limit: Option<usize>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
                .set_exclusive_start_key(start.take());
            q = match &upto {
                Some(t) => q
                    .key_condition_expression("pk = :pk AND sk <= :t")
                    .expression_attribute_values(":t", AttributeValue::S(t.clone())),
                None => q.key_condition_expression("pk = :pk"),
            };
            if let Some(n) = limit {
                q = q
                    .scan_index_forward(false)
                    .limit(i32::try_from(n - items.len()).unwrap_or(i32::MAX));
            }
            let started = Instant::now();
            let out = q.send().await;
            self.observe("query", started);
            let out = out.map_err(|e| classify(operation, e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if limit.is_none_or(|n| items.len() < n) => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// Publishes the entries of the shards this copy owns (after their state is written).
    /// Publishes this copy's shard watermarks, each marked with `owner` (the worker id),
    /// so every copy can tell whether one copy reads all shards of a stream.
    pub async fn publish_watermarks(
        &self,
        entries: &[ShardWatermark],
        owner: &str,
    ) -> Result<(), StoreError> {
        let op = "publish watermarks";
        let requests = entries
            .iter()
            .map(|e| {
                let mut put = Self::put(
                    WATERMARK_PK.into(),
                    format!("{}/{}", e.stream, e.shard_id),
                    body(op, e)?,
                )?;
                if let Some(p) = put.put_request.as_mut() {
                    p.item
                        .insert("owner".into(), AttributeValue::S(owner.into()));
                }
                Ok(put)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(op, requests).await
    }

    /// Every published shard watermark, of all copies.
    pub async fn watermarks(&self) -> Result<Vec<Published>, StoreError> {
        let op = "read watermarks";
        self.query(op, WATERMARK_PK, None, None)
            .await?
            .iter()
            .map(|i| {
                Ok(Published {
                    entry: decode(op, i)?,
                    owner: i.get("owner").and_then(|v| v.as_s().ok()).cloned(),
                })
            })
            .collect()
    }

    async fn versions_upto<T: DeserializeOwned>(
        &self,
        op: &str,
        pk: String,
        upto: Timestamp,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        self.query(op, &pk, Some(upto.to_string()), Some(limit.max(1)))
            .await?
            .iter()
            .map(|i| decode(op, i))
            .collect()
    }
}

/// The version and pending stores over one [`StateTable`].
pub fn stores(table: &StateTable) -> flowline_join::JoinStores {
    let t = Arc::new(table.clone());
    flowline_join::JoinStores {
        versions: t.clone(),
        pending: t,
    }
}

#[async_trait]
impl VersionStore for StateTable {
    async fn put_customers(&self, batch: &[Customer]) -> Result<(), StoreError> {
        let op = "put customers";
        let requests = batch
            .iter()
            .map(|c| {
                // Names and phone are never needed: they are not stored either.
                let kept = Customer {
                    first_name: String::new(),
                    last_name: String::new(),
                    phone: String::new(),
                    ..c.clone()
                };
                Self::put(
                    format!("customer#{}", c.customer_id),
                    c.updated_at.to_string(),
                    body(op, &kept)?,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(op, requests).await
    }

    async fn put_addresses(&self, batch: &[Address]) -> Result<(), StoreError> {
        let op = "put addresses";
        let requests = batch
            .iter()
            .map(|a| {
                let kept = Address {
                    street: String::new(),
                    ..a.clone()
                };
                Self::put(
                    format!("address#{}", a.address_id),
                    a.updated_at.to_string(),
                    body(op, &kept)?,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(op, requests).await
    }

    async fn customers_upto(
        &self,
        customer_id: &str,
        upto: Timestamp,
        limit: usize,
    ) -> Result<Vec<Customer>, StoreError> {
        self.versions_upto(
            "query customer versions",
            format!("customer#{customer_id}"),
            upto,
            limit,
        )
        .await
    }

    async fn addresses_upto(
        &self,
        address_id: &str,
        upto: Timestamp,
        limit: usize,
    ) -> Result<Vec<Address>, StoreError> {
        self.versions_upto(
            "query address versions",
            format!("address#{address_id}"),
            upto,
            limit,
        )
        .await
    }
}

#[async_trait]
impl PendingStore for StateTable {
    async fn put_pending(&self, batch: &[&PendingSale]) -> Result<(), StoreError> {
        let op = "put pending sales";
        let requests = batch
            .iter()
            .map(|p| {
                let k = p.key();
                Self::put(
                    format!("pending#{}", k.partition()),
                    k.sort_key(),
                    body(op, p)?,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(op, requests).await
    }

    async fn remove_pending(&self, keys: &[PendingKey]) -> Result<(), StoreError> {
        let mut seen = HashSet::new();
        let requests = keys
            .iter()
            .filter(|k| seen.insert((k.partition(), k.sort_key())))
            .map(|k| Self::delete(format!("pending#{}", k.partition()), k.sort_key()))
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write("remove pending sales", requests).await
    }

    async fn load_pending(
        &self,
        stream: &str,
        shard_id: &str,
    ) -> Result<Vec<PendingSale>, StoreError> {
        let op = "load pending sales";
        let pk = format!(
            "pending#{}",
            flowline_join::shard_partition(stream, shard_id)
        );
        self.query(op, &pk, None, None)
            .await?
            .iter()
            .map(|i| decode(op, i))
            .collect()
    }
}
