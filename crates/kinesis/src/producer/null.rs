//! A Kinesis that acknowledges every entry at once, on the shard its key maps to: no
//! network, no storage. For benchmarks that measure a writer's own cost through the real
//! producer (batching, aggregation, acknowledgements) without the emulator's ceiling.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::api::{ListShardsApi, PutAck, PutEntry, PutRecordsApi};
use crate::error::ApiError;
use crate::shards::{HashKeyRange, ShardInfo, ShardMap, effective_hash_key};

pub struct NullKinesis {
    map: ShardMap,
    seq: AtomicU64,
}

impl NullKinesis {
    /// `shards` open shards splitting the hash key space evenly, as CreateStream does.
    pub fn new(shards: u128) -> Self {
        assert!(shards >= 1, "a stream has at least one shard");
        let step = u128::MAX / shards;
        let map = ShardMap::new(
            (0..shards)
                .map(|i| ShardInfo {
                    shard_id: format!("shardId-{i:012}"),
                    range: HashKeyRange {
                        start: if i == 0 { 0 } else { i * step + 1 },
                        end: if i == shards - 1 {
                            u128::MAX
                        } else {
                            (i + 1) * step
                        },
                    },
                })
                .collect(),
        )
        .expect("even ranges form a valid shard map");
        Self {
            map,
            seq: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl PutRecordsApi for NullKinesis {
    async fn put_records(
        &self,
        _stream: &str,
        entries: &[PutEntry],
    ) -> Result<Vec<Result<PutAck, ApiError>>, ApiError> {
        Ok(entries
            .iter()
            .map(|e| {
                // The producer only sends valid keys; an invalid one is a bug in it.
                let k = effective_hash_key(&e.partition_key, e.explicit_hash_key.as_deref())
                    .expect("the producer sends valid hash keys");
                let shard = self.map.index_of(k).expect("the map covers every key");
                Ok(PutAck {
                    shard_id: self.map.shards()[shard].shard_id.clone(),
                    sequence_number: self.seq.fetch_add(1, Ordering::Relaxed).to_string(),
                })
            })
            .collect())
    }
}

#[async_trait]
impl ListShardsApi for NullKinesis {
    async fn list_open_shards(&self, _stream: &str) -> crate::Result<ShardMap> {
        Ok(self.map.clone())
    }
}
