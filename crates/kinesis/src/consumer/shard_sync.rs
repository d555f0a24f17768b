//! Shard discovery: lists each stream's shards and creates leases for new ones.

use std::collections::HashSet;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::Shard;

use super::config::{ConsumerConfig, InitialPosition};
use super::lease::{Lease, StreamIdentifier};
use super::position::Checkpoint;
use super::sdk_error::kinesis_error;
use super::table::LeaseTable;
use crate::shards::HashKeyRange;
use crate::{Error, Result};

/// A stream as the consumer knows it.
#[derive(Debug, Clone)]
pub(crate) struct StreamMeta {
    pub id: StreamIdentifier,
    pub arn: String,
    /// Enhanced fan-out consumer ARN (fan-out mode only).
    pub consumer_arn: Option<String>,
}

impl StreamMeta {
    pub fn owns(&self, lease: &Lease) -> bool {
        lease.key.len() > self.id.prefix().len()
            && lease.key.starts_with(&format!("{}:", self.id.prefix()))
    }
}

pub(crate) async fn describe_stream(client: &Client, name: &str) -> Result<StreamMeta> {
    let out = client
        .describe_stream_summary()
        .stream_name(name)
        .send()
        .await
        .map_err(|e| Error::Api(kinesis_error(&e)))?;
    let d = out.stream_description_summary.ok_or_else(|| {
        Error::InvalidShardMap(format!("DescribeStreamSummary of {name} returned nothing"))
    })?;
    let id = StreamIdentifier::from_arn(&d.stream_arn, d.stream_creation_timestamp.secs())?;
    Ok(StreamMeta {
        id,
        arn: d.stream_arn,
        consumer_arn: None,
    })
}

/// Every shard of the stream (all ListShards pages).
pub(crate) async fn list_shards(client: &Client, stream: &str) -> Result<Vec<Shard>> {
    let mut shards = Vec::new();
    let mut token: Option<String> = None;
    loop {
        // With a NextToken, ListShards rejects the stream name.
        let req = match &token {
            Some(t) => client.list_shards().next_token(t),
            None => client.list_shards().stream_name(stream),
        };
        let out = req
            .send()
            .await
            .map_err(|e| Error::Api(kinesis_error(&e)))?;
        shards.extend(out.shards.unwrap_or_default());
        match out.next_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(shards),
        }
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SyncOutcome {
    pub created: usize,
    pub deleted: usize,
}

/// Creates leases for shards that have none and deletes finished leases of shards that left
/// the stream (trimmed after the retention period; no child can still need them).
///
/// A shard whose parent has a lease is a child of a reshard this application has seen: it
/// starts at TRIM_HORIZON so nothing written after the reshard is missed. Other shards start at
/// the configured initial position (with LATEST, closed ones are skipped: they hold nothing
/// newer). Deciding by parentage, not by "first sync", keeps concurrent first starts of several
/// workers consistent.
pub(crate) async fn sync_stream(
    client: &Client,
    table: &LeaseTable,
    meta: &StreamMeta,
    config: &ConsumerConfig,
    all_leases: &[Lease],
) -> Result<SyncOutcome> {
    let mut shards = list_shards(client, &meta.id.stream).await?;
    let leases: Vec<&Lease> = all_leases.iter().filter(|l| meta.owns(l)).collect();
    let mut leased: HashSet<String> = leases.iter().map(|l| l.shard_id.clone()).collect();
    // Shard ids grow with creation: parents get their leases before their children, so a child
    // never sees a parent's lease missing (missing means finished and trimmed).
    shards.sort_by(|a, b| {
        a.shard_id()
            .len()
            .cmp(&b.shard_id().len())
            .then_with(|| a.shard_id().cmp(b.shard_id()))
    });
    let mut outcome = SyncOutcome::default();
    for shard in &shards {
        if leased.contains(shard.shard_id()) {
            continue;
        }
        let parents: Vec<String> = [shard.parent_shard_id(), shard.adjacent_parent_shard_id()]
            .into_iter()
            .flatten()
            .map(str::to_owned)
            .collect();
        let closed = shard
            .sequence_number_range()
            .and_then(|r| r.ending_sequence_number())
            .is_some();
        let checkpoint = if parents.iter().any(|p| leased.contains(p)) {
            Checkpoint::TrimHorizon
        } else {
            match config.initial_position {
                InitialPosition::TrimHorizon => Checkpoint::TrimHorizon,
                InitialPosition::AtTimestamp => Checkpoint::AtTimestamp,
                InitialPosition::Latest if closed => continue,
                InitialPosition::Latest => Checkpoint::Latest,
            }
        };
        let range = shard
            .hash_key_range()
            .map(HashKeyRange::from_sdk)
            .transpose()?;
        let lease = Lease::new(&meta.id, shard.shard_id(), parents, range, checkpoint);
        if table.create_if_absent(&lease).await? {
            tracing::info!(lease = %lease.key, checkpoint = %lease.checkpoint, "created lease for new shard");
            outcome.created += 1;
        }
        // Created now or by another worker meanwhile: either way it has a lease.
        leased.insert(lease.shard_id);
    }
    let listed: HashSet<&str> = shards.iter().map(|s| s.shard_id()).collect();
    for lease in leases {
        if lease.is_finished() && !listed.contains(lease.shard_id.as_str()) {
            table.delete(&lease.key).await?;
            tracing::info!(lease = %lease.key, "deleted lease of a finished shard no longer in the stream");
            outcome.deleted += 1;
        }
    }
    Ok(outcome)
}
