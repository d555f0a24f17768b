//! The `aggregator-state` table (`pk`, `sk` strings). Layout:
//!
//! | pk | sk | what |
//! |---|---|---|
//! | `shard` | `<stream>/<shard_id>` | a shard's position (`seq`, `sub`), owner incarnation (`owner`), published watermark (`wm`, JSON), its windows (`windows`, JSON: start → [generation, parts]) |
//! | `w#<start ms>` | `p#<stream>/<shard_id>#<gen>#<i>` | part `i` of `n` of that shard's partial of the window, generation `gen` (`data`: bytes of `flowline_window::Partial::encode`, split at 350 KB) |
//! | `windows` | `<start ms, 20 digits>` | the window's control item: `changes` (state transactions that touched it), `first` (`changes` at the first emission), `emitted` (`changes` last emitted) |
//!
//! Why the state is consistent with the lease checkpoint: a shard's partials,
//! its position and its watermark are written in ONE TransactWriteItems, and
//! the lease checkpoint is written only afterwards (and only after the dead
//! letters of those records were acknowledged). So the lease checkpoint is
//! never ahead of the state. After a crash the new owner restores the
//! partials and skips every record at or before the recorded position:
//! records between the lease checkpoint and that position are already in
//! the state, those after it are not, so each record counts exactly once.
//! The `owner` condition on the shard item fences a zombie copy that lost
//! the lease: its next transaction fails instead of overwriting the state.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context as _, bail};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, KeySchemaElement, KeyType, Put,
    ReturnValue, ScalarAttributeType, TransactWriteItem, Update,
};
use flowline_kinesis::consumer::Checkpoint;
use flowline_watermark::ShardWatermark;

use flowline_window::{Partial, WindowSpec};

/// DynamoDB's item limit is 400 KB; parts stay well below it.
const MAX_PART_BYTES: usize = 350 * 1024;
/// TransactWriteItems takes at most 100 actions and 4 MB.
pub const MAX_TRANSACTION_ACTIONS: usize = 100;
pub const MAX_TRANSACTION_BYTES: usize = 3_800_000;

/// Part index → (parts in the generation, bytes).
type Parts = BTreeMap<usize, (usize, Vec<u8>)>;

const SHARDS_PK: &str = "shard";
const WINDOWS_PK: &str = "windows";

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
fn window_pk(start_ms: i64) -> String {
    format!("w#{start_ms}")
}
fn control_sk(start_ms: i64) -> String {
    format!("{start_ms:020}")
}
fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}
fn get_n(item: &HashMap<String, AttributeValue>, k: &str) -> Option<i64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// Another copy claimed the shard (it took the lease): this processor must stop.
#[derive(Debug)]
pub struct Fenced(pub String);

impl std::fmt::Display for Fenced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "shard {} was claimed by another copy", self.0)
    }
}

impl std::error::Error for Fenced {}

/// What a shard's owner restores.
#[derive(Debug, Default)]
pub struct ShardState {
    pub position: Option<Checkpoint>,
    pub watermark: Option<ShardWatermark>,
    /// Window start → (generation, parts) of the stored partial.
    pub windows: BTreeMap<i64, (u64, usize)>,
}

/// A window's control item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    pub start_ms: i64,
    pub changes: i64,
    pub first: Option<i64>,
    pub emitted: i64,
    /// Final and being deleted (`delete_window` marks it before deleting its parts).
    pub retired: bool,
}

/// One state transaction of a shard, built by the processor.
pub struct ShardWrite<'a> {
    pub shard: &'a str,
    pub owner: &'a str,
    pub position: &'a Checkpoint,
    pub watermark: &'a ShardWatermark,
    /// Changed windows with their new generation (their partial written whole).
    pub changed: Vec<(i64, u64, &'a Partial)>,
    /// Windows the shard no longer holds.
    pub dropped: Vec<i64>,
}

#[derive(Clone)]
pub struct Store {
    client: Client,
    table: String,
    /// Stored partials are checked against the window settings when read.
    windows: WindowSpec,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>, windows: WindowSpec) -> Self {
        Self {
            client,
            table: table.into(),
            windows,
        }
    }

    /// Creates the table if missing and waits until it is ACTIVE.
    pub async fn ensure_table(&self) -> anyhow::Result<()> {
        if self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |name: &str, t| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(t)
                .build()
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        if let Err(e) = created {
            let e = e.into_service_error();
            if !e.is_resource_in_use_exception() {
                return Err(e).with_context(|| format!("creating table {}", self.table));
            }
        }
        for _ in 0..100 {
            let d = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await?;
            if d.table().and_then(|t| t.table_status()).map(|s| s.as_str()) == Some("ACTIVE") {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        bail!("table {} did not become ACTIVE", self.table)
    }

    /// Becomes the shard's owner (a new incarnation fences the previous one)
    /// and reads what it stored.
    pub async fn claim_shard(&self, shard: &str, owner: &str) -> anyhow::Result<ShardState> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(SHARDS_PK))
            .key("sk", s(shard))
            .update_expression("SET #o = :o")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":o", s(owner))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .with_context(|| format!("claiming the state of shard {shard}"))?;
        let item = out.attributes.unwrap_or_default();
        let mut state = ShardState::default();
        if let Some(seq) = get_s(&item, "seq") {
            let sub = get_n(&item, "sub").unwrap_or(0) as u64;
            state.position = Some(
                Checkpoint::from_attributes(seq, sub)
                    .with_context(|| format!("shard {shard}: bad stored position {seq}"))?,
            );
        }
        if let Some(wm) = get_s(&item, "wm") {
            state.watermark = Some(serde_json::from_str(wm).context("stored shard watermark")?);
        }
        if let Some(w) = get_s(&item, "windows") {
            state.windows = serde_json::from_str(w).context("stored shard windows")?;
        }
        Ok(state)
    }

    /// The shard's partial of a window (generation `gen`, `parts` items).
    pub async fn load_partial(
        &self,
        shard: &str,
        start_ms: i64,
        generation: u64,
        parts: usize,
    ) -> anyhow::Result<Partial> {
        let mut bytes = Vec::new();
        for i in 0..parts {
            let item = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("pk", s(window_pk(start_ms)))
                .key("sk", s(format!("p#{shard}#{generation}#{i}")))
                .consistent_read(true)
                .send()
                .await?
                .item
                .with_context(|| format!("shard {shard}: part {i} of window {start_ms} missing"))?;
            let data = item
                .get("data")
                .and_then(|v| v.as_b().ok())
                .context("part without data")?;
            bytes.extend_from_slice(data.as_ref());
        }
        self.windows
            .decode_partial(&bytes)
            .with_context(|| format!("shard {shard}: partial of window {start_ms}"))
    }

    /// Writes one shard's state transaction. Returns the bytes of state written.
    pub async fn write_shard(
        &self,
        w: ShardWrite<'_>,
        old: &BTreeMap<i64, (u64, usize)>,
    ) -> anyhow::Result<(usize, BTreeMap<i64, (u64, usize)>)> {
        let mut windows = old.clone();
        let mut items = Vec::new();
        let mut bytes = 0usize;
        for (start, generation, partial) in &w.changed {
            let data = partial.encode();
            bytes += data.len();
            let chunks: Vec<&[u8]> = if data.is_empty() {
                vec![&data[..]]
            } else {
                data.chunks(MAX_PART_BYTES).collect()
            };
            for (i, chunk) in chunks.iter().enumerate() {
                items.push(put(
                    &self.table,
                    [
                        ("pk", s(window_pk(*start))),
                        ("sk", s(format!("p#{}#{generation}#{i}", w.shard))),
                        ("data", AttributeValue::B(Blob::new(chunk.to_vec()))),
                        ("n", n(chunks.len())),
                    ],
                )?);
            }
            // The previous generation's parts.
            if let Some((g, parts)) = old.get(start) {
                for i in 0..*parts {
                    items.push(delete(
                        &self.table,
                        window_pk(*start),
                        format!("p#{}#{g}#{i}", w.shard),
                    )?);
                }
            }
            items.push(
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name(&self.table)
                            .key("pk", s(WINDOWS_PK))
                            .key("sk", s(control_sk(*start)))
                            .update_expression("ADD changes :one")
                            .expression_attribute_values(":one", n(1))
                            .build()?,
                    )
                    .build(),
            );
            windows.insert(*start, (*generation, chunks.len()));
        }
        // A dropped window's items stay until the emitter has emitted its
        // final state and deletes the whole window.
        for start in &w.dropped {
            windows.remove(start);
        }
        items.push(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(HashMap::from([
                            ("pk".to_owned(), s(SHARDS_PK)),
                            ("sk".to_owned(), s(w.shard)),
                            ("owner".to_owned(), s(w.owner)),
                            ("seq".to_owned(), s(w.position.as_attribute())),
                            ("sub".to_owned(), n(w.position.sub_sequence_number())),
                            ("wm".to_owned(), s(serde_json::to_string(w.watermark)?)),
                            ("windows".to_owned(), s(serde_json::to_string(&windows)?)),
                        ])))
                        .condition_expression("#o = :o")
                        .expression_attribute_names("#o", "owner")
                        .expression_attribute_values(":o", s(w.owner))
                        .build()?,
                )
                .build(),
        );
        if items.len() > MAX_TRANSACTION_ACTIONS || bytes > MAX_TRANSACTION_BYTES {
            bail!(
                "shard {}: a state transaction of {} actions and {bytes} bytes exceeds DynamoDB's limits; \
                 lower consumer.polling.max_records",
                w.shard,
                items.len()
            );
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(|e| {
                let fenced = e.as_service_error().is_some_and(|s| {
                    s.is_transaction_canceled_exception()
                        && format!("{s:?}").contains("ConditionalCheckFailed")
                });
                if fenced {
                    anyhow::Error::new(Fenced(w.shard.to_owned()))
                } else {
                    anyhow::anyhow!(flowline_aws::error_chain(&e))
                        .context(format!("state transaction of shard {}", w.shard))
                }
            })?;
        Ok((bytes, windows))
    }

    /// Republishes an idle shard's watermark (its state is unchanged and durable).
    pub async fn publish_watermark(
        &self,
        shard: &str,
        owner: &str,
        wm: &ShardWatermark,
    ) -> anyhow::Result<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(SHARDS_PK))
            .key("sk", s(shard))
            .update_expression("SET wm = :wm")
            .condition_expression("#o = :o")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":o", s(owner))
            .expression_attribute_values(":wm", s(serde_json::to_string(wm)?))
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception())
                {
                    anyhow::Error::new(Fenced(shard.to_owned()))
                } else {
                    anyhow::anyhow!(flowline_aws::error_chain(&e))
                }
            })
            .with_context(|| format!("publishing the watermark of shard {shard}"))?;
        Ok(())
    }

    /// Every published shard watermark.
    /// Every published shard watermark, and the owner incarnation of the
    /// first open shard (by name): the copy holding it emits.
    pub async fn watermarks(&self) -> anyhow::Result<(Vec<ShardWatermark>, Option<String>)> {
        let items = self.query(SHARDS_PK).await?;
        let mut entries = Vec::new();
        let mut leader = None;
        for item in &items {
            let entry = get_s(item, "wm")
                .map(serde_json::from_str::<ShardWatermark>)
                .transpose()
                .context("published shard watermark")?;
            // A finished shard has no owner processor any more.
            if leader.is_none() && !entry.as_ref().is_some_and(|e| e.closed) {
                leader = get_s(item, "owner").map(str::to_owned);
            }
            entries.extend(entry);
        }
        Ok((entries, leader))
    }

    pub async fn controls(&self) -> anyhow::Result<Vec<Control>> {
        let items = self.query(WINDOWS_PK).await?;
        Ok(items.iter().filter_map(control_of).collect())
    }

    pub async fn control(&self, start_ms: i64) -> anyhow::Result<Option<Control>> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(WINDOWS_PK))
            .key("sk", s(control_sk(start_ms)))
            .consistent_read(true)
            .send()
            .await?
            .item;
        Ok(item.as_ref().and_then(control_of))
    }

    /// Every shard's current partial of a window.
    pub async fn partials(&self, start_ms: i64) -> anyhow::Result<Vec<Partial>> {
        let items = self.query(&window_pk(start_ms)).await?;
        // shard → generation → parts by index
        let mut by_shard: BTreeMap<String, BTreeMap<u64, Parts>> = BTreeMap::new();
        for item in &items {
            let Some(sk) = get_s(item, "sk").and_then(|k| k.strip_prefix("p#")) else {
                continue;
            };
            let mut it = sk.rsplitn(3, '#');
            let (Some(i), Some(g), Some(shard)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            let (Ok(i), Ok(g)) = (i.parse::<usize>(), g.parse::<u64>()) else {
                continue;
            };
            let parts = get_n(item, "n").unwrap_or(1) as usize;
            let data = item
                .get("data")
                .and_then(|v| v.as_b().ok())
                .map(|b| b.as_ref().to_vec())
                .unwrap_or_default();
            by_shard
                .entry(shard.to_owned())
                .or_default()
                .entry(g)
                .or_default()
                .insert(i, (parts, data));
        }
        let mut out = Vec::new();
        for (shard, gens) in by_shard {
            // The newest complete generation (a transaction writes all its parts).
            let complete = gens.iter().rev().find(|(_, parts)| {
                parts
                    .values()
                    .next()
                    .is_some_and(|(n, _)| *n == parts.len())
            });
            let Some((_, parts)) = complete else {
                bail!("window {start_ms}: shard {shard} has no complete partial");
            };
            let bytes: Vec<u8> = parts
                .values()
                .flat_map(|(_, d)| d.iter().copied())
                .collect();
            out.push(
                self.windows
                    .decode_partial(&bytes)
                    .with_context(|| format!("shard {shard}: partial of window {start_ms}"))?,
            );
        }
        Ok(out)
    }

    /// Sets `first` unless set; returns it.
    pub async fn first_emission(&self, start_ms: i64, changes: i64) -> anyhow::Result<i64> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(WINDOWS_PK))
            .key("sk", s(control_sk(start_ms)))
            .update_expression("SET #f = if_not_exists(#f, :c)")
            .expression_attribute_names("#f", "first")
            .expression_attribute_values(":c", n(changes))
            .return_values(ReturnValue::AllNew)
            .send()
            .await?;
        out.attributes
            .as_ref()
            .and_then(|a| get_n(a, "first"))
            .context("control item without first")
    }

    /// Records that the state at `changes` was emitted (never goes back).
    pub async fn mark_emitted(&self, start_ms: i64, changes: i64) -> anyhow::Result<()> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(WINDOWS_PK))
            .key("sk", s(control_sk(start_ms)))
            .update_expression("SET emitted = :c")
            .condition_expression("attribute_not_exists(emitted) OR emitted < :c")
            .expression_attribute_values(":c", n(changes))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(anyhow::anyhow!(flowline_aws::error_chain(&e))),
        }
    }

    /// Deletes a window's control item and every partial (after its allowed lateness).
    /// The control item is marked retired first and deleted last, so that a shard state
    /// still listing the window (its shard was idle since) can tell a finished window
    /// from a damaged one (`window_retired`), even if this is cut short.
    pub async fn delete_window(&self, start_ms: i64) -> anyhow::Result<()> {
        let marked = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(WINDOWS_PK))
            .key("sk", s(control_sk(start_ms)))
            .update_expression("SET retired = :t")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await;
        if let Err(e) = marked
            && !e
                .as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception())
        {
            return Err(anyhow::anyhow!(flowline_aws::error_chain(&e)))
                .with_context(|| format!("retiring window {start_ms}"));
        }
        for item in self.query(&window_pk(start_ms)).await? {
            if let Some(sk) = get_s(&item, "sk") {
                self.delete_item(&window_pk(start_ms), sk).await?;
            }
        }
        self.delete_item(WINDOWS_PK, &control_sk(start_ms)).await
    }

    /// Whether the emitter finished the window and deletes (or deleted) its items.
    pub async fn window_retired(&self, start_ms: i64) -> anyhow::Result<bool> {
        Ok(self.control(start_ms).await?.is_none_or(|c| c.retired))
    }

    async fn delete_item(&self, pk: &str, sk: &str) -> anyhow::Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(flowline_aws::error_chain(&e)))?;
        Ok(())
    }

    async fn query(&self, pk: &str) -> anyhow::Result<Vec<HashMap<String, AttributeValue>>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!(flowline_aws::error_chain(&e)))
                .with_context(|| format!("querying {} for {pk}", self.table))?;
            out.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }
}

fn control_of(item: &HashMap<String, AttributeValue>) -> Option<Control> {
    Some(Control {
        start_ms: get_s(item, "sk")?.parse().ok()?,
        changes: get_n(item, "changes")?,
        first: get_n(item, "first"),
        emitted: get_n(item, "emitted").unwrap_or(0),
        retired: item
            .get("retired")
            .is_some_and(|v| v.as_bool() == Ok(&true)),
    })
}

fn put<const N: usize>(
    table: &str,
    attrs: [(&str, AttributeValue); N],
) -> anyhow::Result<TransactWriteItem> {
    let item = attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    Ok(TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .build()?,
        )
        .build())
}

fn delete(table: &str, pk: String, sk: String) -> anyhow::Result<TransactWriteItem> {
    Ok(TransactWriteItem::builder()
        .delete(
            Delete::builder()
                .table_name(table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .build()?,
        )
        .build())
}
