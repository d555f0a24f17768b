//! Partition key hashing and shard hash-key ranges, as Kinesis routes records.

use md5::{Digest, Md5};

use crate::{Error, Result};

/// MD5 of the key as big-endian u128, as Kinesis does.
pub fn hash_key(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// The hash key a record is routed by: its explicit hash key when given, else the MD5 of its
/// partition key.
pub fn effective_hash_key(partition_key: &str, explicit_hash_key: Option<&str>) -> Result<u128> {
    match explicit_hash_key {
        Some(ehk) => parse_hash_key(ehk),
        None => Ok(hash_key(partition_key)),
    }
}

/// Parses a decimal hash key (0 ..= 2^128 - 1), as the Kinesis API writes them.
pub fn parse_hash_key(s: &str) -> Result<u128> {
    s.parse::<u128>().map_err(|e| {
        Error::InvalidRecord(format!(
            "hash key {s:?} is not a decimal 128-bit integer: {e}"
        ))
    })
}

/// Inclusive hash key range of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HashKeyRange {
    pub start: u128,
    pub end: u128,
}

impl HashKeyRange {
    pub fn contains(&self, k: u128) -> bool {
        self.start <= k && k <= self.end
    }

    pub fn from_sdk(r: &aws_sdk_kinesis::types::HashKeyRange) -> Result<Self> {
        let start = parse_hash_key(r.starting_hash_key())?;
        let end = parse_hash_key(r.ending_hash_key())?;
        if start > end {
            return Err(Error::InvalidShardMap(format!(
                "hash key range starts at {start} after its end {end}"
            )));
        }
        Ok(Self { start, end })
    }
}

/// An open shard: its id and hash key range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub shard_id: String,
    pub range: HashKeyRange,
}

impl ShardInfo {
    /// From a ListShards entry; None when the shard is closed (has an ending sequence number).
    pub fn open_from_sdk(shard: &aws_sdk_kinesis::types::Shard) -> Result<Option<Self>> {
        let closed = shard
            .sequence_number_range()
            .and_then(|r| r.ending_sequence_number())
            .is_some();
        if closed {
            return Ok(None);
        }
        let range = shard.hash_key_range().ok_or_else(|| {
            Error::InvalidShardMap(format!("shard {} has no hash key range", shard.shard_id()))
        })?;
        Ok(Some(Self {
            shard_id: shard.shard_id().to_owned(),
            range: HashKeyRange::from_sdk(range)?,
        }))
    }
}

/// The open shards of a stream, for predicting which shard a record lands on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardMap {
    /// Sorted by range start; ranges do not overlap.
    shards: Vec<ShardInfo>,
}

impl ShardMap {
    /// Builds a map from open shards. Overlapping ranges (a listing taken mid-reshard that
    /// still shows a parent as open) are rejected so the caller retries later.
    pub fn new(mut shards: Vec<ShardInfo>) -> Result<Self> {
        shards.sort_by_key(|s| s.range.start);
        for pair in shards.windows(2) {
            if pair[0].range.end >= pair[1].range.start {
                return Err(Error::InvalidShardMap(format!(
                    "open shards {} and {} overlap",
                    pair[0].shard_id, pair[1].shard_id
                )));
            }
        }
        Ok(Self { shards })
    }

    pub fn shards(&self) -> &[ShardInfo] {
        &self.shards
    }

    pub fn len(&self) -> usize {
        self.shards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// Index (into [`Self::shards`]) of the shard owning hash key `k`, if any.
    pub fn index_of(&self, k: u128) -> Option<usize> {
        let i = self.shards.partition_point(|s| s.range.start <= k);
        let i = i.checked_sub(1)?;
        self.shards[i].range.contains(k).then_some(i)
    }

    pub fn position(&self, shard_id: &str) -> Option<usize> {
        self.shards.iter().position(|s| s.shard_id == shard_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_key_is_big_endian_md5() {
        // md5("") = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(hash_key(""), 0xd41d8cd98f00b204e9800998ecf8427e);
        assert_eq!(hash_key("a"), 0x0cc175b9c0f1b6a831c399e269772661);
    }

    #[test]
    fn parses_sdk_range_extremes() {
        let r = aws_sdk_kinesis::types::HashKeyRange::builder()
            .starting_hash_key("0")
            .ending_hash_key("340282366920938463463374607431768211455")
            .build()
            .unwrap();
        let r = HashKeyRange::from_sdk(&r).unwrap();
        assert_eq!(
            r,
            HashKeyRange {
                start: 0,
                end: u128::MAX
            }
        );
        assert!(r.contains(0) && r.contains(u128::MAX));
        let bad = aws_sdk_kinesis::types::HashKeyRange::builder()
            .starting_hash_key("10")
            .ending_hash_key("x")
            .build()
            .unwrap();
        assert!(HashKeyRange::from_sdk(&bad).is_err());
    }

    fn shard(id: &str, start: u128, end: u128) -> ShardInfo {
        ShardInfo {
            shard_id: id.into(),
            range: HashKeyRange { start, end },
        }
    }

    #[test]
    fn map_finds_owning_shard() {
        let half = u128::MAX / 2;
        let map =
            ShardMap::new(vec![shard("b", half + 1, u128::MAX), shard("a", 0, half)]).unwrap();
        assert_eq!(map.index_of(0), Some(0));
        assert_eq!(map.index_of(half), Some(0));
        assert_eq!(map.index_of(half + 1), Some(1));
        assert_eq!(map.index_of(u128::MAX), Some(1));
        assert_eq!(map.shards()[1].shard_id, "b");
        assert_eq!(map.position("b"), Some(1));
    }

    #[test]
    fn map_reports_gaps_and_rejects_overlaps() {
        let map = ShardMap::new(vec![shard("a", 0, 9), shard("b", 20, 30)]).unwrap();
        assert_eq!(map.index_of(15), None);
        assert_eq!(map.index_of(31), None);
        assert!(ShardMap::new(vec![shard("a", 0, 10), shard("b", 10, 30)]).is_err());
        assert!(ShardMap::new(vec![]).unwrap().index_of(1).is_none());
    }
}
