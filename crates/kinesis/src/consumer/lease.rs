//! A lease as stored in the lease table (KCL 2.x attribute names).
//!
//! Lease keys use the KCL multi-stream form `<account>:<stream>:<creationEpoch>:<shardId>`
//! (not the simpler `<stream>:<shardId>`): one application reads several streams from one
//! table like a KCL 2.x multi-stream application, and a stream deleted and re-created under the
//! same name gets fresh leases instead of resuming from sequence numbers that no longer exist.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::position::Checkpoint;
use crate::shards::{HashKeyRange, parse_hash_key};
use crate::{Error, Result};

pub(crate) const LEASE_KEY: &str = "leaseKey";
pub(crate) const LEASE_OWNER: &str = "leaseOwner";
pub(crate) const LEASE_COUNTER: &str = "leaseCounter";
pub(crate) const CHECKPOINT: &str = "checkpoint";
pub(crate) const CHECKPOINT_SUB: &str = "checkpointSubSequenceNumber";
pub(crate) const OWNER_SWITCHES: &str = "ownerSwitchesSinceCheckpoint";
pub(crate) const PARENT_SHARD_ID: &str = "parentShardId";
pub(crate) const STREAM_NAME: &str = "streamName";
pub(crate) const SHARD_ID: &str = "shardId";
pub(crate) const STARTING_HASH_KEY: &str = "startingHashKey";
pub(crate) const ENDING_HASH_KEY: &str = "endingHashKey";

/// Identity of a stream in lease keys: `<account>:<stream>:<creationEpoch>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamIdentifier {
    pub account: String,
    pub stream: String,
    pub creation_epoch: i64,
}

impl StreamIdentifier {
    /// From the stream ARN (`arn:aws:kinesis:<region>:<account>:stream/<name>`) and creation time.
    pub fn from_arn(arn: &str, creation_epoch: i64) -> Result<Self> {
        let parts: Vec<&str> = arn.split(':').collect();
        let invalid = || Error::InvalidShardMap(format!("unexpected stream ARN {arn:?}"));
        if parts.len() != 6 {
            return Err(invalid());
        }
        let stream = parts[5].strip_prefix("stream/").ok_or_else(invalid)?;
        Ok(Self {
            account: parts[4].to_owned(),
            stream: stream.to_owned(),
            creation_epoch,
        })
    }

    pub fn prefix(&self) -> String {
        format!("{}:{}:{}", self.account, self.stream, self.creation_epoch)
    }

    pub fn lease_key(&self, shard_id: &str) -> String {
        format!("{}:{shard_id}", self.prefix())
    }
}

/// One row of the lease table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub key: String,
    pub stream: String,
    pub shard_id: String,
    pub owner: Option<String>,
    pub counter: u64,
    pub checkpoint: Checkpoint,
    pub owner_switches_since_checkpoint: u64,
    /// Parent shard ids (not lease keys), as the KCL stores them.
    pub parent_shard_ids: Vec<String>,
    pub hash_key_range: Option<HashKeyRange>,
}

impl Lease {
    pub fn new(
        stream: &StreamIdentifier,
        shard_id: &str,
        parents: Vec<String>,
        range: Option<HashKeyRange>,
        checkpoint: Checkpoint,
    ) -> Self {
        Self {
            key: stream.lease_key(shard_id),
            stream: stream.stream.clone(),
            shard_id: shard_id.to_owned(),
            owner: None,
            counter: 0,
            checkpoint,
            owner_switches_since_checkpoint: 0,
            parent_shard_ids: parents,
            hash_key_range: range,
        }
    }

    /// Lease key of a parent shard (same stream prefix as this lease).
    pub fn parent_lease_key(&self, parent_shard_id: &str) -> String {
        let prefix = self.key.strip_suffix(&self.shard_id).unwrap_or(&self.key);
        format!("{prefix}{parent_shard_id}")
    }

    pub fn is_finished(&self) -> bool {
        self.checkpoint == Checkpoint::ShardEnd
    }

    pub fn to_item(&self) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::from([
            (LEASE_KEY.to_owned(), AttributeValue::S(self.key.clone())),
            (
                LEASE_COUNTER.to_owned(),
                AttributeValue::N(self.counter.to_string()),
            ),
            (
                CHECKPOINT.to_owned(),
                AttributeValue::S(self.checkpoint.as_attribute().to_owned()),
            ),
            (
                CHECKPOINT_SUB.to_owned(),
                AttributeValue::N(self.checkpoint.sub_sequence_number().to_string()),
            ),
            (
                OWNER_SWITCHES.to_owned(),
                AttributeValue::N(self.owner_switches_since_checkpoint.to_string()),
            ),
            (
                STREAM_NAME.to_owned(),
                AttributeValue::S(self.stream.clone()),
            ),
            (
                SHARD_ID.to_owned(),
                AttributeValue::S(self.shard_id.clone()),
            ),
        ]);
        if let Some(owner) = &self.owner {
            item.insert(LEASE_OWNER.to_owned(), AttributeValue::S(owner.clone()));
        }
        // DynamoDB rejects empty sets: no parents means no attribute.
        if !self.parent_shard_ids.is_empty() {
            item.insert(
                PARENT_SHARD_ID.to_owned(),
                AttributeValue::Ss(self.parent_shard_ids.clone()),
            );
        }
        if let Some(r) = &self.hash_key_range {
            item.insert(
                STARTING_HASH_KEY.to_owned(),
                AttributeValue::S(r.start.to_string()),
            );
            item.insert(
                ENDING_HASH_KEY.to_owned(),
                AttributeValue::S(r.end.to_string()),
            );
        }
        item
    }

    pub fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Self> {
        let key = get_s(item, LEASE_KEY).ok_or_else(|| Error::InvalidLease {
            key: "?".into(),
            message: "no leaseKey".into(),
        })?;
        let bad = |message: String| Error::InvalidLease {
            key: key.clone(),
            message,
        };
        let counter = get_n(item, LEASE_COUNTER).map_err(&bad)?.unwrap_or(0);
        let sub = get_n(item, CHECKPOINT_SUB).map_err(&bad)?.unwrap_or(0);
        let checkpoint_attr = get_s(item, CHECKPOINT).unwrap_or_else(|| "TRIM_HORIZON".to_owned());
        let checkpoint = Checkpoint::from_attributes(&checkpoint_attr, sub)
            .ok_or_else(|| bad(format!("unreadable checkpoint {checkpoint_attr:?}")))?;
        // Lease keys of other KCL forms still parse: the shard id is the last `:` field.
        let shard_id = get_s(item, SHARD_ID)
            .unwrap_or_else(|| key.rsplit(':').next().unwrap_or(&key).to_owned());
        let stream = get_s(item, STREAM_NAME)
            .or_else(|| key.split(':').nth(1).map(str::to_owned))
            .unwrap_or_default();
        let parents = match item.get(PARENT_SHARD_ID) {
            Some(AttributeValue::Ss(v)) => v.clone(),
            Some(AttributeValue::S(v)) => vec![v.clone()],
            _ => Vec::new(),
        };
        let hash_key_range = match (get_s(item, STARTING_HASH_KEY), get_s(item, ENDING_HASH_KEY)) {
            (Some(s), Some(e)) => Some(HashKeyRange {
                start: parse_hash_key(&s).map_err(|e| bad(e.to_string()))?,
                end: parse_hash_key(&e).map_err(|e| bad(e.to_string()))?,
            }),
            _ => None,
        };
        Ok(Self {
            owner: get_s(item, LEASE_OWNER),
            counter,
            checkpoint,
            owner_switches_since_checkpoint: get_n(item, OWNER_SWITCHES)
                .map_err(&bad)?
                .unwrap_or(0),
            parent_shard_ids: parents,
            hash_key_range,
            shard_id,
            stream,
            key,
        })
    }
}

fn get_s(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

fn get_n(
    item: &HashMap<String, AttributeValue>,
    name: &str,
) -> std::result::Result<Option<u64>, String> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map(Some)
            .map_err(|_| format!("{name} is not a number: {n}")),
        Some(AttributeValue::Null(_)) | None => Ok(None),
        Some(other) => Err(format!("{name} has an unexpected type: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_round_trip() {
        let sid = StreamIdentifier::from_arn(
            "arn:aws:kinesis:us-east-1:000000000000:stream/sales",
            1_700_000_000,
        )
        .unwrap();
        assert_eq!(sid.prefix(), "000000000000:sales:1700000000");
        let mut lease = Lease::new(
            &sid,
            "shardId-000000000002",
            vec!["shardId-000000000000".into()],
            Some(HashKeyRange {
                start: 0,
                end: u128::MAX,
            }),
            Checkpoint::sequence("4968", 2),
        );
        lease.owner = Some("w1".into());
        lease.counter = 7;
        let back = Lease::from_item(&lease.to_item()).unwrap();
        assert_eq!(back, lease);
        assert_eq!(
            back.parent_lease_key("shardId-000000000000"),
            "000000000000:sales:1700000000:shardId-000000000000"
        );
        lease.parent_shard_ids.clear();
        lease.owner = None;
        let item = lease.to_item();
        assert!(!item.contains_key(PARENT_SHARD_ID) && !item.contains_key(LEASE_OWNER));
        assert_eq!(Lease::from_item(&item).unwrap(), lease);
    }
}
